"""`JobStore`: jobs, their events and their logs in one SQLite file.

The store outlives the server: a new :class:`JobStore` on the same file sees every
job, event and log line written before. One connection is shared by all threads and
guarded by a lock; the file is in WAL mode so that a second process (a notebook's
embedded job manager beside the Jupyter server) can read and write it too. Each job
records the process that created it (``host:pid``) so that :meth:`mark_interrupted`
only marks the jobs of processes that are gone.

Schema versions (``PRAGMA user_version``): 0 is the first one; 1 adds the ``kind``
column of the jobs (``train`` or ``predict``, for filtering). Opening an older file
migrates it in place, in one transaction (other processes wait); rows written by an
older version of this code get their kind from their spec when read.
"""

from __future__ import annotations

import builtins
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..errors import MlaasError, SpecError
from .models import FINISHED, KINDS, TRANSITIONS, Job, JobEvent, JobState, kind_of

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
#: states a ``state`` filter accepts
_STATES = ", ".join(s.value for s in JobState)
_FIELDS = {f.name for f in fields(Job)}
_RESERVED = ("job_id", "seq", "time", "type")
#: ``PRAGMA user_version`` of the current schema
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL,
    created REAL NOT NULL, owner TEXT NOT NULL DEFAULT '', data TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'train');
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL, seq INTEGER NOT NULL, time REAL NOT NULL,
    type TEXT NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (job_id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logs (job_id TEXT PRIMARY KEY, text TEXT NOT NULL);
"""
#: schema version -> the statements that migrate a store of the version before it
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: ("ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'train'",),
}


class JobNotFound(KeyError, MlaasError):
    """No job has this id (a 404 for the REST API)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "job not found"


class JobStateError(MlaasError):
    """The job is not in a state that allows this (a 409 for the REST API)."""


def _data_dir() -> Path:
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "mlaas"


def default_store_path() -> Path:
    """``$MLAAS_JOB_STORE``, else ``<jupyter data dir>/mlaas/jobs.sqlite``."""
    env = os.environ.get("MLAAS_JOB_STORE")
    return Path(env) if env else _data_dir() / "jobs.sqlite"


def default_runs_dir() -> Path:
    """``$MLAAS_RUNS_DIR``, else ``<jupyter data dir>/mlaas/runs`` (one folder per job)."""
    env = os.environ.get("MLAAS_RUNS_DIR")
    return Path(env) if env else _data_dir() / "runs"


def _this_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    """Whether the process ``host:pid`` that owns a job is still running (and is not us).

    A job of this very process counts as not alive: a new store or manager in the
    same process means the one that ran it is gone. Another host cannot be checked
    and counts as gone (a restarted container gets a new host name).
    """
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _to_job(data: str) -> Job:
    raw = json.loads(data)
    values = {k: v for k, v in raw.items() if k in _FIELDS}
    values["state"] = JobState(values["state"])
    if "kind" not in values:  # written before jobs had a kind
        values["kind"] = kind_of(values.get("spec") or {})
    return Job(**values)


class JobStore:
    """Jobs, events and logs in the SQLite file ``path`` (created with its folder).

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
        self.owner = _this_owner()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._tx() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            self._migrate(conn)

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        """Bring the schema to :data:`SCHEMA_VERSION` (inside the opening transaction)."""
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            return  # a newer mlaas-jupyter wrote it; the columns this one uses are there
        columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[target]:
                if target == 1 and "kind" in columns:
                    continue  # a new file: CREATE TABLE below made it with the column
                conn.execute(statement)
            if target == 1:
                rows = conn.execute("SELECT id, data FROM jobs").fetchall()
                for job_id, data in rows:
                    kind = kind_of(json.loads(data).get("spec") or {})
                    if kind != "train":
                        conn.execute("UPDATE jobs SET kind = ? WHERE id = ?", (kind, job_id))
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("CREATE INDEX IF NOT EXISTS jobs_kind ON jobs (kind)")

    def close(self) -> None:
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
        return _to_job(row[0])

    def _save(self, conn: sqlite3.Connection, job: Job) -> None:
        conn.execute(
            "UPDATE jobs SET name = ?, state = ?, data = ? WHERE id = ?",
            (job.name, job.state.value, json.dumps(job.to_dict()), job.id),
        )

    # -- jobs --------------------------------------------------------------------------

    def create(self, job: Job) -> Job:
        """Store a new job (``created`` set to now when 0); returns it."""
        if job.kind not in KINDS:
            raise SpecError("kind", f"unknown job kind {job.kind!r}; allowed: {', '.join(KINDS)}")
        if not job.created:
            job.created = time.time()
        with self._tx() as conn:
            try:
                conn.execute(
                    "INSERT INTO jobs (id, name, state, created, owner, data, kind) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        job.id,
                        job.name,
                        job.state.value,
                        job.created,
                        self.owner,
                        json.dumps(job.to_dict()),
                        job.kind,
                    ),
                )
            except sqlite3.IntegrityError as err:
                raise JobStateError(f"a job with id {job.id!r} exists already") from err
        return job

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; :class:`JobNotFound` when there is none."""
        with self._lock:
            return self._load(self._conn, job_id)

    def list(
        self,
        state: JobState | str | Collection[JobState | str] | None = None,
        limit: int | None = None,
        name: str | None = None,
        kind: str | None = None,
    ) -> list[Job]:
        """Jobs, newest first, optionally only those in ``state`` (one or several),
        named ``name`` or of ``kind`` (train, predict); at most ``limit``."""
        where, args = [], []
        if state is not None:
            states = [state] if isinstance(state, JobState | str) else list(state)
            try:
                values = [JobState(s).value for s in states]
            except ValueError as err:
                raise SpecError("state", f"{err}; allowed values: {_STATES}") from None
            where.append(f"state IN ({', '.join('?' * len(values))})")
            args.extend(values)
        if name is not None:
            where.append("name = ?")
            args.append(name)
        if kind is not None:
            if kind not in KINDS:
                raise SpecError("kind", f"unknown job kind {kind!r}; allowed: {', '.join(KINDS)}")
            where.append("kind = ?")
            args.append(kind)
        sql = "SELECT data FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created DESC, rowid DESC"
        if limit is not None:
            sql += f" LIMIT {max(0, int(limit))}"
        with self._lock:
            return [_to_job(row[0]) for row in self._conn.execute(sql, args)]

    def update(self, job_id: str, **changes: Any) -> Job:
        """Change fields of a job (not ``id`` nor ``state``: see :meth:`set_state`)."""
        bad = sorted(set(changes) - (_FIELDS - {"id", "state"}))
        if bad:
            raise ValueError(f"cannot update job field(s) {', '.join(bad)}")
        with self._tx() as conn:
            job = self._load(conn, job_id)
            for key, value in changes.items():
                setattr(job, key, value)
            self._save(conn, job)
        return job

    def set_state(self, job_id: str, new_state: JobState | str, error: str | None = None) -> Job:
        """Move a job to ``new_state`` (one of :data:`TRANSITIONS`), setting ``started``,
        ``finished`` and ``error``; :class:`JobStateError` when the change is not allowed."""
        new_state = JobState(new_state)
        with self._tx() as conn:
            job = self._load(conn, job_id)
            self._transition(job, new_state, error)
            self._save(conn, job)
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
                job = _to_job(data)
                error = INTERRUPTED if job.state is JobState.RUNNING else INTERRUPTED_QUEUED
                self._transition(job, JobState.LOST, error)
                self._append(conn, job, {"type": "state", "state": "lost", "error": error})
                self._save(conn, job)
                lost.append(job)
        return lost

    # -- events ------------------------------------------------------------------------

    def append_event(self, job_id: str, event: dict[str, Any]) -> JobEvent:
        """Store the next event of a job (``seq`` 1, 2, ...); ``progress`` and ``epoch``
        events also become the job's ``progress``."""
        with self._tx() as conn:
            job = self._load(conn, job_id)
            stored = self._append(conn, job, event)
            self._save(conn, job)
        return stored

    @staticmethod
    def _append(conn: sqlite3.Connection, job: Job, event: dict[str, Any]) -> JobEvent:
        kind = str(event.get("type", "event"))
        data = {k: v for k, v in event.items() if k not in _RESERVED}
        job.events += 1
        stored = JobEvent(job.id, job.events, time.time(), kind, data)
        conn.execute(
            "INSERT INTO events (job_id, seq, time, type, payload) VALUES (?, ?, ?, ?, ?)",
            (job.id, stored.seq, stored.time, kind, json.dumps(data)),
        )
        if kind in ("progress", "epoch"):
            job.progress = {"type": kind, **data}
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
