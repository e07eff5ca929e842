"""The Messaging API v1 request envelope (`POST /resources/v1/messaging`).

Decoding checks shape and format only; what depends on the calling service (its sender ids, its
tps) is checked by `tidings.intake`. Both spellings the documents use are accepted for
correlationid, notifyurl and callbackData.
"""

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tidings.errors import InvalidJson, InvalidParameter, MandatoryMissing, TooManyDestinations
from tidings.schema import common
from tidings.schema.common import Addressing, decode_error_detail, required
from tidings.specs import SPECS, by_delivery_channel

MAX_DESTINATIONS = 1000
# A gtrId entry travels as the x-wx-gtrid header of every notification of its messages: visible ASCII
# only (no spaces, no control characters that could split a header), at most this long.
GTRID_MAX_CHARS = 128
_GTRID = re.compile(r"[\x21-\x7e]+")


class Destination(msgspec.Struct):
    # Every destination key of CONTRACT.md's channel table: one that does not belong to the request's
    # channel is 7004, so each must be known here to be noticed.
    msisdn: list[str] | None = None
    userid: list[str] | None = None
    customerid: list[str] | None = None
    android_pushid: list[str] | None = None
    ios_pushid: list[str] | None = None
    chrome_pushid: list[str] | None = None
    firefox_pushid: list[str] | None = None
    safari_pushid: list[str] | None = None
    windows_pushid: list[str] | None = None
    psid: list[str] | None = None
    waid: list[str] | None = None
    abcUserId: list[str] | None = None
    email: list[str] | None = None
    correlationid: str | None = None
    correlationId: str | None = None


ADDRESS_KEYS = tuple(k for k in Destination.__struct_fields__ if not k.startswith("correlation"))


class ContactPolicy(msgspec.Struct):
    contactPolicyGroup: str | None = None
    channelCheckConsent: bool | None = None
    channelApplyFrequencyCap: bool | None = None


class TemplateRef(msgspec.Struct):
    template: str | None = None
    parameters: dict[str, Any] | None = None
    namespace: str | None = None  # a WhatsApp template's namespace: it must be the app's (else 7722)


class SmartLinkRef(msgspec.Struct):
    linkid: int | str | None = None
    validity: int | float | str | None = None


class Body(msgspec.Struct):
    deliverychannel: str | None = None
    appid: str | int | None = None
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
    gtrId: list[str] | None = None  # one per destination object


_decoder = msgspec.json.Decoder(Body | list[Body])
_smartlinks = msgspec.json.Decoder(list[SmartLinkRef])


@dataclass(frozen=True, slots=True)
class Address:
    value: str  # normalized: an msisdn always has its leading '+'
    correlationid: str | None
    key: str  # the destination key it came from: the notifications' destinationType
    gtrid: str | None = None  # its destination object's gtrId entry


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
    smartlinks: list[tuple[int, float | None]] = field(default_factory=list)  # (linkid, validity min)
    app_id: str | None = None  # the request's appid: required by app channels (intake checks whose it is)
    namespace: str | None = None  # message.namespace, for WhatsApp templates


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
    spec = by_delivery_channel(b.deliverychannel)
    if spec is None or spec.request is None:  # a channel only v2 serves (email, RCS) is not v1's
        supported = ", ".join(s.name for s in SPECS if s.request is not None)
        raise InvalidParameter(
            f"deliverychannel {b.deliverychannel!r} is not supported (supported: {supported})"
        )
    channel = spec.request
    app_id = None if b.appid is None else str(b.appid).strip()
    if spec.needs_app:
        required(app_id, "appid")
    required(b.destination, "destination")
    assert b.destination is not None
    template = _template(b.message)
    if template is None:
        required(b.channels, "channels")
    raw = _channel_object(b, channel, template is not None)
    correlationid = common.max_bytes(
        _first(b.correlationid, b.correlationId), common.CORRELATION_MAX_BYTES, "correlationid"
    )
    gtrids = _gtrids(b.gtrId, len(b.destination))
    addresses = _addresses(b.destination, channel, correlationid, gtrids)
    callback = common.max_chars(
        _first(b.callbackData, b.callbackdata), common.CALLBACK_DATA_MAX_CHARS, "callbackData"
    )
    expiry = common.timestamp(b.expiry, "expiry") if b.expiry not in (None, "") else None
    policy = _check_contact_policy(b.contactPolicy)
    smartlinks = _smartlink_refs((b.channels or {}).get("smartlinks"))
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
        smartlinks=smartlinks,
        app_id=app_id or None,
        namespace=b.message.namespace if b.message is not None else None,
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
            return None
        raise MandatoryMissing(field)
    return bytes(raw)


def _smartlink_refs(raw: msgspec.Raw | None) -> list[tuple[int, float | None]]:
    """`channels.smartlinks` as (linkid, validity in minutes); whether the service has each link, and
    whether every `{{link_<id>}}` of the text has an entry, is checked once the text is known (intake)."""
    if raw is None:
        return []
    try:
        links = _smartlinks.decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidParameter(decode_error_detail(exc, "channels.smartlinks")) from None
    refs: list[tuple[int, float | None]] = []
    for i, link in enumerate(links):
        where = f"channels.smartlinks[{i}]"
        if link.linkid is None or not str(link.linkid).strip().isdigit():
            raise InvalidParameter(f"{where}.linkid must be a number")
        validity: float | None = None
        if link.validity not in (None, ""):
            try:
                validity = float(str(link.validity))
            except ValueError:
                raise InvalidParameter(f"{where}.validity must be a number of minutes") from None
            if not 0 < validity <= 525_600:
                raise InvalidParameter(f"{where}.validity must be between 0 and 525600 minutes")
        refs.append((int(str(link.linkid).strip()), validity))
    return refs


def _gtrids(given: list[str] | None, objects: int) -> list[str | None]:
    """Each destination object's gtrId (None for all when the request has none): one entry per object."""
    if given is None:
        return [None] * objects
    if len(given) != objects:
        raise InvalidParameter(
            f"gtrId has {len(given)} entries; it must have one per destination object ({objects})"
        )
    for i, value in enumerate(given):
        if len(value) > GTRID_MAX_CHARS or not _GTRID.fullmatch(value):
            raise InvalidParameter(
                f"gtrId[{i}] must be 1 to {GTRID_MAX_CHARS} visible ASCII characters (no spaces)"
            )
    return list(given)


def _addresses(
    destinations: list[Destination],
    channel: Addressing,
    correlationid: str | None,
    gtrids: list[str | None],
) -> list[Address]:
    keys = channel.address_keys
    total = sum(len(getattr(d, k) or ()) for d in destinations for k in keys)
    if total > MAX_DESTINATIONS:
        raise TooManyDestinations(f"{total} addresses, at most {MAX_DESTINATIONS} per request")
    out: list[Address] = []
    for i, dest in enumerate(destinations):
        given = [k for k in ADDRESS_KEYS if getattr(dest, k) is not None]
        if foreign := [k for k in given if k not in keys]:
            allowed = ", ".join(keys)
            raise InvalidParameter(
                f"destination[{i}].{foreign[0]} is not a destination of {channel.name} (use {allowed})"
            )
        if not any(getattr(dest, k) for k in given):
            raise MandatoryMissing(f"destination[{i}].{keys[0] if len(keys) == 1 else '|'.join(keys)}")
        own = common.max_bytes(
            _first(dest.correlationid, dest.correlationId),
            common.CORRELATION_MAX_BYTES,
            f"destination[{i}].correlationid",
        )
        corr = own if own is not None else correlationid
        for key in given:
            for j, value in enumerate(getattr(dest, key)):
                field = f"destination[{i}].{key}[{j}]"
                out.append(Address(channel.address(value, field), corr, key, gtrids[i]))
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
