"""The PostgreSQL store: any number of Tidings processes on one database.

Each call is one transaction on a pooled connection. What SQLite gets from having one writer, this store
gets from locks: claims skip rows another worker holds (`FOR UPDATE SKIP LOCKED`) and hand them out with a
lease, so a crashed worker's rows come due again when it ends; transactions that could race on the same
provider id, message or policy counter first take transaction-scoped advisory locks on it, always in one
order. A transaction that still deadlocks is run again (each is a function of its arguments and the
database, so running one twice is safe).
"""

import asyncio
import logging
import os
import re
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from tidings import clock
from tidings.observe.metrics import METRICS
from tidings.policy.contact import PolicyCheck
from tidings.statuses import Outcome, Status
from tidings.store.base import (
    Advance,
    CatalogueEntry,
    ClaimedNotification,
    Click,
    ConsentChange,
    Device,
    DueMessage,
    ExtAdvance,
    ExtNotice,
    GoneAddress,
    IdempotentAnswer,
    InboundMessage,
    IncomingReceipt,
    MessageRecord,
    NewLink,
    NewMessage,
    NotificationResult,
    OutgoingNotification,
    ProcessRecord,
    ProviderAttempt,
    PublishedReport,
    ReceiptNotice,
    ReceiptTarget,
    Report,
    StoreUnavailable,
    Update,
    Watermark,
    pending_transids,
)
from tidings.store.listing_postgres import PostgresListing
from tidings.store.purge_postgres import PostgresPurge, forget_expired_rows
from tidings.store.queries import load_migrations, load_queries
from tidings.store.rows import (
    EARLY_RECEIPT_WINDOW_S,
    IDEMPOTENCY_S,
    LANES,
    Waiting,
    attempt_rows,
    decode_outcome,
    device_query,
    device_record,
    devices_by_value,
    due_message,
    early_changes,
    early_matches,
    early_rows,
    encode_outcome,
    ext_moves,
    gone_record,
    match_receipts,
    message_record,
    moves_forward,
    new_device,
    provider_attempt,
    receipt_target,
    sent_ids,
    settled,
    status_sends,
)
from tidings.tasks import cancel
from tidings.watchdog import ACTIVITY

log = logging.getLogger("tidings.store")
T = TypeVar("T")
Q = load_queries("postgres")
POOL_SIZE = 16
RETRIES = 5
SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MIGRATION_LOCK = 0x7469_6469_6E67  # "tiding": one process migrates at a time
HEARTBEAT_S = 2.0
DEAD_AFTER_S = 10.0  # a process silent this long is taken for dead and its leases handed out again
# A safety net, not a budget: calls take milliseconds. One that waits this long (a pool that never frees
# a connection, a lock never released) ends in an error its caller logs and retries, not in silence.
CALL_TIMEOUT_S = 60.0
CLOSE_STEP_S = 1.5  # each step of close (hand back the leases, close the pool) waits at most this long
# A pooled connection and a plain one answer the same calls; the pool hands out proxies.
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


def parse_url(url: str) -> tuple[str, str | None]:
    """The DSN asyncpg takes, and the schema named by `?schema=` (which asyncpg would not understand)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(scheme="postgresql", query=rest)), schema


def url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        return f"is not a valid URL: {exc}"
    _, schema = parse_url(url)
    if schema is not None and not SCHEMA.match(schema):
        return "schema must be letters, digits and _ (at most 63), not starting with a digit"
    if not parts.path.strip("/"):
        return "must name a database: postgresql://HOST[:PORT]/DATABASE"
    return None


def _where(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port or 5432}{parts.path}"


class PostgresStore(PostgresListing, PostgresPurge):
    def __init__(self, url: str) -> None:
        self.url = url
        self.dsn, self.schema = parse_url(url)
        self._pool: asyncpg.Pool | None = None
        self.process = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # How pg_stat_activity names this process's sessions: operators and the watchdog find them by it.
        self.application_name = f"tidings {self.process}"[:63]
        self._settings = {"application_name": self.application_name}
        if self.schema:
            self._settings["search_path"] = f'"{self.schema}"'
        self._heart: asyncio.Task[None] | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._heart_conn: asyncpg.Connection | None = None
        self._accepts: list[tuple[list[tuple[Any, ...]], asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        try:
            conn = await asyncpg.connect(
                self.dsn, timeout=10, server_settings={"application_name": self.application_name}
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailable(f"cannot use PostgreSQL at {_where(self.url)}: {_reason(exc)}") from None
        try:
            await _migrate(conn, self.schema)
            now = clock.now()
            await forget_expired_rows(conn, now)
            # Leases are not released here, unlike SQLite: other processes may be holding theirs.
            await conn.execute(Q["heartbeat"], self.process)
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=2, max_size=POOL_SIZE, server_settings=self._settings, timeout=10
            )
            await self._reap()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailable(f"cannot use PostgreSQL at {_where(self.url)}: {_reason(exc)}") from None
        finally:
            await conn.close()
        self._heart = asyncio.create_task(self._beat(), name="store-heartbeat")
        self._reaper = asyncio.create_task(self._reap_often(), name="store-reaper")

    async def close(self) -> None:
        """Hand back what this process holds and close. Each step waits a bounded time: a stop must not
        hang on a database that does not answer (what it could not hand back is handed out again once
        this process's heartbeat is DEAD_AFTER_S old)."""
        for task in (self._heart, self._reaper):
            await cancel(task)
        self._heart = self._reaper = None
        if self._committer is not None:  # accepts already queued are committed (or fail) first
            await asyncio.wait([self._committer], timeout=CLOSE_STEP_S)
        if self._pool is not None:
            # What this process still holds (the dispatcher has already put back what it did not send)
            # is free at once rather than when the lease ends.
            try:
                async with asyncio.timeout(CLOSE_STEP_S):
                    await self._release([self.process], forget=True)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                log.warning(
                    "could not hand back this process's work (%s); it is handed out again in %g s",
                    _reason(exc),
                    DEAD_AFTER_S,
                )
            pool, self._pool = self._pool, None
            try:
                async with asyncio.timeout(CLOSE_STEP_S):
                    await pool.close()
            except TimeoutError:
                pool.terminate()
        await self._drop_heart_connection()

    async def _beat(self) -> None:
        """Say this process is alive, on a connection of its own: a pool whose connections all wait (on a
        lock, say) must not make this process look dead to the others, who would hand out its leases
        while it still works on them."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                async with asyncio.timeout(2 * HEARTBEAT_S):
                    if self._heart_conn is None:
                        self._heart_conn = await asyncpg.connect(self.dsn, server_settings=self._settings)
                    await self._heart_conn.execute(Q["heartbeat"], self.process)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                log.warning("heartbeat failed: %s", _reason(exc))
                await self._drop_heart_connection()

    async def _drop_heart_connection(self) -> None:
        conn, self._heart_conn = self._heart_conn, None
        if conn is not None:
            try:
                async with asyncio.timeout(1.0):
                    await conn.close()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
                conn.terminate()

    async def _reap_often(self) -> None:
        """Hand out again the leases of processes that stopped saying they are alive."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self._reap()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                log.warning("looking for stopped processes failed: %s", _reason(exc))

    async def _reap(self) -> None:
        dead = [r[0] for r in await self._read(lambda c: c.fetch(Q["forget_dead_processes"], DEAD_AFTER_S))]
        if dead:
            log.warning("processes %s stopped; their messages and notifications are handed out again", dead)
            await self._release(dead)

    async def _release(self, processes: list[str], forget: bool = False) -> None:
        async def job(c: Conn) -> None:
            now = clock.now()
            await c.execute(Q["release_messages_of"], processes, now)
            await c.execute(Q["release_notifications_of"], processes, now)
            if forget:
                await c.execute(Q["forget_process"], self.process)

        await self._tx(job)

    async def _tx(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """Run `fn` in a transaction (again, on a deadlock). The call is named after the store method
        that makes it, for the watchdog; the wait for a connection counts towards its time."""
        pool = self._open_pool()
        with ACTIVITY.span(_caller()):
            async with asyncio.timeout(CALL_TIMEOUT_S):
                for attempt in range(RETRIES):
                    try:
                        async with pool.acquire() as c:
                            started = time.perf_counter()  # the transaction's time, not the pool's
                            async with c.transaction():
                                result = await fn(c)
                            METRICS.commit("postgres", time.perf_counter() - started)
                            return result
                    except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                        if attempt == RETRIES - 1:
                            raise
                        await asyncio.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        pool = self._open_pool()
        with ACTIVITY.span(_caller()):
            async with asyncio.timeout(CALL_TIMEOUT_S), pool.acquire() as c:
                return await fn(c)

    def _open_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        return self._pool

    async def ping(self) -> None:
        await self._read(lambda c: c.fetchval("SELECT 1"))

    async def waits(self) -> list[str]:
        # A connection of its own: the pool's may all be among those that wait.
        conn = await asyncpg.connect(self.dsn, timeout=2)
        try:
            rows = await conn.fetch(Q["backend_waits"], self.application_name)
        finally:
            await conn.close()
        return [_backend_line(r) for r in rows]

    # -- catalogue -------------------------------------------------------------------------------

    async def load_catalogue(self) -> tuple[int, list[CatalogueEntry]]:
        async def job(c: Conn) -> tuple[int, list[CatalogueEntry]]:
            revision = await c.fetchval(Q["catalogue_revision"])
            rows = await c.fetch(Q["load_catalogue"])
            return int(revision), [CatalogueEntry(r[0], r[1], r[2].encode(), r[3]) for r in rows]

        # One snapshot for both reads, so the revision matches the entries.
        return await self._tx(job)

    async def catalogue_revision(self) -> int:
        return int(await self._read(lambda c: c.fetchval(Q["catalogue_revision"])))

    async def change_catalogue(self, change: CatalogueEntry, how: Literal["add", "update", "delete"]) -> bool:
        now = clock.now()
        key = (change.kind, change.name)

        async def job(c: Conn) -> bool:
            if how == "add":
                status = await c.execute(
                    Q["insert_catalogue"], *key, change.body.decode(), change.origin, now
                )
            elif how == "update":
                status = await c.execute(Q["update_catalogue"], *key, change.body.decode(), now)
            else:
                status = await c.execute(Q["delete_catalogue"], *key)
            if not status.endswith(" 1"):
                return False
            await c.execute(Q["bump_catalogue_revision"])
            return True

        return await self._tx(job)

    async def seed_catalogue(self, entries: Sequence[CatalogueEntry], drop_demo: bool) -> None:
        now = clock.now()
        rows = [(e.kind, e.name, e.body.decode(), now) for e in entries]
        named = {(e.kind, e.name) for e in entries}

        async def job(c: Conn) -> None:
            await c.executemany(Q["seed_catalogue"], rows)
            gone = [tuple(r) for r in await c.fetch(Q["catalogue_of_origin"], "config")]
            gone = [r for r in gone if r not in named]
            if drop_demo:
                gone += [tuple(r) for r in await c.fetch(Q["catalogue_of_origin"], "demo")]
            await c.executemany(Q["delete_catalogue"], gone)
            await c.execute(Q["bump_catalogue_revision"])

        await self._tx(job)

    # -- messages --------------------------------------------------------------------------------

    async def accept(
        self,
        messages: Sequence[NewMessage],
        idempotent: IdempotentAnswer | None = None,
        links: Sequence[NewLink] = (),
    ) -> bytes | None:
        rows = [
            (
                m.transid,
                m.service_id,
                m.channel,
                m.address,
                m.address_type,
                m.content,
                m.parts,
                m.correlationid,
                m.callback_data,
                m.notify_url,
                m.priority,
                m.expiry,
                m.created_at,
                m.policy,
                m.created_at if m.not_before is None else m.not_before,
                m.receipts,
                m.gtrid,
            )
            for m in messages
        ]
        link_rows = [
            (k.code, k.service_id, k.transid, k.linkid, k.target, k.track, k.expires_at, k.created_at)
            for k in links
        ]

        if idempotent is None and not link_rows:
            await self._accept_together(rows)
            return None

        async def job(c: Conn) -> bytes | None:
            if idempotent is not None:
                i = idempotent
                # The key first: a concurrent request with the same key waits here for this commit.
                fresh_after = i.at - IDEMPOTENCY_S
                if (
                    await c.fetchval(
                        Q["claim_idempotent"], i.service_id, i.key, i.response, i.at, fresh_after
                    )
                    is None
                ):
                    return bytes(await c.fetchval(Q["get_idempotent"], i.service_id, i.key))
            if len(rows) == 1:
                await c.execute(Q["insert_message"], *rows[0])
            else:
                await c.executemany(Q["insert_message"], rows)
            if link_rows:
                await c.executemany(Q["insert_link"], link_rows)
            return None

        return await self._tx(job)

    async def _accept_together(self, rows: list[tuple[Any, ...]]) -> None:
        """Accepts that arrive while a commit is under way share the next one: one commit, and one WAL
        flush, for many requests (SQLite's store does the same). Without it each request paid for its
        own flush, and accepts ran at a fraction of the rate."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._accepts.append((rows, future))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_accepts())
        await future

    async def _insert_messages(self, rows: list[tuple[Any, ...]]) -> None:
        await self._read(lambda c: c.executemany(Q["insert_message"], rows))

    async def _commit_accepts(self) -> None:
        try:
            while self._accepts:
                # A caller that stopped waiting (a client that hung up) writes nothing, as with SQLite.
                batch = [(rows, f) for rows, f in self._accepts if not f.cancelled()]
                self._accepts = []
                if not batch:
                    continue
                every = [row for rows, _ in batch for row in rows]
                try:
                    # One statement commits on its own; asyncpg runs executemany atomically.
                    await self._insert_messages(every)
                except Exception:
                    # One caller's rows may be at fault: each on its own, so only that caller fails.
                    for rows, future in batch:
                        try:
                            await self._insert_messages(rows)
                        except Exception as exc:
                            _settle(future, exc)
                        else:
                            _settle(future, None)
                    continue
                for _, future in batch:
                    _settle(future, None)
        finally:
            self._committer = None

    async def claim_due(self, now: float, limit: int, lease_s: float) -> list[DueMessage]:
        lease_until = now + lease_s

        async def job(c: Conn) -> list[Any]:
            rows: list[Any] = []
            for lane in LANES:
                services = [r[0] for r in await c.fetch(Q["due_services"], lane, now)]
                while services and len(rows) < limit:
                    share = max(1, (limit - len(rows)) // len(services))
                    hungry = []
                    for service_id in services:
                        got = await c.fetch(
                            Q["claim_service"], lane, service_id, now, lease_until, share, self.process
                        )
                        rows.extend(got)
                        if len(got) == share:
                            hungry.append(service_id)
                        if len(rows) >= limit:
                            break
                    services = hungry
                if len(rows) >= limit:
                    break
            return rows

        rows = await self._tx(job)
        rows.sort(key=lambda r: (r[11], r[0]))
        return [due_message(r) for r in rows]

    async def next_due(self) -> float | None:
        value = await self._read(lambda c: c.fetchval(Q["next_due"]))
        return None if value is None else float(value)

    async def backlog(self) -> tuple[dict[int, int], list[tuple[str, int]]]:
        async def job(c: Conn) -> tuple[dict[int, int], list[tuple[str, int]]]:
            lanes = {int(r[0]): int(r[1]) for r in await c.fetch(Q["queue_depth"])}
            return lanes, [(str(r[0]), int(r[1])) for r in await c.fetch(Q["notification_backlog"])]

        return await self._read(job)

    async def record(self, updates: Sequence[Update], notice: ExtNotice | None = None) -> None:
        ordered = sorted(updates, key=lambda u: u.transid)  # rows are locked in one order everywhere
        statuses, events, reschedules, notes = [], [], [], []
        reroutes = [(u.transid, *u.reroute) for u in ordered if u.reroute is not None]
        for u in ordered:
            if u.outcome is None:
                reschedules.append((u.transid, u.next_at, u.attempts, u.error, u.at))
                continue
            o = u.outcome
            pending = encode_outcome(u.pending)
            statuses.append(
                (
                    u.transid,
                    o.status.word,
                    o.code,
                    o.description,
                    u.at,
                    u.next_at,
                    u.attempts,
                    u.ext_id,
                    pending,
                    u.error,
                )
            )
            events.append((u.transid, o.status.word, o.code, o.description, u.at))
            if (n := u.notification) is not None:
                notes.append((n.event_id, u.transid, u.service_id, n.url, n.body, u.at, n.gtrid))
        parts = [(key, u.transid, n) for u in ordered for n, key in enumerate(u.part_ids, start=1)]
        gone = [
            (u.transid, u.service_id, u.outcome.code, u.outcome.description, u.at)
            for u in ordered
            if u.gone and u.outcome is not None
        ]
        sent = sent_ids(ordered)
        ext_keys = sorted(sent)
        sends = status_sends(ordered) if notice is not None else {}
        attempts, retried = attempt_rows(updates)

        due_pending = pending_transids(ordered)

        async def job(c: Conn) -> None:
            if ext_keys:
                # Against apply_receipts: a receipt for these ids either sees them recorded or leaves an
                # early receipt that the query below finds.
                await c.execute(Q["lock_keys"], [f"x:{k}" for k in ext_keys])
            stale: set[str] = set()
            if due_pending:
                live = await c.fetch(Q["still_pending"], due_pending)
                stale = set(due_pending) - {str(row[0]) for row in live}
            await c.executemany(Q["record_status"], _keep(statuses, stale))
            await c.executemany(Q["remember_gone"], gone)
            await c.executemany(Q["insert_event"], _keep(events, stale))
            await c.executemany(Q["reschedule"], reschedules)
            await c.executemany(Q["reroute"], reroutes)
            await c.executemany(Q["insert_notification"], [n for n in notes if n[1] not in stale])
            await c.executemany(Q["insert_part"], parts)
            if attempts:
                await c.executemany(Q["insert_attempt"], attempts)
            if retried:
                await c.executemany(Q["insert_retry_attempt"], retried)
            if ext_keys:
                early = await c.fetch(Q["take_early_receipts"], ext_keys)
                for target, outcome, at in early_matches(sent, early):
                    await _give(c, target, outcome, at)
            if sends and notice is not None:  # one indexed query per batch; x:<key> is locked above
                kept = await c.fetch(Q["take_early_statuses"], sorted(sends))
                if kept:
                    await _advance_by_ext(c, early_changes(sends, kept), notice, set())

        await self._tx(job)

    async def apply_receipts(self, receipts: Sequence[IncomingReceipt], notice: ReceiptNotice) -> None:
        # Set-based: a few round trips per batch, whatever its size. Receipts come in thousands a second,
        # and a round trip per receipt per step was what limited delivery.
        keys = sorted({key for r in receipts for key in r.keys})

        async def finish(c: Conn, transid: str, outcome: Outcome, at: float) -> None:
            await self._finish_many(c, {transid: (outcome, at)}, notice)

        async def job(c: Conn) -> None:
            await c.execute(Q["lock_keys"], [f"x:{k}" for k in keys])
            waiting: dict[str, list[Waiting]] = {}
            for row in await c.fetch(Q["waiting_for_receipts"], keys):
                waiting.setdefault(row[0], []).append(Waiting(row[1], row[2]))
            whole: dict[str, tuple[Outcome, float]] = {}
            in_parts: list[tuple[Waiting, IncomingReceipt]] = []
            early: list[tuple[str, str, str, float]] = []
            for r, target in zip(receipts, match_receipts(receipts, waiting), strict=True):
                if target is None:
                    encoded = encode_outcome(r.outcome)
                    assert encoded is not None
                    early += [(k, r.keys[0], encoded, r.at) for k in r.keys]
                elif target.part is None:
                    whole[target.transid] = (r.outcome, r.at)
                else:
                    in_parts.append((target, r))
            if in_parts:  # rare: messages in several parts. Every row locked at once, in one order.
                await c.execute(Q["lock_messages"], sorted({t.transid for t, _ in in_parts} | set(whole)))
            await self._finish_many(c, whole, notice)
            for target, r in in_parts:
                await _give(c, target, r.outcome, r.at, finish)
            await c.executemany(Q["insert_early_receipt"], early)

        await self._tx(job)

    async def _finish_many(
        self, c: Conn, outcomes: dict[str, tuple[Outcome, float]], notice: ReceiptNotice
    ) -> None:
        """Give each Submitted message its receipt's final status, history entry and notification; a
        message already final is left alone (a repeated receipt changes nothing)."""
        if not outcomes:
            return
        rows = await c.fetch(Q["receipt_targets"], sorted(outcomes))
        finished, events, notes = [], [], []
        for row in rows:
            target = ReceiptTarget(*row)
            outcome, at = outcomes[target.transid]
            word, code, text = outcome.status.word, outcome.code, outcome.description
            finished.append((target.transid, word, code, text, at))
            events.append((target.transid, word, code, text, at))
            if (n := notice(target, outcome, at)) is not None:
                notes.append((n.event_id, target.transid, target.service_id, n.url, n.body, at, n.gtrid))
        await c.executemany(Q["finish_by_receipt"], finished)
        await c.executemany(Q["insert_event"], events)
        await c.executemany(Q["insert_notification"], notes)

    async def record_inbound(
        self,
        message: InboundMessage,
        notification: OutgoingNotification | None,
        consent: ConsentChange | None,
    ) -> bool:
        m = message

        async def job(c: Conn) -> bool:
            row = (m.tid, m.service_id, m.channel, m.source, m.destination, m.text, m.parts, m.at)
            if await c.execute(Q["insert_inbound"], *row) != "INSERT 0 1":
                return False  # kept already: its webhook and consent change were done then
            if notification is not None and m.service_id is not None:
                n = notification
                await c.execute(
                    Q["insert_notification"], n.event_id, m.tid, m.service_id, n.url, n.body, m.at, n.gtrid
                )
            if consent is not None:
                await c.execute(Q["upsert_consent"], *_consent_row(consent))
            return True

        return await self._tx(job)

    async def click(self, code: str, at: float) -> Click | None:
        row = await self._tx(lambda c: c.fetchrow(Q["click_link"], code, at))
        return None if row is None else Click(row[0], row[1], row[2], row[3], row[4], bool(row[5]))

    async def find_link(self, code: str) -> Click | None:
        row = await self._read(lambda c: c.fetchrow(Q["find_link"], code))
        return None if row is None else Click(row[0], row[1], row[2], row[3], row[4], bool(row[5]))

    async def earlier_answer(self, service_id: str, key: str, now: float) -> bytes | None:
        query, fresh_after = Q["get_fresh_idempotent"], now - IDEMPOTENCY_S
        found = await self._read(lambda c: c.fetchval(query, service_id, key, fresh_after))
        return None if found is None else bytes(found)

    async def add_notification(self, transid: str, service_id: str, note: OutgoingNotification) -> None:
        async def job(c: Conn) -> None:
            # Against finish_notifications' promotion; a message purged since its caller read it gets
            # none (nothing would ever delete it).
            if await c.fetchval(Q["lock_message"], transid) is None:
                return
            row = (note.event_id, transid, service_id, note.url, note.body, clock.now(), note.gtrid)
            await c.execute(Q["insert_notification"], *row)

        await self._tx(job)

    async def save_consent(self, consent: ConsentChange) -> None:
        await self._tx(lambda c: c.execute(Q["upsert_consent"], *_consent_row(consent)))

    async def delete_consent(self, service_id: str, group_id: str, address: str, channel: str | None) -> None:
        await self._tx(lambda c: c.execute(Q["delete_consent"], service_id, group_id, address, channel))

    async def get_consent(
        self, service_id: str, group_id: str, channel: str, address: str
    ) -> ConsentChange | None:
        r = await self._read(lambda c: c.fetchrow(Q["get_consent"], service_id, group_id, channel, address))
        if r is None:
            return None
        return ConsentChange(service_id, group_id, channel, address, bool(r[0]), r[1], r[2], r[3], r[4])

    async def check_policies(self, checks: Sequence[PolicyCheck], now: float) -> dict[str, str]:
        # Two workers checking the same address must take turns, or both could send the last allowed
        # message: one lock per (service, group, category, address), all taken at the start.
        keys = sorted({f"p:{p.service_id}|{p.group_id}|{p.category}|{p.address}" for p in checks})

        async def job(c: Conn) -> dict[str, str]:
            await c.execute(Q["lock_keys"], keys)
            refused: dict[str, str] = {}
            for p in checks:
                code = await _refusal(c, p, now)
                if code is not None:
                    refused[p.transid] = code
                    continue
                if p.limits:
                    await c.execute(
                        Q["insert_policy_send"], p.service_id, p.group_id, p.category, p.address, now
                    )
                await c.execute(Q["clear_policy"], p.transid)
            return refused

        return await self._tx(job)

    async def get_message(self, service_id: str, transid: str) -> MessageRecord | None:
        async def job(c: Conn) -> MessageRecord | None:
            r = await c.fetchrow(Q["get_message"], transid, service_id)
            if r is None:
                return None
            events = await c.fetch(Q["get_events"], transid)
            notes = await c.fetch(Q["get_notifications"], transid)
            clicks = await c.fetchval(Q["message_clicks"], transid)
            return message_record(r, events, notes, clicks)

        return await self._read(job)

    async def attempts_of(self, service_id: str, transid: str) -> list[ProviderAttempt]:
        rows = await self._read(lambda c: c.fetch(Q["attempts_of"], transid, service_id))
        return [provider_attempt(r) for r in rows]

    async def advance(self, changes: Sequence[Advance], notice: ReceiptNotice) -> list[bool]:
        transids = sorted({a.transid for a in changes})

        async def job(c: Conn) -> list[bool]:
            found: dict[str, tuple[ReceiptTarget, Status]] = {}
            for row in await c.fetch(Q["advance_targets"], transids):
                found[row[0]] = (receipt_target(row), Status.from_word(row[9]))
            moved: list[bool] = []
            statuses, events, notes = [], [], []
            # In order: a change sees the ones before it (Read, then a late Delivered, is behind).
            for a in changes:
                got, o = found.get(a.transid), a.outcome
                if got is None or got[0].service_id != a.service_id or not moves_forward(got[1], o.status):
                    moved.append(False)
                    continue
                target = got[0]
                found[a.transid] = (target, o.status)
                statuses.append((a.transid, o.status.word, o.code, o.description, a.at))
                events.append((a.transid, o.status.word, o.code, o.description, a.at))
                if (n := notice(target, o, a.at)) is not None:
                    notes.append((n.event_id, a.transid, a.service_id, n.url, n.body, a.at, n.gtrid))
                moved.append(True)
            await c.executemany(Q["advance_status"], statuses)
            await c.executemany(Q["insert_event"], events)
            await c.executemany(Q["insert_notification"], notes)
            return moved

        return await self._tx(job)

    async def advance_by_ext(
        self, changes: Sequence[ExtAdvance | Watermark], notice: ExtNotice
    ) -> list[bool | None]:
        async def job(c: Conn) -> list[bool | None]:
            unknown: set[str] = set()
            moved = await _advance_by_ext(c, changes, notice, unknown)
            if not unknown:
                return moved
            # Against the send's record committing meanwhile (it holds lock_keys x:<id> from its start to
            # its commit): with the same locks held, each id is either recorded now, or its record has
            # not begun and will find what is kept here.
            await c.execute(Q["lock_keys"], [f"x:{k}" for k in sorted(unknown)])
            later = [
                (i, a) for i, a in enumerate(changes) if isinstance(a, ExtAdvance) and a.ext_id in unknown
            ]
            again = await _advance_by_ext(c, [a for _, a in later], notice, set())
            for (i, _), result in zip(later, again, strict=True):
                moved[i] = result
            early = [a for (_, a), result in zip(later, again, strict=True) if result is None]
            if early:
                await c.execute(Q["forget_early_statuses"], clock.now() - EARLY_RECEIPT_WINDOW_S)
                await c.executemany(Q["keep_early_status"], early_rows(early))
            return moved

        return await self._tx(job)

    async def message_target(self, transid: str) -> tuple[ReceiptTarget, Status] | None:
        row = await self._read(lambda c: c.fetchrow(Q["report_target"], transid))
        return (receipt_target(row), Status.from_word(row[9])) if row is not None else None

    async def report(self, reports: Sequence[Report], notice: ExtNotice) -> list[bool | None]:
        async def job(c: Conn) -> list[bool | None]:
            moved: list[bool | None] = []
            for r in reports:  # in order: each sees the ones before it
                row = await c.fetchrow(Q["report_target"], r.transid)
                if row is None:
                    moved.append(None)
                    continue
                target = receipt_target(row)
                if (g := r.gone) is not None:
                    gone = (r.transid, target.service_id, g.code, g.description, r.at)
                    await c.execute(Q["remember_gone"], *gone)
                o = r.outcome
                if o is None or not ext_moves(Status.from_word(row[9]), o.status):
                    moved.append(False)
                    continue
                await _move(c, target, o, r.at, notice(target, o, r.at, r.additional_info))
                moved.append(True)
            return moved

        return await self._tx(job)

    async def advance_by_watermark(
        self,
        service_id: str,
        address: str,
        before: float,
        steps: Sequence[Outcome],
        at: float,
        notice: ExtNotice,
    ) -> list[str]:
        mark = Watermark(service_id, address, before, steps, at)
        return await self._tx(lambda c: _watermark_moves(c, mark, notice))

    # -- devices and gone addresses --------------------------------------------------------------

    async def save_device(self, device: Device) -> Device:
        d = new_device(device, clock.now())
        row = (d.device_id, d.app_id, d.service_id, d.user_id, d.customer_id, d.platform, d.provider,
               d.token, d.p256dh, d.auth, d.created_at, d.updated_at)  # fmt: skip
        return device_record(await self._tx(lambda c: c.fetchrow(Q["save_device"], *row)))

    async def list_devices(self, app_id: str, user_id: str | None = None) -> list[Device]:
        if user_id is not None:
            return await self.find_devices(app_id, "user_id", user_id)
        rows = await self._read(lambda c: c.fetch(Q["devices_of_app"], app_id))
        return [device_record(r) for r in rows]

    async def find_devices(self, app_id: str, key: str, value: str) -> list[Device]:
        query = Q[device_query(key)]
        return [device_record(r) for r in await self._read(lambda c: c.fetch(query, app_id, value))]

    async def devices_for(self, app_id: str, key: str, values: Sequence[str]) -> dict[str, list[Device]]:
        query, wanted = Q[device_query(key, "for")], list(values)
        if not wanted:
            return {}
        return devices_by_value(key, await self._read(lambda c: c.fetch(query, app_id, wanted)))

    async def delete_devices(self, app_id: str, device_ids: Sequence[str]) -> int:
        status = await self._tx(lambda c: c.execute(Q["delete_devices"], app_id, list(device_ids)))
        return int(status.rsplit(" ", 1)[1])

    async def last_inbound(self, service_id: str, channel: str, sources: Sequence[str]) -> dict[str, float]:
        if not sources:
            return {}
        query, wanted = Q["last_inbound"], list(sources)
        rows = await self._read(lambda c: c.fetch(query, service_id, channel, wanted))
        return {r[0]: float(r[1]) for r in rows}

    async def gone_addresses(
        self, service_id: str, channel: str, addresses: Sequence[str]
    ) -> dict[str, GoneAddress]:
        if not addresses:
            return {}
        query, wanted = Q["gone_addresses"], list(addresses)
        rows = await self._read(lambda c: c.fetch(query, service_id, channel, wanted))
        return {r[2]: gone_record(r) for r in rows}

    async def list_gone(self, service_id: str | None = None) -> list[GoneAddress]:
        return [gone_record(r) for r in await self._read(lambda c: c.fetch(Q["list_gone"], service_id))]

    async def forget_gone(self, service_id: str, channel: str, address: str) -> bool:
        status = await self._tx(lambda c: c.execute(Q["forget_gone"], service_id, channel, address))
        return bool(status == "DELETE 1")

    # -- notifications ---------------------------------------------------------------------------

    async def claim_notifications(
        self, now: float, limit: int, lease_s: float, busy: Sequence[str] = ()
    ) -> list[ClaimedNotification]:
        rows = await self._tx(
            lambda c: c.fetch(Q["claim_notifications"], now, now + lease_s, limit, self.process, list(busy))
        )
        return [ClaimedNotification(*r) for r in sorted(rows, key=lambda r: r[0])]

    async def finish_notifications(self, results: Sequence[NotificationResult]) -> None:
        rows = [(r.seq, r.state, r.at, r.next_at, r.http_status, r.error, int(r.counted)) for r in results]
        finished = [(r.seq, r.at) for r in results if r.state != "pending"]

        async def job(c: Conn) -> None:
            if finished:
                # Against insert_notification: a new notification for the same message either sees this
                # one finished or is promoted below.
                transids = await c.fetch(Q["transids_of_notifications"], [seq for seq, _ in finished])
                await c.execute(Q["lock_messages"], sorted({r[0] for r in transids}))
            await c.executemany(Q["finish_notification"], rows)
            await c.executemany(Q["promote_next_notification"], finished)

        await self._tx(job)

    # -- the connectors' reports of every process ------------------------------------------------------

    async def publish_reports(
        self, process: ProcessRecord, reports: Sequence[tuple[str, str]], forget_after_s: float
    ) -> None:
        who = (process.id, process.host, process.pid, process.role, process.started_at)
        rows = [(who[0], name, *who[1:], body) for name, body in reports]

        async def job(c: Conn) -> None:
            await c.executemany(Q["publish_report"], rows)
            await c.execute(Q["unpublish_other_connectors"], process.id, [name for name, _ in reports])
            await c.execute(Q["forget_reports"], forget_after_s)

        await self._tx(job)

    async def published_reports(self) -> list[PublishedReport]:
        rows = await self._read(lambda c: c.fetch(Q["published_reports"]))
        return [
            PublishedReport(ProcessRecord(r[0], r[2], r[3], r[4], r[5]), r[1], r[7], max(0.0, r[6]))
            for r in rows
        ]

    async def unpublish_reports(self, process_id: str) -> None:
        await self._tx(lambda c: c.execute(Q["unpublish_reports"], process_id))


async def _migrate(conn: Conn, schema: str | None) -> None:
    # Under the lock: processes starting together would otherwise race to create the same schema.
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        if schema:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(f'SET search_path TO "{schema}"')
        await conn.execute("CREATE TABLE IF NOT EXISTS tidings_migrations (version integer PRIMARY KEY)")
        done = {r[0] for r in await conn.fetch("SELECT version FROM tidings_migrations")}
        for number, sql in load_migrations("postgres"):
            if number not in done:
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO tidings_migrations (version) VALUES ($1)", number)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


async def _refusal(c: Conn, p: PolicyCheck, now: float) -> str | None:
    key = (p.service_id, p.category, p.address)
    if p.check_consent:
        # A keyword opt-out (STOP) is service-wide and overrides every group.
        keyword = await c.fetchrow(Q["get_consent"], p.service_id, "", p.category, p.address)
        if keyword is not None and not keyword[0]:
            return "9002"
        record = await c.fetchrow(Q["get_consent"], p.service_id, p.group_id, p.category, p.address)
        if record is None:
            if p.opt_in:
                return "9002"
        elif record[3] is not None and record[3] <= now:
            return "9010"
        elif not record[0]:
            return "9002"
    for window, most in p.limits:
        sent = await c.fetchval(Q["count_policy_sends"], key[0], p.group_id, key[1], key[2], now - window)
        if sent >= most:
            return "9006"
    return None


Apply = Callable[[Conn, str, Outcome, float], Awaitable[None]]


async def _give(c: Conn, target: Waiting, outcome: Outcome, at: float, apply: Apply | None = None) -> None:
    """Give `target` its receipt. With `apply`, the message's final outcome is applied at once; without,
    it becomes the message's pending outcome, due now, for the dispatcher to apply. A part only counts
    towards its message's outcome, final once every part's is."""
    final: Outcome | None = outcome
    if target.part is not None:
        # The parts' receipts may be applied by concurrent transactions: the message's lock makes the
        # last one see every other part's outcome.
        await c.execute(Q["lock_message"], target.transid)
        await c.execute(Q["set_part_outcome"], target.transid, target.part, encode_outcome(outcome))
        final = settled([decode_outcome(r[0]) for r in await c.fetch(Q["part_outcomes"], target.transid)])
    if final is None:
        return
    if apply is not None:
        await apply(c, target.transid, final, at)
    else:
        await c.execute(Q["stage_receipt"], target.transid, encode_outcome(final), at)


async def _move(
    c: Conn, target: ReceiptTarget, o: Outcome, at: float, n: OutgoingNotification | None
) -> None:
    """Give a message the status an advance decided on, its history entry and its notification."""
    change = (target.transid, o.status.word, o.code, o.description, at)
    await c.execute(Q["advance_status"], *change)
    await c.execute(Q["insert_event"], *change)
    if n is not None:
        row = (n.event_id, target.transid, target.service_id, n.url, n.body, at, n.gtrid)
        await c.execute(Q["insert_notification"], *row)


async def _advance_by_ext(
    c: Conn, changes: Sequence[ExtAdvance | Watermark], notice: ExtNotice, unknown: set[str]
) -> list[bool | None]:
    """`Store.advance_by_ext`'s moves, one at a time, in order: each change sees the ones before it (a
    wamid's read, then its late delivered; a Messenger read watermark after a delivery's mids). None
    for an id no message has; such ids go into `unknown`, and every later change naming one is left
    (None) too, so a status never overtakes an earlier one."""
    moved: list[bool | None] = []
    for a in changes:
        if isinstance(a, Watermark):
            moved.append(bool(await _watermark_moves(c, a, notice)))
            continue
        row = None if a.ext_id in unknown else await c.fetchrow(Q["ext_target"], a.ext_id, a.service_id)
        if row is None:
            unknown.add(a.ext_id)
            moved.append(None)
            continue
        if not ext_moves(Status.from_word(row[9]), a.outcome.status):
            moved.append(False)
            continue
        target = receipt_target(row)
        await _move(c, target, a.outcome, a.at, notice(target, a.outcome, a.at, a.additional_info))
        moved.append(True)
    return moved


async def _watermark_moves(c: Conn, w: Watermark, notice: ExtNotice) -> list[str]:
    """A watermark's moves, oldest message first; the transids that moved."""
    moved: list[str] = []
    for row in await c.fetch(Q["watermark_targets"], w.service_id, w.address, w.before):
        target, status = receipt_target(row), Status.from_word(row[9])
        for o in w.steps:
            if moves_forward(status, o.status):
                await _move(c, target, o, w.at, notice(target, o, w.at, ""))
                status = o.status
                if not moved or moved[-1] != target.transid:
                    moved.append(target.transid)
    return moved


def _caller() -> str:
    """The store method that called `_tx` or `_read` (two frames up): what the watchdog calls the wait."""
    return "store." + sys._getframe(2).f_code.co_name


def _backend_line(r: Any) -> str:
    """A `backend_waits` row in words."""
    pid, state, wait_type, wait, xact_s, query_s, query, blockers = r
    line = f"pid {pid} {state}"
    if query_s is not None:
        line += f" for {query_s:.1f} s"
    if xact_s is not None:
        line += f" (transaction {xact_s:.1f} s)"
    if wait_type:
        line += f", waiting for {wait_type}/{wait}"
    if blockers:
        line += ", blocked by " + "; ".join(blockers)
    return f"{line}: {query}"


def _consent_row(c: ConsentChange) -> tuple[Any, ...]:
    return (c.service_id, c.group_id, c.channel, c.address, c.consent, c.reason, c.source, c.expires, c.at)


def _settle(future: "asyncio.Future[None]", error: Exception | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _keep(rows: list[tuple[Any, ...]], stale: set[str]) -> list[tuple[Any, ...]]:
    """Rows whose first column, the transid, is not in `stale`."""
    return [row for row in rows if row[0] not in stale] if stale else rows
