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
from ._experiment_export import export_experiment, export_folds
from .backend import Backend

__all__ = ["BUNDLE_FORMAT", "library_versions", "write_bundle", "write_fold_bundle"]

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
    *,
    report: Path | None = None,
) -> Path:
    """Write the bundle folder ``target`` atomically; return its path. ``report``: the
    run's ``report.json``, copied into the bundle."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        native = backend.save_native(partial)
        onnx = "model.onnx" if backend.export_onnx(partial / "model.onnx") else None
        dataset = spec.dataset
        classes = list(dataset.labels) if dataset.task != "regression" else []
        exports = export_experiment(partial, backend, layout, plan, classes) if onnx else None
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
            "exports": exports,
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
        _complete(partial, target, manifest, report)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return target


#: files of a torch model's builder, relative to its bundle
_BUILDER_FILES = ("source", "program")


def write_fold_bundle(
    target: Path,
    name: str,
    spec: TrainSpec,
    folds: list[Path],
    metrics: dict[str, Any],
    fold_metrics: list[dict[str, Any]],
    *,
    report: Path | None = None,
) -> Path:
    """Write the bundle of a k-fold run atomically: each fold's bundle as ``fold{i}/``,
    and a manifest of fold 0's fields (its ``native``, ``onnx`` and layout, so a reader
    that knows no folds still loads a model) plus ``folds``: ``{"k", "by", "models":
    [{"fold", "native", "format", "onnx", "metrics", "exports"}]}``, paths relative to
    ``target``; ``report``: the combined (out-of-fold) ``report.json``, copied in."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        models, manifests = [], []
        for index, source in enumerate(folds):
            shutil.copytree(source, partial / f"fold{index}")
            fold = json.loads((partial / f"fold{index}" / "manifest.json").read_text())
            manifests.append(fold)
            onnx = fold.get("onnx")
            models.append(
                {
                    "fold": index,
                    "native": f"fold{index}/{fold['native']}",
                    "format": fold.get("format"),
                    "onnx": f"fold{index}/{onnx}" if onnx else None,
                    "metrics": fold_metrics[index]["metrics"],
                    "exports": _in_fold(partial, index, fold.get("exports")),
                }
            )
        first = manifests[0]
        builder = first.get("builder")
        if isinstance(builder, dict):  # fold 0's model files, seen from the top level
            builder = {
                key: f"fold0/{value}" if key in _BUILDER_FILES else value
                for key, value in builder.items()
            }
        manifest = {
            **first,
            "name": name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "native": models[0]["native"],
            "onnx": models[0]["onnx"],
            **({"builder": builder} if builder is not None else {}),
            "exports": export_folds(partial, spec.dataset, spec.training.fold_by, manifests),
            "dataset": spec.dataset.to_dict(),
            "model": spec.model.to_dict(),
            "training": spec.training.model_dump(mode="json"),
            "metrics": metrics,
            "history": [],
            "folds": {"k": len(folds), "by": spec.training.fold_by, "models": models},
        }
        _complete(partial, target, manifest, report)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return target


def _in_fold(folder: Path, index: int, exports: Any) -> Any:
    """A fold's ``exports`` with its file names relative to the k-fold bundle."""
    if not isinstance(exports, dict):
        return exports
    return {
        key: f"fold{index}/{value}"
        if isinstance(value, str) and (folder / f"fold{index}" / value).is_file()
        else value
        for key, value in exports.items()
    }


def _complete(partial: Path, target: Path, manifest: dict[str, Any], report: Path | None) -> None:
    """Write the manifest (and copy the report) into ``partial``, then put it in place of
    ``target``: the last step, so a bundle folder is there only when complete."""
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=1, default=_jsonable))
    if report is not None and report.is_file():
        shutil.copyfile(report, partial / "report.json")
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)


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
