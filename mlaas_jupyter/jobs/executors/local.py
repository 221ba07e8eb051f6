"""`LocalExecutor`: each job in a Python subprocess on this machine.

The subprocess is ``python -m mlaas_jupyter.jobs.worker SPEC.json RUN_DIR``; it writes
its events as marker lines on stdout and everything else on stderr. Other lines
become ``{"type": "log", "text": ...}`` events, which the manager keeps as the job's
logs. Cancelling sends SIGINT (the worker stops after the current batch and exits
130) and SIGKILL to its process group after ``grace`` seconds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from traitlets import Dict, Float, Unicode, default

from ..models import Job
from ..worker import EXIT_CANCELLED, parse_event_line
from .base import EmitEvent, Executor, JobCancelled, JobFailed

__all__ = ["LocalExecutor"]

_LINE_LIMIT = 64 * 1024 * 1024  # a done event with many metrics is one long line


class LocalExecutor(Executor):
    """Runs jobs as subprocesses of this process.

    Configurable traits: ``python`` (the interpreter of the subprocesses; this one by
    default), ``grace`` (seconds a cancelled job gets to stop after SIGINT before
    SIGKILL) and ``env`` (extra environment variables of the subprocesses).
    """

    name = "local"

    python = Unicode(config=True, help="Interpreter (or wrapper command) of the job subprocesses.")
    grace = Float(10.0, config=True, help="Seconds a cancelled job gets to stop before SIGKILL.")
    env = Dict(
        value_trait=Unicode(),
        key_trait=Unicode(),
        config=True,
        help="Extra environment variables of the job subprocesses.",
    )

    @default("python")
    def _default_python(self) -> str:
        return sys.executable

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._cancelled: set[str] = set()

    def pid(self, job_id: str) -> int | None:
        """Process id of the running job ``job_id`` (None when it does not run here)."""
        proc = self._procs.get(job_id)
        return proc.pid if proc is not None else None

    async def run(self, job: Job, emit: EmitEvent) -> dict[str, Any]:
        if not job.run_dir:
            raise JobFailed("the job has no run folder")
        run_dir = Path(job.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        spec_file = run_dir / f"job-{job.id}.spec.json"
        spec_file.write_text(json.dumps(job.spec, indent=1))
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        python = self.python or sys.executable
        try:
            proc = await asyncio.create_subprocess_exec(
                python,
                "-m",
                "mlaas_jupyter.jobs.worker",
                str(spec_file),
                str(run_dir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,  # its own process group: killed as a whole
                limit=_LINE_LIMIT,
            )
        except OSError as err:
            raise JobFailed(f"cannot start the training process {python}: {err}") from err
        self._procs[job.id] = proc
        if job.id in self._cancelled:  # cancelled while the process was starting
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        final: dict[str, Any] = {}
        stderr_tail: collections.deque[str] = collections.deque(maxlen=20)

        async def read(stream: asyncio.StreamReader | None, is_stdout: bool) -> None:
            assert stream is not None
            async for raw in stream:
                line = raw.decode("utf-8", "replace")
                event = parse_event_line(line) if is_stdout else None
                if event is None:
                    if not is_stdout and line.strip():
                        stderr_tail.append(line.rstrip())
                    emit({"type": "log", "text": line})
                    continue
                if event.get("type") in ("done", "error", "cancelled"):
                    final.update(event)
                emit(event)

        try:
            await asyncio.gather(read(proc.stdout, True), read(proc.stderr, False))
            code = await proc.wait()
        finally:
            if proc.returncode is None:  # this coroutine was cancelled: leave no process
                await self._kill(proc)
            self._procs.pop(job.id, None)
            cancelled = job.id in self._cancelled
            self._cancelled.discard(job.id)
        if code == 0 and final.get("type") == "done":
            return final
        if cancelled or code in (EXIT_CANCELLED, -signal.SIGINT):
            raise JobCancelled(final.get("message", "the job was cancelled"))
        if final.get("type") == "error":
            raise JobFailed(str(final.get("message")))
        why = (
            f"was killed by signal {signal.Signals(-code).name}"
            if code < 0
            else f"exited with status {code}"
        )
        tail = "\n".join(stderr_tail)
        raise JobFailed(f"the training process {why}" + (f":\n{tail}" if tail else ""))

    async def cancel(self, job: Job) -> None:
        self._cancelled.add(job.id)  # run() sees it if the process is still starting
        proc = self._procs.get(job.id)
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), self.grace)
        except TimeoutError:
            await self._kill(proc)

    @staticmethod
    async def _kill(proc: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
