"""WhatsApp, declared once (issue 12): `deliverychannel: "whatsapp"`, `channels["OTT-Messaging"].wa`,
destinations `waid` and `msisdn` (both a phone number in E.164), Webex Connect's WhatsApp codes."""

from collections.abc import Sequence
from typing import Any

import msgspec

from tidings.schema.common import ChannelContent, msisdn
from tidings.schema.whatsapp import WhatsAppContent, decode_whatsapp
from tidings.specs.base import ChannelSpec
from tidings.specs.meta_common import OTT, inner_object, with_text
from tidings.specs.whatsapp_codes import EXPIRED, PLATFORM_FAILURE, WHATSAPP_FAILURES


class WhatsAppMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A WhatsApp message as stored and as its connector receives it: the request's app (a WhatsApp
    number) and its checked object. A REST API message also keeps `rest`, the request's own fields as
    sent (a JSON object, for its GET): left raw, so the dispatcher's decode of each message does not
    parse it, and absent on v1 messages and on rows stored before it existed."""

    appid: str = ""
    wa: WhatsAppContent
    rest: msgspec.Raw = msgspec.Raw()


class WhatsAppAddressing:
    name: str = "whatsapp"
    path: tuple[str, ...] = (OTT, "wa")
    address_keys: tuple[str, ...] = ("waid", "msisdn")

    def address(self, value: object, field: str) -> str:
        return msisdn(value, field)

    def content(self, raw: bytes, field: str, senders: Sequence[str]) -> ChannelContent:
        return ChannelContent(WhatsAppMessage(wa=decode_whatsapp(inner_object(raw, "wa", field), field)))

    def fill_text(self, given: dict[str, Any], text: str) -> dict[str, Any]:
        return with_text(given, "wa", {"type": "text", "text": {"body": text}})


WHATSAPP = ChannelSpec(
    name="whatsapp",
    request=WhatsAppAddressing(),
    content_type=WhatsAppMessage,
    category="whatsapp",
    failures=WHATSAPP_FAILURES,
    expired_code=EXPIRED,
    platform_code=PLATFORM_FAILURE,
    connector="whatsapp",
    needs_app=True,
    explains_failures=True,
)
