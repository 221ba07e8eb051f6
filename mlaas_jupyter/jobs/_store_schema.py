"""The SQLite side of the job store: its tables, their migrations, rows to jobs and events.

Schema versions (``PRAGMA user_version``): 0 is the first one; 1 adds the ``kind``
column of the jobs (``train`` or ``predict``, for filtering); 2 adds the ``sweeps``
table (one row per hyperparameter sweep, its record as JSON in ``data``). Opening an older file
migrates it in place, in one transaction (other processes wait); rows written by an
older version of this code get their kind from their spec when read. A job row keeps
the whole :class:`Job` as JSON in ``data`` (the other columns are for filtering and
ordering); an event row keeps its payload as JSON. The functions here take the open
connection of :class:`~mlaas_jupyter.jobs.store.JobStore`, which holds its lock and
transactions.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Collection
from dataclasses import fields
from typing import Any

from ..errors import SpecError
from .models import KINDS, Job, JobEvent, JobState, kind_of

__all__ = [
    "FIELDS",
    "SCHEMA_VERSION",
    "create_tables",
    "insert_event",
    "insert_job",
    "migrate",
    "save_job",
    "select_jobs",
    "to_job",
]

FIELDS = {f.name for f in fields(Job)}
_RESERVED = ("job_id", "seq", "time", "type")
#: states a ``state`` filter accepts
_STATES = ", ".join(s.value for s in JobState)
#: ``PRAGMA user_version`` of the current schema
SCHEMA_VERSION = 2

_SWEEPS = """
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL,
    created REAL NOT NULL, owner TEXT NOT NULL DEFAULT '', data TEXT NOT NULL);
"""
_SCHEMA = (
    """
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
    + _SWEEPS
)
#: schema version -> the statements that migrate a store of the version before it
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: ("ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'train'",),
    2: (_SWEEPS,),  # CREATE ... IF NOT EXISTS: made already when the file is new
}


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the tables that are missing and migrate the others (in a transaction)."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    migrate(conn)


def migrate(conn: sqlite3.Connection) -> None:
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


def to_job(data: str) -> Job:
    raw = json.loads(data)
    values = {k: v for k, v in raw.items() if k in FIELDS}
    values["state"] = JobState(values["state"])
    if "kind" not in values:  # written before jobs had a kind
        values["kind"] = kind_of(values.get("spec") or {})
    return Job(**values)


def insert_job(conn: sqlite3.Connection, job: Job, owner: str) -> None:
    """Add the row of a new job (``sqlite3.IntegrityError`` when its id is taken)."""
    conn.execute(
        "INSERT INTO jobs (id, name, state, created, owner, data, kind) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            job.id,
            job.name,
            job.state.value,
            job.created,
            owner,
            json.dumps(job.to_dict()),
            job.kind,
        ),
    )


def save_job(conn: sqlite3.Connection, job: Job) -> None:
    conn.execute(
        "UPDATE jobs SET name = ?, state = ?, data = ? WHERE id = ?",
        (job.name, job.state.value, json.dumps(job.to_dict()), job.id),
    )


def select_jobs(
    state: JobState | str | Collection[JobState | str] | None,
    limit: int | None,
    name: str | None,
    kind: str | None,
) -> tuple[str, list[Any]]:
    """The query of :meth:`JobStore.list` and its arguments (``SELECT data``, newest
    first); :class:`SpecError` for an unknown state or kind."""
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
    return sql, args


def insert_event(conn: sqlite3.Connection, job: Job, event: dict[str, Any]) -> JobEvent:
    """Store the next event of ``job`` (counting it in ``job.events``); ``progress`` and
    ``epoch`` events also become the job's ``progress``. The caller saves the job."""
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
