"""SMS over the Messaging API v2: `content{type: text|unicode, text}` from a sender id of the service.

The sender rule and the stored content (`SmsContent`) are the v1 object's and the SMS API's, so the
SMPP connector and the sandbox see an SMS the same whichever API accepted it. `options.shortenLinks`
makes every https URL of the text (after substitution) a short link of the message's own, valid 180
days, as the SMS API's `shortenUrls` does; `options.trackClicks` adds a Clicked notification per click
(`trackShortUrlClicks`). `options.domain`, `tag1`, `tag2` and `allowFallbackURL` are accepted and not
used: short links live under `[server] public_url`. Placeholders without a value stay as written (free
text may hold braces); a template's are all required (intake checks them).
"""

import re
from collections.abc import Mapping
from typing import Any

from tidings.errors import InvalidParameter, MandatoryMissing
from tidings.links.smart import HTTPS_URL, SHORT_LINK_S, new_code
from tidings.schema.common import ChannelContent, msisdn, sender_id_problem
from tidings.schema.sms import SmsContent, is_configured_sender
from tidings.schema.v2_channel import V2Destination, V2Message, V2Parts
from tidings.smpp.encoding import segments
from tidings.store.base import NewLink

TEXT_MAX_CHARS = 4000  # the documents: v2 SMS text up to 4000 characters
TYPES = {"text": "1", "unicode": "4"}
LINK_OPTIONS = ("shortenLinks", "trackClicks")


class SmsV2Channel:
    address_keys: tuple[str, ...] = ("msisdn",)

    def check(self, parts: V2Parts) -> None:
        sender = parts.sender
        if not sender:
            raise MandatoryMissing("from is required: one of the service's sender ids", field="from")
        if (problem := sender_id_problem(sender)) is not None:
            raise InvalidParameter(problem, field="from")
        if not is_configured_sender(sender, parts.service.senderids):
            raise InvalidParameter(f"sender {sender!r} is not configured for this service", field="from")
        if not parts.content:
            raise MandatoryMissing("content{type, text} or template{id} is required", field="content")
        _type(parts.content)
        text = parts.content.get("text")
        if text is None or text == "":
            raise MandatoryMissing("content.text is required", field="content.text")
        if not isinstance(text, str):
            raise InvalidParameter("must be a string", field="content.text")
        if len(text) > TEXT_MAX_CHARS:
            raise InvalidParameter(f"longer than {TEXT_MAX_CHARS} characters", field="content.text")
        for name in LINK_OPTIONS:
            if name in parts.options and not isinstance(parts.options[name], bool):
                raise InvalidParameter("must be true or false", field=f"options.{name}")

    def address(self, value: object, field: str) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        try:
            return msisdn(value, field)
        except InvalidParameter as exc:
            raise InvalidParameter(exc.detail, field=field) from None

    def message(self, parts: V2Parts, to: V2Destination) -> V2Message:
        kind = _type(parts.content)
        text = str(parts.content["text"])
        if to.substitutions:
            # Imported here: templates import the config, which imports the channel specs (and so this).
            from tidings.templates import render

            text = render(text, to.substitutions, None)
        links: list[NewLink] = []
        shorten = parts.options.get("shortenLinks") is True
        track = shorten and parts.options.get("trackClicks") is True
        if shorten:
            text = _shorten(text, parts, to, track, links)
        if len(text) > TEXT_MAX_CHARS:
            raise InvalidParameter(
                f"longer than {TEXT_MAX_CHARS} characters once substituted", field="content.text"
            )
        data = SmsContent(type=TYPES[kind], senderid=parts.sender, text=text, api="v2", contentType=kind)
        if shorten:
            data.shortenUrls, data.trackShortUrlClicks = True, track
        return V2Message(ChannelContent(data, segments(text, unicode=kind == "unicode")), links)


def _type(content: Mapping[str, Any]) -> str:
    kind = content.get("type", "text")
    if not isinstance(kind, str) or kind.strip().lower() not in TYPES:
        raise InvalidParameter("must be text or unicode", field="content.type")
    return kind.strip().lower()


def _shorten(text: str, parts: V2Parts, to: V2Destination, track: bool, made: list[NewLink]) -> str:
    """Every https URL of the text as a short link of this message's own; links Tidings made already
    (a smart link's) stay as they are."""
    ours = f"{parts.public_url}/l/"

    def short(m: re.Match[str]) -> str:
        url = m.group(0)
        if url.startswith(ours):
            return url
        code = new_code()
        at = to.accepted_at
        made.append(NewLink(code, parts.service.id, to.transid, 0, at + SHORT_LINK_S, at, url, track))
        return ours + code

    return HTTPS_URL.sub(short, text) if "https://" in text else text


SMS_V2 = SmsV2Channel()
