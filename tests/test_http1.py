"""tidings.http1, the lean HTTP/1.1 client, against raw servers on loopback that answer byte for byte
what each case needs (keep-alive, chunked, close-delimited, dropped idle connections, garbage, TLS)."""

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable

import pytest
import trustme

from tidings.http1 import BadAnswer, ConnectFailed, Disconnected, HttpClient, InvalidUrl
from tidings.ids import new_id

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return lines[0].encode(), headers, body


class Server:
    """A loopback server running `handler` per connection; counts connections and keeps requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[tuple[bytes, dict[str, str], bytes]] = []
        self.server: asyncio.Server | None = None

    async def start(self, context: ssl.SSLContext | None = None) -> int:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def keep_alive(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: bytes
    ) -> None:
        while (request := await read_request(reader)) is not None:
            self.requests.append(request)
            writer.write(answer)
            await writer.drain()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Thing: a\r\nx-thing: b\r\n\r\nok"


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))  # type: ignore[arg-type]


def test_keep_alive_reuses_one_connection_and_sends_the_request_as_given():
    async def main() -> None:
        server = Server(lambda r, w: server.keep_alive(r, w, OK))
        port = await server.start()
        client = HttpClient(connections=4, deadline=5, headers={"User-Agent": "t/1"})
        for i in range(3):
            answer = await client.post(f"http://127.0.0.1:{port}/a/b?x={i}", b'{"n":1}', {"X-Sig": "s"})
            assert (answer.status_code, answer.content) == (200, b"ok")
            assert answer.headers.get("X-THING") == "a, b" and "x-thing" in answer.headers
        assert server.connections == 1
        line, headers, body = server.requests[2]
        assert line == b"POST /a/b?x=2 HTTP/1.1"
        assert headers["host"] == f"127.0.0.1:{port}" and headers["user-agent"] == "t/1"
        assert headers["x-sig"] == "s" and body == b'{"n":1}'
        await client.close()
        await server.stop()

    run(main())


def test_chunked_and_close_delimited_answers_are_read_in_full():
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        await writer.drain()
        await read_request(reader)

    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
        await writer.drain()

    async def main() -> None:
        a, b = Server(chunked), Server(until_close)
        pa, pb = await a.start(), await b.start()
        client = HttpClient(connections=4, deadline=5)
        answer = await client.post(f"http://127.0.0.1:{pa}/", b"x")
        assert (answer.status_code, answer.content) == (201, b"abcde")
        answer = await client.get(f"http://127.0.0.1:{pb}/")
        assert (answer.status_code, answer.content) == (200, b"all of it")
        await client.close()
        await a.stop()
        await b.stop()

    run(main())


def test_a_connection_closed_before_any_answer_is_retried_once_on_a_fresh_one():
    async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        assert request is not None
        server.requests.append(request)
        writer.write(OK)  # keep-alive promised, then the connection is closed, as an idle timeout does
        await writer.drain()

    server = Server(one_per_connection)

    async def main() -> None:
        port = await server.start()
        client = HttpClient(connections=4, deadline=5)
        await client.post(f"http://127.0.0.1:{port}/", b"1")
        await asyncio.sleep(0.1)
        answer = await client.post(f"http://127.0.0.1:{port}/", b"2")
        assert answer.status_code == 200
        assert [r[2] for r in server.requests] == [b"1", b"2"] and server.connections == 2
        await client.close()
        await server.stop()

    run(main())


def test_a_connection_that_breaks_mid_answer_is_not_retried():
    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        assert request is not None
        server.requests.append(request)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()

    server = Server(half)

    async def main() -> None:
        port = await server.start()
        client = HttpClient(connections=4, deadline=5)
        with pytest.raises(Disconnected):
            await client.post(f"http://127.0.0.1:{port}/", b"x")
        assert len(server.requests) == 1
        await client.close()
        await server.stop()

    run(main())


def test_failures_are_named():
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SMTP 220 hello\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def main() -> None:
        g, s = Server(garbage), Server(silent)
        pg, ps = await g.start(), await s.start()
        client = HttpClient(connections=4, deadline=0.5)
        with pytest.raises(BadAnswer):
            await client.post(f"http://127.0.0.1:{pg}/", b"")
        with pytest.raises(TimeoutError):
            await client.post(f"http://127.0.0.1:{ps}/", b"")
        refused = HttpClient(connections=1, deadline=5)
        with pytest.raises(ConnectFailed):
            await refused.post(f"http://127.0.0.1:{unused_port()}/", b"")
        for url in ("ftp://127.0.0.1/", "http:///x", "http://127.0.0.1:99999/", "http://h/a b"):
            with pytest.raises(InvalidUrl):
                await client.post(url, b"")
        with pytest.raises(ValueError):
            await client.post(f"http://127.0.0.1:{pg}/", b"", {"X-Bad": "a\r\nInjected: 1"})
        await client.close()
        await refused.close()
        await g.stop()
        await s.stop()

    run(main())


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_big_answers_are_cut_and_the_connection_stays_usable():
    big = b"x" * 5000
    answer_bytes = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big)
    server = Server(lambda r, w: server.keep_alive(r, w, answer_bytes))

    async def main() -> None:
        port = await server.start()
        client = HttpClient(connections=2, deadline=5, max_body=100)
        for _ in range(2):
            answer = await client.post(f"http://127.0.0.1:{port}/", b"")
            assert answer.content == b"x" * 100
        assert server.connections == 1
        await client.close()
        await server.stop()

    run(main())


def test_tls_with_a_given_ca_and_the_limit_per_host():
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    in_flight = 0
    most = 0

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal in_flight, most
        while (request := await read_request(reader)) is not None:
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.05)
            in_flight -= 1
            writer.write(OK)
            await writer.drain()
            server.requests.append(request)

    server = Server(slow)

    async def main() -> None:
        port = await server.start(server_context)
        client = HttpClient(connections=10, per_host=3, deadline=5, context=client_context)
        tag = new_id()
        answers = await asyncio.gather(
            *(client.post(f"https://localhost:{port}/{tag}", b"%d" % i) for i in range(9))
        )
        assert [a.status_code for a in answers] == [200] * 9
        assert most == 3 and server.connections == 3
        untrusted = HttpClient(connections=1, deadline=5)
        with pytest.raises(ConnectFailed):
            await untrusted.post(f"https://localhost:{port}/", b"")
        await client.close()
        await untrusted.close()
        await server.stop()

    run(main())
