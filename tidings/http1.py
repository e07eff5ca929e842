"""A lean HTTP/1.1 client for Tidings' two hottest outbound paths: notifications and the Graph API.

Every message costs two or three HTTP requests (its send, and a notification per status), so the client's
own CPU sets the ceiling on messages per second. aiohttp spends about 250 µs of CPU per request on this
machine, most of it in layers these paths do not use (cookies, redirects, proxies, multidicts, traces,
per-request timers); this client, a pool of keep-alive connections per origin, each an
`asyncio.Protocol` with httptools' (llhttp's) response parser, spends about a fifth of that.
bench/whatsapp.py measures the difference end to end.

What it does: POST or GET with a ready body; keep-alive, with at most `connections` open in all and
`per_host` per origin, idle ones closed after `keepalive_s`; TLS through an `ssl.SSLContext`; Content-Length
and chunked answers (and answers that end with the connection); one deadline per request, waiting for a
connection included, and a connect deadline. It never follows a redirect. A request whose connection is
closed before any byte of answer (most often an idle keep-alive connection the server timed out just
then) is sent once more on a fresh connection, as the aiohttp-based client did.

Failures are `HttpError`s: `ConnectFailed` (nothing was sent), `Disconnected` (the connection broke
before a whole answer), `BadAnswer` (not HTTP/1.x), and `TimeoutError` for the deadlines. An answer's
body is kept up to `max_body` bytes; the rest is read and dropped, so the connection stays usable.
"""

import asyncio
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast
from urllib.parse import urlsplit

import httptools
import msgspec


class HttpError(Exception):
    """The request failed without an HTTP answer."""


class InvalidUrl(HttpError, ValueError):
    """Not an absolute http(s) URL."""


class ConnectFailed(HttpError):
    """No connection could be made (refused, unreachable, DNS, TLS handshake): nothing was sent."""


class Disconnected(HttpError):
    """The connection broke before the whole answer came."""


class BadAnswer(HttpError):
    """The answer is not HTTP/1.x."""


class Headers(dict[str, str]):
    """An answer's headers, keyed by lower-case name (a repeated header's values joined by ", ")."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, read in full."""

    status_code: int
    headers: Mapping[str, str]  # case-insensitive
    content: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        try:
            return msgspec.json.decode(self.content)
        except msgspec.DecodeError as exc:
            raise ValueError("not JSON") from exc

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class _Target:
    origin: tuple[str, str, int]  # scheme, host, port
    path: bytes  # the request target: path and query
    host_header: bytes


@lru_cache(maxsize=4096)
def _target(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidUrl(str(exc)) from None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in ("http", "https") or not host:
        raise InvalidUrl(f"not an absolute http(s) URL: {url[:200]!r}")
    if port is None:
        port = 443 if scheme == "https" else 80
    default = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if default else f"{shown}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(c in path for c in "\r\n ") or any(c in host_header for c in "\r\n "):
        raise InvalidUrl("a URL may not hold spaces or line breaks")
    return _Target((scheme, host, port), path.encode("latin-1", "strict"), host_header.encode("idna"))


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed as it arrives."""

    def __init__(self, max_body: int) -> None:
        self._max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False
        self.used = 0  # requests sent on it
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._headers_done = False
        self._got_any = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._got_any = True
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: this connection is out of step
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(BadAnswer("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(BadAnswer(f"not an HTTP/1.x answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        # An answer without a length ends with its connection.
        if self._headers_done and self._parser.get_status_code() and not self._has_length():
            self._complete()
            return
        waiter.set_exception(Disconnected(f"the server closed the connection ({exc or 'EOF'})"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        room = self._max_body - self._size
        if room > 0:  # beyond `max_body` an answer is read and dropped: the caller wanted no more
            self._body.append(body if len(body) <= room else body[:room])
        self._size += len(body)

    def on_message_complete(self) -> None:
        self.reusable = bool(self._parser.should_keep_alive())
        self._complete()

    # the client's side
    def send(self, request: bytes, loop: asyncio.AbstractEventLoop) -> "asyncio.Future[Answer]":
        assert self.transport is not None
        self.used += 1
        self.reusable = False
        self._headers, self._body, self._size = [], [], 0
        self._headers_done = self._got_any = False
        self._waiter = loop.create_future()
        self.transport.write(request)
        return self._waiter

    @property
    def answered_nothing(self) -> bool:
        return not self._got_any

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    def _has_length(self) -> bool:
        return any(n.lower() in (b"content-length", b"transfer-encoding") for n, _ in self._headers)

    def _fail(self, exc: HttpError) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()

    def _complete(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        headers = Headers()
        for name, value in self._headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{dict.__getitem__(headers, key)}, {text}" if key in headers else text
        status = self._parser.get_status_code()
        waiter.set_result(Answer(status, headers, b"".join(self._body)))


class _Origin:
    """The connections to one scheme://host:port."""

    def __init__(self, per_host: int) -> None:
        self.idle: deque[_Connection] = deque()
        self.slots = asyncio.Semaphore(per_host)


class HttpClient:
    """Keep-alive HTTP/1.1 connections, pooled per origin. Make it on the loop it will serve."""

    def __init__(
        self,
        *,
        connections: int,
        per_host: int | None = None,
        deadline: float,
        connect: float | None = None,
        context: ssl.SSLContext | None = None,
        headers: Mapping[str, str] | None = None,
        keepalive_s: float = 60.0,
        max_body: int = 16 * 1024 * 1024,
    ) -> None:
        self._slots = asyncio.Semaphore(connections)
        self._per_host = per_host or connections
        self._deadline = deadline
        self._connect = connect if connect is not None else deadline
        self._context = context
        self._keepalive_s = keepalive_s
        self._max_body = max_body
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        self._open: set[_Connection] = set()
        self._default = b"".join(_header_line(k, v) for k, v in (headers or {}).items())
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._origins.clear()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str] | None = None) -> Answer:
        return await self.request("POST", url, body, headers)

    async def get(self, url: str, headers: Mapping[str, str] | None = None) -> Answer:
        return await self.request("GET", url, b"", headers)

    async def request(
        self, method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Answer:
        """Send one request and read its answer in full (HttpError or TimeoutError otherwise)."""
        if self._closed:
            raise HttpError("the client is closed")
        target = _target(url)
        head = b"%s %s HTTP/1.1\r\nHost: %s\r\n%s%sContent-Length: %d\r\n\r\n" % (
            method.encode("ascii"),
            target.path,
            target.host_header,
            self._default,
            b"".join(_header_line(k, v) for k, v in headers.items()) if headers else b"",
            len(body),
        )
        request = head + body if len(body) < 65536 else b"".join((head, body))
        origin = self._origins.get(target.origin)
        if origin is None:
            origin = self._origins[target.origin] = _Origin(self._per_host)
        async with asyncio.timeout(self._deadline):
            async with origin.slots, self._slots:
                return await self._exchange(origin, target, request)

    async def _exchange(self, origin: _Origin, target: _Target, request: bytes) -> Answer:
        loop = asyncio.get_running_loop()
        conn = self._reuse(origin, loop.time())
        if conn is None:
            conn = await self._dial(target, loop)
        try:
            try:
                answer = await conn.send(request, loop)
            except Disconnected:
                self._open.discard(conn)
                if not conn.answered_nothing:
                    raise
                # The server closed the connection without a byte of answer: most often an idle
                # keep-alive connection it timed out just as we used it. Once more, on a fresh
                # connection; a retry by the caller would cost the message an attempt for the same risk.
                conn = await self._dial(target, loop)
                answer = await conn.send(request, loop)
        except BaseException:
            # A timeout or cancellation mid-answer leaves the connection out of step: never reuse it.
            conn.close()
            self._open.discard(conn)
            raise
        if conn.reusable and not conn.closed and not self._closed:
            conn.idle_since = loop.time()
            origin.idle.append(conn)
        else:
            conn.close()
            self._open.discard(conn)
        return answer

    def _reuse(self, origin: _Origin, now: float) -> _Connection | None:
        while origin.idle:
            conn = origin.idle.pop()  # the most recently used: the least likely to have been dropped
            if not conn.closed and now - conn.idle_since < self._keepalive_s:
                return conn
            conn.close()
            self._open.discard(conn)
        return None

    async def _dial(self, target: _Target, loop: asyncio.AbstractEventLoop) -> _Connection:
        scheme, host, port = target.origin
        context = (self._context or _default_context()) if scheme == "https" else None
        try:
            async with asyncio.timeout(self._connect):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self._max_body),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
        except TimeoutError:
            raise ConnectFailed(f"no connection to {host}:{port} within {self._connect:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(f"cannot connect to {host}:{port}: {exc}") from None
        self._open.add(conn)
        return conn


def _header_line(name: str, value: str) -> bytes:
    if any(c in name for c in "\r\n:") or any(c in value for c in "\r\n"):
        raise ValueError(f"header {name!r}: line breaks are not allowed")
    return f"{name}: {value}\r\n".encode("latin-1")


@lru_cache(maxsize=1)
def _default_context() -> ssl.SSLContext:
    return ssl.create_default_context()
