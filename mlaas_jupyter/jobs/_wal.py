"""`WalCheckpointer`: the job store's write-ahead log, checkpointed off the event loop.

SQLite in WAL mode appends each commit to ``jobs.sqlite-wal`` and, by default, the
commit that takes the log past 1000 pages also copies it back into the database and
syncs the file to disk (a checkpoint). The job store commits on the server's event loop
(every event of a running job: about 2.7 pages each), so one event in a few hundred
paid for a checkpoint there: some 5 ms on an idle disk, 20 and more on a busy one,
during which no request was served. :class:`~mlaas_jupyter.jobs.store.JobStore` turns the
automatic checkpoints of its connection off and lets this thread run passive ones (they
never block the store's readers and writers) once a second.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["WalCheckpointer"]

log = logging.getLogger("mlaas_jupyter.jobs")


class WalCheckpointer:
    """Checkpoints the write-ahead log of the SQLite file ``path`` every ``every``
    seconds, in a daemon thread with a connection of its own, until :meth:`close`."""

    def __init__(self, path: str, every: float = 1.0) -> None:
        self.path, self.every = path, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlaas-store-wal", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            while not self._stop.wait(self.every):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as err:  # busy, or the file went away: next time
                    log.debug("job store checkpoint skipped: %s", err)
        finally:
            conn.close()

    def close(self) -> None:
        """Stop the thread (its connection closes; the store's last close checkpoints)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(10.0)
