"""The SMS API request (`POST /v1/sms/messages`): one SMS to one address, or (an extension) a batch.

`to` is one address as documented. It may also be a list (at most 1000, and at most the service's
tps) of addresses or of `{"to", "substitutions", "correlationId"}` objects, whose substitutions override
the request's global ones: the "personalized messages to a maximum of 1000 destinations" the SMS API
documents. Placeholders are written `{{name}}` or `$(name)`; one with no value is left as written.
Every refusal names its field, as the API does: "Invalid parameter - <field>".
"""

import binascii
from dataclasses import dataclass

import msgspec

from tidings.errors import InvalidJson, InvalidParameter, MandatoryMissing, TooManyDestinations
from tidings.schema.common import (
    CALLBACK_DATA_MAX_CHARS,
    CORRELATION_MAX_BYTES,
    msisdn,
    sender_id_problem,
    timestamp,
    typed_error,
)
from tidings.schema.sms import BINARY_MAX_BYTES, SmsContent, is_configured_sender
from tidings.smpp.encoding import binary_segments, segments
from tidings.templates import render
from tidings.urls import is_http_url

CONTENT_MAX_CHARS = 4000
MAX_DESTINATIONS = 1000
IDEMPOTENCY_KEY_MAX = 64
CONTENT_TYPES = {"text": "1", "unicode": "4", "binary": "3", "template": "1"}

Scalar = str | int | float | bool


class Destination(msgspec.Struct, forbid_unknown_fields=False):
    to: str | None = None
    msisdn: str | None = None
    substitutions: dict[str, Scalar | None] | None = None
    correlationId: str | None = None


class Body(msgspec.Struct, rename={"from_": "from"}):
    from_: str | int | None = None
    to: str | int | list[str | Destination] | None = None
    content: str | None = None
    contentType: str | None = None
    substitutions: dict[str, Scalar | None] | None = None
    correlationId: str | None = None
    dltTemplateId: str | int | None = None
    callbackUrl: str | None = None
    callbackData: str | None = None
    callbackUrlAuthId: str | None = None
    expireAt: str | int | float | None = None
    shortenUrls: bool | None = None
    shortUrlDomain: str | None = None
    trackShortUrlClicks: bool | None = None


_decoder = msgspec.json.Decoder(Body)


@dataclass(frozen=True, slots=True)
class SmsItem:
    address: str
    content: SmsContent
    parts: int
    correlationid: str | None
    substitutions: dict[str, Scalar | None]

    def with_text(self, text: str) -> "SmsItem":
        """This message with its text decided (a template's, filled in)."""
        if len(text) > CONTENT_MAX_CHARS:
            raise InvalidParameter(f"over {CONTENT_MAX_CHARS} characters once filled in", field="content")
        content = msgspec.structs.replace(self.content, text=text)
        parts = segments(text, unicode=content.type == "4")
        return SmsItem(self.address, content, parts, self.correlationid, self.substitutions)


@dataclass(frozen=True, slots=True)
class SmsRequest:
    items: list[SmsItem]
    batch: bool  # `to` was a list: the answer lists every message
    content_type: str
    callback_url: str | None
    callback_data: str | None
    expiry: float | None
    template: str | None  # contentType template: `content` is its id, filled in per message by intake
    shorten: bool = False  # shortenUrls
    track_clicks: bool = False  # trackShortUrlClicks: a Clicked notification per click


def decode(raw: bytes, senders: tuple[str, ...]) -> SmsRequest:
    try:
        body = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise typed_error(exc) from None
    except msgspec.DecodeError:
        raise InvalidJson("the body is not a JSON object") from None
    content_type = (body.contentType or "text").strip().lower()
    if content_type not in CONTENT_TYPES:
        raise InvalidParameter("must be text, unicode, binary or template", field="contentType")
    sender = _sender(body.from_, senders)
    if body.content is None or body.content == "":
        raise MandatoryMissing("content is required", field="content")
    if len(body.content) > CONTENT_MAX_CHARS:
        raise InvalidParameter(f"longer than {CONTENT_MAX_CHARS} characters", field="content")
    _check_len(body.correlationId, CORRELATION_MAX_BYTES, "correlationId", utf8=True)
    _check_len(body.callbackData, CALLBACK_DATA_MAX_CHARS, "callbackData")
    if body.callbackUrl is not None and body.callbackUrl != "" and not is_http_url(body.callbackUrl):
        raise InvalidParameter("must be an http:// or https:// URL", field="callbackUrl")
    expiry = None
    if body.expireAt is not None and body.expireAt != "":
        try:
            expiry = timestamp(body.expireAt, "expireAt")
        except InvalidParameter as exc:
            raise InvalidParameter(exc.detail, field="expireAt") from None
    common = SmsContent(
        type=CONTENT_TYPES[content_type], senderid=sender, api="sms", contentType=content_type
    )
    if body.dltTemplateId not in (None, ""):
        common.dlt_templateid = str(body.dltTemplateId)
    if body.shortenUrls:
        common.shortenUrls = True
        common.trackShortUrlClicks = bool(body.trackShortUrlClicks)
        common.shortUrlDomain = body.shortUrlDomain or None
    items = [
        _item(body, content_type, common, address, subs, corr) for address, subs, corr in _destinations(body)
    ]
    return SmsRequest(
        items=items,
        batch=isinstance(body.to, list),
        content_type=content_type,
        callback_url=body.callbackUrl or None,
        callback_data=body.callbackData,
        expiry=expiry,
        template=body.content.strip() if content_type == "template" else None,
        shorten=bool(body.shortenUrls),
        track_clicks=bool(body.shortenUrls and body.trackShortUrlClicks),
    )


def _destinations(body: Body) -> list[tuple[str, dict[str, Scalar | None], str | None]]:
    if body.to is None or body.to == "" or body.to == []:
        raise MandatoryMissing("to is required", field="to")
    if not isinstance(body.to, list):
        return [(_address(body.to, "to"), body.substitutions or {}, body.correlationId)]
    if len(body.to) > MAX_DESTINATIONS:
        raise TooManyDestinations(f"{len(body.to)} destinations, more than {MAX_DESTINATIONS}", field="to")
    out: list[tuple[str, dict[str, Scalar | None], str | None]] = []
    for i, entry in enumerate(body.to):
        where = f"to[{i}]"
        if isinstance(entry, str):
            out.append((_address(entry, where), body.substitutions or {}, body.correlationId))
            continue
        raw = entry.to if entry.to is not None else entry.msisdn
        if raw is None:
            raise MandatoryMissing("each destination needs `to`", field=f"{where}.to")
        _check_len(entry.correlationId, CORRELATION_MAX_BYTES, f"{where}.correlationId", utf8=True)
        merged = {**(body.substitutions or {}), **(entry.substitutions or {})}
        out.append((_address(raw, f"{where}.to"), merged, entry.correlationId or body.correlationId))
    return out


def _address(value: object, field: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    try:
        return msisdn(value, field)
    except InvalidParameter as exc:
        raise InvalidParameter(exc.detail, field=field) from None


def _item(
    body: Body,
    content_type: str,
    common: SmsContent,
    address: str,
    subs: dict[str, Scalar | None],
    correlationid: str | None,
) -> SmsItem:
    assert body.content is not None
    if content_type == "binary":
        try:
            payload = binascii.unhexlify(body.content.strip())
        except (binascii.Error, ValueError):
            raise InvalidParameter("binary content must be hexadecimal", field="content") from None
        if len(payload) > BINARY_MAX_BYTES:
            raise InvalidParameter(f"longer than {BINARY_MAX_BYTES} bytes", field="content")
        content = msgspec.structs.replace(common, body=body.content.strip())
        return SmsItem(address, content, binary_segments(payload), correlationid, subs)
    if content_type == "template":
        content = msgspec.structs.replace(common, template=body.content.strip())
        return SmsItem(address, content, 1, correlationid, subs)
    text = render(body.content, subs, None) if subs else body.content
    if len(text) > CONTENT_MAX_CHARS:
        raise InvalidParameter(f"over {CONTENT_MAX_CHARS} characters once substituted", field="content")
    content = msgspec.structs.replace(common, text=text)
    parts = segments(text, unicode=content_type == "unicode")
    return SmsItem(address, content, parts, correlationid, subs)


def _sender(value: str | int | None, senders: tuple[str, ...]) -> str:
    if value is None or value == "":
        raise MandatoryMissing("from is required", field="from")
    sender = str(value)
    if (problem := sender_id_problem(sender)) is not None:
        raise InvalidParameter(problem, field="from")
    if not is_configured_sender(sender, senders):
        raise InvalidParameter(f"sender {sender!r} is not configured for this service", field="from")
    return sender


def _check_len(value: str | None, limit: int, field: str, utf8: bool = False) -> None:
    if value is None:
        return
    size = len(value.encode("utf-8")) if utf8 else len(value)
    if size > limit:
        raise InvalidParameter(f"longer than {limit} {'bytes' if utf8 else 'characters'}", field=field)
