"""Calling Tidings' own API in-process: the console's "send a test message" posts to v1 or v2 through
the same ASGI application a client reaches, with the service's key, so the test takes every step a real
request takes (decoding, checks, accept) without a network round trip or a secret in the browser."""

from starlette.types import ASGIApp, Message


async def call_api(
    app: ASGIApp, method: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, bytes]:
    """(HTTP status, body) of one request to `app`."""
    sent = False
    status = 500
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw_headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }
    await app(scope, receive, send)
    return status, b"".join(chunks)
