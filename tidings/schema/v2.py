"""The Messaging API v2 envelope (`POST /v2/messages`): what every channel's request shares.

The body is parsed once into JSON values and converted once into `Body`; the top-level keys `Body` does
not name (email's `cc`, `bcc`, …) are handed to the channel as `V2Parts.extra`. Everything that does
not depend on the calling service is checked here, each refusal naming its field ("Invalid parameter -
<field>"); what does (its sender ids, apps, templates, groups, smart links, tps) is `tidings.intake_v2`'s.

Choices where the documents are silent (docs/v2.md says them to users):
- `to[]` entries hold the channel's address keys (`msisdn: [...]`, `email: [...]`; a single string is
  taken as a list of one); a key of another channel is 7004, an entry without addresses 7003.
- Substitution keys may be written bare (`name`) or as the documents' samples write them
  (`{{name}}`, `$(name)`); a `to[]` entry's substitutions override the request's.
- `requestedReceipts` words, any case: `submitted` (`sent` is its legacy alias), `delivered`, `read`,
  `clicked`, `failed` (also Un-Delivered and Expired), `undelivered`, `expired`, `bounce`/`bounced`,
  `complaint`, and email's `not verified` and `invalid` (both Failed). An empty list notifies nothing.
- `validity` is seconds (at most 72 hours), counted from `sendAt` when the message is scheduled;
  `expireAt` must be in the future and after `sendAt`. `sendAt` at most 7 days ahead; one in the past
  (or now) sends at once.
- `smartlinks[{smartlinkId, validity}]` (validity in minutes, as v1) for `{{smartlink_<id>}}`.
"""

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tidings.errors import ApiError, InvalidJson, InvalidParameter, MandatoryMissing, TooManyDestinations
from tidings.schema import v1
from tidings.schema.common import CALLBACK_DATA_MAX_CHARS, CORRELATION_MAX_BYTES, timestamp, typed_error
from tidings.specs import SPECS, ChannelSpec
from tidings.specs import find as find_spec
from tidings.urls import is_http_url

MAX_ADDRESSES = v1.MAX_DESTINATIONS  # 1000; beyond it 7009, as v1
VALIDITY_MAX_S = 72 * 3600
SEND_AT_MAX_AHEAD_S = 7 * 86400
SMARTLINK_VALIDITY_MAX_MIN = 525_600

Scalar = str | int | float | bool

# requestedReceipts words (lower case) → the status words they notify.
RECEIPTS: dict[str, tuple[str, ...]] = {
    "submitted": ("Submitted",),
    "sent": ("Submitted",),  # the documents' legacy alias of SUBMITTED
    "delivered": ("Delivered",),
    "read": ("Read",),
    "clicked": ("Clicked",),
    "failed": ("Failed", "Un-Delivered", "Expired"),
    "undelivered": ("Un-Delivered",),
    "un-delivered": ("Un-Delivered",),
    "expired": ("Expired",),
    "bounce": ("Bounce",),
    "bounced": ("Bounce",),
    "complaint": ("Complaint",),
    "complained": ("Complaint",),
    "not verified": ("Failed",),
    "invalid": ("Failed",),
}

# A substitution key written as its placeholder (`{{name}}`, `$(name)`), as `tidings.templates` reads
# them (not imported: templates import the config, which imports the channel specs).
_WRAPPED_KEY = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}|\$\(\s*([^()\s]+)\s*\)")

# Keys of a `to[]` entry that are not addresses.
_ENTRY_META = frozenset({"substitutions", "correlationId", "correlationid"})


class SmartlinkRef(msgspec.Struct):
    smartlinkId: int | str | None = None
    validity: int | float | str | None = None


class ContactPolicy(msgspec.Struct):
    contactPolicyGroup: str | None = None
    channelCheckConsent: bool | None = None
    channelApplyFrequencyCap: bool | None = None


class TemplateRef(msgspec.Struct):
    id: str | int | None = None


class Body(msgspec.Struct, rename={"from_": "from"}):
    channel: str | None = None
    from_: str | int | None = None
    to: list[Any] | None = None
    substitutions: dict[str, Any] | None = None  # values checked by `_substitutions`, naming the key
    content: dict[str, Any] | None = None
    template: TemplateRef | None = None
    options: dict[str, Any] | None = None
    requestedReceipts: list[str] | str | None = None
    callbackData: str | None = None
    callbackdata: str | None = None
    notifyUrl: str | None = None
    notifyurl: str | None = None
    notifyUrlAuthId: Any = None  # a stored auth config of Webex Connect's: nothing to do here
    correlationId: str | None = None
    correlationid: str | None = None
    expireAt: str | int | float | None = None
    validity: int | str | None = None
    sendAt: str | int | float | None = None
    contactPolicy: ContactPolicy | None = None
    smartlinks: list[SmartlinkRef] | None = None
    batchId: Any = None  # Webex Connect's handle on a scheduled batch; not used


_KNOWN = frozenset(f.encode_name for f in msgspec.structs.fields(Body))
_ADDRESS_KEYS = frozenset(v1.ADDRESS_KEYS) | {k for s in SPECS if s.v2 is not None for k in s.v2.address_keys}


@dataclass(frozen=True, slots=True)
class V2Address:
    value: str  # as the channel's `address` returned it
    key: str  # the `to[]` key: the notifications' destinationType
    substitutions: dict[str, Scalar | None]  # the request's, overridden by its entry's
    correlationid: str | None
    entry: int = 0  # the index of its `to[]` entry


@dataclass(frozen=True, slots=True)
class V2Request:
    spec: ChannelSpec
    sender: str  # `from` ("" when absent: the channel's check decides)
    addresses: list[V2Address]
    content: dict[str, Any]
    options: dict[str, Any]
    extra: dict[str, Any]  # the top-level keys the envelope does not read
    correlationid: str | None
    callback_data: str | None
    notify_url: str | None
    receipts: str | None  # status words joined by commas (`tidings.store.base.notifies`); None: all
    expiry: float | None
    send_at: float | None  # None: at once (absent, or not in the future)
    template: str | None
    policy: dict[str, Any] | None
    smartlinks: dict[int, float | None] = field(default_factory=dict)  # id → validity (minutes)
    substitutions: dict[str, Scalar | None] = field(default_factory=dict)


def decode(raw: bytes, now: float) -> V2Request:
    """Decode and check a v2 body whose bytes are one JSON text; raise the ApiError naming the field."""
    try:
        parsed = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise InvalidJson("the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise InvalidJson("the body must be a JSON object")
    try:
        body = msgspec.convert(parsed, Body)
    except msgspec.ValidationError as exc:
        raise typed_error(exc) from None
    spec = _channel(body.channel)
    assert spec.v2 is not None
    correlationid = _max_bytes(_first(body.correlationId, body.correlationid), "correlationId")
    substitutions = _substitutions(body.substitutions, "substitutions")
    addresses = _addresses(body.to, spec, substitutions, correlationid)
    callback_data = _first(body.callbackData, body.callbackdata)
    if callback_data is not None and len(callback_data) > CALLBACK_DATA_MAX_CHARS:
        raise InvalidParameter(f"longer than {CALLBACK_DATA_MAX_CHARS} characters", field="callbackData")
    notify_url = _first(body.notifyUrl, body.notifyurl) or None
    if notify_url is not None and not is_http_url(notify_url):
        raise InvalidParameter("must be an http:// or https:// URL", field="notifyUrl")
    send_at = _send_at(body.sendAt, now)
    sender = "" if body.from_ is None else str(body.from_).strip()
    return V2Request(
        spec=spec,
        sender=sender,
        addresses=addresses,
        content=body.content or {},
        options=body.options or {},
        extra={k: v for k, v in parsed.items() if k not in _KNOWN},
        correlationid=correlationid,
        callback_data=callback_data,
        notify_url=notify_url,
        receipts=_receipts(body.requestedReceipts),
        expiry=_expiry(body, now, send_at),
        send_at=send_at,
        template=_template(body.template),
        policy=_contact_policy(body.contactPolicy),
        smartlinks=_smartlinks(body.smartlinks),
        substitutions=substitutions,
    )


def _first(a: str | None, b: str | None) -> str | None:
    return a if a is not None else b


def _channel(value: str | None) -> ChannelSpec:
    if value is None or not value.strip():
        raise MandatoryMissing("channel is required", field="channel")
    spec = find_spec(value.strip().lower())
    if spec is None or spec.v2 is None:
        served = ", ".join(s.name for s in SPECS if s.v2 is not None)
        raise InvalidParameter(f"{value!r} is not a channel of this API (served: {served})", field="channel")
    return spec


def _max_bytes(value: str | None, field: str) -> str | None:
    if value is not None and len(value.encode("utf-8")) > CORRELATION_MAX_BYTES:
        raise InvalidParameter(f"longer than {CORRELATION_MAX_BYTES} bytes", field=field)
    return value


def _substitutions(value: object, field: str) -> dict[str, Scalar | None]:
    """Substitutions with their keys bare: `{{name}}` and `$(name)` as keys mean `name`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameter("must be an object of names and values", field=field)
    out: dict[str, Scalar | None] = {}
    for key, v in value.items():
        if v is not None and not isinstance(v, str | int | float | bool):
            raise InvalidParameter("a value must be a string, number or boolean", field=f"{field}.{key}")
        m = _WRAPPED_KEY.fullmatch(key.strip())
        out[(m.group(1) or m.group(2)) if m else key.strip()] = v
    return out


def _addresses(
    to: list[Any] | None, spec: ChannelSpec, substitutions: dict[str, Scalar | None], corr: str | None
) -> list[V2Address]:
    assert spec.v2 is not None
    channel = spec.v2
    if not to:
        raise MandatoryMissing("at least one destination is required", field="to")
    total = sum(
        len(v) if isinstance(v, list) else 1
        for entry in to
        if isinstance(entry, dict)
        for k, v in entry.items()
        if k in channel.address_keys
    )
    if total > MAX_ADDRESSES:
        raise TooManyDestinations(f"{total} addresses, at most {MAX_ADDRESSES} per request", field="to")
    out: list[V2Address] = []
    for i, entry in enumerate(to):
        where = f"to[{i}]"
        if not isinstance(entry, dict):
            raise InvalidParameter("must be an object such as {msisdn: [...]}", field=where)
        own = _first(entry.get("correlationId"), entry.get("correlationid"))
        if own is not None and not isinstance(own, str):
            raise InvalidParameter("must be a string", field=f"{where}.correlationId")
        own = _max_bytes(own, f"{where}.correlationId")
        subs = substitutions
        if entry.get("substitutions") is not None:
            subs = {**substitutions, **_substitutions(entry["substitutions"], f"{where}.substitutions")}
        before = len(out)
        for key, values in entry.items():
            if key in _ENTRY_META:
                continue
            if key not in channel.address_keys:
                if key in _ADDRESS_KEYS:
                    raise InvalidParameter(
                        f"not a destination of {spec.name} (use {', '.join(channel.address_keys)})",
                        field=f"{where}.{key}",
                    )
                continue  # not an address key of any channel: ignored, as unknown fields are
            for j, value in enumerate(values if isinstance(values, list) else [values]):
                at = f"{where}.{key}[{j}]"
                try:
                    address = channel.address(value, at)
                except ApiError as exc:
                    raise named(exc, at) from None
                out.append(V2Address(address, key, subs, own if own is not None else corr, i))
        if len(out) == before:
            raise MandatoryMissing("no address", field=f"{where}.{'|'.join(channel.address_keys)}")
    return out


def named(exc: ApiError, field: str) -> ApiError:
    """The error, made to name `field` when it named none (a channel may put the field in its words
    only)."""
    if not exc.field:
        exc.field = field
    return exc


_RECEIPT_SPACES = re.compile(r"[\s_]+")


def _receipts(value: list[str] | str | None) -> str | None:
    if value is None:
        return None
    words = [value] if isinstance(value, str) else value
    statuses: set[str] = set()
    for i, word in enumerate(words):
        key = _RECEIPT_SPACES.sub(" ", word.strip().lower())
        if key not in RECEIPTS:
            where = "requestedReceipts" if isinstance(value, str) else f"requestedReceipts[{i}]"
            raise InvalidParameter(
                f"{word!r} is not a receipt (submitted, sent, delivered, read, clicked, failed, …)",
                field=where,
            )
        statuses.update(RECEIPTS[key])
    return ",".join(sorted(statuses))


def _time(value: str | int | float, field: str) -> float:
    try:
        return timestamp(value, field)
    except InvalidParameter as exc:
        raise InvalidParameter(exc.detail, field=field) from None


def _send_at(value: str | int | float | None, now: float) -> float | None:
    if value is None or value == "":
        return None
    at = _time(value, "sendAt")
    if at > now + SEND_AT_MAX_AHEAD_S:
        raise InvalidParameter("at most 7 days ahead", field="sendAt")
    return at if at > now else None


def _expiry(body: Body, now: float, send_at: float | None) -> float | None:
    given_expire = body.expireAt not in (None, "")
    given_validity = body.validity not in (None, "")
    if given_expire and given_validity:
        raise InvalidParameter("give expireAt or validity, not both", field="validity")
    start = send_at if send_at is not None else now
    if given_validity:
        text = str(body.validity).strip()
        if not text.isascii() or not text.isdigit() or not 0 < int(text) <= VALIDITY_MAX_S:
            raise InvalidParameter(f"must be 1 to {VALIDITY_MAX_S} seconds", field="validity")
        return start + int(text)
    if given_expire:
        assert body.expireAt is not None
        at = _time(body.expireAt, "expireAt")
        if at <= start:
            raise InvalidParameter("must be in the future (and after sendAt)", field="expireAt")
        return at
    return None


def _template(ref: TemplateRef | None) -> str | None:
    if ref is None:
        return None
    if ref.id is None or not str(ref.id).strip():
        raise MandatoryMissing("template.id is required", field="template.id")
    return str(ref.id).strip()


def _contact_policy(cp: ContactPolicy | None) -> dict[str, Any] | None:
    """The check the request asks for, stored as v1 stores it (whether the group is the service's is
    intake's business)."""
    if cp is None:
        return None
    if not (cp.channelCheckConsent or cp.channelApplyFrequencyCap):
        raise InvalidParameter(
            "channelCheckConsent or channelApplyFrequencyCap must be true", field="contactPolicy"
        )
    if not cp.contactPolicyGroup:
        raise MandatoryMissing("required when a check is true", field="contactPolicy.contactPolicyGroup")
    return {
        "group": cp.contactPolicyGroup,
        "consent": bool(cp.channelCheckConsent),
        "cap": bool(cp.channelApplyFrequencyCap),
    }


def _smartlinks(refs: list[SmartlinkRef] | None) -> dict[int, float | None]:
    out: dict[int, float | None] = {}
    for i, ref in enumerate(refs or ()):
        where = f"smartlinks[{i}]"
        if ref.smartlinkId is None or not str(ref.smartlinkId).strip().isdigit():
            raise InvalidParameter("must be a number", field=f"{where}.smartlinkId")
        validity: float | None = None
        if ref.validity not in (None, ""):
            try:
                validity = float(str(ref.validity))
            except ValueError:
                raise InvalidParameter("must be a number of minutes", field=f"{where}.validity") from None
            if not 0 < validity <= SMARTLINK_VALIDITY_MAX_MIN:
                raise InvalidParameter(
                    f"must be between 0 and {SMARTLINK_VALIDITY_MAX_MIN} minutes", field=f"{where}.validity"
                )
        out[int(str(ref.smartlinkId).strip())] = validity
    return out
