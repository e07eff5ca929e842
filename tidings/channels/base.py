"""What every connector is: the `Connector` protocol, its results, and the one catalogue of failures.

SendError(kind, code, description)
  kind is a FailureKind; its `retryable` flag is all the dispatcher looks at:
    CONNECTION  retryable   the provider could not be reached, or the connection broke
    TIMEOUT     retryable   no answer in time
    THROTTLED   retryable   the provider asked us to slow down
    REJECTED    final       the provider refused this message (its code says why)
    INVALID     final       the message can never be sent as it is (address, sender, content)
    CONFIG      final       the connector is misconfigured (credentials, route)
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Protocol

from tidings.statuses import Outcome


class FailureKind(Enum):
    CONNECTION = "connection"
    TIMEOUT = "timeout"
    THROTTLED = "throttled"
    REJECTED = "rejected"
    INVALID = "invalid"
    CONFIG = "config"

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE


_RETRYABLE = frozenset({FailureKind.CONNECTION, FailureKind.TIMEOUT, FailureKind.THROTTLED})


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


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider took the message. `receipt` is a final status the connector already knows, to be
    applied `receipt_after_s` later (the sandbox); real connectors report receipts as they arrive."""

    ext_id: str | None = None
    receipt: Outcome | None = None
    receipt_after_s: float = 0.0


class Connector(Protocol):
    name: ClassVar[str]

    async def start(self) -> None: ...

    async def send(self, batch: Sequence[Outbound]) -> list[SendResult | SendError]:
        """Hand a batch to the provider: one result per message, in order, a SendError for each that
        failed. Batches let a connector pipeline (an SMPP window) and cost no task per message.
        Return within a bounded time: the connector owns its protocol's timeouts."""

    async def stop(self) -> None: ...
