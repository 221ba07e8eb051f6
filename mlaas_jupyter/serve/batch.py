"""Batch prediction as a job: score ROOT files with a bundle into friend trees.

A prediction job's spec is ``{"predict": {...}}`` (a :class:`PredictSpec`); the job
system runs it like a training job (local subprocess, kernel or dask) through
:func:`run_prediction`. Each friend tree is written to a temporary name and renamed
when complete (:func:`~mlaas_jupyter.serve.friend.write_friend_tree`), so a failed or
cancelled job never leaves a half-written output under the final name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..stream._validate import as_mapping, as_str, as_str_list, check_keys

__all__ = ["PredictSpec", "is_prediction", "run_prediction"]

_FIELDS = ["bundle", "files", "tree", "output", "prefix", "step_size"]


def is_prediction(spec: Mapping[str, Any]) -> bool:
    """Whether a job spec is a prediction (``{"predict": ...}``) rather than a training."""
    return "predict" in spec


@dataclass(frozen=True)
class PredictSpec:
    """What a prediction job scores and where the friend trees go.

    ``output`` is a folder: the friend tree of ``x.root`` is ``<output>/x_<prefix>.root``.
    """

    bundle: str
    files: tuple[str, ...]
    output: str
    tree: str | None = None
    prefix: str = "score"
    step_size: str | int = "64 MB"

    @classmethod
    def from_dict(cls, data: Any, base_dir: str | Path | None = None) -> PredictSpec:
        data = as_mapping("predict", data)
        check_keys("predict", data, _FIELDS)
        for key in ("bundle", "files", "output"):
            if key not in data:
                raise SpecError(f"predict.{key}", "missing")
        base = Path(base_dir) if base_dir is not None else None

        def place(path: str) -> str:
            return str(base / path) if base is not None and not Path(path).is_absolute() else path

        files = data["files"]
        files = [files] if isinstance(files, str) else files
        step = data.get("step_size", "64 MB")
        if not isinstance(step, str | int) or isinstance(step, bool):
            raise SpecError("predict.step_size", f"entries or bytes ('64 MB'), got {step!r}")
        tree = data.get("tree")
        return cls(
            bundle=place(as_str("predict.bundle", data["bundle"])),
            files=tuple(place(f) for f in as_str_list("predict.files", files)),
            output=place(as_str("predict.output", data["output"])),
            tree=None if tree is None else as_str("predict.tree", tree),
            prefix=as_str("predict.prefix", data.get("prefix", "score")),
            step_size=step,
        )

    def to_dict(self) -> dict[str, Any]:
        return {"predict": {**asdict(self), "files": list(self.files)}}

    def output_for(self, source: str) -> Path:
        return Path(self.output) / f"{Path(source).stem}_{self.prefix}.root"


def run_prediction(
    spec: Mapping[str, Any], emit: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Score every file of ``spec`` (a ``{"predict": ...}`` mapping); returns the
    ``done`` event (outputs and entries)."""
    from ..stream.sources import resolve_files
    from .bundle import load_bundle
    from .friend import write_friend_tree

    task = PredictSpec.from_dict(spec["predict"])
    files = resolve_files(list(task.files))
    bundle = load_bundle(task.bundle)
    emit({"type": "start", "bundle": task.bundle, "model": bundle.name, "files": len(files)})
    started, entries, outputs = time.perf_counter(), 0, []
    for done, source in enumerate(files, 1):
        out = task.output_for(source)
        entries += write_friend_tree(bundle, source, out, task.tree, task.prefix, task.step_size)
        outputs.append(str(out))
        seconds = time.perf_counter() - started
        emit(
            {
                "type": "progress",
                "file": source,
                "output": str(out),
                "batch": done,
                "batches": len(files),
                "events": entries,
                "events_per_s": round(entries / seconds, 1) if seconds else 0.0,
            }
        )
    metrics = {"entries": entries, "files": len(files), "seconds": time.perf_counter() - started}
    event = {"type": "done", "outputs": outputs, "metrics": metrics}
    emit(event)
    return event
