"""A stand-in for WNS on loopback: the OAuth token endpoint (login.live.com/accesstoken.srf) and channel
URIs (`/w/<id>`), served over TLS (HTTP/1.1, which WNS takes) by aiohttp's low-level server, with a
trustme CA the client is told to trust. It answers several thousand requests a second on one core, so a
benchmark measures Tidings rather than the stand-in.

It checks what it receives the way WNS does and answers as WNS does:
- token endpoint: a form POST with grant_type=client_credentials, the app's client_id and client_secret
  and scope=notify.windows.com, answered {"access_token", "token_type": "bearer", "expires_in"}, or
  400 {"error": "invalid_client" | "invalid_request" | "invalid_scope" | "unsupported_grant_type"};
- channel: POST with `Authorization: Bearer <a token it issued, not expired>` (else 401 with
  WWW-Authenticate ... "Token expired" or "Invalid token"), X-WNS-Type and the Content-Type it requires,
  Content-Length, at most 5000 bytes (else 413), a toast that parses and has the ToastGeneric shape (else
  400 with X-WNS-Error-Description); 200 with X-WNS-Msg-ID and X-WNS-Status: received.

Scripted answers: `script(channel_id, status, headers)`, or the well-known ids in `NAMED`;
`expire_next(n)` answers the next n channel requests 401 "Token expired" whatever the token;
`revoke_tokens()` makes every token issued so far expired; `token_failure` makes the token endpoint
answer an error. Everything received is in `received` (channel) and `token_requests` (token endpoint);
with `record=False` (a benchmark) `received` stays empty and only the counts are kept: `requests` (to
channels) and `accepted` (channel id -> requests answered 200).
"""

import collections
import itertools
import json
import secrets
import ssl
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import trustme
from aiohttp import web

from tidings.channels.push.settings import WnsSettings

LIMIT = 5000
CONTENT_TYPES = {
    "wns/toast": "text/xml",
    "wns/tile": "text/xml",
    "wns/badge": "text/xml",
    "wns/raw": "application/octet-stream",
}
EXPIRED = 'Bearer error="invalid_request",error_description="Token expired"'
INVALID = 'Bearer error="invalid_request",error_description="Invalid token"'

# Channel ids with a fixed answer: (status, extra headers).
NAMED: dict[str, tuple[int, dict[str, str]]] = {
    "expired": (410, {"X-WNS-Error-Description": "Channel expired", "X-WNS-Status": "dropped"}),
    "unknown": (404, {"X-WNS-Error-Description": "Channel not found"}),
    "flood": (406, {"X-WNS-Status": "channelthrottled", "X-WNS-CONTINUE-AFTER": "30"}),
    "huge": (413, {"X-WNS-Error-Description": "Payload too large"}),
    "forbidden": (403, {"X-WNS-Error-Description": "Channel belongs to another app"}),
    "boom": (503, {"Retry-After": "7"}),
    "oops": (500, {}),
    "offline": (200, {"X-WNS-Status": "dropped", "X-WNS-DeviceConnectionStatus": "disconnected"}),
    "busy": (200, {"X-WNS-Status": "channelthrottled", "X-WNS-CONTINUE-AFTER": "12"}),
}


@dataclass
class Received:
    """One request to a channel URI, as the stand-in saw it."""

    channel: str  # the id after /w/
    http_version: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int  # what the stand-in answered
    toast: ET.Element | None = None  # the parsed toast, for wns/toast
    msg_id: str = ""  # the X-WNS-Msg-ID it answered (200 only)

    @property
    def text(self) -> str:
        return self.body.decode()


@dataclass
class TokenRequest:
    form: dict[str, str]
    status: int


@dataclass
class _State:
    client_id: str
    client_secret: str
    token_life: float
    record: bool = True
    requests: int = 0
    accepted: "collections.Counter[str]" = field(default_factory=collections.Counter)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> monotonic expiry
    script: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    expire_next: int = 0
    token_failure: tuple[int, dict[str, Any]] | None = None
    received: list[Received] = field(default_factory=list)
    token_requests: list[TokenRequest] = field(default_factory=list)
    ids: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1))


class WnsStandIn:
    CLIENT_ID = "ms-app://s-1-15-2-1111111111-2222222222-3333333333-4444444444"
    CLIENT_SECRET = "wns-standin-secret-Vq8L9WOFZuj95euaLr"

    def __init__(self, workdir: Path, *, token_life: float = 3600.0, record: bool = True) -> None:
        self._workdir = workdir
        self._state = _State(self.CLIENT_ID, self.CLIENT_SECRET, token_life, record)
        self._runner: web.ServerRunner | None = None
        self.port = 0
        self.ca_file = workdir / "wns-ca.pem"

    # -- lifecycle

    async def start(self) -> "WnsStandIn":
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        # aiohttp's low-level server: no router or middleware on the request path
        server = web.Server(_handler(self._state), access_log=None)
        self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context, backlog=512).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> "WnsStandIn":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- addresses and credentials

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/accesstoken.srf"

    def channel(self, channel_id: str) -> str:
        """A channel URI the stand-in serves (shaped like WNS's, with a token query)."""
        return f"{self.base_url}/w/{channel_id}?token=AwYAAAB{channel_id}"

    def settings(self, **overrides: Any) -> WnsSettings:
        values: dict[str, Any] = {
            "client_id": self.CLIENT_ID,
            "client_secret": self.CLIENT_SECRET,
            "token_url": self.token_url,
            "allow_hosts": ["127.0.0.1"],
            "ca_file": str(self.ca_file),
        }
        values.update(overrides)
        return WnsSettings(**values)

    @property
    def secrets(self) -> list[str]:
        """Everything that must never show in a log line or an error: the client secret, every token."""
        return [self.CLIENT_SECRET, *self._state.tokens]

    # -- scripting and what was received

    def script(self, channel_id: str, status: int, headers: dict[str, str] | None = None) -> None:
        self._state.script[channel_id] = (status, headers or {})

    def expire_next(self, count: int) -> None:
        self._state.expire_next = count

    def revoke_tokens(self) -> None:
        for token in self._state.tokens:
            self._state.tokens[token] = 0.0

    def fail_tokens(self, status: int, body: dict[str, Any]) -> None:
        self._state.token_failure = (status, body)

    @property
    def received(self) -> list[Received]:
        return self._state.received

    @property
    def token_requests(self) -> list[TokenRequest]:
        return self._state.token_requests

    @property
    def issued(self) -> list[str]:
        return list(self._state.tokens)

    @property
    def requests(self) -> int:
        """Requests to channels, recorded or not."""
        return self._state.requests

    @property
    def accepted(self) -> "collections.Counter[str]":
        """Channel id -> requests answered 200, recorded or not."""
        return self._state.accepted


# ----------------------------------------------------------------------------------------------- the app


def _handler(state: _State) -> Any:
    async def handle(request: web.BaseRequest) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        path = request.path
        extra: dict[str, str]
        if request.method != "POST":
            status, extra, out = 405, {}, b""
        elif path == "/accesstoken.srf":
            status, extra, out = _token(state, headers, body)
        elif path.startswith("/w/") and "/" not in path[3:]:
            version = f"{request.version.major}.{request.version.minor}"
            status, extra, out = _channel(state, version, path[3:], headers, body)
        else:
            status, extra, out = 404, {}, b""
        return web.Response(status=status, headers=extra, body=out)

    return handle


def _token(state: _State, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    status, answer = _token_answer(state, headers, form)
    state.token_requests.append(TokenRequest(form, status))
    return (
        status,
        {"content-type": "application/json", "cache-control": "no-store"},
        json.dumps(answer).encode(),
    )


def _channel(
    state: _State, http_version: str, cid: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    seen = Received(cid, http_version, headers, body, 0)
    status, extra = _channel_answer(state, seen)
    seen.status = status
    state.requests += 1
    if state.record:
        state.received.append(seen)
    if status == 200:
        state.accepted[cid] += 1
        seen.msg_id = f"{next(state.ids):016X}"
        extra = {
            "X-WNS-Msg-ID": seen.msg_id,
            "X-WNS-Status": "received",
            "X-WNS-Debug-Trace": "STANDIN",
            **extra,
        }
        if headers.get("x-wns-requestforstatus") == "true":
            extra.setdefault("X-WNS-DeviceConnectionStatus", "connected")
    return status, extra, b""


def _token_answer(state: _State, headers: dict[str, str], form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    if state.token_failure is not None:
        return state.token_failure
    if headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
        return 400, {"error": "invalid_request", "error_description": "form body expected"}
    if form.get("grant_type") != "client_credentials":
        return 400, {"error": "unsupported_grant_type"}
    if form.get("client_id") != state.client_id or form.get("client_secret") != state.client_secret:
        return 400, {"error": "invalid_client", "error_description": "Invalid client id or secret"}
    if form.get("scope") != "notify.windows.com":
        return 400, {"error": "invalid_scope"}
    token = secrets.token_urlsafe(32)
    state.tokens[token] = time.monotonic() + state.token_life
    return 200, {"access_token": token, "token_type": "bearer", "expires_in": state.token_life}


def _channel_answer(state: _State, seen: Received) -> tuple[int, dict[str, str]]:
    auth = _check_auth(state, seen.headers.get("authorization", ""))
    if auth is not None:
        return 401, {"WWW-Authenticate": auth}
    problem = _check_headers(seen)
    if problem is not None:
        return 400, {"X-WNS-Error-Description": problem}
    if len(seen.body) > LIMIT:
        return 413, {"X-WNS-Error-Description": "Payload too large"}
    if seen.headers["x-wns-type"] == "wns/toast":
        try:
            seen.toast = ET.fromstring(seen.body)
        except ET.ParseError:
            return 400, {"X-WNS-Error-Description": "Invalid XML payload"}
        problem = _check_toast(seen.toast)
        if problem is not None:
            return 400, {"X-WNS-Error-Description": problem}
    return state.script.get(seen.channel) or NAMED.get(seen.channel) or (200, {})


def _check_auth(state: _State, header: str) -> str | None:
    if state.expire_next > 0:
        state.expire_next -= 1
        return EXPIRED
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer" or token not in state.tokens:
        return INVALID
    if state.tokens[token] <= time.monotonic():
        return EXPIRED
    return None


def _check_headers(seen: Received) -> str | None:
    kind = seen.headers.get("x-wns-type")
    if kind not in CONTENT_TYPES:
        return f"Invalid X-WNS-Type {kind!r}"
    if seen.headers.get("content-type") != CONTENT_TYPES[kind]:
        return f"Content-Type must be {CONTENT_TYPES[kind]} for {kind}"
    if seen.headers.get("content-length") != str(len(seen.body)):
        return "Content-Length missing or wrong"
    ttl = seen.headers.get("x-wns-ttl")
    if ttl is not None and not (ttl.isdigit() and int(ttl) > 0):
        return "X-WNS-TTL must be a positive integer"
    if seen.headers.get("x-wns-requestforstatus", "false") not in ("true", "false"):
        return "X-WNS-RequestForStatus must be true or false"
    if seen.headers.get("x-wns-priority", "1") not in ("1", "2", "3", "4"):
        return "X-WNS-PRIORITY must be 1 to 4"
    return None


def _check_toast(toast: ET.Element) -> str | None:
    """The shape a ToastGeneric toast must have for Windows to show it."""
    if toast.tag != "toast":
        return "root element must be toast"
    bindings = toast.findall("visual/binding")
    if len(bindings) != 1 or bindings[0].get("template") != "ToastGeneric":
        return "one ToastGeneric binding expected"
    texts = bindings[0].findall("text")
    if not 1 <= len(texts) <= 3:
        return "a ToastGeneric binding takes one to three text elements"
    actions = toast.find("actions")
    if actions is not None:
        buttons = actions.findall("action")
        if not 1 <= len(buttons) <= 5 or any(
            b.get("content") is None or not b.get("arguments") for b in buttons
        ):
            return "one to five actions, each with content and arguments"
        if any(
            b.get("activationType", "foreground") not in ("foreground", "background", "protocol", "system")
            for b in buttons
        ):
            return "unknown activationType"
    return None
