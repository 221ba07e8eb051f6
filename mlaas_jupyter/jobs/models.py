"""What a job is: its states, its record, and the events it emits."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["FINISHED", "KINDS", "TRANSITIONS", "Job", "JobEvent", "JobState", "kind_of"]

#: what a job does: train a model, or score files with one (a batch prediction)
KINDS = ("train", "predict")


class JobState(enum.StrEnum):
    """Lifecycle: queued -> running -> succeeded | failed | cancelled.

    Queued and running jobs whose process stopped (a server restart, a dead kernel's
    notebook) become lost. A lost job is not the end: ``resume`` moves the same job
    lost -> queued (its id, events and history kept) and runs it again in its run folder
    from its last checkpoint. Succeeded, failed and cancelled are final: ``resubmit``
    makes a new job that continues a failed or cancelled one."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"


FINISHED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.LOST})

#: the allowed state changes; anything else is a bug or a race and is refused
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset(
        {JobState.RUNNING, JobState.CANCELLED, JobState.FAILED, JobState.LOST}
    ),
    JobState.RUNNING: frozenset(
        {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.LOST}
    ),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
    JobState.LOST: frozenset({JobState.QUEUED}),  # resumed in place
}


def kind_of(spec: dict[str, Any]) -> str:
    """The kind of a job spec: ``predict`` for ``{"predict": ...}``, else ``train``."""
    return "predict" if "predict" in spec else "train"


@dataclass
class Job:
    """One job (a training or a batch prediction) as stored and as the REST API shows it."""

    id: str
    name: str
    state: JobState
    #: TrainSpec.to_dict(), or PredictSpec.to_dict() (``{"predict": {...}}``)
    spec: dict[str, Any]
    executor: str  # "kernel" | "dask" | "local"
    kernel_name: str | None = None
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    run_dir: str | None = None
    bundle: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)  # last epoch/progress event
    events: int = 0  # number of events so far
    resumed_from: str | None = None  # id of the lost job this one continues
    kind: str = "train"  # one of KINDS
    outputs: list[str] = field(default_factory=list)  # files a prediction job wrote
    sweep: str | None = None  # id of the sweep this job is a trial of

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data


@dataclass(frozen=True)
class JobEvent:
    """One event of a job, numbered from 1 in the order they happened."""

    job_id: str
    seq: int
    time: float
    type: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "seq": self.seq,
            "time": self.time,
            "type": self.type,
            **self.data,
        }
