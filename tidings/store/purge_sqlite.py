"""The SQLite store's share of a retention purge (`tidings.store.purge`).

Each batch is one job of the store's group commit: it looks at the next `limit` candidates, deletes those
that may go with every row under their transid, and commits with whatever else was queued. One process
owns the file, so nothing else can change a message between the look and the delete, and no lock is
needed between processes.
"""

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Protocol, TypeVar

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
Q = load_queries("sqlite", "retention")
_KEPT = load_queries("sqlite")
_FINAL = json.dumps(FINAL_WORDS)


class _Calls(Protocol):
    async def _call(self, fn: Callable[[sqlite3.Connection], T], durable: bool = False) -> T: ...


class SqlitePurge:
    """Mixed into `SqliteStore`."""

    @contextlib.asynccontextmanager
    async def purging(self) -> AsyncIterator[bool]:
        yield True  # one process owns the file: nobody else can be purging it

    async def purge_messages(
        self: _Calls,
        before: float,
        now: float,
        after: tuple[float, int] | None,
        limit: int,
        dry_run: bool = False,
    ) -> PurgeBatch:
        at, seq = after or START
        scan = {"before": before, "after_at": at, "after_seq": seq, "limit": limit}

        def job(c: sqlite3.Connection) -> PurgeBatch:
            rows = c.execute(Q["purge_scan"], scan).fetchall()
            batch = scanned(rows, limit)
            where = {"transids": json.dumps([r[0] for r in rows]), "final": _FINAL}
            gone = c.execute(Q["purge_eligible"], {**where, "before": before, "now": now}).fetchall()
            _delete(c, PURGED_WITH_MESSAGE, [r[0] for r in gone], batch, dry_run)
            return batch

        return await self._call(job)

    async def purge_inbound(
        self: _Calls, before: float, after: tuple[float, int] | None, limit: int, dry_run: bool = False
    ) -> PurgeBatch:
        at, seq = after or START
        scan = {"before": before, "after_at": at, "after_seq": seq, "limit": limit}

        def job(c: sqlite3.Connection) -> PurgeBatch:
            rows = c.execute(Q["purge_inbound_scan"], scan).fetchall()
            batch = scanned(rows, limit)
            where = {"transids": json.dumps([r[0] for r in rows])}
            gone = c.execute(Q["purge_inbound_eligible"], where).fetchall()
            _delete(c, PURGED_WITH_INBOUND, [r[0] for r in gone], batch, dry_run)
            return batch

        return await self._call(job)

    async def forget_expired(self: _Calls, now: float, dry_run: bool = False) -> dict[str, int]:
        def job(c: sqlite3.Connection) -> dict[str, int]:
            with _dry(c, dry_run):
                return forget_expired_rows(c, now)

        return await self._call(job)


def forget_expired_rows(c: sqlite3.Connection, now: float) -> dict[str, int]:
    """Delete what has outlived its use (`rows.EXPIRING`: how long each is kept), by table: early receipts
    and statuses no send took, Idempotency-Key answers, the frequency caps' old sends."""
    return {
        table: c.execute(_KEPT[query], {"before": now - kept}).rowcount for table, query, kept in EXPIRING
    }


def _delete(
    c: sqlite3.Connection, tables: Sequence[str], keys: list[str], batch: PurgeBatch, dry_run: bool
) -> None:
    """Delete every row of `tables` under `keys` (a dry run counts them and takes it back)."""
    batch.purged = len(keys)
    batch.rows = dict.fromkeys(tables, 0)
    if not keys:
        return
    where = {"transids": json.dumps(keys)}
    with _dry(c, dry_run):
        for table in tables:
            batch.rows[table] = c.execute(Q[f"purge_{table}"], where).rowcount


@contextlib.contextmanager
def _dry(c: sqlite3.Connection, dry_run: bool) -> Iterator[None]:
    """With `dry_run`, undo what the block wrote (its counts stay exact)."""
    if not dry_run:
        yield
        return
    c.execute("SAVEPOINT purge_dry_run")
    try:
        yield
    finally:
        c.execute("ROLLBACK TO purge_dry_run")
        c.execute("RELEASE purge_dry_run")
