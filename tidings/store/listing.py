"""Reading many messages at once: the message log (`GET /v1/messages`, the console), its live updates,
the console's per-minute counts, and sending a notification again.

Both backends build their SQL here, so the filters, the order and the cursor mean the same on each:
newest first by (created_at, seq), a page ending where the cursor says. The indexes that keep it fast are
SQLite migration 0017 and PostgreSQL 0013; docs/console.md has the figures on a million rows.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tidings.statuses import Status

MAX_LIMIT = 200

DELIVERED_WORDS = (Status.DELIVERED.word, Status.READ.word)
FAILED_WORDS = (Status.UNDELIVERED.word, Status.FAILED.word, Status.EXPIRED.word, Status.BOUNCE.word)


@dataclass(slots=True, frozen=True)
class MessageQuery:
    """What to list. Every filter is optional and they combine with AND; `service_id` None lists every
    service (the admin's console)."""

    service_id: str | None
    channel: str | None = None
    status: str | None = None
    address: str | None = None
    correlationid: str | None = None
    since: float | None = None  # created_at >= since
    until: float | None = None  # created_at < until
    text: str | None = None  # a substring of the stored content, case-insensitive for ASCII
    before: tuple[float, int] | None = None  # the page after (older than) this (created_at, seq)
    after: tuple[float, int] | None = None  # only rows newer than this (created_at, seq): live updates
    transids: Sequence[str] | None = None  # only these messages (live updates of rows on screen)
    limit: int = 50


@dataclass(slots=True)
class MessageSummary:
    """One row of the log: what a message is and where it stands, without its history."""

    seq: int
    transid: str
    service_id: str
    channel: str
    address: str
    address_type: str
    content: dict[str, Any]
    status: str
    code: str
    description: str
    correlationid: str | None
    created_at: float
    updated_at: float

    @property
    def cursor(self) -> tuple[float, int]:
        return (self.created_at, self.seq)


@dataclass(slots=True)
class NotificationDetail:
    """A notification as the console shows it: the receiver's answer, the tries and the next one."""

    event_id: str
    url: str
    state: str
    attempts: int
    http_status: int | None
    last_error: str | None
    created_at: float
    updated_at: float
    next_at: float | None  # None once sent or given up
    body: bytes


@dataclass(slots=True)
class MinuteCount:
    channel: str
    minute: int  # unix time // 60
    accepted: int = 0
    delivered: int = 0
    failed: int = 0


@dataclass(slots=True)
class Stats:
    minutes: list[MinuteCount] = field(default_factory=list)
    queue_depth: int = 0  # messages still needing work (queued, sending, a receipt due)
    backlog: dict[str, int] = field(default_factory=dict)  # notifications not yet sent, by receiver


SUMMARY_COLUMNS = (
    "seq, transid, service_id, channel, address, address_type, content, status, code, description, "
    "correlationid, created_at, updated_at"
)


def summary(r: Any) -> MessageSummary:
    return MessageSummary(
        seq=int(r[0]),
        transid=r[1],
        service_id=r[2],
        channel=r[3],
        address=r[4],
        address_type=r[5],
        content=msgspec.json.decode(r[6]),
        status=r[7],
        code=r[8],
        description=r[9],
        correlationid=r[10],
        created_at=float(r[11]),
        updated_at=float(r[12]),
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_sql(q: MessageQuery, mark: Callable[[object], str], backend: str) -> str:
    """The SELECT for `q`; `mark(value)` records a parameter and returns its placeholder."""
    where: list[str] = []
    if q.service_id is not None:
        where.append(f"service_id = {mark(q.service_id)}")
    for column, value in (
        ("channel", q.channel),
        ("status", q.status),
        ("address", q.address),
        ("correlationid", q.correlationid),
    ):
        if value is not None:
            where.append(f"{column} = {mark(value)}")
    if q.since is not None:
        where.append(f"created_at >= {mark(q.since)}")
    if q.until is not None:
        where.append(f"created_at < {mark(q.until)}")
    if q.before is not None:
        # The first bound is a plain range the index serves; the second only settles ties.
        at = mark(q.before[0])
        where.append(f"created_at <= {at} AND (created_at < {at} OR seq < {mark(q.before[1])})")
    if q.after is not None:
        at = mark(q.after[0])
        where.append(f"created_at >= {at} AND (created_at > {at} OR seq > {mark(q.after[1])})")
    if q.transids is not None:
        if backend == "postgres":
            where.append(f"transid = ANY({mark(list(q.transids))}::text[])")
        else:
            where.append(f"transid IN (SELECT value FROM json_each({mark(msgspec.json.encode(q.transids))}))")
    if q.text:
        content = "convert_from(content, 'UTF8')" if backend == "postgres" else "CAST(content AS TEXT)"
        op = "ILIKE" if backend == "postgres" else "LIKE"
        where.append(f"{content} {op} {mark(_like(q.text))} ESCAPE '\\'")
    sql = f"SELECT {SUMMARY_COLUMNS} FROM messages"
    if where:
        sql += " WHERE " + " AND ".join(where)
    limit = max(1, min(q.limit, MAX_LIMIT))
    return f"{sql} ORDER BY created_at DESC, seq DESC LIMIT {limit}"


def stats_queries(service_id: str | None, since: float, backend: str) -> list[tuple[str, "Marks"]]:
    """Four queries, each with its parameters: accepted per channel and minute; final statuses per
    channel, minute and status (by the time the message last changed, among messages accepted in the
    hour before `since` or later, so the created_at index bounds the scan); the queue depth; the
    notification backlog per URL."""
    minute = "floor({}/60)::bigint" if backend == "postgres" else "CAST({}/60 AS INTEGER)"
    finals = ", ".join(f"'{w}'" for w in (*DELIVERED_WORDS, *FAILED_WORDS))
    from tidings.store.rows import LANES  # here: rows imports base, which imports this module

    lanes = ", ".join(str(lane) for lane in LANES)
    queries: list[tuple[str, Marks]] = []
    for sql in (
        f"SELECT channel, {minute.format('created_at')} AS m, count(*) FROM messages{{by_time}} "
        "WHERE created_at >= {since}{own} GROUP BY channel, m",
        f"SELECT channel, {minute.format('updated_at')} AS m, status, count(*) FROM messages{{by_time}} "
        f"WHERE created_at >= {{earlier}}{{own}} AND updated_at >= {{since}} AND status IN ({finals}) "
        "GROUP BY channel, m, status",
        # Over the partial due index, lane by lane, so it costs as much as the queue is deep.
        f"SELECT count(*) FROM messages{{hint}} WHERE lane IN ({lanes}) AND next_at IS NOT NULL{{own}}",
        "SELECT url, count(*) FROM notifications WHERE state IN ('pending', 'waiting'){own} GROUP BY url",
    ):
        mark = Marks(backend)
        fill = {
            "since": mark(since) if "{since}" in sql else "",
            "earlier": mark(since - 3600) if "{earlier}" in sql else "",
            "own": f" AND service_id = {mark(service_id)}" if service_id is not None else "",
            # SQLite would rather read the service's rows by messages_log and test next_at on each.
            "hint": " INDEXED BY messages_due_by_service" if backend == "sqlite" else "",
            # And here it would rather read them by messages_log_channel, for the GROUP BY's order.
            "by_time": ""
            if backend != "sqlite"
            else (" INDEXED BY messages_log" if service_id is not None else " INDEXED BY messages_created"),
        }
        queries.append((sql.format(**fill), mark))
    return queries


def stats_from(
    accepted: Sequence[Any],
    final: Sequence[Any],
    depth: int,
    backlog: Sequence[Any],
    receiver_of: Callable[[str], str],
) -> Stats:
    counts: dict[tuple[str, int], MinuteCount] = {}

    def at(channel: str, m: int) -> MinuteCount:
        return counts.setdefault((channel, int(m)), MinuteCount(channel, int(m)))

    for channel, m, n in accepted:
        at(channel, m).accepted += int(n)
    for channel, m, status, n in final:
        row = at(channel, m)
        if status in DELIVERED_WORDS:
            row.delivered += int(n)
        else:
            row.failed += int(n)
    hosts: dict[str, int] = {}
    for url, n in backlog:
        host = receiver_of(url)
        hosts[host] = hosts.get(host, 0) + int(n)
    return Stats(sorted(counts.values(), key=lambda c: (c.minute, c.channel)), int(depth), hosts)


NOTIFICATION_DETAIL = (
    "SELECT event_id, url, state, attempts, http_status, last_error, created_at, updated_at, next_at, body "
    "FROM notifications WHERE transid = {transid} AND service_id = {service_id} ORDER BY seq"
)


def notification_detail(r: Any) -> NotificationDetail:
    state = r[2]
    return NotificationDetail(
        event_id=r[0],
        url=r[1],
        state=state,
        attempts=int(r[3]),
        http_status=r[4],
        last_error=r[5],
        created_at=float(r[6]),
        updated_at=float(r[7]),
        next_at=float(r[8]) if state in ("pending", "waiting") else None,
        body=bytes(r[9]),
    )


# Sending again: only a notification that is finished (sent or given up), and only while none of its
# message's others is still on its way, so a receiver still sees one message's statuses one at a time.
RESEND_BUSY = (
    "SELECT count(*) FROM notifications WHERE transid = "
    "(SELECT transid FROM notifications WHERE event_id = {event_id}) AND state IN ('pending', 'waiting')"
)


class Marks:
    """Parameters of a query being built, with each backend's placeholder style."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.values: list[object] = []
        self.named: dict[str, object] = {}

    def __call__(self, value: object) -> str:
        if self.backend == "postgres":
            self.values.append(value)
            return f"${len(self.values)}"
        name = f"p{len(self.named)}"
        self.named[name] = value
        return f":{name}"
