"""Message retention: deleting what Tidings no longer needs, in bounded batches.

With `[store] retain_days` set, every process that sends (`tidings serve`, `tidings worker`) runs a purge
pass every `purge_interval_s` (the first a minute after it starts), one process at a time; `tidings purge`
runs one on demand. A pass deletes, a batch (one transaction) at a time, the outbound messages that are
final and were last changed more than `retain_days` ago, with every notification sent or given up and no
short link still valid, together with every row of theirs; then the inbound messages received before the
same cut-off whose notification is done. What each store deletes and how: `tidings.store.purge`. Every
pass, even with `retain_days = 0`, also forgets what has outlived its use (`rows.EXPIRING`: early receipts,
Idempotency-Key answers, …), as a store does when it opens. docs/operations.md#retention says what it
means for a user.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tidings import clock
from tidings.config import StoreConfig
from tidings.store import Store, open_store
from tidings.store.purge import DAY_S, PURGE_BATCH, PurgeBatch
from tidings.tasks import cancel

log = logging.getLogger("tidings.retention")
FIRST_PASS_S = 60.0  # after a process starts: never in the way of its start, never long after it
WAIT_FOR_OTHER_S = 1.0  # `tidings purge` looks again this often while another process purges


@dataclass(slots=True)
class PurgeReport:
    """What a pass deleted (or, dry, would delete): messages and inbound messages, rows by table, in how
    many batches and how long."""

    before: float  # the cut-off: last changed (received) before this
    dry_run: bool = False
    messages: int = 0
    inbound: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    seconds: float = 0.0

    def add(self, batch: PurgeBatch, inbound: bool = False) -> None:
        self.batches += 1
        if inbound:
            self.inbound += batch.purged
        else:
            self.messages += batch.purged
        self.count(batch.rows)

    def count(self, rows: dict[str, int]) -> None:
        for table, n in rows.items():
            self.rows[table] = self.rows.get(table, 0) + n

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    def as_json(self, days: int) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "older_than_days": days,
            "before": clock.iso(self.before),
            "messages": self.messages,
            "inbound": self.inbound,
            "rows": self.rows,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
        }

    def lines(self, days: int) -> list[str]:
        """The report in words, for `tidings purge`."""
        verb = "Would purge" if self.dry_run else "Purged"
        when = f"last changed before {clock.iso(self.before)} (older than {days} days)"
        batches = f"{self.batches} batch{'es' if self.batches != 1 else ''}"
        head = f"{verb} {_many(self.messages, 'message')} and {_many(self.inbound, 'inbound message')}"
        first = sorted(self.rows, key=lambda table: table not in ("messages", "inbound"))  # then as they came
        rows = ", ".join(f"{table} {self.rows[table]}" for table in first)
        said = "Rows that would be deleted" if self.dry_run else "Rows deleted"
        return [
            f"{head} {when}, in {batches}, {self.seconds:.2f} s.",
            f"{said}: {rows} ({self.total} in all).",
        ]


async def purge(
    store: Store,
    before: float,
    now: float,
    *,
    batch: int = PURGE_BATCH,
    dry_run: bool = False,
    pace: bool = False,
) -> PurgeReport:
    """Purge what may go from before `before` (see the module's docstring), a batch at a time; with
    `pace`, wait after each batch as long as it took, so that a pass inside a serving process takes at
    most half of the store's time (SQLite's batches run on the event loop itself)."""
    report = PurgeReport(before, dry_run)
    started = time.perf_counter()
    for inbound in (False, True):
        cursor: tuple[float, int] | None = None
        while True:
            took = time.perf_counter()
            if inbound:
                done = await store.purge_inbound(before, cursor, batch, dry_run)
            else:
                done = await store.purge_messages(before, now, cursor, batch, dry_run)
            report.add(done, inbound)
            if done.cursor is None:
                break
            cursor = done.cursor
            if pace:
                await asyncio.sleep(time.perf_counter() - took)
    report.count(await store.forget_expired(now, dry_run))
    report.seconds = time.perf_counter() - started
    return report


async def purge_now(
    url: str,
    days: int,
    *,
    dry_run: bool = False,
    batch: int = PURGE_BATCH,
    waiting: Callable[[], None] = lambda: None,
) -> PurgeReport:
    """`tidings purge`: one pass over the database at `url`, for messages older than `days`. When another
    process is purging (PostgreSQL), `waiting` is called once and the pass waits for it to end (a dry run
    does not wait: it changes nothing)."""
    store = open_store(url)
    await store.open()
    try:
        told = False
        while True:
            async with store.purging() as mine:
                if mine or dry_run:
                    now = clock.now()
                    return await purge(store, now - days * DAY_S, now, batch=batch, dry_run=dry_run)
            if not told:
                waiting()
                told = True
            await asyncio.sleep(WAIT_FOR_OTHER_S)
    finally:
        await store.close()


class Purger:
    """The periodic pass inside a sending process (`Runtime` with dispatch)."""

    def __init__(self, store: Store, settings: StoreConfig) -> None:
        self.store = store
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        self.passes = 0  # passes this process ran (for tests and the curious)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="retention")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        interval = self.settings.purge_interval_s
        await asyncio.sleep(min(interval, FIRST_PASS_S))
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # the store may be away for a while; the next pass tries again
                log.warning("retention: the purge pass failed: %s", exc, exc_info=exc)
            await asyncio.sleep(interval)

    async def run_once(self) -> PurgeReport | None:
        """One pass, unless another process is running one (None then)."""
        days = self.settings.retain_days
        async with self.store.purging() as mine:
            if not mine:
                log.debug("retention: another process is purging; this one skips its pass")
                return None
            now = clock.now()
            if days:
                report = await purge(self.store, now - days * DAY_S, now, pace=True)
            else:  # keep every message; forget only what has outlived its use
                report = PurgeReport(now, rows=await self.store.forget_expired(now))
        self.passes += 1
        if report.messages or report.inbound:
            log.info(
                "retention: purged %s and %s older than %d days (%d rows) in %.1f s",
                _many(report.messages, "message"),
                _many(report.inbound, "inbound message"),
                days,
                report.total,
                report.seconds,
            )
        elif report.total:
            log.debug("retention: forgot %d expired rows (%s)", report.total, report.rows)
        return report


def _many(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"
