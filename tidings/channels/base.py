"""What every connector is: the `Connector` protocol, its results, and the one catalogue of failures.

SendError(kind, code, description)
  kind is a FailureKind; what it means for the message is a property of the kind, and all the
  dispatcher looks at:
    kind         retry?  attempt?  why
    CONNECTION   yes     costs     the provider could not be reached, or the connection broke
    TIMEOUT      yes     costs     no answer in time
    THROTTLED    yes     free      the provider asked us to slow down: no fault of this message
    UNAVAILABLE  yes     free      no connection to the provider at all, so nothing was sent
    REJECTED     no      costs     the provider refused this message (its code says why)
    INVALID      no      costs     the message can never be sent as it is (address, sender, content)
    CONFIG       no      costs     the connector is misconfigured (credentials, route)
    GONE         no      costs     the address is gone or its user stopped (a dead push token, an
                                   unsubscribed email address): sending to it again cannot succeed, so
                                   the address is to be remembered and not tried again
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Protocol

import msgspec

from tidings.statuses import Outcome

# A message without an expiry that its provider keeps answering "not now" (a kind that costs no attempt:
# nothing sent, throttled, a mail relay's 4xx) is Expired once this old, as mail servers give up a message
# after their queue lifetime: 72 hours of trying, counted from the latest a v2 `sendAt` may put its first
# try (7 days ahead), since a transid holds only its acceptance time.
FREE_RETRY_FOR_S = (7 * 24 + 72) * 3600.0


class FailureKind(Enum):
    CONNECTION = ("connection", True, True)
    TIMEOUT = ("timeout", True, True)
    THROTTLED = ("throttled", True, False)
    UNAVAILABLE = ("unavailable", True, False)
    REJECTED = ("rejected", False, True)
    INVALID = ("invalid", False, True)
    CONFIG = ("config", False, True)
    GONE = ("gone", False, True)

    def __init__(self, word: str, retryable: bool, costs_attempt: bool) -> None:
        self.word = word
        self.retryable = retryable
        # False when the failure says nothing about this message (the provider asked us to wait, or
        # nothing was sent): retrying then must not use up the message's attempts.
        self.costs_attempt = costs_attempt

    @property
    def address_gone(self) -> bool:
        """The address will never take a message again: forget it rather than retry it."""
        return self is FailureKind.GONE


@dataclass(frozen=True, slots=True)
class Fallback:
    """Send the message by another channel instead (RCS to SMS when the number is not RCS-reachable):
    the dispatcher changes the message's channel, content and parts in the store, keeping its transid
    and its attempts, and that channel's connector sends it; its notifications name that channel."""

    channel: str
    content: bytes  # the new channel's content Struct, JSON
    parts: int = 1


@dataclass(frozen=True, slots=True)
class Exchange:
    """What one send put on the wire and what the provider answered, readable and with every secret
    removed (`tidings.channels.exchange` builds them): the message's provider attempt, as the console
    shows it."""

    request: str
    answer: str


class SendError(Exception):
    """A send failed. `code` is the channel's documented status code when the connector knows it;
    `fallback`, when set, is what to send instead (the failure is then not the message's end);
    `exchange`, what was sent and answered, when anything was."""

    def __init__(
        self,
        kind: FailureKind,
        description: str,
        code: str | None = None,
        retry_after: float | None = None,
        fallback: Fallback | None = None,
        exchange: Exchange | None = None,
    ) -> None:
        super().__init__(description)
        self.kind = kind
        self.description = description
        self.code = code
        self.retry_after = retry_after  # seconds the provider asked us to wait (Retry-After), if it did
        self.fallback = fallback
        self.exchange = exchange

    @property
    def retryable(self) -> bool:
        return self.kind.retryable


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message for one address, as a connector receives it."""

    transid: str
    service_id: str
    channel: str
    address: str
    content: msgspec.Struct  # the channel's content Struct (its spec's content_type): SmsContent, …
    attempt: int  # 1 on the first try
    expiry: float | None = None  # epoch seconds; the provider may drop the message after it
    address_type: str = ""  # the destination key the address came from (msisdn, userid, ios_pushid, …)
    priority: int = 2  # the request's: 1 high, 2 normal, 3 low


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider took the message. `receipt` is the final status to apply `receipt_after_s` later
    unless a receipt comes first: the sandbox's known result, or what a connector that waits for receipts
    concludes when none comes (SMPP: Un-Delivered 7518 after `dlr_timeout_s`). `ext_id` is the provider's
    id for the message as its receipts will name it (`<connector>:<id>`). `exchange` is what was sent
    and answered."""

    ext_id: str | None = None
    receipt: Outcome | None = None
    receipt_after_s: float = 0.0
    part_ids: tuple[str, ...] = ()  # each part's id, when the message went out in several parts
    exchange: Exchange | None = None


Ack = Callable[[bool], None]


class Inbox(Protocol):
    """Where a connector hands what its provider sends us. Each call returns at once; `ack(True)` is
    called once the item is stored (answer the provider then), `ack(False)` when it could not be (let
    the provider send it again)."""

    def receipt(self, keys: list[str], outcome: Outcome, ack: Ack) -> None:
        """A final status for the message the provider knows by one of `keys` (its `ext_id` forms)."""

    def inbound(self, channel: str, source: str, destination: str, text: str, parts: int, ack: Ack) -> None:
        """A message from a user (MO) to one of our numbers."""


class Connector(Protocol):
    name: ClassVar[str]  # the kind: sandbox, smpp, …
    label: str  # this instance, as the configuration names it

    async def start(self, inbox: Inbox) -> None: ...

    async def send(self, batch: Sequence[Outbound]) -> list[SendResult | SendError]:
        """Hand a batch to the provider: one result per message, in order, a SendError for each that
        failed. Batches let a connector pipeline (an SMPP window) and cost no task per message.
        Each result carries its `Exchange` when anything reached the provider (the message's provider
        attempt). Return within a bounded time: the connector owns its protocol's timeouts."""

    async def stop(self) -> None: ...
