"""Meta's webhooks, the pure part: the subscription handshake, the X-Hub-Signature-256 check, and the
payloads of WhatsApp (`whatsapp_business_account`) and Messenger (`page`) read into small typed events.

Nothing here does I/O or keeps state: the webhook route verifies, parses, stores, then answers. Each
payload is decoded once, by msgspec, into Structs that name only the fields Tidings uses (Meta adds fields
often; unknown ones are ignored). An item of a shape Tidings does not read (a WhatsApp `order`, a
Messenger `standby` or an echo of the page's own message) yields no event rather than failing the batch,
and so does an item without the ids that name it (a status without its wamid, a message without its
sender): one odd item must not make Meta send the whole batch again. Only a body that is not JSON or
not of the expected shape at all is a ValueError.

A Messenger reaction, referral (an m.me link, an ad, the chat plugin) or opt-in is read only as far as
the standard messaging window needs it (`MsOpened`): Meta counts each as the user reaching the page.
"""

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

import msgspec

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="
_T = TypeVar("_T")
MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})


# -- the handshake and the signature -------------------------------------------------------------------


def verify_signature(app_secret: str, raw: bytes, header: str | None) -> bool:
    """Whether `header` (X-Hub-Signature-256) is "sha256=" and the hex HMAC-SHA256 of the raw body under
    the app secret. Compared in constant time; an empty secret verifies nothing."""
    if not app_secret or not header or not header.startswith(_PREFIX):
        return False
    expected = hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
    # hex digits may come in either case; compare_digest wants ASCII on both sides
    given = header[len(_PREFIX) :].strip().lower()
    return given.isascii() and hmac.compare_digest(expected, given)


def sign(app_secret: str, raw: bytes) -> str:
    """The X-Hub-Signature-256 value Meta would send for `raw`."""
    return _PREFIX + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()


def handshake(query: Mapping[str, str], verify_token: str) -> str | None:
    """The challenge to answer (as text/plain) when `query` is a subscription check carrying our verify
    token, else None (answer 403)."""
    token = query.get("hub.verify_token", "")
    challenge = query.get("hub.challenge")
    if query.get("hub.mode") != "subscribe" or challenge is None or not verify_token:
        return None
    if not hmac.compare_digest(token.encode(), verify_token.encode()):
        return None
    return challenge


# -- the events ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WaError:
    code: int
    title: str
    message: str = ""
    details: str = ""  # error_data.details: Meta's fuller explanation


@dataclass(frozen=True, slots=True)
class WaStatus:
    """A status of a message we sent, matched by its wamid."""

    wamid: str
    status: str  # sent, delivered, read, failed (others may come: kept as sent)
    timestamp: int  # epoch seconds
    recipient_id: str
    phone_number_id: str
    errors: tuple[WaError, ...] = ()
    callback_data: str = ""  # biz_opaque_callback_data, as we sent it


@dataclass(frozen=True, slots=True)
class WaMedia:
    kind: str  # image, audio, video, document, sticker
    id: str  # the media id (GET /{id} resolves it to a URL)
    mime_type: str = ""
    sha256: str = ""
    caption: str = ""
    filename: str = ""


@dataclass(frozen=True, slots=True)
class WaLocation:
    latitude: float
    longitude: float
    name: str = ""
    address: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class WaPhone:
    phone: str
    wa_id: str = ""
    type: str = ""


@dataclass(frozen=True, slots=True)
class WaContact:
    formatted_name: str
    phones: tuple[WaPhone, ...] = ()
    emails: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WaReply:
    """A tap: an interactive `button_reply`/`list_reply` (id, title, description) or a template's quick
    reply `button` (its payload as id, its text as title)."""

    kind: str  # button_reply, list_reply, button
    id: str
    title: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class WaMessage:
    """A message from a WhatsApp user to our number."""

    wamid: str
    sender: str  # `from`: the user's wa_id
    timestamp: int
    type: str
    phone_number_id: str  # ours
    profile_name: str = ""
    text: str = ""  # text.body; for a reply, its title; for media, its caption
    media: WaMedia | None = None
    location: WaLocation | None = None
    contacts: tuple[WaContact, ...] = ()
    reply: WaReply | None = None
    context_id: str = ""  # the wamid this one answers
    errors: tuple[WaError, ...] = ()  # an `unsupported` message says why


@dataclass(frozen=True, slots=True)
class MsDelivery:
    """Messages to `psid` were delivered: those in `mids`, and every one sent before `watermark`."""

    psid: str
    page_id: str
    watermark: int  # epoch milliseconds
    mids: tuple[str, ...] = ()
    timestamp: int = 0


@dataclass(frozen=True, slots=True)
class MsRead:
    """`psid` read every message the page sent before `watermark`."""

    psid: str
    page_id: str
    watermark: int  # epoch milliseconds
    timestamp: int = 0


@dataclass(frozen=True, slots=True)
class MsAttachment:
    type: str  # image, audio, video, file, location, fallback, …
    url: str = ""
    title: str = ""
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True, slots=True)
class MsMessage:
    """A message from a Messenger user to our page."""

    psid: str
    page_id: str
    mid: str
    timestamp: int  # epoch milliseconds
    text: str = ""
    quick_reply: str = ""  # the tapped quick reply's payload
    attachments: tuple[MsAttachment, ...] = ()
    reply_to: str = ""  # the mid this one answers


@dataclass(frozen=True, slots=True)
class MsPostback:
    """A tap on a postback button (or Get Started)."""

    psid: str
    page_id: str
    payload: str
    title: str = ""
    mid: str = ""
    timestamp: int = 0


@dataclass(frozen=True, slots=True)
class MsOpened:
    """A user action that opens the standard messaging window but is not a message Tidings passes on:
    a `reaction` (or its removal), a `referral` or an `optin`."""

    psid: str
    page_id: str
    kind: str  # reaction, referral, optin
    detail: str  # what the action said (the emoji and the mid reacted to, the ref, the payload)
    timestamp: int = 0  # epoch milliseconds


WhatsAppEvent = WaStatus | WaMessage
MessengerEvent = MsDelivery | MsRead | MsMessage | MsPostback | MsOpened


# -- WhatsApp's payload, as much as Tidings reads of it ------------------------------------------------


class _ErrorData(msgspec.Struct):
    details: str = ""


class _Error(msgspec.Struct):
    code: int = 0
    title: str = ""
    message: str = ""
    error_data: _ErrorData | None = None


class _Status(msgspec.Struct):
    id: str = ""
    status: str = ""
    timestamp: str | int = 0
    recipient_id: str = ""
    errors: list[_Error] = []
    biz_opaque_callback_data: str = ""


class _Text(msgspec.Struct):
    body: str = ""


class _Media(msgspec.Struct):
    id: str = ""
    mime_type: str = ""
    sha256: str = ""
    caption: str = ""
    filename: str = ""


class _Location(msgspec.Struct):
    latitude: float = 0.0
    longitude: float = 0.0
    name: str = ""
    address: str = ""
    url: str = ""


class _Name(msgspec.Struct):
    formatted_name: str = ""


class _Phone(msgspec.Struct):
    phone: str = ""
    wa_id: str = ""
    type: str = ""


class _Email(msgspec.Struct):
    email: str = ""


class _Contact(msgspec.Struct):
    name: _Name = msgspec.field(default_factory=_Name)
    phones: list[_Phone] = []
    emails: list[_Email] = []


class _Choice(msgspec.Struct):
    id: str = ""
    title: str = ""
    description: str = ""


class _Interactive(msgspec.Struct):
    type: str = ""
    button_reply: _Choice | None = None
    list_reply: _Choice | None = None


class _Button(msgspec.Struct):
    payload: str = ""
    text: str = ""


class _Context(msgspec.Struct):
    id: str = ""


class _Message(msgspec.Struct, rename={"sender": "from"}):
    sender: str = ""
    id: str = ""
    type: str = ""
    timestamp: str | int = 0
    text: _Text | None = None
    image: _Media | None = None
    audio: _Media | None = None
    video: _Media | None = None
    document: _Media | None = None
    sticker: _Media | None = None
    location: _Location | None = None
    contacts: list[_Contact] = []
    interactive: _Interactive | None = None
    button: _Button | None = None
    context: _Context | None = None
    errors: list[_Error] = []


class _Profile(msgspec.Struct):
    name: str = ""


class _Sender(msgspec.Struct):
    wa_id: str = ""
    profile: _Profile | None = None


class _Metadata(msgspec.Struct):
    phone_number_id: str = ""


class _Value(msgspec.Struct):
    metadata: _Metadata = msgspec.field(default_factory=_Metadata)
    statuses: list[_Status] = []
    messages: list[_Message] = []
    contacts: list[_Sender] = []


class _Change(msgspec.Struct):
    value: _Value
    field: str = "messages"


class _WaEntry(msgspec.Struct):
    changes: list[_Change] = []


class _WaPayload(msgspec.Struct):
    object: str = ""
    entry: list[_WaEntry] = []


_WA_DECODER = msgspec.json.Decoder(_WaPayload)


def whatsapp_events(raw: bytes) -> list[WhatsAppEvent]:
    """The statuses and inbound messages of a WhatsApp webhook body, in the order Meta listed them.
    ValueError when the body is not a WhatsApp payload at all."""
    payload = _decode(_WA_DECODER, raw)
    if payload.object not in ("", "whatsapp_business_account"):
        raise ValueError(f"not a WhatsApp payload (object {payload.object!r})")
    events: list[WhatsAppEvent] = []
    for entry in payload.entry:
        for change in entry.changes:
            if change.field == "messages":
                events += _wa_value(change.value)
    return events


def _wa_value(value: _Value) -> list[WhatsAppEvent]:
    number = value.metadata.phone_number_id
    names = {c.wa_id: c.profile.name for c in value.contacts if c.profile is not None}
    events: list[WhatsAppEvent] = [
        WaStatus(
            s.id,
            s.status,
            _int(s.timestamp),
            s.recipient_id,
            number,
            _wa_errors(s.errors),
            s.biz_opaque_callback_data,
        )
        for s in value.statuses
        if s.id and s.status
    ]
    events += [_wa_message(m, number, names.get(m.sender, "")) for m in value.messages if m.id and m.sender]
    return events


def _wa_message(m: _Message, number: str, profile_name: str) -> WaMessage:
    media = _wa_media(m)
    reply = _wa_reply(m)
    text = m.text.body if m.text is not None else ""
    if not text:
        text = reply.title if reply is not None else media.caption if media is not None else ""
    location = None
    if m.location is not None:
        where = m.location
        location = WaLocation(where.latitude, where.longitude, where.name, where.address, where.url)
    return WaMessage(
        wamid=m.id,
        sender=m.sender,
        timestamp=_int(m.timestamp),
        type=m.type,
        phone_number_id=number,
        profile_name=profile_name,
        text=text,
        media=media,
        location=location,
        contacts=tuple(_wa_contact(c) for c in m.contacts),
        reply=reply,
        context_id=m.context.id if m.context is not None else "",
        errors=_wa_errors(m.errors),
    )


def _wa_media(m: _Message) -> WaMedia | None:
    if m.type not in MEDIA_TYPES:
        return None
    media: _Media | None = getattr(m, m.type)
    if media is None:
        return None
    return WaMedia(m.type, media.id, media.mime_type, media.sha256, media.caption, media.filename)


def _wa_reply(m: _Message) -> WaReply | None:
    if m.button is not None:
        return WaReply("button", m.button.payload, m.button.text)
    if m.interactive is None:
        return None
    choice = m.interactive.button_reply or m.interactive.list_reply
    if choice is None:  # an nfm_reply (a Flow's answer) or another kind Tidings does not read
        return None
    kind = "button_reply" if m.interactive.button_reply is not None else "list_reply"
    return WaReply(kind, choice.id, choice.title, choice.description)


def _wa_contact(c: _Contact) -> WaContact:
    phones = tuple(WaPhone(p.phone, p.wa_id, p.type) for p in c.phones)
    return WaContact(c.name.formatted_name, phones, tuple(e.email for e in c.emails if e.email))


def _wa_errors(errors: list[_Error]) -> tuple[WaError, ...]:
    return tuple(
        WaError(e.code, e.title, e.message, e.error_data.details if e.error_data is not None else "")
        for e in errors
    )


# -- Messenger's payload -------------------------------------------------------------------------------


class _Id(msgspec.Struct):
    id: str = ""


class _Delivery(msgspec.Struct):
    watermark: int = 0
    mids: list[str] = []


class _Read(msgspec.Struct):
    watermark: int = 0


class _QuickReply(msgspec.Struct):
    payload: str = ""


class _Coordinates(msgspec.Struct):
    lat: float | None = None
    long: float | None = None


class _AttachmentPayload(msgspec.Struct):
    url: str = ""
    title: str = ""
    coordinates: _Coordinates | None = None


class _Attachment(msgspec.Struct):
    type: str = ""
    payload: _AttachmentPayload | None = None
    title: str = ""  # a fallback or location attachment puts its title here


class _ReplyTo(msgspec.Struct):
    mid: str = ""


class _MsMessage(msgspec.Struct):
    mid: str = ""
    text: str = ""
    quick_reply: _QuickReply | None = None
    attachments: list[_Attachment] = []
    reply_to: _ReplyTo | None = None
    is_echo: bool = False


class _Postback(msgspec.Struct):
    payload: str = ""
    title: str = ""
    mid: str = ""


class _Reaction(msgspec.Struct):
    reaction: str = ""  # smile, love, like, …, other
    emoji: str = ""
    action: str = ""  # react, unreact
    mid: str = ""  # the message reacted to


class _Referral(msgspec.Struct):
    ref: str = ""
    source: str = ""  # SHORTLINK, ADS, CUSTOMER_CHAT_PLUGIN, …
    type: str = ""  # OPEN_THREAD


class _Optin(msgspec.Struct):
    type: str = ""
    payload: str = ""
    ref: str = ""


class _Messaging(msgspec.Struct):
    sender: _Id = msgspec.field(default_factory=_Id)
    recipient: _Id = msgspec.field(default_factory=_Id)
    timestamp: int = 0
    message: _MsMessage | None = None
    delivery: _Delivery | None = None
    read: _Read | None = None
    postback: _Postback | None = None
    reaction: _Reaction | None = None
    referral: _Referral | None = None
    optin: _Optin | None = None


class _MsEntry(msgspec.Struct):
    id: str = ""
    messaging: list[_Messaging] = []


class _MsPayload(msgspec.Struct):
    object: str = ""
    entry: list[_MsEntry] = []


_MS_DECODER = msgspec.json.Decoder(_MsPayload)


def messenger_events(raw: bytes) -> list[MessengerEvent]:
    """The deliveries, reads, inbound messages and postbacks of a Messenger webhook body, in order.
    ValueError when the body is not a Messenger (`page`) payload at all."""
    payload = _decode(_MS_DECODER, raw)
    if payload.object not in ("", "page"):
        raise ValueError(f"not a Messenger payload (object {payload.object!r})")
    events: list[MessengerEvent] = []
    for entry in payload.entry:
        for item in entry.messaging:
            event = _ms_event(item, entry.id or item.recipient.id)
            if event is not None:
                events.append(event)
    return events


def _ms_event(item: _Messaging, page_id: str) -> MessengerEvent | None:
    psid, when = item.sender.id, item.timestamp
    if item.delivery is not None:
        return MsDelivery(psid, page_id, item.delivery.watermark, tuple(item.delivery.mids), when)
    if item.read is not None:
        return MsRead(psid, page_id, item.read.watermark, when)
    if item.postback is not None:
        back = item.postback
        return MsPostback(psid, page_id, back.payload, back.title, back.mid, when)
    opened = _ms_opened(item, page_id)
    if opened is not None:
        return opened if psid else None  # a guest of the chat plugin has a user_ref, no PSID
    message = item.message
    if message is None or message.is_echo:  # an echo is the page's own message, sender = the page
        return None
    return MsMessage(
        psid=psid,
        page_id=page_id,
        mid=message.mid,
        timestamp=when,
        text=message.text,
        quick_reply=message.quick_reply.payload if message.quick_reply is not None else "",
        attachments=tuple(_ms_attachment(a) for a in message.attachments),
        reply_to=message.reply_to.mid if message.reply_to is not None else "",
    )


def _ms_opened(item: _Messaging, page_id: str) -> MsOpened | None:
    psid, when = item.sender.id, item.timestamp
    if item.reaction is not None:
        r = item.reaction
        detail = f"{r.action or 'react'} {r.emoji or r.reaction} {r.mid}".strip()
        return MsOpened(psid, page_id, "reaction", detail, when)
    if item.referral is not None:
        ref = item.referral
        return MsOpened(psid, page_id, "referral", f"{ref.source} {ref.ref}".strip(), when)
    if item.optin is not None:
        o = item.optin
        return MsOpened(psid, page_id, "optin", f"{o.type} {o.payload or o.ref}".strip(), when)
    return None


def _ms_attachment(a: _Attachment) -> MsAttachment:
    payload = a.payload or _AttachmentPayload()
    where = payload.coordinates or _Coordinates()
    return MsAttachment(a.type, payload.url, payload.title or a.title, where.lat, where.long)


# -- both ----------------------------------------------------------------------------------------------


def _decode(decoder: msgspec.json.Decoder[_T], raw: bytes) -> _T:
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError as exc:  # (ValidationError is one)
        raise ValueError(f"unreadable webhook body: {exc}") from None


def _int(value: str | int) -> int:
    """WhatsApp sends epoch seconds as a string; a value that is not a number reads as 0."""
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except ValueError:
        return 0
