"""The PostgreSQL store's share of `tidings.store.listing`: the message log, counts and sending again."""

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import asyncpg

from tidings.store.base import receiver_of
from tidings.store.listing import (
    NOTIFICATION_DETAIL,
    RESEND_BUSY,
    Marks,
    MessageQuery,
    MessageSummary,
    NotificationDetail,
    Stats,
    list_sql,
    notification_detail,
    stats_from,
    stats_queries,
    summary,
)

T = TypeVar("T")
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


class _Calls(Protocol):
    async def _tx(self, fn: Callable[[Conn], Awaitable[T]]) -> T: ...

    async def _read(self, fn: Callable[[Conn], Awaitable[T]]) -> T: ...


class PostgresListing:
    """Mixed into `PostgresStore`: reads on a pooled connection, the resend in a transaction."""

    async def list_messages(self: _Calls, query: MessageQuery) -> list[MessageSummary]:
        marks = Marks("postgres")
        sql = list_sql(query, marks, "postgres")
        rows = await self._read(lambda c: c.fetch(sql, *marks.values))
        return [summary(r) for r in rows]

    async def notifications_of(self: _Calls, service_id: str, transid: str) -> list[NotificationDetail]:
        sql = NOTIFICATION_DETAIL.format(transid="$1", service_id="$2")
        return [notification_detail(r) for r in await self._read(lambda c: c.fetch(sql, transid, service_id))]

    async def resend_notification(self: _Calls, service_id: str, event_id: str, now: float) -> bool:
        async def job(c: Conn) -> bool:
            # The message's notifications are locked first, as finish_notifications takes them.
            await c.execute(
                "SELECT 1 FROM notifications WHERE transid ="
                " (SELECT transid FROM notifications WHERE event_id = $1) ORDER BY seq FOR UPDATE",
                event_id,
            )
            if await c.fetchval(RESEND_BUSY.format(event_id="$1"), event_id):
                return False
            status = await c.execute(
                "UPDATE notifications SET state = 'pending', attempts = 0, next_at = $3, updated_at = $3,"
                " leased = false, leased_by = NULL WHERE event_id = $1 AND service_id = $2"
                " AND state IN ('sent', 'failed')",
                event_id,
                service_id,
                now,
            )
            return bool(status == "UPDATE 1")

        return await self._tx(job)

    async def message_stats(self: _Calls, service_id: str | None, since: float) -> Stats:
        accepted, final, depth, backlog = stats_queries(service_id, since, "postgres")

        async def job(c: Conn) -> Stats:
            return stats_from(
                await c.fetch(accepted[0], *accepted[1].values),
                await c.fetch(final[0], *final[1].values),
                await c.fetchval(depth[0], *depth[1].values),
                await c.fetch(backlog[0], *backlog[1].values),
                receiver_of,
            )

        return await self._read(job)
