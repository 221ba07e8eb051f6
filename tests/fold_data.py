"""A small two-class dataset with NanoAOD's integer ``event`` branch, for k-fold tests,
and a 2-fold torch MLP trained on it once per session (:func:`fold_run`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot

from mlaas_jupyter.examples import make_events
from mlaas_jupyter.specs.training import TrainSpec
from mlaas_jupyter.train.runner import TrainResult, train

__all__ = ["TRAINING", "FoldRun", "fold_run", "fold_spec", "write_fold_dataset"]

TRAINING: dict[str, Any] = {
    "epochs": 2,
    "batch_size": 256,
    "learning_rate": 3e-3,
    "device": "cpu",
    "early_stopping": None,
    "loader": "thread",
}


def write_fold_dataset(folder: Path, events: int = 1500) -> dict[str, Any]:
    """Write ``background.root`` and ``signal.root`` (tree ``Events``: MET_pt, MET_phi,
    nJet, a uint64 ``event`` of shuffled numbers and a float ``weight``); return the
    dataset mapping of a spec over them."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, label in enumerate(("background", "signal")):
        rng = np.random.default_rng([7, index])
        made = make_events(events, label == "signal", rng)
        columns = {
            "MET_pt": made["MET_pt"],
            "MET_phi": made["MET_phi"],
            "nJet": np.asarray([len(j) for j in made["Jet"].pt.tolist()], dtype=np.int32),
            "event": (rng.permutation(events) * 7 + 1_000_001 + index).astype(np.uint64),
            "weight": np.linspace(0.5, 1.5, events).astype(np.float32),
        }
        with uproot.recreate(folder / f"{label}.root") as handle:
            handle["Events"] = columns
    return {
        "tree": "Events",
        "classes": {
            "background": [str(folder / "background.root")],
            "signal": [str(folder / "signal.root")],
        },
        "branches": ["MET_*"],
        "split": {"train": 0.6, "validation": 0.2, "test": 0.2},
        "seed": 3,
    }


def fold_spec(dataset: dict[str, Any], output: Path, **training: Any) -> TrainSpec:
    """A training spec of a torch MLP over ``dataset`` with these training settings."""
    return TrainSpec.from_dict(
        {
            "dataset": dataset,
            "model": {"name": "mlp", "params": {"sizes": [8]}},
            "training": {**TRAINING, "output": str(output), **training},
        }
    )


@dataclass
class FoldRun:
    """A finished 2-fold run (fold_by: event) and what it reported."""

    dataset: dict[str, Any]
    result: TrainResult
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        return [self.dataset["classes"][k][0] for k in ("background", "signal")]


_RUNS: dict[str, FoldRun] = {}


def fold_run(tmp_path_factory: pytest.TempPathFactory) -> FoldRun:
    """The 2-fold torch MLP run on :func:`write_fold_dataset`, trained once a session."""
    key = str(tmp_path_factory.getbasetemp())
    if key not in _RUNS:
        root = tmp_path_factory.mktemp("fold-run")
        dataset = write_fold_dataset(root / "data")
        events: list[dict[str, Any]] = []

        def sink(event: dict[str, Any]) -> None:
            json.dumps(event)  # every event is JSON-serialisable
            events.append(event)

        spec = fold_spec(dataset, root / "runs", folds=2, fold_by="event", name="folded")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLAAS_CACHE_DIR", str(root / "cache"))
            result = train(spec, on_event=sink, run_dir=root / "run")
        _RUNS[key] = FoldRun(dataset, result, events)
    return _RUNS[key]
