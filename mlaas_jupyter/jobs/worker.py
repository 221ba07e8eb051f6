"""The code that runs where the training runs: a subprocess, a kernel, a dask worker.

* :func:`run_job` — train one job, reporting events to a callback (all executors).
* :func:`main` — ``python -m mlaas_jupyter.jobs.worker SPEC.json RUN_DIR`` for the
  local executor: each event is one line ``@@mlaas-event@@ {...}`` on stdout; anything
  else the process prints goes to stderr (the job's logs). SIGINT stops the job at its
  next event (so after a checkpoint when it comes at an epoch's end) with a
  ``cancelled`` event and exit status 130.
* :func:`run_in_kernel` — for the kernel executor: each event is a ``display_data``
  message with MIME type ``application/vnd.mlaas.event+json``.
"""

from __future__ import annotations

import _thread
import contextlib
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import IO, Any

from ..errors import MlaasError

__all__ = [
    "EVENT_MIME",
    "EVENT_PREFIX",
    "JobError",
    "error_message",
    "main",
    "parse_event_line",
    "run_in_kernel",
    "run_job",
]

#: stdout lines of the worker subprocess that carry an event start with this
EVENT_PREFIX = "@@mlaas-event@@ "
#: MIME type of the display_data messages that carry an event in a kernel
EVENT_MIME = "application/vnd.mlaas.event+json"
#: exit status of a worker stopped by SIGINT
EXIT_CANCELLED = 130


class JobError(Exception):
    """A training job failed; the message says why (raised in kernels, short traceback)."""


def error_message(err: BaseException) -> str:
    """What to tell the user about ``err``: the message of an :class:`MlaasError`, else
    the exception's type and message."""
    if isinstance(err, MlaasError):
        return str(err)
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def run_job(
    spec: dict[str, Any], run_dir: str, emit: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Run the job ``spec`` in ``run_dir``: a training (``TrainSpec.to_dict()``) or a
    prediction (``{"predict": ...}``, see :mod:`mlaas_jupyter.inference.batch`, which writes
    no file in ``run_dir``).

    Every event goes to ``emit``. Returns the ``done`` event. Errors
    (:class:`MlaasError` for the user's mistakes) propagate unchanged.
    """
    from ..inference.batch import run_prediction
    from ..specs.prediction import is_prediction

    if is_prediction(spec):
        return run_prediction(spec, emit)
    from ..specs.training import TrainSpec
    from ..train.runner import train

    done: dict[str, Any] = {}

    def on_event(event: dict[str, Any]) -> None:
        if event.get("type") == "done":
            done.update(event)
        emit(event)

    result = train(TrainSpec.from_dict(spec), on_event=on_event, run_dir=run_dir)
    return done or {"type": "done", "bundle": str(result.bundle), "metrics": result.metrics}


def parse_event_line(line: str) -> dict[str, Any] | None:
    """The event of a worker stdout line, or None when the line is not an event."""
    if not line.startswith(EVENT_PREFIX):
        return None
    try:
        event = json.loads(line[len(EVENT_PREFIX) :])
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


class _GracefulStop:
    """SIGINT handling of the worker subprocess: the first SIGINT stops the job at its
    next event (after an epoch's checkpoint, or a progress event about once a second),
    a second one (or ``patience`` seconds without an event) stops it at once."""

    def __init__(self, patience: float = 3.0) -> None:
        self.patience = patience
        self.requested = False
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        timer = threading.Timer(self.patience, _thread.interrupt_main)
        timer.daemon = True
        timer.start()

    def writer(self, out: IO[str]) -> Callable[[dict[str, Any]], None]:
        def write(event: dict[str, Any]) -> None:
            out.write(EVENT_PREFIX + json.dumps(event, default=str) + "\n")
            out.flush()
            # a job that has finished (done) stays finished: its results are in place
            if self.requested and event.get("type") not in ("cancelled", "error", "done"):
                raise KeyboardInterrupt

        return write


def lower_priority() -> None:
    """Let the server (and the user's notebook) stay responsive while a job trains.

    ``MLAAS_JOB_NICE`` (default 10) is added to this process's nice value and, on
    Linux, to its session's autogroup: a job in a session of its own would otherwise
    get as much CPU as the whole server, whatever its nice value.
    """
    try:
        step = int(os.environ.get("MLAAS_JOB_NICE", "10"))
    except ValueError:
        step = 10
    if step <= 0:
        return
    with contextlib.suppress(OSError, AttributeError):
        os.nice(step)
    if os.getsid(0) == os.getpid():  # the autogroup is the session's: only if it is ours
        with contextlib.suppress(OSError), open("/proc/self/autogroup", "w") as handle:
            handle.write(str(min(19, step)))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the worker subprocess: ``SPEC.json RUN_DIR``; returns the exit
    status (0 done, 1 failed, 130 cancelled by SIGINT)."""
    args = list(sys.argv[1:] if argv is None else argv)
    # events own the real stdout; every other print (Python or C) goes to stderr
    events_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    emit = _GracefulStop().writer(events_out)
    lower_priority()
    try:
        if len(args) != 2:
            raise MlaasError("usage: python -m mlaas_jupyter.jobs.worker SPEC.json RUN_DIR")
        try:
            with open(args[0], encoding="utf-8") as handle:
                spec = json.load(handle)
        except (OSError, ValueError) as err:
            raise MlaasError(f"{args[0]}: cannot read the job spec ({err})") from err
        run_job(spec, args[1], emit)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a late timer must not interrupt this
        emit({"type": "cancelled", "message": "the job was cancelled"})
        return EXIT_CANCELLED
    except Exception as err:
        if not isinstance(err, MlaasError):
            traceback.print_exc()
        emit({"type": "error", "message": error_message(err)})
        return 1
    finally:
        sys.stderr.flush()
    return 0


def run_in_kernel(
    spec_json: str, run_dir: str, publish: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Run a job inside a kernel; each event is published as ``display_data`` with MIME
    type :data:`EVENT_MIME` (and a short ``text/plain``) through ``publish``, the
    kernel's ``IPython.display.publish_display_data`` (handed over by the code the
    kernel executor runs, so that this module never imports IPython).

    Returns the ``done`` event. A failure raises :class:`JobError` with the message
    (after an ``error`` event); an interrupt publishes a ``cancelled`` event and
    re-raises ``KeyboardInterrupt``.
    """
    lower_priority()  # the kernel runs this job only: it may yield to the server

    def emit(event: dict[str, Any]) -> None:
        event = json.loads(json.dumps(event, default=str))
        publish({EVENT_MIME: event, "text/plain": f"mlaas {event.get('type')}"})

    try:
        return run_job(json.loads(spec_json), run_dir, emit)
    except KeyboardInterrupt:
        emit({"type": "cancelled", "message": "the job was cancelled"})
        raise
    except Exception as err:
        message = error_message(err)
        emit({"type": "error", "message": message})
        raise JobError(message) from None


if __name__ == "__main__":
    sys.exit(main())
