"""WNS, the Windows Push Notification Service: the `windows` block of the push object.

Auth: OAuth2 client credentials (package SID + secret, scope notify.windows.com) posted to `token_url`;
the bearer token is cached until shortly before `expires_in`, fetched by one task at a time, and fetched
again once when WNS answers 401 before the send fails as CONFIG/AUTH_ERROR.

Send: POST to the device's channel URI. The URI is user-supplied, so only https URIs on
`*.notify.windows.com` (or a host in `allow_hosts`) are contacted at all (`channel_uri_problem`), and a
redirect is never followed. Transport: tidings.channels.push.http (aiohttp, HTTP/1.1 keep-alive
connections, which WNS takes), TLS with the system's CAs plus `ca_file`'s.

Mapping (`payload`), chosen here and pinned by the golden tests:
- `windows.text` lines become a toast (`wns/toast`, text/xml) in the ToastGeneric binding: one `<text>`
  per line, at most three (the template's limit; lines past the third are folded into it, joined by
  newlines, so nothing the sender wrote is lost).
- The toast's `launch` is compact JSON the app receives on a click: `transid`, then `notificationaction`
  ({action, value}), `customtags` and `pushref` when present. JSON rather than a query string because
  customtags may hold objects and arrays.
- A windows block without visible text but with customtags (or a notificationaction) is a data message:
  `wns/raw`, application/octet-stream, whose body is that same JSON. With neither, nothing is sent.
- `interactive` (when its device_types include windows) becomes the toast's `<actions>`, one button
  per action in `pos` order: DISMISS is the system dismiss button, OPENURL/OPENWEBVIEW/DEEPLINK open
  their value as a protocol activation, OPEN_APP/SHARE/others activate the app in the foreground with
  JSON arguments (transid, pushref, pos, action, identifier, value). SINGLE_REPLY adds a text box.
- X-WNS-TTL is `extras.time_to_live`, or the time left to the message's expiry, whichever is shorter.
- X-WNS-PRIORITY: the v1 priority 1 (high) sends 1, 3 (low) sends 3; normal leaves WNS's default.
"""

import asyncio
import contextlib
import email.utils
import logging
import re
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import aiohttp
import msgspec

from tidings.channels.base import Exchange, FailureKind, SendError
from tidings.channels.exchange import MARK, exchange, headed, http_answer, http_request, merged, unanswered
from tidings.channels.push.http import Answer, open_session, post, tls_context
from tidings.channels.push.provider import PushSend
from tidings.channels.push.settings import WnsSettings
from tidings.observe.connectors import Credential
from tidings.schema.push import Interactive, InteractiveAction, WindowsPush
from tidings.specs import push_codes
from tidings.urls import is_http_url

log = logging.getLogger("tidings.push.wns")

PAYLOAD_LIMIT = 5000  # bytes of body WNS accepts (413 above)
WNS_SUFFIX = ".notify.windows.com"
SCOPE = "notify.windows.com"
TOAST_TEXT_LINES = 3  # ToastGeneric shows at most three top-level <text> elements

_CONNECT_S = 5.0
_REQUEST_S = 10.0  # one request, waiting for a connection included
# Connections in all (channel URIs are spread over many WNS hosts) and to one host. 64 per host kept
# up with a stand-in answering thousands a second (bench/push.py).
_CONNECTIONS = 256
_PER_HOST = 64
_HEADERS = {"User-Agent": "tidings"}
_DEFAULT_TOKEN_LIFE_S = 3600.0  # when the token answer carries no expires_in
_AUTH_REFUSED_HOLD_S = 5.0  # a refused credential is not retried by every send in the meantime

# Characters XML 1.0 cannot carry at all, even escaped: dropped from the sender's text.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# Button labels per interactive category, by position (the identifier, then the action, otherwise).
_LABELS: dict[str, tuple[str, ...]] = {
    "SINGLE_DISMISS": ("Dismiss",),
    "SINGLE_OPEN": ("Open",),
    "SINGLE_SUBSCRIBE": ("Subscribe",),
    "SINGLE_UNSUBSCRIBE": ("Unsubscribe",),
    "SINGLE_SHARE": ("Share",),
    "SINGLE_DEEPLINK": ("Open",),
    "SINGLE_REPLY": ("Reply",),
    "DOUBLE_YES_NO": ("Yes", "No"),
    "DOUBLE_ACCEPT_CANCEL": ("Accept", "Cancel"),
    "DOUBLE_SHARE_CANCEL": ("Share", "Cancel"),
    "DOUBLE_SHOPNOW_CANCEL": ("Shop now", "Cancel"),
    "DOUBLE_LATER_NOW": ("Later", "Now"),
    "DOUBLE_PLAY_NOW_PLAY_LATER": ("Play now", "Play later"),
    "DOUBLE_OK_LEARN_MORE": ("OK", "Learn more"),
    "DOUBLE_SUBSCRIBE_UNSUBSCRIBE": ("Subscribe", "Unsubscribe"),
    "DOUBLE_BUY_NOW_BUY_LATER": ("Buy now", "Buy later"),
    "DOUBLE_LIKE_SHARE": ("Like", "Share"),
}
_PROTOCOL_ACTIONS = frozenset({"OPENURL", "OPENWEBVIEW", "DEEPLINK"})
_REPLY_INPUT = "reply"


@dataclass(frozen=True, slots=True)
class WnsRequest:
    """What one notification sends to the channel URI, Authorization aside."""

    headers: dict[str, str]
    body: bytes


# ---------------------------------------------------------------------------------------------- mapping


def payload(item: PushSend, *, now: float | None = None) -> WnsRequest:
    """The WNS request for `item` (pure: `now` is the epoch time TTLs are measured from).
    Raise SendError INVALID when the windows block cannot make a notification."""
    block = item.content.windows
    if block is None:
        raise SendError(
            FailureKind.INVALID, "no windows block in the push object", push_codes.INVALID_PAYLOAD
        )
    lines = [_xml_text(line) for line in block.text]
    data = _launch_data(item, block)
    if any(line.strip() for line in lines):
        headers = {"X-WNS-Type": "wns/toast", "Content-Type": "text/xml"}
        body = _toast(lines, data, _interactive_for(item), item).encode()
    elif len(data) > 1:  # something besides the transid: a data-only (raw) notification
        headers = {"X-WNS-Type": "wns/raw", "Content-Type": "application/octet-stream"}
        body = msgspec.json.encode(data)
    else:
        raise SendError(
            FailureKind.INVALID,
            "windows.text has no text and there are no customtags",
            push_codes.INVALID_PAYLOAD,
        )
    headers["X-WNS-RequestForStatus"] = "true"
    ttl = _ttl(item, block, time.time() if now is None else now)
    if ttl is not None:
        headers["X-WNS-TTL"] = str(ttl)
    if item.priority in (1, 3):
        headers["X-WNS-PRIORITY"] = str(item.priority)
    return WnsRequest(headers, body)


def _xml_text(text: str) -> str:
    return _XML_INVALID.sub("", text)


def _launch_data(item: PushSend, block: WindowsPush) -> dict[str, Any]:
    data: dict[str, Any] = {"transid": item.transid}
    extras = block.extras
    if extras is not None and extras.notificationaction is not None:
        data["notificationaction"] = msgspec.to_builtins(extras.notificationaction)
    if extras is not None and extras.customtags:
        data["customtags"] = extras.customtags
    pushref = _pushref(item)
    if pushref is not None:
        data["pushref"] = pushref
    return data


def _pushref(item: PushSend) -> str | None:
    interactive = item.content.interactive
    if interactive is not None and interactive.pushref:
        return interactive.pushref
    return item.content.pushref


def _interactive_for(item: PushSend) -> Interactive | None:
    interactive = item.content.interactive
    if interactive is None or "windows" not in interactive.device_types or not interactive.actions:
        return None
    return interactive


def _toast(lines: list[str], launch: dict[str, Any], interactive: Interactive | None, item: PushSend) -> str:
    toast = ET.Element("toast", {"launch": _json(launch)})
    binding = ET.SubElement(ET.SubElement(toast, "visual"), "binding", {"template": "ToastGeneric"})
    if len(lines) > TOAST_TEXT_LINES:
        lines = [*lines[: TOAST_TEXT_LINES - 1], "\n".join(lines[TOAST_TEXT_LINES - 1 :])]
    for line in lines:
        ET.SubElement(binding, "text").text = line
    if interactive is not None:
        _actions(toast, interactive, item)
    return ET.tostring(toast, encoding="unicode")


def _actions(toast: ET.Element, interactive: Interactive, item: PushSend) -> None:
    actions = ET.SubElement(toast, "actions")
    reply = interactive.category == "SINGLE_REPLY"
    if reply:
        ET.SubElement(actions, "input", {"id": _REPLY_INPUT, "type": "text"})
    labels = _LABELS.get(interactive.category, ())
    for action in sorted(interactive.actions, key=lambda a: a.pos):
        attrs = _action_attrs(action, _label(action, labels), item)
        if reply and attrs["activationType"] == "foreground":
            attrs["hint-inputId"] = _REPLY_INPUT
        ET.SubElement(actions, "action", attrs)


def _label(action: InteractiveAction, labels: tuple[str, ...]) -> str:
    if 1 <= action.pos <= len(labels):
        return labels[action.pos - 1]
    return action.identifier or action.action.replace("_", " ").title()


def _action_attrs(action: InteractiveAction, label: str, item: PushSend) -> dict[str, str]:
    if action.action == "DISMISS":
        # The system's own dismiss button; an empty content shows its localised label.
        return {"content": "", "arguments": "dismiss", "activationType": "system"}
    if action.action in _PROTOCOL_ACTIONS and action.value:
        return {"content": label, "arguments": action.value, "activationType": "protocol"}
    args: dict[str, Any] = {"transid": item.transid}
    pushref = _pushref(item)
    if pushref is not None:
        args["pushref"] = pushref
    args.update(pos=action.pos, action=action.action)
    if action.identifier is not None:
        args["identifier"] = action.identifier
    if action.value is not None:
        args["value"] = action.value
    return {"content": label, "arguments": _json(args), "activationType": "foreground"}


def _json(data: dict[str, Any]) -> str:
    return msgspec.json.encode(data).decode()


def _ttl(item: PushSend, block: WindowsPush, now: float) -> int | None:
    ttl = block.extras.time_to_live if block.extras is not None else None
    if item.expiry is not None:
        left = item.expiry - now
        if left <= 0:
            raise SendError(FailureKind.INVALID, "the message expired before it was sent", push_codes.EXPIRED)
        whole = max(1, int(left))  # under a second left still goes, for the shortest TTL WNS takes
        ttl = whole if ttl is None else min(ttl, whole)
    return ttl if ttl is None else max(ttl, 1)


# ------------------------------------------------------------------------------------------ channel URIs


def channel_uri_problem(url: str, settings: WnsSettings) -> str | None:
    """Why `url` is not a channel URI this app may push to (None: it may). Only https, no user info,
    and a host under notify.windows.com (default port) or one `allow_hosts` names (exact or
    "*.suffix"): the URI comes from a device, and nothing else may be contacted with our token."""
    if not is_http_url(url):
        return "the channel URI is not an absolute URL"
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https":
        return "the channel URI must be https"
    if parts.username is not None or parts.password is not None:
        return "the channel URI must not carry user info"
    if _host_allowed(host, settings.allow_hosts):
        return None
    if host.endswith(WNS_SUFFIX) and parts.port in (None, 443):
        return None
    return f"the channel URI's host {host} is not a WNS host (*{WNS_SUFFIX})"


def _host_allowed(host: str, allow_hosts: list[str]) -> bool:
    for entry in allow_hosts:
        entry = entry.lower()
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


# ------------------------------------------------------------------------------------------------ config


def check(settings: WnsSettings, base_dir: Path) -> list[str]:
    """The problems of an `[apps.wns]` block, in words (empty: none)."""
    problems: list[str] = []
    if not settings.client_id.startswith("ms-app://"):
        problems.append("wns.client_id must be the package SID (ms-app://…)")
    if not settings.client_secret:
        problems.append("wns.client_secret is empty")
    if not is_http_url(settings.token_url):
        problems.append("wns.token_url must be an http(s)://host URL")
    for entry in settings.allow_hosts:
        if not _valid_host_pattern(entry):
            problems.append(f"wns.allow_hosts: {entry!r} is not a host name or *.suffix")
    if settings.ca_file:
        problem = _ca_problem(_resolve(settings.ca_file, base_dir))
        if problem:
            problems.append(f"wns.ca_file: {problem}")
    return problems


_HOST_LABELS = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$", re.I)


def _valid_host_pattern(entry: str) -> bool:
    return bool(_HOST_LABELS.match(entry)) and entry != "*."


def _resolve(path: str, base_dir: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else base_dir / p


def _ca_problem(path: Path) -> str | None:
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(path))
    except FileNotFoundError:
        return f"{path} does not exist"
    except (OSError, ssl.SSLError, ValueError) as exc:
        return f"{path} is not a readable PEM CA bundle ({type(exc).__name__})"
    return None


# ---------------------------------------------------------------------------------------------- provider


class WnsProvider:
    """Sends `windows` pushes through WNS for one app; one HTTP session (keep-alive connections), one
    cached token."""

    name: ClassVar[str] = "wns"

    def __init__(self, settings: WnsSettings, *, base_dir: Path = Path(".")) -> None:
        self._settings = settings
        self._ca_file = _resolve(settings.ca_file, base_dir) if settings.ca_file else None
        self._client: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._token_expires = 0.0  # monotonic
        self._token_expires_at: float | None = None  # wall clock, as WNS said: for the health page
        self._refused: tuple[float, SendError] | None = None  # (monotonic until, the error)
        self._token_lock = asyncio.Lock()

    async def send(self, item: PushSend) -> str:
        return (await self.send_traced(item))[0]

    async def send_traced(self, item: PushSend) -> tuple[str, Exchange]:
        problem = channel_uri_problem(item.token, self._settings)
        if problem is not None:
            raise SendError(FailureKind.INVALID, problem, push_codes.INVALID_TOKEN)
        request = payload(item)
        if len(request.body) > PAYLOAD_LIMIT:
            raise SendError(
                FailureKind.INVALID,
                f"the notification is {len(request.body)} bytes; WNS takes at most {PAYLOAD_LIMIT}",
                push_codes.PAYLOAD_TOO_LARGE,
            )
        wire = http_request("POST", item.token, request.body, request.headers)
        token = await self._access_token(None)
        response = await self._post(item.token, request, token, wire)
        if response.status_code == 401:
            refused = _said(wire, response, token)
            try:
                token = await self._access_token(token)
            except SendError as exc:  # no new token: the channel's 401, then the token endpoint's answer
                exc.exchange = merged([("the channel", refused), *headed("the token endpoint", exc.exchange)])
                raise
            response = await self._post(item.token, request, token, wire)
        said = _said(wire, response, token)
        try:
            return _outcome(response, item.transid), said
        except SendError as exc:
            exc.exchange = said
            raise

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    def credential(self) -> Credential:
        """The OAuth token in hand, for the console's health page."""
        refused = self._refused[1].description if self._refused is not None else ""
        name = f"WNS client {self._settings.client_id}"
        return Credential(name, "OAuth access token", self._token_expires_at, refused=refused)

    def _http(self) -> aiohttp.ClientSession:
        if self._client is None:
            try:
                context = tls_context(self._ca_file)
            except (OSError, ssl.SSLError):
                raise SendError(
                    FailureKind.CONFIG, f"wns.ca_file {self._ca_file} is not a readable PEM CA bundle"
                ) from None
            self._client = open_session(
                connections=_CONNECTIONS,
                per_host=_PER_HOST,
                deadline=_REQUEST_S,
                connect=_CONNECT_S,
                context=context,
                headers=_HEADERS,
            )
        return self._client

    async def _post(self, url: str, request: WnsRequest, token: str, wire: str) -> Answer:
        headers = {**request.headers, "Authorization": f"Bearer {token}"}
        try:
            return await self._call(
                "the WNS channel", post(self._http(), url, headers=headers, data=request.body)
            )
        except SendError as exc:
            raise unanswered(exc, wire, (token,)) from None

    @staticmethod
    async def _call(what: str, call: Awaitable[Answer]) -> Answer:
        """One HTTP exchange (bounded by the session's timeout); transport failures become SendErrors."""
        try:
            return await call
        except TimeoutError:  # (aiohttp's timeouts are TimeoutErrors too)
            raise SendError(FailureKind.TIMEOUT, f"no answer from {what} within {_REQUEST_S:g} s") from None
        except aiohttp.ClientError as exc:
            # aiohttp's text names the failure (refused, TLS verification, reset), never our headers.
            detail = str(exc)[:200] or type(exc).__name__
            raise SendError(FailureKind.CONNECTION, f"{what}: {detail}") from None

    async def _access_token(self, stale: str | None) -> str:
        """The cached token, or a new one when it is near expiry or `stale` (the one WNS refused) is
        still the cached one. One task fetches; the others wait for its answer."""
        if self._fresh(stale):
            assert self._token is not None
            return self._token
        async with self._token_lock:
            if self._fresh(stale):
                assert self._token is not None
                return self._token
            if self._refused is not None and time.monotonic() < self._refused[0]:
                held = self._refused[1]
                raise SendError(held.kind, held.description, held.code)
            try:
                token, life = await self._fetch_token()
            except SendError as exc:
                if exc.kind is FailureKind.CONFIG:
                    self._refused = (time.monotonic() + _AUTH_REFUSED_HOLD_S, exc)
                raise
            self._refused = None
            self._token = token
            # Renew a tenth of its life (at most five minutes) early so sends never race the expiry.
            self._token_expires = time.monotonic() + life - min(300.0, life / 10)
            self._token_expires_at = time.time() + life
            return token

    def _fresh(self, stale: str | None) -> bool:
        return self._token is not None and self._token != stale and time.monotonic() < self._token_expires

    async def _fetch_token(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._settings.client_id,
            "client_secret": self._settings.client_secret,
            "scope": SCOPE,
        }
        # A refused or failed token request is what the message's provider attempt shows (no channel
        # was asked): the form without its secret, and the endpoint's answer.
        secret = (self._settings.client_secret,)
        wire = http_request("POST", self._settings.token_url, urlencode({**form, "client_secret": MARK}))
        try:
            response = await self._call(
                "the WNS token endpoint", post(self._http(), self._settings.token_url, data=form)
            )
        except SendError as exc:
            raise unanswered(exc, wire, secret) from None
        if response.status_code == 200:
            return _token_answer(response)
        if response.status_code >= 500:
            unavailable = SendError(
                FailureKind.UNAVAILABLE,
                f"the WNS token endpoint answered {response.status_code}",
                push_codes.SERVICE_UNAVAILABLE,
                _retry_after(response),
            )
            unavailable.exchange = exchange(wire, http_answer(response.status_code, response.content), secret)
            raise unavailable
        reason = _oauth_error(response)
        log.warning("WNS refused the app's credentials (client_id %s): %s", self._settings.client_id, reason)
        refused = SendError(
            FailureKind.CONFIG, f"WNS refused the app's credentials: {reason}", push_codes.AUTH_ERROR
        )
        refused.exchange = exchange(wire, http_answer(response.status_code, response.content), secret)
        raise refused


def _token_answer(response: Answer) -> tuple[str, float]:
    try:
        body = response.json()
        token = body["access_token"]
        life = float(body.get("expires_in", _DEFAULT_TOKEN_LIFE_S))
    except (ValueError, KeyError, TypeError, AttributeError):
        token, life = None, 0.0
    if not isinstance(token, str) or not token or life <= 0:
        raise SendError(
            FailureKind.UNAVAILABLE,
            "the WNS token endpoint gave no usable access token",
            push_codes.SERVICE_UNAVAILABLE,
        )
    return token, life


def _oauth_error(response: Answer) -> str:
    """The OAuth error code (and its description) of a refused token request; never the request."""
    with contextlib.suppress(ValueError, AttributeError):
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            described = body.get("error_description")
            return f"{body['error']} ({described})" if isinstance(described, str) else str(body["error"])
    return f"HTTP {response.status_code}"


# --------------------------------------------------------------------------------------------- answers

# status -> (kind, code, what it means); 401 only reaches here after the one retry with a new token.
_ERRORS: dict[int, tuple[FailureKind, str, str]] = {
    400: (FailureKind.INVALID, push_codes.INVALID_PAYLOAD, "bad request"),
    401: (FailureKind.CONFIG, push_codes.AUTH_ERROR, "the access token was refused twice"),
    403: (
        FailureKind.CONFIG,
        push_codes.AUTH_ERROR,
        "the app's credentials may not push to this channel (it belongs to another app)",
    ),
    404: (FailureKind.GONE, push_codes.INVALID_TOKEN, "the channel URI is not valid or not known to WNS"),
    405: (FailureKind.INVALID, push_codes.INVALID_PAYLOAD, "method not allowed"),
    406: (FailureKind.THROTTLED, push_codes.QUOTA_EXCEEDED, "throttled"),
    410: (FailureKind.GONE, push_codes.TOKEN_UNREGISTERED, "the channel expired"),
    413: (FailureKind.INVALID, push_codes.PAYLOAD_TOO_LARGE, "the notification is too large"),
}


# Of the channel's answer headers, those a provider attempt shows (when present).
_SHOWN_HEADERS = (
    "X-WNS-Status",
    "X-WNS-DeviceConnectionStatus",
    "X-WNS-Msg-ID",
    "X-WNS-Error-Description",
    "X-WNS-Debug-Trace",
    "Retry-After",
)


def _said(wire: str, response: Answer, token: str) -> Exchange:
    shown = {name: response.headers.get(name, "") for name in _SHOWN_HEADERS}
    return exchange(wire, http_answer(response.status_code, response.content, shown), (token,))


def _outcome(response: Answer, transid: str) -> str:
    status = response.status_code
    wns_status = response.headers.get("X-WNS-Status", "").lower()
    if status == 200 and wns_status not in ("dropped", "channelthrottled"):
        return response.headers.get("X-WNS-Msg-ID") or transid
    if status == 200 and wns_status == "channelthrottled":
        kind, code, meaning = FailureKind.THROTTLED, push_codes.QUOTA_EXCEEDED, "the channel is throttled"
    elif status == 200:
        connection = response.headers.get("X-WNS-DeviceConnectionStatus", "unknown")
        kind, code, meaning = (
            FailureKind.REJECTED,
            push_codes.PLATFORM_FAILURE,
            f"dropped (device {connection})",
        )
    elif status in _ERRORS:
        kind, code, meaning = _ERRORS[status]
    elif status >= 500:
        kind, code, meaning = FailureKind.UNAVAILABLE, push_codes.SERVICE_UNAVAILABLE, "service unavailable"
    else:
        kind, code, meaning = FailureKind.REJECTED, push_codes.PLATFORM_FAILURE, "unexpected answer"
    description = f"WNS {status}: {meaning}{_detail(response)}"
    if kind is FailureKind.CONFIG:
        log.warning("%s", description)
    retry_after = _retry_after(response) if kind in (FailureKind.THROTTLED, FailureKind.UNAVAILABLE) else None
    raise SendError(kind, description, code, retry_after)


def _detail(response: Answer) -> str:
    parts = [
        f"{name}={response.headers[name]}"
        for name in ("X-WNS-Error-Description", "X-WNS-Status", "X-WNS-Msg-ID", "X-WNS-Debug-Trace")
        if response.headers.get(name)
    ]
    return f" ({', '.join(parts)})" if parts else ""


def _retry_after(response: Answer) -> float | None:
    """Seconds to wait: Retry-After (seconds or an HTTP date), else WNS's X-WNS-CONTINUE-AFTER."""
    for name in ("Retry-After", "X-WNS-CONTINUE-AFTER"):
        value = response.headers.get(name, "").strip()
        if not value:
            continue
        if value.isdigit():
            return float(value)
        with contextlib.suppress(TypeError, ValueError, IndexError):
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    return None
