"""The executor contract: where and how a job's training runs.

An executor runs one job at a time per :meth:`Executor.run` call, reporting every
training event through ``emit`` and returning the final ``done`` event's data, or
raising :class:`JobFailed` with a message saying what went wrong and where.
The manager owns states, the queue and the store; executors only run.

Executors are plug-ins: a class of the entry-point group ``mlaas_jupyter.executors``
(see :func:`mlaas_jupyter.jobs.executors.executor_classes`), built as
``cls(parent=<a Configurable or None>, **traits)``. Their settings are configurable
traits, so ``c.DaskExecutor.scheduler = "tcp://..."`` in a Jupyter config file
reaches the executor its application builds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from traitlets.config import LoggingConfigurable

from ..models import Job

__all__ = ["EmitEvent", "Executor", "JobCancelled", "JobFailed"]

EmitEvent = Callable[[dict[str, Any]], None]


class JobFailed(Exception):
    """The job ended with an error; ``str()`` says what happened (for the user)."""


class JobCancelled(Exception):
    """The job stopped because it was cancelled."""


class Executor(LoggingConfigurable):
    """Runs jobs somewhere: a kernel, a dask cluster, a local subprocess.

    Subclasses set :attr:`name` (the name jobs choose it by) and implement
    :meth:`run` and :meth:`cancel`; :meth:`close` frees what the executor started.
    """

    #: the name jobs choose the executor by (``job.executor``); the entry point's name
    name = ""

    async def run(self, job: Job, emit: EmitEvent) -> dict[str, Any]:
        """Run ``job`` to the end; return the ``done`` event (bundle, metrics).

        Raises
        ------
        JobFailed
            The job ended with an error; the message is for the user.
        JobCancelled
            The job stopped because :meth:`cancel` was called.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement run()")

    async def cancel(self, job: Job) -> None:
        """Stop ``job`` if it is running here; ``run`` then raises JobCancelled."""
        raise NotImplementedError(f"{type(self).__name__} does not implement cancel()")

    async def close(self) -> None:
        """Free what the executor started (clusters, clients); nothing by default."""
