"""The v1 Messenger object (`channels["OTT-Messaging"].fb`, seed 003), as the connector receives it.

`MessengerContent` and the Structs under it are the checked, normalised form; `send_api_body` turns one
into the body of Graph's `POST /{version}/me/messages` for one PSID.

`decode_messenger` decodes the object once into loose "wire" Structs (`_Wire*`: every field optional,
numbers also as strings, an attachment's payload kept as an object until its type is known) and checks
it. Every refusal names the field: 7003 (`MandatoryMissing`) when a mandatory field is missing or empty,
7004 (`InvalidParameter`) for a wrong type, value or length. Unknown fields (the seed's `"type":
"conversation"`) are ignored, as the real API ignores them.

Choices where the documents leave room:
- One of text, attachment or sender_action is mandatory. text and attachment together are 7004 (a Graph
  message carries one of them); sender_action is a request of its own, so with either it is 7004 and
  quick_replies or a notification_type beside it are 7004 too.
- `markseen` (the seed's spelling) is Graph's `mark_seen`. Enumerated words are matched in any case.
- messaging_type defaults to RESPONSE, Graph's word for a reply inside the 24-hour window. `tag` is
  mandatory with MESSAGE_TAG and refused without it; the tags are the ones Graph still takes.
- Limits the seed leaves out are Graph's: text at most 2000 characters, a button title at most 20, a
  postback payload at most 1000, a button template text at most 640. A button template needs 1-3
  buttons and a receipt its summary's total_cost and every element's price: Graph refuses either
  without them, so the request is refused before anything is queued. The seed's own button-template
  sample sends `"text": ""`, so an empty text is accepted there (the key itself is mandatory).
- A generic element's `item_url` (the seed's field) becomes Graph's `default_action` of type web_url.
- A phone_number button's payload must start with '+' (Graph's format); the seed's sample number
  (`+9177xxxxxxxx`) is a placeholder, so the digits are not checked.
- The airline templates (itinerary, check-in, boarding pass, flight update; `airline_flight_update` is
  the seed's list's name for the sample's `airline_update`) are deprecated: accepted when their
  top-level mandatory fields are there, kept as given and flagged `deprecated`, so the connector fails
  them by notification as Webex Connect does.
"""

from typing import Any, TypeVar

import msgspec

from tidings.errors import InvalidParameter, MandatoryMissing
from tidings.schema.common import decode_error_detail
from tidings.urls import is_http_url

_T = TypeVar("_T")
_S = TypeVar("_S", str, str | None)  # a checked string keeps its optionality

TEXT_MAX_CHARS = 2000
QUICK_REPLIES_MAX = 10
QUICK_REPLY_TITLE_MAX = 20
PAYLOAD_MAX_CHARS = 1000
ELEMENTS_MAX = 10
ELEMENT_TEXT_MAX = 80  # a generic element's title and subtitle
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_TEXT_MAX = 640

MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")
TAGS = (
    "ACCOUNT_UPDATE",
    "CONFIRMED_EVENT_UPDATE",
    "CUSTOMER_FEEDBACK",
    "HUMAN_AGENT",
    "POST_PURCHASE_UPDATE",
)
NOTIFICATION_TYPES = ("REGULAR", "SILENT_PUSH", "NO_PUSH")
SENDER_ACTIONS = ("mark_seen", "typing_on", "typing_off")
_ACTION_ALIASES = {"markseen": "mark_seen"}
MEDIA_TYPES = ("image", "audio", "video", "file")
QUICK_REPLY_TYPES = ("text", "location")
BUTTON_TYPES = ("web_url", "postback", "phone_number")
TEMPLATE_TYPES = (
    "generic",
    "button",
    "receipt",
    "airline_itinerary",
    "airline_checkin",
    "airline_boardingpass",
    "airline_update",
)
_TEMPLATE_ALIASES = {"airline_flight_update": "airline_update"}
# The deprecated templates' top-level mandatory fields (seed 003's tables).
AIRLINE_FIELDS: dict[str, tuple[str, ...]] = {
    "airline_itinerary": (
        "intro_message",
        "locale",
        "pnr_number",
        "passenger_info",
        "flight_info",
        "passenger_segment_info",
        "total_price",
        "currency",
    ),
    "airline_checkin": ("intro_message", "locale", "pnr_number", "flight_info", "checkin_url"),
    "airline_boardingpass": ("intro_message", "locale", "boarding_pass"),
    "airline_update": ("update_type", "locale", "pnr_number", "update_flight_info"),
}

# --- the normalised form --------------------------------------------------------------------------------


class QuickReply(msgspec.Struct, omit_defaults=True):
    content_type: str  # text | location
    title: str | None = None
    payload: str | None = None
    image_url: str | None = None


class Button(msgspec.Struct, omit_defaults=True):
    type: str  # web_url | postback | phone_number
    title: str
    url: str | None = None  # web_url
    payload: str | None = None  # postback data, or the phone number to call


class GenericElement(msgspec.Struct, omit_defaults=True):
    title: str
    subtitle: str | None = None
    image_url: str | None = None
    item_url: str | None = None  # sent as Graph's default_action
    buttons: list[Button] | None = None


class ReceiptElement(msgspec.Struct, omit_defaults=True):
    title: str
    price: int | float
    subtitle: str | None = None
    quantity: int | None = None
    currency: str | None = None
    image_url: str | None = None


class Address(msgspec.Struct, omit_defaults=True):
    street_1: str
    city: str
    postal_code: str
    state: str
    country: str
    street_2: str | None = None


class Summary(msgspec.Struct, omit_defaults=True):
    total_cost: int | float
    subtotal: int | float | None = None
    shipping_cost: int | float | None = None
    total_tax: int | float | None = None


class Adjustment(msgspec.Struct, omit_defaults=True):
    name: str | None = None
    amount: int | float | None = None


class Receipt(msgspec.Struct, omit_defaults=True):
    recipient_name: str
    order_number: str
    currency: str
    payment_method: str
    elements: list[ReceiptElement]
    summary: Summary
    timestamp: str | None = None
    order_url: str | None = None
    address: Address | None = None
    adjustments: list[Adjustment] | None = None


class Attachment(msgspec.Struct, omit_defaults=True):
    """One of: media (url or attachment_id), or one template (generic, button, receipt, airline)."""

    type: str  # image | audio | video | file | template
    url: str | None = None
    attachment_id: str | None = None
    is_reusable: bool | None = None
    template_type: str | None = None
    elements: list[GenericElement] | None = None  # generic
    text: str | None = None  # button
    buttons: list[Button] | None = None  # button
    receipt: Receipt | None = None
    airline: dict[str, Any] | None = None  # a deprecated airline template's payload, as given

    @property
    def deprecated(self) -> bool:
        return self.airline is not None


class MessengerContent(msgspec.Struct, omit_defaults=True):
    text: str | None = None
    attachment: Attachment | None = None
    quick_replies: list[QuickReply] | None = None
    sender_action: str | None = None  # mark_seen | typing_on | typing_off: a request of its own
    notification_type: str | None = None
    messaging_type: str = "RESPONSE"
    tag: str | None = None

    @property
    def deprecated(self) -> bool:
        """A deprecated airline template: Webex Connect fails it by notification."""
        return self.attachment is not None and self.attachment.deprecated


# --- the wire form: everything optional, so a missing field is 7003 rather than a type error -------------

Number = int | float | str


class _WireQuickReply(msgspec.Struct):
    content_type: str | None = None
    title: str | None = None
    payload: str | None = None
    image_url: str | None = None


class _WireAttachment(msgspec.Struct):
    type: str | None = None
    payload: dict[str, Any] | None = None


class _WireFb(msgspec.Struct):
    text: str | None = None
    attachment: _WireAttachment | None = None
    quick_replies: list[_WireQuickReply] | None = None
    sender_action: str | None = None
    notification_type: str | None = None
    messaging_type: str | None = None
    tag: str | None = None


class _WireMedia(msgspec.Struct):
    url: str | None = None
    attachment_id: str | int | None = None
    is_reusable: bool | str | None = None


class _WireButton(msgspec.Struct):
    type: str | None = None
    title: str | None = None
    url: str | None = None
    payload: str | None = None


class _WireElement(msgspec.Struct):
    title: str | None = None
    subtitle: str | None = None
    image_url: str | None = None
    item_url: str | None = None
    buttons: list[_WireButton] | None = None


class _WireGeneric(msgspec.Struct):
    elements: list[_WireElement] | None = None


class _WireButtonTemplate(msgspec.Struct):
    text: str | None = None
    buttons: list[_WireButton] | None = None


class _WireReceiptElement(msgspec.Struct):
    title: str | None = None
    subtitle: str | None = None
    quantity: int | str | None = None
    price: Number | None = None
    currency: str | None = None
    image_url: str | None = None


class _WireAddress(msgspec.Struct):
    street_1: str | None = None
    street_2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    state: str | None = None
    country: str | None = None


class _WireSummary(msgspec.Struct):
    subtotal: Number | None = None
    shipping_cost: Number | None = None
    total_tax: Number | None = None
    total_cost: Number | None = None


class _WireAdjustment(msgspec.Struct):
    name: str | None = None
    amount: Number | None = None


class _WireReceipt(msgspec.Struct):
    recipient_name: str | None = None
    order_number: str | None = None
    currency: str | None = None
    payment_method: str | None = None
    timestamp: str | int | None = None
    order_url: str | None = None
    elements: list[_WireReceiptElement] | None = None
    address: _WireAddress | None = None
    summary: _WireSummary | None = None
    adjustments: list[_WireAdjustment] | None = None


_decoder = msgspec.json.Decoder(_WireFb)


def _refused(exc: msgspec.ValidationError, field: str) -> InvalidParameter:
    # Every wire field takes null (as absent); the type the caller must send is the other one.
    return InvalidParameter(decode_error_detail(exc, field).replace(" | null`", "`"))


def decode_messenger(raw: bytes, field: str) -> MessengerContent:
    """Check a `channels["OTT-Messaging"].fb` object and return it normalised; raise the ApiError naming
    the field (7003 for a mandatory field missing, 7004 for a bad value)."""
    try:
        wire = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise _refused(exc, field) from None
    except msgspec.DecodeError:  # pragma: no cover - the envelope's decode already parsed this JSON
        raise InvalidParameter(f"{field} is not JSON") from None
    if wire.sender_action:
        return _sender_action(wire, field)
    if not wire.text and wire.attachment is None:
        raise MandatoryMissing(f"{field}.text|attachment|sender_action")
    if wire.text and wire.attachment is not None:
        raise InvalidParameter(f"{field}.attachment cannot be sent with text: a message carries one of them")
    messaging_type, tag = _messaging(wire, field)
    return MessengerContent(
        text=_text(wire.text, f"{field}.text"),
        attachment=None if wire.attachment is None else _attachment(wire.attachment, f"{field}.attachment"),
        quick_replies=_quick_replies(wire.quick_replies, f"{field}.quick_replies"),
        notification_type=_word(wire.notification_type, NOTIFICATION_TYPES, f"{field}.notification_type"),
        messaging_type=messaging_type,
        tag=tag,
    )


def _sender_action(wire: _WireFb, field: str) -> MessengerContent:
    given = wire.sender_action or ""
    action = _ACTION_ALIASES.get(given.lower(), given.lower())
    if action not in SENDER_ACTIONS:
        raise InvalidParameter(
            f"{field}.sender_action {given!r} is not one of markseen, typing_on, typing_off"
        )
    for name in ("text", "attachment", "quick_replies", "notification_type"):
        if getattr(wire, name) not in (None, "", []):
            raise InvalidParameter(f"{field}.sender_action is a request of its own: it cannot carry {name}")
    return MessengerContent(sender_action=action)


def _messaging(wire: _WireFb, field: str) -> tuple[str, str | None]:
    kind = _word(wire.messaging_type, MESSAGING_TYPES, f"{field}.messaging_type") or "RESPONSE"
    tag = _word(wire.tag, TAGS, f"{field}.tag")
    if kind == "MESSAGE_TAG" and tag is None:
        raise MandatoryMissing(f"{field}.tag (messaging_type MESSAGE_TAG needs one)")
    if kind != "MESSAGE_TAG" and tag is not None:
        raise InvalidParameter(f"{field}.tag is only for messaging_type MESSAGE_TAG")
    return kind, tag


def _text(text: str | None, where: str) -> str | None:
    if text is not None and len(text) > TEXT_MAX_CHARS:
        raise InvalidParameter(f"{where} is longer than {TEXT_MAX_CHARS} characters")
    return text or None


def _quick_replies(replies: list[_WireQuickReply] | None, where: str) -> list[QuickReply] | None:
    if not replies:
        return None
    if len(replies) > QUICK_REPLIES_MAX:
        raise InvalidParameter(f"{where} has {len(replies)} entries; at most {QUICK_REPLIES_MAX}")
    return [_quick_reply(r, f"{where}[{k}]") for k, r in enumerate(replies)]


def _quick_reply(r: _WireQuickReply, where: str) -> QuickReply:
    kind = _word(r.content_type, QUICK_REPLY_TYPES, f"{where}.content_type", upper=False)
    if kind is None:
        raise MandatoryMissing(f"{where}.content_type")
    image = _url(r.image_url, f"{where}.image_url")
    if kind == "location":
        return QuickReply(content_type=kind, image_url=image)
    title = _limited(_needed(r.title, f"{where}.title"), QUICK_REPLY_TITLE_MAX, f"{where}.title")
    payload = _limited(_needed(r.payload, f"{where}.payload"), PAYLOAD_MAX_CHARS, f"{where}.payload")
    return QuickReply(content_type=kind, title=title, payload=payload, image_url=image)


def _attachment(a: _WireAttachment, where: str) -> Attachment:
    kind = _word(a.type, (*MEDIA_TYPES, "template"), f"{where}.type", upper=False)
    if kind is None:
        raise MandatoryMissing(f"{where}.type")
    if not a.payload:
        raise MandatoryMissing(f"{where}.payload")
    at = f"{where}.payload"
    if kind in MEDIA_TYPES:
        return _media(kind, _convert(a.payload, _WireMedia, at), at)
    given = a.payload.get("template_type")
    if given is None or given == "":
        raise MandatoryMissing(f"{at}.template_type")
    if not isinstance(given, str) or _TEMPLATE_ALIASES.get(given, given) not in TEMPLATE_TYPES:
        raise InvalidParameter(f"{at}.template_type {given!r} is not one of {', '.join(TEMPLATE_TYPES)}")
    template = _TEMPLATE_ALIASES.get(given, given)
    if template == "generic":
        elements = _generic(_convert(a.payload, _WireGeneric, at), at)
        return Attachment(type=kind, template_type=template, elements=elements)
    if template == "button":
        text, buttons = _button_template(_convert(a.payload, _WireButtonTemplate, at), at)
        return Attachment(type=kind, template_type=template, text=text, buttons=buttons)
    if template == "receipt":
        receipt = _receipt(_convert(a.payload, _WireReceipt, at), at)
        return Attachment(type=kind, template_type=template, receipt=receipt)
    for name in AIRLINE_FIELDS[template]:
        if a.payload.get(name) in (None, "", [], {}):
            raise MandatoryMissing(f"{at}.{name}")
    airline = {**a.payload, "template_type": template}
    return Attachment(type=kind, template_type=template, airline=airline)


def _convert(payload: dict[str, Any], kind: type[_T], where: str) -> _T:
    try:
        return msgspec.convert(payload, kind)
    except msgspec.ValidationError as exc:
        raise _refused(exc, where) from None


def _media(kind: str, m: _WireMedia, where: str) -> Attachment:
    reusable = m.is_reusable
    if isinstance(reusable, str):
        if reusable.strip().lower() not in ("true", "false", ""):
            raise InvalidParameter(f"{where}.is_reusable must be true or false")
        reusable = None if not reusable.strip() else reusable.strip().lower() == "true"
    media_id = None if m.attachment_id in (None, "") else str(m.attachment_id)
    if media_id is None:
        url = _url(_needed(m.url, f"{where}.url"), f"{where}.url")
        return Attachment(type=kind, url=url, is_reusable=reusable)
    if m.url:
        raise InvalidParameter(f"{where}.attachment_id cannot be sent with url: give one of them")
    return Attachment(type=kind, attachment_id=media_id)


def _generic(g: _WireGeneric, where: str) -> list[GenericElement]:
    if not g.elements:
        raise MandatoryMissing(f"{where}.elements")
    if len(g.elements) > ELEMENTS_MAX:
        raise InvalidParameter(f"{where}.elements has {len(g.elements)} entries; at most {ELEMENTS_MAX}")
    return [_element(e, f"{where}.elements[{k}]") for k, e in enumerate(g.elements)]


def _element(e: _WireElement, where: str) -> GenericElement:
    return GenericElement(
        title=_limited(_needed(e.title, f"{where}.title"), ELEMENT_TEXT_MAX, f"{where}.title"),
        subtitle=_limited(e.subtitle or None, ELEMENT_TEXT_MAX, f"{where}.subtitle"),
        image_url=_url(e.image_url, f"{where}.image_url"),
        item_url=_url(e.item_url, f"{where}.item_url"),
        buttons=_buttons(e.buttons, f"{where}.buttons", needed=False),
    )


def _button_template(b: _WireButtonTemplate, where: str) -> tuple[str, list[Button]]:
    if b.text is None:
        raise MandatoryMissing(f"{where}.text")
    text = _limited(b.text, BUTTON_TEXT_MAX, f"{where}.text")
    buttons = _buttons(b.buttons, f"{where}.buttons", needed=True)
    assert buttons is not None  # needed=True refuses an empty list
    return text, buttons


def _buttons(buttons: list[_WireButton] | None, where: str, *, needed: bool) -> list[Button] | None:
    if not buttons:
        if needed:
            raise MandatoryMissing(where)
        return None
    if len(buttons) > BUTTONS_MAX:
        raise InvalidParameter(f"{where} has {len(buttons)} entries; at most {BUTTONS_MAX}")
    return [_button(b, f"{where}[{k}]") for k, b in enumerate(buttons)]


def _button(b: _WireButton, where: str) -> Button:
    kind = _word(b.type, BUTTON_TYPES, f"{where}.type", upper=False)
    if kind is None:
        raise MandatoryMissing(f"{where}.type")
    title = _limited(_needed(b.title, f"{where}.title"), BUTTON_TITLE_MAX, f"{where}.title")
    if kind == "web_url":
        url = _url(_needed(b.url, f"{where}.url"), f"{where}.url")
        return Button(type=kind, title=title, url=url)
    payload = _needed(b.payload, f"{where}.payload")
    if kind == "phone_number" and not payload.startswith("+"):
        raise InvalidParameter(f"{where}.payload must be a phone number starting with '+'")
    return Button(type=kind, title=title, payload=_limited(payload, PAYLOAD_MAX_CHARS, f"{where}.payload"))


def _receipt(r: _WireReceipt, where: str) -> Receipt:
    if not r.elements:
        raise MandatoryMissing(f"{where}.elements")
    if r.summary is None:
        raise MandatoryMissing(f"{where}.summary")
    return Receipt(
        recipient_name=_needed(r.recipient_name, f"{where}.recipient_name"),
        order_number=_needed(r.order_number, f"{where}.order_number"),
        currency=_needed(r.currency, f"{where}.currency"),
        payment_method=_needed(r.payment_method, f"{where}.payment_method"),
        elements=[_receipt_element(e, f"{where}.elements[{k}]") for k, e in enumerate(r.elements)],
        summary=_summary(r.summary, f"{where}.summary"),
        timestamp=None if r.timestamp in (None, "") else str(r.timestamp),
        order_url=_url(r.order_url, f"{where}.order_url"),
        address=None if r.address is None else _address(r.address, f"{where}.address"),
        adjustments=None
        if not r.adjustments
        else [
            Adjustment(name=a.name, amount=_number(a.amount, f"{where}.adjustments[{k}].amount"))
            for k, a in enumerate(r.adjustments)
        ],
    )


def _receipt_element(e: _WireReceiptElement, where: str) -> ReceiptElement:
    price = _number(e.price, f"{where}.price")
    if price is None:
        raise MandatoryMissing(f"{where}.price")
    quantity = _number(e.quantity, f"{where}.quantity")
    if quantity is not None and (not isinstance(quantity, int) or quantity < 0):
        raise InvalidParameter(f"{where}.quantity must be a whole number")
    return ReceiptElement(
        title=_needed(e.title, f"{where}.title"),
        price=price,
        subtitle=e.subtitle or None,
        quantity=quantity,
        currency=e.currency or None,
        image_url=_url(e.image_url, f"{where}.image_url"),
    )


def _summary(s: _WireSummary, where: str) -> Summary:
    total = _number(s.total_cost, f"{where}.total_cost")
    if total is None:
        raise MandatoryMissing(f"{where}.total_cost")
    return Summary(
        total_cost=total,
        subtotal=_number(s.subtotal, f"{where}.subtotal"),
        shipping_cost=_number(s.shipping_cost, f"{where}.shipping_cost"),
        total_tax=_number(s.total_tax, f"{where}.total_tax"),
    )


def _address(a: _WireAddress, where: str) -> Address:
    return Address(
        street_1=_needed(a.street_1, f"{where}.street_1"),
        city=_needed(a.city, f"{where}.city"),
        postal_code=_needed(a.postal_code, f"{where}.postal_code"),
        state=_needed(a.state, f"{where}.state"),
        country=_needed(a.country, f"{where}.country"),
        street_2=a.street_2 or None,
    )


# --- small checks ----------------------------------------------------------------------------------------


def _needed(value: str | None, where: str) -> str:
    if not value:
        raise MandatoryMissing(where)
    return value


def _limited(value: _S, limit: int, where: str) -> _S:
    if value is not None and len(value) > limit:
        raise InvalidParameter(f"{where} is longer than {limit} characters")
    return value


def _word(value: str | None, allowed: tuple[str, ...], where: str, *, upper: bool = True) -> str | None:
    """An enumerated value, matched in any case; "" counts as absent."""
    if not value:
        return None
    word = value.strip().upper() if upper else value.strip().lower()
    if word not in allowed:
        raise InvalidParameter(f"{where} {value!r} is not one of {', '.join(allowed)}")
    return word


def _url(value: str | None, where: str) -> str | None:
    if not value:
        return None
    if not is_http_url(value):
        raise InvalidParameter(f"{where} must be an absolute http(s) URL")
    return value


def _number(value: Number | None, where: str) -> int | float | None:
    """A number given as JSON or as a string of one; "" counts as absent."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise InvalidParameter(f"{where} {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise InvalidParameter(f"{where} {value!r} is not a number")
    return int(number) if text.lstrip("+-").isdigit() else number


# --- Graph's Send API body -------------------------------------------------------------------------------


def send_api_body(content: MessengerContent, psid: str) -> dict[str, Any]:
    """The JSON body of Graph's `POST /{version}/me/messages` sending `content` to one PSID."""
    body: dict[str, Any] = {"recipient": {"id": psid}}
    if content.sender_action is not None:
        body["sender_action"] = content.sender_action  # Graph takes nothing else beside it
        return body
    body["messaging_type"] = content.messaging_type
    if content.tag is not None:
        body["tag"] = content.tag
    if content.notification_type is not None:
        body["notification_type"] = content.notification_type
    message: dict[str, Any] = {}
    if content.text is not None:
        message["text"] = content.text
    if content.attachment is not None:
        message["attachment"] = _attachment_body(content.attachment)
    if content.quick_replies:
        message["quick_replies"] = [msgspec.to_builtins(q) for q in content.quick_replies]
    body["message"] = message
    return body


def _attachment_body(a: Attachment) -> dict[str, Any]:
    payload: dict[str, Any]
    if a.type != "template":
        if a.attachment_id is not None:
            payload = {"attachment_id": a.attachment_id}
        else:
            payload = {"url": a.url}
            if a.is_reusable is not None:
                payload["is_reusable"] = a.is_reusable
    elif a.airline is not None:
        payload = dict(a.airline)
    elif a.receipt is not None:
        payload = {"template_type": "receipt", **msgspec.to_builtins(a.receipt)}
    elif a.elements is not None:
        payload = {"template_type": "generic", "elements": [_element_body(e) for e in a.elements]}
    else:
        buttons = [msgspec.to_builtins(b) for b in a.buttons or ()]
        payload = {"template_type": "button", "text": a.text, "buttons": buttons}
    return {"type": a.type, "payload": payload}


def _element_body(e: GenericElement) -> dict[str, Any]:
    out: dict[str, Any] = {"title": e.title}
    if e.subtitle is not None:
        out["subtitle"] = e.subtitle
    if e.image_url is not None:
        out["image_url"] = e.image_url
    if e.item_url is not None:
        out["default_action"] = {"type": "web_url", "url": e.item_url}
    if e.buttons:
        out["buttons"] = [msgspec.to_builtins(b) for b in e.buttons]
    return out
