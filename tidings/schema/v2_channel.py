"""What a channel says about its part of a v2 request (`POST /v2/messages`).

The v2 envelope (`tidings/schema/v2.py`) is shared by every channel: `to[]`, substitutions, receipts,
expiry, scheduling, callbacks. What differs per channel is which `to[]` key holds its addresses and how
`from`, `content` and `options` (and a few top-level fields only one channel reads, such as email's
`cc`) become the content Struct its connector receives. A channel that can be sent through v2 sets
`ChannelSpec.v2` to an object of this protocol.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tidings.schema.common import ChannelContent
from tidings.store.base import NewLink

if TYPE_CHECKING:  # services import the config, which imports the channels and their specs (and so this)
    from tidings.services import Service


@dataclass(frozen=True, slots=True)
class V2Parts:
    """The channel-specific parts of one v2 request, decoded from JSON once per request."""

    service: "Service"
    sender: str  # `from`, as given (an address, a sender id, or an app id for app channels)
    content: Mapping[str, Any]  # `content`, as a JSON object ({} when absent)
    options: Mapping[str, Any]  # `options`, as a JSON object ({} when absent)
    extra: Mapping[str, Any]  # the top-level fields the envelope does not read itself (cc, bcc, …)
    public_url: str  # `[server] public_url`, without a trailing slash: where tracking links point
    # How many addresses the request has (over all of `to[]`): email calls a request with more than one
    # a bulk send, and gives its messages List-Unsubscribe headers (RFC 8058).
    addresses: int = 1


@dataclass(frozen=True, slots=True)
class V2Destination:
    """One address of `to[]`, with what the request says about it."""

    address: str  # as `V2Channel.address` returned it
    key: str  # the `to[]` key it came from ("msisdn", "email")
    substitutions: Mapping[str, str]  # the request's substitutions, overridden by its `to[]` entry's
    correlationid: str | None
    transid: str  # the message id it will have (its `messageId`)
    accepted_at: float  # the accept time (epoch seconds)
    # Every address of its `to[]` entry, in order, itself included: email's `multipleToRecipients`
    # shows them all in one To header (and copies cc/bcc on the entry's first message only).
    group: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class V2Message:
    """What one destination's message is: its content, and links to record with it in the accept's
    transaction (click tracking, open pixels), so that a redirect only ever goes to a URL recorded when
    the message was accepted."""

    content: ChannelContent
    links: Sequence[NewLink] = ()


class V2Channel(Protocol):
    # The `to[]` keys that hold this channel's addresses, its main one first. A `to[]` entry with a key
    # of another channel is 7004.
    address_keys: tuple[str, ...]

    def check(self, parts: V2Parts) -> None:
        """Request-level checks, made once before any address: raise MandatoryMissing (7003) or
        InvalidParameter (7004) naming the field (`content.subject`, `options.trackOpens`, `cc[0]`)."""

    def address(self, value: object, field: str) -> str:
        """One address checked (7004 naming `field`, e.g. `to[0].email[2]`) and normalised."""

    def message(self, parts: V2Parts, to: V2Destination) -> V2Message:
        """One destination's message, its substitutions applied (7004 naming the field when a
        substitution makes content invalid, e.g. a text too long once filled in)."""
