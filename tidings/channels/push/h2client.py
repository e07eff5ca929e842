"""A small HTTP/2 client for one origin over TLS, on the `h2` state machine.

Why not httpx: its HTTP/2 path (httpcore + h2) costs ~1.5 ms of CPU per request, which caps one
process near 600 requests/s; APNs wants one connection carrying thousands of pushes a second. This
client keeps to what such a service needs: one TLS connection (ALPN h2 or nothing), opened on the
first request and again whenever the last one is lost or closing, many concurrent streams on it (at
most the server's SETTINGS_MAX_CONCURRENT_STREAMS), request bodies sent within the flow-control
windows, and bounded time on connect and on every request.

The connection is an `asyncio.Protocol`: bytes from the socket go straight into `h2` and its events
settle per-stream futures, so a request costs no task of its own. Frames for many requests written in
the same loop turn go out in one write.

GOAWAY: streams above the server's last stream id fail with `StreamRefused` (the server never saw
them, so sending again is safe), streams at or below it still complete, and new requests go to a new
connection. `h2` closes its whole state machine on GOAWAY (python-hyper/h2 issue 1181), so the
connection uses a state machine that keeps accepting frames for the streams still running.
"""

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

import h2.events as ev
from h2.config import H2Configuration
from h2.connection import ConnectionInputs, ConnectionState, H2Connection, H2ConnectionStateMachine
from h2.errors import ErrorCodes
from h2.exceptions import H2Error as _H2LibError
from h2.exceptions import NoAvailableStreamIDError
from h2.settings import SettingCodes
from hpack import Encoder, NeverIndexedHeaderTuple

Headers = Sequence[tuple[bytes, bytes]]

CONNECT_TIMEOUT_S = 5.0
CLOSE_WAIT_S = 1.0
# How many times a request looks for a usable connection when the one it waited on closed before the
# request went out (nothing was sent, so trying again is safe). Bounded so a flapping server fails.
_OPEN_ATTEMPTS = 3


def unindexed(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    """A header whose value differs on every request (an id, a device token): sent as an HPACK literal
    that is not added to the dynamic table, so it does not push out the entries worth keeping (the
    authorization header above all) nor lengthen every later table search."""
    return NeverIndexedHeaderTuple(name, value)


class H2ClientError(Exception):
    """The request did not get an answer. `retryable`: the server surely did not process it."""

    retryable = False


class ConnectError(H2ClientError):
    """No connection: refused, TLS failure, the server would not speak HTTP/2, or no SETTINGS."""


class ConnectionLost(H2ClientError):
    """The connection broke (closed, reset, protocol error) while the request was on it."""


class StreamRefused(H2ClientError):
    """GOAWAY left this stream out, or the server reset it with REFUSED_STREAM."""

    retryable = True


class StreamReset(H2ClientError):
    """The server reset the stream (RST_STREAM) with an error code."""


class _NotSent(Exception):
    """The connection became unusable before the request was written: the client takes another."""


class Response(NamedTuple):
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        """The first value of header `name` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class _GracefulStateMachine(H2ConnectionStateMachine):
    """h2's connection state machine, except that a received GOAWAY leaves the connection open, so
    the streams the server promised to finish (ids up to its last_stream_id) can still be read.
    New streams are never opened on such a connection: `_Connection.usable` guards that."""

    _transitions = {  # noqa: RUF012 (h2 declares it a plain attribute)
        **H2ConnectionStateMachine._transitions,
        (ConnectionState.CLIENT_OPEN, ConnectionInputs.RECV_GOAWAY): (None, ConnectionState.CLIENT_OPEN),
    }


class _H2(H2Connection):
    """h2's connection with the client's own bookkeeping where h2's costs grow with the load:

    - h2 counts open streams by walking every stream it holds before opening another (O(streams) per
      request, the largest single cost at hundreds in flight); the client already counts its streams,
      so h2's walk (which also forgets closed streams) runs only every `_SWEEP` new streams.
    - HPACK Huffman coding of the unique values (device token, apns-id) costs more CPU than the few
      bytes it saves; header values go out as plain literals (still indexed when they repeat).
    """

    def __init__(self) -> None:
        super().__init__(config=_CONFIG)
        self.state_machine = _GracefulStateMachine()
        self.encoder = _PlainEncoder()
        self.active = 0  # streams the client has open, including the one being opened
        self._until_sweep = _SWEEP

    @property
    def open_outbound_streams(self) -> int:
        self._until_sweep -= 1
        if self._until_sweep <= 0:
            self._until_sweep = _SWEEP
            return self._open_streams(1)  # odd ids: the client's
        return self.active - 1


class _PlainEncoder(Encoder):
    def encode(self, headers: Any, huffman: bool = False) -> bytes:
        return super().encode(headers, huffman=False)


_SWEEP = 256
# Requests written at least this often: frames of requests made in one loop turn share a write, up to
# this many, so the server can start on the first while later ones are still being encoded.
_FLUSH_EVERY = 64
_CONFIG = H2Configuration(
    client_side=True,
    header_encoding=None,
    # The caller builds well-formed lower-case headers; skipping h2's outbound checks saves CPU, and
    # skipping normalisation lets HPACK index the repeated authorization header.
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
)


class _Stream:
    __slots__ = ("body", "future", "headers", "status", "window")

    def __init__(self, future: "asyncio.Future[Response]") -> None:
        self.future = future
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.window: asyncio.Future[None] | None = None  # set while waiting for WINDOW_UPDATE


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection: h2's state, the open streams and the waiters for a stream slot."""

    def __init__(self, loop: asyncio.AbstractEventLoop, authority: bytes, max_streams: int) -> None:
        self._loop = loop
        self._authority = authority
        self._cap = max_streams
        self._h2 = _H2()
        self._transport: asyncio.Transport | None = None
        self._streams: dict[int, _Stream] = {}
        self._max_streams = 1  # until the server's SETTINGS say more
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._flush_pending = False
        self._unsent = 0  # requests queued in h2 since the last write
        self.ready: asyncio.Future[None] = loop.create_future()  # the server's first SETTINGS
        self.finished: asyncio.Future[None] = loop.create_future()  # the transport is gone
        self.usable = True  # False once GOAWAY, retired, lost or closed: no new streams
        self.closed = False
        self._on_idle: Callable[[_Connection], None] | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if alpn != "h2":
            # Writing the HTTP/2 preface to a server that did not agree to it would be garbage to it.
            self._settle_ready(ConnectError(f"the server did not agree to HTTP/2 (ALPN {alpn!r})"))
            transport.close()
            return
        self._h2.initiate_connection()
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except _H2LibError as exc:
            self._flush()  # h2 queued a GOAWAY naming the error
            self._lose(ConnectionLost(f"HTTP/2 protocol error from the server: {exc}"))
            return
        for event in events:
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(self, event)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc!r}" if exc else "the server closed the connection"
        self._lose(ConnectionLost(reason), closed=True)
        if not self.finished.done():
            self.finished.set_result(None)

    # -- requests ------------------------------------------------------------------------------------

    async def request(
        self, method: bytes, path: bytes, headers: Headers, body: bytes, unique_path: bool
    ) -> Response:
        await self._slot()
        stream_id = 0
        try:
            try:
                stream_id = self._h2.get_next_available_stream_id()
            except NoAvailableStreamIDError:
                self.usable = False  # ids run out after 2**30 requests: the client takes a new one
                raise _NotSent from None
            stream = _Stream(self._loop.create_future())
            self._streams[stream_id] = stream
            request_headers = [
                (b":method", method),
                (b":scheme", b"https"),
                (b":authority", self._authority),
                unindexed(b":path", path) if unique_path else (b":path", path),
                *headers,
            ]
            try:
                self._h2.send_headers(stream_id, request_headers, end_stream=not body)
                if body:
                    await self._send_body(stream_id, stream, body)
            except _H2LibError as exc:  # h2 refused to send: this connection's state is not to be trusted
                self.usable = False
                raise ConnectionLost(f"HTTP/2 state error: {exc}") from None
            self._schedule_flush()
            return await stream.future
        finally:
            self._streams.pop(stream_id, None)
            self._end(stream_id)
            self._release()

    def retire(self) -> None:
        """Take no new streams; close once the running ones finish."""
        self.usable = False
        self._wake_slot_waiters()
        if self._h2.active == 0:
            self.close()

    def close(self) -> None:
        self.usable = False
        if self._transport is None and not self.finished.done():
            self.finished.set_result(None)  # never connected: nothing to wait for
        if self._transport is not None and not self._transport.is_closing():
            if not self.closed:
                with contextlib.suppress(_H2LibError):
                    self._h2.close_connection()
                self._flush()
            self._transport.close()

    async def _slot(self) -> None:
        while True:
            if not self.usable:
                raise _NotSent
            if self._h2.active < self._max_streams:
                self._h2.active += 1
                return
            waiter = self._loop.create_future()
            self._slot_waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass the wake-up on: this waiter no longer wants it
                raise

    def _release(self) -> None:
        self._h2.active -= 1
        if not self.usable and self._h2.active == 0:
            self.close()
        else:
            self._wake_one()

    def _wake_one(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_slot_waiters(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def _send_body(self, stream_id: int, stream: _Stream, body: bytes) -> None:
        """DATA frames within the stream's and the connection's windows; wait for WINDOW_UPDATE."""
        view = memoryview(body)
        offset = 0
        while offset < len(body):
            if stream.future.done():
                return  # reset or lost while waiting: the answer is already decided
            window = min(self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size)
            if window <= 0:
                stream.window = self._loop.create_future()
                self._flush()
                await stream.window
                stream.window = None
                continue
            chunk = view[offset : offset + window]
            offset += len(chunk)
            self._h2.send_data(stream_id, chunk.tobytes(), end_stream=offset >= len(body))

    def _end(self, stream_id: int) -> None:
        """Reset a stream h2 still holds open once the caller is done with it: the caller gave up
        (timeout), or the server answered before the whole body went out. The server can then drop
        it, and h2's count of open streams stays right."""
        stream = self._h2.streams.get(stream_id)
        if stream is not None and not stream.closed and not self.closed:
            with contextlib.suppress(_H2LibError):
                self._h2.reset_stream(stream_id, ErrorCodes.CANCEL)
                self._schedule_flush()

    # -- writing -------------------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        self._unsent += 1
        if self._unsent >= _FLUSH_EVERY:
            self._flush()  # a large batch goes out in slices: the server starts on the first at once
        elif not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        self._unsent = 0
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    # -- events --------------------------------------------------------------------------------------

    def _on_response(self, event: ev.ResponseReceived) -> None:
        stream = self._streams.get(event.stream_id or 0)
        if stream is not None and event.headers is not None:
            stream.headers = [(bytes(k), bytes(v)) for k, v in event.headers]
            for key, value in stream.headers:
                if key == b":status":
                    stream.status = int(value)
                    break

    def _on_data(self, event: ev.DataReceived) -> None:
        stream_id = event.stream_id or 0
        stream = self._streams.get(stream_id)
        if stream is not None and event.data is not None:
            stream.body.append(event.data)
        if event.flow_controlled_length:
            self._h2.acknowledge_received_data(event.flow_controlled_length, stream_id)

    def _on_end(self, event: ev.StreamEnded) -> None:
        stream = self._streams.get(event.stream_id or 0)
        if stream is not None and not stream.future.done():
            stream.future.set_result(Response(stream.status, stream.headers, b"".join(stream.body)))

    def _on_reset(self, event: ev.StreamReset) -> None:
        stream = self._streams.get(event.stream_id or 0)
        if stream is None:
            return
        code = event.error_code
        error: H2ClientError = (
            StreamRefused("the server refused the stream (REFUSED_STREAM)")
            if code == ErrorCodes.REFUSED_STREAM
            else StreamReset(f"the server reset the stream ({code!r})")
        )
        self._fail(stream, error)

    def _on_window(self, event: ev.WindowUpdated) -> None:
        if event.stream_id:
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                _wake(stream.window)
        else:
            for stream in self._streams.values():
                _wake(stream.window)

    def _on_settings(self, event: ev.RemoteSettingsChanged) -> None:
        changed = event.changed_settings.get(SettingCodes.MAX_CONCURRENT_STREAMS)
        if changed is not None or not self.ready.done():
            self._max_streams = max(1, min(self._cap, self._h2.remote_settings.max_concurrent_streams))
            self._wake_slot_waiters()
        if SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
            for stream in self._streams.values():
                _wake(stream.window)
        self._settle_ready(None)

    def _on_goaway(self, event: ev.ConnectionTerminated) -> None:
        self.usable = False
        last = event.last_stream_id if event.last_stream_id is not None else 0
        refused = StreamRefused(f"GOAWAY ({event.error_code!r}): the server did not take this stream")
        for stream_id, stream in list(self._streams.items()):
            if stream_id > last:
                self._fail(stream, refused)
        self._wake_slot_waiters()
        self._settle_ready(ConnectError(f"the server sent GOAWAY ({event.error_code!r}) at once"))
        if self._h2.active == 0:
            self.close()

    # -- failure -------------------------------------------------------------------------------------

    def _lose(self, error: H2ClientError, *, closed: bool = False) -> None:
        self.usable = False
        self.closed = self.closed or closed
        self._settle_ready(ConnectError(str(error)))
        for stream in list(self._streams.values()):
            self._fail(stream, error)
        self._wake_slot_waiters()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        if self._on_idle is not None:
            self._on_idle(self)

    def _fail(self, stream: _Stream, error: H2ClientError) -> None:
        if not stream.future.done():
            stream.future.set_exception(error)
        _wake(stream.window)

    def _settle_ready(self, error: H2ClientError | None) -> None:
        if self.ready.done():
            return
        if error is None:
            self.ready.set_result(None)
        else:
            self.ready.set_exception(error)
            self.ready.exception()  # retrieved: nobody may be waiting any more


def _wake(waiter: "asyncio.Future[None] | None") -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


_HANDLERS: dict[type[ev.Event], Callable[[_Connection, ev.Event], None]] = {
    ev.ResponseReceived: _Connection._on_response,  # type: ignore[dict-item]
    ev.DataReceived: _Connection._on_data,  # type: ignore[dict-item]
    ev.StreamEnded: _Connection._on_end,  # type: ignore[dict-item]
    ev.StreamReset: _Connection._on_reset,  # type: ignore[dict-item]
    ev.WindowUpdated: _Connection._on_window,  # type: ignore[dict-item]
    ev.RemoteSettingsChanged: _Connection._on_settings,  # type: ignore[dict-item]
    ev.ConnectionTerminated: _Connection._on_goaway,  # type: ignore[dict-item]
}


class H2Client:
    """Requests to one https origin over one HTTP/2 connection at a time.

    `ssl_context` verifies the server as the caller wants; its ALPN list is set to ["h2"] here.
    `max_streams` caps the concurrent streams below what the server allows.
    """

    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        *,
        max_streams: int = 1000,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        ssl_context.set_alpn_protocols(["h2"])
        self._host, self._port, self._ssl = host, port, ssl_context
        self._authority = (host if port == 443 else f"{host}:{port}").encode("idna")
        self._max_streams = max_streams
        self._connect_timeout_s = connect_timeout_s
        self._conn: _Connection | None = None
        self._opening: asyncio.Task[_Connection] | None = None
        self._others: set[_Connection] = set()  # retired or closing, still finishing streams
        self.opened = 0  # connections opened so far (tests and metrics read it)
        self._closed = False

    async def request(
        self,
        method: bytes,
        path: bytes,
        headers: Headers,
        body: bytes,
        timeout_s: float,
        *,
        unique_path: bool = False,
    ) -> Response:
        """Send one request and wait for the whole answer. Raises TimeoutError after `timeout_s`
        seconds (the stream is then reset), ConnectError when no connection could be opened, and
        the other H2ClientError kinds when the answer was lost (see `retryable`). `unique_path`: the
        path differs on every request (see `unindexed`)."""
        async with asyncio.timeout(timeout_s):
            for _ in range(_OPEN_ATTEMPTS):
                if self._closed:  # a request retried after close() must not open a connection again
                    raise ConnectError("the client is closed")
                conn = self._conn if self._conn is not None and self._conn.usable else await self._open()
                try:
                    return await conn.request(method, path, headers, body, unique_path)
                except _NotSent:
                    continue
            raise ConnectionLost("the server closed each new connection before the request went out")

    def retire(self) -> None:
        """Send no new request on the current connection (it closes once idle); the next opens one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._others.add(conn)
            conn.retire()

    async def close(self) -> None:
        """Close every connection (streams still running fail) and wait, briefly, for the TLS closes.
        Requests made afterwards fail with ConnectError."""
        self._closed = True
        if self._opening is not None:
            self._opening.cancel()
        conns = [*self._others, *([self._conn] if self._conn else [])]
        self._conn = None
        self._others.clear()
        for conn in conns:
            conn.close()
        waiting = [conn.finished for conn in conns if not conn.finished.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=CLOSE_WAIT_S)

    async def _open(self) -> _Connection:
        if self._opening is None:
            self._opening = asyncio.get_running_loop().create_task(self._connect())
            self._opening.add_done_callback(self._opened)
        return await asyncio.shield(self._opening)

    def _opened(self, task: "asyncio.Task[_Connection]") -> None:
        self._opening = None
        if not task.cancelled() and task.exception() is None:
            if self._conn is not None:
                self._others.add(self._conn)
            self._conn = task.result()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        conn = _Connection(loop, self._authority, self._max_streams)
        conn._on_idle = self._forget
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                await loop.create_connection(
                    lambda: conn, self._host, self._port, ssl=self._ssl, server_hostname=self._host
                )
                await conn.ready
        except TimeoutError:  # (an OSError too, but the caller wants to tell a timeout apart)
            conn.close()
            raise
        except (OSError, ssl.SSLError) as exc:
            conn.close()
            raise ConnectError(f"cannot connect to {self._host}:{self._port}: {exc!r}") from None
        except BaseException:  # timed out, cancelled, refused: no half-open connection stays behind
            conn.close()
            raise
        self.opened += 1
        return conn

    def _forget(self, conn: _Connection) -> None:
        self._others.discard(conn)
        if self._conn is conn:
            self._conn = None
