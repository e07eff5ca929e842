"""What a channel is, declared once: `ChannelSpec`. The registry (`tidings.specs`) holds one per channel.

Everything that used to be a table keyed by the channel's name (its codes, its contact-policy category,
its routes, its request object) is a field here, so a channel cannot be half declared: a spec whose
expiry or platform code is not among its documented codes fails when the module is imported, not when
the first message expires.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from tidings.schema.common import Addressing
from tidings.statuses import DELIVERED, Outcome, Status

if TYPE_CHECKING:  # the v2 seam imports services, whose config imports the channels, which import specs
    from tidings.schema.v2_channel import V2Channel

SANDBOX_DIGITS = 4  # CONTRACT.md "Sandbox": the address's last four digits name the failure


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    # As stored with a message, named by `[routes]` and templates, and as notifications' deliveryChannel.
    name: str
    # The v1 channel object (its destination keys, address check and content decoder); None for a
    # channel v1 does not serve (email, RCS: v1 answers 7004 "not supported" for them).
    request: Addressing | None
    content_type: type[msgspec.Struct]  # what is stored with a message and what its connector receives
    category: str  # the contact-policy category its consents and caps are kept under
    failures: Mapping[str, Outcome]  # the documented failure codes (the sandbox ends an address in them)
    expired_code: str  # what a message gets when its expiry passes before it was sent
    platform_code: str  # retries ran out and the connector named no code
    aliases: tuple[str, ...] = ()  # other `deliverychannel` spellings (lower case)
    inbound_name: str = ""  # the `Channel` of an MO webhook; the name in upper case when empty
    connector: str = "sandbox"  # the connector serving it when `[routes]` names none
    needs_app: bool = False  # requests name an `appid` (CONTRACT.md "Apps"): 7003 without, 7104 unknown
    # Addresses a provider said are gone (FailureKind.GONE) are remembered per service, and messages to
    # them fail at once with the code they failed with (`Store.gone_addresses`).
    remembers_gone: bool = False
    # What a message to a remembered gone address fails with, when the channel documents a code for it
    # (email: 7240, previously bounced); when empty, the outcome the address first failed with.
    gone_code: str = ""
    # A failure's notification carries the provider's own words in `additionalInfo` (Meta's error text
    # for WhatsApp and Messenger, as Webex Connect does).
    explains_failures: bool = False
    # How a v2 request (`POST /v2/messages`) reaches this channel; None when v2 does not serve it.
    v2: "V2Channel | None" = None
    _decoder: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_decoder", msgspec.json.Decoder(self.content_type))
        if self.request is None and self.v2 is None:
            raise ValueError(f"channel {self.name}: neither v1 nor v2 serves it")
        if self.request is not None and self.request.name != self.name:
            raise ValueError(f"channel {self.name}: its request object is for {self.request.name}")
        for code in (self.expired_code, self.platform_code, *([self.gone_code] if self.gone_code else [])):
            if code not in self.failures:
                raise ValueError(f"channel {self.name}: code {code} is not among its documented failures")

    def decode_content(self, raw: bytes) -> msgspec.Struct:
        """A stored message's content as its connector receives it (decoded once, typed)."""
        content: msgspec.Struct = self._decoder.decode(raw)
        return content

    @property
    def expired(self) -> Outcome:
        return self.failures[self.expired_code]

    @property
    def platform_failure(self) -> Outcome:
        return self.failures[self.platform_code]

    def gone_outcome(self, first: Outcome) -> Outcome:
        """What a message to an address remembered as gone fails with, given what the address was
        remembered with: the channel's documented code for it (email's 7240 after a bounce), unless it
        was remembered with one of the channel's documented Failed codes, which then stands (email's
        7241 after an unsubscribe); without a gone code, that first failure (as Failed)."""
        if not self.gone_code:
            return Outcome(Status.FAILED, first.code, first.description)
        known = self.failures.get(first.code)
        if known is not None and known.status is Status.FAILED:
            return known
        return self.failures[self.gone_code]

    @property
    def destination_key(self) -> str:
        if self.request is not None:
            return self.request.address_keys[0]
        assert self.v2 is not None  # __post_init__: v1 or v2 serves every channel
        return self.v2.address_keys[0]

    @property
    def inbound_label(self) -> str:
        return self.inbound_name or self.name.upper()

    def sandbox_outcome(self, address: str) -> Outcome:
        """The sandbox's final status for an address: the documented failure its last four digits name
        (other characters ignored, so `user7203@example.com` works as `+447700907203` does), else
        Delivered."""
        digits = "".join(c for c in address if c.isascii() and c.isdigit())
        return self.failures.get(digits[-SANDBOX_DIGITS:], DELIVERED)
