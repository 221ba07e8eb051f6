"""Training jobs: a persistent store, a queue, and executors that run them.

``JobManager`` (on an asyncio loop) submits, queues, runs, cancels and resumes jobs
on executors (``mlaas_jupyter.jobs.executors``: local subprocess, dask, kernel);
``JobStore`` keeps jobs, events and logs in SQLite across restarts.
"""

from __future__ import annotations

from .executors.base import Executor, JobCancelled, JobFailed
from .manager import JobManager
from .models import FINISHED, TRANSITIONS, Job, JobEvent, JobState
from .store import JobNotFound, JobStateError, JobStore, default_runs_dir, default_store_path

__all__ = [
    "FINISHED",
    "TRANSITIONS",
    "Executor",
    "Job",
    "JobCancelled",
    "JobEvent",
    "JobFailed",
    "JobManager",
    "JobNotFound",
    "JobState",
    "JobStateError",
    "JobStore",
    "default_runs_dir",
    "default_store_path",
]
