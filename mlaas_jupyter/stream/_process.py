"""A batch stream's reading, conversion and shuffling in a child process: the parent's side.

Threads share Python's GIL with the training loop: uproot's and awkward's Python
code and a small-batch optimiser step then take turns instead of using two cores.
A child process has a GIL of its own. It is started once per stream as a new
Python running :func:`._loader.main` (not forked: forking a process with live
decompression threads can deadlock, and ``spawn`` would re-run the caller's script)
and serves every epoch; each shuffled pool crosses over in shared memory
and is copied out at once, so the batches never point into memory that goes away.
The child's side (building the stream, sending the pools) is :mod:`._loader`.
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
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from ..errors import DataError
from ._pipeline import Batch

__all__ = ["ProcessPools"]

#: the child's command line: it ignores Ctrl-C (SIGINT, sent to the whole process
#: group) before its first import, so that only the parent says it was interrupted;
#: the parent stops it (see :mod:`._loader`)
_LOADER = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "from mlaas_jupyter.stream._loader import main; main(int(sys.argv[1]))"
)


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


class ProcessPools:
    """Pools of a :class:`BatchStream` produced by a child process, epoch by epoch."""

    def __init__(self, arguments: dict[str, Any]) -> None:
        ours, theirs = socket.socketpair()
        self._process = subprocess.Popen(
            [sys.executable, "-c", _LOADER, str(theirs.fileno())],
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
