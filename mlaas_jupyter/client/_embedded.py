"""The embedded mode of :class:`~mlaas_jupyter.client.Client`: jobs run in this process.

When no Jupyter server with the ``mlaas`` extension answers, the client runs the jobs
itself: a :class:`~mlaas_jupyter.jobs.manager.JobManager` with the local executor, on
an asyncio event loop of its own in a daemon thread, with the same job store as the
server (so the jobs show up there later). There is one per store file, shared by all
the clients of this process, stopped at exit; its running jobs then become lost. A
job's artefacts are read from its run folder, in place of the REST endpoint.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from ..errors import MlaasError

__all__ = ["Embedded", "read_artefact"]

_T = TypeVar("_T")


class Embedded:
    """A JobManager on an event loop of its own, in a daemon thread; one per store."""

    _instances: ClassVar[dict[str, Embedded]] = {}
    _lock = threading.Lock()

    def __init__(self, store_path: Path, runs_dir: Path) -> None:
        from ..jobs.executors.local import LocalExecutor
        from ..jobs.manager import JobManager
        from ..jobs.store import JobStore

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="mlaas-jobs", daemon=True)
        self.thread.start()
        self.store = JobStore(store_path)
        self.manager = JobManager(self.store, {"local": LocalExecutor()}, runs_dir=runs_dir)
        self.manager.recover()
        atexit.register(self.close)

    @classmethod
    def get(cls, store_path: Path, runs_dir: Path) -> Embedded:
        key = str(store_path.resolve())
        with cls._lock:
            if key not in cls._instances:
                cls._instances[key] = cls(store_path, runs_dir)
            return cls._instances[key]

    def call(self, coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the running jobs (they become lost) and the loop."""
        if not self.loop.is_running():
            return
        try:
            self.call(self.manager.shutdown(), timeout=60)
        finally:
            atexit.unregister(self.close)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            if not self.thread.is_alive():
                self.loop.close()
            self.store.close()
            with self._lock:
                self._instances.pop(str(Path(self.store.path).resolve()), None)


def read_artefact(run_dir: str | None, job_id: str, path: str) -> bytes:
    """The file ``path`` of a job's run folder (what the REST artefacts endpoint serves);
    :class:`MlaasError` when there is none, or when ``path`` leads out of the folder."""
    if not run_dir:
        raise MlaasError(f"job {job_id} has no run folder yet")
    root = Path(run_dir).resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise MlaasError(f"job {job_id} has no artefact {path!r}")
    return target.read_bytes()
