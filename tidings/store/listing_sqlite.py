"""The SQLite store's share of `tidings.store.listing`: the message log, counts and sending again."""

import sqlite3
from collections.abc import Callable
from typing import Protocol, TypeVar

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


class _Calls(Protocol):
    async def _call(self, fn: Callable[[sqlite3.Connection], T], durable: bool = False) -> T: ...


class SqliteListing:
    """Mixed into `SqliteStore`: jobs run through its group-commit queue like every other call."""

    async def list_messages(self: _Calls, query: MessageQuery) -> list[MessageSummary]:
        marks = Marks("sqlite")
        sql = list_sql(query, marks, "sqlite")
        rows = await self._call(lambda c: c.execute(sql, marks.named).fetchall())
        return [summary(r) for r in rows]

    async def notifications_of(self: _Calls, service_id: str, transid: str) -> list[NotificationDetail]:
        sql = NOTIFICATION_DETAIL.format(transid=":transid", service_id=":service_id")
        params = {"transid": transid, "service_id": service_id}
        rows = await self._call(lambda c: c.execute(sql, params).fetchall())
        return [notification_detail(r) for r in rows]

    async def resend_notification(self: _Calls, service_id: str, event_id: str, now: float) -> bool:
        def job(c: sqlite3.Connection) -> bool:
            if c.execute(RESEND_BUSY.format(event_id=":event_id"), {"event_id": event_id}).fetchone()[0]:
                return False
            changed = c.execute(
                "UPDATE notifications SET state = 'pending', attempts = 0, next_at = :now, updated_at = :now,"
                " leased = 0 WHERE event_id = :event_id AND service_id = :service_id"
                " AND state IN ('sent', 'failed')",
                {"now": now, "event_id": event_id, "service_id": service_id},
            )
            return changed.rowcount == 1

        return await self._call(job, durable=True)

    async def message_stats(self: _Calls, service_id: str | None, since: float) -> Stats:
        accepted, final, depth, backlog = stats_queries(service_id, since, "sqlite")

        def job(c: sqlite3.Connection) -> Stats:
            return stats_from(
                c.execute(accepted[0], accepted[1].named).fetchall(),
                c.execute(final[0], final[1].named).fetchall(),
                c.execute(depth[0], depth[1].named).fetchone()[0],
                c.execute(backlog[0], backlog[1].named).fetchall(),
                receiver_of,
            )

        return await self._call(job)
