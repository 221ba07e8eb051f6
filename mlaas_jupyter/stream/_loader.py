"""The loader process (the child's side of :mod:`._process`): its :func:`main` runs there.

It builds the batch stream the parent described and serves it epoch by epoch: each
shuffled pool crosses over in shared memory, at most ``_AHEAD`` of them untaken.
"""

from __future__ import annotations

import contextlib
import multiprocessing.connection
import os
import signal
import sys
from collections.abc import Iterator
from multiprocessing import resource_tracker, shared_memory
from typing import Any

import numpy as np

from ._pipeline import Batch
from .batches import BatchStream

_AHEAD = 2  # pools sent but not yet taken: bounds the shared memory in flight


def _send_pool(conn: Any, pool: Batch) -> None:
    arrays = (pool.x, pool.y, pool.w)
    size = sum(a.nbytes for a in arrays)
    memory = shared_memory.SharedMemory(create=True, size=max(size, 1))
    layout, offset = [], 0
    for array in arrays:
        view = np.ndarray(array.shape, array.dtype, buffer=memory.buf, offset=offset)
        view[...] = array
        layout.append((offset, array.shape, array.dtype.str))
        offset += array.nbytes
    del view
    conn.send(("pool", memory.name, layout))
    memory.close()
    # the parent unlinks it once copied: this process must not track it any more
    resource_tracker.unregister(memory._name, "shared_memory")  # type: ignore[attr-defined]


def _serve(conn: Any, arguments: dict[str, Any]) -> None:  # runs in the child
    """Child process: build the stream, then serve epochs until told to quit.

    Everything runs in this one thread (``prefetch=0``): the child then never uses
    more than one core, and the training loop keeps the other to itself. Between
    epochs, while the parent validates or the next epoch has not been asked for yet,
    the first pools of the next epoch are made ahead, so an epoch starts without
    waiting for the shuffle buffer to fill.
    """
    stream = BatchStream(**{**arguments, "prefetch": 0})
    ahead: _Epoch | None = None
    while True:
        command = conn.recv() if ahead is None else _next_command(conn, ahead)
        if command[0] in ("ack", "done", "stop"):  # about an epoch already sent in full
            continue
        if command[0] != "epoch":
            return
        if ahead is None or ahead.number != command[1]:
            if ahead is not None:
                ahead.close()
            ahead = _Epoch(stream, command[1])
        _send_epoch(conn, ahead)
        ahead = _Epoch(stream, ahead.number + 1)


class _Epoch:
    """One epoch's pools, some of them possibly made before the parent asked."""

    def __init__(self, stream: Any, number: int) -> None:
        self.number = number
        self.stream = stream
        self.report = stream.report = type(stream.report)()
        self._pools = stream._pools(number)
        self.made: list[Batch] = []
        self.finished = False

    def make(self) -> bool:
        """Make one more pool ahead; False once the epoch is over (or enough are held)."""
        if self.finished or len(self.made) >= _AHEAD:
            return False
        self.stream.report = self.report
        pool = next(self._pools, None)
        if pool is None:
            self.finished = True
            return False
        self.made.append(pool)
        return True

    def __iter__(self) -> Iterator[Batch]:
        self.stream.report = self.report
        while self.made:
            yield self.made.pop(0)
        if not self.finished:
            yield from self._pools
            self.finished = True

    def close(self) -> None:
        self._pools.close()


def _next_command(conn: Any, ahead: _Epoch) -> Any:
    """The parent's next message; pools of the next epoch are made while none comes."""
    while not conn.poll():
        if not ahead.make():
            break
    return conn.recv()


def _send_epoch(conn: Any, epoch: _Epoch) -> None:
    """Send the epoch's pools, at most ``_AHEAD`` untaken, until it ends or the parent stops."""
    outstanding = 0
    try:
        for pool in epoch:
            while outstanding >= _AHEAD or conn.poll():
                if conn.recv()[0] == "stop":
                    epoch.close()
                    conn.send(("end", epoch.report.entries_read))
                    return
                outstanding -= 1
            _send_pool(conn, pool)
            outstanding += 1
        conn.send(("end", epoch.report.entries_read))
    except BaseException as error:
        kind = type(error)
        conn.send(("error", kind.__module__, kind.__qualname__, str(error)))


def main(fd: int) -> None:
    # Ctrl-C reaches the whole process group: the parent, which owns this process,
    # stops it (its stream's close() says quit; its exit closes the connection), so a
    # KeyboardInterrupt here would only print a traceback over the parent's one line
    # (the command line of ._process ignores SIGINT already, before its imports)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the training loop comes first: the loader only needs what is left of the cores
    with contextlib.suppress(OSError):
        os.nice(int(os.environ.get("MLAAS_LOADER_NICE", "5")))
    conn = multiprocessing.connection.Connection(fd)
    with contextlib.suppress(EOFError, OSError):  # the parent went away
        _serve(conn, conn.recv())


if __name__ == "__main__":
    main(int(sys.argv[1]))
