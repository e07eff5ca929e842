"""A stand-in for Apple's push provider API (APNs), as strict as the real one where a client can see it.

It serves HTTP/2 only, over TLS with ALPN "h2" (hypercorn, a trustme CA issuing a cert for 127.0.0.1),
and checks each `POST /3/device/<token>` the way APNs does: the ES256 provider token (signature against
the test key's public half, `kid`, `iss`, `iat` not older than an hour), the topic, the push type against
the payload (background needs `content-available` and priority 5), header forms and the 4096-byte limit.
It answers 200 with an `apns-id` header, or APNs' own error JSON `{"reason": …}` (with a `timestamp` in ms
on 410).

Scripted tokens (a token *starting* with the word gets the answer; other tokens must be hex, else 400
BadDeviceToken; random hex could start with "dead" or "bad", so use `device_token(n)` for good ones):
    dead -> 410 Unregistered      stale -> 410 ExpiredToken      bad -> 400 BadDeviceToken
    topic -> 400 DeviceTokenNotForTopic                         huge -> 413 PayloadTooLarge
    busy -> 429 TooManyRequests   flood -> 429 with Retry-After: 7
    down -> 503 ServiceUnavailable                               oops -> 500 InternalServerError
    slow -> 200 after 0.5 s
`answers` can be changed per test. Switches: `expire_provider_tokens()` (every provider token seen so far is
answered 403 ExpiredProviderToken from now on, as Apple does once a token is too old), `goaway_next()` (the
next request is answered, then its connection gets GOAWAY) and `close_when_idle()` (connections that go
idle are closed by the server). `connections` counts the client connections that carried a request.

    async with ApnsStandIn() as apns:
        settings = apns.write_credentials(tmp_path)      # the .p8 key and the CA file the client needs
"""

import asyncio
import os
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import jwt
import msgspec
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypercorn.asyncio import serve
from hypercorn.config import Config

from tidings.channels.push.settings import ApnsSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TEAM_ID = "TEAM123456"
KEY_ID = "KEY1234567"
TOPIC = "com.example.app"
MAX_PAYLOAD = 4096
PUSH_TYPES = {
    "alert",
    "background",
    "voip",
    "location",
    "complication",
    "fileprovider",
    "mdm",
    "liveactivity",
}
_UNLIMITED = 1 << 62
_HEX = set("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str | None = None  # APNs' reason word; None on 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # answer this late (to test the client's timeout)


def _scripted() -> dict[str, Answer]:
    return {
        "dead": Answer(410, "Unregistered"),
        "stale": Answer(410, "ExpiredToken"),
        "bad": Answer(400, "BadDeviceToken"),
        "topic": Answer(400, "DeviceTokenNotForTopic"),
        "huge": Answer(413, "PayloadTooLarge"),
        "busy": Answer(429, "TooManyRequests"),
        "flood": Answer(429, "TooManyRequests", {"retry-after": "7"}),
        "down": Answer(503, "ServiceUnavailable"),
        "oops": Answer(500, "InternalServerError"),
        "slow": Answer(200, None, {}, delay_s=0.5),
    }


@dataclass
class Received:
    """One request as the stand-in saw it, and what it answered."""

    token: str
    headers: dict[str, str]  # lower-case names, as sent (authorization included)
    body: Any  # the decoded JSON payload (None when it was not JSON)
    size: int  # payload bytes
    client: tuple[str, int]  # the connection it came on
    status: int = 0
    reason: str | None = None


def device_token(n: int) -> str:
    """A well-formed 64-hex-digit token that no scripted word matches."""
    return f"{n:064x}"


class _TlsConfig(Config):
    """hypercorn's Config, with the TLS context built in memory from the trustme certificate and a
    one-shot GOAWAY: hypercorn reads `keep_alive_max_requests` as each request arrives and sends GOAWAY
    on that connection when the count passes it."""

    def __init__(self, server_ctx: ssl.SSLContext) -> None:
        super().__init__()
        self._server_ctx = server_ctx
        self.goaway_pending = False

    @property
    def ssl_enabled(self) -> bool:
        return True

    def create_ssl_context(self) -> ssl.SSLContext:
        return self._server_ctx

    @property
    def keep_alive_max_requests(self) -> int:
        if self.goaway_pending:
            self.goaway_pending = False
            return 0
        return _UNLIMITED

    @keep_alive_max_requests.setter
    def keep_alive_max_requests(self, value: int) -> None:
        pass  # fixed: unlimited, or the one-shot GOAWAY above


class ApnsStandIn:
    def __init__(self, *, team_id: str = TEAM_ID, key_id: str = KEY_ID, topic: str = TOPIC) -> None:
        self.team_id, self.key_id, self.topic = team_id, key_id, topic
        self.key = ec.generate_private_key(ec.SECP256R1())
        self._public = self.key.public_key()
        self.ca = trustme.CA()
        self.answers = _scripted()
        self.received: list[Received] = []
        self.connections: set[tuple[str, int]] = set()
        self.provider_tokens: list[str] = []  # distinct provider JWTs, in the order first seen
        self.protocol_errors: list[str] = []  # requests that were not HTTP/2 (must stay empty)
        self._verified: dict[str, int] = {}  # JWT -> its iat, once its signature checked out
        self._expired: set[str] = set()
        self._sock: socket.socket | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._config: _TlsConfig | None = None
        self._loop_handler: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None = None

    # -- credentials ---------------------------------------------------------------------------------

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def write_credentials(self, directory: Path, *, key_id: str | None = None) -> ApnsSettings:
        """Write AuthKey_<key id>.p8 and the CA bundle into `directory`; return the [apps.apns] settings
        that reach this stand-in (paths relative to `directory`)."""
        key_name = f"AuthKey_{self.key_id}.p8"
        (directory / key_name).write_bytes(self.key_pem())
        self.ca.cert_pem.write_to_path(str(directory / "apns-ca.pem"))
        return ApnsSettings(
            team_id=self.team_id,
            key_id=key_id or self.key_id,
            key_file=key_name,
            topic=self.topic,
            base_url=self.base_url,
            ca_file="apns-ca.pem",
        )

    # -- lifecycle -----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._sock is not None, "start() first"
        return f"https://127.0.0.1:{self._sock.getsockname()[1]}"

    async def start(self) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
        ctx.set_alpn_protocols(["h2"])  # APNs speaks nothing else
        self._config = _TlsConfig(ctx)
        self._config.alpn_protocols = ["h2"]
        self._config.graceful_timeout = 1.0
        self._config.errorlog = None
        self._config.keep_alive_timeout = 3600  # APNs keeps idle connections open; hypercorn's default is 5 s
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(512)
        loop = asyncio.get_running_loop()
        self._loop_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._quiet_tls_close)
        await self._serve()

    def _quiet_tls_close(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # hypercorn lets this escape when a client writes on a connection the server is closing (the
        # case `close_when_idle` tests); it is the client's business, not an error of the stand-in.
        exc = context.get("exception")
        if isinstance(exc, ssl.SSLError) and exc.reason == "APPLICATION_DATA_AFTER_CLOSE_NOTIFY":
            return
        if self._loop_handler is None:
            loop.default_exception_handler(context)
        else:
            self._loop_handler(loop, context)

    async def _serve(self) -> None:
        assert self._config is not None and self._sock is not None
        # hypercorn owns (and closes) the socket it is given: hand it a duplicate, ours keeps the port.
        self._config.bind = [f"fd://{os.dup(self._sock.fileno())}"]
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            serve(cast(Any, self._app), self._config, shutdown_trigger=self._stop.wait)
        )
        await asyncio.sleep(0)

    async def stop(self) -> None:
        """Stop serving. Close the clients first: hypercorn cancels connections still open after 1 s."""
        if self._stop is not None and self._task is not None:
            self._stop.set()
            await asyncio.wait_for(self._task, 5)
            self._task = None
        if self._sock is not None:
            self._sock.close()
            asyncio.get_running_loop().set_exception_handler(self._loop_handler)

    async def __aenter__(self) -> "ApnsStandIn":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- switches ------------------------------------------------------------------------------------

    def expire_provider_tokens(self) -> None:
        self._expired.update(self.provider_tokens)

    def goaway_next(self) -> None:
        assert self._config is not None
        self._config.goaway_pending = True

    def close_when_idle(self, after_s: float = 0.05) -> None:
        """Connections that go idle from now on are closed by the server after `after_s` (as a server
        does with idle connections: a TLS close, no GOAWAY)."""
        assert self._config is not None
        self._config.keep_alive_timeout = after_s

    # -- the service ---------------------------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the stream was reset (a GOAWAY'd connection): APNs did not take it either
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        client: tuple[str, int] = tuple(scope["client"])
        self.connections.add(client)
        if scope["http_version"] != "2":
            # Only reachable without ALPN (a client offering none): APNs speaks HTTP/2 alone.
            self.protocol_errors.append(f"HTTP/{scope['http_version']} {scope['path']}")
            await send({"type": "http.response.start", "status": 505, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        answer, item = self._answer(scope, body, client)
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        await self._reply(send, answer, item)

    def _answer(self, scope: Scope, body: bytes, client: tuple[str, int]) -> tuple[Answer, Received]:
        headers: dict[str, str] = {}
        duplicate = False
        for name, value in scope["headers"]:
            key = name.decode("latin-1")
            duplicate = duplicate or key in headers
            headers[key] = value.decode("latin-1")
        path: str = scope["path"]
        token = path.removeprefix("/3/device/") if path.startswith("/3/device/") else ""
        try:
            payload = msgspec.json.decode(body) if body else None
        except msgspec.DecodeError:
            payload = None
        item = Received(token, headers, payload, len(body), client)
        self.received.append(item)
        if scope["method"] != "POST":
            return Answer(405, "MethodNotAllowed"), item
        if not path.startswith("/3/device/"):
            return Answer(404, "BadPath"), item
        if duplicate:
            return Answer(400, "DuplicateHeaders"), item
        refused = self._check_auth(headers.get("authorization", ""))
        refused = refused or self._check_headers(headers, token)
        refused = refused or self._check_payload(headers, payload, len(body))
        if refused:
            return refused, item
        for word, scripted in self.answers.items():
            if token.startswith(word):
                if scripted.status == 200:
                    return replace(scripted, headers={"apns-id": headers.get("apns-id", "")}), item
                return scripted, item
        if not token or not set(token) <= _HEX:
            return Answer(400, "BadDeviceToken"), item
        return Answer(200, None, {"apns-id": headers.get("apns-id") or str(uuid.uuid4()).upper()}), item

    def _check_auth(self, authorization: str) -> Answer | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return Answer(403, "MissingProviderToken")
        if token not in self._verified:
            try:
                header = jwt.get_unverified_header(token)
                claims = jwt.decode(
                    token, self._public, algorithms=["ES256"], leeway=60, options={"require": ["iss", "iat"]}
                )
            except jwt.PyJWTError:
                return Answer(403, "InvalidProviderToken")
            if header.get("kid") != self.key_id or claims["iss"] != self.team_id:
                return Answer(403, "InvalidProviderToken")
            self._verified[token] = int(claims["iat"])
            self.provider_tokens.append(token)
        if token in self._expired or time.time() - self._verified[token] > 3600:
            return Answer(403, "ExpiredProviderToken")
        return None

    def _check_headers(self, headers: dict[str, str], token: str) -> Answer | None:
        if not token:
            return Answer(400, "MissingDeviceToken")
        topic = headers.get("apns-topic")
        if not topic:
            return Answer(400, "MissingTopic")
        if topic != self.topic:
            return Answer(400, "TopicDisallowed")
        if headers.get("apns-push-type", "alert") not in PUSH_TYPES:
            return Answer(400, "InvalidPushType")
        if headers.get("apns-priority", "10") not in ("1", "5", "10"):
            return Answer(400, "BadPriority")
        if not headers.get("apns-expiration", "0").isdigit():
            return Answer(400, "BadExpirationDate")
        if "apns-id" in headers and not _is_uuid(headers["apns-id"]):
            return Answer(400, "BadMessageId")
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return Answer(400, "BadCollapseId")
        return None

    def _check_payload(self, headers: dict[str, str], payload: Any, size: int) -> Answer | None:
        if size > MAX_PAYLOAD:
            return Answer(413, "PayloadTooLarge")
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            return Answer(400, "PayloadEmpty")
        aps = payload["aps"]
        if headers.get("apns-push-type") == "background":
            # A background push wakes the app and shows nothing; Apple wants priority 5 for it.
            if aps.get("content-available") != 1 or {"alert", "badge", "sound"} & aps.keys():
                return Answer(400, "InvalidPushType")
            if headers.get("apns-priority") != "5":
                return Answer(400, "BadPriority")
        elif headers.get("apns-push-type") == "alert" and "alert" not in aps:
            return Answer(400, "InvalidPushType")
        return None

    async def _reply(self, send: Send, answer: Answer, item: Received) -> None:
        item.status, item.reason = answer.status, answer.reason
        headers = [(k.encode(), v.encode()) for k, v in answer.headers.items()]
        body = b""
        if answer.reason is not None:
            error: dict[str, Any] = {"reason": answer.reason}
            if answer.status == 410:
                error["timestamp"] = int(time.time() * 1000)
            body = msgspec.json.encode(error)
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _is_uuid(value: str) -> bool:
    parts = value.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and set(value.replace("-", "")) <= _HEX
