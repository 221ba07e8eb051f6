"""One sweep driven by this process (:class:`SweepRun`), and how its trials are scored.

A trial's value is its best epoch metric (per direction: the epoch the model would be
chosen at), or the job's final metric of that name when it reported no epoch with it
(a BDT); the sweep's best trial is the succeeded trial with the best value.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..jobs.models import Job, JobEvent
from ..specs.sweep import SweepRequest
from ._sweep_study import quiet_optuna

if TYPE_CHECKING:
    import optuna

__all__ = ["SweepRun", "best_trial", "epoch_best", "final_value", "tell"]


@dataclass
class SweepRun:
    """A sweep driven by this process: its record, study and trials in flight."""

    record: dict[str, Any]
    study: optuna.Study
    space: dict[str, Any]
    base: dict[str, Any]
    request: SweepRequest
    events: asyncio.Queue[tuple[JobEvent, Job]] = field(default_factory=asyncio.Queue)
    #: job id -> (Optuna trial, index in record["trials"])
    flying: dict[str, tuple[Any, int]] = field(default_factory=dict)
    pruning: set[str] = field(default_factory=set)
    #: trials to ask for (fewer than trials_total when a lost sweep is resumed)
    budget: int = 0
    asked: int = 0
    cancelled: bool = False
    task: asyncio.Task[None] | None = None
    loop: asyncio.AbstractEventLoop | None = None


def epoch_best(direction: str, entry: dict[str, Any]) -> float:
    """The best of a trial's epoch values so far."""
    values = entry["intermediate"].values()
    return float(max(values) if direction == "maximize" else min(values))


def final_value(metric: str, job: Job) -> float | None:
    """The job's final ``metric`` (or the test metric of that name), when it has one."""
    for key in (metric, metric.removeprefix("val_")):
        value = (job.metrics or {}).get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def tell(run: SweepRun, trial: Any, value: float | None, state: str) -> None:
    """Tell the study how a trial ended (failed, cancelled and lost ones: FAIL)."""
    from optuna.trial import TrialState

    with quiet_optuna():
        if state == "succeeded" and value is not None:
            run.study.tell(trial, value)
        elif state == "pruned":
            run.study.tell(trial, state=TrialState.PRUNED)
        else:
            run.study.tell(trial, state=TrialState.FAIL)


def best_trial(record: dict[str, Any]) -> dict[str, Any] | None:
    """The record's ``best``: the succeeded trial with the best value (no model yet)."""
    succeeded = [t for t in record["trials"] if t["state"] == "succeeded"]
    if not succeeded:
        return None
    pick = max if record["direction"] == "maximize" else min
    best = pick(succeeded, key=lambda t: t["value"])
    return {
        "number": best["number"],
        "job_id": best["job_id"],
        "value": best["value"],
        "params": best["params"],
        "model": None,
        "version": None,
    }
