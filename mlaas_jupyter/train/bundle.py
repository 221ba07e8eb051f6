"""Writing a trained model as a bundle: a folder with ``manifest.json`` and model files.

The manifest carries everything needed to turn raw events into a prediction:
inputs, new-branch expressions, the feature layout with normalisation constants
and jagged lengths, cuts, task and class names, the training configuration, the
data fingerprint, metrics and library versions.

A bundle is written into a temporary folder and renamed into place only when
complete, so a failed or interrupted run never leaves a bundle that looks valid.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from .._version import __version__
from ..specs.training import TrainSpec
from ..stream.layout import FeatureLayout
from ..stream.plan import DatasetPlan
from ..stream.stats import DatasetStats
from .backend import Backend

__all__ = ["BUNDLE_FORMAT", "library_versions", "write_bundle"]

BUNDLE_FORMAT = 1
_LIBRARIES = (
    "numpy",
    "awkward",
    "uproot",
    "scikit-learn",
    "onnx",
    "onnxruntime",
    "torch",
    "keras",
    "tensorflow-cpu",
)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "mlaas-jupyter": __version__}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def write_bundle(
    target: Path,
    name: str,
    backend: Backend,
    spec: TrainSpec,
    layout: FeatureLayout,
    plan: DatasetPlan,
    stats: DatasetStats,
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
) -> Path:
    """Write the bundle folder ``target`` atomically; return its path."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        native = backend.save_native(partial)
        onnx = "model.onnx" if backend.export_onnx(partial / "model.onnx") else None
        dataset = spec.dataset
        manifest = {
            "bundle_format": BUNDLE_FORMAT,
            "name": name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "task": dataset.task,
            "classes": list(dataset.labels) if dataset.task != "regression" else [],
            "tree": dataset.tree,
            "inputs": _raw_inputs(plan, layout),
            "new_branches": [list(item) for item in dataset.new_branches],
            "cuts": list(dataset.cuts),
            "layout": layout.to_dict(),
            "backend": backend.kind,
            "onnx": onnx,
            **native,
            "dataset": dataset.to_dict(),
            "model": spec.model.to_dict(),
            "training": spec.training.model_dump(mode="json"),
            "data_fingerprint": stats.key,
            "events": {"selected": stats.events_selected, "per_class_split": stats.events},
            "metrics": metrics,
            "history": history,
            "versions": library_versions(),
            "notes": list(getattr(backend, "notes", [])),
        }
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=1, default=_jsonable))
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return target


def _raw_inputs(plan: DatasetPlan, layout: FeatureLayout) -> dict[str, str]:
    """Branches a raw event must provide, with their kinds: the layout's inputs, with
    new branches replaced by what their expressions read."""
    new = {name: expr for name, expr in plan.new_branches}
    needed: dict[str, str] = {}
    pending = list(layout.inputs)
    seen: set[str] = set()
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        if name in new:
            pending.extend(sorted(new[name].names))
        else:
            needed[name] = plan.branches[name].kind
    return needed


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
