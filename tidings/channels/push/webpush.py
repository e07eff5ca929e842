"""Web Push (RFC 8030) to a browser's subscription, encrypted per RFC 8291 (aes128gcm) and signed per
RFC 8292 (VAPID).

`PushSend.token` is the subscription's endpoint URL and `PushSend.keys` its `p256dh`/`auth`. The endpoint
comes from a browser, so it is a URL a user chose: it is only ever contacted over https on a well-known
push service or a host the app lists in `allow_hosts` (`endpoint_problem`), and redirects are not followed.
One aiohttp session (tidings.channels.push.http: HTTP/1.1 keep-alive connections, which every push
service takes) serves every endpoint, with a bound on the connections to each host.

What the service worker receives (the decrypted `push` event data), one UTF-8 JSON object, keys in this
order and the optional ones only when set:
    {"title": …, "body": <text>, "url"?: …, "actiontext"?: …, "platform_types"?: [...],
     "customtags"?: {...}, "pushref"?: …, "transid": <our message id>}
`body` is named as the Notification API names it, so a worker can pass the object to showNotification.

Headers: TTL is extras.time_to_live, else the seconds left before the message expires, else four weeks
(never negative); Urgency is high for priority 1, low for 3, normal otherwise; Topic is extras.collapse_key
when it is already a valid topic (1-32 URL-safe base64 characters), else the first 32 characters of the
URL-safe base64 SHA-256 of it, so the same key always replaces the same queued message.
"""

import base64
import hashlib
import ipaddress
import logging
import re
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, NamedTuple
from urllib.parse import urlsplit

import aiohttp
import http_ece
import jwt
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tidings.channels.base import Exchange, FailureKind, SendError
from tidings.channels.exchange import exchange, http_answer, http_request, unanswered
from tidings.channels.push.http import Answer, open_session, post, tls_context
from tidings.channels.push.provider import PushSend, WebPushKeys
from tidings.channels.push.settings import WebPushSettings
from tidings.notify.poster import retry_after_s
from tidings.observe.connectors import Credential
from tidings.specs.push_codes import (
    AUTH_ERROR,
    INVALID_PAYLOAD,
    INVALID_TOKEN,
    PAYLOAD_TOO_LARGE,
    PLATFORM_FAILURE,
    QUOTA_EXCEEDED,
    SERVICE_UNAVAILABLE,
    TOKEN_UNREGISTERED,
)

log = logging.getLogger("tidings.push.webpush")

# Push services browsers subscribe with: exact hosts, and suffixes that match any of their subdomains.
WELL_KNOWN_HOSTS = frozenset(
    {"fcm.googleapis.com", "updates.push.services.mozilla.com", "web.push.apple.com"}
)
WELL_KNOWN_SUFFIXES = (".push.services.mozilla.com", ".notify.windows.com", ".push.apple.com")

# One aes128gcm record (RFC 8188) of at most 4096 bytes: a 21-byte header plus our 65-byte public key as
# its keyid, then the plaintext, its 1-byte delimiter and the 16-byte GCM tag.
MAX_BODY = 4096
MAX_PLAINTEXT = MAX_BODY - (21 + 65) - (1 + 16)

DEFAULT_TTL = 28 * 24 * 3600
JWT_LIFETIME_S = 12 * 3600
JWT_RENEW_BEFORE_S = 3600  # a cached JWT is replaced this long before it expires
MAX_CACHED_AUDIENCES = 1024
MAX_ENDPOINT_LENGTH = 2048
# Connections in all and to one push service. 64 per host kept up with a stand-in answering thousands
# a second (bench/push.py); the total leaves room for the few services browsers use.
CONNECTIONS = 256
CONNECTIONS_PER_HOST = 64

_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_URGENCY = {1: "high", 3: "low"}
_encoder = msgspec.json.Encoder()


class Payload(NamedTuple):
    """The plaintext the browser gets and the headers the push service gets (all but Authorization)."""

    plaintext: bytes
    headers: dict[str, str]


def payload(item: PushSend, now: float) -> Payload:
    """Map the v1 `web` push block onto the notification JSON and the RFC 8030 headers.
    Raises SendError INVALID/INVALID_PAYLOAD when the message has no web block."""
    web = item.content.web
    if web is None:
        raise SendError(FailureKind.INVALID, "the message has no web push content", INVALID_PAYLOAD)
    note: dict[str, object] = {"title": web.title, "body": web.text}
    if web.url is not None:
        note["url"] = web.url
    if web.actiontext is not None:
        note["actiontext"] = web.actiontext
    if web.platform_types:
        note["platform_types"] = web.platform_types
    extras = web.extras
    if extras is not None and extras.customtags:
        note["customtags"] = extras.customtags
    if item.content.pushref is not None:
        note["pushref"] = item.content.pushref
    note["transid"] = item.transid
    headers = {
        "TTL": str(_ttl(item, now)),
        "Urgency": _URGENCY.get(item.priority, "normal"),
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
    }
    if extras is not None and extras.collapse_key:
        headers["Topic"] = topic(extras.collapse_key)
    return Payload(_encoder.encode(note), headers)


def _ttl(item: PushSend, now: float) -> int:
    web = item.content.web
    ttl = web.extras.time_to_live if web is not None and web.extras is not None else None
    if ttl is not None:
        return max(0, ttl)
    if item.expiry is not None:
        return max(0, int(item.expiry - now))
    return DEFAULT_TTL


def topic(collapse_key: str) -> str:
    """A Topic header value for a collapse key: the key itself when valid, else a stable digest of it."""
    if _TOPIC.fullmatch(collapse_key):
        return collapse_key
    digest = hashlib.sha256(collapse_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


# --- which endpoints we contact ---------------------------------------------------------------


def _host_matches(host: str, pattern: str) -> bool:
    # "*.example.com" matches any subdomain of example.com, not example.com itself.
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def endpoint_problem(url: str, settings: WebPushSettings) -> str | None:
    """Why we will not POST to this subscription endpoint, or None when we may. Allowed: https URLs
    without credentials on a well-known push service (port 443) or on a host of `allow_hosts`
    (any port). An IP address is only allowed when listed itself."""
    if len(url) > MAX_ENDPOINT_LENGTH or not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        return "not a plain URL of at most 2048 characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a valid URL"
    if parts.scheme != "https":
        return "not an https URL"
    if "@" in parts.netloc:
        return "the URL carries credentials"
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "the URL has no host"
    if not _is_ip(host) and not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
        return "the URL's host is not a plain host name"
    allowed = [p.lower().rstrip(".") for p in settings.allow_hosts]
    if any(_host_matches(host, p) for p in allowed if not (p.startswith("*.") and _is_ip(host))):
        return None
    if _is_ip(host):
        return f"the address {host} is not in allow_hosts"
    if host in WELL_KNOWN_HOSTS or host.endswith(WELL_KNOWN_SUFFIXES):
        return None if port in (None, 443) else f"port {port} is not 443 and {host} is not in allow_hosts"
    return f"{host} is not a known push service nor in allow_hosts"


def _audience(url: str) -> tuple[str, str]:
    """(the VAPID audience: the endpoint's origin, the host alone for messages)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    shown = f"[{host}]" if ":" in host else host
    port = parts.port
    origin = f"https://{shown}" if port in (None, 443) else f"https://{shown}:{port}"
    return origin, shown


def _b64url_decode(value: str) -> bytes:
    # Browsers hand out base64url without padding; some libraries pass standard base64: take both.
    value = value.strip().replace("+", "-").replace("/", "_").rstrip("=")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _decode_keys(keys: WebPushKeys | None) -> tuple[bytes, bytes] | str:
    if keys is None:
        return "the subscription has no keys"
    try:
        dh, auth = _b64url_decode(keys.p256dh), _b64url_decode(keys.auth)
    except ValueError:
        return "the subscription keys are not base64url"
    if len(dh) != 65 or dh[0] != 4:
        return "p256dh is not an uncompressed P-256 public key"
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), dh)
    except ValueError:
        return "p256dh is not a point on P-256"
    if len(auth) != 16:
        return "auth is not a 16-byte secret"
    return dh, auth


def keys_problem(keys: WebPushKeys | None) -> str | None:
    """Why a subscription's keys cannot be encrypted to, or None when they can."""
    decoded = _decode_keys(keys)
    return decoded if isinstance(decoded, str) else None


# --- credentials --------------------------------------------------------------------------------


def _resolve(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p


def _load_vapid_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The P-256 signing key from a PEM file; ValueError in words (never the key) when it is not one."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"vapid_private_key_file {path} does not exist") from None
    except OSError as exc:
        raise ValueError(f"vapid_private_key_file {path} cannot be read: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ValueError(f"vapid_private_key_file {path} is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"vapid_private_key_file {path} is not a P-256 (prime256v1) key")
    return key


def _public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    raw = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(raw)


def vapid_public_key(settings: WebPushSettings, base_dir: Path = Path(".")) -> str:
    """The app's VAPID public key, base64url: the `applicationServerKey` browsers subscribe with.
    Raises ValueError when the key file is not a P-256 PEM key."""
    return _public_key_b64(_load_vapid_key(_resolve(settings.vapid_private_key_file, base_dir)))


def _subject_problem(subject: str) -> str | None:
    if subject.startswith("mailto:"):
        return None if "@" in subject[7:] else f"subject {subject!r} is not a mailto: address"
    if subject.startswith("https://"):
        return None if urlsplit(subject).hostname else f"subject {subject!r} has no host"
    return f"subject {subject!r} is neither mailto: nor https:"


def _host_pattern_problem(pattern: str) -> str | None:
    host = pattern.lower().rstrip(".")
    if _is_ip(host):
        return None
    name = host[2:] if host.startswith("*.") else host
    labels = name.split(".")
    if not name or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return f"allow_hosts entry {pattern!r} is not a host name, an IP address or *.domain"
    if host.startswith("*.") and len(labels) < 2:
        return f"allow_hosts entry {pattern!r} would allow a whole top-level domain"
    return None


def check(settings: WebPushSettings, base_dir: Path) -> list[str]:
    """The `[apps.webpush]` block's problems, in words (empty when it is usable)."""
    problems: list[str] = []
    try:
        _load_vapid_key(_resolve(settings.vapid_private_key_file, base_dir))
    except ValueError as exc:
        problems.append(str(exc))
    if problem := _subject_problem(settings.subject):
        problems.append(problem)
    problems.extend(p for p in map(_host_pattern_problem, settings.allow_hosts) if p)
    if settings.ca_file:
        path = _resolve(settings.ca_file, base_dir)
        try:
            tls_context(path)
        except (OSError, ssl.SSLError):
            problems.append(f"ca_file {path} is not a readable PEM CA bundle")
    return problems


# --- the provider -------------------------------------------------------------------------------


class WebPushProvider:
    name: ClassVar[str] = "webpush"

    def __init__(
        self,
        settings: WebPushSettings,
        *,
        base_dir: Path = Path("."),
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._timeout_s = timeout_s  # one request as a whole, waiting for a connection included
        self._clock = clock  # wall-clock seconds: JWT exp and TTL are absolute times
        self._base_dir = base_dir
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._key_b64 = ""
        self._client: aiohttp.ClientSession | None = None
        self._jwts: dict[str, tuple[str, float]] = {}  # audience -> (Authorization value, renew at)
        self._auth_warned: set[str] = set()  # audiences whose refusal was logged since their last success

    async def send(self, item: PushSend) -> str:
        return (await self.send_traced(item))[0]

    async def send_traced(self, item: PushSend) -> tuple[str, Exchange]:
        if problem := endpoint_problem(item.token, self.settings):
            raise SendError(FailureKind.INVALID, f"subscription endpoint refused: {problem}", INVALID_TOKEN)
        keys = _decode_keys(item.keys)
        if isinstance(keys, str):
            raise SendError(FailureKind.INVALID, f"subscription refused: {keys}", INVALID_TOKEN)
        now = self._clock()
        body = payload(item, now)
        if len(body.plaintext) > MAX_PLAINTEXT:
            raise SendError(
                FailureKind.INVALID,
                f"the notification is {len(body.plaintext)} bytes; web push takes at most {MAX_PLAINTEXT}",
                PAYLOAD_TOO_LARGE,
            )
        client = self._client or self._open()
        audience, host = _audience(item.token)
        headers = {**body.headers, "Authorization": self._authorization(audience, now)}
        record = http_ece.encrypt(
            body.plaintext,
            private_key=ec.generate_private_key(ec.SECP256R1()),  # a fresh key per message (RFC 8291)
            dh=keys[0],
            auth_secret=keys[1],
            version="aes128gcm",
        )
        # What went out, readable: the service's headers but Authorization, and the plaintext the browser
        # decrypts (the wire carries only the aes128gcm record).
        wire = http_request(
            "POST",
            item.token,
            f"(encrypted: {len(record)} bytes aes128gcm) {body.plaintext.decode('utf-8', 'replace')}",
            body.headers,
        )
        secrets = (headers["Authorization"],)
        try:
            # (post never follows a redirect: endpoint_problem vets only the URL it was given)
            resp = await post(client, item.token, data=record, headers=headers)
        except TimeoutError:  # (aiohttp's timeouts are TimeoutErrors too)
            timeout = SendError(FailureKind.TIMEOUT, f"no answer from {host} in time")
            raise unanswered(timeout, wire, secrets) from None
        except aiohttp.ClientError as exc:
            broken = SendError(FailureKind.CONNECTION, f"{host}: {str(exc) or type(exc).__name__}")
            raise unanswered(broken, wire, secrets) from None
        shown = {name: resp.headers.get(name, "") for name in ("Location", "Retry-After")}
        said = exchange(wire, http_answer(resp.status_code, resp.content, shown), secrets)
        try:
            return self._answer(resp, item.transid, audience, host), said
        except SendError as exc:
            exc.exchange = said
            raise

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    def credential(self) -> Credential:
        """The VAPID JWTs in hand (one per push service), for the console's health page: the soonest
        to expire, and the push services that last refused ours."""
        expiries = [renew_at + JWT_RENEW_BEFORE_S for _, renew_at in self._jwts.values()]
        refused = (
            f"refused (401/403) by {', '.join(sorted(self._auth_warned)[:3])}" if self._auth_warned else ""
        )
        note = f"{len(self._jwts)} push service(s), each made again {JWT_RENEW_BEFORE_S // 60} min early"
        name = f"VAPID key ({self.settings.subject})"
        return Credential(name, "VAPID JWT", min(expiries, default=None), refused=refused, note=note)

    def _open(self) -> aiohttp.ClientSession:
        ca = _resolve(self.settings.ca_file, self._base_dir) if self.settings.ca_file else None
        try:
            ctx = tls_context(ca)
        except (OSError, ssl.SSLError):
            raise SendError(
                FailureKind.CONFIG, f"ca_file {ca} is not a readable PEM CA bundle", PLATFORM_FAILURE
            ) from None
        self._client = open_session(
            connections=CONNECTIONS,
            per_host=CONNECTIONS_PER_HOST,
            deadline=self._timeout_s,
            connect=min(5.0, self._timeout_s),
            context=ctx,
            headers={"User-Agent": "tidings"},
        )
        return self._client

    def _signing_key(self) -> ec.EllipticCurvePrivateKey:
        if self._key is None:
            try:
                self._key = _load_vapid_key(_resolve(self.settings.vapid_private_key_file, self._base_dir))
            except ValueError as exc:
                raise SendError(FailureKind.CONFIG, str(exc), AUTH_ERROR) from None
            self._key_b64 = _public_key_b64(self._key)
        return self._key

    def _authorization(self, audience: str, now: float) -> str:
        """The VAPID Authorization value for an audience, signed again an hour before it expires."""
        cached = self._jwts.get(audience)
        if cached is not None and now < cached[1]:
            return cached[0]
        key = self._signing_key()
        exp = int(now) + JWT_LIFETIME_S
        token = jwt.encode(
            {"aud": audience, "exp": exp, "sub": self.settings.subject}, key, algorithm="ES256"
        )
        value = f"vapid t={token}, k={self._key_b64}"
        if len(self._jwts) >= MAX_CACHED_AUDIENCES:
            self._jwts.clear()
        self._jwts[audience] = (value, exp - JWT_RENEW_BEFORE_S)
        return value

    def _answer(self, resp: Answer, transid: str, audience: str, host: str) -> str:
        status = resp.status_code
        if status in (200, 201, 202):
            self._auth_warned.discard(audience)
            return resp.headers.get("Location") or transid
        said = f"{host} answered {status}" + (f": {_excerpt(resp.text)}" if resp.content else "")
        wait = retry_after_s(resp.headers.get("Retry-After"), time.time()) or None
        if status in (404, 410):
            raise SendError(FailureKind.GONE, said, TOKEN_UNREGISTERED)
        if status == 413:
            raise SendError(FailureKind.INVALID, said, PAYLOAD_TOO_LARGE)
        if status == 400:
            raise SendError(FailureKind.INVALID, said, INVALID_PAYLOAD)
        if status in (401, 403):
            if audience not in self._auth_warned:
                self._auth_warned.add(audience)
                log.warning("web push: %s refused our VAPID authorization (%s)", host, status)
            raise SendError(FailureKind.CONFIG, said, AUTH_ERROR)
        if status == 429:
            raise SendError(FailureKind.THROTTLED, said, QUOTA_EXCEEDED, wait)
        if status >= 500:
            raise SendError(FailureKind.UNAVAILABLE, said, SERVICE_UNAVAILABLE, wait)
        raise SendError(FailureKind.REJECTED, said, PLATFORM_FAILURE)


def _excerpt(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
