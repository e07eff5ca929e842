"""The v1 `channels.sms` object (smsMessage) and SMS addressing."""

import binascii
from collections.abc import Sequence
from typing import Any

import msgspec

from tidings.errors import InvalidJson, InvalidParameter, MandatoryMissing
from tidings.schema.common import ChannelContent, decode_error_detail, msisdn, sender_id_problem
from tidings.smpp.encoding import binary_segments, segments

TEXT_MAX_CHARS = 1024
BINARY_MAX_BYTES = 1024
DEFAULT_SENDER = "CONNCT"
TYPES = {"1": "text", "2": "flash", "3": "binary", "4": "unicode"}


class SmsExtras(msgspec.Struct):
    dlt_templateid: str | int | None = None


class SmsMessage(msgspec.Struct):
    text: str | None = None
    senderid: str | int | None = None
    type: str | int | None = None
    body: str | None = None
    extras: SmsExtras | None = None
    sendLinkAsAppClip: bool | None = None
    storeRegion: str | None = None


class SmsContent(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An SMS as stored and as its connector receives it, whichever API accepted it."""

    type: str  # 1 text, 2 flash, 3 binary, 4 unicode
    senderid: str
    text: str | None = None
    body: str | None = None  # hexadecimal, for binary
    dlt_templateid: str | None = None
    template: str | None = None  # the SMS API's template id, until intake fills the text in
    api: str | None = None  # "sms" when the SMS API accepted it: its status route answers for it
    contentType: str | None = None  # as the SMS API request said it
    # The SMS API's link options, kept as the request gave them (its status route shows them).
    shortenUrls: bool | None = None
    trackShortUrlClicks: bool | None = None
    shortUrlDomain: str | None = None


_decoder = msgspec.json.Decoder(SmsMessage)


class SmsAddressing:
    name: str = "sms"
    path: tuple[str, ...] = ("sms",)
    address_keys: tuple[str, ...] = ("msisdn",)

    def address(self, value: object, field: str) -> str:
        return msisdn(value, field)

    def fill_text(self, given: dict[str, Any], text: str) -> dict[str, Any]:
        return given if given.get("text") else {**given, "text": text}

    def content(self, raw: bytes, field: str, senders: Sequence[str]) -> ChannelContent:
        try:
            msg = _decoder.decode(raw)
        except msgspec.ValidationError as exc:
            raise InvalidParameter(decode_error_detail(exc, field)) from None
        except msgspec.DecodeError:  # pragma: no cover - the outer decode already parsed this JSON
            raise InvalidJson(field) from None
        kind = str(msg.type if msg.type is not None else "1").strip() or "1"
        if kind not in TYPES:
            raise InvalidParameter(f"{field}.type must be 1 (text), 2 (flash), 3 (binary) or 4 (unicode)")
        data = SmsContent(type=kind, senderid=_sender(msg.senderid, field, senders))
        if kind == "3":
            payload = _binary(msg.body, field)
            data.body = msg.body
            parts = binary_segments(payload)
        else:
            if not msg.text:
                raise MandatoryMissing(f"{field}.text")
        if msg.text is not None:
            if len(msg.text) > TEXT_MAX_CHARS:
                raise InvalidParameter(f"{field}.text is longer than {TEXT_MAX_CHARS} characters")
            data.text = msg.text
            if kind != "3":
                parts = segments(msg.text, unicode=kind == "4")
        if msg.extras is not None and msg.extras.dlt_templateid not in (None, ""):
            data.dlt_templateid = str(msg.extras.dlt_templateid)
        return ChannelContent(data, parts)


def _sender(value: str | int | None, field: str, senders: Sequence[str]) -> str:
    # The documents: "If the senderid is not configured, a default senderid CONNCT can be used".
    senders = senders or (DEFAULT_SENDER,)
    if value is None or value == "":
        return senders[0]
    sender = str(value)
    if (problem := sender_id_problem(sender)) is not None:
        raise InvalidParameter(f"{field}.senderid {sender!r}: {problem}")
    if not is_configured_sender(sender, senders):
        raise InvalidParameter(f"{field}.senderid {sender!r} is not configured for this service")
    return sender


def is_configured_sender(sender: str, senders: Sequence[str]) -> bool:
    """Whether a service with these sender ids (none: the default CONNCT) may send as `sender`: the one
    rule of the v1 API and the SMS API. A leading '+' is not significant, as for a number it is not a
    digit (`sender_id_problem`): `14155550100` and `+14155550100` are one sender, as the SMS API has
    always accepted."""
    bare = sender.removeprefix("+")
    return any(s.removeprefix("+") == bare for s in senders or (DEFAULT_SENDER,))


def _binary(body: str | None, field: str) -> bytes:
    if not body:
        raise MandatoryMissing(f"{field}.body (required when type is 3)")
    try:
        payload = binascii.unhexlify(body.strip())
    except (binascii.Error, ValueError):
        raise InvalidParameter(f"{field}.body must be hexadecimal (an even number of 0-9, A-F)") from None
    if len(payload) > BINARY_MAX_BYTES:
        raise InvalidParameter(f"{field}.body is longer than {BINARY_MAX_BYTES} bytes")
    return payload


SMS = SmsAddressing()
