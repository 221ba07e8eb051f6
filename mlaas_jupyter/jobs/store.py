"""`JobStore`: jobs, their events and their logs in one SQLite file.

The store outlives the server: a new :class:`JobStore` on the same file sees every
job, event and log line written before. One connection is shared by all threads and
guarded by a lock; the file is in WAL mode so that a second process (a notebook's
embedded job manager beside the Jupyter server) can read and write it too, and its log
is checkpointed by a thread of its own (:mod:`._wal`), not by the commit that fills it.
Each job records the process that created it (``host:pid``) so that
:meth:`mark_interrupted` only marks the jobs of processes that are gone; a lost job
that is resumed (:meth:`reopen`) becomes the resuming process's.

The tables, their schema versions and migrations are in :mod:`._store_schema`; the
default locations and the owner check in :mod:`._store_env`.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import Conflict, NotFound, SpecError
from ._store_env import default_runs_dir, default_store_path, owner_alive, this_owner
from ._store_schema import (
    FIELDS,
    create_tables,
    insert_event,
    insert_job,
    save_job,
    select_jobs,
    to_job,
)
from ._store_schema import SCHEMA_VERSION as SCHEMA_VERSION
from ._sweep_store import SweepTables
from ._wal import WalCheckpointer
from .models import FINISHED, KINDS, TRANSITIONS, Job, JobEvent, JobState

__all__ = [
    "INTERRUPTED",
    "JobNotFound",
    "JobStateError",
    "JobStore",
    "default_runs_dir",
    "default_store_path",
    "owner_alive",
]

#: error of the running jobs found at startup
INTERRUPTED = "the server stopped while the job was running"
#: error of the queued jobs found at startup
INTERRUPTED_QUEUED = "the server stopped before the job started"


class JobNotFound(NotFound):
    """No job has this id."""


class JobStateError(Conflict):
    """The job is not in a state that allows this."""


class JobStore(SweepTables):
    """Jobs, events and logs in the SQLite file ``path`` (created with its folder), and
    the records of sweeps (the methods of :class:`._sweep_store.SweepTables`).

    Parameters
    ----------
    path
        The database file; ``":memory:"`` for a throw-away store.
    log_limit
        Characters of log text kept per job (the newest ones).
    """

    def __init__(self, path: str | Path, *, log_limit: int = 1_000_000) -> None:
        self.path = str(path)
        self.log_limit = log_limit
        self.owner = this_owner()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._tx() as conn:
            create_tables(conn)
        self._checkpointer: WalCheckpointer | None = None
        if self.path != ":memory:":  # checkpoints off the caller's thread (an event loop)
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = WalCheckpointer(self.path)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: other processes wait their turn)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _load(self, conn: sqlite3.Connection, job_id: str) -> Job:
        row = conn.execute("SELECT data FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        return to_job(row[0])

    # -- jobs --------------------------------------------------------------------------

    def create(self, job: Job) -> Job:
        """Store a new job (``created`` set to now when 0); returns it."""
        if job.kind not in KINDS:
            raise SpecError("kind", f"unknown job kind {job.kind!r}; allowed: {', '.join(KINDS)}")
        if not job.created:
            job.created = time.time()
        with self._tx() as conn:
            try:
                insert_job(conn, job, self.owner)
            except sqlite3.IntegrityError as err:
                raise JobStateError(f"a job with id {job.id!r} exists already") from err
        return job

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; :class:`JobNotFound` when there is none."""
        with self._lock:
            return self._load(self._conn, job_id)

    def delete(self, job_id: str) -> Job:
        """Remove a finished job with its events and logs; returns it as it was.

        Raises
        ------
        JobNotFound
            When there is no such job.
        JobStateError
            While it is queued or running (cancel it first).
        """
        with self._tx() as conn:
            job = self._load(conn, job_id)
            if job.state not in FINISHED:
                raise JobStateError(
                    f"job {job_id} is {job.state.value}; cancel it before deleting it"
                )
            for table, column in (("events", "job_id"), ("logs", "job_id"), ("jobs", "id")):
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (job_id,))
        return job

    def list(
        self,
        state: JobState | str | Collection[JobState | str] | None = None,
        limit: int | None = None,
        name: str | None = None,
        kind: str | None = None,
    ) -> list[Job]:
        """Jobs, newest first, optionally only those in ``state`` (one or several),
        named ``name`` or of ``kind`` (train, predict); at most ``limit``."""
        sql, args = select_jobs(state, limit, name, kind)
        with self._lock:
            return [to_job(row[0]) for row in self._conn.execute(sql, args)]

    def update(self, job_id: str, **changes: Any) -> Job:
        """Change fields of a job (not ``id`` nor ``state``: see :meth:`set_state`)."""
        bad = sorted(set(changes) - (FIELDS - {"id", "state"}))
        if bad:
            raise ValueError(f"cannot update job field(s) {', '.join(bad)}")
        with self._tx() as conn:
            job = self._load(conn, job_id)
            for key, value in changes.items():
                setattr(job, key, value)
            save_job(conn, job)
        return job

    def set_state(self, job_id: str, new_state: JobState | str, error: str | None = None) -> Job:
        """Move a job to ``new_state`` (one of :data:`TRANSITIONS`), setting ``started``,
        ``finished`` and ``error``; :class:`JobStateError` when the change is not allowed."""
        new_state = JobState(new_state)
        with self._tx() as conn:
            job = self._load(conn, job_id)
            self._transition(job, new_state, error)
            save_job(conn, job)
        return job

    @staticmethod
    def _transition(job: Job, new_state: JobState, error: str | None) -> None:
        if new_state not in TRANSITIONS[job.state]:
            raise JobStateError(
                f"job {job.id} is {job.state.value} and cannot become {new_state.value}"
            )
        now = time.time()
        job.state = new_state
        if new_state is JobState.RUNNING:
            job.started = now
        if new_state in FINISHED:
            job.finished = now
        if error is not None:
            job.error = error

    def reopen(self, job_id: str, spec: dict[str, Any] | None = None) -> Job:
        """Move a lost job back to ``queued`` to run again (in this process: it becomes
        the job's owner), its ``finished`` and ``error`` cleared and, when given, its
        spec replaced; its events stay. :class:`JobStateError` unless it is lost."""
        with self._tx() as conn:
            job = self._load(conn, job_id)
            if job.state is not JobState.LOST:
                raise JobStateError(
                    f"job {job_id} is {job.state.value}; only a lost job can be resumed"
                )
            self._transition(job, JobState.QUEUED, None)
            job.finished, job.error = None, None
            if spec is not None:
                job.spec = spec
            save_job(conn, job)
            conn.execute("UPDATE jobs SET owner = ? WHERE id = ?", (self.owner, job_id))
        return job

    def orphaned(self, job_id: str) -> bool:
        """Whether the process that created the job is gone (or is this process)."""
        with self._lock:
            row = self._conn.execute("SELECT owner FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        return not owner_alive(str(row[0]))

    def mark_interrupted(self) -> builtins.list[Job]:
        """At startup: running and queued jobs whose process is gone become ``lost``
        (each with a ``state`` event); returns them."""
        lost = []
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT data, owner FROM jobs WHERE state IN (?, ?)",
                (JobState.RUNNING.value, JobState.QUEUED.value),
            ).fetchall()
            for data, owner in rows:
                if owner_alive(owner):
                    continue
                job = to_job(data)
                error = INTERRUPTED if job.state is JobState.RUNNING else INTERRUPTED_QUEUED
                self._transition(job, JobState.LOST, error)
                insert_event(conn, job, {"type": "state", "state": "lost", "error": error})
                save_job(conn, job)
                lost.append(job)
        return lost

    # -- events ------------------------------------------------------------------------

    def append_event(self, job_id: str, event: dict[str, Any]) -> JobEvent:
        """Store the next event of a job (``seq`` 1, 2, ...); ``progress`` and ``epoch``
        events also become the job's ``progress``."""
        with self._tx() as conn:
            job = self._load(conn, job_id)
            stored = insert_event(conn, job, event)
            save_job(conn, job)
        return stored

    def events(
        self, job_id: str, since: int = 0, limit: int | None = None
    ) -> builtins.list[JobEvent]:
        """The events of a job with ``seq > since``, in order; at most ``limit``."""
        sql = (
            "SELECT seq, time, type, payload FROM events WHERE job_id = ? AND seq > ? ORDER BY seq"
        )
        if limit is not None:
            sql += f" LIMIT {max(0, int(limit))}"
        with self._lock:
            self._load(self._conn, job_id)
            rows = self._conn.execute(sql, (job_id, int(since))).fetchall()
        return [JobEvent(job_id, seq, t, kind, json.loads(p)) for seq, t, kind, p in rows]

    # -- logs --------------------------------------------------------------------------

    def append_log(self, job_id: str, text: str) -> None:
        """Add stdout/stderr text of a job; only the last ``log_limit`` characters stay."""
        if not text:
            return
        with self._tx() as conn:
            self._load(conn, job_id)
            conn.execute(
                "INSERT INTO logs (job_id, text) VALUES (?, substr(?, ?)) "
                "ON CONFLICT (job_id) DO UPDATE SET text = substr(text || excluded.text, ?)",
                (job_id, text, -self.log_limit, -self.log_limit),
            )

    def logs(self, job_id: str) -> str:
        """The log text of a job ("" when it wrote nothing)."""
        with self._lock:
            self._load(self._conn, job_id)
            row = self._conn.execute("SELECT text FROM logs WHERE job_id = ?", (job_id,)).fetchone()
        return str(row[0]) if row else ""
