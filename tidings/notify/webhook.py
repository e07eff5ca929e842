"""The notifier: posts outbox rows to notify URLs, with retries that survive restarts.

A pipeline, not rounds: up to `concurrency` POSTs are in flight at once, each receiver gets as many as
it shows it can take (`tidings.notify.receivers`), and results are written back in batches. Connection
errors, timeouts, 429 and 5xx are retried `retries` times, backing off from `retry_interval_s`
(doubling, at most an hour); other answers are final. A failure while we were sending the receiver
several posts at once costs no try: it is sent again at once, with fewer at a time. The POSTs themselves
happen in a sender process (`tidings.notify.sender`), on the other core.
"""

import asyncio
import contextlib
import logging
from functools import partial

from tidings import __version__, clock
from tidings.config import NotifyConfig
from tidings.notify.payloads import redact_url, signature
from tidings.notify.poster import PostOutcome
from tidings.notify.process import SenderProcess
from tidings.notify.receivers import FORGET_AFTER_S, INITIAL_LIMIT, Post, Receiver
from tidings.observe.metrics import METRICS
from tidings.services import ServiceRegistry
from tidings.store.base import ClaimedNotification, NotificationResult, Store, receiver_of

log = logging.getLogger("tidings.notify")

MAX_BACKOFF_S = 3600.0
IDLE_POLL_S = 1.0
ERROR_PAUSE_S = 1.0
# Rows a claim may bring for receivers not seen yet (each starts with INITIAL_LIMIT slots).
NEW_RECEIVERS_ROOM = int(2 * INITIAL_LIMIT)
PROBE_INTERVAL_S = 0.25
ASKED_TO_WAIT = "not sent yet: its receiver asked us to wait (Retry-After)"
_COUNTED_AS = {"sent": "sent", "pending": "retry", "failed": "failed"}  # a try's result, in metrics


def backoff(interval_s: float, retry_number: int) -> float:
    """Delay before retry `retry_number` (1-based): interval, 2 x interval, 4 x interval, …, ≤ 1 hour."""
    return min(interval_s * 2.0 ** (retry_number - 1), MAX_BACKOFF_S)


class Notifier:
    def __init__(self, store: Store, services: ServiceRegistry, config: NotifyConfig) -> None:
        self.store = store
        self.services = services
        self.config = config
        self._wake = asyncio.Event()
        self._flush = asyncio.Event()
        self._results: list[NotificationResult] = []
        self._inflight: set[asyncio.Future[PostOutcome]] = set()
        self._receivers: dict[str, Receiver] = {}
        self._next_probe = 0.0  # when a claim that skips busy receivers may next be made
        self._stopping = False
        self._next_retry: float | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.sender = SenderProcess(config.timeout_s, config.concurrency, f"Tidings/{__version__}")

    async def start(self) -> None:
        await self.sender.start()
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="notify-claim"),
            asyncio.create_task(self._flush_loop(), name="notify-flush"),
        ]

    def wake(self) -> None:
        self._next_probe = 0.0  # new notifications: worth a claim, busy receivers or not
        self._wake.set()

    async def stop(self, grace_s: float = 5.0) -> None:
        self._stopping = True
        self._wake.set()
        await self.sender.stop(grace_s)  # posts it could not finish come back marked aborted
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=1.0)
        for receiver in self._receivers.values():
            self._give_back(receiver, "not sent: shutting down", clock.now())
        self._flush.set()
        # Both loops end by themselves now; cancelling one mid-write would write its results twice.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._write_results()

    def held(self) -> dict[str, int]:
        """Notifications in this process's hands per receiver: being posted or waiting for a slot."""
        return {key: r.inflight + len(r.waiting) for key, r in self._receivers.items()}

    async def _claim_loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                claimed = await self._claim()
            except Exception:
                log.exception("claiming notifications failed; trying again shortly")
                await asyncio.sleep(ERROR_PAUSE_S)
                continue
            if not claimed:
                await self._sleep()

    async def _claim(self) -> bool:
        """Start deliveries for due notifications; True when more may be waiting right now."""
        now = clock.now()
        self._tidy(now)
        busy: list[str] = []
        room = held = 0
        for receiver in self._receivers.values():
            held += len(receiver.waiting)
            if (receiver_room := receiver.room(now)) == 0:
                busy.append(receiver.key)
            room += receiver_room
        # Rows in our hands (posting or queued at their receiver) stay within twice the post slots.
        free = 2 * self.config.concurrency - len(self._inflight) - held
        # A claim that skips busy receivers reads past their due rows. Once one came back short (the
        # others had nothing more due), the next waits for new work (new notifications, results that
        # promote a message's next one) or a moment, not for every freed slot, so a busy receiver's
        # backlog is not read over and over for nothing.
        if busy and now < self._next_probe:
            return False
        wanted = NEW_RECEIVERS_ROOM + room
        limit = min(free, wanted)
        # While much is in flight, wait for a handful of slots rather than claim one row per freed
        # slot, each claim a store round trip of its own.
        if limit <= 0 or (self._inflight and limit < min(wanted, self.config.concurrency) // 8):
            return False
        lease = 2 * self.config.timeout_s + 30  # a row may wait its turn at its receiver, then post
        claimed = await self.store.claim_notifications(now, limit, lease, busy)
        now = clock.now()
        if busy and len(claimed) < limit:
            self._next_probe = now + PROBE_INTERVAL_S
        for n in claimed:
            self._take(n, now)
        return len(claimed) == limit

    def _take(self, n: ClaimedNotification, now: float) -> None:
        receiver = self._receiver(n.url, now)
        if self._stopping:
            self._return(n, "not sent: shutting down", now)
        elif receiver.can_send(now) and not receiver.waiting:
            self._post(receiver, n, now)
        elif receiver.room(now) > 0:
            receiver.waiting.append(n)
        else:  # more than the receiver can take soon: back to the store, where others may claim it
            self._return(n, f"not sent yet: {receiver.inflight} posts in flight to its receiver", now)

    def _receiver(self, url: str, now: float) -> Receiver:
        key = receiver_of(url)
        receiver = self._receivers.get(key)
        if receiver is None:
            receiver = self._receivers[key] = Receiver(key, self.config.concurrency, last_used=now)
        return receiver

    def _tidy(self, now: float) -> None:
        for key, receiver in list(self._receivers.items()):
            if receiver.paused(now) and receiver.waiting:
                self._give_back(receiver, ASKED_TO_WAIT, receiver.paused_until)
            elif not receiver.inflight and not receiver.waiting and now - receiver.last_used > FORGET_AFTER_S:
                del self._receivers[key]

    def _give_back(self, receiver: Receiver, why: str, at: float) -> None:
        while receiver.waiting:
            self._return(receiver.waiting.popleft(), why, at)

    def _return(self, n: ClaimedNotification, why: str, at: float) -> None:
        """Back to the queue, due at `at`, without counting a try (none was made)."""
        self._results.append(NotificationResult(n.seq, "pending", clock.now(), at, None, why, counted=False))
        self._flush.set()

    def _post(self, receiver: Receiver, n: ClaimedNotification, now: float) -> None:
        post = receiver.start(n, now)
        posted = self._deliver(n)
        self._inflight.add(posted)
        posted.add_done_callback(partial(self._posted, post))

    async def _sleep(self) -> None:
        timeout = IDLE_POLL_S
        if self._next_retry is not None:
            timeout = max(0.0, min(timeout, self._next_retry - clock.now()))
        if self._next_probe > clock.now():
            timeout = min(timeout, self._next_probe - clock.now())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        if self._next_retry is not None and self._next_retry <= clock.now():
            self._next_retry = None

    async def _flush_loop(self) -> None:
        while not self._stopping:
            await self._flush.wait()
            self._flush.clear()
            try:
                await self._write_results()
            except Exception:
                log.exception("recording notification results failed; trying again shortly")
                await asyncio.sleep(ERROR_PAUSE_S)
                self._flush.set()
                continue
            # The next notification of each finished message is now claimable.
            self._next_probe = 0.0
            self._wake.set()

    async def _write_results(self) -> None:
        batch, self._results = self._results, []
        if batch:
            try:
                await self.store.finish_notifications(batch)
            except BaseException:
                self._results[:0] = batch  # keep them for the next try
                raise

    def _deliver(self, n: ClaimedNotification) -> "asyncio.Future[PostOutcome]":
        service = self.services.by_id(n.service_id)
        headers = {
            "Content-Type": "application/json",
            "X-Tidings-Event-Id": n.event_id,
            "X-Hub-Signature": signature(service.secret_bytes if service else b"", n.body),
        }
        if n.gtrid is not None:
            headers["x-wx-gtrid"] = n.gtrid
        return self.sender.post_soon(n.url, headers, n.body)

    def _posted(self, post: Post, posted: "asyncio.Future[PostOutcome]") -> None:
        self._inflight.discard(posted)
        n, receiver, now = post.n, post.receiver, clock.now()
        if posted.cancelled():
            outcome = PostOutcome(None, "not finished: shutting down", True, aborted=True)
        elif (exc := posted.exception()) is not None:
            log.error("posting notification %s failed: %r", n.event_id, exc)
            outcome = PostOutcome(None, f"internal error: {exc!r}", True)
        else:
            outcome = posted.result()
        receiver.finish(post, now, outcome.elapsed, outcome.overloaded, outcome.retry_after)
        error = outcome.error
        if error is not None:
            error = error.replace(n.url, redact_url(n.url))[:500]
        if outcome.aborted:  # interrupted by our shutdown: back to the queue, not a failed try
            self._results.append(NotificationResult(n.seq, "pending", now, now, None, error, counted=False))
        elif outcome.overloaded and post.crowded and outcome.retry:
            # We sent this receiver more than it could take: our fault, not a try. It goes again at
            # once (or when the receiver said), with the receiver's limit already cut.
            at = max(now, receiver.paused_until)
            why = f"{error} (with other posts in flight to its receiver: not counted as a try)"
            log.info(
                "notification %s to %s failed (%s) with %d others in flight; again at once, %d at a time",
                n.event_id,
                redact_url(n.url),
                error,
                receiver.inflight,
                receiver.slots,
            )
            self._results.append(NotificationResult(n.seq, "pending", now, at, outcome.status, why, False))
        else:
            result = self._result(n, outcome.status, error, outcome.retry)
            self._results.append(result)
            METRICS.notified(receiver.key, _COUNTED_AS[result.state])
        self._flush.set()
        if self._stopping:
            self._give_back(receiver, "not sent: shutting down", now)
            return
        if receiver.paused(now):
            self._give_back(receiver, ASKED_TO_WAIT, receiver.paused_until)
        while receiver.waiting and receiver.can_send(now):
            self._post(receiver, receiver.waiting.popleft(), now)
        self._wake.set()  # the receiver has room again; so may the global slots

    def _result(
        self, n: ClaimedNotification, status: int | None, error: str | None, retry: bool
    ) -> NotificationResult:
        now = clock.now()
        if error is None:
            return NotificationResult(n.seq, "sent", now, now, status)
        tries = n.attempts + 1
        if retry and tries <= self.config.retries:
            at = now + backoff(self.config.retry_interval_s, tries)
            self._next_retry = at if self._next_retry is None else min(self._next_retry, at)
            log.info(
                "notification %s to %s failed (%s); retry %d at +%.1fs",
                n.event_id,
                redact_url(n.url),
                error,
                tries,
                at - now,
            )
            return NotificationResult(n.seq, "pending", now, at, status, error)
        log.warning(
            "notification %s to %s failed (%s); giving up after %d tries",
            n.event_id,
            redact_url(n.url),
            error,
            tries,
        )
        return NotificationResult(n.seq, "failed", now, now, status, error)
