"""The dispatcher: claims due messages in batches, sends them, and records what happened.

A claimed message is either Queued (send it, or expire it when its expiry has passed) or Submitted with
a receipt its connector scheduled (apply it). Every status change is recorded with its time, together
with the notification that reports it, in one store transaction per batch.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

import msgspec

from tidings import clock, ids
from tidings.channels.base import FREE_RETRY_FOR_S, Connector, FailureKind, Outbound, SendError, SendResult
from tidings.notify.payloads import deliverable, delivery_info
from tidings.observe.metrics import METRICS
from tidings.policy.contact import REFUSALS, UNKNOWN_GROUP, GroupRegistry, PolicyCheck
from tidings.services import ServiceRegistry
from tidings.specs import find as find_spec
from tidings.specs import spec as channel_spec
from tidings.statuses import SUBMITTED, Outcome, Status
from tidings.store.base import (
    DueMessage,
    OutgoingNotification,
    ProviderAttempt,
    ReceiptTarget,
    Store,
    Update,
    notifies,
)
from tidings.watchdog import ACTIVITY

log = logging.getLogger("tidings.dispatch")

IDLE_POLL_S = 1.0
TIMER_SLACK_S = 0.002  # loop timers run on the monotonic clock, due times on the wall clock
SEND_TIMEOUT_S = 30.0
RECORD_TRIES = 5
TEXT_LIMIT = 4096  # of an attempt's request and answer: a connector's text cannot bloat the table


def _by_channel(messages: list[DueMessage]) -> dict[str, list[DueMessage]]:
    groups: dict[str, list[DueMessage]] = {}
    for m in messages:
        groups.setdefault(m.channel, []).append(m)
    return groups


class Dispatcher:
    def __init__(
        self,
        store: Store,
        services: ServiceRegistry,
        routes: Mapping[str, Connector],
        on_notifications: Callable[[], None],
        *,
        batch: int = 500,
        workers: int = 2,
        lease_s: float = 60.0,
        max_attempts: int = 5,
        retry_interval_s: float = 5.0,
        groups: GroupRegistry | None = None,
    ) -> None:
        self.store = store
        self.services = services
        self.routes = routes
        self.on_notifications = on_notifications
        self.batch = batch
        self.workers = workers
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.retry_interval_s = retry_interval_s
        self.groups = groups or GroupRegistry()
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self.progress = 0  # batches claimed and recorded so far: the watchdog's sign of life

    async def start(self) -> None:
        # Several loops, so one batch's wait for the store overlaps another's sending: each step is
        # bound by commit latency more than by CPU. Leases keep them from claiming the same rows.
        self._tasks = [asyncio.create_task(self._loop(), name=f"dispatch-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        await asyncio.gather(*self._tasks)

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                count = await self.run_once()
            except Exception:
                log.exception("dispatch batch failed; its messages are retried when their lease ends")
                count = 0
            if count < self.batch:
                await self._sleep()

    async def _sleep(self) -> None:
        """Until woken (new messages) or until the next recorded work falls due, as the store knows it:
        the store, not this process's memory, so receipts and retries recorded by any loop count."""
        due = await self.store.next_due()
        timeout = IDLE_POLL_S if due is None else min(IDLE_POLL_S, due - clock.now() + TIMER_SLACK_S)
        if timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def run_once(self) -> int:
        """Claim one batch, act on it, record the results; return how many messages were claimed."""
        due = await self.store.claim_due(clock.now(), self.batch, self.lease_s)
        if not due:
            return 0
        now = clock.now()
        updates: list[Update] = []
        to_send: list[DueMessage] = []
        for m in due:
            if m.status is Status.SUBMITTED and m.pending is not None:
                update = self._change(m, m.pending, now)
                update.applies_pending = True
                updates.append(update)
            elif m.status is not Status.QUEUED:
                updates.append(Update(m.transid, m.service_id, now, None, m.attempts))
            elif m.expiry is not None and m.expiry <= now:
                updates.append(self._change(m, channel_spec(m.channel).expired, now))
            else:
                to_send.append(m)
        if any(channel_spec(m.channel).remembers_gone for m in to_send):
            to_send = await self._skip_gone(to_send, updates, now)
        if any(m.policy is not None for m in to_send):
            to_send = await self._apply_policies(to_send, updates, now)
        for channel, batch in _by_channel(to_send).items():
            updates.extend(await self._send(channel, batch))
        await self._record(updates)
        self.progress += 1
        if any(u.notification is not None for u in updates):
            self.on_notifications()
        return len(due)

    async def _apply_policies(
        self, batch: list[DueMessage], updates: list[Update], now: float
    ) -> list[DueMessage]:
        """Run the contact-policy checks of the messages that asked for one; return those that may go,
        and add a Failed update (9xxx) for each refused one."""
        checks: list[PolicyCheck] = []
        refused: dict[str, str] = {}
        for m in batch:
            if m.policy is None:
                continue
            group = self.groups.find(m.service_id, str(m.policy.get("group")))
            known = find_spec(m.channel)
            category = known.category if known is not None else m.channel
            if group is None:
                refused[m.transid] = UNKNOWN_GROUP.code
                continue
            limits = group.limits(category) if m.policy.get("cap") else []
            checks.append(
                PolicyCheck(
                    m.transid,
                    m.service_id,
                    group.id,
                    group.kind == "opt-in",
                    category,
                    m.address,
                    bool(m.policy.get("consent")),
                    limits,
                )
            )
        if checks:
            refused.update(await self.store.check_policies(checks, now))
        for m in batch:
            if m.transid in refused:
                update = self._change(m, REFUSALS[refused[m.transid]], now)
                update.error = "refused by the contact policy"
                updates.append(update)
        return [m for m in batch if m.transid not in refused]

    async def _skip_gone(
        self, batch: list[DueMessage], updates: list[Update], now: float
    ) -> list[DueMessage]:
        """Fail, without a provider call, the messages to addresses a provider said are gone; return the
        others. One store query per service and channel in the batch."""
        groups: dict[tuple[str, str], list[DueMessage]] = {}
        for m in batch:
            if channel_spec(m.channel).remembers_gone:
                groups.setdefault((m.service_id, m.channel), []).append(m)
        skipped: set[str] = set()
        for (service_id, channel), messages in groups.items():
            found = await self.store.gone_addresses(service_id, channel, [m.address for m in messages])
            spec = channel_spec(channel)
            for m in messages:
                if (gone := found.get(m.address)) is not None:
                    first = Outcome(Status.FAILED, gone.code, gone.description)
                    update = self._change(m, spec.gone_outcome(first), now)
                    update.error = "the address is gone: a provider said so earlier"
                    updates.append(update)
                    skipped.add(m.transid)
        return [m for m in batch if m.transid not in skipped]

    async def _record(self, updates: list[Update]) -> None:
        # What was sent must not be sent again because one commit failed (a foreign write lock, say):
        # keep the results and try again before leaving the messages to their lease.
        for attempt in range(RECORD_TRIES):
            try:
                await self.store.record(updates, self._ext_notice)
                return
            except Exception:
                if attempt == RECORD_TRIES - 1:
                    raise
                log.warning("recording %d status changes failed; trying again", len(updates), exc_info=True)
                await asyncio.sleep(0.2 * 2**attempt)

    def _ext_notice(
        self, target: ReceiptTarget, outcome: Outcome, at: float, info: str
    ) -> OutgoingNotification | None:
        """The notification of a provider status kept before its send was recorded (`Store.record`)."""
        return notification_for(self.services, target, outcome, at, info)

    async def _send(self, channel: str, batch: list[DueMessage]) -> list[Update]:
        spec = channel_spec(channel)
        outbound: list[Outbound] = []
        unreadable: list[Update] = []
        for m in batch:
            try:
                content = spec.decode_content(m.content)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                # Stored by a version that wrote it otherwise: it can never be sent as it is.
                error = SendError(FailureKind.INVALID, f"the stored content cannot be read: {exc}")
                unreadable.append(self._failed(m, m.attempts + 1, error))
                continue
            outbound.append(
                Outbound(
                    m.transid,
                    m.service_id,
                    m.channel,
                    m.address,
                    content,
                    m.attempts + 1,
                    m.expiry,
                    m.address_type,
                    m.priority,
                )
            )
        if unreadable:
            gone = {u.transid for u in unreadable}
            batch = [m for m in batch if m.transid not in gone]
        if not batch:
            return unreadable
        results: list[SendResult | SendError]
        connector = self.routes.get(channel)
        try:
            if connector is None:
                raise SendError(FailureKind.CONFIG, f"no connector serves channel {channel}")
            # (test doubles of a connector may have no label)
            what = f"send {len(batch)} {channel} via {getattr(connector, 'label', type(connector).__name__)}"
            with ACTIVITY.span(what):
                async with asyncio.timeout(SEND_TIMEOUT_S):  # a safety net; connectors time out sooner
                    results = await connector.send(outbound)
            if len(results) != len(batch):
                raise SendError(FailureKind.CONNECTION, f"{len(results)} results for {len(batch)} messages")
        except TimeoutError:
            error = SendError(FailureKind.TIMEOUT, f"no answer from the connector in {SEND_TIMEOUT_S:g}s")
            results = [error] * len(batch)
        except SendError as exc:
            results = [exc] * len(batch)
        except Exception as exc:
            log.exception("connector for %s raised an unexpected error", channel)
            results = [SendError(FailureKind.CONNECTION, f"unexpected error: {exc}")] * len(batch)
        now = clock.now()
        updates = [self._sent(m, r, now) for m, r in zip(batch, results, strict=True)]
        if connector is not None:
            label = getattr(connector, "label", type(connector).__name__)
            kind = getattr(connector, "name", "")
            for m, r, u in zip(batch, results, updates, strict=True):
                u.provider_attempt = provider_attempt(m, r, u, label, kind, now)
        return [*unreadable, *updates]

    def _sent(self, m: DueMessage, result: SendResult | SendError, now: float) -> Update:
        attempt = m.attempts + 1
        if isinstance(result, SendError) and (instead := result.fallback) is not None:
            # Not a failure of the message: it goes by the other channel, due at once, its attempts
            # as they were; nothing is notified until that channel's connector has sent it.
            log.debug("%s goes by %s instead: %s", m.transid, instead.channel, result.description)
            update = Update(m.transid, m.service_id, now, now, m.attempts, error=result.description[:500])
            update.reroute = (instead.channel, instead.content, instead.parts)
            return update
        if isinstance(result, SendError):
            return self._failed(m, attempt, result)
        update = self._change(m, SUBMITTED, now, attempts=attempt)
        # A message in parts is found through its parts' ids, so that every part's receipt counts.
        update.ext_id = None if result.part_ids else result.ext_id
        update.part_ids = result.part_ids
        if result.receipt is not None:
            update.pending = result.receipt
            update.next_at = now + result.receipt_after_s
        return update

    def _failed(self, m: DueMessage, attempt: int, exc: SendError) -> Update:
        now = clock.now()
        # A provider's Retry-After is honoured when it asks for longer than our own backoff.
        wait = exc.retry_after or 0.0
        if not exc.kind.costs_attempt:
            # No fault of this message (see FailureKind), so it costs no attempt; its expiry, if it has
            # one, still ends the wait, and without one FREE_RETRY_FOR_S does: else a message would wait
            # for a provider that never comes back, and never reach a final status.
            if m.expiry is None and ids.age_s(m.transid, now) > FREE_RETRY_FOR_S:
                update = self._change(m, channel_spec(m.channel).expired, now)
                update.error = f"not sent {FREE_RETRY_FOR_S / 86400:g} days on: {exc.description}"[:500]
                return update
            retry_at = now + max(self.retry_interval_s, wait)
            return Update(m.transid, m.service_id, now, retry_at, m.attempts, error=exc.description[:500])
        if exc.retryable and attempt < self.max_attempts:
            retry_at = now + max(self.retry_interval_s * 2 ** (attempt - 1), wait)
            return Update(m.transid, m.service_id, now, retry_at, attempt, error=exc.description[:500])
        if exc.code is None:  # retries ran out, and the connector named no code
            outcome = channel_spec(m.channel).platform_failure
        else:
            # The provider refused the message itself: it never left, so Failed (not Un-Delivered,
            # which reports an operator's verdict on a message that went out), with its code.
            spec = find_spec(m.channel)
            known = spec.failures.get(exc.code) if spec is not None else None
            if known is not None and known.status in (Status.EXPIRED, Status.BOUNCE):
                # The provider would not take it any more (its expiry had passed), or the address
                # bounced: the documented status says more than Failed.
                outcome = known
            else:
                outcome = Outcome(Status.FAILED, exc.code, known.description if known else exc.description)
        spec = channel_spec(m.channel)
        # Channels whose provider explains a refusal in words (Meta's error text) pass it on.
        info = exc.description[:500] if spec.explains_failures else ""
        update = self._change(m, outcome, now, attempts=attempt, additional_info=info)
        update.error = exc.description[:500]
        update.gone = exc.kind.address_gone and channel_spec(m.channel).remembers_gone
        return update

    def _change(
        self,
        m: DueMessage,
        outcome: Outcome,
        at: float,
        attempts: int | None = None,
        additional_info: str = "",
    ) -> Update:
        return Update(
            transid=m.transid,
            service_id=m.service_id,
            at=at,
            next_at=None,
            attempts=m.attempts if attempts is None else attempts,
            outcome=outcome,
            notification=notification_for(self.services, m, outcome, at, additional_info),
        )


def provider_attempt(
    m: DueMessage, result: SendResult | SendError, update: Update, label: str, kind: str, at: float
) -> ProviderAttempt:
    """The message's try at its connector, as `Update.provider_attempt` keeps it: what the connector
    reported it sent and was answered, and what this try made of the message."""
    x = result.exchange
    request, answer = ("", "") if x is None else (x.request[:TEXT_LIMIT], x.answer[:TEXT_LIMIT])
    attempt = m.attempts + 1
    if isinstance(result, SendResult):
        return ProviderAttempt(at, attempt, label, kind, "accepted", SUBMITTED.code, result.ext_id or "",
                               request, answer)  # fmt: skip
    if update.reroute is not None:
        outcome, code = "rerouted", result.code or ""
        detail = f"sent as {update.reroute[0]} instead: {result.description}"
    elif update.outcome is None:
        outcome, code = "retry", result.code or ""
        detail = f"{result.kind.word}: {result.description}"
    else:
        outcome, code, detail = "failed", update.outcome.code, f"{result.kind.word}: {result.description}"
    return ProviderAttempt(at, attempt, label, kind, outcome, code, detail[:500], request, answer)


def notification_for(
    services: ServiceRegistry,
    m: DueMessage | ReceiptTarget,
    outcome: Outcome,
    at: float,
    additional_info: str = "",
) -> OutgoingNotification | None:
    """The notification reporting `outcome`, to the message's notify URL or else its service's; None
    when neither is a URL a notification can go to, or when the message asked for other statuses only
    (v2 `requestedReceipts`)."""
    # Every status change passes here (the dispatcher's, and each store notice): it is counted once.
    METRICS.status(m.channel, m.service_id, outcome.status)
    if m.receipts is not None and not notifies(m.receipts, outcome.status.word):
        return None
    url = m.notify_url
    if not url:
        service = services.by_id(m.service_id)
        url = service.notify_url if service else ""
    if not url or not deliverable(url):
        return None
    body = delivery_info(
        transid=m.transid,
        channel=m.channel,
        address=m.address,
        address_type=m.address_type,
        outcome=outcome,
        at=at,
        parts=m.parts,
        callback_data=m.callback_data,
        correlationid=m.correlationid,
        additional_info=additional_info,
        gtrid=m.gtrid,
    )
    return OutgoingNotification(ids.new_id(), url, body, m.gtrid)
