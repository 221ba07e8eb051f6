"""Talking to a job's kernel on a Jupyter Kernel Gateway or Enterprise Gateway.

Started with ``--gateway-url``, the Jupyter server's kernel manager
(``GatewayMappingKernelManager``) starts, interrupts and shuts kernels down over the
gateway's REST API, and the kernel executor uses it like any other. Its messages are
another matter: the client that ``GatewayKernelManager.client()`` returns
(jupyter_server's ``GatewayKernelClient``) opens the kernel's websocket without the
gateway's credentials (a gateway with a token answers 401), with a blocking call on
the event loop, and waits for a message by spinning the loop (``asyncio.sleep(0)``): a
whole core for as long as a job trains.

:class:`GatewayKernelChannels` opens the same ``/api/kernels/{id}/channels`` websocket
the way the server proxies a notebook's (``GatewayClient.load_connection_args()``:
auth headers, TLS, timeouts; tornado, no thread) and offers what the kernel executor
uses of a kernel client: ``start_channels``, ``wait_for_ready``, ``execute``,
``get_iopub_msg`` and ``stop_channels``. :func:`gateway_client_factory` builds one per
job kernel; :class:`~mlaas_jupyter.web.extension.MlaasExtension` hands it to the
executor when the server runs with a gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
from collections.abc import Callable
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.utils import url_path_join
from tornado.escape import url_escape
from tornado.httpclient import HTTPRequest
from tornado.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    websocket_connect,
)

__all__ = ["GatewayKernelChannels", "gateway_client_factory"]

_CHANNELS = ("shell", "iopub", "stdin", "control")
#: largest message read from the gateway (events carry plots' data at most)
_MAX_MESSAGE = 256 << 20


class GatewayKernelChannels:
    """The channels of one gateway kernel over its websocket (the JSON protocol).

    Parameters
    ----------
    gateway
        The server's :class:`GatewayClient` (its URL, websocket URL, credentials).
    kernel_id
        The gateway's id of the kernel.
    """

    def __init__(self, gateway: GatewayClient, kernel_id: str) -> None:
        self.gateway = gateway
        self.kernel_id = kernel_id
        self.session = Session(username="mlaas")
        self._socket: WebSocketClientConnection | None = None
        self._queues: dict[str, asyncio.Queue[dict[str, Any] | None]] = {
            name: asyncio.Queue() for name in _CHANNELS
        }
        self._reader: asyncio.Task[None] | None = None
        self._closed: str | None = None  # why the websocket closed, once it has

    @property
    def url(self) -> str:
        """The websocket URL of the kernel's channels on the gateway."""
        return str(
            url_path_join(
                self.gateway.ws_url or "",
                self.gateway.kernels_endpoint,
                url_escape(self.kernel_id),
                "channels",
            )
        )

    async def start_channels(self) -> None:
        """Open the kernel's websocket (with the gateway's credentials) and read it."""
        request = HTTPRequest(self.url, **self.gateway.load_connection_args())
        self._socket = await websocket_connect(request, max_message_size=_MAX_MESSAGE)
        self._reader = asyncio.ensure_future(self._read())

    async def wait_for_ready(self, timeout: float = 60.0) -> None:
        """Ask for ``kernel_info`` until the kernel answers.

        Raises
        ------
        RuntimeError
            No answer within ``timeout`` seconds, or the websocket closed.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            msg_id = await self._send("shell", "kernel_info_request", {})
            answer = loop.time() + min(1.0, max(0.0, deadline - loop.time()))
            while loop.time() < answer:
                try:
                    reply = await self._get("shell", answer - loop.time())
                except queue.Empty:
                    break
                if reply.get("parent_header", {}).get("msg_id") == msg_id:
                    return
        raise RuntimeError(f"kernel {self.kernel_id} did not answer within {timeout:g} s")

    async def execute(
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        allow_stdin: bool = False,
    ) -> str:
        """Send an ``execute_request``; returns its message id."""
        content = {
            "code": code,
            "silent": silent,
            "store_history": store_history,
            "user_expressions": {},
            "allow_stdin": allow_stdin,
            "stop_on_error": True,
        }
        return await self._send("shell", "execute_request", content)

    async def get_iopub_msg(self, timeout: float | None = None) -> dict[str, Any]:
        """The next IOPub message.

        Raises
        ------
        queue.Empty
            None came within ``timeout`` seconds.
        RuntimeError
            The websocket closed (the kernel or the gateway went away).
        """
        return await self._get("iopub", timeout)

    def stop_channels(self) -> None:
        """Close the websocket."""
        self._closed = self._closed or "the channels were stopped"
        if self._socket is not None:
            self._socket.close()
        if self._reader is not None:
            self._reader.cancel()

    # -- internals ---------------------------------------------------------------------

    async def _send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        if self._socket is None or self._closed is not None:
            raise RuntimeError(f"the websocket of kernel {self.kernel_id} is closed")
        msg = self.session.msg(msg_type, content)
        msg["channel"] = channel
        try:
            await self._socket.write_message(json.dumps(msg, default=json_default))
        except WebSocketClosedError:
            raise RuntimeError(f"the websocket of kernel {self.kernel_id} closed") from None
        return str(msg["header"]["msg_id"])

    async def _get(self, channel: str, timeout: float | None) -> dict[str, Any]:
        if self._socket is None:
            raise RuntimeError(f"the channels of kernel {self.kernel_id} are not open")
        pending = self._queues[channel]
        if pending.empty() and self._closed is not None:
            raise RuntimeError(self._closed)
        try:
            msg = await asyncio.wait_for(pending.get(), timeout)
        except TimeoutError:
            raise queue.Empty from None
        if msg is None:  # the reader's last word: the websocket closed
            pending.put_nowait(None)  # for whoever asks next
            raise RuntimeError(self._closed or "the websocket closed")
        return msg

    async def _read(self) -> None:
        socket = self._socket
        assert socket is not None
        reason = ""
        try:
            while (text := await socket.read_message()) is not None:
                if isinstance(text, bytes):
                    # messages with binary buffers (widgets): nothing a job sends
                    continue
                msg = json.loads(text)
                pending = self._queues.get(str(msg.pop("channel", "")))
                if pending is not None:
                    pending.put_nowait(msg)
        except ValueError as err:  # not a Jupyter message: nothing more can be trusted
            reason = f"an unreadable message: {err}"
        finally:
            reason = reason or socket.close_reason or "connection lost"
            self._closed = self._closed or f"the gateway closed the websocket ({reason})"
            for pending in self._queues.values():
                with contextlib.suppress(asyncio.QueueFull):
                    pending.put_nowait(None)


def gateway_client_factory(gateway: GatewayClient) -> Callable[[Any, str], Any]:
    """``factory(kernel_manager, kernel_id)``: the channels of a gateway kernel (what
    :attr:`KernelExecutor.client_factory` takes)."""

    def factory(kernel_manager: Any, kernel_id: str) -> GatewayKernelChannels:
        return GatewayKernelChannels(gateway, kernel_id)

    return factory
