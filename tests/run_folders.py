"""Hand-written run folders whose every value is known (comparison tests).

:func:`write_run_folder` writes what a training run leaves behind for a comparison:
``bundle/manifest.json`` (spec, metrics, history) and, unless told otherwise,
``plots/curves.json`` (history, ROC, scores, rejection).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

DATASET: dict[str, Any] = {
    "tree": "Events",
    "classes": {
        "background": {"files": ["/data/bkg_*.root"], "weight": 1.0},
        "signal": {"files": ["/data/sig_*.root"], "weight": 1.0},
    },
    "branches": ["MET_pt", "MET_phi", "nJet"],
    "new_branches": {},
    "cuts": ["nJet >= 2"],
    "normalisation": "standard",
    "seed": 1,
    "step_size": "32 MB",
}
TRAINING: dict[str, Any] = {
    "epochs": 2,
    "learning_rate": 0.001,
    "output": "/runs",
    "loader": "auto",
}
METRICS: dict[str, Any] = {
    "events": 400,
    "loss": 0.5,
    "accuracy": 0.75,
    "auc": 0.8,
    "split": "test",
    "auc_weighted": 0.79,
    "rejection_at_50": 10.0,
    "rejection_at_90": None,
    "best_cut": {"score": 0.6, "signal": 12.0, "background": 30.0, "significance": 2.1},
}
HISTORY: list[dict[str, Any]] = [
    {"epoch": 1, "epochs": 2, "loss": 0.7, "val_loss": 0.65, "val_auc": 0.7},
    {"epoch": 2, "epochs": 2, "loss": 0.6, "val_loss": 0.55, "val_auc": 0.78},
]
ROC: dict[str, Any] = {
    "curves": {"signal": {"fpr": [0.0, 0.1, 0.5, 1.0], "tpr": [0.0, 0.5, 0.9, 1.0], "auc": 0.8}}
}
SCORES: dict[str, Any] = {
    "edges": [0.0, 0.5, 1.0],
    "classes": {"background": [0.8, 0.2], "signal": [0.3, 0.7]},
    "title": "P(signal)",
}
REJECTION: dict[str, Any] = {
    "signal_efficiency": [0.5, 0.9, 1.0],
    "background_rejection": [10.0, 2.0, 1.0],
    "auc": 0.79,
    "signal": "signal",
}


def write_run_folder(
    folder: Path,
    *,
    name: str = "mlp",
    task: str = "binary",
    dataset: dict[str, Any] | None = None,
    model: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    curves: bool = True,
) -> Path:
    """A run folder: the toy spec updated by ``dataset``/``model``/``training``, the
    metrics (``METRICS`` updated by ``metrics``) and, with ``curves``, curves.json
    (a regression's without ROC curves and score distributions)."""
    spec_dataset = {**copy.deepcopy(DATASET), **(dataset or {})}
    history = copy.deepcopy(HISTORY)
    if task == "regression":
        history = [{k: v for k, v in h.items() if k != "val_auc"} for h in history]
    manifest = {
        "name": name,
        "task": task,
        "classes": [] if task == "regression" else ["background", "signal"],
        "backend": "torch",
        "dataset": spec_dataset,
        "model": model or {"name": "mlp", "params": {"sizes": [16]}},
        "training": {**TRAINING, **(training or {})},
        "metrics": {**METRICS, **(metrics or {})},
        "history": history,
    }
    (folder / "bundle").mkdir(parents=True, exist_ok=True)
    (folder / "bundle" / "manifest.json").write_text(json.dumps(manifest))
    if curves:
        data: dict[str, Any] = {"history": history, "roc": {"curves": {}}, "scores": {}}
        if task != "regression":
            data.update(roc=ROC, scores=SCORES, rejection=REJECTION)
        (folder / "plots").mkdir(exist_ok=True)
        (folder / "plots" / "curves.json").write_text(json.dumps(data))
    return folder
