"""A stand-in for Google's OAuth2 token endpoint and FCM's HTTP v1 `messages:send`, on 127.0.0.1.

It checks what it receives as the real services do: the JWT-bearer grant (RS256 assertion verified with
the service account's public key, `kid`, `iss`, `aud` = this token URL, the firebase.messaging scope), the
Bearer token on every send (one it issued, not expired), the body (`message` with exactly one target,
string data values, no reserved data keys, the 4096-byte limit), and answers in FCM's own JSON shapes.

Scripted device tokens answer as FCM does for them (see `SCRIPTED`); `answers` takes more
(token -> (status, JSON body, headers)); `delays` holds tokens answered late ("slow": 2 s);
`unauthorized_next = N` makes the next N sends answer 401, `drop_next = N` close the connection
unanswered; `refuse_grant = True` makes the token endpoint refuse; `expires_in` sets the access
tokens' lifetime.
"""

import asyncio
import functools
import itertools
import json
import re
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_PAYLOAD = 4096
_TTL = re.compile(r"\d+(\.\d{1,9})?s")
_RESERVED = frozenset({"from", "message_type", "collapse_key", "notification"})


@functools.cache
def _test_key() -> rsa.RSAPrivateKey:
    """One RSA key per test process: generating one costs ~0.1 s, and no test needs two."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def fcm_error(
    status: int, grpc_status: str, message: str, error_code: str | None = None, *extra: dict[str, Any]
) -> dict[str, Any]:
    """FCM's error body: the gRPC-style `error` with the FcmError detail carrying the FCM code."""
    details: list[dict[str, Any]] = [{"@type": FCM_ERROR, "errorCode": error_code}] if error_code else []
    return {
        "error": {"code": status, "message": message, "status": grpc_status, "details": [*details, *extra]}
    }


Answer = tuple[int, dict[str, Any], dict[str, str]]

SCRIPTED: dict[str, Answer] = {
    "stale": (404, fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"), {}),
    "flood": (
        429,
        fcm_error(429, "RESOURCE_EXHAUSTED", "Sending quota for this device exceeded.", "QUOTA_EXCEEDED"),
        {"Retry-After": "7"},
    ),
    "flood-no-wait": (
        429,
        fcm_error(429, "RESOURCE_EXHAUSTED", "Sending quota for this device exceeded.", "QUOTA_EXCEEDED"),
        {},
    ),
    "boom": (
        503,
        fcm_error(503, "UNAVAILABLE", "The service is unavailable.", "UNAVAILABLE"),
        {"Retry-After": "3"},
    ),
    "internal": (500, fcm_error(500, "INTERNAL", "Internal error.", "INTERNAL"), {}),
    "bad": (
        400,
        fcm_error(
            400,
            "INVALID_ARGUMENT",
            "Invalid value at 'message.android.notification.color'.",
            "INVALID_ARGUMENT",
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "message.android.notification.color", "description": "bad"}],
            },
        ),
        {},
    ),
    "malformed": (
        400,
        fcm_error(
            400,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            "INVALID_ARGUMENT",
        ),
        {},
    ),
    "other": (403, fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH"), {}),
    "apns-auth": (
        401,
        fcm_error(
            401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", "THIRD_PARTY_AUTH_ERROR"
        ),
        {},
    ),
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # the JSON body of a send; the form fields of a token request
    size: int = 0  # payload bytes as FCM counts them (sends only)


@dataclass
class FcmStandIn:
    project_id: str = "demo-project"
    expires_in: int = 3599
    record: bool = True  # keep every request in `received` (a benchmark turns it off)
    answers: dict[str, Answer] = field(default_factory=lambda: dict(SCRIPTED))
    delays: dict[str, float] = field(
        default_factory=lambda: {"slow": 2.0}
    )  # token -> seconds before answering
    unauthorized_next: int = 0
    drop_next: int = 0  # the next N sends: the connection is closed without an answer
    refuse_grant: bool = False
    received: list[Received] = field(default_factory=list)
    token_requests: int = 0
    sends: int = 0
    issued: list[str] = field(default_factory=list)  # every access token handed out, in order

    def __post_init__(self) -> None:
        self.key = _test_key()
        self.key_id = secrets.token_hex(20)
        self.client_email = f"tidings-test@{self.project_id}.iam.gserviceaccount.com"
        self._expiry: dict[str, float] = {}  # access token -> monotonic expiry
        self._names = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- what a test needs -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    def private_key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def key_file_json(self, token_uri: str | None = None) -> dict[str, str]:
        """A Google service-account key file whose key this stand-in verifies assertions with."""
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.key_id,
            "private_key": self.private_key_pem(),
            "client_email": self.client_email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri or self.token_url,
        }

    def write_key_file(self, path: Path, token_uri: str | None = None) -> Path:
        path.write_text(json.dumps(self.key_file_json(token_uri), indent=2))
        return path

    def sent(self) -> list[Received]:
        return [r for r in self.received if r.path.endswith("messages:send")]

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        # aiohttp's server: FCM is reached over plain HTTP/1.1 on loopback (the settings have no CA to
        # trust), and it answers ~7,000 requests/s where hypercorn managed ~900.
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/v1/projects/{project}/messages:send", self._send)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FcmStandIn":
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # -- the token endpoint ----------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = dict(parse_qsl((await request.read()).decode(errors="replace")))
        if self.record:
            self.received.append(Received("/token", _headers(request), form))
        if request.headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
            return _oauth_error(400, "invalid_request", "form-encoded body expected")
        if form.get("grant_type") != GRANT_TYPE:
            return _oauth_error(400, "unsupported_grant_type", "Invalid grant_type")
        problem = self._assertion_problem(str(form.get("assertion", "")))
        if problem:
            return _oauth_error(400, "invalid_grant", problem)
        if self.refuse_grant:
            return _oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
        token = "ya29.test-" + secrets.token_urlsafe(32)
        self._expiry[token] = time.monotonic() + self.expires_in
        self.issued.append(token)
        return web.json_response(
            {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        )

    def _assertion_problem(self, assertion: str) -> str | None:
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self.key.public_key(),
                algorithms=["RS256"],
                audience=self.token_url,
                issuer=self.client_email,
                options={"require": ["iss", "aud", "iat", "exp", "scope"]},
            )
        except jwt.PyJWTError as exc:
            return f"Invalid JWT: {type(exc).__name__}"
        if header.get("kid") != self.key_id:
            return "Invalid JWT: unknown kid"
        if SCOPE not in str(claims["scope"]).split():
            return "Invalid JWT: scope"
        if claims["exp"] - claims["iat"] > 3600:
            return "Invalid JWT: lifetime over an hour"
        return None

    # -- messages:send ---------------------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.StreamResponse:
        self.sends += 1
        if self.drop_next > 0:  # the connection breaks before an answer (a GOAWAY, a reset)
            self.drop_next -= 1
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        message = body.get("message") if isinstance(body, dict) else None
        # The size FCM counts is never more than the whole body: only a body over the limit needs the
        # exact count, unless it is recorded (a benchmark turns recording off and saves the encoding).
        exact = self.record or len(raw) > MAX_PAYLOAD
        size = _size(message) if isinstance(message, dict) and exact else 0
        if self.record:
            self.received.append(Received(request.path, _headers(request), body, size))
        if not self._authorised(request.headers.get("authorization", "")):
            return _answer(
                401, fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
            )
        if request.match_info["project"] != self.project_id:
            return _answer(403, fcm_error(403, "PERMISSION_DENIED", "Permission denied on the project."))
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return _invalid("Content-Type must be application/json")
        if not isinstance(message, dict):
            return _invalid("Invalid JSON payload: no message")
        problem = _message_problem(message, size)
        if problem:
            return _invalid(problem)
        pause = self.delays.get(message.get("token", ""))
        if pause:
            await asyncio.sleep(pause)
        scripted = self.answers.get(message.get("token", ""))
        if scripted is not None:
            return _answer(*scripted)
        return web.json_response({"name": f"projects/{self.project_id}/messages/{next(self._names)}"})

    def _authorised(self, authorization: str) -> bool:
        if self.unauthorized_next > 0:
            self.unauthorized_next -= 1
            return False
        scheme, _, token = authorization.partition(" ")
        expiry = self._expiry.get(token)
        return scheme == "Bearer" and expiry is not None and time.monotonic() < expiry


def _size(message: dict[str, Any]) -> int:
    rest = {k: v for k, v in message.items() if k != "token"}
    return len(json.dumps(rest, separators=(",", ":"), ensure_ascii=False).encode())


def _message_problem(message: dict[str, Any], size: int) -> str | None:
    targets = [k for k in ("token", "topic", "condition") if message.get(k)]
    if len(targets) != 1:
        return f"exactly one of token, topic, condition is required, got {targets}"
    data = message.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return "Invalid value at 'message.data': values must be strings"
    for key in data:
        if key.lower() in _RESERVED or key.lower().startswith(("google", "gcm")):
            return f"Invalid data key: {key} is reserved"
    android = message.get("android", {})
    if "ttl" in android and not _TTL.fullmatch(str(android["ttl"])):
        return "Invalid value at 'message.android.ttl'"
    if android.get("priority", "NORMAL") not in ("NORMAL", "HIGH"):
        return "Invalid value at 'message.android.priority'"
    for block in ("apns", "webpush"):
        headers = message.get(block, {}).get("headers", {})
        if not all(isinstance(v, str) for v in headers.values()):
            return f"Invalid value at 'message.{block}.headers': values must be strings"
    if size > MAX_PAYLOAD:
        return "Message is too big"
    return None


def _headers(request: web.Request) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


def _invalid(message: str) -> web.Response:
    return _answer(400, fcm_error(400, "INVALID_ARGUMENT", message, "INVALID_ARGUMENT"))


def _answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def free_port() -> int:
    """A loopback port nothing listens on (for the unreachable-endpoint case)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
