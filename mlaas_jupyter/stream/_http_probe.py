"""One small request to an ``http(s)://`` file before uproot reads it, so that what the
web server does wrong is said in one line instead of surfacing as uproot's
``DeserializationError: attempting to get bytes ... outside expected range``.

uproot reads ROOT files in byte ranges (HTTP ``Range`` requests, answered ``206 Partial
Content``). The probe asks for the first :data:`PROBE_BYTES` bytes, through the same
fsspec/aiohttp client that uproot uses (so the same credentials from the URL or from
fsspec's ``FSSPEC_HTTP``/``FSSPEC_HTTPS`` settings, the same redirects, which it
follows), and says what is wrong:

* the server ignores ranges (``200`` with the whole file, no ``Content-Range``, or bytes
  that are not the ones asked for), as ``python -m http.server`` does;
* it wants credentials (401) or refuses them (403);
* there is no such file (404, 410), or another HTTP error;
* it cannot be reached, answers nothing within :data:`TIMEOUT_S`, or closes the
  connection before the bytes it announced.

A redirect is followed; the message then names where it led. What the probe reads (the
file's first bytes and its size) lets :mod:`._root_io` check the ROOT header as it does
for local files. Other schemes (``root://``, ``s3://``) are not probed here.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from typing import Any

from ..errors import SourceError

__all__ = [
    "PROBE_BYTES",
    "TIMEOUT_S",
    "RemoteHead",
    "dropped_connection",
    "http_options",
    "probe_http",
    "read_failure",
]

#: how many bytes the probe asks for: enough for a ROOT file's header
PROBE_BYTES = 64
#: seconds to connect, and to wait for each read, before giving up on a web server
#: (``MLAAS_HTTP_TIMEOUT`` sets it; aiohttp alone would wait 5 minutes)
TIMEOUT_S = float(os.environ.get("MLAAS_HTTP_TIMEOUT", "") or 30.0)
#: what to do about a server without range requests, said once for every message
RANGE_HELP = (
    "download the file (curl -O URL) and give its local path, serve it with a server that "
    "honours ranges (nginx, Apache, XRootD; python -m http.server does not), or read it "
    "over root://"
)
#: how to give credentials to the client uproot uses (aiohttp through fsspec)
CREDENTIALS_HELP = (
    "put them in the URL (https://user:token@host/..., or a token the server takes in the "
    'query string) or set request headers for fsspec, e.g. FSSPEC_HTTPS=\'{"headers": '
    '{"Authorization": "Bearer <token>"}}\' (FSSPEC_HTTP for http://) in the environment '
    "of mlaas and of its server"
)
_RECEIVED = re.compile(r"received (\d+) of (\d+) bytes")
#: URLs already probed fine in this process (a file is opened once per pass)
_GOOD: dict[str, RemoteHead] = {}


@dataclass(frozen=True)
class RemoteHead:
    """The first bytes of a remote file, its size (from ``Content-Range``) and the URL
    it was read from after redirects."""

    head: bytes
    size: int | None
    final_url: str


def _is_http(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


def probe_http(url: str) -> RemoteHead | None:
    """The first bytes of the ``http(s)://`` file ``url`` (``None`` for other schemes).

    Raises
    ------
    SourceError
        Naming ``url``, in one line: what the server did wrong and what to do.
    """
    if not _is_http(url):
        return None
    if url in _GOOD:
        return _GOOD[url]
    import fsspec
    from fsspec.asyn import sync

    filesystem = fsspec.filesystem("https")
    try:
        found: RemoteHead = sync(filesystem.loop, _probe, filesystem, url)
    except SourceError:
        raise
    except Exception as err:  # reaching the server failed: name why, in one line
        raise SourceError(url, _unreachable(err)) from None
    if len(_GOOD) < 1024:
        _GOOD[url] = found
    return found


async def _probe(filesystem: Any, url: str) -> RemoteHead:
    import aiohttp

    options = dict(filesystem.kwargs)
    headers = {**options.pop("headers", {}), "Range": f"bytes=0-{PROBE_BYTES - 1}"}
    options.update(http_options(url))
    session = await filesystem.set_session()
    async with session.get(filesystem.encode_url(url), headers=headers, **options) as reply:
        final = str(reply.url)
        where = f" (the URL redirects to {final})" if reply.history else ""
        if reply.status == 416 and reply.headers.get("Content-Range", "").endswith("/0"):
            raise SourceError(url, f"not a ROOT file: the file is empty{where}")
        if reply.status >= 400:
            reply.close()  # not reading an error page
            raise SourceError(url, _http_error(reply.status, str(reply.reason or "")) + where)
        announced = reply.content_length
        content_range = reply.headers.get("Content-Range", "")
        if reply.status != 206 or not content_range.startswith("bytes 0-"):
            reply.close()  # the whole file may follow: do not read it
            if reply.status == 200:
                answer = "it sent the whole file: HTTP 200, not 206 Partial Content"
            else:
                answer = f"it answered HTTP {reply.status} without a Content-Range for them"
            raise SourceError(
                url,
                "the web server does not honour HTTP range requests (asked for bytes "
                f"0-{PROBE_BYTES - 1}, {answer}){where}; ROOT files are read in byte "
                f"ranges: {RANGE_HELP}",
            )
        body = bytearray()
        try:
            async for block in reply.content.iter_chunked(PROBE_BYTES):
                body += block
                if len(body) > PROBE_BYTES:  # more than asked for: enough to tell
                    reply.close()
                    break
        except aiohttp.ClientPayloadError as err:
            raise SourceError(url, dropped_connection(err, len(body), announced) + where) from None
    size = _total_size(content_range)
    if len(body) != min(PROBE_BYTES, size if size is not None else PROBE_BYTES):
        sent = f"more than {PROBE_BYTES}" if len(body) > PROBE_BYTES else str(len(body))
        raise SourceError(
            url,
            "the web server does not honour HTTP range requests as ROOT files need (asked "
            f"for bytes 0-{PROBE_BYTES - 1}, it sent {sent}){where}; {RANGE_HELP}",
        )
    return RemoteHead(bytes(body), size, final)


def http_options(url: str) -> dict[str, Any]:
    """What uproot passes on to fsspec's HTTP client for ``url``: a timeout to connect
    and for each read (none for other schemes), so a stalled server is an error, not a
    hang."""
    if not _is_http(url):
        return {}
    import aiohttp

    return {
        "timeout": aiohttp.ClientTimeout(total=None, sock_connect=TIMEOUT_S, sock_read=TIMEOUT_S)
    }


def _total_size(content_range: str) -> int | None:
    total = content_range.rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None


def _http_error(status: int, reason: str) -> str:
    code = f"HTTP {status} {reason}".strip()
    if status == 401:
        return f"the server asks for credentials ({code}): {CREDENTIALS_HELP}"
    if status == 403:
        return (
            f"the server refuses to send the file ({code}): credentials are missing or do "
            f"not allow reading it; {CREDENTIALS_HELP}"
        )
    if status in (404, 410):
        return f"no such file at this URL ({code}); check the address"
    return f"the server answered {code} to a request for the file's first bytes"


def dropped_connection(
    err: BaseException, received: int | None = None, announced: int | None = None
) -> str:
    """``"the server closed the connection after N of M bytes ..."`` for a read cut
    short (aiohttp's ``ClientPayloadError``), from its message when it says more."""
    match = _RECEIVED.search(str(err))
    if match:
        received, announced = int(match.group(1)), int(match.group(2))
    if received is None:
        when = "in the middle of a read"
    else:
        of = f" of {announced}" if announced is not None else ""
        when = f"after {received}{of} bytes of a read"
    return (
        f"the server closed the connection {when}; try again, or download the file and "
        "give its local path"
    )


def _unreachable(err: BaseException) -> str:
    if isinstance(err, asyncio.TimeoutError | TimeoutError):
        return f"no answer from the server within {TIMEOUT_S:g} s; check the address and network"
    text = " ".join(str(err).split()) or type(err).__name__
    return f"cannot reach the server ({text})"


#: the errors of aiohttp that uproot returns in place of bytes (its fsspec source then
#: fails with "'ClientPayloadError' object is not subscriptable")
_SWALLOWED = re.compile(
    r"'(ClientPayloadError|ServerDisconnectedError|ClientOSError|ClientConnectorError|"
    r"ClientConnectionError|ServerTimeoutError|TimeoutError|FSTimeoutError|"
    r"ClientResponseError)' object is not subscriptable"
)


def read_failure(err: BaseException) -> str | None:
    """What went wrong, in words, when ``err`` (or what caused it) is a web server or
    the network failing in the middle of reading a remote file (``None`` otherwise):
    then the file itself is not damaged."""
    import aiohttp

    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, aiohttp.ClientPayloadError):
            return dropped_connection(current)
        if isinstance(current, aiohttp.ClientResponseError):
            return _http_error(current.status, str(current.message or ""))
        if isinstance(current, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
            return "the server closed the connection in the middle of a read; try again"
        if isinstance(current, aiohttp.ServerTimeoutError):
            return f"no answer from the server within {TIMEOUT_S:g} s in the middle of a read"
        match = _SWALLOWED.search(str(current)) if isinstance(current, TypeError) else None
        if match:
            return (
                f"the connection to the web server failed in the middle of a read "
                f"({match.group(1)}); try again, or download the file and give its local path"
            )
        current = current.__cause__ or current.__context__
    return None
