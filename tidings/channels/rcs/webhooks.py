"""RBM's webhooks, the pure part: the setup handshake, the X-Goog-Signature check, and the events read
into small typed records. Nothing here does I/O or keeps state (tidings.api.rcs_webhooks does).

Handshake: when the webhook is configured, RBM POSTs `{"clientToken": "…", "secret": "…"}`; the answer
is 200 with the `secret` as a plain-text body when the clientToken is the agent's, else 403.

Events: `{"message": {"data": "<base64 JSON>", "messageId", "publishTime"}, "subscription"}` (a Pub/Sub
push). `X-Goog-Signature` is base64(HMAC-SHA512(client_token, the base64-decoded `message.data`)). The
decoded data is an agent event `{agentId, senderPhoneNumber, eventType: DELIVERED|READ|IS_TYPING,
eventId, messageId, sendTime}` or a user message `{agentId, senderPhoneNumber, messageId, sendTime,
text | suggestionResponse{postbackData, text, type} | location{latitude, longitude} | userFile{
payload{mimeType, fileSizeBytes, fileUri, fileName}, thumbnail{…}}}`.
"""

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import msgspec

SIGNATURE_HEADER = "X-Goog-Signature"


class _Handshake(msgspec.Struct):
    clientToken: str | None = None
    secret: str | None = None
    message: dict[str, Any] | None = None


class _Envelope(msgspec.Struct):
    data: str = ""


class _Push(msgspec.Struct):
    message: _Envelope | None = None


class _Suggestion(msgspec.Struct):
    postbackData: str = ""
    text: str = ""
    type: str = ""  # REPLY or ACTION


class _Location(msgspec.Struct):
    latitude: float | None = None
    longitude: float | None = None


class _FileInfo(msgspec.Struct):
    mimeType: str = ""
    fileSizeBytes: int | None = None
    fileUri: str = ""
    fileName: str = ""


class _UserFile(msgspec.Struct):
    payload: _FileInfo | None = None
    thumbnail: _FileInfo | None = None


class _Event(msgspec.Struct):
    agentId: str = ""
    senderPhoneNumber: str = ""
    eventType: str = ""
    eventId: str = ""
    messageId: str = ""
    sendTime: str = ""
    text: str | None = None
    suggestionResponse: _Suggestion | None = None
    location: _Location | None = None
    userFile: _UserFile | None = None


_HANDSHAKE = msgspec.json.Decoder(_Handshake)
_PUSH = msgspec.json.Decoder(_Push)
_EVENT = msgspec.json.Decoder(_Event)


def handshake(raw: bytes, client_token: str) -> str | None:
    """The secret to answer when `raw` is the setup request with this agent's client token; "" when it
    is a setup request with another token (answer 403); None when it is not a setup request."""
    try:
        body = _HANDSHAKE.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if body.message is not None or body.clientToken is None or body.secret is None:
        return None
    if not client_token or not hmac.compare_digest(body.clientToken.encode(), client_token.encode()):
        return ""
    return body.secret


def event_data(raw: bytes) -> bytes:
    """The base64-decoded `message.data` of a push; ValueError when the body is not one."""
    try:
        push = _PUSH.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"not an RBM event: {exc}") from None
    if push.message is None or not push.message.data:
        raise ValueError("not an RBM event: no message.data")
    try:
        return base64.b64decode(push.message.data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("message.data is not base64") from None


def signature(client_token: str, data: bytes) -> str:
    """The X-Goog-Signature RBM sends for `data` (the decoded message.data)."""
    return base64.b64encode(hmac.new(client_token.encode(), data, hashlib.sha512).digest()).decode()


def verify(client_token: str, data: bytes, header: str | None) -> bool:
    """Whether `header` is the signature of `data` under the client token (constant time)."""
    if not client_token or not header:
        return False
    given = header.strip()
    return given.isascii() and hmac.compare_digest(signature(client_token, data), given)


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """DELIVERED or READ for the message RBM knows by `message_id` (our transid)."""

    kind: str  # DELIVERED, READ
    message_id: str
    sender: str


@dataclass(frozen=True, slots=True)
class UserMessage:
    message_id: str
    sender: str  # E.164
    agent_id: str
    kind: str  # text, suggestionResponse, location, userFile
    text: str  # the text, the suggestion's text, or "" (a location or a file)
    detail: dict[str, Any]  # the `rcs` object of the inbound notification


def read_event(data: bytes) -> StatusEvent | UserMessage | None:
    """One decoded event; None for one Tidings does not act on (IS_TYPING, an unknown kind, one without
    the ids that name it). ValueError when the data is not JSON of an event's shape."""
    try:
        e = _EVENT.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"unreadable RBM event: {exc}") from None
    if not e.messageId or not e.senderPhoneNumber:
        return None
    if e.eventType:
        return (
            StatusEvent(e.eventType, e.messageId, e.senderPhoneNumber)
            if e.eventType in ("DELIVERED", "READ")
            else None
        )
    detail: dict[str, Any]
    if e.text is not None:
        kind, text, detail = "text", e.text, {"text": e.text}
    elif (s := e.suggestionResponse) is not None:
        kind, text = "suggestionResponse", s.text
        detail = {"suggestionResponse": _some(postbackData=s.postbackData, text=s.text, type=s.type)}
    elif (where := e.location) is not None:
        kind, text = "location", ""
        detail = {"location": _some(latitude=where.latitude, longitude=where.longitude)}
    elif (f := e.userFile) is not None:
        kind, text = "userFile", ""
        detail = {"userFile": _some(payload=_file(f.payload), thumbnail=_file(f.thumbnail))}
    else:
        return None
    return UserMessage(e.messageId, e.senderPhoneNumber, e.agentId, kind, text, {"type": kind, **detail})


def _file(f: _FileInfo | None) -> dict[str, Any] | None:
    if f is None:
        return None
    return _some(mimeType=f.mimeType, fileSizeBytes=f.fileSizeBytes, fileUri=f.fileUri, fileName=f.fileName)


def _some(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != ""}
