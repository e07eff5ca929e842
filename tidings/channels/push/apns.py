"""Apple Push Notification service (APNs): HTTP/2 over TLS with token (ES256 JWT) authentication.

One long-lived HTTP/2 connection per provider (`h2client.H2Client`): Apple treats connection churn as
abuse, so pushes share one connection as concurrent streams, up to the server's
SETTINGS_MAX_CONCURRENT_STREAMS and our own cap. A 500/503 retires the connection (Apple says to retry
on a new one): the next push opens a fresh one while pushes already in flight finish on the old.

The provider token (header alg ES256, kid = key_id; claims iss = team_id, iat) is reused for 40 minutes,
inside Apple's 20-60 minute window, and renewed early only when Apple answers 403 ExpiredProviderToken,
once for all the pushes that saw that answer; the push is then retried once with the new token.

How a `PushSend` becomes an APNs request (`payload()` is that mapping, pure):
    path         /3/device/<token>
    apns-push-type  background when ios.extras.silentpush, else alert
    apns-priority   5 for background or when the v1 priority is 3 (low), else 10
    apns-id         the transid when it is a UUID, else a UUID5 of it (the same transid always gives
                    the same apns-id, so Apple's logs and ours line up across retries)
    apns-expiration the earlier of the message's expiry and now + extras.time_to_live (epoch seconds);
                    time_to_live 0 sends 0 (deliver once, do not store); neither given: no header, so
                    Apple stores it under its own policy
    apns-collapse-id  extras.collapse_key (at most 64 bytes, else refused before sending)
    body  {"aps": {"alert": {"title", "body": text}, "badge", "sound", "category", "mutable-content": 1},
           <custom keys>}
      - silentpush: "aps" is only {"content-available": 1} (a background push may show nothing); the
        text and title travel as the custom keys "text" and "title" for the app to use.
      - "mutable-content": 1 when extras.attachmenturl is set, so a notification service extension can
        fetch the attachment; "category" is interactive.category when interactive.device_types has ios.
      - custom keys at the top level: every extras.customtags key as given; "notificationaction"
        ({"action", "value"}); "url", "html", "attachmenturl"; "pushref" (the push's, else the
        interactive block's); "actions" (the interactive actions: [{"pos", "action", "identifier",
        "value"}]) when the interactive block is for ios.
      - a customtags key "aps", or one equal to a custom key the push itself sets, is refused (INVALID,
        INVALID_PAYLOAD) rather than silently overwriting either.
    The encoded body must fit 4096 bytes, else INVALID/PAYLOAD_TOO_LARGE without a call.

Answers: 200 -> the apns-id header; 410 Unregistered/ExpiredToken -> GONE TOKEN_UNREGISTERED; 400
BadDeviceToken -> GONE INVALID_TOKEN; 400 DeviceTokenNotForTopic -> GONE TOKEN_NOT_FOR_APP; 400 about
the topic (BadTopic, TopicDisallowed, MissingTopic) and 403 (InvalidProviderToken, …) -> CONFIG
AUTH_ERROR; other 400s -> INVALID INVALID_PAYLOAD; 413 -> INVALID PAYLOAD_TOO_LARGE; 429 -> THROTTLED
QUOTA_EXCEEDED (Retry-After); 500/503 -> UNAVAILABLE SERVICE_UNAVAILABLE; a broken connection (GOAWAY,
reset) -> retried once on a new connection, then CONNECTION; no answer in time -> TIMEOUT.
"""

import logging
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import jwt
import msgspec
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tidings.channels.base import Exchange, FailureKind, SendError
from tidings.channels.exchange import exchange, http_answer, http_request, unanswered
from tidings.channels.push.h2client import ConnectError, H2Client, H2ClientError, Response, unindexed
from tidings.channels.push.provider import PushSend
from tidings.channels.push.settings import ApnsSettings
from tidings.observe.connectors import Credential
from tidings.specs import push_codes as codes

log = logging.getLogger(__name__)

MAX_PAYLOAD = 4096
MAX_COLLAPSE_ID = 64
TOKEN_REUSE_S = 40 * 60
TOKEN_LIFETIME_S = 60 * 60  # Apple refuses a provider token older than this (ExpiredProviderToken)
REQUEST_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0
DEFAULT_MAX_STREAMS = 500
# A fixed namespace so that a transid that is not a UUID always maps to the same apns-id.
_APNS_ID_NAMESPACE = uuid.UUID("0b7e2c1a-5d34-4f0e-9a61-3c52d8e4f7a9")
# Headers whose value changes with every push: kept out of the HPACK table (see h2client.unindexed).
_UNIQUE_HEADERS = {"apns-id", "apns-expiration"}
_TOPIC_REASONS = {"BadTopic", "TopicDisallowed", "MissingTopic"}
_GONE = {
    "Unregistered": codes.TOKEN_UNREGISTERED,
    "ExpiredToken": codes.TOKEN_UNREGISTERED,
    "BadDeviceToken": codes.INVALID_TOKEN,
    "DeviceTokenNotForTopic": codes.TOKEN_NOT_FOR_APP,
}


@dataclass(frozen=True, slots=True)
class ApnsRequest:
    token: str
    headers: dict[str, str]  # the apns-* headers of this push (topic and authorization are added on send)
    payload: dict[str, Any]
    body: bytes  # `payload` as sent


def payload(item: PushSend, now: float | None = None) -> ApnsRequest:
    """The APNs request for one push (see the module docstring); SendError(INVALID) when it cannot be sent."""
    ios = item.content.ios
    if ios is None:
        raise SendError(FailureKind.INVALID, "the push has no ios block", codes.INVALID_PAYLOAD)
    if not item.token.isascii() or not item.token.isalnum():
        raise SendError(FailureKind.GONE, "APNs device token is not hex", codes.INVALID_TOKEN)
    extras = ios.extras
    silent = bool(extras and extras.silentpush)
    headers = {
        "apns-push-type": "background" if silent else "alert",
        "apns-priority": "5" if silent or item.priority == 3 else "10",
        "apns-id": _apns_id(item.transid),
    }
    expiration = _expiration(item, time.time() if now is None else now)
    if expiration is not None:
        headers["apns-expiration"] = str(expiration)
    if extras and extras.collapse_key is not None:
        if len(extras.collapse_key.encode()) > MAX_COLLAPSE_ID:
            raise SendError(
                FailureKind.INVALID, "collapse_key is longer than 64 bytes", codes.INVALID_PAYLOAD
            )
        headers["apns-collapse-id"] = extras.collapse_key
    body = _body(item, silent)
    encoded = msgspec.json.encode(body)
    if len(encoded) > MAX_PAYLOAD:
        raise SendError(
            FailureKind.INVALID, f"APNs payload is {len(encoded)} bytes (limit 4096)", codes.PAYLOAD_TOO_LARGE
        )
    return ApnsRequest(item.token, headers, body, encoded)


def _apns_id(transid: str) -> str:
    try:
        return str(uuid.UUID(transid))
    except ValueError:
        return str(uuid.uuid5(_APNS_ID_NAMESPACE, transid))


def _expiration(item: PushSend, now: float) -> int | None:
    ttl = item.content.ios.extras.time_to_live if item.content.ios and item.content.ios.extras else None
    limits = [] if item.expiry is None else [int(item.expiry)]
    if ttl is not None:
        limits.append(0 if ttl <= 0 else int(now) + ttl)
    return min(limits) if limits else None


def _body(item: PushSend, silent: bool) -> dict[str, Any]:
    ios = item.content.ios
    assert ios is not None
    extras = ios.extras
    interactive = item.content.interactive
    for_ios = interactive is not None and "ios" in interactive.device_types
    aps: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    if silent:
        aps["content-available"] = 1
        custom["text"] = ios.text
        if ios.title is not None:
            custom["title"] = ios.title
    else:
        aps["alert"] = {"body": ios.text} if ios.title is None else {"title": ios.title, "body": ios.text}
        if extras and extras.badge is not None:
            aps["badge"] = extras.badge
        if extras and extras.sound is not None:
            aps["sound"] = extras.sound
        if interactive is not None and for_ios:
            aps["category"] = interactive.category
        if extras and extras.attachmenturl:
            aps["mutable-content"] = 1
    if extras:
        if extras.notificationaction is not None:
            custom["notificationaction"] = msgspec.to_builtins(extras.notificationaction)
        for key in ("url", "html", "attachmenturl"):
            if (value := getattr(extras, key)) is not None:
                custom[key] = value
    pushref = item.content.pushref or (interactive.pushref if interactive is not None and for_ios else None)
    if pushref is not None:
        custom["pushref"] = pushref
    if interactive is not None and for_ios:
        custom["actions"] = msgspec.to_builtins(sorted(interactive.actions, key=lambda a: a.pos))
    tags = (extras.customtags if extras else None) or {}
    clash = sorted(key for key in tags if key == "aps" or key in custom)
    if clash:
        raise SendError(
            FailureKind.INVALID,
            f"customtags may not use the reserved key(s) {', '.join(clash)}",
            codes.INVALID_PAYLOAD,
        )
    return {"aps": aps, **tags, **custom}


def _error(status: int, reason: str, retry_after: float | None) -> SendError:
    text = f"APNs {status} {reason}".rstrip()
    if status in (400, 410) and reason in _GONE:
        return SendError(FailureKind.GONE, text, _GONE[reason])
    if status == 403 or (status == 400 and reason in _TOPIC_REASONS):
        return SendError(FailureKind.CONFIG, text, codes.AUTH_ERROR)
    if status == 413:
        return SendError(FailureKind.INVALID, text, codes.PAYLOAD_TOO_LARGE)
    if status == 429:
        return SendError(FailureKind.THROTTLED, text, codes.QUOTA_EXCEEDED, retry_after)
    if status >= 500:
        return SendError(FailureKind.UNAVAILABLE, text, codes.SERVICE_UNAVAILABLE, retry_after)
    if status in (400, 410):
        return SendError(FailureKind.INVALID, text, codes.INVALID_PAYLOAD)
    # 404 BadPath, 405 MethodNotAllowed, anything else: base_url does not lead to APNs.
    return SendError(FailureKind.CONFIG, text, codes.PLATFORM_FAILURE)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _reason(response: Response) -> str:
    try:
        reason = msgspec.json.decode(response.body).get("reason")
    except (msgspec.DecodeError, AttributeError):
        return ""
    return reason if isinstance(reason, str) else ""


def _resolve(base_dir: Path, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else base_dir / path


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The .p8 signing key; ValueError says what is wrong without quoting the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"key_file {path} cannot be read ({exc.strerror})") from None
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ValueError(f"key_file {path} is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"key_file {path} is not a P-256 (ES256) key")
    return key


def _tls(settings: ApnsSettings, base_dir: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context()  # the system CAs
    if settings.ca_file:
        ctx.load_verify_locations(cafile=str(_resolve(base_dir, settings.ca_file)))
    return ctx


class _ProviderToken:
    """The ES256 JWT Apple wants, reused for 40 minutes."""

    def __init__(
        self, key: ec.EllipticCurvePrivateKey, settings: ApnsSettings, clock: Callable[[], float]
    ) -> None:
        self._key, self._team_id, self._key_id, self._clock = key, settings.team_id, settings.key_id, clock
        self._jwt = ""
        self._iat = 0.0

    @property
    def expires_at(self) -> float | None:
        """When Apple stops taking the JWT in hand (an hour after it was made); None before the first."""
        return self._iat + TOKEN_LIFETIME_S if self._jwt else None

    def current(self) -> str:
        if not self._jwt or self._clock() - self._iat >= TOKEN_REUSE_S:
            self._mint()
        return self._jwt

    def renew(self, refused: str) -> str:
        """Apple said `refused` expired: mint once, however many pushes were refused with it."""
        if refused == self._jwt:
            self._mint()
        return self._jwt

    def _mint(self) -> None:
        self._iat = self._clock()
        claims = {"iss": self._team_id, "iat": int(self._iat)}
        self._jwt = jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self._key_id})


class ApnsProvider:
    name: ClassVar[str] = "apns"

    def __init__(
        self,
        settings: ApnsSettings,
        *,
        base_dir: Path = Path("."),
        max_streams: int = DEFAULT_MAX_STREAMS,
        clock: Callable[[], float] = time.time,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self._settings = settings
        self._base_dir = base_dir
        self._clock = clock
        self._timeout_s = timeout_s
        self._max_streams = max_streams
        self._topic = settings.topic.encode()
        self._tokens: _ProviderToken | None = None
        self._client: H2Client | None = None
        self._warned = ""  # the refusal already logged, so a flood of them logs once

    async def send(self, item: PushSend) -> str:
        return (await self.send_traced(item))[0]

    async def send_traced(self, item: PushSend) -> tuple[str, Exchange]:
        request = payload(item, self._clock())
        tokens = self._provider_token()
        client = self._h2()
        path = f"/3/device/{request.token}".encode()
        shown = {"apns-topic": self._settings.topic, **request.headers}
        wire = http_request(
            "POST", f"{self._settings.base_url.rstrip('/')}{path.decode()}", request.body, shown
        )
        bearer = tokens.current()
        for attempt in (1, 2):
            try:
                response = await client.request(
                    b"POST",
                    path,
                    self._headers(request, bearer),
                    request.body,
                    self._timeout_s,
                    unique_path=True,
                )
            except TimeoutError:
                timeout = SendError(FailureKind.TIMEOUT, "APNs did not answer in time")
                raise unanswered(timeout, wire, (bearer,)) from None
            except H2ClientError as exc:
                # A connection Apple closed (GOAWAY, reset) is replaced by the client: try once more.
                if attempt == 1 and not isinstance(exc, ConnectError):
                    continue
                broken = SendError(FailureKind.CONNECTION, f"APNs connection failed: {exc}")
                raise unanswered(broken, wire, (bearer,)) from None
            said = _answer(response)
            if response.status == 200:
                self._warned = ""
                ident = _text(response.header(b"apns-id")) or request.headers["apns-id"]
                return ident, exchange(wire, said, (bearer,))
            reason = _reason(response)
            if response.status == 403 and reason == "ExpiredProviderToken" and attempt == 1:
                bearer = tokens.renew(bearer)
                continue
            error = self._failure(response, reason)
            error.exchange = exchange(wire, said, (bearer,))
            raise error
        raise AssertionError("unreachable: the second attempt returns or raises")

    def credential(self) -> Credential:
        """The provider JWT in hand, for the console's health page."""
        expires = self._tokens.expires_at if self._tokens is not None else None
        name = f"APNs team {self._settings.team_id} key {self._settings.key_id}"
        note = f"made again after {TOKEN_REUSE_S // 60} min"
        return Credential(name, "provider JWT", expires, refused=self._warned, note=note)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _provider_token(self) -> _ProviderToken:
        if self._tokens is None:
            try:
                key = _load_key(_resolve(self._base_dir, self._settings.key_file))
            except ValueError as exc:
                self._warn(f"APNs provider token: {exc}")
                raise SendError(FailureKind.CONFIG, str(exc), codes.AUTH_ERROR) from None
            self._tokens = _ProviderToken(key, self._settings, self._clock)
        return self._tokens

    def _h2(self) -> H2Client:
        if self._client is None:
            url = urlsplit(self._settings.base_url)
            self._client = H2Client(
                url.hostname or "",
                url.port or 443,
                _tls(self._settings, self._base_dir),
                max_streams=self._max_streams,
                connect_timeout_s=min(CONNECT_TIMEOUT_S, self._timeout_s),
            )
        return self._client

    def _headers(self, request: ApnsRequest, bearer: str) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"authorization", b"bearer " + bearer.encode()),
            (b"apns-topic", self._topic),
            (b"content-type", b"application/json"),
        ]
        for name, value in request.headers.items():
            pair = (name.encode(), value.encode())
            headers.append(unindexed(*pair) if name in _UNIQUE_HEADERS else pair)
        return headers

    def _failure(self, response: Response, reason: str) -> SendError:
        retry_after = _retry_after(_text(response.header(b"retry-after")))
        error = _error(response.status, reason, retry_after)
        if error.kind is FailureKind.UNAVAILABLE and self._client is not None:
            self._client.retire()  # Apple asks for a new connection after a 500/503
        elif error.kind is FailureKind.CONFIG:
            self._warn(f"APNs refused the app's credentials or topic: {error.description}")
        return error

    def _warn(self, text: str) -> None:
        if text != self._warned:
            self._warned = text
            log.warning(text)


def _answer(response: Response) -> str:
    """APNs' answer as a provider attempt shows it: the status, apns-id and Retry-After, the body."""
    shown = {name: _text(response.header(name.encode())) or "" for name in ("apns-id", "retry-after")}
    return http_answer(response.status, response.body, shown)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def check(settings: ApnsSettings, base_dir: Path) -> list[str]:
    """What is wrong with an [apps.apns] block, in words (empty when nothing is)."""
    problems = []
    for key in ("team_id", "key_id"):
        value = getattr(settings, key)
        if not value or not value.isascii() or not value.isalnum():
            problems.append(f"{key} must be the letters and digits Apple shows (got {value!r})")
    if not settings.topic:
        problems.append("topic (the app's bundle id) is empty")
    try:
        _load_key(_resolve(base_dir, settings.key_file))
    except ValueError as exc:
        problems.append(str(exc))
    url = urlsplit(settings.base_url)
    if url.scheme != "https" or not url.hostname or url.path.strip("/") or url.query:
        problems.append(f"base_url must be https://host[:port] (got {settings.base_url!r})")
    if settings.ca_file:
        try:
            _tls(settings, base_dir)
        except (OSError, ssl.SSLError) as exc:
            problems.append(
                f"ca_file {_resolve(base_dir, settings.ca_file)} is not a readable PEM CA bundle ({exc})"
            )
    return problems
