"""The RCS channel's part of a v2 request (`channel: "rcs"`): `content`, `options`, and the RBM body
they become.

`content.type` (any case) is one of:

    text        {"text": "…" (≤ 1024 characters once substituted), "suggestions": [...]}
    media       {"mediaContentUrl": "https://…", "thumbnailUrl"?, "fileSize"?, "suggestions"?}
    standalone  {"richCard": {"title"?, "description"?, "orientation": "VERTICAL|HORIZONTAL",
                 "thumbnailAlignment": "LEFT|RIGHT", "media"?: {"url", "height": "SHORT|MEDIUM|TALL",
                 "thumbnailUrl"?, "fileSize"?}, "thumbnail"?: {"url"}, "suggestions"? (≤ 4)},
                 "suggestions"? (≤ 11)}
    carousel    {"richCard": {"cardWidth": "SMALL|MEDIUM", "cards": [2..10 cards as above, without
                 orientation]}, "suggestions"? (≤ 11)}

A card needs a title, a description or media. Suggestions (`type`, any case):

    reply          {displayText, postbackData}
    viewLocation   {displayText, postbackData?, latitude, longitude, label?}  or  {…, address}
    shareLocation  {displayText, postbackData?}
    openUrl        {displayText, postbackData?, url}
    calendarEvent  {displayText, postbackData?, startTime, endTime, meetingTitle, meetingDescription?}
    dialPhone      {displayText, postbackData?, phone}

`displayText` ≤ 25 characters, `postbackData` ≤ 2048 (an action without one gets its displayText,
as RBM wants postback data on every suggestion). Every refusal is 7003 (missing) or 7004 (invalid)
naming the field as the request spells it (`content.richCard.cards[1].suggestions[0].url`).

`options`: `smsFallback` (boolean), `smsSenderId` (a sender id of the service; required with
smsFallback), `text` (the SMS text; default the RCS text, else the card's title and description).
Substitutions fill `{{name}}` / `$(name)` placeholders in `content.text` and `options.text` only;
a placeholder without a value is left as written.

The stored content is `RcsMessage`: the app id (v2 `from`, set by intake), the checked content, and
the SMS to send instead (`sms`) when fallback was asked for.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from tidings.errors import InvalidParameter, MandatoryMissing
from tidings.schema.common import ChannelContent, msisdn, timestamp
from tidings.schema.sms import SmsContent, is_configured_sender
from tidings.smpp.encoding import gsm7_septets, segments
from tidings.urls import is_http_url

if TYPE_CHECKING:  # the v2 seam imports services, whose config imports the channels, which import specs
    from tidings.schema.v2_channel import V2Destination, V2Message, V2Parts

TEXT_MAX = 1024  # Webex Connect's RCS text limit, after substitution (RBM itself takes 3072)
SMS_TEXT_MAX = 4000  # the v2 SMS text limit (7107 beyond it in Webex Connect)
DISPLAY_TEXT_MAX = 25
POSTBACK_MAX = 2048
MESSAGE_SUGGESTIONS_MAX = 11
CARD_SUGGESTIONS_MAX = 4
CARD_TITLE_MAX = 200
CARD_DESCRIPTION_MAX = 2000
CALENDAR_TITLE_MAX = 100
CALENDAR_DESCRIPTION_MAX = 500
CAROUSEL_MIN, CAROUSEL_MAX = 2, 10

TYPES = ("text", "media", "standalone", "carousel")
SUGGESTION_TYPES = ("reply", "viewLocation", "shareLocation", "openUrl", "calendarEvent", "dialPhone")
HEIGHTS = ("SHORT", "MEDIUM", "TALL")
ORIENTATIONS = ("VERTICAL", "HORIZONTAL")
ALIGNMENTS = ("LEFT", "RIGHT")
WIDTHS = ("SMALL", "MEDIUM")


class RcsSuggestion(msgspec.Struct, kw_only=True, omit_defaults=True):
    type: str  # one of SUGGESTION_TYPES, as spelt there
    displayText: str
    postbackData: str = ""
    url: str = ""  # openUrl
    phone: str = ""  # dialPhone, E.164
    latitude: float | None = None  # viewLocation
    longitude: float | None = None
    label: str = ""  # viewLocation: the pin's label
    address: str = ""  # viewLocation by query instead of coordinates
    startTime: str = ""  # calendarEvent, RFC 3339 in UTC
    endTime: str = ""
    meetingTitle: str = ""
    meetingDescription: str = ""


class RcsMedia(msgspec.Struct, kw_only=True, omit_defaults=True):
    url: str
    thumbnailUrl: str = ""
    height: str = ""  # SHORT, MEDIUM or TALL (cards only)


class RcsCard(msgspec.Struct, kw_only=True, omit_defaults=True):
    title: str = ""
    description: str = ""
    media: RcsMedia | None = None
    suggestions: list[RcsSuggestion] = []


class RcsContent(msgspec.Struct, kw_only=True, omit_defaults=True):
    type: str  # text, media, standalone, carousel
    text: str = ""
    media: RcsMedia | None = None  # type media
    card: RcsCard | None = None  # type standalone
    orientation: str = ""
    thumbnailAlignment: str = ""
    cards: list[RcsCard] = []  # type carousel
    cardWidth: str = ""
    suggestions: list[RcsSuggestion] = []  # the message's own chips


class RcsMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An RCS message as stored and as its connector receives it."""

    appid: str = ""
    rcs: RcsContent
    sms: SmsContent | None = None  # what goes out instead when the number is not RCS-reachable


# -- reading the request -------------------------------------------------------------------------------


def _obj(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidParameter(f"{field} must be an object")
    return value


def _str(obj: Mapping[str, Any], key: str, field: str, *, need: bool = False, limit: int = 0) -> str:
    value = obj.get(key)
    where = f"{field}.{key}"
    if value is None or value == "":
        if need:
            raise MandatoryMissing(where)
        return ""
    if not isinstance(value, str):
        raise InvalidParameter(f"{where} must be a string")
    if limit and len(value) > limit:
        raise InvalidParameter(f"{where} is longer than {limit} characters")
    return value


def _choice(
    obj: Mapping[str, Any], key: str, field: str, allowed: tuple[str, ...], *, need: bool = False
) -> str:
    value = _str(obj, key, field, need=need)
    if not value:
        return ""
    found = next((a for a in allowed if a.lower() == value.lower()), None)
    if found is None:
        raise InvalidParameter(f"{field}.{key} must be one of {', '.join(allowed)}")
    return found


def _url(obj: Mapping[str, Any], key: str, field: str, *, need: bool = False) -> str:
    value = _str(obj, key, field, need=need)
    if value and not is_http_url(value):
        raise InvalidParameter(f"{field}.{key} must be an http(s) URL")
    return value


def _number(obj: Mapping[str, Any], key: str, field: str, low: float, high: float) -> float:
    value = obj.get(key)
    if value is None or value == "":
        raise MandatoryMissing(f"{field}.{key}")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidParameter(f"{field}.{key} must be a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidParameter(f"{field}.{key} must be a number from {low:g} to {high:g}")
    return float(value)


def _list(obj: Mapping[str, Any], key: str, field: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidParameter(f"{field}.{key} must be an array")
    return value


def suggestions(obj: Mapping[str, Any], field: str, limit: int) -> list[RcsSuggestion]:
    items = _list(obj, "suggestions", field)
    if len(items) > limit:
        raise InvalidParameter(f"{field}.suggestions has more than {limit} entries")
    return [suggestion(item, f"{field}.suggestions[{i}]") for i, item in enumerate(items)]


def suggestion(value: object, field: str) -> RcsSuggestion:
    obj = _obj(value, field)
    kind = _choice(obj, "type", field, SUGGESTION_TYPES, need=True)
    text = _str(obj, "displayText", field, need=True, limit=DISPLAY_TEXT_MAX)
    postback = _str(obj, "postbackData", field, need=kind == "reply", limit=POSTBACK_MAX)
    s = RcsSuggestion(type=kind, displayText=text, postbackData=postback or text)
    if kind == "openUrl":
        s.url = _url(obj, "url", field, need=True)
    elif kind == "dialPhone":
        phone = obj.get("phone")
        if phone in (None, ""):
            raise MandatoryMissing(f"{field}.phone")
        s.phone = msisdn(phone, f"{field}.phone")
    elif kind == "viewLocation":
        s.address = _str(obj, "address", field, limit=POSTBACK_MAX)
        if not s.address or obj.get("latitude") is not None or obj.get("longitude") is not None:
            s.latitude = _number(obj, "latitude", field, -90, 90)
            s.longitude = _number(obj, "longitude", field, -180, 180)
        s.label = _str(obj, "label", field, limit=POSTBACK_MAX)
    elif kind == "calendarEvent":
        start = _time(obj, "startTime", field)
        end = _time(obj, "endTime", field)
        if end <= start:
            raise InvalidParameter(f"{field}.endTime must be after {field}.startTime")
        s.startTime, s.endTime = _rfc3339(start), _rfc3339(end)
        s.meetingTitle = _str(obj, "meetingTitle", field, need=True, limit=CALENDAR_TITLE_MAX)
        s.meetingDescription = _str(obj, "meetingDescription", field, limit=CALENDAR_DESCRIPTION_MAX)
    return s


def _time(obj: Mapping[str, Any], key: str, field: str) -> float:
    value = obj.get(key)
    if value is None or value == "":
        raise MandatoryMissing(f"{field}.{key}")
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise InvalidParameter(f"{field}.{key} must be an ISO 8601 time")
    return timestamp(value, f"{field}.{key}")


def _rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _media(value: object, field: str, *, card: bool) -> RcsMedia:
    obj = _obj(value, field)
    media = RcsMedia(url=_url(obj, "url", field, need=True), thumbnailUrl=_url(obj, "thumbnailUrl", field))
    if card:
        media.height = _choice(obj, "height", field, HEIGHTS) or "MEDIUM"
    _file_size(obj, field)
    return media


def _file_size(obj: Mapping[str, Any], field: str) -> None:
    # Informative only (RBM fetches the file and learns its size); checked so a typo is noticed.
    for key in ("fileSize", "filesize"):
        value = obj.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidParameter(f"{field}.{key} must be a whole number of bytes")


def card(value: object, field: str) -> RcsCard:
    obj = _obj(value, field)
    c = RcsCard(
        title=_str(obj, "title", field, limit=CARD_TITLE_MAX),
        description=_str(obj, "description", field, limit=CARD_DESCRIPTION_MAX),
        suggestions=suggestions(obj, field, CARD_SUGGESTIONS_MAX),
    )
    if obj.get("media") is not None:
        c.media = _media(obj["media"], f"{field}.media", card=True)
    thumbnail = obj.get("thumbnail")
    if thumbnail is not None and c.media is not None and not c.media.thumbnailUrl:
        c.media.thumbnailUrl = _url(_obj(thumbnail, f"{field}.thumbnail"), "url", f"{field}.thumbnail")
    if not (c.title or c.description or c.media):
        raise MandatoryMissing(f"{field}.title (a card needs a title, a description or media)")
    return c


def read_content(content: Mapping[str, Any]) -> RcsContent:
    """`content` checked and normalised, its text not yet substituted (7003/7004 naming the field)."""
    field = "content"
    kind = _choice(content, "type", field, TYPES, need=True)
    out = RcsContent(type=kind, suggestions=suggestions(content, field, MESSAGE_SUGGESTIONS_MAX))
    if kind == "text":
        # The limit is checked again once substituted, per address.
        out.text = _str(content, "text", field, need=True)
    elif kind == "media":
        url = content.get("mediaContentUrl") if "mediaContentUrl" in content else content.get("url")
        key = "mediaContentUrl" if "mediaContentUrl" in content or "url" not in content else "url"
        out.media = RcsMedia(url=_url({key: url}, key, field, need=True))
        out.media.thumbnailUrl = _url(content, "thumbnailUrl", field)
        _file_size(content, field)
    else:
        rich = content.get("richCard")
        if rich is None:
            raise MandatoryMissing(f"{field}.richCard")
        rich = _obj(rich, f"{field}.richCard")
        where = f"{field}.richCard"
        if kind == "standalone":
            out.card = card(rich, where)
            out.orientation = _choice(rich, "orientation", where, ORIENTATIONS) or "VERTICAL"
            out.thumbnailAlignment = _choice(rich, "thumbnailAlignment", where, ALIGNMENTS) or "LEFT"
        else:
            out.cardWidth = _choice(rich, "cardWidth", where, WIDTHS) or "MEDIUM"
            cards = _list(rich, "cards", where)
            if not CAROUSEL_MIN <= len(cards) <= CAROUSEL_MAX:
                raise InvalidParameter(f"{where}.cards must hold {CAROUSEL_MIN} to {CAROUSEL_MAX} cards")
            out.cards = [card(c, f"{where}.cards[{i}]") for i, c in enumerate(cards)]
    return out


class Fallback(msgspec.Struct, frozen=True):
    senderid: str
    text: str  # options.text as given (placeholders not filled yet); "" for the RCS text


def read_options(options: Mapping[str, Any], senders: tuple[str, ...]) -> Fallback | None:
    """The SMS fallback `options` ask for, or None (7003/7004 naming the field)."""
    field = "options"
    wanted = options.get("smsFallback")
    if wanted is None or wanted is False:
        return None
    if not isinstance(wanted, bool):
        raise InvalidParameter(f"{field}.smsFallback must be true or false")
    sender = options.get("smsSenderId")
    if sender is None or sender == "":
        raise MandatoryMissing(f"{field}.smsSenderId (required with smsFallback)")
    if not isinstance(sender, str | int) or isinstance(sender, bool):
        raise InvalidParameter(f"{field}.smsSenderId must be a string")
    sender = str(sender)
    if not is_configured_sender(sender, senders):
        raise InvalidParameter(f"{field}.smsSenderId {sender!r} is not configured for this service")
    return Fallback(sender, _str(options, "text", field, limit=SMS_TEXT_MAX))


def card_text(content: RcsContent) -> str:
    """What an SMS says for a message without text: its cards' titles and descriptions."""
    cards = [content.card] if content.card is not None else content.cards
    lines = [x for c in cards for x in (c.title, c.description) if x]
    if content.media is not None:
        lines.append(content.media.url)
    return "\n".join(lines)


def fallback_sms(
    fallback: Fallback, content: RcsContent, values: Mapping[str, str]
) -> tuple[SmsContent, int]:
    """The SMS sent instead, and its parts; 7004 naming `options.text` when it is too long filled in."""
    text = substitute(fallback.text, values) if fallback.text else content.text or card_text(content)
    if not text:
        raise MandatoryMissing("options.text (the message has no text an SMS could carry)")
    if len(text) > SMS_TEXT_MAX:
        raise InvalidParameter(f"options.text is longer than {SMS_TEXT_MAX} characters once substituted")
    unicode = gsm7_septets(text) is None
    return SmsContent(type="4" if unicode else "1", senderid=fallback.senderid, text=text), segments(
        text, unicode=unicode
    )


def substitute(text: str, values: Mapping[str, str]) -> str:
    """`text` with its placeholders filled from `values`; one without a value is left as written."""
    from tidings.templates import render  # (templates read the config, which reads the channels)

    return render(text, values, None)


# -- the RBM body --------------------------------------------------------------------------------------


def agent_message(content: RcsContent) -> dict[str, Any]:
    """The RBM `AgentMessage` body for one message: `{"contentMessage": AgentContentMessage}`.

    text → `text`; media → `contentInfo{fileUrl, thumbnailUrl}`; standalone →
    `richCard.standaloneCard{cardOrientation, thumbnailImageAlignment (horizontal cards only),
    cardContent}`; carousel → `richCard.carouselCard{cardWidth, cardContents}`. A card's content is
    `{title, description, media{height, contentInfo}, suggestions}`; the message's chips are
    `contentMessage.suggestions`. Suggestions: reply → `reply{text, postbackData}`; the others
    `action{text, postbackData, <kind>Action}`: openUrlAction{url}, dialAction{phoneNumber},
    viewLocationAction{latLong{latitude, longitude}, label} or {query}, shareLocationAction{},
    createCalendarEventAction{startTime, endTime, title, description}."""
    message: dict[str, Any] = {}
    if content.type == "text":
        message["text"] = content.text
    elif content.type == "media" and content.media is not None:
        message["contentInfo"] = _content_info(content.media)
    elif content.type == "standalone" and content.card is not None:
        standalone: dict[str, Any] = {"cardOrientation": content.orientation or "VERTICAL"}
        if standalone["cardOrientation"] == "HORIZONTAL":
            standalone["thumbnailImageAlignment"] = content.thumbnailAlignment or "LEFT"
        standalone["cardContent"] = _card(content.card)
        message["richCard"] = {"standaloneCard": standalone}
    else:
        carousel = {
            "cardWidth": content.cardWidth or "MEDIUM",
            "cardContents": [_card(c) for c in content.cards],
        }
        message["richCard"] = {"carouselCard": carousel}
    if content.suggestions:
        message["suggestions"] = [_suggestion(s) for s in content.suggestions]
    return {"contentMessage": message}


def _content_info(media: RcsMedia) -> dict[str, Any]:
    info: dict[str, Any] = {"fileUrl": media.url}
    if media.thumbnailUrl:
        info["thumbnailUrl"] = media.thumbnailUrl
    return info


def _card(c: RcsCard) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if c.title:
        out["title"] = c.title
    if c.description:
        out["description"] = c.description
    if c.media is not None:
        out["media"] = {"height": c.media.height or "MEDIUM", "contentInfo": _content_info(c.media)}
    if c.suggestions:
        out["suggestions"] = [_suggestion(s) for s in c.suggestions]
    return out


def _suggestion(s: RcsSuggestion) -> dict[str, Any]:
    if s.type == "reply":
        return {"reply": {"text": s.displayText, "postbackData": s.postbackData}}
    action: dict[str, Any] = {"text": s.displayText, "postbackData": s.postbackData}
    if s.type == "openUrl":
        action["openUrlAction"] = {"url": s.url}
    elif s.type == "dialPhone":
        action["dialAction"] = {"phoneNumber": s.phone}
    elif s.type == "shareLocation":
        action["shareLocationAction"] = {}
    elif s.type == "viewLocation":
        where: dict[str, Any] = {}
        if s.latitude is not None and s.longitude is not None:
            where["latLong"] = {"latitude": s.latitude, "longitude": s.longitude}
        else:
            where["query"] = s.address
        if s.label:
            where["label"] = s.label
        action["viewLocationAction"] = where
    else:
        event = {"startTime": s.startTime, "endTime": s.endTime, "title": s.meetingTitle}
        if s.meetingDescription:
            event["description"] = s.meetingDescription
        action["createCalendarEventAction"] = event
    return {"action": action}


# -- the v2 seam ---------------------------------------------------------------------------------------


class RcsV2:
    """`ChannelSpec.v2` for RCS: `to[].msisdn`, `from` an app id (checked by intake, 7104)."""

    address_keys: tuple[str, ...] = ("msisdn",)

    def check(self, parts: "V2Parts") -> None:
        read_content(parts.content)
        read_options(parts.options, parts.service.senderids)

    def address(self, value: object, field: str) -> str:
        return msisdn(value, field)

    def message(self, parts: "V2Parts", to: "V2Destination") -> "V2Message":
        from tidings.schema.v2_channel import V2Message

        content = read_content(parts.content)
        if content.text:
            content.text = substitute(content.text, to.substitutions)
            if len(content.text) > TEXT_MAX:
                raise InvalidParameter(f"content.text is longer than {TEXT_MAX} characters once substituted")
        message = RcsMessage(appid=parts.sender, rcs=content)
        fallback = read_options(parts.options, parts.service.senderids)
        if fallback is not None:
            message.sms, _ = fallback_sms(fallback, content, to.substitutions)
        return V2Message(ChannelContent(message))


RCS_V2 = RcsV2()
