"""``ModelPicker``: a built-in model or a model file, training parameters, Train."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w
import yaml

__all__ = ["BUILTIN_PARAMS", "ModelPicker"]

#: the form fields of each built-in model (train/models.py and the BDT's scikit-learn
#: parameters): name -> (default, description)
BUILTIN_PARAMS: dict[str, dict[str, tuple[Any, str]]] = {
    "mlp": {
        "sizes": ("64, 64", "hidden layer sizes"),
        "dropout": (0.0, "dropout"),
        "activation": ("relu", "activation"),
    },
    "deepsets": {
        "phi": ("32, 32", "per-object layers"),
        "rho": ("64, 64", "event layers"),
        "pooling": ("sum+mean", "pooling"),
        "dropout": (0.0, "dropout"),
    },
    "bdt": {
        "max_iter": (200, "boosting rounds"),
        "learning_rate": (0.1, "learning rate"),
        "max_leaf_nodes": (31, "leaves per tree"),
    },
}
_CHOICES = {
    "activation": ["relu", "tanh", "elu", "gelu", "silu", "leaky_relu", "sigmoid"],
    "pooling": ["sum+mean", "sum", "mean"],
}
OnTrain = Callable[[dict[str, Any]], Any]


def _field(name: str, default: Any, description: str) -> w.Widget:
    style = {"description_width": "10em"}
    if name in _CHOICES:
        return w.Dropdown(
            options=_CHOICES[name], value=default, description=description, style=style
        )
    if isinstance(default, float):
        return w.FloatText(value=default, description=description, style=style)
    if isinstance(default, int):
        return w.IntText(value=default, description=description, style=style)
    return w.Text(value=default, description=description, style=style)


def _value(name: str, widget: w.Widget) -> Any:
    value = widget.value
    if name in ("sizes", "phi", "rho"):
        return [int(part) for part in str(value).replace(",", " ").split()]
    return value


def _kernel_names() -> list[str]:
    from jupyter_client.kernelspec import KernelSpecManager

    return sorted(KernelSpecManager().find_kernel_specs()) or ["python3"]


class ModelPicker(w.VBox):  # type: ignore[misc]
    """Choose the model and how to train it; ``Train`` submits.

    Parameters
    ----------
    model
        The built-in model shown first (``mlp``, ``deepsets`` or ``bdt``).
    on_train
        Called with :meth:`model_config` when Train is pressed; by default the owner
        (e.g. :class:`TrainingStudio`) sets it.
    """

    def __init__(self, model: str = "mlp", on_train: OnTrain | None = None) -> None:
        style = {"description_width": "10em"}
        self.model_box = w.ToggleButtons(
            options=[*BUILTIN_PARAMS, "file"], value=model, description="model", style=style
        )
        self.file_box = w.Text(
            placeholder="my_model.py (defines model(idim))", description="model file", style=style
        )
        self.params_box = w.VBox()
        self.epochs = w.BoundedIntText(5, min=1, max=10_000, description="epochs", style=style)
        self.batch_size = w.BoundedIntText(
            0, min=0, max=1 << 20, description="batch size (0: auto)", style=style
        )
        self.learning_rate = w.FloatText(1e-3, description="learning rate", style=style)
        self.split = w.FloatRangeSlider(
            value=(0.7, 0.85),
            min=0.0,
            max=1.0,
            step=0.05,
            description="train | val | test",
            style=style,
        )
        self.executor = w.Dropdown(
            options=["default", "kernel", "dask", "local"],
            value="default",
            description="executor",
            style=style,
        )
        self.kernel = w.Dropdown(options=_kernel_names(), description="kernel", style=style)
        self.workers = w.BoundedIntText(
            1, min=1, max=1024, description="workers (DDP)", style=style
        )
        self.folds = w.BoundedIntText(1, min=1, max=10, description="folds (k-fold)", style=style)
        self.cluster = w.Text(
            placeholder="local, tcp://host:8786 or {gateway: {address: ...}}",
            description="cluster",
            style=style,
        )
        self.plot_style = w.Dropdown(
            options=["default", "CMS", "ATLAS", "LHCb", "ALICE", "none"],
            value="default",
            description="plot style",
            style=style,
        )
        self.train_button = w.Button(description="Train", button_style="primary", icon="play")
        self.status = w.HTML()
        self.on_train = on_train
        self._fields: dict[str, w.Widget] = {}
        super().__init__(
            [
                self.model_box,
                self.file_box,
                self.params_box,
                self.epochs,
                self.batch_size,
                self.learning_rate,
                self.split,
                self.executor,
                self.kernel,
                self.workers,
                self.folds,
                self.cluster,
                self.plot_style,
                w.HBox([self.train_button, self.status]),
            ]
        )
        self.model_box.observe(lambda _: self._show_params(), names="value")
        self.train_button.on_click(lambda _: self.train())
        self._show_params()

    def _show_params(self) -> None:
        model = self.model_box.value
        self.file_box.layout.display = "" if model == "file" else "none"
        params = BUILTIN_PARAMS.get(model, {})
        self._fields = {k: _field(k, default, text) for k, (default, text) in params.items()}
        self.params_box.children = list(self._fields.values())

    def model_config(self) -> dict[str, Any]:
        """The ``model``, ``training`` and ``cluster`` parts of a TrainSpec, plus
        ``executor`` and ``kernel_name`` (None for the default)."""
        if self.model_box.value == "file":
            if not self.file_box.value.strip():
                raise ValueError("model file: give the path of a file defining model(idim)")
            model: dict[str, Any] = {"file": self.file_box.value.strip(), "params": {}}
        else:
            params = {k: _value(k, f) for k, f in self._fields.items()}
            model = {"name": self.model_box.value, "params": params}
        train_end, validation_end = self.split.value
        executor = None if self.executor.value == "default" else self.executor.value
        training: dict[str, Any] = {
            "epochs": int(self.epochs.value),
            "learning_rate": float(self.learning_rate.value),
        }
        if int(self.batch_size.value) > 0:  # 0: 1024, fewer for a small training split
            training["batch_size"] = int(self.batch_size.value)
        if int(self.workers.value) > 1:
            training["workers"] = int(self.workers.value)
        if int(self.folds.value) > 1:
            training["folds"] = int(self.folds.value)
        if self.plot_style.value != "default":
            training["style"] = self.plot_style.value
        return {
            "model": model,
            "training": training,
            # a scheduler address or "local" as typed; a mapping in YAML flow style
            "cluster": yaml.safe_load(self.cluster.value) if self.cluster.value.strip() else None,
            "split": {
                "train": round(train_end, 6),
                "validation": round(validation_end - train_end, 6),
                "test": round(1.0 - validation_end, 6),
            },
            "executor": executor,
            "kernel_name": self.kernel.value if executor in (None, "kernel") else None,
        }

    def train(self) -> Any:
        """What Train does: call ``on_train`` with :meth:`model_config`."""
        if self.on_train is None:
            self.status.value = "nothing to train: use TrainingStudio, or set on_train"
            return None
        try:
            config = self.model_config()
            result = self.on_train(config)
        except Exception as err:  # shown to the user next to the button, not lost
            self.status.value = f"<span style='color: var(--jp-error-color1)'>{err}</span>"
            return None
        self.status.value = "submitted"
        return result
