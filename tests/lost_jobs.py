"""A job as a killed process leaves it in the store, for the tests of ``resume``.

``kill -9`` of a server (or of a notebook's kernel that ran the core) stops everything
at once: its jobs' rows stay ``running`` with their events so far, owned by a process
that is gone. The next core to open the store marks them ``lost`` (``recover()``).
The rows written here name as their owner a process that has exited.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from mlaas_jupyter.jobs import Job, JobState, JobStore

__all__ = ["leave_running"]


def leave_running(
    store_path: str | Path, spec: dict[str, Any], name: str, runs_dir: str | Path
) -> str:
    """Write a ``running`` job of ``spec`` with its first events into the store file, as
    a killed process leaves it; returns its id."""
    job_id = uuid.uuid4().hex[:12]
    run_dir = Path(runs_dir) / job_id
    run_dir.mkdir(parents=True, exist_ok=True)
    kind = "predict" if "predict" in spec else "train"
    store = JobStore(store_path)
    store.owner = _dead_owner()
    try:
        job = Job(job_id, name, JobState.QUEUED, spec, "local", run_dir=str(run_dir), kind=kind)
        store.create(job)
        store.append_event(job_id, {"type": "state", "state": "queued"})
        store.set_state(job_id, JobState.RUNNING)
        store.append_event(job_id, {"type": "state", "state": "running"})
        store.append_event(job_id, {"type": "start", "run_dir": str(run_dir), "name": name})
    finally:
        store.close()
    return job_id


def _dead_owner() -> str:
    """``host:pid`` of a process that has exited (a child that ran and was reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return f"{socket.gethostname()}:{process.pid}"
