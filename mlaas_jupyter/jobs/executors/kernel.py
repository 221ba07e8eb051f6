"""`KernelExecutor`: each job in its own Jupyter kernel.

Under a Jupyter server the kernel comes from the server's kernel manager, so whatever
the server would start for a notebook runs the job: a local ``python3``, a GPU kernel
spec, a kernel provisioner on a batch system, or a kernel on a remote Enterprise
Gateway or a Jupyter Kernel Gateway (``--gateway-url``; the extension then lends a
``client_factory`` whose clients reach the kernel through the gateway's websocket).
Without a server, a plain ``jupyter_client`` ``AsyncMultiKernelManager`` starts the
kernels. The executor only talks the Jupyter messaging protocol:

* it executes ``run_in_kernel(spec_json, run_dir, publish_display_data)``
  (:mod:`mlaas_jupyter.jobs.worker`),
* reads IOPub: ``display_data`` with the MLaaS MIME type are the job's events,
  ``stream`` output becomes ``log`` events, an ``error`` message fails the job,
* watches the kernel: if it dies (or is restarted by the server, or a gateway says
  so on IOPub) the job fails with "the kernel died",
* and always shuts the kernel down at the end.

Cancelling interrupts the kernel (the job stops after the current batch), then shuts
it down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import re
from typing import Any

from jupyter_core.utils import ensure_async
from traitlets import Any as TraitAny
from traitlets import Float, Unicode

from ..models import Job
from ..worker import EVENT_MIME
from .base import EmitEvent, Executor, JobCancelled, JobFailed

__all__ = ["KernelExecutor"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Everything the job needs is in the code: a remote kernel (a gateway's) shares neither
# the server's environment variables nor its working directory; paths are absolute.
_CODE = """\
from IPython.display import publish_display_data
try:
    from mlaas_jupyter.jobs.worker import run_in_kernel
except ImportError as err:
    import sys
    raise ImportError(
        f"mlaas-jupyter cannot be imported in this kernel ({{sys.executable}}): {{err}}; "
        "install it in the kernel's environment"
    ) from None
run_in_kernel({spec!r}, {run_dir!r}, publish_display_data)
"""
#: IOPub states a gateway announces (without a parent) when the kernel died
_KERNEL_GONE = ("restarting", "dead")
#: seconds between attempts to shut down a kernel that refused
_SHUTDOWN_RETRIES = (0.5, 1.0, 2.0, 4.0)


class KernelExecutor(Executor):
    """Runs jobs in kernels of a (multi-)kernel manager.

    Traits: ``kernel_manager`` (set by whoever builds the executor: the server's
    ``MappingKernelManager``, ``serverapp.kernel_manager``, whose gateway and
    provisioner-backed variants work the same; or a plain
    :class:`jupyter_client.multikernelmanager.AsyncMultiKernelManager` without any
    Jupyter server; None: the executor starts an ``AsyncMultiKernelManager`` of its
    own on first use and shuts its kernels down on :meth:`close`) and
    ``client_factory`` (``factory(kernel_manager, kernel_id)`` -> the kernel's client;
    None: ``kernel_manager.get_kernel(kernel_id).client()``; the server extension sets
    one for gateway kernels). Configurable: ``default_kernel`` (kernel spec of jobs
    that name none; empty: the kernel manager's default, for a gateway the gateway's
    default kernel spec), ``ready_timeout`` (seconds
    a new kernel gets to answer), ``poll_interval`` (seconds of IOPub silence after
    which the kernel's health is checked) and ``interrupt_grace`` (seconds a cancelled
    job gets to stop after the interrupt before its kernel is shut down anyway).

    Only the calls both managers share are used: ``start_kernel(kernel_name=...)``
    (no ``path=``, which only the server's manager takes: the job's run folder is
    given to the job itself), ``get_kernel``, ``interrupt_kernel``,
    ``add_restart_callback``, ``shutdown_kernel(now=True)`` and ``in``; of a kernel
    client: ``start_channels``, ``wait_for_ready``, ``execute``, ``get_iopub_msg`` and
    ``stop_channels`` (each may be a coroutine function or not).
    """

    name = "kernel"

    kernel_manager = TraitAny(
        None, allow_none=True, help="The multi-kernel manager the job kernels come from."
    )
    client_factory = TraitAny(
        None,
        allow_none=True,
        help="factory(kernel_manager, kernel_id) -> the kernel's client (None: the "
        "kernel manager's own client()).",
    )
    default_kernel = Unicode(
        "python3",
        config=True,
        help="Kernel spec of jobs that name none; empty: the kernel manager's default "
        "(with a gateway, the gateway's default kernel spec).",
    )
    ready_timeout = Float(
        120.0, config=True, help="Seconds a new kernel gets to answer before the job fails."
    )
    poll_interval = Float(
        1.0, config=True, help="Seconds of IOPub silence after which the kernel is checked."
    )
    interrupt_grace = Float(
        5.0, config=True, help="Seconds a cancelled job gets to stop before its kernel is shut."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ended: dict[str, asyncio.Event] = {}  # job id -> set when its code stops
        self._kernels: dict[str, str] = {}  # job id -> kernel id
        self._cancelled: set[str] = set()
        self._died: set[str] = set()  # kernel ids that died or were restarted
        self._own_manager: Any = None  # the manager started here when none was given

    def _manager(self) -> Any:
        """The kernel manager; one of our own (no Jupyter server) when none was set."""
        if self.kernel_manager is None:
            from jupyter_client.multikernelmanager import AsyncMultiKernelManager

            self._own_manager = AsyncMultiKernelManager(parent=self)
            self.kernel_manager = self._own_manager
        return self.kernel_manager

    async def close(self) -> None:
        """Shut down the kernels of the manager started here (a given one is left be)."""
        own, self._own_manager = self._own_manager, None
        if own is not None:
            with contextlib.suppress(Exception):
                await ensure_async(own.shutdown_all(now=True))
            if self.kernel_manager is own:
                self.kernel_manager = None

    def kernel_id(self, job_id: str) -> str | None:
        """The id of the kernel running ``job_id`` (None when it runs nowhere here)."""
        return self._kernels.get(job_id)

    async def run(self, job: Job, emit: EmitEvent) -> dict[str, Any]:
        if not job.run_dir:
            raise JobFailed("the job has no run folder")
        kernel_name = job.kernel_name or self.default_kernel or None  # None: the default
        km = self._manager()
        try:
            kid = str(await ensure_async(km.start_kernel(kernel_name=kernel_name)))
        except Exception as err:
            raise JobFailed(await self._start_failure(km, kernel_name, err)) from err
        self._kernels[job.id] = kid
        self._ended[job.id] = ended = asyncio.Event()
        self._watch(kid)
        client: Any = None
        try:
            emit({"type": "kernel", "kernel_id": kid, "kernel_name": self._name(kid, kernel_name)})
            if job.id in self._cancelled:
                raise JobCancelled("the job was cancelled")
            if self.client_factory is not None:
                client = self.client_factory(km, kid)
            else:
                client = km.get_kernel(kid).client()
            try:  # a gateway kernel: a websocket that the gateway may refuse
                await ensure_async(client.start_channels())
            except Exception as err:
                reason = f"cannot connect to the kernel (kernel {kid}): {err}"
                raise self._failure(job, kid, reason) from err
            try:
                await asyncio.wait_for(
                    ensure_async(client.wait_for_ready(timeout=self.ready_timeout)),
                    self.ready_timeout + 5,
                )
            except (RuntimeError, TimeoutError) as err:
                raise self._failure(job, kid, f"the kernel did not start: {err}") from err
            code = _CODE.format(spec=json.dumps(job.spec), run_dir=str(job.run_dir))
            try:
                msg_id = await ensure_async(
                    client.execute(code, silent=False, store_history=False, allow_stdin=False)
                )
            except RuntimeError as err:  # the websocket of a gateway kernel closed
                reason = f"the kernel died or its connection closed (kernel {kid}): {err}"
                raise self._failure(job, kid, reason) from err
            return await self._pump(job, kid, client, str(msg_id), emit)
        finally:
            ended.set()
            self._ended.pop(job.id, None)
            self._kernels.pop(job.id, None)
            self._cancelled.discard(job.id)
            if client is not None:
                with contextlib.suppress(Exception):
                    client.stop_channels()
            await self._shutdown(kid)
            self._died.discard(kid)

    async def cancel(self, job: Job) -> None:
        self._cancelled.add(job.id)
        kid = self._kernels.get(job.id)
        if kid is None:
            return
        with contextlib.suppress(Exception):
            await ensure_async(self.kernel_manager.interrupt_kernel(kid))
        ended = self._ended.get(job.id)
        if ended is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), self.interrupt_grace)
        if job.id in self._kernels:  # still running: run() shuts down the others itself
            await self._shutdown(kid)

    # -- internals ---------------------------------------------------------------------

    async def _start_failure(self, km: Any, kernel_name: str | None, err: Exception) -> str:
        """Why no kernel started; names the kernel specs when the one asked for is not
        among them (a gateway only answers "500: Internal Server Error")."""
        which = "the default" if kernel_name is None else f"a {kernel_name!r}"
        message = f"cannot start {which} kernel: {err}"
        try:
            names = sorted(await ensure_async(km.kernel_spec_manager.get_all_specs()))
        except Exception:  # cannot tell: the error says what it can
            return message
        if kernel_name is not None and kernel_name not in names:
            known = ", ".join(names) or "none"
            return f"cannot start a {kernel_name!r} kernel: no such kernel spec (known: {known})"
        return message

    def _name(self, kid: str, asked: str | None) -> str:
        """The kernel spec the kernel was started from (the default's real name)."""
        with contextlib.suppress(Exception):
            kernel = self.kernel_manager.get_kernel(kid)
            model = getattr(kernel, "kernel", None)  # a gateway kernel: the gateway's model
            if isinstance(model, dict) and model.get("name"):
                return str(model["name"])
            if getattr(kernel, "kernel_name", ""):
                return str(kernel.kernel_name)
        return asked or ""

    def _watch(self, kid: str) -> None:
        """Note restarts and deaths reported by the kernel's restarter (local kernels)."""

        def died() -> None:
            self._died.add(kid)

        for event in ("restart", "dead"):
            with contextlib.suppress(Exception):
                self.kernel_manager.add_restart_callback(kid, died, event)

    async def _alive(self, kid: str) -> bool:
        if kid in self._died:
            return False
        km = self.kernel_manager
        if kid not in km:  # shut down (by a cancel) or culled
            return False
        try:
            return bool(await ensure_async(km.get_kernel(kid).is_alive()))
        except Exception:
            return kid in km  # gone meanwhile, or cannot tell (a gateway hiccup)

    def _failure(self, job: Job, kid: str, message: str) -> Exception:
        if job.id in self._cancelled:
            return JobCancelled("the job was cancelled")
        return JobFailed(message)

    async def _pump(
        self, job: Job, kid: str, client: Any, msg_id: str, emit: EmitEvent
    ) -> dict[str, Any]:
        """Read IOPub until the execution ends; return the ``done`` event."""
        final: dict[str, Any] = {}
        error: dict[str, Any] | None = None
        while True:
            try:
                msg = await ensure_async(client.get_iopub_msg(timeout=self.poll_interval))
            except queue.Empty:
                if not await self._alive(kid):
                    reason = f"the kernel died while running the job (kernel {kid})"
                    raise self._failure(job, kid, reason) from None
                continue
            except RuntimeError as err:  # a gateway kernel's websocket closed
                reason = f"the kernel died or its connection closed (kernel {kid}): {err}"
                raise self._failure(job, kid, reason) from None
            kind, content = msg["header"]["msg_type"], msg.get("content", {})
            if kind == "status" and content.get("execution_state") in _KERNEL_GONE:
                # a gateway (or the server) telling that the kernel died and is restarted
                reason = f"the kernel died while running the job (kernel {kid})"
                raise self._failure(job, kid, reason)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if kind in ("display_data", "update_display_data"):
                event = content.get("data", {}).get(EVENT_MIME)
                if isinstance(event, dict):
                    if event.get("type") in ("done", "error", "cancelled"):
                        final = dict(event)
                    emit(event)
            elif kind == "stream":
                emit({"type": "log", "text": str(content.get("text", ""))})
            elif kind == "error":
                error = content
                trace = "\n".join(_ANSI.sub("", line) for line in content.get("traceback", []))
                if trace:
                    emit({"type": "log", "text": trace + "\n"})
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        if final.get("type") == "done" and error is None:
            return final
        if job.id in self._cancelled or final.get("type") == "cancelled":
            raise JobCancelled(str(final.get("message", "the job was cancelled")))
        if error is not None and error.get("ename") == "KeyboardInterrupt":
            raise JobCancelled("the job was interrupted")
        if final.get("type") == "error":
            raise JobFailed(str(final.get("message")))
        if error is not None:
            raise JobFailed(f"{error.get('ename')}: {error.get('evalue')}")
        raise JobFailed("the kernel finished the job without a done event")

    async def _shutdown(self, kid: str) -> None:
        """Shut the kernel down; a refusal is retried a few times (a kernel that is
        being restarted, by its gateway after a crash say, cannot be shut down yet)."""
        km = self.kernel_manager
        for pause in (*_SHUTDOWN_RETRIES, None):
            if kid not in km:
                return
            try:
                await ensure_async(km.shutdown_kernel(kid, now=True))
                return
            except Exception as err:
                if pause is None:
                    self.log.warning("mlaas: cannot shut kernel %s down: %s", kid, err)
                    return
                await asyncio.sleep(pause)
