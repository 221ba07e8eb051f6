"""Run folders: what spec a run trained, and which run ``--resume`` continues.

Each run folder holds ``run.json``, written when the run starts: the spec's YAML form
and its key (:func:`spec_key`), a hash of the spec without the settings that do not
change what is trained (where the run is written, how fast the data are read, how many
epochs: a run may be resumed to train longer). ``training.resume`` without a run folder
continues the latest run of the same key under ``training.output``
(:func:`latest_resumable`), or says that there is nothing to resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from ..errors import NotFound
from ..specs.training import TrainSpec
from .comparison import IGNORED_FIELDS

__all__ = ["RUN_RECORD", "checkpoint_epoch", "latest_resumable", "spec_key", "write_run_record"]

#: the record of a run folder: its spec, the spec's key and when the run started
RUN_RECORD = "run.json"
#: more settings that a resumed run may change (besides the comparison's ignored ones)
_RESUMABLE_CHANGES = frozenset({"training.epochs", "training.early_stopping", "cluster"})


def spec_key(spec: TrainSpec) -> str:
    """A hash of what ``spec`` trains: equal for specs that differ only in the settings
    of :data:`~.comparison.IGNORED_FIELDS`, the epochs, early stopping or the cluster."""
    data: dict[str, Any] = spec.to_dict()
    for dotted in IGNORED_FIELDS | _RESUMABLE_CHANGES:
        *parents, last = dotted.split(".")
        part = data
        for name in parents:
            part = part.get(name) or {}
        if isinstance(part, dict):
            part.pop(last, None)
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_run_record(folder: Path, spec: TrainSpec) -> None:
    """``run.json`` of a run that starts in ``folder``; a resumed run keeps its own."""
    record = folder / RUN_RECORD
    if record.exists():
        return
    partial = record.with_name(record.name + ".partial")
    partial.write_text(
        json.dumps(
            {"spec_key": spec_key(spec), "started": time.time(), "spec": spec.to_dict()},
            indent=1,
            default=str,
        )
    )
    os.replace(partial, record)


def checkpoint_epoch(folder: str | Path) -> int | None:
    """The last epoch checkpointed in run folder ``folder`` (None: none was); of a
    k-fold run, the last of its folds' (``fold{i}/checkpoint``)."""
    folder = Path(folder)
    epochs = []
    for part in (folder, *sorted(folder.glob("fold[0-9]*"))):
        try:
            state = json.loads((part / "checkpoint" / "progress.json").read_text())
            epochs.append(int(state["epoch"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return max(epochs) if epochs else None


def _started(folder: Path, key: str) -> float | None:
    """When the run in ``folder`` started, if it trained the spec of ``key``."""
    try:
        record = json.loads((folder / RUN_RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("spec_key") != key:
        return None
    return float(record.get("started") or 0.0)


def latest_resumable(spec: TrainSpec) -> Path:
    """The run folder under ``training.output`` that ``training.resume`` continues: the
    latest run of this spec with a checkpoint.

    Raises
    ------
    NotFound
        When no run of this spec has a checkpoint, or the latest one has finished.
    """
    output, key = Path(spec.training.output), spec_key(spec)
    runs = []
    if output.is_dir():
        for folder in output.iterdir():
            started = _started(folder, key) if folder.is_dir() else None
            if started is not None and checkpoint_epoch(folder) is not None:
                runs.append((started, folder.name, folder))
    if not runs:
        raise NotFound(
            f"nothing to resume: no run of this spec under {output}/ has a checkpoint "
            "(a run checkpoints after each epoch); train without --resume (training.resume) "
            "to start one"
        )
    latest = max(runs)[2]
    if (latest / "bundle" / "manifest.json").is_file():
        raise NotFound(
            f"nothing to resume: the latest run of this spec, {latest}, has finished "
            f"(its bundle is {latest / 'bundle'}); train without --resume (training.resume) "
            "to start another"
        )
    return latest
