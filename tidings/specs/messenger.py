"""Facebook Messenger, declared once (issue 12): `deliverychannel: "fb"` (or `messenger`),
`channels["OTT-Messaging"].fb`, destinations `psid` (a page-scoped user id), Webex Connect's Messenger
codes; notifications name it `fb`."""

from collections.abc import Sequence
from typing import Any

import msgspec

from tidings.errors import InvalidParameter
from tidings.schema.common import ChannelContent
from tidings.schema.messenger import MessengerContent, decode_messenger
from tidings.specs.base import ChannelSpec
from tidings.specs.messenger_codes import EXPIRED, MESSENGER_FAILURES, PLATFORM_FAILURE
from tidings.specs.meta_common import OTT, inner_object, with_text

PSID_MAX_CHARS = 64


class MessengerMessage(msgspec.Struct, kw_only=True):
    """A Messenger message as stored and as its connector receives it: the request's app (a page)
    and its checked object."""

    appid: str = ""
    fb: MessengerContent


class MessengerAddressing:
    name: str = "fb"
    path: tuple[str, ...] = (OTT, "fb")
    address_keys: tuple[str, ...] = ("psid",)

    def address(self, value: object, field: str) -> str:
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            raise InvalidParameter(f"{field} must be a page-scoped id")
        psid = str(value).strip()
        if len(psid) > PSID_MAX_CHARS or not psid.isascii() or not psid.isdigit():
            raise InvalidParameter(f"{field} {psid!r} is not a page-scoped id (digits)")
        return psid

    def content(self, raw: bytes, field: str, senders: Sequence[str]) -> ChannelContent:
        return ChannelContent(MessengerMessage(fb=decode_messenger(inner_object(raw, "fb", field), field)))

    def fill_text(self, given: dict[str, Any], text: str) -> dict[str, Any]:
        return with_text(given, "fb", {"text": text})


MESSENGER = ChannelSpec(
    name="fb",
    aliases=("messenger",),
    request=MessengerAddressing(),
    content_type=MessengerMessage,
    category="messenger",
    failures=MESSENGER_FAILURES,
    expired_code=EXPIRED,
    platform_code=PLATFORM_FAILURE,
    connector="messenger",
    needs_app=True,
    explains_failures=True,
    remembers_gone=True,
)
