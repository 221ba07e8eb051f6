"""The in-process transport: the core service in this process, on a loop of its own.

When no Jupyter server with the mlaas extension answers (a notebook under nbconvert,
papermill or VS Code, a script), the client runs the core itself: an
:class:`~mlaas_jupyter.core.Mlaas` with every executor and the model registry, on an
asyncio loop in a daemon thread, with the same job store as the server (so its jobs
show up there later). There is one core per store file, shared by all the clients of
this process and stopped at exit (its running jobs then become lost). Calls go
through the same routes and request models as the REST API, and results are handed
back as a JSON reply would be read, so that both transports answer alike.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from traitlets.config import Config

from .._json import to_plain
from ..core.service import Mlaas
from ..web.routes import route

__all__ = ["InProcessTransport"]

_T = TypeVar("_T")


class _Host:
    """One started core on an event loop of its own, in a daemon thread."""

    def __init__(self, settings: Mapping[str, Any], config: Config | None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="mlaas-core", daemon=True)
        self.thread.start()
        self.core = Mlaas(config=config or Config(), **settings)
        self.run(self._start())
        atexit.register(self.close)

    async def _start(self) -> None:
        self.core.start()

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the running jobs (they become lost), the core and the loop."""
        if not self.loop.is_running():
            return
        try:
            self.run(self.core.stop(), timeout=60)
        finally:
            atexit.unregister(self.close)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            if not self.thread.is_alive():
                self.loop.close()


class InProcessTransport:
    """Calls the routes of a core service that runs in this process.

    Parameters
    ----------
    settings
        Traits of :class:`~mlaas_jupyter.core.Mlaas` (``job_store``, ``runs_dir``,
        ``models_dir``, ...); cores are shared per job store file.
    config
        A traitlets config for the core and its executors (``c.DaskExecutor...``).
    """

    _hosts: ClassVar[dict[str, _Host]] = {}
    _lock = threading.Lock()

    def __init__(self, settings: Mapping[str, Any], config: Config | None = None) -> None:
        settings = {k: v for k, v in settings.items() if v is not None}
        probe = Mlaas(config=config or Config(), **settings)
        self.key = str(Path(probe.job_store).resolve())
        with self._lock:
            host = self._hosts.get(self.key)
            if host is None or not host.loop.is_running():
                host = self._hosts[self.key] = _Host(settings, config)
        self.host: _Host | None = host

    @property
    def core(self) -> Mlaas:
        if self.host is None:
            from ..errors import MlaasError

            raise MlaasError("this client is closed")
        return self.host.core

    @property
    def where(self) -> str:
        return f"in this process (job store {self.core.job_store})"

    def call(
        self,
        name: str,
        params: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """Run the route ``name`` on the core; its result as a JSON reply reads."""
        operation = route(name)
        core = self.core
        if body is not None and not isinstance(body, bytes | bytearray):
            body = to_plain(body)  # what the server would read from the JSON body
        checked = operation.check(
            params or {}, {k: v for k, v in (query or {}).items() if v is not None}, body
        )
        assert self.host is not None
        result = self.host.run(operation.run(core, checked))
        if operation.returns != "json":  # a download or a page: its bytes
            stream = result[0]
            with stream:
                return stream.read()
        return to_plain(result)

    def close(self) -> None:
        """Stop the core of this store (its running jobs become lost)."""
        if self.host is not None:
            self.host.close()
            with self._lock:
                self._hosts.pop(self.key, None)
            self.host = None
