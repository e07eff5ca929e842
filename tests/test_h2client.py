"""The HTTP/2 client (tidings/channels/push/h2client.py) against a raw `h2` server over TLS whose
behaviour each test sets: many streams on one connection within the server's limit, bodies larger
than the flow-control windows both ways, GOAWAY with streams in flight, a server that closes the
connection, RST_STREAM, timeouts (the stream is reset, the connection lives on) and a server that does
not agree to HTTP/2.
"""

import asyncio
import hashlib
import socket
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, cast

import h2.events as ev
import pytest
import trustme
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.settings import SettingCodes, Settings

from tests.standins.apns import _GracefulServerMachine
from tidings.channels.push.h2client import (
    ConnectError,
    ConnectionLost,
    H2Client,
    H2ClientError,
    Response,
    StreamRefused,
    StreamReset,
)

CA = trustme.CA()
CERT = CA.issue_cert("127.0.0.1")


@dataclass
class Seen:
    """A request as the server got it."""

    conn: int  # which connection (0 = the first accepted)
    stream_id: int
    path: str
    body: bytes


@dataclass
class Server:
    """Answers 200 with the request body echoed (and its sha256 in a header), unless `hold` is set:
    then requests wait in `held` until the test answers, resets or drops them."""

    alpn: list[str] = field(default_factory=lambda: ["h2"])
    max_streams: int = 100
    window: int = 65535  # SETTINGS_INITIAL_WINDOW_SIZE: the client's send window per stream
    hold: bool = False
    seen: list[Seen] = field(default_factory=list)
    held: list[tuple["Conn", int]] = field(default_factory=list)
    resets: list[tuple[int, int]] = field(default_factory=list)  # (stream id, error code) from the client
    conns: list["Conn"] = field(default_factory=list)

    async def start(self) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        CERT.configure_cert(ctx)
        if self.alpn:
            ctx.set_alpn_protocols(self.alpn)
        self._server = await asyncio.get_running_loop().create_server(
            lambda: Conn(self), "127.0.0.1", 0, ssl=ctx
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._server.close()
        for conn in self.conns:
            conn.drop()
        await self._server.wait_closed()
        for _ in range(50):  # the TLS closes finish
            if all(conn.lost for conn in self.conns):
                break
            await asyncio.sleep(0.01)


class Conn(asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.index = -1  # set once the TLS handshake is through
        config = H2Configuration(client_side=False, header_encoding=None)
        self.h2 = H2Connection(config=config)
        self.h2.state_machine = _GracefulServerMachine()
        self.bodies: dict[int, bytearray] = {}
        self.paths: dict[int, str] = {}
        self.pending: dict[int, memoryview] = {}  # answer bodies waiting for the client's window
        self.lost = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.index = len(self.server.conns)
        self.server.conns.append(self)
        self.h2.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: self.server.max_streams,
                SettingCodes.INITIAL_WINDOW_SIZE: self.server.window,
            },
        )
        self.h2.initiate_connection()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True

    def data_received(self, data: bytes) -> None:
        for event in self.h2.receive_data(data):
            if isinstance(event, ev.RequestReceived):
                sid = event.stream_id or 0
                self.bodies[sid] = bytearray()
                self.paths[sid] = dict(event.headers or [])[b":path"].decode()
            elif isinstance(event, ev.DataReceived):
                self.bodies[event.stream_id or 0] += event.data or b""
                self.h2.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id or 0)
            elif isinstance(event, ev.StreamEnded):
                sid = event.stream_id or 0
                self.server.seen.append(Seen(self.index, sid, self.paths[sid], bytes(self.bodies[sid])))
                if self.server.hold:
                    self.server.held.append((self, sid))
                else:
                    self.answer(sid)
            elif isinstance(event, ev.StreamReset):
                self.bodies.pop(event.stream_id or 0, None)
                self.server.resets.append((event.stream_id or 0, event.error_code or 0))
            elif isinstance(event, ev.WindowUpdated):
                self.send_pending()
        self.flush()

    def answer(self, sid: int, status: int = 200) -> None:
        body = bytes(self.bodies.pop(sid))
        digest = hashlib.sha256(body).hexdigest().encode()
        self.h2.send_headers(sid, [(b":status", str(status).encode()), (b"x-sha256", digest)])
        self.pending[sid] = memoryview(body)
        self.send_pending()
        self.flush()

    def send_pending(self) -> None:
        """The echoed bodies, within the client's windows."""
        for sid, rest in list(self.pending.items()):
            while True:
                size = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size, len(rest))
                if size <= 0 and rest:
                    break  # wait for the client's WINDOW_UPDATE
                self.h2.send_data(sid, rest[:size].tobytes(), end_stream=size == len(rest))
                rest = rest[size:]
                if not rest:
                    break
            if rest:
                self.pending[sid] = rest
            else:
                del self.pending[sid]

    def reset(self, sid: int, code: ErrorCodes) -> None:
        self.bodies.pop(sid, None)
        self.h2.reset_stream(sid, code)
        self.flush()

    def goaway(self, last_stream_id: int) -> None:
        self.h2.close_connection(last_stream_id=last_stream_id)
        self.flush()

    def drop(self) -> None:
        """Close the TCP/TLS connection without GOAWAY."""
        if self.transport is not None:
            self.transport.close()

    def flush(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.h2.data_to_send())


def client_for(server: Server, **kw: Any) -> H2Client:
    ctx = ssl.create_default_context()
    CA.configure_trust(ctx)
    return H2Client("127.0.0.1", server.port, ctx, **kw)


def run(scenario: Callable[[Server, H2Client], Coroutine[Any, Any, None]], **server_kw: Any) -> Server:
    """Run `scenario` with a fresh server and a client aimed at it; both are closed after."""
    server = Server(**server_kw)

    async def main() -> None:
        await server.start()
        client = client_for(server)
        try:
            await asyncio.wait_for(scenario(server, client), 20)
        finally:
            await client.close()
            await server.stop()

    asyncio.run(main())
    return server


async def post(client: H2Client, path: str, body: bytes = b"", timeout_s: float = 5.0) -> Response:
    return await client.request(b"POST", path.encode(), [(b"x-test", b"1")], body, timeout_s)


async def until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "the server did not get there in time"
        await asyncio.sleep(0.005)


def test_many_concurrent_requests_share_one_connection_within_the_servers_limit() -> None:
    async def scenario(server: Server, client: H2Client) -> None:
        calls = [asyncio.ensure_future(post(client, f"/n/{n}", f"body {n}".encode())) for n in range(300)]
        await until(lambda: len(server.held) == 20)
        await asyncio.sleep(0.05)
        assert len(server.held) == 20  # all the server allows (SETTINGS_MAX_CONCURRENT_STREAMS), no more
        server.hold = False
        for conn, sid in server.held:
            conn.answer(sid)
        answers = await asyncio.gather(*calls)
        for n, answer in enumerate(answers):
            assert (answer.status, answer.body) == (200, f"body {n}".encode())
            assert answer.header(b"x-sha256") == hashlib.sha256(answer.body).hexdigest().encode()
        assert client.opened == 1 and len(server.conns) == 1

    server = run(scenario, max_streams=20, hold=True)
    assert sorted(s.path for s in server.seen) == sorted(f"/n/{n}" for n in range(300))


def test_bodies_larger_than_the_windows_go_out_as_windows_open() -> None:
    # Per-stream window 1,000 bytes and the connection's 65,535: the client must stop and wait for
    # WINDOW_UPDATE (h2 on the server side fails the connection on any overrun), and acknowledge the
    # large echoed answers so the server can keep sending.
    bodies = [bytes([n]) * (150_000 + n) for n in range(4)]

    async def scenario(server: Server, client: H2Client) -> None:
        answers = await asyncio.gather(*(post(client, f"/big/{n}", body) for n, body in enumerate(bodies)))
        assert [a.body for a in answers] == bodies
        assert client.opened == 1

    server = run(scenario, window=1000)
    assert sorted(len(s.body) for s in server.seen) == [len(b) for b in bodies]


def test_goaway_streams_above_the_last_id_fail_retryable_the_rest_complete() -> None:
    async def scenario(server: Server, client: H2Client) -> None:
        calls = [asyncio.ensure_future(post(client, f"/g/{n}", b"x%d" % n)) for n in range(6)]
        await until(lambda: len(server.held) == 6)
        conn = server.held[0][0]
        ids = sorted(sid for _, sid in server.held)
        conn.goaway(last_stream_id=ids[2])
        for _, sid in server.held:  # answer only what the GOAWAY promised
            if sid <= ids[2]:
                conn.answer(sid)
        results = await asyncio.gather(*calls, return_exceptions=True)
        done = [r for r in results if isinstance(r, Response)]
        refused = [r for r in results if isinstance(r, StreamRefused)]
        assert len(done) == 3 and len(refused) == 3 and all(r.retryable for r in refused)
        # The caller sends the refused ones again: they go out on a new connection.
        server.hold = False
        again = [n for n, r in enumerate(results) if isinstance(r, StreamRefused)]
        answers = await asyncio.gather(*(post(client, f"/g/{n}", b"x%d" % n) for n in again))
        assert [a.body for a in answers] == [b"x%d" % n for n in again]
        assert client.opened == 2
        await until(lambda: conn.lost)  # the first connection closed once its streams were done

    server = run(scenario, hold=True)
    assert [s.conn for s in server.seen] == [0] * 6 + [1] * 3


def test_a_connection_the_server_drops_fails_its_streams_and_is_replaced() -> None:
    async def scenario(server: Server, client: H2Client) -> None:
        calls = [asyncio.ensure_future(post(client, f"/d/{n}")) for n in range(3)]
        await until(lambda: len(server.held) == 3)
        server.conns[0].drop()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, ConnectionLost) and not r.retryable for r in results)
        server.hold = False
        assert (await post(client, "/after", b"ok")).body == b"ok"
        # An idle connection closed by the server: the next request opens another, no error.
        server.conns[1].drop()
        await until(lambda: server.conns[1].lost)
        await asyncio.sleep(0.01)
        assert (await post(client, "/later", b"ok")).body == b"ok"
        assert client.opened == 3

    run(scenario, hold=True)


def test_rst_stream_refused_is_retryable_other_codes_are_not() -> None:
    async def scenario(server: Server, client: H2Client) -> None:
        calls = [asyncio.ensure_future(post(client, f"/r/{n}")) for n in range(3)]
        await until(lambda: len(server.held) == 3)
        (conn, first), (_, second), (_, third) = sorted(server.held, key=lambda h: h[1])
        conn.reset(first, ErrorCodes.REFUSED_STREAM)
        conn.reset(second, ErrorCodes.INTERNAL_ERROR)
        conn.answer(third)
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(results[0], StreamRefused) and results[0].retryable
        assert isinstance(results[1], StreamReset) and not results[1].retryable
        assert isinstance(results[2], Response) and results[2].status == 200
        assert client.opened == 1

    run(scenario, hold=True)


def test_no_answer_in_time_resets_the_stream_and_the_connection_lives_on() -> None:
    async def scenario(server: Server, client: H2Client) -> None:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await post(client, "/slow", timeout_s=0.1)
        assert 0.1 <= time.monotonic() - started < 0.5
        await until(lambda: len(server.resets) == 1)
        assert server.resets == [(server.seen[0].stream_id, ErrorCodes.CANCEL)]
        server.hold = False
        assert (await post(client, "/next", b"ok")).body == b"ok"
        assert client.opened == 1

    run(scenario, hold=True)


def test_a_server_that_does_not_agree_to_h2_is_refused() -> None:
    for alpn in (["http/1.1"], []):

        async def scenario(server: Server, client: H2Client) -> None:
            with pytest.raises(ConnectError, match="did not agree to HTTP/2"):
                await post(client, "/x")

        server = run(scenario, alpn=alpn)
        assert server.seen == []


def test_nobody_listening_and_a_silent_server_fail_in_bounded_time() -> None:
    async def main() -> None:
        ctx = ssl.create_default_context()
        CA.configure_trust(ctx)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            closed = H2Client("127.0.0.1", port, ctx)
            with pytest.raises(ConnectError, match="cannot connect"):
                await closed.request(b"GET", b"/", [], b"", 2.0)
            await closed.close()
            sock.listen(1)  # accepts TCP, never answers the TLS handshake
            silent = H2Client("127.0.0.1", port, ctx, connect_timeout_s=0.2)
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await silent.request(b"GET", b"/", [], b"", 2.0)
            assert time.monotonic() - started < 1.0
            await silent.close()

    asyncio.run(main())


def test_the_server_certificate_is_verified() -> None:
    async def scenario(server: Server, client: H2Client) -> None:
        untrusting = H2Client("127.0.0.1", server.port, ssl.create_default_context())
        try:
            with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await post(untrusting, "/x")
        finally:
            await untrusting.close()

    assert run(scenario).seen == []


def test_close_ends_the_connection() -> None:
    async def scenario(server: Server, client: H2Client) -> None:
        assert (await post(client, "/x", b"1")).status == 200
        await client.close()
        await until(lambda: server.conns[0].lost)
        with pytest.raises(ConnectError, match="closed"):  # no connection is opened again
            await post(client, "/after-close")
        assert client.opened == 1

    run(scenario)


def test_errors_are_one_family() -> None:
    for kind in (ConnectError, ConnectionLost, StreamRefused, StreamReset):
        assert issubclass(kind, H2ClientError)
