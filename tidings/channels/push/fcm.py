"""Firebase Cloud Messaging, HTTP v1 API: Android devices, and iOS/web devices registered with FCM tokens.

Auth is the OAuth2 JWT-bearer grant with the app's Google service-account key (tidings.channels.
google_auth, shared with RCS): the access token is cached, refreshed about five minutes before it runs
out, and refreshed once more when `messages:send` answers 401 (Google may revoke a token early).

One notification is one `POST {base_url}/v1/projects/{project_id}/messages:send`; the service's message
`name` is returned as the id. The transport is tidings.channels.push.http: aiohttp over HTTP/1.1
keep-alive connections (FCM takes HTTP/1.1 as well as HTTP/2).

Errors are read from `error.details[].errorCode` (an `FcmError`), not from the gRPC `status`, which is
coarser (UNREGISTERED comes as NOT_FOUND).
"""

import logging
import re
import time
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import msgspec

from tidings.channels.base import Exchange, FailureKind, SendError
from tidings.channels.exchange import exchange, http_answer, http_request, unanswered
from tidings.channels.google_auth import (
    GoogleTokens,
    TokenCodes,
    is_base_url,
    load_service_account,
    transport_error,
)
from tidings.channels.google_auth import retry_after as _retry_after
from tidings.channels.push.http import Answer, open_session, post
from tidings.channels.push.provider import PushSend
from tidings.channels.push.settings import FcmSettings
from tidings.observe.connectors import Credential
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
MAX_PAYLOAD = 4096  # bytes FCM accepts for one message to a token
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
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


def check(settings: FcmSettings, base_dir: Path) -> list[str]:
    """Configuration problems of an `[apps.fcm]` block, in words (empty when it looks usable)."""
    problems = []
    if not settings.project_id or re.search(r"[\s/]", settings.project_id):
        problems.append(f"project_id {settings.project_id!r} is not a Firebase project id")
    if not is_base_url(settings.base_url):
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
    return transport_error(exc, what, codes.SERVICE_UNAVAILABLE)


# -- the provider --------------------------------------------------------------------------------------


class FcmProvider:
    """`PushProvider` for FCM HTTP v1. One long-lived HTTP session (a pool of keep-alive connections)
    per app."""

    name: ClassVar[str] = "fcm"

    def __init__(
        self, settings: FcmSettings, *, base_dir: Path = Path("."), deadline: float = _DEADLINE
    ) -> None:
        self._settings = settings
        self._deadline = deadline  # seconds for one request to FCM or to the token endpoint
        base = settings.base_url.rstrip("/")
        self._send_url = f"{base}/v1/projects/{settings.project_id}/messages:send"
        self._client: aiohttp.ClientSession | None = None
        self._send_headers: tuple[str, dict[str, str]] | None = None
        self._auth_failing = False  # so a refused credential is logged once, not per message
        self._refused = ""  # the last refusal of the credentials, "" once a token or a send succeeds
        self._tokens = GoogleTokens(
            base_dir / settings.service_account_file,
            SCOPE,
            TokenCodes("FCM", codes.SERVICE_UNAVAILABLE, codes.AUTH_ERROR),
            self._http,
            deadline=deadline,
            on_refused=self._auth_failed,
            on_granted=self._auth_cured,
        )

    async def send(self, item: PushSend) -> str:
        return (await self.send_traced(item))[0]

    async def send_traced(self, item: PushSend) -> tuple[str, Exchange]:
        body = payload(item)
        size = payload_size(body["message"])
        if size > MAX_PAYLOAD:
            raise SendError(
                FailureKind.INVALID,
                f"payload is {size} bytes, FCM takes {MAX_PAYLOAD}",
                codes.PAYLOAD_TOO_LARGE,
            )
        raw = msgspec.json.encode(body)
        request = http_request("POST", self._send_url, raw)
        token = await self._tokens.get()
        response = await self._post(raw, token, request)
        if response.status_code == 401 and not _third_party_auth(response):
            # Google can revoke a token before its time: buy a new one, once.
            self._tokens.forget(token)
            token = await self._tokens.get()
            response = await self._post(raw, token, request)
        shown = {"retry-after": response.headers.get("retry-after", "")}
        wire = exchange(request, http_answer(response.status_code, response.content, shown), (token,))
        if response.status_code == 200:
            self._refused = ""
            return self._message_name(response, item), wire
        error = send_error(response)
        error.exchange = wire
        if error.kind is FailureKind.CONFIG:
            self._auth_failed(error.description)
        raise error

    async def close(self) -> None:
        self._tokens.close()
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _http(self) -> aiohttp.ClientSession:
        if self._client is None:
            self._client = open_session(
                connections=CONNECTIONS, deadline=self._deadline, connect=_CONNECT_TIMEOUT
            )
        return self._client

    async def _post(self, raw: bytes, token: str, request: str) -> Answer:
        headers = self._headers(token)
        # Each request is bounded by the session's total timeout (the deadline), so a send takes at most
        # two deadlines; no timer of our own per request.
        try:
            # (post sends once more when FCM had closed an idle keep-alive connection under us)
            return await post(self._http(), self._send_url, data=raw, headers=headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise unanswered(_transport_error(exc, "FCM messages:send"), request, (token,)) from None

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

    def credential(self) -> Credential:
        """The access token in hand, for the console's health page."""
        account = self._tokens.account
        name = f"FCM project {self._settings.project_id}" + (f" ({account})" if account else "")
        return Credential(name, "OAuth access token", self._tokens.expires_at, refused=self._refused)

    def _auth_failed(self, description: str) -> None:
        self._refused = description
        if not self._auth_failing:
            self._auth_failing = True
            log.warning("FCM project %s is misconfigured: %s", self._settings.project_id, description)

    def _auth_cured(self) -> None:
        self._auth_failing = False
        self._refused = ""
