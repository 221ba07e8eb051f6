"""The sweeps of the job store: one row per hyperparameter sweep in the ``sweeps`` table.

A sweep's record (see :mod:`mlaas_jupyter.core._sweeps`) is kept whole as JSON in
``data``; ``state``, ``name`` and ``created`` are columns for listing, and ``owner``
(``host:pid``) says which process drives it, so that a new process marks only the
sweeps of a process that is gone as ``lost`` (their trials are jobs, marked lost by
the jobs' own recovery). :class:`SweepTables` is a base of
:class:`~mlaas_jupyter.jobs.store.JobStore` and uses its connection, lock and
transactions.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from typing import Any

from ..errors import Conflict, NotFound
from ._store_env import owner_alive

__all__ = ["SWEEP_FINISHED", "SweepNotFound", "SweepStateError", "SweepTables"]

#: the states a sweep ends in
SWEEP_FINISHED = frozenset({"succeeded", "failed", "cancelled", "lost"})
#: error of the sweeps found running at startup
SWEEP_INTERRUPTED = "the server stopped while the sweep was running"


class SweepNotFound(NotFound):
    """No sweep has this id."""


class SweepStateError(Conflict):
    """The sweep is not in a state that allows this."""


def _load(conn: sqlite3.Connection, sweep_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT data FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
    if row is None:
        raise SweepNotFound(f"no sweep with id {sweep_id!r}")
    return dict(json.loads(row[0]))


def _save(conn: sqlite3.Connection, record: dict[str, Any]) -> None:
    conn.execute(
        "UPDATE sweeps SET name = ?, state = ?, data = ? WHERE id = ?",
        (record["name"], record["state"], json.dumps(record), record["id"]),
    )


class SweepTables:
    """The sweep methods of the job store (see the module docstring)."""

    owner: str
    _lock: threading.RLock
    _conn: sqlite3.Connection

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover
        raise NotImplementedError

    def create_sweep(self, record: dict[str, Any]) -> dict[str, Any]:
        """Store a new sweep record (``id``, ``name``, ``state``, ``created``...)."""
        with self._tx() as conn:
            try:
                conn.execute(
                    "INSERT INTO sweeps (id, name, state, created, owner, data) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record["id"],
                        record["name"],
                        record["state"],
                        record["created"],
                        self.owner,
                        json.dumps(record),
                    ),
                )
            except sqlite3.IntegrityError as err:
                raise SweepStateError(f"a sweep with id {record['id']!r} exists") from err
        return record

    def save_sweep(self, record: dict[str, Any]) -> dict[str, Any]:
        """Replace the stored record of a sweep (SweepNotFound once it was deleted)."""
        with self._tx() as conn:
            _load(conn, record["id"])
            _save(conn, record)
        return record

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        """The record of sweep ``sweep_id``; :class:`SweepNotFound` when there is none."""
        with self._lock:
            return _load(self._conn, sweep_id)

    def list_sweeps(self) -> list[dict[str, Any]]:
        """Every sweep's record, newest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT data FROM sweeps ORDER BY created DESC, rowid DESC"
            ).fetchall()
        return [dict(json.loads(row[0])) for row in rows]

    def delete_sweep(self, sweep_id: str) -> dict[str, Any]:
        """Remove a finished sweep's record (its trials' jobs stay); 409 while running."""
        with self._tx() as conn:
            record = _load(conn, sweep_id)
            if record["state"] not in SWEEP_FINISHED:
                raise SweepStateError(
                    f"sweep {sweep_id} is {record['state']}; cancel it before deleting it"
                )
            conn.execute("DELETE FROM sweeps WHERE id = ?", (sweep_id,))
        return record

    def claim_sweep(self, sweep_id: str) -> dict[str, Any]:
        """Make this process the driver of a lost sweep (to resume it); its record.
        :class:`SweepStateError` unless it is lost (another process resumed it)."""
        with self._tx() as conn:
            record = _load(conn, sweep_id)
            if record["state"] != "lost":
                raise SweepStateError(f"sweep {sweep_id} is {record['state']}, not lost")
            conn.execute("UPDATE sweeps SET owner = ? WHERE id = ?", (self.owner, sweep_id))
        return record

    def sweep_orphaned(self, sweep_id: str) -> bool:
        """Whether the process driving the sweep is gone (or is this process)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT owner FROM sweeps WHERE id = ?", (sweep_id,)
            ).fetchone()
        if row is None:
            raise SweepNotFound(f"no sweep with id {sweep_id!r}")
        return not owner_alive(str(row[0]))

    def mark_sweeps_interrupted(self) -> list[dict[str, Any]]:
        """At startup: running sweeps whose process is gone become ``lost``, and so do
        their trials still queued or running; finished trials are kept. Returns them."""
        lost = []
        with self._tx() as conn:
            rows = conn.execute("SELECT data, owner FROM sweeps WHERE state = 'running'").fetchall()
            for data, owner in rows:
                if owner_alive(owner):
                    continue
                record = json.loads(data)
                record.update(state="lost", finished=time.time(), error=SWEEP_INTERRUPTED)
                for trial in record.get("trials", []):
                    if trial["state"] in ("queued", "running"):
                        trial["state"] = "lost"
                _save(conn, record)
                lost.append(record)
        return lost
