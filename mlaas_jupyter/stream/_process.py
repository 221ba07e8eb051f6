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
from collections.abc import Iterator
from functools import partial
from multiprocessing import resource_tracker, shared_memory
from typing import Any

import numpy as np

from ..errors import DataError
from ._pipeline import Batch, background

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
    """Child process: build the stream, then serve epochs until told to quit."""
    from .batches import BatchStream

    stream = BatchStream(**arguments)
    while True:
        command = conn.recv()
        if command[0] != "epoch":
            return
        epoch, outstanding, stopped = command[1], 0, False
        stream.report = type(stream.report)()
        try:
            for pool in background(partial(stream._pools, epoch), 1):
                while outstanding >= _AHEAD or conn.poll():
                    reply = conn.recv()
                    if reply[0] == "stop":
                        stopped = True
                        break
                    outstanding -= 1
                if stopped:
                    break
                _send_pool(conn, pool)
                outstanding += 1
            conn.send(("end", stream.report.entries_read))
        except BaseException as error:
            kind = type(error)
            conn.send(("error", kind.__module__, kind.__qualname__, str(error)))
        if not stopped:  # wait for the parent to finish this epoch
            while (reply := conn.recv())[0] == "ack":
                pass


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

    def _recv(self) -> Any:
        try:
            return self._conn.recv()
        except (EOFError, OSError) as err:
            code = self._process.poll()
            raise DataError(f"the loader process stopped (exit code {code})") from err

    def pools(self, epoch: int) -> Iterator[Batch]:
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
        if self._process.poll() is None:
            with contextlib.suppress(OSError):
                self._conn.send(("quit",))
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._conn.close()
