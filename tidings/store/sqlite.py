"""The embedded SQLite store: one writer thread that commits many callers' work together.

Every call becomes a job on the writer thread. The thread takes all jobs waiting, runs each in its own
savepoint (a failing job is rolled back alone), and commits them with one fsync: group commit, which
is what lets a durable single-destination accept run at thousands of requests per second.
"""

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

import msgspec

from tidings import clock
from tidings.services import Service
from tidings.statuses import Outcome, Status
from tidings.store.base import (
    ClaimedNotification,
    DueMessage,
    HistoryEntry,
    MessageRecord,
    NewMessage,
    NotificationRecord,
    NotificationResult,
    Update,
)
from tidings.store.queries import load_migrations, load_queries

log = logging.getLogger("tidings.store")
T = TypeVar("T")
Q = load_queries("sqlite")
_MAX_JOBS_PER_COMMIT = 512

Job = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]"]


class _Result(NamedTuple):
    future: "asyncio.Future[Any]"
    value: Any
    error: BaseException | None


class StoreLocked(Exception):
    """Another process has the SQLite file open for writing."""


class SqliteStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dead: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._take_lock()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="tidings-sqlite", daemon=True)
        self._thread.start()
        await ready

    async def close(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

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

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA cache_size=-65536")
        return conn

    def _run(self, ready: "asyncio.Future[None]") -> None:
        assert self._loop is not None
        try:
            conn = self._connect()
            _migrate(conn)
            now = clock.now()
            conn.execute(Q["release_leases"], {"now": now})
            conn.execute(Q["release_notification_leases"], {"now": now})
        except BaseException as exc:
            self._loop.call_soon_threadsafe(_settle, [_Result(ready, None, exc)])
            return
        self._loop.call_soon_threadsafe(_settle, [_Result(ready, None, None)])
        try:
            while self._serve_batch(conn):
                pass
        except BaseException as exc:
            self._dead = exc
            log.critical("the SQLite writer stopped: %s", exc)
            raise
        finally:
            conn.close()

    def _serve_batch(self, conn: sqlite3.Connection) -> bool:
        batch, running = self._take_batch()
        if batch:
            try:
                results = self._commit(conn, batch)
            except Exception as exc:  # never let one bad batch end the writer thread
                log.exception("SQLite batch failed")
                _abort(conn)
                results = [_Result(fut, None, exc) for _, fut in batch]
            assert self._loop is not None
            self._loop.call_soon_threadsafe(_settle, results)
        return running

    def _take_batch(self) -> tuple[list[Job], bool]:
        first = self._jobs.get()
        if first is None:
            return [], False
        batch = [first]
        while len(batch) < _MAX_JOBS_PER_COMMIT:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return batch, False
            batch.append(job)
        return batch, True

    def _commit(self, conn: sqlite3.Connection, batch: list[Job]) -> list[_Result]:
        """Run each job in its own savepoint and commit them all; a failing job is undone alone, unless
        SQLite itself abandoned the transaction (disk full, I/O error), which fails the whole batch."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # busy_timeout has already waited for another writer
            return [_Result(fut, None, exc) for _, fut in batch]
        results: list[_Result] = []
        for fn, fut in batch:
            try:
                conn.execute("SAVEPOINT job")
                value = fn(conn)
                if isinstance(value, sqlite3.Cursor):
                    # A cursor freed on the event loop's thread while this thread reuses its cached
                    # statement corrupts it ("bad parameter or other API misuse"): it must die here.
                    value = None
                conn.execute("RELEASE job")
            except Exception as exc:
                if not _undo_job(conn):
                    _abort(conn)
                    return [_Result(f, None, exc) for _, f in batch]
                results.append(_Result(fut, None, exc))
            else:
                results.append(_Result(fut, value, None))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _abort(conn)
            return [_Result(r.future, None, exc) for r in results]
        return results

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._loop is None or self._thread is None:
            raise RuntimeError("the store is not open")
        if self._dead is not None:
            raise RuntimeError(f"the SQLite writer stopped: {self._dead}")
        fut: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put((fn, fut))
        return await fut

    async def ping(self) -> None:
        await self._call(lambda c: c.execute("SELECT 1").fetchone())

    # -- services --------------------------------------------------------------------------------

    async def save_services(self, services: Sequence[Service], replace: bool = False) -> None:
        rows = [
            {
                "id": s.id,
                "key": s.key,
                "name": s.name,
                "secret": s.secret,
                "active": int(s.active),
                "notify_url": s.notify_url,
                "tps": s.tps,
                "senderids": msgspec.json.encode(list(s.senderids)).decode(),
            }
            for s in services
        ]
        keep = msgspec.json.encode([s.id for s in services]).decode()

        def job(c: sqlite3.Connection) -> None:
            if replace:  # first, so a service whose id changed can keep its key
                c.execute(Q["delete_other_services"], {"keep": keep})
            c.executemany(Q["upsert_service"], rows)

        await self._call(job)

    async def load_services(self) -> list[Service]:
        rows = await self._call(lambda c: c.execute(Q["load_services"]).fetchall())
        return [
            Service(
                id=r[0],
                key=r[1],
                name=r[2],
                secret=r[3],
                active=bool(r[4]),
                notify_url=r[5],
                tps=r[6],
                senderids=tuple(msgspec.json.decode(r[7])),
            )
            for r in rows
        ]

    # -- messages --------------------------------------------------------------------------------

    async def accept(self, messages: Sequence[NewMessage]) -> None:
        rows = [
            {
                "transid": m.transid,
                "service_id": m.service_id,
                "channel": m.channel,
                "address": m.address,
                "address_type": m.address_type,
                "content": m.content,
                "parts": m.parts,
                "correlationid": m.correlationid,
                "callback_data": m.callback_data,
                "notify_url": m.notify_url,
                "priority": m.priority,
                "expiry": m.expiry,
                "created_at": m.created_at,
            }
            for m in messages
        ]
        await self._call(lambda c: c.executemany(Q["insert_message"], rows))

    async def claim_due(self, now: float, limit: int, lease_s: float) -> list[DueMessage]:
        params = {"now": now, "lease_until": now + lease_s, "limit": limit}
        rows = await self._call(lambda c: c.execute(Q["claim_due"], params).fetchall())
        rows.sort(key=lambda r: (r[11], r[0]))
        return [
            DueMessage(
                transid=r[1],
                service_id=r[2],
                channel=r[3],
                address=r[4],
                address_type=r[5],
                content=msgspec.json.decode(r[6]),
                parts=r[7],
                correlationid=r[8],
                callback_data=r[9],
                notify_url=r[10],
                priority=r[11],
                expiry=r[12],
                status=Status.from_word(r[13]),
                attempts=r[14],
                ext_id=r[15],
                pending=_outcome(r[16]),
            )
            for r in rows
        ]

    async def record(self, updates: Sequence[Update]) -> None:
        status_rows: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        reschedules: list[dict[str, Any]] = []
        notes: list[dict[str, Any]] = []
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
                    "pending": _encode_outcome(u.pending),
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
                    }
                )

        def job(c: sqlite3.Connection) -> None:
            c.executemany(Q["record_status"], status_rows)
            c.executemany(Q["insert_event"], events)
            c.executemany(Q["reschedule"], reschedules)
            c.executemany(Q["insert_notification"], notes)

        await self._call(job)

    async def get_message(self, service_id: str, transid: str) -> MessageRecord | None:
        def job(c: sqlite3.Connection) -> MessageRecord | None:
            r = c.execute(Q["get_message"], {"transid": transid, "service_id": service_id}).fetchone()
            if r is None:
                return None
            events = c.execute(Q["get_events"], {"transid": transid}).fetchall()
            notes = c.execute(Q["get_notifications"], {"transid": transid}).fetchall()
            return MessageRecord(
                transid=r[0],
                service_id=r[1],
                channel=r[2],
                address=r[3],
                address_type=r[4],
                content=msgspec.json.decode(r[5]),
                parts=r[6],
                correlationid=r[7],
                callback_data=r[8],
                notify_url=r[9],
                priority=r[10],
                expiry=r[11],
                status=r[12],
                code=r[13],
                description=r[14],
                created_at=r[15],
                updated_at=r[16],
                attempts=r[17],
                history=[HistoryEntry(*e) for e in events],
                notifications=[NotificationRecord(*n) for n in notes],
            )

        return await self._call(job)

    # -- notifications ---------------------------------------------------------------------------

    async def claim_notifications(self, now: float, limit: int, lease_s: float) -> list[ClaimedNotification]:
        params = {"now": now, "lease_until": now + lease_s, "limit": limit}
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
            }
            for r in results
        ]
        finished = [{"seq": r.seq, "at": r.at} for r in results if r.state != "pending"]

        def job(c: sqlite3.Connection) -> None:
            c.executemany(Q["finish_notification"], rows)
            c.executemany(Q["promote_next_notification"], finished)

        await self._call(job)


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, sql in load_migrations("sqlite"):
        if number > version:
            conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")


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
            fut.set_exception(exc)
        else:
            fut.set_result(value)


def _outcome(text: str | None) -> Outcome | None:
    if text is None:
        return None
    status, code, description = msgspec.json.decode(text)
    return Outcome(Status.from_word(status), code, description)


def _encode_outcome(o: Outcome | None) -> str | None:
    return None if o is None else msgspec.json.encode([o.status.word, o.code, o.description]).decode()
