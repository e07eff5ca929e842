"""The sandbox: every channel, simulated. Submitted at once, the final status `delay_ms` later.

An address whose last four digits are a documented failure code of its channel ends with that code
(an msisdn ending 7203 is Un-Delivered 7203); every other address is Delivered.
"""

from collections.abc import Sequence
from typing import ClassVar

from tidings.channels.base import Exchange, Inbox, Outbound, SendError, SendResult
from tidings.observe.connectors import ConnectorReport, Ledger
from tidings.specs import find
from tidings.statuses import DELIVERED, Outcome


class SandboxConnector:
    name: ClassVar[str] = "sandbox"

    def __init__(self, delay_ms: int) -> None:
        self.delay_s = delay_ms / 1000
        self.label = "sandbox"
        self.ledger = Ledger()

    async def start(self, inbox: Inbox) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, batch: Sequence[Outbound]) -> list[SendResult | SendError]:
        return self.ledger.record([self._one(m) for m in batch])

    def _one(self, m: Outbound) -> SendResult:
        outcome = outcome_for(m.channel, m.address)
        ext_id = f"sandbox-{m.transid}"
        decided = f"accepted as {ext_id}: {outcome.status.word} {outcome.code} in {self.delay_s:g} s"
        return SendResult(ext_id, outcome, self.delay_s, exchange=simulated(m, decided))

    def describe(self) -> ConnectorReport:
        return self.ledger.report()


def simulated(m: Outbound, decided: str) -> Exchange:
    """A sandbox send as a provider attempt: nothing left this process; what the sandbox decided."""
    return Exchange(f"sandbox: {m.channel} to {m.address} (nothing leaves Tidings)", decided)


def outcome_for(channel: str, address: str) -> Outcome:
    spec = find(channel)
    return spec.sandbox_outcome(address) if spec is not None else DELIVERED
