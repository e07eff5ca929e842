"""What providers send us: receipts for our messages, and users' messages to our numbers.

Receipts arriving in the same moment are applied in one call (an SMSC sends them thousands a second):
each message's final status, history entry and notification in one transaction. Each receipt is
acknowledged to the provider only once that is committed, so a crash before then makes the provider
send it again rather than lose it. An inbound message is kept, queued for its service's
`inbound_url` and, for a STOP / START keyword, recorded as an opt-out / opt-in, in one transaction.
"""

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from tidings import clock, ids
from tidings.channels.base import Ack
from tidings.dispatch.worker import notification_for
from tidings.notify.payloads import deliverable
from tidings.services import Service, ServiceRegistry
from tidings.specs import find as find_spec
from tidings.statuses import Outcome
from tidings.store.base import (
    ConsentChange,
    InboundMessage,
    IncomingReceipt,
    OutgoingNotification,
    ReceiptTarget,
    Store,
)

log = logging.getLogger("tidings.inbox")

OPT_OUT = frozenset({"STOP", "UNSUBSCRIBE", "END", "QUIT", "CANCEL"})
OPT_IN = frozenset({"START", "UNSTOP"})


class Inbox:
    def __init__(
        self,
        store: Store,
        services: ServiceRegistry,
        on_notifications: Callable[[], None],
    ) -> None:
        self.store = store
        self.services = services
        self.on_notifications = on_notifications
        self._receipts: list[tuple[IncomingReceipt, Ack]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def receipt(self, keys: list[str], outcome: Outcome, ack: Ack) -> None:
        if not self._receipts:
            asyncio.get_running_loop().call_soon(self._flush_receipts)
        self._receipts.append((IncomingReceipt(keys, outcome, clock.now()), ack))

    def inbound(self, channel: str, source: str, destination: str, text: str, parts: int, ack: Ack) -> None:
        self._spawn(self._store_inbound(channel, source, destination, text, parts, ack))

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _flush_receipts(self) -> None:
        batch, self._receipts = self._receipts, []
        if batch:
            self._spawn(self._store_receipts(batch))

    async def _store_receipts(self, batch: list[tuple[IncomingReceipt, Ack]]) -> None:
        try:
            await self.store.apply_receipts([r for r, _ in batch], self._notice)
        except Exception:
            log.exception("storing %d receipts failed; the provider will send them again", len(batch))
            for _, ack in batch:
                ack(False)
            return
        for _, ack in batch:
            ack(True)
        self.on_notifications()

    def _notice(self, target: ReceiptTarget, outcome: Outcome, at: float) -> OutgoingNotification | None:
        return notification_for(self.services, target, outcome, at)

    async def _store_inbound(
        self, channel: str, source: str, destination: str, text: str, parts: int, ack: Ack
    ) -> None:
        service = self.services.by_number(destination)
        now = clock.now()
        message = InboundMessage(
            ids.new_id(), service.id if service else None, channel, source, destination, text, parts, now
        )
        if service is None:
            log.warning(
                "inbound %s to %s: no service owns that number; kept, not forwarded", channel, destination
            )
        try:
            await self.store.record_inbound(
                message, _webhook(service, message), _keyword_consent(service, message)
            )
        except Exception:
            log.exception("storing an inbound message failed; the provider will send it again")
            ack(False)
            return
        ack(True)
        self.on_notifications()


def inbound_records(
    service: Service | None, m: InboundMessage, extra: Mapping[str, Any] | None = None, keywords: bool = True
) -> tuple[OutgoingNotification | None, ConsentChange | None]:
    """What `Store.record_inbound` keeps with an inbound message of any channel: the webhook to its
    service's `inbound_url` (the SMS MO fields, plus the channel's own `extra` ones) and, with
    `keywords`, the opt-out / opt-in a STOP / START keyword records."""
    return _webhook(service, m, extra), _keyword_consent(service, m) if keywords else None


def _webhook(
    service: Service | None, m: InboundMessage, extra: Mapping[str, Any] | None = None
) -> OutgoingNotification | None:
    if service is None or not service.inbound_url or not deliverable(service.inbound_url):
        return None
    body: dict[str, Any] = {
        "userId": "",
        "Channel": _inbound_label(m.channel),
        "da": _number_as_configured(service, m.destination),
        "oa": m.source,
        "message": m.text,
        "messageCount": str(m.parts),
        "tid": m.tid,
        "datetime": datetime.fromtimestamp(m.at, UTC).isoformat(timespec="milliseconds"),
        **(extra or {}),
    }
    return OutgoingNotification(ids.new_id(), service.inbound_url, msgspec.json.encode(body))


def _inbound_label(channel: str) -> str:
    spec = find_spec(channel)
    return spec.inbound_label if spec is not None else channel.upper()


def _number_as_configured(service: Service, number: str) -> str:
    digits = number.removeprefix("+")
    for candidate in (digits, digits.removeprefix("00")):
        for n in service.numbers:
            if n.removeprefix("+") == candidate:
                return n
    return number


def _keyword_consent(service: Service | None, m: InboundMessage) -> ConsentChange | None:
    word = m.text.strip().upper()
    spec = find_spec(m.channel)
    category = spec.category if spec is not None else None
    if service is None or category is None or (word not in OPT_OUT and word not in OPT_IN):
        return None
    return ConsentChange(
        service_id=service.id,
        group_id="",
        channel=category,
        address=m.source,
        consent=word in OPT_IN,
        reason=f"keyword {word}",
        source=f"inbound {m.channel} to {m.destination}",
        expires=None,
        at=m.at,
    )
