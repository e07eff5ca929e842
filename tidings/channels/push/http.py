"""The HTTP client the push providers share: an aiohttp session over HTTP/1.1 keep-alive connections.

FCM, WNS and the web push services all take HTTP/1.1. aiohttp costs about 0.2 ms of CPU per request
where httpx's HTTP/2 client cost 1-2 ms, and a pool of keep-alive connections per host serves as well
as multiplexed streams on one.

`open_session` bounds the pool (in total and per host: a web push session reaches several services)
and every request as a whole; `post` sends one request without following a redirect (a redirect could
take a bearer token or a user-chosen URL anywhere), reads the answer in full, and sends once more when
the server had closed an idle keep-alive connection under us.
"""

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from tidings.http1 import Answer

__all__ = ["Answer", "open_session", "post", "tls_context"]

_KEEPALIVE_S = 60.0  # an idle connection is closed after this (servers drop idle ones anyway)


def tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """The system's CAs, plus `ca_file`'s (OSError or ssl.SSLError when it is not a PEM bundle)."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def open_session(
    *,
    connections: int,
    per_host: int | None = None,
    deadline: float,
    connect: float,
    context: ssl.SSLContext | None = None,
    headers: Mapping[str, str] | None = None,
) -> aiohttp.ClientSession:
    """A session (call it on the event loop it will serve) holding at most `connections` connections,
    `per_host` (default: all of them) to one host; each request, waiting for a connection included,
    ends within `deadline` seconds, and a connection must be made within `connect`."""
    connector = aiohttp.TCPConnector(
        limit=connections,
        limit_per_host=per_host or connections,
        keepalive_timeout=_KEEPALIVE_S,
        ssl=context or tls_context(),
    )
    timeout = aiohttp.ClientTimeout(total=deadline, connect=connect)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers)


async def _once(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> Answer:
    async with session.post(url, allow_redirects=False, **kwargs) as response:
        return Answer(response.status, response.headers, await response.read())


async def post(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> Answer:
    """POST and read the answer. Raises aiohttp.ClientError or TimeoutError (for the caller to map)."""
    try:
        return await _once(session, url, **kwargs)
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        if isinstance(exc, aiohttp.ClientConnectorError):
            raise  # never connected: nothing was sent, and trying again would not help
        # The server closed the connection under us (an idle keep-alive connection timed out, a
        # reset): once more, on a fresh connection. A retry by the dispatcher would risk the same
        # duplicate and cost the message an attempt.
        return await _once(session, url, **kwargs)
