"""What every connector is: the `Connector` protocol, its results, and the one catalogue of failures.

SendError(kind, code, description)
  kind is a FailureKind; its `retryable` flag is all the dispatcher looks at:
    CONNECTION  retryable   the provider could not be reached, or the connection broke
    TIMEOUT     retryable   no answer in time
    THROTTLED   retryable   the provider asked us to slow down (costs the message no attempt)
    UNAVAILABLE retryable   no connection to the provider at all, so nothing was sent (no attempt)
    REJECTED    final       the provider refused this message (its code says why)
    INVALID     final       the message can never be sent as it is (address, sender, content)
    CONFIG      final       the connector is misconfigured (credentials, route)
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Protocol

from tidings.statuses import Outcome


class FailureKind(Enum):
    CONNECTION = "connection"
    TIMEOUT = "timeout"
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    REJECTED = "rejected"
    INVALID = "invalid"
    CONFIG = "config"

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE


_RETRYABLE = frozenset(
    {FailureKind.CONNECTION, FailureKind.TIMEOUT, FailureKind.THROTTLED, FailureKind.UNAVAILABLE}
)


class SendError(Exception):
    """A send failed. `code` is the channel's documented status code when the connector knows it."""

    def __init__(self, kind: FailureKind, description: str, code: str | None = None) -> None:
        super().__init__(description)
        self.kind = kind
        self.description = description
        self.code = code

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
    content: dict[str, Any]
    attempt: int  # 1 on the first try
    expiry: float | None = None  # epoch seconds; the provider may drop the message after it


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider took the message. `receipt` is the final status to apply `receipt_after_s` later
    unless a receipt comes first: the sandbox's known result, or what a connector that waits for receipts
    concludes when none comes (SMPP: Un-Delivered 7518 after `dlr_timeout_s`). `ext_id` is the provider's
    id for the message as its receipts will name it (`<connector>:<id>`)."""

    ext_id: str | None = None
    receipt: Outcome | None = None
    receipt_after_s: float = 0.0
    part_ids: tuple[str, ...] = ()  # each part's id, when the message went out in several parts


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
        Return within a bounded time: the connector owns its protocol's timeouts."""

    async def stop(self) -> None: ...
