"""The embedded SQLite store: one connection, on the event loop's thread, committing many callers'
work together.

Every call becomes a job; the jobs queued while the loop runs are committed together (group commit), so
one fsync serves many accepted requests: that is what lets a durable single-destination accept run at
thousands of requests per second. See `SqliteStore._call` for why there is no writer thread.
"""

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal, NamedTuple, TypeVar

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
    receiver_of,
)
from tidings.store.listing_sqlite import SqliteListing
from tidings.store.purge_sqlite import SqlitePurge, forget_expired_rows
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
    message_record,
    moves_forward,
    new_device,
    provider_attempt,
    receipt_target,
    sent_ids,
    settled,
    status_sends,
)

log = logging.getLogger("tidings.store")
T = TypeVar("T")
Q = load_queries("sqlite")
BACKGROUND_COMMIT_DELAY_S = 0.002


class Job(NamedTuple):
    fn: Callable[[sqlite3.Connection], Any]
    future: "asyncio.Future[Any]"
    # Must survive power loss before it is answered (accepts, services); anything else may be redone
    # after a power cut, and a commit survives a crash of this process either way (WAL).
    durable: bool


class _Result(NamedTuple):
    future: "asyncio.Future[Any]"
    value: Any
    error: BaseException | None


class StoreLocked(StoreUnavailable):
    """Another Tidings process has this SQLite file."""


class SqliteStore(SqliteListing, SqlitePurge):
    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._pending: list[Job] = []
        self._flush_soon = False
        self._flush_later: asyncio.TimerHandle | None = None
        self._synchronous = ""

    # -- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        try:
            self._take_lock()
        except OSError as exc:
            raise StoreUnavailable(f"cannot use {self.path}: {exc.strerror}") from None
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect()
            _migrate(conn)
            now = clock.now()
            conn.execute(Q["release_leases"], {"now": now})
            conn.execute(Q["release_notification_leases"], {"now": now})
            forget_expired_rows(conn, now)
            conn.execute(Q["unpublish_every_report"])
        except BaseException as exc:
            if conn is not None:
                conn.close()
            self._release_lock()
            if isinstance(exc, sqlite3.Error):
                raise StoreUnavailable(f"cannot use {self.path}: {exc}") from None
            raise
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            if self._pending:
                self._flush()
            self._conn.close()
            self._conn = None
        self._release_lock()

    def _take_lock(self) -> None:
        # SQLite allows several processes on one file, but two writers push p99 latency past a second
        # (MEASURED.md); one Tidings process owns the file, which also makes lease recovery at start safe.
        fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLocked(f"{self.path} is in use by another Tidings process") from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        self._synchronous = "FULL"
        conn.create_function("receiver_of", 1, receiver_of, deterministic=True)
        conn.execute("PRAGMA busy_timeout=1000")  # it would stall the event loop; only foreign writers wait
        conn.execute("PRAGMA cache_size=-65536")
        return conn

    async def _call(self, fn: Callable[[sqlite3.Connection], T], durable: bool = False) -> T:
        """Queue a job for the next group commit and wait for its result.

        Jobs run on the event loop's own thread: a writer thread would hand the GIL back and forth
        around every statement SQLite steps, and under load that convoy cost more than the statements.
        The commit runs once the callbacks already ready have run, so every request that arrived in
        the same loop iteration shares it (and its fsync)."""
        if self._conn is None:
            raise RuntimeError("the store is not open")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._pending.append(Job(fn, fut, durable))
        if durable and not self._flush_soon:
            # Someone is waiting to answer an HTTP request: commit at the end of this iteration.
            self._flush_soon = True
            if self._flush_later is not None:
                self._flush_later.cancel()
                self._flush_later = None
            loop.call_soon(self._flush)
        elif not self._flush_soon and self._flush_later is None:
            # Background work (claims, status changes, results) waits a moment for company: fewer,
            # larger commits rewrite far fewer WAL pages per row.
            self._flush_later = loop.call_later(BACKGROUND_COMMIT_DELAY_S, self._flush)
        return await fut

    def _flush(self) -> None:
        self._flush_soon = False
        if self._flush_later is not None:
            self._flush_later.cancel()
            self._flush_later = None
        # A caller that stopped waiting (a client that hung up, a task cancelled at shutdown) has its job
        # dropped: it may write again later, and must not find its first write done behind its back.
        batch = [job for job in self._pending if not job.future.cancelled()]
        self._pending = []
        if not batch:
            return
        if self._conn is None:
            _settle([_Result(job.future, None, RuntimeError("the store is closed")) for job in batch])
            return
        started = time.perf_counter()
        try:
            results = self._commit(self._conn, batch)
            METRICS.commit("sqlite", time.perf_counter() - started)
        except BaseException as exc:  # a bad batch fails its callers, never the store
            log.exception("SQLite batch failed")
            _abort(self._conn)
            _settle([_Result(job.future, None, exc) for job in batch])
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            return
        _settle(results)

    def _commit(self, conn: sqlite3.Connection, batch: list[Job]) -> list[_Result]:
        """Run the batch's jobs in one transaction and commit once. If a job fails, the transaction is
        rolled back and the jobs are run again each in its own savepoint, so only the failing one fails
        (jobs are pure functions of their arguments and the database, so running one again is safe)."""
        # In WAL mode a commit survives a crash of this process either way; only an fsync (FULL) makes
        # it survive power loss. Accepts need that before they are answered; a status change or a
        # notification result may be redone after a power cut, so batches of those skip the fsync.
        # (An fsync in a thread instead measured slower: each handback of the GIL costs the loop.)
        _abort(conn)  # never build on a transaction an earlier failure left open
        wanted = "FULL" if any(job.durable for job in batch) else "NORMAL"
        if wanted != self._synchronous:
            conn.execute(f"PRAGMA synchronous={wanted}")
            self._synchronous = wanted
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # busy_timeout has already waited for another writer
            return [_Result(job.future, None, exc) for job in batch]
        try:
            results = [_Result(job.future, _run(job.fn, conn), None) for job in batch]
        except Exception:
            _abort(conn)
            return self._commit_one_by_one(conn, batch)
        return self._finish(conn, results)

    def _commit_one_by_one(self, conn: sqlite3.Connection, batch: list[Job]) -> list[_Result]:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            return [_Result(job.future, None, exc) for job in batch]
        results: list[_Result] = []
        for fn, fut, _ in batch:
            try:
                conn.execute("SAVEPOINT job")
                value = _run(fn, conn)
                conn.execute("RELEASE job")
            except Exception as exc:
                if not _undo_job(conn):  # SQLite abandoned the transaction (disk full, I/O error)
                    _abort(conn)
                    return [_Result(job.future, None, exc) for job in batch]
                results.append(_Result(fut, None, exc))
            else:
                results.append(_Result(fut, value, None))
        return self._finish(conn, results)

    def _finish(self, conn: sqlite3.Connection, results: list[_Result]) -> list[_Result]:
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _abort(conn)
            return [_Result(r.future, None, exc) for r in results]
        return results

    async def ping(self) -> None:
        await self._call(lambda c: c.execute("SELECT 1").fetchone())

    async def waits(self) -> list[str]:
        # Jobs run on the event loop's thread: a stuck one stops the loop, which the loop monitor reports.
        return []

    # -- catalogue -------------------------------------------------------------------------------

    async def load_catalogue(self) -> tuple[int, list[CatalogueEntry]]:
        def job(c: sqlite3.Connection) -> tuple[int, list[CatalogueEntry]]:
            revision = c.execute(Q["catalogue_revision"]).fetchone()[0]
            rows = c.execute(Q["load_catalogue"]).fetchall()
            return revision, [CatalogueEntry(r[0], r[1], r[2].encode(), r[3]) for r in rows]

        return await self._call(job)

    async def catalogue_revision(self) -> int:
        return int(await self._call(lambda c: c.execute(Q["catalogue_revision"]).fetchone()[0]))

    async def change_catalogue(self, change: CatalogueEntry, how: Literal["add", "update", "delete"]) -> bool:
        query = {"add": "insert_catalogue", "update": "update_catalogue", "delete": "delete_catalogue"}[how]
        row = {"kind": change.kind, "name": change.name, "body": change.body.decode(),
               "origin": change.origin, "now": clock.now()}  # fmt: skip

        def job(c: sqlite3.Connection) -> bool:
            if c.execute(Q[query], row).rowcount != 1:
                return False
            c.execute(Q["bump_catalogue_revision"])
            return True

        return bool(await self._call(job, durable=True))

    async def seed_catalogue(self, entries: Sequence[CatalogueEntry], drop_demo: bool) -> None:
        now = clock.now()
        rows = [{"kind": e.kind, "name": e.name, "body": e.body.decode(), "now": now} for e in entries]
        named = {(e.kind, e.name) for e in entries}

        def job(c: sqlite3.Connection) -> None:
            c.executemany(Q["seed_catalogue"], rows)
            seeded = c.execute(Q["catalogue_of_origin"], {"origin": "config"}).fetchall()
            gone = [r for r in seeded if tuple(r) not in named]
            if drop_demo:
                gone += c.execute(Q["catalogue_of_origin"], {"origin": "demo"}).fetchall()
            c.executemany(Q["delete_catalogue"], [{"kind": kind, "name": name} for kind, name in gone])
            c.execute(Q["bump_catalogue_revision"])

        await self._call(job, durable=True)

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
                m.priority,
                m.expiry,
                m.created_at,
                m.created_at,
                m.created_at if m.not_before is None else m.not_before,
                m.policy,
                m.receipts,
                m.gtrid,
            )
            for m in messages
        ]
        link_rows = [
            {
                "code": k.code,
                "service_id": k.service_id,
                "transid": k.transid,
                "linkid": k.linkid,
                "expires_at": k.expires_at,
                "at": k.created_at,
                "target": k.target,
                "track": int(k.track),
            }
            for k in links
        ]

        def insert(c: sqlite3.Connection) -> None:
            c.executemany(Q["insert_message"], rows)
            if link_rows:
                c.executemany(Q["insert_link"], link_rows)

        if idempotent is None:
            await self._call(insert, durable=True)
            return None
        key = {"service_id": idempotent.service_id, "key": idempotent.key}

        def job(c: sqlite3.Connection) -> bytes | None:
            found = c.execute(Q["get_idempotent"], key).fetchone()
            if found is not None and found[1] > idempotent.at - IDEMPOTENCY_S:
                return bytes(found[0])
            insert(c)
            c.execute(Q["put_idempotent"], {**key, "response": idempotent.response, "at": idempotent.at})
            return None

        return await self._call(job, durable=True)

    async def claim_due(self, now: float, limit: int, lease_s: float) -> list[DueMessage]:
        rows = await self._call(lambda c: _claim_fairly(c, now, now + lease_s, limit))
        rows.sort(key=lambda r: (r[11], r[0]))
        return [due_message(r) for r in rows]

    async def next_due(self) -> float | None:
        return await self._call(lambda c: c.execute(Q["next_due"]).fetchone()[0])

    async def backlog(self) -> tuple[dict[int, int], list[tuple[str, int]]]:
        def job(c: sqlite3.Connection) -> tuple[dict[int, int], list[tuple[str, int]]]:
            lanes = {int(lane): int(n) for lane, n in c.execute(Q["queue_depth"])}
            return lanes, [(str(url), int(n)) for url, n in c.execute(Q["notification_backlog"])]

        return await self._call(job)

    async def record(self, updates: Sequence[Update], notice: ExtNotice | None = None) -> None:
        status_rows: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        reschedules: list[dict[str, Any]] = []
        notes: list[dict[str, Any]] = []
        reroutes = [
            {"transid": u.transid, "channel": u.reroute[0], "content": u.reroute[1], "parts": u.reroute[2]}
            for u in updates
            if u.reroute is not None
        ]
        for u in updates:
            if u.outcome is None:
                reschedules.append(
                    {
                        "transid": u.transid,
                        "next_at": u.next_at,
                        "attempts": u.attempts,
                        "error": u.error,
                        "at": u.at,
                    }
                )
                continue
            o = u.outcome
            status_rows.append(
                {
                    "transid": u.transid,
                    "status": o.status.word,
                    "code": o.code,
                    "description": o.description,
                    "at": u.at,
                    "next_at": u.next_at,
                    "attempts": u.attempts,
                    "ext_id": u.ext_id,
                    "pending": encode_outcome(u.pending),
                    "error": u.error,
                }
            )
            events.append(
                {
                    "transid": u.transid,
                    "status": o.status.word,
                    "code": o.code,
                    "description": o.description,
                    "at": u.at,
                }
            )
            if (n := u.notification) is not None:
                notes.append(
                    {
                        "event_id": n.event_id,
                        "transid": u.transid,
                        "service_id": u.service_id,
                        "url": n.url,
                        "body": n.body,
                        "at": u.at,
                        "gtrid": n.gtrid,
                    }
                )

        parts = [
            {"key": key, "transid": u.transid, "part": n}
            for u in updates
            for n, key in enumerate(u.part_ids, start=1)
        ]
        gone = [
            {"transid": u.transid, "service_id": u.service_id, "code": u.outcome.code,
             "description": u.outcome.description, "at": u.at}
            for u in updates
            if u.gone and u.outcome is not None
        ]  # fmt: skip
        sent = sent_ids(updates)
        sends = status_sends(updates) if notice is not None else {}
        attempts, retried = attempt_rows(updates)

        due_pending = pending_transids(updates)

        def job(c: sqlite3.Connection) -> None:
            stale: set[str] = set()
            if due_pending:
                live = c.execute(Q["still_pending"], {"keys": json.dumps(due_pending)}).fetchall()
                stale = set(due_pending) - {row[0] for row in live}
            c.executemany(Q["record_status"], _keep(status_rows, stale))
            c.executemany(Q["remember_gone"], gone)
            c.executemany(Q["insert_event"], _keep(events, stale))
            c.executemany(Q["reschedule"], reschedules)
            c.executemany(Q["reroute"], reroutes)
            c.executemany(Q["insert_notification"], _keep(notes, stale))
            c.executemany(Q["insert_part"], parts)
            c.executemany(Q["insert_attempt"], attempts)
            if retried:
                c.executemany(Q["insert_retry_attempt"], retried)
            if sent and c.execute(Q["any_early_receipt"]).fetchone() is not None:
                early = [row for key in sent for row in c.execute(Q["take_early_receipt"], {"key": key})]
                for target, outcome, at in early_matches(sent, early):
                    _give(c, target, outcome, at)
            if sends and notice is not None:  # one indexed query per batch
                kept = c.execute(Q["take_early_statuses"], {"keys": json.dumps(list(sends))}).fetchall()
                if kept:
                    _advance_by_ext(c, early_changes(sends, kept), notice)

        await self._call(job)

    async def apply_receipts(self, receipts: Sequence[IncomingReceipt], notice: ReceiptNotice) -> None:
        def finish(c: sqlite3.Connection, transid: str, outcome: Outcome, at: float) -> None:
            row = c.execute(Q["receipt_target"], {"transid": transid}).fetchone()
            if row is None:
                return  # final already: a repeated receipt changes nothing
            target = ReceiptTarget(*row)
            c.execute(
                Q["finish_by_receipt"],
                {
                    "transid": transid,
                    "status": outcome.status.word,
                    "code": outcome.code,
                    "description": outcome.description,
                    "at": at,
                },
            )
            event = {"transid": transid, "status": outcome.status.word, "code": outcome.code}
            c.execute(Q["insert_event"], {**event, "description": outcome.description, "at": at})
            if (n := notice(target, outcome, at)) is not None:
                note: dict[str, Any] = {"event_id": n.event_id, "transid": transid, "url": n.url}
                note |= {"service_id": target.service_id, "body": n.body, "at": at, "gtrid": n.gtrid}
                c.execute(Q["insert_notification"], note)

        def job(c: sqlite3.Connection) -> None:
            # One receipt at a time: each sees what the ones before it finished, so two receipts for a
            # reused id go to the two messages waiting under it.
            for r in receipts:
                target = _waiting(c, r.keys)
                if target is not None:
                    _give(c, target, r.outcome, r.at, partial(finish, c, at=r.at))
                    continue
                early = {"receipt_id": r.keys[0], "outcome": encode_outcome(r.outcome), "at": r.at}
                for key in r.keys:
                    c.execute(Q["insert_early_receipt"], {"key": key, **early})

        await self._call(job)

    async def record_inbound(
        self,
        message: InboundMessage,
        notification: OutgoingNotification | None,
        consent: ConsentChange | None,
    ) -> bool:
        row = {
            "tid": message.tid,
            "service_id": message.service_id,
            "channel": message.channel,
            "source": message.source,
            "destination": message.destination,
            "text": message.text,
            "parts": message.parts,
            "at": message.at,
        }

        def job(c: sqlite3.Connection) -> bool:
            if c.execute(Q["insert_inbound"], row).rowcount != 1:
                return False  # kept already: its webhook and consent change were done then
            if notification is not None and message.service_id is not None:
                c.execute(
                    Q["insert_notification"],
                    {
                        "event_id": notification.event_id,
                        "transid": message.tid,
                        "service_id": message.service_id,
                        "url": notification.url,
                        "body": notification.body,
                        "at": message.at,
                        "gtrid": notification.gtrid,
                    },
                )
            if consent is not None:
                c.execute(Q["upsert_consent"], _consent_row(consent))
            return True

        # Durable: the SMSC forgets the message once we acknowledge it, which we do after this returns.
        return bool(await self._call(job, durable=True))

    async def click(self, code: str, at: float) -> Click | None:
        row = await self._call(lambda c: c.execute(Q["click_link"], {"code": code, "at": at}).fetchone())
        return None if row is None else Click(row[0], row[1], row[2], row[3], row[4], bool(row[5]))

    async def find_link(self, code: str) -> Click | None:
        row = await self._call(lambda c: c.execute(Q["find_link"], {"code": code}).fetchone())
        return None if row is None else Click(row[0], row[1], row[2], row[3], row[4], bool(row[5]))

    async def earlier_answer(self, service_id: str, key: str, now: float) -> bytes | None:
        key_row = {"service_id": service_id, "key": key}
        found = await self._call(lambda c: c.execute(Q["get_idempotent"], key_row).fetchone())
        return bytes(found[0]) if found is not None and found[1] > now - IDEMPOTENCY_S else None

    async def add_notification(self, transid: str, service_id: str, note: OutgoingNotification) -> None:
        row: dict[str, Any] = {"event_id": note.event_id, "transid": transid, "service_id": service_id}
        row |= {"url": note.url, "body": note.body, "at": clock.now(), "gtrid": note.gtrid}

        def job(c: sqlite3.Connection) -> None:
            # A message purged since its caller read it gets none: nothing would ever delete it.
            if c.execute(Q["message_exists"], {"transid": transid}).fetchone() is not None:
                c.execute(Q["insert_notification"], row)

        await self._call(job)

    async def save_consent(self, consent: ConsentChange) -> None:
        row = _consent_row(consent)
        await self._call(lambda c: c.execute(Q["upsert_consent"], row), durable=True)

    async def delete_consent(self, service_id: str, group_id: str, address: str, channel: str | None) -> None:
        key = {"service_id": service_id, "group_id": group_id, "address": address, "channel": channel}
        await self._call(lambda c: c.execute(Q["delete_consent"], key), durable=True)

    async def check_policies(self, checks: Sequence[PolicyCheck], now: float) -> dict[str, str]:
        return await self._call(lambda c: _check_policies(c, checks, now))

    async def get_consent(
        self, service_id: str, group_id: str, channel: str, address: str
    ) -> ConsentChange | None:
        key = {"service_id": service_id, "group_id": group_id, "channel": channel, "address": address}
        r = await self._call(lambda c: c.execute(Q["get_consent"], key).fetchone())
        if r is None:
            return None
        return ConsentChange(service_id, group_id, channel, address, bool(r[0]), r[1], r[2], r[3], r[4])

    async def get_message(self, service_id: str, transid: str) -> MessageRecord | None:
        def job(c: sqlite3.Connection) -> MessageRecord | None:
            r = c.execute(Q["get_message"], {"transid": transid, "service_id": service_id}).fetchone()
            if r is None:
                return None
            events = c.execute(Q["get_events"], {"transid": transid}).fetchall()
            notes = c.execute(Q["get_notifications"], {"transid": transid}).fetchall()
            clicks = c.execute(Q["message_clicks"], {"transid": transid}).fetchone()[0]
            return message_record(r, events, notes, clicks)

        return await self._call(job)

    async def attempts_of(self, service_id: str, transid: str) -> list[ProviderAttempt]:
        key = {"transid": transid, "service_id": service_id}
        rows = await self._call(lambda c: c.execute(Q["attempts_of"], key).fetchall())
        return [provider_attempt(r) for r in rows]

    async def advance(self, changes: Sequence[Advance], notice: ReceiptNotice) -> list[bool]:
        # In order, one at a time: a change sees the ones before it (Read, then a late Delivered, is
        # behind and ignored). Durable: the app or provider that reported it (a receipts call, an RBM
        # webhook, a tracking pixel) is answered once this returns, and does not say it again.
        return await self._call(lambda c: [_advance(c, a, notice) for a in changes], durable=True)

    async def advance_by_ext(
        self, changes: Sequence[ExtAdvance | Watermark], notice: ExtNotice
    ) -> list[bool | None]:
        def job(c: sqlite3.Connection) -> list[bool | None]:
            results = _advance_by_ext(c, changes, notice)
            early = [
                a
                for a, moved in zip(changes, results, strict=True)
                if moved is None and isinstance(a, ExtAdvance)
            ]
            if early:  # kept for the send's record (one connection: that record is not half-done now)
                c.execute(Q["forget_early_statuses"], {"before": clock.now() - EARLY_RECEIPT_WINDOW_S})
                c.executemany(Q["keep_early_status"], early_rows(early))
            return results

        # Durable: Meta forgets a status once we answer its webhook, which we do after this returns.
        return await self._call(job, durable=True)

    async def message_target(self, transid: str) -> tuple[ReceiptTarget, Status] | None:
        row = await self._call(lambda c: c.execute(Q["report_target"], {"transid": transid}).fetchone())
        return (receipt_target(row), Status.from_word(row[9])) if row is not None else None

    async def report(self, reports: Sequence[Report], notice: ExtNotice) -> list[bool | None]:
        def one(c: sqlite3.Connection, r: Report) -> bool | None:
            row = c.execute(Q["report_target"], {"transid": r.transid}).fetchone()
            if row is None:
                return None
            target = receipt_target(row)
            if (g := r.gone) is not None:
                gone = {"transid": r.transid, "service_id": target.service_id, "at": r.at}
                c.execute(Q["remember_gone"], {**gone, "code": g.code, "description": g.description})
            o = r.outcome
            if o is None or not ext_moves(Status.from_word(row[9]), o.status):
                return False
            _move(c, target, o, r.at, notice(target, o, r.at, r.additional_info))
            return True

        # Durable: the reporting mail server is answered once this returns, and then forgets the report.
        return await self._call(lambda c: [one(c, r) for r in reports], durable=True)

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

        def job(c: sqlite3.Connection) -> list[str]:
            moves: list[_Moved] = []
            moved = _watermark_moves(c, mark, notice, {}, moves)
            _move_many(c, moves)
            return moved

        return await self._call(job, durable=True)

    # -- devices and gone addresses --------------------------------------------------------------

    async def save_device(self, device: Device) -> Device:
        d = new_device(device, clock.now())
        row = {
            "device_id": d.device_id,
            "app_id": d.app_id,
            "service_id": d.service_id,
            "user_id": d.user_id,
            "customer_id": d.customer_id,
            "platform": d.platform,
            "provider": d.provider,
            "token": d.token,
            "p256dh": d.p256dh,
            "auth": d.auth,
            "created_at": d.created_at,
            "updated_at": d.updated_at,
        }
        saved = await self._call(lambda c: c.execute(Q["save_device"], row).fetchone(), durable=True)
        return device_record(saved)

    async def list_devices(self, app_id: str, user_id: str | None = None) -> list[Device]:
        if user_id is not None:
            return await self.find_devices(app_id, "user_id", user_id)
        rows = await self._call(lambda c: c.execute(Q["devices_of_app"], {"app_id": app_id}).fetchall())
        return [device_record(r) for r in rows]

    async def find_devices(self, app_id: str, key: str, value: str) -> list[Device]:
        query, where = Q[device_query(key)], {"app_id": app_id, "value": value}
        return [device_record(r) for r in await self._call(lambda c: c.execute(query, where).fetchall())]

    async def devices_for(self, app_id: str, key: str, values: Sequence[str]) -> dict[str, list[Device]]:
        query = Q[device_query(key, "for")]
        if not values:
            return {}
        where = {"app_id": app_id, "values": json.dumps(list(values))}
        return devices_by_value(key, await self._call(lambda c: c.execute(query, where).fetchall()))

    async def delete_devices(self, app_id: str, device_ids: Sequence[str]) -> int:
        where = {"app_id": app_id, "device_ids": json.dumps(list(device_ids))}
        return int(await self._call(lambda c: c.execute(Q["delete_devices"], where).rowcount, durable=True))

    async def last_inbound(self, service_id: str, channel: str, sources: Sequence[str]) -> dict[str, float]:
        if not sources:
            return {}
        where = {"service_id": service_id, "channel": channel, "sources": json.dumps(list(sources))}
        rows = await self._call(lambda c: c.execute(Q["last_inbound"], where).fetchall())
        return {r[0]: float(r[1]) for r in rows}

    async def gone_addresses(
        self, service_id: str, channel: str, addresses: Sequence[str]
    ) -> dict[str, GoneAddress]:
        if not addresses:
            return {}
        where = {"service_id": service_id, "channel": channel, "addresses": json.dumps(list(addresses))}
        rows = await self._call(lambda c: c.execute(Q["gone_addresses"], where).fetchall())
        return {r[2]: gone_record(r) for r in rows}

    async def list_gone(self, service_id: str | None = None) -> list[GoneAddress]:
        rows = await self._call(lambda c: c.execute(Q["list_gone"], {"service_id": service_id}).fetchall())
        return [gone_record(r) for r in rows]

    async def forget_gone(self, service_id: str, channel: str, address: str) -> bool:
        key = {"service_id": service_id, "channel": channel, "address": address}
        return bool(await self._call(lambda c: c.execute(Q["forget_gone"], key).rowcount == 1, durable=True))

    # -- notifications ---------------------------------------------------------------------------

    async def claim_notifications(
        self, now: float, limit: int, lease_s: float, busy: Sequence[str] = ()
    ) -> list[ClaimedNotification]:
        params = {"now": now, "lease_until": now + lease_s, "limit": limit, "busy": json.dumps(list(busy))}
        rows = await self._call(lambda c: c.execute(Q["claim_notifications"], params).fetchall())
        rows.sort(key=lambda r: r[0])
        return [ClaimedNotification(*r) for r in rows]

    async def finish_notifications(self, results: Sequence[NotificationResult]) -> None:
        rows = [
            {
                "seq": r.seq,
                "state": r.state,
                "at": r.at,
                "next_at": r.next_at,
                "http_status": r.http_status,
                "error": r.error,
                "counted": int(r.counted),
            }
            for r in results
        ]
        finished = [{"seq": r.seq, "at": r.at} for r in results if r.state != "pending"]

        def job(c: sqlite3.Connection) -> None:
            c.executemany(Q["finish_notification"], rows)
            c.executemany(Q["promote_next_notification"], finished)

        await self._call(job)

    # -- the connectors' reports of every process ------------------------------------------------------

    async def publish_reports(
        self, process: ProcessRecord, reports: Sequence[tuple[str, str]], forget_after_s: float
    ) -> None:
        now = clock.now()
        who = {"process": process.id, "host": process.host, "pid": process.pid, "role": process.role}
        who |= {"started_at": process.started_at, "now": now}
        rows = [{**who, "connector": name, "body": body} for name, body in reports]
        others = {"process": process.id, "connectors": json.dumps([name for name, _ in reports])}

        def job(c: sqlite3.Connection) -> None:
            c.executemany(Q["publish_report"], rows)
            c.execute(Q["unpublish_other_connectors"], others)
            c.execute(Q["forget_reports"], {"before": now - forget_after_s})

        await self._call(job)

    async def published_reports(self) -> list[PublishedReport]:
        rows = await self._call(lambda c: c.execute(Q["published_reports"], {"now": clock.now()}).fetchall())
        return [
            PublishedReport(ProcessRecord(r[0], r[2], r[3], r[4], r[5]), r[1], r[7], max(0.0, r[6]))
            for r in rows
        ]

    async def unpublish_reports(self, process_id: str) -> None:
        await self._call(lambda c: c.execute(Q["unpublish_reports"], {"process": process_id}))


def _check_policies(c: sqlite3.Connection, checks: Sequence[PolicyCheck], now: float) -> dict[str, str]:
    refused: dict[str, str] = {}
    for p in checks:
        code = _refusal(c, p, now)
        if code is not None:
            refused[p.transid] = code
            continue
        key = {
            "service_id": p.service_id,
            "group_id": p.group_id,
            "channel": p.category,
            "address": p.address,
        }
        if p.limits:
            c.execute(Q["insert_policy_send"], {**key, "address": p.address, "at": now})
        c.execute(Q["clear_policy"], {"transid": p.transid})
    return refused


def _refusal(c: sqlite3.Connection, p: PolicyCheck, now: float) -> str | None:
    key = {"service_id": p.service_id, "channel": p.category, "address": p.address}
    if p.check_consent:
        # A keyword opt-out (STOP) is service-wide and overrides every group.
        keyword = c.execute(Q["get_consent"], {**key, "group_id": ""}).fetchone()
        if keyword is not None and not keyword[0]:
            return "9002"
        record = c.execute(Q["get_consent"], {**key, "group_id": p.group_id}).fetchone()
        if record is None:
            if p.opt_in:
                return "9002"
        elif record[3] is not None and record[3] <= now:
            return "9010"
        elif not record[0]:
            return "9002"
    for window, most in p.limits:
        sent = c.execute(Q["count_policy_sends"], {**key, "group_id": p.group_id, "since": now - window})
        if sent.fetchone()[0] >= most:
            return "9006"
    return None


def _claim_fairly(c: sqlite3.Connection, now: float, lease_until: float, limit: int) -> list[Any]:
    """Up to `limit` due rows: receipts first, then by priority lane; within a lane, an equal share for
    every service with due work, and what a service cannot use goes to those that have more."""
    rows: list[Any] = []
    for lane in LANES:
        services = [r[0] for r in c.execute(Q["due_services"], {"lane": lane, "now": now})]
        while services and len(rows) < limit:
            share = max(1, (limit - len(rows)) // len(services))
            hungry = []
            for service_id in services:
                params = {"lane": lane, "service_id": service_id, "now": now, "lease_until": lease_until}
                got = c.execute(Q["claim_service"], {**params, "limit": share}).fetchall()
                rows.extend(got)
                if len(got) == share:
                    hungry.append(service_id)
                if len(rows) >= limit:
                    break
            services = hungry
        if len(rows) >= limit:
            break
    return rows


class _Moved(NamedTuple):
    target: ReceiptTarget
    outcome: Outcome
    at: float
    note: OutgoingNotification | None


def _advance_by_ext(
    c: sqlite3.Connection, changes: Sequence[ExtAdvance | Watermark], notice: ExtNotice
) -> list[bool | None]:
    """`Store.advance_by_ext`'s moves (None for an id no message has), without keeping anything."""
    results: list[bool | None] = []
    moves: list[_Moved] = []
    # A webhook often holds several statuses of one message (sent, then delivered, or a Messenger mid
    # then a watermark over it): each sees the status the ones before it gave, though the moves are
    # written only at the end.
    now: dict[str, Status] = {}
    for a in changes:
        if isinstance(a, Watermark):
            results.append(bool(_watermark_moves(c, a, notice, now, moves)))
            continue
        row = c.execute(Q["ext_target"], {"key": a.ext_id, "service_id": a.service_id}).fetchone()
        if row is None:
            results.append(None)
            continue
        target = receipt_target(row)
        status = now.get(target.transid) or Status.from_word(row[9])
        if not ext_moves(status, a.outcome.status):
            results.append(False)
            continue
        now[target.transid] = a.outcome.status
        note = notice(target, a.outcome, a.at, a.additional_info)
        moves.append(_Moved(target, a.outcome, a.at, note))
        results.append(True)
    _move_many(c, moves)
    return results


def _watermark_moves(
    c: sqlite3.Connection, w: Watermark, notice: ExtNotice, now: dict[str, Status], moves: list[_Moved]
) -> list[str]:
    """Add a watermark's moves to `moves`, each message's status taken from `now` where an earlier
    change not written yet moved it (and noted there); the transids that move."""
    where = {"service_id": w.service_id, "address": w.address, "before": w.before}
    moved: list[str] = []
    for row in c.execute(Q["watermark_targets"], where).fetchall():
        target = receipt_target(row)
        status = now.get(target.transid) or Status.from_word(row[9])
        for o in w.steps:
            if moves_forward(status, o.status):
                moves.append(_Moved(target, o, w.at, notice(target, o, w.at, "")))
                status = now[target.transid] = o.status
                if not moved or moved[-1] != target.transid:
                    moved.append(target.transid)
    return moved


def _waiting(c: sqlite3.Connection, keys: Sequence[str]) -> Waiting | None:
    """What a receipt with these candidate keys applies to: under the first key that has one, the most
    recently sent message (or part) still waiting for its receipt."""
    for key in keys:
        row = c.execute(Q["find_waiting"], {"key": key}).fetchone()
        if row is not None:
            return Waiting(row[0], row[1])
    return None


def _give(
    c: sqlite3.Connection,
    target: Waiting,
    outcome: Outcome,
    at: float,
    apply: Callable[[str, Outcome], None] | None = None,
) -> None:
    """Give `target` its receipt. With `apply`, the message's final outcome is applied at once
    (`apply(transid, outcome)`); without, it becomes the message's pending outcome, due now, for the
    dispatcher to apply. A part only counts towards its message's outcome, final once every part's is."""
    final: Outcome | None = outcome
    if target.part is not None:
        where = {"transid": target.transid, "part": target.part}
        c.execute(Q["set_part_outcome"], {**where, "outcome": encode_outcome(outcome)})
        rows = c.execute(Q["part_outcomes"], {"transid": target.transid}).fetchall()
        final = settled([decode_outcome(r[0]) for r in rows])
    if final is None:
        return
    if apply is not None:
        apply(target.transid, final)
    else:
        c.execute(Q["stage_receipt"], {"transid": target.transid, "outcome": encode_outcome(final), "at": at})


def _advance(c: sqlite3.Connection, a: Advance, notice: ReceiptNotice) -> bool:
    row = c.execute(Q["advance_target"], {"transid": a.transid, "service_id": a.service_id}).fetchone()
    if row is None or not moves_forward(Status.from_word(row[9]), a.outcome.status):
        return False
    target = receipt_target(row)
    _move(c, target, a.outcome, a.at, notice(target, a.outcome, a.at))
    return True


def _move(
    c: sqlite3.Connection, target: ReceiptTarget, o: Outcome, at: float, n: OutgoingNotification | None
) -> None:
    """Give a message the status an advance decided on, its history entry and its notification."""
    _move_many(c, [_Moved(target, o, at, n)])


def _move_many(c: sqlite3.Connection, moves: Sequence[_Moved]) -> None:
    """`_move` for many at once, in order: three executemany calls rather than three statements per
    move (a status webhook of 100 messages is one of the hottest transactions there are)."""
    changes = [
        {
            "transid": m.target.transid,
            "status": m.outcome.status.word,
            "code": m.outcome.code,
            "description": m.outcome.description,
            "at": m.at,
        }
        for m in moves
    ]
    c.executemany(Q["advance_status"], changes)
    c.executemany(Q["insert_event"], changes)
    notes = [
        {
            "event_id": m.note.event_id,
            "transid": m.target.transid,
            "service_id": m.target.service_id,
            "url": m.note.url,
            "body": m.note.body,
            "at": m.at,
            "gtrid": m.note.gtrid,
        }
        for m in moves
        if m.note is not None
    ]
    if notes:
        c.executemany(Q["insert_notification"], notes)


def _consent_row(c: ConsentChange) -> dict[str, Any]:
    return {
        "service_id": c.service_id,
        "group_id": c.group_id,
        "channel": c.channel,
        "address": c.address,
        "consent": int(c.consent),
        "reason": c.reason,
        "source": c.source,
        "expires": c.expires,
        "at": c.at,
    }


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, sql in load_migrations("sqlite"):
        if number > version:
            conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")


def _run(fn: Callable[[sqlite3.Connection], Any], conn: sqlite3.Connection) -> Any:
    value = fn(conn)
    # A cursor freed on the event loop's thread while this thread reuses its cached statement corrupts
    # it ("bad parameter or other API misuse"): it must die here.
    return None if isinstance(value, sqlite3.Cursor) else value


def _undo_job(conn: sqlite3.Connection) -> bool:
    """Roll back the current job's savepoint; False when the whole transaction is already gone."""
    if not conn.in_transaction:
        return False
    try:
        conn.execute("ROLLBACK TO job")
        conn.execute("RELEASE job")
    except sqlite3.Error:
        return False
    return True


def _abort(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _settle(results: list[_Result]) -> None:
    for fut, value, exc in results:
        if fut.cancelled():
            continue
        if exc is not None:
            # A future cannot carry a CancelledError or KeyboardInterrupt to its awaiter as a failure.
            fut.set_exception(
                exc if isinstance(exc, Exception) else RuntimeError(f"store job failed: {exc!r}")
            )
        else:
            fut.set_result(value)


def _keep(rows: list[dict[str, Any]], stale: set[str]) -> list[dict[str, Any]]:
    return [row for row in rows if row["transid"] not in stale] if stale else rows
