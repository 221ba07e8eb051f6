"""The executor contract: where and how a job's training runs.

An executor runs one job at a time per :meth:`Executor.run` call, reporting every
training event through ``emit`` and returning the final ``done`` event's data, or
raising :class:`JobFailed` with a message saying what went wrong and where.
The manager owns states, the queue and the store; executors only run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..models import Job

__all__ = ["EmitEvent", "Executor", "JobCancelled", "JobFailed"]

EmitEvent = Callable[[dict[str, Any]], None]


class JobFailed(Exception):
    """The job ended with an error; ``str()`` says what happened (for the user)."""


class JobCancelled(Exception):
    """The job stopped because it was cancelled."""


class Executor(Protocol):
    """Runs jobs somewhere: a kernel, a dask cluster, a local subprocess."""

    name: str

    async def run(self, job: Job, emit: EmitEvent) -> dict[str, Any]:
        """Run ``job`` to the end; return the ``done`` event (bundle, metrics)."""
        ...

    async def cancel(self, job: Job) -> None:
        """Stop ``job`` if it is running here; ``run`` then raises JobCancelled."""
        ...
