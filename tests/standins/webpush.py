"""A Web Push service (RFC 8030) on 127.0.0.1 over TLS (HTTP/1.1, aiohttp's low-level server), that also
plays the browser.

`POST /push/<id>` is checked as a push service checks it: a `vapid t=<JWT>, k=<key>` Authorization whose
ES256 JWT verifies with `k`, names the origin the request was sent to (its Host) as `aud`, expires
within 24 h and has a `sub` (401 otherwise; 403 when `k` is not the key the subscription was made with,
`expected_vapid_key`); a TTL header and `Content-Encoding: aes128gcm` (400 otherwise); a body of at
most 4096 bytes (413). As the browser, it then decrypts the body with the subscription's private key and
auth secret (400 when that fails) and records it in `received`, answering 201 with a Location.

Subscriptions come from `new_subscription(id)`. Scripted ids (`script`, id -> (status, headers)) answer
as given once the request passed the checks; by default "gone" 410, "missing" 404, "toolarge" 413,
"badreq" 400, "flood" 429 with Retry-After 7, "boom" 503 with Retry-After 3, "down" 502 without one;
status 0 (default "hang") never answers until the stand-in stops.
Refused and scripted requests land in `refused` as (id, status, reason).

With `record=False` (a benchmark) it still checks every request (the JWT is verified once per distinct
token) but does not decrypt nor keep what it took: `received` stays empty, and `requests` and `accepted`
(id -> pushes taken) count.
"""

import asyncio
import base64
import collections
import os
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece
import jwt
import msgspec
import trustme
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tidings.channels.push.provider import WebPushKeys

MAX_BODY = 4096
MAX_JWT_LIFETIME_S = 24 * 3600

DEFAULT_SCRIPT: dict[str, tuple[int, dict[str, str]]] = {
    "gone": (410, {}),
    "missing": (404, {}),
    "toolarge": (413, {}),
    "badreq": (400, {}),
    "flood": (429, {"Retry-After": "7"}),
    "boom": (503, {"Retry-After": "3"}),
    "down": (502, {}),
    "hang": (0, {}),
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _public_raw(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def write_vapid_key(path: Path, *, pkcs8: bool = True) -> str:
    """Write a fresh P-256 VAPID private key as PEM (PKCS#8, or SEC1 "EC PRIVATE KEY"); return its public
    key as base64url, the applicationServerKey a browser would subscribe with."""
    key = ec.generate_private_key(ec.SECP256R1())
    fmt = serialization.PrivateFormat.PKCS8 if pkcs8 else serialization.PrivateFormat.TraditionalOpenSSL
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()))
    return b64url(_public_raw(key))


@dataclass(frozen=True, slots=True)
class Received:
    """One push the browser decrypted."""

    sub_id: str
    headers: dict[str, str]  # lower-case names
    plaintext: bytes
    claims: dict[str, Any]  # the VAPID JWT's
    vapid_key: str  # the `k` it came with
    http_version: str
    body_size: int  # the encrypted record's
    keyid: bytes  # the sender's public key in the record header: a fresh one per message

    @property
    def json(self) -> Any:
        return msgspec.json.decode(self.plaintext)


@dataclass(slots=True)
class _Browser:
    key: ec.EllipticCurvePrivateKey
    auth: bytes


@dataclass(frozen=True, slots=True)
class Incoming:
    """One request, as the service's checks see it."""

    method: str
    path: str
    http_version: str
    sub_id: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class WebPushService:
    directory: Path  # where the TLS files go (a test's tmp_path)
    expected_vapid_key: str | None = None  # when set, any other `k` is refused with 403
    record: bool = True  # decrypt and keep each push taken (False: check and count only)
    script: dict[str, tuple[int, dict[str, str]]] = field(default_factory=lambda: dict(DEFAULT_SCRIPT))
    received: list[Received] = field(default_factory=list)
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    requests: int = 0
    accepted: "collections.Counter[str]" = field(default_factory=collections.Counter)
    port: int = 0
    _browsers: dict[str, _Browser] = field(default_factory=dict)
    _verified: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    _release: asyncio.Event = field(default_factory=asyncio.Event)  # lets "hang" requests end
    _runner: web.ServerRunner | None = None

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.directory / "webpush-ca.pem"

    def endpoint(self, sub_id: str) -> str:
        return f"{self.origin}/push/{sub_id}"

    def new_subscription(self, sub_id: str) -> tuple[dict[str, Any], WebPushKeys]:
        """Subscribe a browser: its subscription JSON (as PushSubscription.toJSON() gives it) and the
        same keys as the provider takes them."""
        browser = _Browser(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))
        self._browsers[sub_id] = browser
        keys = WebPushKeys(p256dh=b64url(_public_raw(browser.key)), auth=b64url(browser.auth))
        sub = {"endpoint": self.endpoint(sub_id), "keys": {"p256dh": keys.p256dh, "auth": keys.auth}}
        return sub, keys

    async def start(self) -> None:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        # aiohttp's low-level server: no router or middleware on the request path
        self._runner = web.ServerRunner(
            web.Server(self._serve, access_log=None), handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context, backlog=512).start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            self._release.set()
            await runner.cleanup()

    async def __aenter__(self) -> "WebPushService":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- HTTP ------------------------------------------------------------------------------------

    async def _serve(self, request: web.BaseRequest) -> web.Response:
        body = await request.read()
        self.requests += 1
        path = request.path
        incoming = Incoming(
            request.method,
            path,
            f"{request.version.major}.{request.version.minor}",
            path.removeprefix("/push/"),
            {k.lower(): v for k, v in request.headers.items()},
            body,
        )
        try:
            status, extra = self._handle(incoming)
            if status == 0:
                await self._release.wait()
                status = 503
        except _Refused as exc:
            self.refused.append((incoming.sub_id, exc.status, exc.reason))
            content = msgspec.json.encode({"reason": exc.reason})
            return web.Response(status=exc.status, body=content, content_type="application/json")
        return web.Response(status=status, headers=extra)

    def _handle(self, request: Incoming) -> tuple[int, dict[str, str]]:
        sub_id, headers, body = request.sub_id, request.headers, request.body
        if request.method != "POST" or not request.path.startswith("/push/"):
            raise _Refused(404, "no such resource")
        if sub_id not in self._browsers and sub_id not in self.script:
            raise _Refused(404, "no such subscription")
        # The JWT's audience is the origin the request was sent to, as its Host names it.
        claims, key = self._vapid(headers.get("authorization", ""), f"https://{headers.get('host', '')}")
        if not headers.get("ttl", "").isdigit():
            raise _Refused(400, "TTL header missing or not a non-negative integer")
        if headers.get("content-encoding") != "aes128gcm":
            raise _Refused(400, "Content-Encoding must be aes128gcm")
        if headers.get("urgency", "normal") not in ("very-low", "low", "normal", "high"):
            raise _Refused(400, "bad Urgency")
        topic = headers.get("topic")
        if topic is not None and (len(topic) > 32 or not topic.replace("-", "").replace("_", "").isalnum()):
            raise _Refused(400, "bad Topic")
        if len(body) > MAX_BODY:
            raise _Refused(413, "payload too large")
        if sub_id in self.script:
            status, extra = self.script[sub_id]
            self.refused.append((sub_id, status, "scripted"))
            return status, extra
        if not self.record:
            if len(body) < 21 or body[20] != 65:
                raise _Refused(400, "the record's keyid is not a P-256 public key")
            self.accepted[sub_id] += 1
            return 201, {"Location": f"{self.origin}/m/{self.requests}"}
        plaintext = self._decrypt(self._browsers[sub_id], body)
        self.accepted[sub_id] += 1
        seen = Received(sub_id, headers, plaintext, claims, key, request.http_version, len(body), body[21:86])
        self.received.append(seen)
        return 201, {"Location": f"{self.origin}/m/{len(self.received)}"}

    def _vapid(self, authorization: str, origin: str) -> tuple[dict[str, Any], str]:
        scheme, _, rest = authorization.partition(" ")
        params = dict(p.strip().partition("=")[::2] for p in rest.split(","))
        token, key = params.get("t", ""), params.get("k", "")
        if scheme.lower() != "vapid" or not token or not key:
            raise _Refused(401, "Authorization is not vapid t=…, k=…")
        if self.expected_vapid_key is not None and key != self.expected_vapid_key:
            raise _Refused(403, "the VAPID key is not the one of the subscription")
        claims = self._verified.get((token, key, origin))
        if claims is None:
            claims = self._verify(token, key, origin)
            self._verified[(token, key, origin)] = claims
        if claims["exp"] <= time.time():
            raise _Refused(401, "the JWT has expired")
        return claims, key

    def _verify(self, token: str, key: str, origin: str) -> dict[str, Any]:
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64url_decode(key))
            claims: dict[str, Any] = jwt.decode(
                token, public, algorithms=["ES256"], audience=origin, options={"require": ["exp", "sub"]}
            )
        except (ValueError, jwt.PyJWTError) as exc:
            raise _Refused(401, f"bad VAPID JWT: {type(exc).__name__}") from None
        if claims["exp"] > time.time() + MAX_JWT_LIFETIME_S:
            raise _Refused(401, "the JWT expires more than 24 h ahead")
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            raise _Refused(401, "sub is neither mailto: nor https:")
        return claims

    @staticmethod
    def _decrypt(browser: _Browser, body: bytes) -> bytes:
        if len(body) < 21 or body[20] != 65:
            raise _Refused(400, "the record's keyid is not a P-256 public key")
        try:
            plaintext: bytes = http_ece.decrypt(
                body, private_key=browser.key, auth_secret=browser.auth, version="aes128gcm"
            )
        except http_ece.ECEException:
            raise _Refused(400, "cannot decrypt") from None
        return plaintext
