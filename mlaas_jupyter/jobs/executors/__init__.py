"""Where jobs run: executors are plug-ins found by name.

An executor is a subclass of :class:`~.base.Executor` named by an entry point of the
group ``mlaas_jupyter.executors``; this package declares ``local`` (a subprocess),
``dask`` (a task on a dask cluster) and ``kernel`` (a Jupyter kernel). Another package
adds one by declaring an entry point of its own; nothing here names the plug-ins.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from .base import EmitEvent, Executor, JobCancelled, JobFailed

__all__ = [
    "ENTRY_POINT_GROUP",
    "EmitEvent",
    "Executor",
    "JobCancelled",
    "JobFailed",
    "executor_classes",
]

#: the entry-point group of executor plug-ins
ENTRY_POINT_GROUP = "mlaas_jupyter.executors"

log = logging.getLogger(__name__)


def executor_classes() -> dict[str, type[Executor]]:
    """The installed executor classes by entry-point name.

    A plug-in that cannot be imported, or whose object is not an :class:`Executor`
    subclass, is left out with a warning naming it: one broken package must not take
    the other executors down.
    """
    found: dict[str, type[Executor]] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = point.load()
        except Exception as err:
            log.warning(
                "mlaas: executor plug-in %r (%s) cannot be loaded: %s: %s",
                point.name,
                point.value,
                type(err).__name__,
                err,
            )
            continue
        if not (isinstance(cls, type) and issubclass(cls, Executor)):
            log.warning(
                "mlaas: executor plug-in %r (%s) is not a subclass of %s.Executor; skipped",
                point.name,
                point.value,
                Executor.__module__,
            )
            continue
        found[point.name] = cls
    return found
