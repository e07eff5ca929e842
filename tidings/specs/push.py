"""Push, declared once: its destination keys, its request object and its documented codes
(`push_codes`)."""

from collections.abc import Sequence
from typing import Any

import msgspec

from tidings.errors import InvalidParameter
from tidings.schema.common import ChannelContent
from tidings.schema.push import PushContent, decode_push
from tidings.specs.base import ChannelSpec
from tidings.specs.push_codes import EXPIRED, PLATFORM_FAILURE, PUSH_FAILURES

# Destination keys and the platform each names (None: a user, reached on every device).
DESTINATION_KEYS: dict[str, str | None] = {
    "userid": None,
    "customerid": None,
    "android_pushid": "android",
    "ios_pushid": "ios",
    "chrome_pushid": "web",
    "firefox_pushid": "web",
    "safari_pushid": "web",
    "windows_pushid": "windows",
}
PLATFORMS = ("android", "ios", "web", "windows")
ADDRESS_MAX_CHARS = 4096  # a WNS channel URI or a web push endpoint can be long


class PushMessage(msgspec.Struct, kw_only=True):
    """A push message as stored and as the push connector receives it: the request's app and its
    checked `channels.push` object."""

    appid: str = ""
    push: PushContent


class PushAddressing:
    name: str = "push"
    path: tuple[str, ...] = ("push",)
    address_keys: tuple[str, ...] = tuple(DESTINATION_KEYS)

    def address(self, value: object, field: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise InvalidParameter(f"{field} must be a non-empty string")
        if len(value) > ADDRESS_MAX_CHARS:
            raise InvalidParameter(f"{field} is longer than {ADDRESS_MAX_CHARS} characters")
        return value.strip()

    def content(self, raw: bytes, field: str, senders: Sequence[str]) -> ChannelContent:
        return ChannelContent(PushMessage(push=decode_push(raw, field)))

    def fill_text(self, given: dict[str, Any], text: str) -> dict[str, Any]:
        """A push template's text goes into every platform block the request gave without a text (the
        windows block takes it as its one line); with no block at all, into android and ios."""
        blocks = {k: v for k, v in given.items() if k in PLATFORMS and isinstance(v, dict)}
        if not blocks:
            return {**given, "android": {"text": text}, "ios": {"text": text}}
        filled = {
            k: v if v.get("text") else {**v, "text": [text] if k == "windows" else text}
            for k, v in blocks.items()
        }
        return {**given, **filled}


PUSH = ChannelSpec(
    name="push",
    request=PushAddressing(),
    content_type=PushMessage,
    category="push",
    failures=PUSH_FAILURES,
    expired_code=EXPIRED,
    platform_code=PLATFORM_FAILURE,
    needs_app=True,
    connector="push",
    remembers_gone=True,
)
