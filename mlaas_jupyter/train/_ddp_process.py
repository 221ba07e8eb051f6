"""One rank of a data-parallel training as a process: the supervisor's side.

A rank is started as ``python -m mlaas_jupyter.train._ddp_rank FD`` (not forked: the
parent may hold live decompression threads, and forking those can deadlock; see
:mod:`mlaas_jupyter.stream._process`), by the job's process for local ranks or by a
task on a dask worker for ranks on a cluster. Both talk to it through one socket:

supervisor -> rank
    the rank's arguments (a dict, first); ``("store", host, port)`` where rank 0's
    rendezvous store listens (ranks > 0); ``("stop",)``: exit now.
rank -> supervisor
    ``("store", port)`` (rank 0); ``("event", {...})`` (rank 0: the job's events);
    ``("result", {...})`` at the end; ``("error", pickled exception, message, traceback)``.

A rank exits when its socket closes: a supervisor that dies takes its ranks with it.
"""

from __future__ import annotations

import contextlib
import multiprocessing.connection
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from ..errors import MlaasError, TrainingError

__all__ = ["Outcome", "RankProcess", "pack_error", "rank_environment"]


def pack_error(error: BaseException, where: str) -> tuple[Any, ...]:
    """The ``("error", ...)`` message of ``error``: the exception itself when it pickles
    (the classes of this package do), else its class name and message."""
    try:
        blob: bytes | None = pickle.dumps(error)
    except Exception:
        blob = None
    message = str(error) if isinstance(error, MlaasError) else f"{type(error).__name__}: {error}"
    return ("error", blob, message, where)


def _unpack_error(message: tuple[Any, ...], rank: int, world: int) -> BaseException:
    """The exception an ``("error", ...)`` message describes. The user's mistakes
    (:class:`MlaasError`) come back as they are; anything else becomes a
    :class:`TrainingError` that names the rank."""
    _, blob, text, _ = message
    if blob is not None:
        with contextlib.suppress(Exception):
            error = pickle.loads(blob)
            if isinstance(error, MlaasError):
                return error
    return TrainingError(f"data-parallel rank {rank} of {world} failed: {text}")


_SECONDARY = ("gloo", "NCCL", "Connection closed by peer", "DistBackendError", "DistNetworkError")


class Outcome:
    """How each rank ended, and what the job's outcome is.

    The first rank to fail usually takes the others down with it (their collectives
    fail once its connections close): the error to report is its own, so the others'
    ends are waited for a moment and the cause is chosen: a rank's own error first,
    then a rank that died, then errors of the collectives.
    """

    GRACE = 3.0  # seconds the other ranks get to report once one has failed

    def __init__(self, world: int) -> None:
        self.world = world
        self.results: dict[int, dict[str, Any]] = {}
        # (order: 0 its own error, 1 it died, 2 a collective failed; rank; error)
        self.failures: list[tuple[int, int, BaseException]] = []
        self.first_failure: float | None = None

    @property
    def ended(self) -> set[int]:
        return set(self.results) | {rank for _, rank, _ in self.failures}

    def end(self, rank: int, message: tuple[Any, ...]) -> None:
        """Rank ``rank`` sent its ``("result", ...)`` or ``("error", ...)`` message."""
        if message[0] == "result":
            self.results[rank] = message[1]
            return
        secondary = any(word in str(message[2]) for word in _SECONDARY)
        self._fail(rank, 2 if secondary else 0, _unpack_error(message, rank, self.world))

    def died(self, rank: int, why: str) -> None:
        """Rank ``rank`` ended without a message (``why``: its exit status)."""
        message = f"data-parallel rank {rank} of {self.world} stopped: {why}"
        self._fail(rank, 1, TrainingError(message))

    def _fail(self, rank: int, order: int, error: BaseException) -> None:
        if self.first_failure is None:
            self.first_failure = time.monotonic()
        self.failures.append((order, rank, error))

    def settled(self) -> bool:
        """All ranks ended, or one failed a while ago (the others may hang)."""
        if len(self.ended) == self.world:
            return True
        return self.first_failure is not None and (
            time.monotonic() - self.first_failure > self.GRACE
        )

    def result(self) -> dict[str, Any]:
        """Rank 0's result; raises the cause when a rank failed."""
        if self.failures:
            order = min(f[0] for f in self.failures)
            raise next(error for o, _, error in self.failures if o == order)
        return self.results[0]


class RankProcess:
    """A rank process and the socket to it."""

    def __init__(self, arguments: dict[str, Any], env: dict[str, str] | None = None) -> None:
        self.rank = int(arguments["rank"])
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlaas_jupyter.train._ddp_rank", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env=env,
        )
        theirs.close()
        self.conn = multiprocessing.connection.Connection(ours.detach())
        self.open = True
        self.conn.send(arguments)

    def receive(self) -> tuple[Any, ...] | None:
        """The rank's next message; ``None`` when its socket closed (it ended or died)."""
        try:
            message: tuple[Any, ...] = self.conn.recv()
            return message
        except (EOFError, OSError):
            self.open = False
            return None

    def send(self, message: tuple[Any, ...]) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(message)

    def death(self) -> str:
        """Why the rank's socket closed without a result, for the job's error."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "its process stopped answering"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"its process was killed by signal {signal.Signals(-code).name}"
        return f"its process exited with status {code}"

    def close(self, grace: float = 3.0) -> None:
        """Stop the rank (asked first, then killed) and close the socket."""
        if self.process.poll() is None:
            self.send(("stop",))
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.conn.close()
        self.open = False


def rank_environment(threads: int, local: bool) -> dict[str, str]:
    """The rank processes' environment: ``threads`` threads for OpenMP and BLAS (unless
    the user set them) so that ranks sharing a machine do not oversubscribe it, and, for
    ranks all on this machine, gloo on the loopback interface."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(name, str(threads))
    if local and "GLOO_SOCKET_IFNAME" not in env:
        with contextlib.suppress(OSError):
            names = [name for _, name in socket.if_nameindex()]
            loopback = next((n for n in ("lo", "lo0") if n in names), None)
            if loopback is not None:
                env["GLOO_SOCKET_IFNAME"] = loopback
    return env
