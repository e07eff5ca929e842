"""Firebase Cloud Messaging, HTTP v1 API: Android devices, and iOS/web devices registered with FCM tokens.

Auth is the OAuth2 JWT-bearer grant (RFC 7523) with the app's Google service-account key: an RS256
assertion posted to the key file's `token_uri` buys an access token for about an hour. It is cached,
refreshed about five minutes before it runs out by one request however many sends are waiting, and
refreshed once more when `messages:send` answers 401 (Google may revoke a token early).

One notification is one `POST {base_url}/v1/projects/{project_id}/messages:send`; the service's message
`name` is returned as the id. The transport is tidings.channels.push.http: aiohttp over HTTP/1.1
keep-alive connections (FCM takes HTTP/1.1 as well as HTTP/2).

Errors are read from `error.details[].errorCode` (an `FcmError`), not from the gRPC `status`, which is
coarser (UNREGISTERED comes as NOT_FOUND).
"""

import asyncio
import email.utils
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
import jwt
import msgspec
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tidings.channels.base import FailureKind, SendError
from tidings.channels.push.http import Answer, open_session, post
from tidings.channels.push.provider import PushSend
from tidings.channels.push.settings import FcmSettings
from tidings.schema.push import (
    AndroidExtras,
    AndroidPush,
    IosExtras,
    IosPush,
    NotificationAction,
    PushContent,
    WebExtras,
    WebPushMessage,
)
from tidings.specs import push_codes as codes

log = logging.getLogger(__name__)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_PAYLOAD = 4096  # bytes FCM accepts for one message to a token
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_ASSERTION_LIFETIME = 3600  # the longest Google accepts
_REFRESH_MARGIN = 300.0  # fetch the next token this long before the current one runs out
_USABLE_MARGIN = 30.0  # stop sending with a token this long before it runs out (clock skew, transit)
_REFRESH_RETRY = 5.0  # after a failed early refresh, while the current token still works
_QUOTA_BACKOFF = 60.0  # FCM asks for at least a minute when it gives no Retry-After
_CONNECT_TIMEOUT = 5.0
_DEADLINE = 10.0  # a whole request, however slowly the answer trickles in
# Requests in flight to FCM per app: each holds one keep-alive connection. 64 measured as fast as 128
# against the stand-in (bench/push.py) and keeps the number of sockets modest.
CONNECTIONS = 64
_TEXT_LIMIT = 200  # of the service's own error text kept in a description

# Data keys FCM refuses (its own wire fields); a custom tag named so is sent as `customtag_<key>`.
_RESERVED_KEYS = frozenset({"from", "message_type", "collapse_key", "notification"})
_RESERVED_PREFIXES = ("google", "gcm")
# APNs or a web push service refused the credentials stored in Firebase: a 401 no new token cures.
_THIRD_PARTY_AUTH = frozenset({"THIRD_PARTY_AUTH_ERROR", "APNS_AUTH_ERROR"})
_AUTH_CODES = _THIRD_PARTY_AUTH | {"UNAUTHENTICATED", "PERMISSION_DENIED"}
_WEB_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")  # RFC 8030 Topic: at most 32 base64url characters


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """The parts of a Google service-account key file the grant needs."""

    client_email: str
    private_key_id: str
    token_uri: str
    key: RSAPrivateKey

    def __repr__(self) -> str:  # the key never reaches a log line through a repr
        return f"ServiceAccount(client_email={self.client_email!r}, token_uri={self.token_uri!r})"


def load_service_account(path: Path) -> ServiceAccount:
    """Read and check a key file; raise ValueError saying what is wrong (never quoting the key)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"service_account_file {path}: cannot be read ({exc.strerror})") from None
    try:
        info = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise ValueError(f"service_account_file {path}: not JSON") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ValueError(
            f'service_account_file {path}: not a service-account key ("type" is not service_account)'
        )
    fields = {name: info.get(name) for name in ("client_email", "private_key_id", "private_key", "token_uri")}
    missing = [name for name, value in fields.items() if not isinstance(value, str) or not value]
    if missing:
        raise ValueError(f"service_account_file {path}: missing {', '.join(missing)}")
    token_uri = str(fields["token_uri"])
    if not _is_http_url(token_uri):
        raise ValueError(f"service_account_file {path}: token_uri is not an http(s) URL")
    try:
        key = load_pem_private_key(str(fields["private_key"]).encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError(f"service_account_file {path}: private_key is not an unencrypted PEM key") from None
    if not isinstance(key, RSAPrivateKey):
        raise ValueError(f"service_account_file {path}: private_key is not an RSA key")
    return ServiceAccount(str(fields["client_email"]), str(fields["private_key_id"]), token_uri, key)


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def check(settings: FcmSettings, base_dir: Path) -> list[str]:
    """Configuration problems of an `[apps.fcm]` block, in words (empty when it looks usable)."""
    problems = []
    if not settings.project_id or re.search(r"[\s/]", settings.project_id):
        problems.append(f"project_id {settings.project_id!r} is not a Firebase project id")
    parts = urlsplit(settings.base_url)
    if not _is_http_url(settings.base_url) or parts.query or parts.fragment or parts.path not in ("", "/"):
        problems.append(f"base_url {settings.base_url!r} is not http(s)://host[:port]")
    try:
        load_service_account(base_dir / settings.service_account_file)
    except ValueError as exc:
        problems.append(str(exc))
    return problems


# -- the payload ---------------------------------------------------------------------------------------


def payload(item: PushSend, now: float | None = None) -> dict[str, Any]:
    """The `messages:send` body for one notification: `{"message": {...}}` addressed to `item.token`.

    The platform's block of the push object decides the shape:
    - android: `notification{title, body, image}` (image: customtags.imageurl, else iconurl) and
      `android{priority, collapse_key, ttl, notification{sound, channel_id, click_action}}`;
      click_action is the notificationaction's action (the app's intent filter), except OPEN_APP,
      which is what a tap does anyway.
    - ios: `apns{headers, payload{aps}}`; silentpush sends no alert, only `content-available`, at
      priority 5 as APNs requires for background pushes.
    - web: `webpush{headers{TTL, Urgency, Topic}, notification, fcm_options{link}}`; the collapse key
      becomes the Topic only when it is a valid one (≤ 32 base64url characters).
    `data` (every value a string) carries: the custom tags (non-strings as JSON; a tag FCM reserves —
    from, message_type, collapse_key, notification, google*, gcm* — as `customtag_<name>`), then
    `notificationaction_action`/`notificationaction_value`, ios `url`/`html`, `pushref`, and, when
    `interactive.device_types` names the platform, `interactive_category` and `interactive_actions`
    (a JSON array); these later keys win over a custom tag of the same name.
    The lifetime is extras.time_to_live, else what is left until the message's expiry (at least 0).
    """
    now = time.time() if now is None else now
    content = item.content
    if item.platform == "android" and content.android is not None:
        message = _android(item, content.android, now)
    elif item.platform == "ios" and content.ios is not None:
        message = _ios(item, content.ios, now)
    elif item.platform == "web" and content.web is not None:
        message = _web(item, content.web, now)
    else:
        raise SendError(
            FailureKind.INVALID, f"no {item.platform} block in the push object for FCM", codes.INVALID_PAYLOAD
        )
    return {"message": message}


def payload_size(message: dict[str, Any]) -> int:
    """Bytes FCM counts against its 4096-byte limit: the message as JSON, less its address."""
    return len(msgspec.json.encode({k: v for k, v in message.items() if k != "token"}))


def _android(item: PushSend, push: AndroidPush, now: float) -> dict[str, Any]:
    extras = push.extras or AndroidExtras()
    notification: dict[str, Any] = _alert(push.title, push.text)
    image = (extras.customtags or {}).get("imageurl") or extras.iconurl
    if isinstance(image, str) and image:
        notification["image"] = image
    android: dict[str, Any] = {"priority": "HIGH" if item.priority == 1 else "NORMAL"}
    if extras.collapse_key:
        android["collapse_key"] = extras.collapse_key
    ttl = _ttl(extras.time_to_live, item.expiry, now)
    if ttl is not None:
        android["ttl"] = f"{ttl}s"
    shown: dict[str, Any] = {}
    if extras.sound:
        shown["sound"] = extras.sound
    if extras.notificationChannelId:
        shown["channel_id"] = extras.notificationChannelId
    if extras.notificationaction is not None and extras.notificationaction.action != "OPEN_APP":
        shown["click_action"] = extras.notificationaction.action
    if shown:
        android["notification"] = shown
    message: dict[str, Any] = {"token": item.token, "notification": notification, "android": android}
    _add_data(message, _data(item, extras.customtags, extras.notificationaction))
    return message


def _ios(item: PushSend, push: IosPush, now: float) -> dict[str, Any]:
    extras = push.extras or IosExtras()
    silent = extras.silentpush
    aps: dict[str, Any] = {}
    if silent:
        aps["content-available"] = 1
    else:
        aps["alert"] = _alert(push.title, push.text)
        if extras.sound:
            aps["sound"] = extras.sound
    if extras.badge is not None:
        aps["badge"] = extras.badge
    interactive = _interactive_for(item)
    if interactive is not None and not silent:
        aps["category"] = interactive
    headers = {
        "apns-priority": "5" if silent or item.priority == 3 else "10",  # as tidings.channels.push.apns
        "apns-push-type": "background" if silent else "alert",
    }
    ttl = _ttl(extras.time_to_live, item.expiry, now)
    if ttl is not None:
        headers["apns-expiration"] = "0" if ttl == 0 else str(int(now) + ttl)
    if extras.collapse_key:
        headers["apns-collapse-id"] = extras.collapse_key
    apns: dict[str, Any] = {"headers": headers, "payload": {"aps": aps}}
    if extras.attachmenturl and not silent:
        aps["mutable-content"] = 1  # lets the app's service extension fetch the image
        apns["fcm_options"] = {"image": extras.attachmenturl}
    data = _data(item, extras.customtags, extras.notificationaction)
    data.update({k: v for k, v in (("url", extras.url), ("html", extras.html)) if v})
    message: dict[str, Any] = {"token": item.token, "apns": apns}
    _add_data(message, data)
    return message


def _web(item: PushSend, push: WebPushMessage, now: float) -> dict[str, Any]:
    extras = push.extras or WebExtras()
    headers = {"Urgency": {1: "high", 3: "low"}.get(item.priority, "normal")}
    ttl = _ttl(extras.time_to_live, item.expiry, now)
    if ttl is not None:
        headers["TTL"] = str(ttl)
    if extras.collapse_key and _WEB_TOPIC.fullmatch(extras.collapse_key):
        headers["Topic"] = extras.collapse_key
    webpush: dict[str, Any] = {"headers": headers, "notification": _alert(push.title, push.text)}
    if push.url:
        webpush["fcm_options"] = {"link": push.url}
    data = _data(item, extras.customtags, None)
    if push.actiontext:
        data["actiontext"] = push.actiontext
    message: dict[str, Any] = {"token": item.token, "webpush": webpush}
    _add_data(message, data)
    return message


def _alert(title: str | None, text: str) -> dict[str, Any]:
    return {"title": title, "body": text} if title else {"body": text}


def _ttl(time_to_live: int | None, expiry: float | None, now: float) -> int | None:
    if time_to_live is not None:
        return max(0, time_to_live)
    if expiry is not None:
        return max(0, int(expiry - now))
    return None


def _interactive_for(item: PushSend) -> str | None:
    """The interactive category when the interactive block targets this device's platform."""
    interactive = item.content.interactive
    if interactive is not None and item.platform in interactive.device_types:
        return interactive.category
    return None


def _data(
    item: PushSend, customtags: dict[str, Any] | None, action: NotificationAction | None
) -> dict[str, str]:
    data = {_data_key(key): _as_string(value) for key, value in (customtags or {}).items()}
    if action is not None:
        data["notificationaction_action"] = action.action
        if action.value is not None:
            data["notificationaction_value"] = action.value
    content: PushContent = item.content
    pushref = content.pushref
    if _interactive_for(item) is not None and content.interactive is not None:
        pushref = content.interactive.pushref or pushref
        data["interactive_category"] = content.interactive.category
        data["interactive_actions"] = msgspec.json.encode(content.interactive.actions).decode()
    if pushref:
        data["pushref"] = pushref
    return data


def _data_key(key: str) -> str:
    lowered = key.lower()
    if lowered in _RESERVED_KEYS or lowered.startswith(_RESERVED_PREFIXES):
        return f"customtag_{key}"
    return key


def _as_string(value: Any) -> str:
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def _add_data(message: dict[str, Any], data: dict[str, str]) -> None:
    if data:
        message["data"] = data


# -- errors --------------------------------------------------------------------------------------------


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_parts(response: Answer) -> tuple[str, str, bool]:
    """(FCM error code or gRPC status, the service's message, whether it names the token as the bad field)."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, dict):
        return "", "", False
    code, token_field = "", False
    for detail in error.get("details") or ():
        if not isinstance(detail, dict):
            continue
        if detail.get("@type") == FCM_ERROR_TYPE and isinstance(detail.get("errorCode"), str):
            code = detail["errorCode"]
        for violation in detail.get("fieldViolations") or ():
            token_field |= isinstance(violation, dict) and violation.get("field") == "message.token"
    message = error.get("message")
    status = error.get("status")
    return (
        code or (status if isinstance(status, str) else ""),
        message if isinstance(message, str) else "",
        token_field,
    )


def send_error(response: Answer) -> SendError:
    """The catalogue's reading of a `messages:send` failure."""
    status = response.status_code
    code, message, token_field = _error_parts(response)
    text = f"FCM {status} {code or 'error'}: {message[:_TEXT_LIMIT]}".rstrip(": ")
    wait = _retry_after(response.headers)
    lowered = message.lower()
    if code == "UNREGISTERED":
        return SendError(FailureKind.GONE, text, codes.TOKEN_UNREGISTERED)
    if code == "INVALID_ARGUMENT":
        if token_field or ("registration token" in lowered and "valid" in lowered):
            return SendError(FailureKind.GONE, text, codes.INVALID_TOKEN)
        if "too big" in lowered or "too large" in lowered:
            return SendError(FailureKind.INVALID, text, codes.PAYLOAD_TOO_LARGE)
        return SendError(FailureKind.INVALID, text, codes.INVALID_PAYLOAD)
    if code == "SENDER_ID_MISMATCH":
        return SendError(FailureKind.INVALID, text, codes.TOKEN_NOT_FOR_APP)
    if code in ("QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED") or status == 429:
        return SendError(
            FailureKind.THROTTLED, text, codes.QUOTA_EXCEEDED, _QUOTA_BACKOFF if wait is None else wait
        )
    if code == "UNAVAILABLE":
        return SendError(FailureKind.THROTTLED, text, codes.SERVICE_UNAVAILABLE, wait)
    if code in _AUTH_CODES or status in (401, 403):
        return SendError(FailureKind.CONFIG, text, codes.AUTH_ERROR)
    if status >= 500 or code == "INTERNAL":
        return SendError(FailureKind.CONNECTION, text, codes.SERVICE_UNAVAILABLE, wait)
    if status == 404:  # no FcmError: the project or the URL is wrong, not the device
        return SendError(FailureKind.CONFIG, text, codes.PLATFORM_FAILURE)
    return SendError(FailureKind.REJECTED, text, codes.PLATFORM_FAILURE)


def _third_party_auth(response: Answer) -> bool:
    return _error_parts(response)[0] in _THIRD_PARTY_AUTH


def _transport_error(exc: Exception, what: str) -> SendError:
    if isinstance(exc, TimeoutError):  # (aiohttp's timeouts are TimeoutErrors too)
        return SendError(FailureKind.TIMEOUT, f"{what}: no answer in time", codes.SERVICE_UNAVAILABLE)
    return SendError(FailureKind.CONNECTION, f"{what}: {type(exc).__name__}", codes.SERVICE_UNAVAILABLE)


# -- the provider --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _AccessToken:
    value: str
    refresh_at: float  # monotonic: when to start fetching the next one (senders keep using this one)
    usable_until: float  # monotonic: after this, senders wait for the next one

    @classmethod
    def lasting(cls, value: str, seconds: float) -> "_AccessToken":
        # margins shrink for short-lived tokens so that one is always used for a while
        now = time.monotonic()
        refresh_at = now + seconds - min(_REFRESH_MARGIN, seconds / 2)
        return cls(value, refresh_at, now + seconds - min(_USABLE_MARGIN, seconds / 4))


class FcmProvider:
    """`PushProvider` for FCM HTTP v1. One long-lived HTTP session (a pool of keep-alive connections)
    per app."""

    name: ClassVar[str] = "fcm"

    def __init__(
        self, settings: FcmSettings, *, base_dir: Path = Path("."), deadline: float = _DEADLINE
    ) -> None:
        self._settings = settings
        self._deadline = deadline  # seconds for one request to FCM or to the token endpoint
        self._key_path = base_dir / settings.service_account_file
        base = settings.base_url.rstrip("/")
        self._send_url = f"{base}/v1/projects/{settings.project_id}/messages:send"
        self._account: ServiceAccount | None = None
        self._client: aiohttp.ClientSession | None = None
        self._token: _AccessToken | None = None
        self._send_headers: tuple[str, dict[str, str]] | None = None
        self._refresh: asyncio.Future[_AccessToken] | None = None
        self._auth_failing = False  # so a refused credential is logged once, not per message

    async def send(self, item: PushSend) -> str:
        body = payload(item)
        size = payload_size(body["message"])
        if size > MAX_PAYLOAD:
            raise SendError(
                FailureKind.INVALID,
                f"payload is {size} bytes, FCM takes {MAX_PAYLOAD}",
                codes.PAYLOAD_TOO_LARGE,
            )
        raw = msgspec.json.encode(body)
        token = await self._access_token()
        response = await self._post(raw, token)
        if response.status_code == 401 and not _third_party_auth(response):
            # Google can revoke a token before its time: buy a new one, once.
            self._forget(token)
            response = await self._post(raw, await self._access_token())
        if response.status_code == 200:
            return self._message_name(response, item)
        error = send_error(response)
        if error.kind is FailureKind.CONFIG:
            self._auth_failed(error.description)
        raise error

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _http(self) -> aiohttp.ClientSession:
        if self._client is None:
            self._client = open_session(
                connections=CONNECTIONS, deadline=self._deadline, connect=_CONNECT_TIMEOUT
            )
        return self._client

    async def _post(self, raw: bytes, token: str) -> Answer:
        headers = self._headers(token)
        # Each request is bounded by the session's total timeout (the deadline), so a send takes at most
        # two deadlines; no timer of our own per request.
        try:
            # (post sends once more when FCM had closed an idle keep-alive connection under us)
            return await post(self._http(), self._send_url, data=raw, headers=headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc, "FCM messages:send") from None

    def _headers(self, token: str) -> dict[str, str]:
        # one dict per access token, not per request (aiohttp copies it into each request)
        held = self._send_headers
        if held is None or held[0] != token:
            held = self._send_headers = (
                token,
                {"authorization": f"Bearer {token}", "content-type": "application/json"},
            )
        return held[1]

    @staticmethod
    def _message_name(response: Answer, item: PushSend) -> str:
        try:
            name = response.json().get("name")
        except (ValueError, AttributeError):
            name = None
        return name if isinstance(name, str) and name else item.transid

    def _auth_failed(self, description: str) -> None:
        if not self._auth_failing:
            self._auth_failing = True
            log.warning("FCM project %s is misconfigured: %s", self._settings.project_id, description)

    # Access tokens: one fetch at a time. While the current token still works, senders use it and the
    # next one is fetched beside them; without one, every sender waits for the same fetch and shares
    # its outcome.

    async def _access_token(self) -> str:
        current, now = self._token, time.monotonic()
        if current is not None and now < current.refresh_at:
            return current.value
        refresh = self._refresh
        if refresh is None:
            refresh = self._refresh = asyncio.ensure_future(self._fetch_token())
            refresh.add_done_callback(self._refreshed)
        if current is not None and now < current.usable_until:
            return current.value
        try:
            # shield: one sender giving up must not cancel the fetch the others wait for
            token = await asyncio.shield(refresh)
        except SendError as exc:  # each waiter raises its own copy of the shared failure
            raise SendError(exc.kind, exc.description, exc.code, exc.retry_after) from None
        return token.value

    def _refreshed(self, future: asyncio.Future[_AccessToken]) -> None:
        if self._refresh is future:
            self._refresh = None
        if future.cancelled():
            return
        if future.exception() is None:  # (also marks a failure nobody awaited as seen)
            self._token = future.result()
            self._auth_failing = False
        elif (current := self._token) is not None:
            # an early refresh failed: keep the working token, try again a little later
            retry_at = min(time.monotonic() + _REFRESH_RETRY, current.usable_until)
            self._token = _AccessToken(current.value, retry_at, current.usable_until)

    def _forget(self, token: str) -> None:
        if self._token is not None and self._token.value == token:
            self._token = None

    async def _fetch_token(self) -> _AccessToken:
        account = self._service_account()
        now = int(time.time())
        claims: dict[str, Any] = {"iss": account.client_email, "scope": SCOPE, "aud": account.token_uri}
        claims |= {"iat": now, "exp": now + _ASSERTION_LIFETIME}
        assertion = jwt.encode(
            claims, account.key, algorithm="RS256", headers={"kid": account.private_key_id}
        )
        form = {"grant_type": GRANT_TYPE, "assertion": assertion}
        try:
            async with asyncio.timeout(self._deadline):
                response = await post(self._http(), account.token_uri, data=form)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc, "FCM token endpoint") from None
        return self._token_from(response)

    def _token_from(self, response: Answer) -> _AccessToken:
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            answer = {}
        if response.status_code >= 500 or response.status_code == 429:
            raise SendError(
                FailureKind.CONNECTION,
                f"FCM token endpoint answered {response.status_code}",
                codes.SERVICE_UNAVAILABLE,
                _retry_after(response.headers),
            )
        value, lifetime = answer.get("access_token"), answer.get("expires_in")
        if response.status_code != 200 or not isinstance(value, str) or not value:
            reason = " ".join(str(answer.get(k, ""))[:_TEXT_LIMIT] for k in ("error", "error_description"))
            text = f"FCM token endpoint refused the grant ({response.status_code}): {reason.strip()}"
            self._auth_failed(text)
            raise SendError(FailureKind.CONFIG, text, codes.AUTH_ERROR)
        seconds = float(lifetime) if isinstance(lifetime, int | float) else float(_ASSERTION_LIFETIME)
        return _AccessToken.lasting(value, seconds)

    def _service_account(self) -> ServiceAccount:
        if self._account is None:
            try:
                self._account = load_service_account(self._key_path)
            except ValueError as exc:
                self._auth_failed(str(exc))
                raise SendError(FailureKind.CONFIG, str(exc), codes.AUTH_ERROR) from None
        return self._account
