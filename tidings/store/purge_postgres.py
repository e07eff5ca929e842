"""The PostgreSQL store's share of a retention purge (`tidings.store.purge`), safe with any number of
processes on the database.

A pass is one process's at a time (`purging`: a session advisory lock named after the schema, held by
one pooled connection for the pass and gone with it if the process dies). Each batch is one
transaction: it looks at the next `limit` candidates, locks those that may go (`FOR UPDATE SKIP LOCKED`:
a message another transaction is changing is left for the next pass), then their notifications (against
a resend), looks again now that nothing can change them, and deletes every row under their transids. A
change that waited for the purge (a Read, a click's notification, a report) then finds no message, as
for an unknown transid. Were two purges to run at once anyway (the CLI beside a server, say), each would
skip the other's rows.
"""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import asyncpg

from tidings.store.purge import (
    FINAL_WORDS,
    PURGED_WITH_INBOUND,
    PURGED_WITH_MESSAGE,
    START,
    PurgeBatch,
    scanned,
)
from tidings.store.queries import load_queries
from tidings.store.rows import EXPIRING

T = TypeVar("T")
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
Q = load_queries("postgres", "retention")
_KEPT = load_queries("postgres")
PURGE_LOCK = "tidings purge "  # the advisory lock's name, with the schema's
PURGE_ACQUIRE_S = 30.0
_FINAL = list(FINAL_WORDS)


class _Calls(Protocol):
    async def _tx(self, fn: Callable[[Conn], Awaitable[T]]) -> T: ...

    def _open_pool(self) -> asyncpg.Pool: ...


class PostgresPurge:
    """Mixed into `PostgresStore`."""

    @contextlib.asynccontextmanager
    async def purging(self: _Calls) -> AsyncIterator[bool]:
        # A pool every connection of which is busy fails the pass (the next one tries again) rather than
        # holding it for ever.
        async with self._open_pool().acquire(timeout=PURGE_ACQUIRE_S) as c:
            mine = bool(await c.fetchval(Q["purge_try_lock"], PURGE_LOCK))
            try:
                yield mine
            finally:
                if mine:  # else the pool's reset on release unlocks it (pg_advisory_unlock_all)
                    with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                        await c.execute(Q["purge_unlock"], PURGE_LOCK)

    async def purge_messages(
        self: _Calls,
        before: float,
        now: float,
        after: tuple[float, int] | None,
        limit: int,
        dry_run: bool = False,
    ) -> PurgeBatch:
        at, seq = after or START

        async def eligible(c: Conn, keys: list[str]) -> list[str]:
            return [r[0] for r in await c.fetch(Q["purge_eligible"], keys, _FINAL, before, now)]

        scan = ("purge_scan", before, at, seq)
        return await _purge(self, scan, limit, eligible, "purge_lock_messages", PURGED_WITH_MESSAGE, dry_run)

    async def purge_inbound(
        self: _Calls, before: float, after: tuple[float, int] | None, limit: int, dry_run: bool = False
    ) -> PurgeBatch:
        at, seq = after or START

        async def eligible(c: Conn, keys: list[str]) -> list[str]:
            return [r[0] for r in await c.fetch(Q["purge_inbound_eligible"], keys)]

        scan = ("purge_inbound_scan", before, at, seq)
        return await _purge(self, scan, limit, eligible, "purge_lock_inbound", PURGED_WITH_INBOUND, dry_run)

    async def forget_expired(self: _Calls, now: float, dry_run: bool = False) -> dict[str, int]:
        async def job(c: Conn) -> dict[str, int]:
            async with _dry(c, dry_run):
                return await forget_expired_rows(c, now)

        return await self._tx(job)


async def forget_expired_rows(c: Conn, now: float) -> dict[str, int]:
    """Delete what has outlived its use (`rows.EXPIRING`: how long each is kept), by table: early receipts
    and statuses no send took, Idempotency-Key answers, the frequency caps' old sends."""
    return {table: _count(await c.execute(_KEPT[query], now - kept)) for table, query, kept in EXPIRING}


async def _purge(
    store: "_Calls",
    scan: tuple[str, float, float, int],
    limit: int,
    eligible: Callable[[Conn, list[str]], Awaitable[list[str]]],
    lock: str,
    tables: Sequence[str],
    dry_run: bool,
) -> PurgeBatch:
    """One batch in one transaction: scan the next `limit` candidates (`scan`: the query's name, then
    before, the cursor's time and seq), keep those that may go, lock them and their notifications, look
    again under the locks (one that moved on since stays), delete."""
    query, before, at, seq = scan

    async def job(c: Conn) -> PurgeBatch:
        rows = await c.fetch(Q[query], before, at, seq, limit)
        batch = scanned(rows, limit)
        gone = await eligible(c, [r[0] for r in rows])
        if gone and not dry_run:
            locked = [r[0] for r in await c.fetch(Q[lock], gone)]
            await c.fetchval(Q["purge_lock_notifications"], locked)
            gone = await eligible(c, locked)
        await _delete(c, tables, gone, batch, dry_run)
        return batch

    return await store._tx(job)


async def _delete(c: Conn, tables: Sequence[str], keys: list[str], batch: PurgeBatch, dry_run: bool) -> None:
    """Delete every row of `tables` under `keys` (a dry run counts them and takes it back)."""
    batch.purged = len(keys)
    batch.rows = dict.fromkeys(tables, 0)
    if not keys:
        return
    async with _dry(c, dry_run):
        for table in tables:
            batch.rows[table] = _count(await c.execute(Q[f"purge_{table}"], keys))


@contextlib.asynccontextmanager
async def _dry(c: Conn, dry_run: bool) -> AsyncIterator[None]:
    """With `dry_run`, undo what the block wrote (a savepoint rolled back; its counts stay exact)."""
    if not dry_run:
        yield
        return
    savepoint = c.transaction()
    await savepoint.start()
    try:
        yield
    finally:
        await savepoint.rollback()


def _count(status: str) -> int:
    """The row count of a command's status ("DELETE 12")."""
    return int(status.rsplit(" ", 1)[1])
