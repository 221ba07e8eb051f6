"""A batch stream's reading, conversion and shuffling in a child process.

Threads share Python's GIL with the training loop: uproot's and awkward's Python
code and a small-batch optimiser step then take turns instead of using two cores.
A child process has a GIL of its own. It is started once per stream as
``python -m mlaas_jupyter.stream._loader`` (not forked: forking a process with
live decompression threads can deadlock, and ``spawn`` would re-run the caller's
script) and serves every epoch; each shuffled pool crosses over in shared memory
and is copied out at once, so the batches never point into memory that goes away.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing.connection
import socket
import subprocess
import sys
import weakref
from collections.abc import Generator, Iterator
from multiprocessing import resource_tracker, shared_memory
from typing import Any

import numpy as np

from ..errors import DataError
from ._pipeline import Batch

__all__ = ["ProcessPools"]

_AHEAD = 2  # pools sent but not yet taken: bounds the shared memory in flight


def _rebuild_error(module: str, name: str, message: str) -> BaseException:
    """The child's exception as the same class, carrying the same message."""
    try:
        cls = getattr(importlib.import_module(module), name)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            error = cls.__new__(cls)
            error.args = (message,)
            return error
    except (ImportError, AttributeError):
        pass
    return RuntimeError(f"{name}: {message}")


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
    from .batches import BatchStream

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


class ProcessPools:
    """Pools of a :class:`BatchStream` produced by a child process, epoch by epoch."""

    def __init__(self, arguments: dict[str, Any]) -> None:
        ours, theirs = socket.socketpair()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "mlaas_jupyter.stream._loader", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
        )
        theirs.close()
        self._conn = multiprocessing.connection.Connection(ours.detach())
        self._conn.send(arguments)
        self.entries_read = 0
        self._live: weakref.ref[Generator[Batch, None, None]] | None = None

    def _recv(self) -> Any:
        try:
            return self._conn.recv()
        except (EOFError, OSError) as err:
            code = self._process.poll()
            raise DataError(f"the loader process stopped (exit code {code})") from err

    def pools(self, epoch: int) -> Iterator[Batch]:
        """The epoch's pools; an epoch still being taken is closed first (one at a time)."""
        live = self._live() if self._live is not None else None
        if live is not None:
            live.close()
        pools = self._pools(epoch)
        self._live = weakref.ref(pools)  # weak: a generator left early still closes at once
        return pools

    def _pools(self, epoch: int) -> Generator[Batch, None, None]:
        self._conn.send(("epoch", epoch))
        finished = False
        try:
            while True:
                message = self._recv()
                if message[0] == "end":
                    self.entries_read = int(message[1])
                    finished = True
                    return
                if message[0] == "error":
                    finished = True
                    raise _rebuild_error(*message[1:])
                yield self._take(message[1], message[2])
                self._conn.send(("ack",))
        finally:
            with contextlib.suppress(OSError):
                self._conn.send(("done",) if finished else ("stop",))
                if not finished:
                    self._drain()

    def _take(self, name: str, layout: list[Any]) -> Batch:
        memory = shared_memory.SharedMemory(name=name)
        try:
            x, y, w = (
                np.ndarray(shape, np.dtype(dtype), buffer=memory.buf, offset=offset).copy()
                for offset, shape, dtype in layout
            )
        finally:
            memory.close()
            memory.unlink()
        return Batch(x, y, w)

    def _drain(self) -> None:
        """After a stop: free the pools already sent, up to the child's end message."""
        while True:
            message = self._recv()
            if message[0] == "pool":
                self._take(message[1], message[2])
            else:
                return

    def close(self) -> None:
        live = self._live() if self._live is not None else None
        if live is not None:
            live.close()
        if self._process.poll() is None:
            with contextlib.suppress(OSError):
                self._conn.send(("quit",))
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._conn.close()
