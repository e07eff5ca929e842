"""A stand-in for Apple's push provider API (APNs), as strict as the real one where a client can see it.

It serves HTTP/2 only, over TLS with ALPN "h2" (a trustme CA issuing a cert for 127.0.0.1), straight on
the `h2` state machine as an asyncio protocol: ~0.2 ms of CPU a request, so a benchmark measures the
client and not the stand-in (hypercorn cost ~0.9 ms). It checks each `POST /3/device/<token>` the way
APNs does: the ES256 provider token (signature against the test key's public half, `kid`, `iss`, `iat`
not older than an hour), the topic, the push type against the payload (background needs
`content-available` and priority 5), header forms and the 4096-byte limit.
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
next request is answered, then its connection gets GOAWAY), `drop_next(n)` (the next n requests get no
answer: their connection is closed) and `close_when_idle()` (connections that go idle are closed by the
server). `connections` counts the client connections that carried a request.
A client that does not offer h2 gets an HTTP/1.1 505 and an entry in `protocol_errors`.
`ApnsStandIn(record=False)` keeps no `received` list (a benchmark reads `answered` instead); the
provider token is verified once per distinct token string either way, as the client reuses one.

    async with ApnsStandIn() as apns:
        settings = apns.write_credentials(tmp_path)      # the .p8 key and the CA file the client needs
"""

import asyncio
import socket
import ssl
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import h2.events as ev
import jwt
import msgspec
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from h2.config import H2Configuration
from h2.connection import ConnectionInputs, ConnectionState, H2Connection, H2ConnectionStateMachine
from h2.exceptions import H2Error
from h2.settings import SettingCodes, Settings

from tidings.channels.push.settings import ApnsSettings

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


class _GracefulServerMachine(H2ConnectionStateMachine):
    """h2 closes its state machine as soon as it sends GOAWAY (python-hyper/h2 issue 1181); a server
    draining a connection must still answer the streams at or below the GOAWAY's last stream id."""

    _transitions = {  # noqa: RUF012 (h2 declares it a plain attribute)
        **H2ConnectionStateMachine._transitions,
        (ConnectionState.SERVER_OPEN, ConnectionInputs.SEND_GOAWAY): (None, ConnectionState.SERVER_OPEN),
    }


_H2_CONFIG = H2Configuration(
    client_side=False, header_encoding=None, validate_outbound_headers=False, normalize_outbound_headers=False
)
_FLUSH_EVERY = 64  # answers written at least this often while a batch is worked through
_HTTP1_REFUSAL = b"HTTP/1.1 505 HTTP Version Not Supported\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class _Request:
    __slots__ = ("body", "headers")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.body: list[bytes] = []


class _Connection(asyncio.Protocol):
    """One client connection: HTTP/2 frames in, APNs answers out (HTTP/1.1 gets a 505)."""

    def __init__(self, stand_in: "ApnsStandIn") -> None:
        self._apns = stand_in
        self._loop = asyncio.get_running_loop()
        self._h2 = H2Connection(config=_H2_CONFIG)
        self._h2.state_machine = _GracefulServerMachine()
        self._transport: asyncio.Transport | None = None
        self._client: tuple[str, int] = ("", 0)
        self._http1: bytes | None = None  # the HTTP/1.1 bytes so far, when ALPN gave no h2
        self._requests: dict[int, _Request] = {}
        self._pending = 0  # requests received and not yet answered
        self._last_stream = 0  # after GOAWAY: streams above this are ignored
        self._idle_timer: asyncio.TimerHandle | None = None
        self._unsent = 0  # answers made since the last write

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)
        host, port = transport.get_extra_info("peername")[:2]
        self._client = (host, port)
        self._apns._open.add(self)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            self._http1 = b""
            return
        self._h2.local_settings = Settings(
            client=False, initial_values={SettingCodes.MAX_CONCURRENT_STREAMS: self._apns.max_streams}
        )
        self._h2.initiate_connection()
        self._flush()
        self._idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._apns._open.discard(self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()

    def data_received(self, data: bytes) -> None:
        if self._http1 is not None:
            self._refuse_http1(data)
            return
        try:
            events = self._h2.receive_data(data)
        except H2Error:
            self._flush()
            self.close()
            return
        for event in events:
            if isinstance(event, ev.RequestReceived):
                self._on_request(event)
            elif isinstance(event, ev.DataReceived):
                if (request := self._requests.get(event.stream_id or 0)) is not None and event.data:
                    request.body.append(event.data)
                if event.flow_controlled_length:
                    self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id or 0)
            elif isinstance(event, ev.StreamEnded):
                self._on_end(event.stream_id or 0)
            elif isinstance(event, ev.StreamReset):
                if self._requests.pop(event.stream_id or 0, None) is not None:
                    self._answered()
            elif isinstance(event, ev.ConnectionTerminated):
                self.close()
        self._flush()

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def goaway(self, last_stream_id: int) -> None:
        """No stream above `last_stream_id` will be served; close once the rest are answered."""
        self._last_stream = last_stream_id
        self._h2.close_connection(last_stream_id=last_stream_id)
        self._flush()
        if self._pending == 0:
            self.close()

    def _on_request(self, event: ev.RequestReceived) -> None:
        stream_id = event.stream_id or 0
        if self._last_stream and stream_id > self._last_stream:
            return  # after GOAWAY: ignored, as the client was told
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self._pending += 1
        self._requests[stream_id] = _Request(list(event.headers or ()))

    def _on_end(self, stream_id: int) -> None:
        request = self._requests.get(stream_id)
        if request is None:
            return
        answer, item = self._apns._answer(request.headers, b"".join(request.body), self._client)
        if self._apns._drops > 0:
            self._apns._drops -= 1
            self.close()  # no answer: the connection just ends, as a network failure looks
            return
        if answer.delay_s:
            self._loop.call_later(answer.delay_s, self._reply_late, stream_id, answer, item)
        else:
            self._reply(stream_id, answer, item)

    def _reply_late(self, stream_id: int, answer: Answer, item: Received | None) -> None:
        if stream_id in self._requests:  # else the client reset it (gave up)
            self._reply(stream_id, answer, item)
            self._flush()

    def _reply(self, stream_id: int, answer: Answer, item: Received | None) -> None:
        self._requests.pop(stream_id, None)
        if item is not None:
            item.status, item.reason = answer.status, answer.reason
        headers = [(b":status", str(answer.status).encode())]
        headers += [(k.encode(), v.encode()) for k, v in answer.headers.items()]
        body = b""
        if answer.reason is not None:
            error: dict[str, Any] = {"reason": answer.reason}
            if answer.status == 410:
                error["timestamp"] = int(time.time() * 1000)
            body = msgspec.json.encode(error)
            headers.append((b"content-type", b"application/json"))
        try:
            self._h2.send_headers(stream_id, headers, end_stream=not body)
            if body:
                self._h2.send_data(stream_id, body, end_stream=True)
        except H2Error:
            pass  # the stream was closed under us (a reset crossing the answer)
        self._answered()
        if self._apns._goaway_pending:
            self._apns._goaway_pending = False
            self.goaway(stream_id)

    def _answered(self) -> None:
        self._pending -= 1
        self._unsent += 1
        if self._unsent >= _FLUSH_EVERY:
            # Answers go out in slices while a large batch is worked through, so the client can
            # read the first while the stand-in still works on the rest.
            self._flush()
        if self._pending == 0:
            if self._last_stream:
                self._flush()
                self.close()
            else:
                self._idle()

    def _idle(self) -> None:
        if self._apns._idle_after_s is not None and self._idle_timer is None:
            self._idle_timer = self._loop.call_later(self._apns._idle_after_s, self.close)

    def _flush(self) -> None:
        self._unsent = 0
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _refuse_http1(self, data: bytes) -> None:
        assert self._http1 is not None and self._transport is not None
        self._http1 += data
        head, found, _ = self._http1.partition(b"\r\n\r\n")
        if not found:
            return
        _method, _, rest = head.split(b"\r\n", 1)[0].partition(b" ")
        path, _, version = rest.partition(b" ")
        self._apns.protocol_errors.append(f"{version.decode('latin-1')} {path.decode('latin-1')}")
        self._transport.write(_HTTP1_REFUSAL)
        self._transport.close()


class ApnsStandIn:
    def __init__(
        self,
        *,
        team_id: str = TEAM_ID,
        key_id: str = KEY_ID,
        topic: str = TOPIC,
        record: bool = True,
        max_streams: int = 1000,
    ) -> None:
        self.team_id, self.key_id, self.topic = team_id, key_id, topic
        self.record = record  # keep every request in `received` (a benchmark turns it off)
        self.max_streams = max_streams  # SETTINGS_MAX_CONCURRENT_STREAMS (Apple's is 1000 once authorised)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self._public = self.key.public_key()
        self.ca = trustme.CA()
        self.answers = _scripted()
        self.received: list[Received] = []
        self.answered = 0  # requests answered, recorded or not
        self.connections: set[tuple[str, int]] = set()
        self.provider_tokens: list[str] = []  # distinct provider JWTs, in the order first seen
        self.protocol_errors: list[str] = []  # requests that were not HTTP/2 (must stay empty)
        self._verified: dict[str, int] = {}  # JWT -> its iat, once its signature checked out
        self._expired: set[str] = set()
        self._sock: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._open: set[_Connection] = set()
        self._goaway_pending = False
        self._drops = 0
        self._idle_after_s: float | None = None

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
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Connection(self), sock=self._sock, ssl=ctx, backlog=512
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for conn in list(self._open):
                conn.close()
            await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        # Let the transports just closed finish their TLS close before the loop goes.
        for _ in range(20):
            if not self._open:
                break
            await asyncio.sleep(0.01)

    async def __aenter__(self) -> "ApnsStandIn":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- switches ------------------------------------------------------------------------------------

    def expire_provider_tokens(self) -> None:
        self._expired.update(self.provider_tokens)

    def goaway_next(self) -> None:
        self._goaway_pending = True

    def drop_next(self, count: int = 1) -> None:
        """The next `count` requests get no answer: their connection is closed under them."""
        self._drops = count

    def close_when_idle(self, after_s: float = 0.05) -> None:
        """Connections that go idle from now on are closed by the server after `after_s` (as a server
        does with idle connections: a TLS close, no GOAWAY)."""
        self._idle_after_s = after_s

    # -- the service ---------------------------------------------------------------------------------

    def _answer(
        self, raw: list[tuple[bytes, bytes]], body: bytes, client: tuple[str, int]
    ) -> tuple[Answer, Received | None]:
        headers: dict[str, str] = {}
        duplicate = False
        for name, value in raw:
            key = name.decode("latin-1")
            duplicate = duplicate or key in headers
            headers[key] = value.decode("latin-1")
        method, path = headers.pop(":method", ""), headers.pop(":path", "")
        for pseudo in (":scheme", ":authority"):
            headers.pop(pseudo, None)
        token = path.removeprefix("/3/device/") if path.startswith("/3/device/") else ""
        try:
            payload = msgspec.json.decode(body) if body else None
        except msgspec.DecodeError:
            payload = None
        self.connections.add(client)
        self.answered += 1
        item = Received(token, headers, payload, len(body), client) if self.record else None
        if item is not None:
            self.received.append(item)
        if method != "POST":
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


def _is_uuid(value: str) -> bool:
    parts = value.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and set(value.replace("-", "")) <= _HEX
