"""`TorchBackend`: trains a ``torch.nn.Module`` (built-in or user model) on batch streams."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import TrainingError
from ..specs.training import ModelSpec, TrainConfig
from ..stream.adapters import torch_batches
from .backend import ModelContext, scale_fields, target_scale_of
from .models import (
    build_torch_builtin,
    call_model_function,
    check_model,
    load_model_function,
    model_kind,
    n_outputs,
    quiet,
    verify_onnx,
)

__all__ = ["TorchBackend", "load_native"]

CHUNK = 65536
NAN_HINT = (
    "try a lower training.learning_rate, check the inputs for extreme values "
    "(normalisation: standard helps), and check that the model's output is finite"
)


def _output_kind(module: Any) -> str:
    """``"probs"``/``"log_probs"`` when the module ends in Sigmoid/Softmax/LogSoftmax."""
    last = module[-1] if isinstance(module, nn.Sequential) and len(module) else None
    if last is None:
        leaves = [m for m in module.modules() if not list(m.children())]
        last = leaves[-1] if leaves else None
    if isinstance(last, nn.Sigmoid | nn.Softmax):
        return "probs"
    return "log_probs" if isinstance(last, nn.LogSoftmax) else "logits"


def _final(out: Any, task: str, output: str, scale: tuple[float, float] | None = None) -> Any:
    """Final scores from raw outputs: (n,) for binary/regression, (n, k) multi-class;
    a regression output trained on the standardised target is restored (``scale``)."""
    if task == "multiclass":
        return (
            torch.softmax(out, 1)
            if output == "logits"
            else out.exp()
            if output == "log_probs"
            else out
        )
    out = out.reshape(-1)
    if scale is not None and task == "regression":
        return out * scale[1] + scale[0]
    return torch.sigmoid(out) if task == "binary" and output == "logits" else out


def _predict(
    module: Any,
    x: np.ndarray[Any, Any],
    task: str,
    output: str,
    device: Any,
    scale: tuple[float, float] | None = None,
) -> np.ndarray[Any, Any]:
    module.eval()
    pieces = []
    with torch.no_grad():
        for start in range(0, max(len(x), 1), CHUNK):
            chunk = torch.from_numpy(
                np.ascontiguousarray(x[start : start + CHUNK], dtype=np.float32)
            )
            pieces.append(_final(module(chunk.to(device)), task, output, scale).cpu().numpy())
    return np.concatenate(pieces)


class _Scored(nn.Module):  # type: ignore[misc]
    """The module followed by its final activation (or the restored target scale): what
    ONNX and ``torch.export`` get."""

    def __init__(
        self, inner: Any, task: str, output: str, scale: tuple[float, float] | None = None
    ) -> None:
        super().__init__()
        self.inner, self.task, self.output, self.scale = inner, task, output, scale

    def forward(self, x: Any) -> Any:
        return _final(self.inner(x), self.task, self.output, self.scale)


def _device(requested: str) -> str:
    if requested == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            "training.device is cuda, but PyTorch sees no CUDA GPU (use auto or cpu)"
        )
    if requested == "cpu" or not torch.cuda.is_available():
        return "cpu"
    return "cuda:0"


def _build(builder: Mapping[str, Any], context: ModelContext, source: Path | None = None) -> Any:
    """Rebuild an untrained module from a ``builder`` record (see :meth:`save_native`)."""
    if builder["kind"] == "builtin":
        return build_torch_builtin(
            builder["name"], context.layout, builder["n_outputs"], builder["params"]
        )
    if builder["kind"] == "file" and source is not None:
        return call_model_function(
            load_model_function(source), context, builder["params"], str(source)
        )
    raise TrainingError(
        f"cannot rebuild a PyTorch model of kind {builder['kind']!r} from the bundle"
    )


class TorchBackend:
    """One PyTorch model: optimiser, weighted loss per task, checkpoints, exports."""

    kind = "torch"
    epochless = False

    def __init__(self, model: ModelSpec, context: ModelContext, config: TrainConfig) -> None:
        self.context, self.config = context, config
        self.notes: list[str] = []
        self.task = context.task
        #: regression: the loss sees (y - mean) / std; scores are restored (see backend)
        self.scale = context.target_scale if self.task == "regression" else None
        self.device = _device(config.device)
        torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 2) - 1))
        torch.manual_seed(context.seed)
        outputs = n_outputs(context)
        self.source: Path | None = None
        if model.instance is not None:
            module = model.instance
            self.builder: dict[str, Any] = {"kind": "instance", "class": type(module).__qualname__}
        elif model.file is not None:
            self.source = Path(model.file)
            module = call_model_function(
                load_model_function(self.source), context, model.params, str(self.source)
            )
            self.builder = {"kind": "file", "file": self.source.name, "params": dict(model.params)}
        else:
            module = build_torch_builtin(str(model.name), context.layout, outputs, model.params)
            self.builder = {"kind": "builtin", "name": model.name, "params": dict(model.params)}
        if model_kind(module) != "torch":
            raise TrainingError(
                f"the model is a {model_kind(module)} model, not a torch.nn.Module: "
                "set model.backend: keras"
            )
        check_model(module, "torch", context.layout, self.task, outputs)
        self.output = _output_kind(module)
        self.builder.update({"idim": context.idim, "n_outputs": outputs, "output": self.output})
        self.module = module.to(self.device)
        self.optimizer = self._optimizer()
        self._epochs = 0

    def _optimizer(self) -> Any:
        params, lr = list(self.module.parameters()), self.config.learning_rate
        if not any(p.requires_grad for p in params):
            raise TrainingError("the model has no trainable parameters")
        if self.config.optimizer == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=0.9)
        return (torch.optim.AdamW if self.config.optimizer == "adamw" else torch.optim.Adam)(
            params, lr=lr
        )

    def _loss(self, out: Any, y: Any) -> Any:
        fn = nn.functional
        if self.task == "multiclass":
            if self.output == "logits":
                return fn.cross_entropy(out, y, reduction="none")
            logp = out if self.output == "log_probs" else out.clamp(min=1e-12).log()
            return fn.nll_loss(logp, y, reduction="none")
        out = out.reshape(-1)
        if self.task == "regression":
            return fn.mse_loss(out, y, reduction="none")
        if self.output == "logits":
            return fn.binary_cross_entropy_with_logits(out, y, reduction="none")
        return fn.binary_cross_entropy(out.clamp(1e-7, 1 - 1e-7), y, reduction="none")

    def train_epoch(self, batches: Any) -> float:
        """One pass over ``batches`` (a BatchStream); the mean weighted loss."""
        self.module.train()
        self._epochs += 1
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        weight = 0.0
        for number, (x, y, w) in enumerate(self._tensors(batches), start=1):
            per_event = self._loss(self.module(x), y)
            wsum = w.sum()
            loss = (per_event * w).sum() / wsum.clamp(min=1e-12)
            if not bool(torch.isfinite(loss)):
                epoch = getattr(batches, "epoch", self._epochs)
                what = "NaN" if bool(torch.isnan(loss)) else "infinite"
                raise TrainingError(
                    f"training loss became {what} at epoch {epoch}, batch {number}; {NAN_HINT}"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach() * wsum.detach()
            weight += float(wsum)
        return self.physical_loss(float(total) / weight) if weight else float("nan")

    def physical_loss(self, loss: float) -> float:
        """The mean squared error of the standardised target in the target's units
        (times std²), as the validation loss is; other tasks' losses as they are."""
        return loss * self.scale[1] ** 2 if self.scale is not None else loss

    def _tensors(self, batches: Any) -> Iterable[tuple[Any, Any, Any]]:
        if hasattr(batches, "spec"):
            tensors: Iterable[tuple[Any, Any, Any]] = torch_batches(batches, self.device)
        else:
            dtype = torch.long if self.task == "multiclass" else torch.float32
            tensors = (
                (
                    torch.from_numpy(b.x).to(self.device),
                    torch.as_tensor(b.y, dtype=dtype).to(self.device),
                    torch.from_numpy(b.w).to(self.device),
                )
                for b in batches
            )
        if self.scale is None:
            return tensors
        mean, std = self.scale
        return ((x, (y - mean) / std, w) for x, y, w in tensors)

    def fit(self, train: Any, validation: Any = None) -> float:
        return self.train_epoch(train)

    def predict(self, x: np.ndarray[Any, np.dtype[np.float32]]) -> np.ndarray[Any, Any]:
        return _predict(self.module, x, self.task, self.output, self.device, self.scale)

    def save_checkpoint(self, path: Path) -> None:
        state = {"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict()}
        state.update(scale_fields(self.scale))  # the weights were trained for this scale
        partial = path.with_name(path.name + ".partial")
        torch.save(state, partial)
        os.replace(partial, path)

    def load_checkpoint(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.task == "regression" and "target_scale" in state:
            self.scale = target_scale_of(state)

    def save_native(self, directory: Path) -> dict[str, Any]:
        """``model.pt`` (state dict) and how to rebuild the module (``builder``)."""
        state = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        torch.save(state, directory / "model.pt")
        builder = dict(self.builder)
        if builder["kind"] == "instance":
            with (
                contextlib.suppress(Exception),
                quiet(),
            ):  # a notebook class: keep a torch.export program
                program = torch.export.export(
                    _Scored(
                        copy.deepcopy(self.module).cpu(), self.task, self.output, self.scale
                    ).eval(),
                    (torch.zeros(4, self.context.idim),),
                    dynamic_shapes={"x": {0: torch.export.Dim("n")}},
                )
                torch.export.save(program, directory / "model.pt2")
                builder["program"] = "model.pt2"
        if self.source is not None:
            shutil.copyfile(self.source, directory / "model_source.py")
            builder["source"] = "model_source.py"
        fields = {"native": "model.pt", "format": "torch-state-dict", "builder": builder}
        return {**fields, **scale_fields(self.scale)}

    def export_onnx(self, path: Path) -> bool:
        module = copy.deepcopy(self.module).cpu()
        wrapper = _Scored(module, self.task, self.output, self.scale).eval()
        rows = np.random.default_rng(0).normal(size=(64, self.context.idim)).astype(np.float32)
        try:
            with quiet():
                torch.onnx.export(
                    wrapper,
                    (torch.from_numpy(rows[:4]),),
                    str(path),
                    input_names=["x"],
                    output_names=["score"],
                    dynamic_shapes={"x": {0: torch.export.Dim("n")}},
                    dynamo=True,
                    external_data=False,
                )
            return verify_onnx(path, rows, self.predict(rows), self.notes)
        except Exception as err:
            path.unlink(missing_ok=True)
            self.notes.append(
                f"onnx: PyTorch export failed ({type(err).__name__}: {str(err)[:300]}); "
                "the bundle has the native model.pt only"
            )
            return False


def load_native(
    directory: str | Path, fields: Mapping[str, Any], context: ModelContext
) -> Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]:
    """A predict function (final scores) for a bundle's ``model.pt``.

    ``fields`` are the manifest fields :meth:`TorchBackend.save_native` returned
    (``native``, ``builder``, ``target_scale`` of a regression, which a ``torch.export``
    program has in its graph); ``context`` gives the layout and task.
    """
    directory = Path(directory)
    builder = fields["builder"]
    if "program" in builder:  # a model object from a notebook, saved with torch.export
        program = torch.export.load(directory / builder["program"]).module()
        return lambda x: (
            program(torch.from_numpy(np.ascontiguousarray(x, np.float32))).detach().numpy()
        )
    source = directory / builder["source"] if "source" in builder else None
    module = _build(builder, context, source)
    state = torch.load(directory / fields["native"], map_location="cpu", weights_only=True)
    module.load_state_dict(state)
    module.eval()
    task, output = context.task, builder.get("output", "logits")
    scale = target_scale_of(fields) if task == "regression" else None
    return lambda x: _predict(module, x, task, output, "cpu", scale)
