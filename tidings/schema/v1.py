"""The Messaging API v1 request envelope (`POST /resources/v1/messaging`).

Decoding checks shape and format only; what depends on the calling service (its sender ids, its
tps) is checked by `tidings.intake`. Both spellings the documents use are accepted for
correlationid, notifyurl and callbackData.
"""

import re
from dataclasses import dataclass
from typing import Any

import msgspec

from tidings.errors import InvalidJson, InvalidParameter, MandatoryMissing, TooManyDestinations
from tidings.schema import common
from tidings.schema.common import Addressing, decode_error_detail, required
from tidings.schema.sms import SMS

MAX_DESTINATIONS = 1000

# deliverychannel value (lower case) -> the channel's addressing and object.
CHANNELS: dict[str, Addressing] = {"sms": SMS}

_LINK = re.compile(r"\{\{link_([^}]*)\}\}")


class Destination(msgspec.Struct):
    msisdn: list[str] | None = None
    correlationid: str | None = None
    correlationId: str | None = None


class ContactPolicy(msgspec.Struct):
    contactPolicyGroup: str | None = None
    channelCheckConsent: bool | None = None
    channelApplyFrequencyCap: bool | None = None


class TemplateRef(msgspec.Struct):
    template: str | None = None
    parameters: dict[str, Any] | None = None
    policy: dict[str, Any] | None = None  # {"group", "consent", "cap"}


class SmartLinkRef(msgspec.Struct):
    linkid: int | str | None = None
    validity: int | str | None = None


class Body(msgspec.Struct):
    deliverychannel: str | None = None
    destination: list[Destination] | None = None
    channels: dict[str, msgspec.Raw] | None = None
    correlationid: str | None = None
    correlationId: str | None = None
    notifyurl: str | None = None
    notifyUrl: str | None = None
    callbackData: str | None = None
    callbackdata: str | None = None
    expiry: str | int | float | None = None
    priority: str | int | None = None
    message: TemplateRef | None = None
    contactPolicy: ContactPolicy | None = None


_decoder = msgspec.json.Decoder(Body | list[Body])
_smartlinks = msgspec.json.Decoder(list[SmartLinkRef])


@dataclass(frozen=True, slots=True)
class Address:
    value: str  # normalized: an msisdn always has its leading '+'
    correlationid: str | None


@dataclass(frozen=True, slots=True)
class V1Request:
    channel: Addressing
    channel_object: bytes | None  # None: the template gives the whole content
    addresses: list[Address]
    correlationid: str | None
    notify_url: str | None
    callback_data: str | None
    expiry: float | None
    priority: int
    template: str | None = None
    parameters: dict[str, Any] | None = None
    policy: dict[str, Any] | None = None  # {"group", "consent", "cap"}


def decode(body: bytes) -> V1Request:
    """Decode and check a v1 body; raise the ApiError whose code the documents give."""
    try:
        parsed = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidParameter(_top_level(exc)) from None
    except msgspec.DecodeError as exc:
        raise InvalidJson(str(exc)) from None
    if isinstance(parsed, list):
        if len(parsed) != 1:
            raise InvalidParameter("the body must be one JSON object (or an array holding one)")
        parsed = parsed[0]
    return _check(parsed)


def _top_level(exc: msgspec.ValidationError) -> str:
    detail = decode_error_detail(exc)
    if detail.startswith("expected `object | array`"):
        return "the body must be a JSON object"
    return detail.replace("[0].", ".", 1) if detail.startswith("[0]") else detail


def _check(b: Body) -> V1Request:
    required(b.deliverychannel, "deliverychannel")
    assert b.deliverychannel is not None
    channel = CHANNELS.get(b.deliverychannel.strip().lower())
    if channel is None:
        raise InvalidParameter(
            f"deliverychannel {b.deliverychannel!r} is not supported (supported: {', '.join(CHANNELS)})"
        )
    required(b.destination, "destination")
    assert b.destination is not None
    template = _template(b.message)
    if template is None:
        required(b.channels, "channels")
    raw = _channel_object(b, channel, template is not None)
    correlationid = common.max_bytes(
        _first(b.correlationid, b.correlationId), common.CORRELATION_MAX_BYTES, "correlationid"
    )
    addresses = _addresses(b.destination, channel, correlationid)
    callback = common.max_chars(
        _first(b.callbackData, b.callbackdata), common.CALLBACK_DATA_MAX_CHARS, "callbackData"
    )
    expiry = common.timestamp(b.expiry, "expiry") if b.expiry not in (None, "") else None
    policy = _check_contact_policy(b.contactPolicy)
    return V1Request(
        channel=channel,
        channel_object=raw,
        addresses=addresses,
        correlationid=correlationid,
        notify_url=_first(b.notifyurl, b.notifyUrl),
        callback_data=callback,
        expiry=expiry,
        priority=_priority(b.priority),
        template=template,
        parameters=b.message.parameters if b.message is not None else None,
        policy=policy,
    )


def _template(message: TemplateRef | None) -> str | None:
    if message is None:
        return None
    if message.template is None or str(message.template).strip() == "":
        raise MandatoryMissing("message.template")
    return str(message.template).strip()


def _first(a: str | None, b: str | None) -> str | None:
    return a if a is not None else b


def _channel_object(b: Body, channel: Addressing, templated: bool) -> bytes | None:
    field = "channels." + ".".join(channel.path)
    channels = b.channels or {}
    raw = channels.get(channel.path[0])
    if raw is None or bytes(raw).strip() in (b"null", b""):
        if templated:
            _check_smartlinks(channels.get("smartlinks"), b"")
            return None
        raise MandatoryMissing(field)
    _check_smartlinks(channels.get("smartlinks"), bytes(raw))
    return bytes(raw)


def _check_smartlinks(raw: msgspec.Raw | None, channel_object: bytes) -> None:
    if raw is not None:
        try:
            links = _smartlinks.decode(raw)
        except msgspec.ValidationError as exc:
            raise InvalidParameter(decode_error_detail(exc, "channels.smartlinks")) from None
        if links:  # smart links are not configurable in this version, so every linkid is unknown
            raise InvalidParameter(
                f"channels.smartlinks[0].linkid {links[0].linkid!r} is not a configured smart link"
            )
    if m := _LINK.search(channel_object.decode("utf-8", "replace")):
        raise InvalidParameter(f"{m.group(0)} in the text has no matching channels.smartlinks entry")


def _addresses(
    destinations: list[Destination], channel: Addressing, correlationid: str | None
) -> list[Address]:
    total = sum(len(getattr(d, channel.address_key) or ()) for d in destinations)
    if total > MAX_DESTINATIONS:
        raise TooManyDestinations(f"{total} addresses, at most {MAX_DESTINATIONS} per request")
    out: list[Address] = []
    for i, dest in enumerate(destinations):
        field = f"destination[{i}].{channel.address_key}"
        values = getattr(dest, channel.address_key)
        required(values, field)
        own = common.max_bytes(
            _first(dest.correlationid, dest.correlationId),
            common.CORRELATION_MAX_BYTES,
            f"destination[{i}].correlationid",
        )
        corr = own if own is not None else correlationid
        for j, value in enumerate(values):
            out.append(Address(channel.address(value, f"{field}[{j}]"), corr))
    return out


def _priority(value: str | int | None) -> int:
    if value is None or value == "":
        return 2
    text = str(value).strip()
    if text not in ("1", "2", "3"):
        raise InvalidParameter("priority must be 1 (high), 2 (normal) or 3 (low)")
    return int(text)


def _check_contact_policy(cp: ContactPolicy | None) -> dict[str, Any] | None:
    """The check the request asks for (whether its group exists is the service's business: intake)."""
    if cp is None:
        return None
    if not (cp.channelCheckConsent or cp.channelApplyFrequencyCap):
        raise InvalidParameter("contactPolicy: channelCheckConsent or channelApplyFrequencyCap must be true")
    if not cp.contactPolicyGroup:
        raise MandatoryMissing("contactPolicy.contactPolicyGroup (required when a check is true)")
    return {
        "group": cp.contactPolicyGroup,
        "consent": bool(cp.channelCheckConsent),
        "cap": bool(cp.channelApplyFrequencyCap),
    }
