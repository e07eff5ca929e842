"""The WhatsApp REST API request (`POST /v1/whatsapp/messages`): one WhatsApp message to one number.

The body (the fields the Webex Connect CPaaS SDKs send) is translated into the v1 `wa` object and
checked by `decode_whatsapp`, so both APIs accept and refuse exactly the same messages; a refusal
names the REST field (`content`, `url`, `quickReplies[1].buttonText`, …) instead of the `wa` path.

Choices where the SDKs leave room:
- `quickReplies` (1 to 3 `{buttonText, payload}`) turn the message into reply buttons: on TEXT the
  text is the body; on IMAGE, VIDEO or DOCUMENT the media becomes the header and `content` (else the
  caption) the body. `mediaHeader` `{contentType: IMAGE|VIDEO|DOCUMENT|TEXT, url, filename, text}` is
  the header of a TEXT message with quick replies; without quick replies WhatsApp has nowhere to put it.
- `substitutions` (an object, or an array of one-key objects as the SDKs send for media) fill
  `{{name}}` in `content` and `caption`; a placeholder with no value is left as written.
- TEMPLATE names a `[[templates]]` entry of channel whatsapp by `templateId`, filled from `substitutions`;
  intake builds the Cloud API template from the registry (7004 naming templateId when the service has no
  such template, 7003 naming substitutions.<name> for a missing value, 7722 for a foreign namespace).
"""

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tidings.errors import ApiError, InvalidJson, InvalidParameter, MandatoryMissing
from tidings.schema.common import CALLBACK_DATA_MAX_CHARS, CORRELATION_MAX_BYTES, msisdn, typed_error
from tidings.schema.whatsapp import MEDIA_TYPES, WhatsAppContent, decode_whatsapp
from tidings.templates import render
from tidings.urls import is_http_url

QUICK_REPLIES_MAX = 3
CONTENT_TYPES = ("TEXT", "AUDIO", "IMAGE", "VIDEO", "DOCUMENT", "STICKER", "LOCATION", "CONTACTS", "TEMPLATE")
HEADER_TYPES = ("IMAGE", "VIDEO", "DOCUMENT", "TEXT")
_CAPTIONED = ("image", "video", "document")

Scalar = str | int | float | bool


class QuickReply(msgspec.Struct):
    buttonText: str | None = None
    payload: str | None = None


class MediaHeader(msgspec.Struct):
    contentType: str | None = None
    url: str | None = None
    filename: str | None = None
    fileName: str | None = None
    text: str | None = None
    mimeType: str | None = None


class ContactPhone(msgspec.Struct):
    type: str | None = None
    number: str | None = None
    whatsAppId: str | None = None


class ContactAddress(msgspec.Struct):
    type: str | None = None
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    countryCode: str | None = None


class ContactEmail(msgspec.Struct):
    type: str | None = None
    address: str | None = None


class ContactUrl(msgspec.Struct):
    type: str | None = None
    address: str | None = None


class Contact(msgspec.Struct):
    formattedName: str | None = None
    namePrefix: str | None = None
    firstName: str | None = None
    middleName: str | None = None
    lastName: str | None = None
    nameSuffix: str | None = None
    birthday: str | None = None
    company: str | None = None
    department: str | None = None
    title: str | None = None
    phones: list[ContactPhone] | None = None
    addresses: list[ContactAddress] | None = None
    emails: list[ContactEmail] | None = None
    urls: list[ContactUrl] | None = None


class Body(msgspec.Struct, rename={"from_": "from"}):
    from_: str | int | None = None
    to: str | int | None = None
    contentType: str | None = None
    content: str | None = None
    previewUrl: bool | None = None
    url: str | None = None
    mimeType: str | None = None
    caption: str | None = None
    fileName: str | None = None
    latitude: float | str | None = None
    longitude: float | str | None = None
    name: str | None = None
    address: str | None = None
    contacts: list[Contact] | None = None
    templateId: str | None = None
    quickReplies: list[QuickReply] | None = None
    mediaHeader: MediaHeader | None = None
    substitutions: dict[str, Scalar | None] | list[dict[str, Scalar | None]] | None = None
    correlationId: str | None = None
    callbackUrl: str | None = None
    callbackData: str | None = None


_decoder = msgspec.json.Decoder(Body)


@dataclass(frozen=True, slots=True)
class WhatsAppRequest:
    sender: str  # `from`: an app id or a WhatsApp number's phone_number_id; intake resolves it
    to: str  # E.164 with '+'
    content: WhatsAppContent | None  # None for TEMPLATE: intake builds it from the template registry
    correlationid: str | None
    callback_url: str | None
    callback_data: str | None
    template_id: str | None = None  # TEMPLATE's templateId
    substitutions: dict[str, Scalar | None] = field(default_factory=dict)
    # The request's own fields as it sent them (JSON, compact; contentType upper-case): what the GET answers.
    rest: msgspec.Raw = field(default_factory=msgspec.Raw)


def decode(raw: bytes) -> WhatsAppRequest:
    try:
        body = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise typed_error(exc) from None
    except msgspec.DecodeError:
        raise InvalidJson("the body is not a JSON object") from None
    kind = _content_type(body.contentType)
    if body.from_ is None or body.from_ == "":
        raise MandatoryMissing("from is required", field="from")
    to = _to(body.to)
    _check_len(body.correlationId, CORRELATION_MAX_BYTES, "correlationId", utf8=True)
    _check_len(body.callbackData, CALLBACK_DATA_MAX_CHARS, "callbackData")
    if body.callbackUrl and not is_http_url(body.callbackUrl):
        raise InvalidParameter("must be an http:// or https:// URL", field="callbackUrl")
    subs = _substitutions(body.substitutions)
    template_id = None
    content: WhatsAppContent | None = None
    if kind == "template":
        template_id = (body.templateId or "").strip()
        if not template_id:
            raise MandatoryMissing("templateId is required for TEMPLATE", field="templateId")
    else:
        wa = wa_object(body, kind, subs)
        try:
            content = decode_whatsapp(msgspec.json.encode(wa), "wa")
        except ApiError as exc:
            raise relabel(exc, kind) from None
    return WhatsAppRequest(
        sender=str(body.from_),
        to=to,
        content=content,
        correlationid=body.correlationId,
        callback_url=body.callbackUrl or None,
        callback_data=body.callbackData,
        template_id=template_id,
        substitutions=subs,
        rest=_as_sent(raw, kind),
    )


_FIELDS = frozenset(Body.__struct_encode_fields__)


def _as_sent(raw: bytes, kind: str) -> msgspec.Raw:
    """The body's fields (those `Body` names; anything else was ignored), each as the request wrote it,
    with contentType upper-case, re-encoded compactly: kept with the message for the GET."""
    given: dict[str, Any] = msgspec.json.decode(raw)
    fields = {k: v for k, v in given.items() if k in _FIELDS}
    fields["contentType"] = kind.upper()
    return msgspec.Raw(msgspec.json.encode(fields))


def _content_type(value: str | None) -> str:
    kind = (value or "").strip().upper()
    if not kind:
        raise MandatoryMissing("contentType is required", field="contentType")
    if kind not in CONTENT_TYPES:
        raise InvalidParameter(f"must be one of {', '.join(CONTENT_TYPES)}", field="contentType")
    return kind.lower()


def _to(value: str | int | None) -> str:
    if value is None or value == "":
        raise MandatoryMissing("to is required", field="to")
    try:
        return msisdn(str(value), "to")
    except InvalidParameter as exc:
        raise InvalidParameter(exc.detail, field="to") from None


def _substitutions(
    given: dict[str, Scalar | None] | list[dict[str, Scalar | None]] | None,
) -> dict[str, Scalar | None]:
    if given is None:
        return {}
    if isinstance(given, dict):
        return given
    out: dict[str, Scalar | None] = {}
    for i, item in enumerate(given):
        if len(item) != 1:
            raise InvalidParameter("each entry must be an object with one name", field=f"substitutions[{i}]")
        out.update(item)
    return out


def _fill(text: str | None, subs: dict[str, Scalar | None]) -> str | None:
    return render(text, subs, None) if text and subs else text


def wa_object(body: Body, kind: str, subs: dict[str, Scalar | None]) -> dict[str, Any]:
    """The v1 `wa` object that says what the REST body says."""
    content, caption = _fill(body.content, subs), _fill(body.caption, subs)
    if body.mediaHeader is not None and not body.quickReplies:
        raise InvalidParameter("a media header needs quickReplies", field="mediaHeader")
    if body.quickReplies is not None:
        return _buttons(body, kind, content or caption)
    if kind == "text":
        return {"type": "text", "text": {"body": content, "preview_url": bool(body.previewUrl)}}
    if kind in MEDIA_TYPES:
        return {"type": kind, kind: _media(body, caption)}
    if kind == "location":
        loc = {"latitude": body.latitude, "longitude": body.longitude, "name": body.name}
        return {"type": "location", "location": {**loc, "address": body.address}}
    return {"type": "contacts", "contacts": [_contact(c) for c in body.contacts or []]}


def _media(body: Body, caption: str | None) -> dict[str, Any]:
    return {"url": body.url, "mimeType": body.mimeType, "caption": caption, "filename": body.fileName}


def _buttons(body: Body, kind: str, text: str | None) -> dict[str, Any]:
    replies = body.quickReplies or []
    if not replies:
        raise MandatoryMissing("quickReplies is empty", field="quickReplies")
    if len(replies) > QUICK_REPLIES_MAX:
        raise InvalidParameter(f"at most {QUICK_REPLIES_MAX}, {len(replies)} given", field="quickReplies")
    if kind != "text" and kind not in _CAPTIONED:
        raise InvalidParameter("quick replies go with TEXT, IMAGE, VIDEO or DOCUMENT", field="quickReplies")
    interactive: dict[str, Any] = {
        "type": "button",
        "body": {"text": text},
        "action": {
            "buttons": [{"type": "reply", "reply": {"id": r.payload, "title": r.buttonText}} for r in replies]
        },
    }
    if kind in _CAPTIONED and body.mediaHeader is not None:
        raise InvalidParameter(f"the {kind.upper()} itself is the header", field="mediaHeader")
    if kind in _CAPTIONED:
        interactive["header"] = {"type": kind, kind: {"url": body.url, "filename": body.fileName}}
    elif body.mediaHeader is not None:
        interactive["header"] = _header(body.mediaHeader)
    return {"type": "interactive", "interactive": interactive}


def _header(h: MediaHeader) -> dict[str, Any]:
    kind = (h.contentType or "").strip().upper()
    if kind not in HEADER_TYPES:
        raise InvalidParameter(f"must be one of {', '.join(HEADER_TYPES)}", field="mediaHeader.contentType")
    if kind == "TEXT":
        return {"type": "text", "text": h.text}
    media = {"url": h.url, "filename": h.filename or h.fileName, "mimeType": h.mimeType}
    return {"type": kind.lower(), kind.lower(): media}


def _contact(c: Contact) -> dict[str, Any]:
    org = {"company": c.company, "department": c.department, "title": c.title}
    return {
        "name": {
            "formatted_name": c.formattedName,
            "first_name": c.firstName,
            "last_name": c.lastName,
            "middle_name": c.middleName,
            "suffix": c.nameSuffix,
            "prefix": c.namePrefix,
        },
        "phones": [_drop({"phone": p.number, "type": p.type, "wa_id": p.whatsAppId}) for p in c.phones or []],
        "emails": [_drop({"email": e.address, "type": e.type}) for e in c.emails or []],
        "urls": [_drop({"url": u.address, "type": u.type}) for u in c.urls or []],
        "addresses": [
            _drop(
                {
                    "street": a.street,
                    "city": a.city,
                    "state": a.state,
                    "zip": a.zip,
                    "country": a.country,
                    "country_code": a.countryCode,
                    "type": a.type,
                }
            )
            for a in c.addresses or []
        ],
        "org": _drop(org) or None,
        "birthday": c.birthday,
    }


def _drop(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


# --- naming the REST field in decode_whatsapp's refusals ------------------------------------------

_PATH = re.compile(r"wa(?:\.[A-Za-z_]+|\[\d+\])*")
_LEAF = {
    "url": "url",
    "link": "url",
    "mimeType": "mimeType",
    "caption": "caption",
    "filename": "fileName",
    "latitude": "latitude",
    "longitude": "longitude",
    "name": "name",
    "address": "address",
}
_CONTACT = {
    "name.formatted_name": "formattedName",
    "name.first_name": "firstName",
    "birthday": "birthday",
}


def rest_field(path: str, kind: str) -> str:
    """The REST field a `wa` path comes from."""
    parts = path.removeprefix("wa").lstrip(".")
    if parts in ("", "type"):
        return "contentType"
    if parts.startswith("text.") or parts == "text" or parts == "preview_url":
        return "previewUrl" if parts.endswith("preview_url") else "content"
    if parts.startswith("contacts"):
        head, _, rest = parts.partition("].")
        return f"{head}].{_CONTACT.get(rest, rest)}" if rest else head
    if parts.startswith("interactive"):
        return _interactive_field(parts.removeprefix("interactive").lstrip("."), kind)
    leaf = parts.rsplit(".", 1)[-1]
    return _LEAF.get(leaf, "url" if leaf in MEDIA_TYPES else leaf)


def _interactive_field(parts: str, kind: str) -> str:
    m = re.match(r"action\.buttons(?:\[(\d+)\](?:\.reply\.(id|title))?)?", parts)
    if m is not None:
        if m.group(1) is None:
            return "quickReplies"
        leaf = {"id": ".payload", "title": ".buttonText"}.get(m.group(2) or "", "")
        return f"quickReplies[{m.group(1)}]{leaf}"
    if parts.startswith("body"):
        return "content"
    if parts.startswith("header"):
        if kind != "text":
            return _LEAF.get(parts.rsplit(".", 1)[-1], "url")
        leaf = parts.rsplit(".", 1)[-1]
        return "mediaHeader." + {
            "type": "contentType",
            "image": "url",
            "video": "url",
            "document": "url",
        }.get(leaf, leaf)
    return "quickReplies"


def relabel(exc: ApiError, kind: str) -> ApiError:
    """The same refusal (same code) naming the REST field instead of the `wa` path."""
    text = exc.detail or exc.field
    m = _PATH.search(text)
    field = rest_field(m.group(0), kind) if m else "content"
    detail = _PATH.sub(field, text, count=1) if m else text
    out = type(exc)(detail, field=field)
    return out


def _check_len(value: str | None, limit: int, field: str, utf8: bool = False) -> None:
    if value is None:
        return
    size = len(value.encode("utf-8")) if utf8 else len(value)
    if size > limit:
        raise InvalidParameter(f"longer than {limit} {'bytes' if utf8 else 'characters'}", field=field)
