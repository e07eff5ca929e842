"""The v1 WhatsApp object (`channels["OTT-Messaging"].wa`, whatsappMessage), as the connector receives it.

`WhatsAppContent` and the Structs under it are the checked, normalised form: one shape per Cloud API
message type, whichever of the accepted spellings the request used, so `cloud_message` only lays it out
as the Cloud API's `POST /{version}/{phone_number_id}/messages` body.

`decode_whatsapp` decodes the object once into loose "wire" Structs (`_Wire*`: every field optional,
numbers and flags also as strings) and checks it. Every refusal names the field: 7003 (`MandatoryMissing`)
when a mandatory field is missing or empty, 7004 (`InvalidParameter`) for a wrong type, value or length,
and 7714 (`WhatsAppTextTooLong`, Webex Connect's WhatsApp "Message too long") for a text body over 4096
characters. Unknown fields are ignored (Webex Connect's media samples carry a `provider{name}`).

Two spellings are accepted, because clients send both:
- Webex Connect's documents: media as `{url, mimeType, caption, filename}`; reply buttons as
  `type: "reply"` with the object under `reply`, list messages as `type: "list"` under `list`;
  `preview_url` beside `type`, as the string "true" or "false".
- The Cloud API's own message object: media as `{link | id, caption, filename}`; `type: "interactive"`
  with `interactive.type` "button" or "list"; `text.preview_url` as a boolean.
Both become `type: "interactive"` with `interactive.type` "button" or "list" here.

Choices where the documents leave room:
- Media: exactly one of `url`/`link` (an absolute http(s) URL) or `id` (a media id already uploaded to
  Meta). `mimeType` is mandatory with a URL, as Webex Connect documents it, and optional with an id, whose
  type Meta already knows; when given, its top-level type must fit the message (image/*, audio/*, video/*,
  image/webp for a sticker; any type for a document), compared without regard to case (the documents'
  own samples write "image/WEBP"). `caption` (at most 1024 characters) is refused on audio and sticker and
  `filename` on anything but a document: Meta does not show them there, so they would be lost silently.
- Interactive limits are Meta's: body text ≤ 1024 characters, header text and footer ≤ 60; 1 to 3 reply
  buttons, each with type "reply", an id ≤ 256 and a title ≤ 20 characters, ids and titles unique; a list
  has a button text ≤ 20, 1 to 10 sections (a title ≤ 24 each, mandatory when there are several), 1 to 10
  rows in all, each with an id ≤ 200 (unique across the list), a title ≤ 24 and a description ≤ 72. A
  list's header can only be text. Interactive types other than button and list (cta_url, flow, product)
  are refused: Webex Connect documents none of them.
- A contact needs `name.formatted_name` and one more name part (Meta's rule); `birthday` is YYYY-MM-DD.
- `reaction.emoji` may be "" (the Cloud API removes the reaction then), but it must be present.
- `type` "template"/"hsm" from a client is refused here: a template send is the top-level
  `message{template, parameters}`, which the template registry (tidings/templates.py) turns into a
  `TemplateMessage`. That form reaches this decoder as a `wa` object too, so it carries a seal (an
  HMAC under a key made when the process starts): a client cannot send a template around the registry
  and its namespace check. The seal is neither stored nor sent.
"""

import hashlib
import hmac
import re
import secrets
from datetime import date
from typing import Any, TypeVar

import msgspec

from tidings.errors import ApiError, InvalidParameter, MandatoryMissing
from tidings.schema.common import decode_error_detail
from tidings.urls import is_http_url

TEXT_MAX_CHARS = 4096
CAPTION_MAX_CHARS = 1024
INTERACTIVE_BODY_MAX_CHARS = 1024
HEADER_TEXT_MAX_CHARS = 60
FOOTER_MAX_CHARS = 60
BUTTONS_MAX = 3
BUTTON_ID_MAX_CHARS = 256
BUTTON_TITLE_MAX_CHARS = 20
LIST_BUTTON_MAX_CHARS = 20
SECTIONS_MAX = 10
ROWS_MAX = 10  # across all sections
SECTION_TITLE_MAX_CHARS = 24
ROW_ID_MAX_CHARS = 200
ROW_TITLE_MAX_CHARS = 24
ROW_DESCRIPTION_MAX_CHARS = 72

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
TYPES = (
    "text",
    *MEDIA_TYPES,
    "location",
    "contacts",
    "interactive",
    "reply",
    "list",
    "reaction",
)
HEADER_TYPES = ("text", "image", "video", "document")
_NAME_PARTS = ("first_name", "last_name", "middle_name", "suffix", "prefix")
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_BIRTHDAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_T = TypeVar("_T")


class WhatsAppTextTooLong(ApiError):
    """Webex Connect's documented WhatsApp code for a text over 4096 characters, refused at the API."""

    code, title = "7714", "Message too long"


class NamespaceMismatch(ApiError):
    """Webex Connect's 7722: a template's namespace is not the one of the app's WhatsApp account."""

    code, title = "7722", "Parameter value is invalid"


# --- the normalised form -------------------------------------------------------------------------


class Text(msgspec.Struct, omit_defaults=True):
    body: str
    preview_url: bool = False


class Media(msgspec.Struct, omit_defaults=True):
    link: str | None = None  # exactly one of link and id
    id: str | None = None
    caption: str | None = None  # image, video, document
    filename: str | None = None  # document
    mime_type: str | None = None  # as given, for the record; the Cloud API takes none


class Location(msgspec.Struct, omit_defaults=True):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None


class ContactName(msgspec.Struct, omit_defaults=True):
    formatted_name: str
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None
    prefix: str | None = None


# Contact details the Cloud API takes as they are: any field may be left out.
class ContactPhone(msgspec.Struct, omit_defaults=True):
    phone: str | None = None
    type: str | None = None
    wa_id: str | None = None


class ContactEmail(msgspec.Struct, omit_defaults=True):
    email: str | None = None
    type: str | None = None


class ContactUrl(msgspec.Struct, omit_defaults=True):
    url: str | None = None
    type: str | None = None


class ContactAddress(msgspec.Struct, omit_defaults=True):
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    type: str | None = None


class ContactOrg(msgspec.Struct, omit_defaults=True):
    company: str | None = None
    department: str | None = None
    title: str | None = None


class Contact(msgspec.Struct, omit_defaults=True):
    name: ContactName
    phones: list[ContactPhone] = msgspec.field(default_factory=list)
    emails: list[ContactEmail] = msgspec.field(default_factory=list)
    urls: list[ContactUrl] = msgspec.field(default_factory=list)
    addresses: list[ContactAddress] = msgspec.field(default_factory=list)
    org: ContactOrg | None = None
    birthday: str | None = None  # YYYY-MM-DD


class Header(msgspec.Struct, omit_defaults=True):
    type: str  # text | image | video | document
    text: str | None = None
    media: Media | None = None


class ReplyButton(msgspec.Struct):
    id: str
    title: str


class Row(msgspec.Struct, omit_defaults=True):
    id: str
    title: str
    description: str | None = None


class Section(msgspec.Struct, omit_defaults=True):
    rows: list[Row]
    title: str | None = None


class Interactive(msgspec.Struct, omit_defaults=True):
    type: str  # button | list
    body: str
    header: Header | None = None
    footer: str | None = None
    buttons: list[ReplyButton] = msgspec.field(default_factory=list)  # button
    button: str | None = None  # list: the text of the button that opens it
    sections: list[Section] = msgspec.field(default_factory=list)  # list


class Reaction(msgspec.Struct):
    message_id: str
    emoji: str  # "" removes the reaction


class TemplateParameter(msgspec.Struct, omit_defaults=True):
    type: str  # text | payload | coupon_code | image | video | document
    text: str | None = None  # the value of a text, payload or coupon_code parameter
    media: Media | None = None  # image, video, document (a header's)


class TemplateComponent(msgspec.Struct, omit_defaults=True):
    type: str  # header | body | button
    parameters: list[TemplateParameter]
    sub_type: str | None = None  # button: url | quick_reply | copy_code
    index: int | None = None  # button: its position in the approved template


class TemplateMessage(msgspec.Struct, omit_defaults=True):
    name: str  # the template's name at Meta
    language: str  # e.g. en_US
    components: list[TemplateComponent] = msgspec.field(default_factory=list)
    namespace: str | None = None  # for the record: the Cloud API takes none


class WhatsAppContent(msgspec.Struct, omit_defaults=True):
    type: str  # the Cloud API's: text, image, …, location, contacts, interactive, reaction, template
    text: Text | None = None
    media: Media | None = None  # for the five media types
    location: Location | None = None
    contacts: list[Contact] | None = None
    interactive: Interactive | None = None
    reaction: Reaction | None = None
    template: TemplateMessage | None = None
    identity_key_hash: str | None = None


# --- the wire form: every field optional, numbers and flags as the documents send them -------------

Number = float | int | str
Flag = bool | str


class _WireText(msgspec.Struct):
    body: str | None = None
    preview_url: Flag | None = None


class _WireMedia(msgspec.Struct):
    url: str | None = None  # Webex Connect's name
    link: str | None = None  # the Cloud API's name
    id: str | None = None
    caption: str | None = None
    filename: str | None = None
    mimeType: str | None = None


class _WireLocation(msgspec.Struct):
    latitude: Number | None = None
    longitude: Number | None = None
    name: str | None = None
    address: str | None = None


class _WireName(msgspec.Struct):
    formatted_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None
    prefix: str | None = None


class _WireContact(msgspec.Struct):
    name: _WireName | None = None
    phones: list[ContactPhone] | None = None
    emails: list[ContactEmail] | None = None
    urls: list[ContactUrl] | None = None
    addresses: list[ContactAddress] | None = None
    org: ContactOrg | None = None
    birthday: str | None = None


class _WireHeader(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    image: _WireMedia | None = None
    video: _WireMedia | None = None
    document: _WireMedia | None = None


class _WireTextPart(msgspec.Struct):
    text: str | None = None


class _WireReply(msgspec.Struct):
    id: str | None = None
    title: str | None = None


class _WireButton(msgspec.Struct):
    type: str | None = None
    reply: _WireReply | None = None


class _WireRow(msgspec.Struct):
    id: str | None = None
    title: str | None = None
    description: str | None = None


class _WireSection(msgspec.Struct):
    title: str | None = None
    rows: list[_WireRow] | None = None


class _WireAction(msgspec.Struct):
    buttons: list[_WireButton] | None = None
    button: str | None = None
    sections: list[_WireSection] | None = None


class _WireInteractive(msgspec.Struct):
    type: str | None = None
    header: _WireHeader | None = None
    body: _WireTextPart | None = None
    footer: _WireTextPart | None = None
    action: _WireAction | None = None


class _WireReaction(msgspec.Struct):
    message_id: str | None = None
    emoji: str | None = None


class _WireWa(msgspec.Struct):
    type: str | None = None
    preview_url: Flag | None = None  # Webex Connect puts it here
    text: _WireText | None = None
    image: _WireMedia | None = None
    audio: _WireMedia | None = None
    video: _WireMedia | None = None
    document: _WireMedia | None = None
    sticker: _WireMedia | None = None
    location: _WireLocation | None = None
    contacts: list[_WireContact] | None = None
    interactive: _WireInteractive | None = None
    reply: _WireInteractive | None = None
    list_: _WireInteractive | None = msgspec.field(default=None, name="list")
    reaction: _WireReaction | None = None
    template: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)  # only as `sealed_template` made it
    seal: str | None = None
    identity_key_hash: str | None = None


_decoder = msgspec.json.Decoder(_WireWa)


def decode_whatsapp(raw: bytes, field: str) -> WhatsAppContent:
    """Check a `wa` object and return it normalised; raise the ApiError naming the field (7003 for a
    mandatory field missing, 7004 for a bad value, 7714 for a text over 4096 characters)."""
    try:
        wire = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        # Every wire field takes null (as absent); the type the caller must send is the other one.
        raise InvalidParameter(decode_error_detail(exc, field).replace(" | null`", "`")) from None
    except msgspec.DecodeError:
        raise InvalidParameter(f"{field} is not a JSON object") from None
    kind = _needed(wire.type, f"{field}.type")
    at = f"{field}.{kind}"
    content = WhatsAppContent(type=kind, identity_key_hash=wire.identity_key_hash or None)
    if kind == "text":
        content.text = _text(_given(wire.text, at), wire.preview_url, field)
    elif kind in MEDIA_TYPES:
        content.media = _media(_given(getattr(wire, kind), at), kind, at)
    elif kind == "location":
        content.location = _location(_given(wire.location, at), at)
    elif kind == "contacts":
        content.contacts = _contacts(wire.contacts, at)
    elif kind == "interactive":
        content.interactive = _interactive(_given(wire.interactive, at), None, at)
    elif kind in ("reply", "list"):
        given = wire.reply if kind == "reply" else wire.list_
        content.type = "interactive"
        content.interactive = _interactive(_given(given, at), kind, at)
    elif kind == "reaction":
        content.reaction = _reaction(_given(wire.reaction, at), at)
    elif kind == "template" and wire.template and wire.seal:
        content.template = _unsealed(wire.template, wire.seal, field)
    elif kind in ("template", "hsm"):
        raise InvalidParameter(f"{field}.type {kind!r}: a template is sent with message.template")
    else:
        raise InvalidParameter(f"{field}.type {kind!r} is not one of {', '.join(TYPES)}")
    return content


_SEAL_KEY = secrets.token_bytes(32)
_template_decoder = msgspec.json.Decoder(TemplateMessage)


def sealed_template(template: TemplateMessage) -> dict[str, Any]:
    """The `wa` object of a template message built from the registry, for `decode_whatsapp`."""
    raw = msgspec.json.encode(template)
    return {"type": "template", "template": msgspec.Raw(raw), "seal": _seal(raw)}


def _seal(raw: bytes) -> str:
    return hmac.new(_SEAL_KEY, raw, hashlib.sha256).hexdigest()


def _unsealed(raw: msgspec.Raw, seal: str, field: str) -> TemplateMessage:
    if not hmac.compare_digest(_seal(bytes(raw)), seal):
        raise InvalidParameter(f"{field}.type 'template': a template is sent with message.template")
    return _template_decoder.decode(raw)


def template_media(value: object, kind: str, where: str) -> Media:
    """A template header's media parameter: a URL, or an object as a `wa` media object is given
    (`url`/`link` or `id`, and `filename` for a document)."""
    if isinstance(value, str):
        value = {"url": value}
    try:
        wire = msgspec.convert(value, _WireMedia)
    except msgspec.ValidationError as exc:
        raise InvalidParameter(decode_error_detail(exc, where).replace(" | null`", "`")) from None
    return _media(wire, kind, where, header=True)


def _text(t: _WireText, outer_preview: Flag | None, field: str) -> Text:
    body = _needed(t.body, f"{field}.text.body")
    if len(body) > TEXT_MAX_CHARS:
        raise WhatsAppTextTooLong(
            f"{field}.text.body is {len(body)} characters; at most {TEXT_MAX_CHARS}",
            field=f"{field}.text.body",
        )
    preview = _flag(t.preview_url, f"{field}.text.preview_url")
    if preview is None:
        preview = _flag(outer_preview, f"{field}.preview_url")
    return Text(body=body, preview_url=bool(preview))


def _media(m: _WireMedia, kind: str, where: str, *, header: bool = False) -> Media:
    key, url = ("url", m.url) if m.url else ("link", m.link)
    if not url and not m.id:
        raise MandatoryMissing(f"{where}.url")
    if url and m.id:
        raise InvalidParameter(f"{where}: give {key} or id, not both")
    if url and not is_http_url(url):
        raise InvalidParameter(f"{where}.{key} must be an absolute http(s) URL")
    mime = _mime(m.mimeType, kind, f"{where}.mimeType")
    if mime is None and url and not header:
        raise MandatoryMissing(f"{where}.mimeType")
    if m.caption and (kind in ("audio", "sticker") or header):
        raise InvalidParameter(f"{where}.caption: {'a header' if header else kind} takes no caption")
    if m.caption and len(m.caption) > CAPTION_MAX_CHARS:
        raise InvalidParameter(f"{where}.caption is longer than {CAPTION_MAX_CHARS} characters")
    if m.filename and kind != "document":
        raise InvalidParameter(f"{where}.filename: only a document takes a filename")
    return Media(
        link=url or None,
        id=None if url else m.id,
        caption=m.caption or None,
        filename=m.filename or None,
        mime_type=mime,
    )


def _mime(value: str | None, kind: str, where: str) -> str | None:
    if not value:
        return None
    mime = value.strip().lower()
    if not _MIME.fullmatch(mime):
        raise InvalidParameter(f"{where} {value!r} is not a MIME type")
    wanted = {"image": "image/", "audio": "audio/", "video": "video/", "sticker": "image/webp"}
    prefix = wanted.get(kind, "")
    if not mime.startswith(prefix) or (kind == "sticker" and mime != prefix):
        raise InvalidParameter(f"{where} {value!r} does not fit a {kind} ({prefix}…)")
    return value


def _location(loc: _WireLocation, where: str) -> Location:
    return Location(
        latitude=_degrees(loc.latitude, 90, f"{where}.latitude"),
        longitude=_degrees(loc.longitude, 180, f"{where}.longitude"),
        name=loc.name or None,
        address=loc.address or None,
    )


def _degrees(value: Number | None, limit: int, where: str) -> float:
    if value is None or value == "":
        raise MandatoryMissing(where)
    try:
        degrees = float(value)
    except ValueError:
        raise InvalidParameter(f"{where} {value!r} is not a number") from None
    if not -limit <= degrees <= limit:  # also refuses nan
        raise InvalidParameter(f"{where} must be from -{limit} to {limit}")
    return degrees


def _contacts(given: list[_WireContact] | None, where: str) -> list[Contact]:
    if not given:
        raise MandatoryMissing(where)
    return [_contact(c, f"{where}[{k}]") for k, c in enumerate(given)]


def _contact(c: _WireContact, where: str) -> Contact:
    n = c.name or _WireName()
    formatted = _needed(n.formatted_name, f"{where}.name.formatted_name")
    if not any(getattr(n, part) for part in _NAME_PARTS):
        raise MandatoryMissing(f"{where}.name.{'|'.join(_NAME_PARTS)}")
    if c.birthday and not _is_date(c.birthday):
        raise InvalidParameter(f"{where}.birthday {c.birthday!r} is not a YYYY-MM-DD date")
    name = ContactName(formatted_name=formatted, **{part: getattr(n, part) or None for part in _NAME_PARTS})
    return Contact(
        name=name,
        phones=c.phones or [],
        emails=c.emails or [],
        urls=c.urls or [],
        addresses=c.addresses or [],
        org=c.org,
        birthday=c.birthday or None,
    )


def _is_date(value: str) -> bool:
    if not _BIRTHDAY.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _interactive(i: _WireInteractive, webex_kind: str | None, where: str) -> Interactive:
    if webex_kind is None:
        kind = _needed(i.type, f"{where}.type")
        if kind not in ("button", "list"):
            raise InvalidParameter(f"{where}.type {kind!r} is not one of button, list")
    else:
        kind = "button" if webex_kind == "reply" else "list"
    body = _needed(i.body.text if i.body else None, f"{where}.body.text")
    _at_most(body, INTERACTIVE_BODY_MAX_CHARS, f"{where}.body.text")
    footer = i.footer.text if i.footer else None
    if footer:
        _at_most(footer, FOOTER_MAX_CHARS, f"{where}.footer.text")
    header = None if i.header is None else _header(i.header, kind, f"{where}.header")
    action = i.action or _WireAction()
    out = Interactive(type=kind, body=body, header=header, footer=footer or None)
    if kind == "button":
        out.buttons = _buttons(action.buttons, f"{where}.action.buttons")
    else:
        out.button = _needed(action.button, f"{where}.action.button")
        _at_most(out.button, LIST_BUTTON_MAX_CHARS, f"{where}.action.button")
        out.sections = _sections(action.sections, f"{where}.action.sections")
    return out


def _header(h: _WireHeader, kind: str, where: str) -> Header:
    htype = _needed(h.type, f"{where}.type")
    allowed = HEADER_TYPES if kind == "button" else ("text",)
    if htype not in allowed:
        raise InvalidParameter(f"{where}.type {htype!r} is not one of {', '.join(allowed)}")
    if htype == "text":
        text = _needed(h.text, f"{where}.text")
        _at_most(text, HEADER_TEXT_MAX_CHARS, f"{where}.text")
        return Header(type="text", text=text)
    media = _given(getattr(h, htype), f"{where}.{htype}")
    return Header(type=htype, media=_media(media, htype, f"{where}.{htype}", header=True))


def _buttons(given: list[_WireButton] | None, where: str) -> list[ReplyButton]:
    if not given:
        raise MandatoryMissing(where)
    if len(given) > BUTTONS_MAX:
        raise InvalidParameter(f"{where}: at most {BUTTONS_MAX} buttons, {len(given)} given")
    buttons: list[ReplyButton] = []
    for k, b in enumerate(given):
        at = f"{where}[{k}]"
        if _needed(b.type, f"{at}.type") != "reply":
            raise InvalidParameter(f"{at}.type {b.type!r} must be reply")
        reply = b.reply or _WireReply()
        button = ReplyButton(
            id=_needed(reply.id, f"{at}.reply.id"), title=_needed(reply.title, f"{at}.reply.title")
        )
        _at_most(button.id, BUTTON_ID_MAX_CHARS, f"{at}.reply.id")
        _at_most(button.title, BUTTON_TITLE_MAX_CHARS, f"{at}.reply.title")
        for other in buttons:
            if button.id == other.id or button.title == other.title:
                raise InvalidParameter(f"{at}.reply: ids and titles must be unique")
        buttons.append(button)
    return buttons


def _sections(given: list[_WireSection] | None, where: str) -> list[Section]:
    if not given:
        raise MandatoryMissing(where)
    if len(given) > SECTIONS_MAX:
        raise InvalidParameter(f"{where}: at most {SECTIONS_MAX} sections, {len(given)} given")
    sections: list[Section] = []
    ids: set[str] = set()
    for k, s in enumerate(given):
        at = f"{where}[{k}]"
        if len(given) > 1:
            _needed(s.title, f"{at}.title (several sections need titles)")
        if s.title:
            _at_most(s.title, SECTION_TITLE_MAX_CHARS, f"{at}.title")
        if not s.rows:
            raise MandatoryMissing(f"{at}.rows")
        rows = [_row(r, f"{at}.rows[{j}]", ids) for j, r in enumerate(s.rows)]
        sections.append(Section(rows=rows, title=s.title or None))
    if len(ids) > ROWS_MAX:
        raise InvalidParameter(f"{where}: at most {ROWS_MAX} rows in all, {len(ids)} given")
    return sections


def _row(r: _WireRow, where: str, ids: set[str]) -> Row:
    row = Row(
        id=_needed(r.id, f"{where}.id"),
        title=_needed(r.title, f"{where}.title"),
        description=r.description or None,
    )
    _at_most(row.id, ROW_ID_MAX_CHARS, f"{where}.id")
    _at_most(row.title, ROW_TITLE_MAX_CHARS, f"{where}.title")
    if row.description:
        _at_most(row.description, ROW_DESCRIPTION_MAX_CHARS, f"{where}.description")
    if row.id in ids:
        raise InvalidParameter(f"{where}.id {row.id!r} is given twice")
    ids.add(row.id)
    return row


def _reaction(r: _WireReaction, where: str) -> Reaction:
    message_id = _needed(r.message_id, f"{where}.message_id")
    if r.emoji is None:
        raise MandatoryMissing(f"{where}.emoji")
    return Reaction(message_id=message_id, emoji=r.emoji)


def _given(value: _T | None, where: str) -> _T:
    if value is None:
        raise MandatoryMissing(where)
    return value


def _needed(value: str | None, where: str) -> str:
    if not value:
        raise MandatoryMissing(where)
    return value


def _at_most(value: str, chars: int, where: str) -> None:
    if len(value) > chars:
        raise InvalidParameter(f"{where} is longer than {chars} characters")


def _flag(value: Flag | None, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    word = value.strip().lower()
    if word in ("true", "false"):
        return word == "true"
    if not word:
        return None
    raise InvalidParameter(f"{where} must be true or false")


# --- the Cloud API body ----------------------------------------------------------------------------


def cloud_message(content: WhatsAppContent, to: str) -> dict[str, Any]:
    """The Cloud API `POST /{version}/{phone_number_id}/messages` body sending `content` to `to`."""
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": content.type,
    }
    body[content.type] = _cloud_object(content)
    return body


def _cloud_object(content: WhatsAppContent) -> Any:
    if content.text is not None:
        return {"body": content.text.body, "preview_url": content.text.preview_url}
    if content.media is not None:
        return _cloud_media(content.media)
    if content.interactive is not None:
        return _cloud_interactive(content.interactive)
    if content.template is not None:
        return _cloud_template(content.template)
    if content.contacts is not None:
        return msgspec.to_builtins(content.contacts)  # the same field names as the Cloud API's
    item = content.location or content.reaction
    if item is None:  # pragma: no cover - decode_whatsapp always fills the type's object
        raise ValueError(f"no {content.type} object")
    return msgspec.to_builtins(item)


def _cloud_media(m: Media) -> dict[str, Any]:
    out: dict[str, Any] = {"link": m.link} if m.link else {"id": m.id}
    if m.caption:
        out["caption"] = m.caption
    if m.filename:
        out["filename"] = m.filename
    return out


def _cloud_interactive(i: Interactive) -> dict[str, Any]:
    out: dict[str, Any] = {"type": i.type}
    if i.header is not None:
        h = i.header
        out["header"] = (
            {"type": "text", "text": h.text}
            if h.media is None
            else {"type": h.type, h.type: _cloud_media(h.media)}
        )
    out["body"] = {"text": i.body}
    if i.footer:
        out["footer"] = {"text": i.footer}
    if i.type == "button":
        buttons = [{"type": "reply", "reply": {"id": b.id, "title": b.title}} for b in i.buttons]
        out["action"] = {"buttons": buttons}
    else:
        sections = msgspec.to_builtins(i.sections)
        out["action"] = {"button": i.button, "sections": sections}
    return out


def _cloud_template(t: TemplateMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name, "language": {"code": t.language}}
    components = [_cloud_component(c) for c in t.components if c.parameters]
    if components:
        out["components"] = components
    return out


def _cloud_component(c: TemplateComponent) -> dict[str, Any]:
    out: dict[str, Any] = {"type": c.type}
    if c.sub_type is not None:
        out["sub_type"] = c.sub_type
    if c.index is not None:
        out["index"] = str(c.index)  # Meta's samples write the position as a string
    out["parameters"] = [_cloud_parameter(p) for p in c.parameters]
    return out


def _cloud_parameter(p: TemplateParameter) -> dict[str, Any]:
    if p.media is not None:
        return {"type": p.type, p.type: _cloud_media(p.media)}
    return {"type": p.type, p.type: p.text}
