#!/usr/bin/env python3
"""The message log's queries on a million messages (`GET /v1/messages`, the console).

Fills a fresh database with N messages (default 1,000,000) straight into the `messages` table, after the
real migrations made it (so the log's indexes are there while filling, as in a live database): SQLite with
executemany in one transaction per 50,000 rows, PostgreSQL with COPY. Then times each typical query of the
log exactly as the store builds it (`tidings.store.listing.list_sql`, `stats_queries`): the median and the
worst of R runs, with the rows each returned.

The data: 4 services (one holds 70% of the rows), channels sms 70% / push 15% / email 10% / whatsapp 5%,
statuses Delivered 85% / Un-Delivered 5% / Failed 3% / Submitted 5% / Queued 2%, addresses drawn from
200,000 numbers, a correlation id on half the messages, created over the last 30 days, one in 5,000
texts holding the word "kumquat".

  .venv/bin/python bench/listing.py                        # SQLite, 1,000,000 rows
  .venv/bin/python bench/listing.py --postgres             # and PostgreSQL (127.0.0.1:5432, db test)
  .venv/bin/python bench/listing.py --n 100000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# The repository instead of bench/ (whose email.py would shadow the standard library's email).
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from tidings.store.listing import Marks, MessageQuery, list_sql, stats_queries  # noqa: E402
from tidings.store.queries import load_migrations  # noqa: E402

SERVICES = [("svc-big", 0.70), ("svc-b", 0.15), ("svc-c", 0.10), ("svc-d", 0.05)]
CHANNELS = [("sms", 0.70), ("push", 0.15), ("email", 0.10), ("whatsapp", 0.05)]
STATUSES = [
    ("Delivered", "7500", 0.85),
    ("Un-Delivered", "7203", 0.05),
    ("Failed", "7518", 0.03),
    ("Submitted", "7501", 0.05),
    ("Queued", "1001", 0.02),
]
WORDS = [
    "your",
    "code",
    "is",
    "ready",
    "order",
    "shipped",
    "parcel",
    "arrives",
    "today",
    "tomorrow",
    "reminder",
    "appointment",
    "at",
]
DAYS = 30
BATCH = 50_000
LOG_MIGRATION_SQLITE = 17  # the migrations that add the log's indexes
LOG_MIGRATION_POSTGRES = 13
COLUMNS = (
    "transid, service_id, channel, address, address_type, content, parts, correlationid, priority, lane, "
    "status, code, description, created_at, updated_at, next_at"
)


def pick(rng: random.Random, table: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    x = rng.random()
    for row in table:
        x -= row[-1]
        if x <= 0:
            return row
    return table[-1]


def rows(n: int, now: float, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """Messages in the order they were accepted (created_at grows with seq, as in a live database)."""
    rng = random.Random(seed)
    start = now - DAYS * 86400
    step = DAYS * 86400 / n
    for i in range(n):
        service = pick(rng, SERVICES)[0]
        channel = pick(rng, CHANNELS)[0]
        status, code, _ = pick(rng, STATUSES)
        created = start + i * step
        text = " ".join(rng.choice(WORDS) for _ in range(8))
        if i % 5000 == 17:
            text += " kumquat"
        content = f'{{"type":"1","senderid":"CONNCT","text":"{text} {i}"}}'.encode()
        address = f"4479{rng.randrange(200_000):08d}"
        correlation = f"order-{i}" if i % 2 == 0 else None
        final = status not in ("Submitted", "Queued")
        yield (
            uuid.UUID(int=rng.getrandbits(128)).hex,
            service,
            channel,
            address,
            "msisdn",
            content,
            1,
            correlation,
            2,
            2,
            status,
            code,
            status,
            created,
            created + 3,
            None if final else now,
        )


def batches(n: int, now: float) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows(n, now):
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def queries(now: float) -> list[tuple[str, MessageQuery]]:
    day = 86400
    big = "svc-big"
    deep_cursor = (now - 20 * day, 10**9)  # a page three weeks down the log, as a cursor reaches it
    return [
        ("first page (50), one service", MessageQuery(big)),
        ("first page (200), one service", MessageQuery(big, limit=200)),
        ("page far down (cursor 20 days back)", MessageQuery(big, before=deep_cursor)),
        ("channel = whatsapp (5%)", MessageQuery(big, channel="whatsapp")),
        ("status = Failed (3%)", MessageQuery(big, status="Failed")),
        ("channel + status (whatsapp, Failed)", MessageQuery(big, channel="whatsapp", status="Failed")),
        ("destination (one number)", MessageQuery(big, address="447900012345")),
        ("correlationid (one)", MessageQuery(big, correlationid="order-500000")),
        (
            "time window (one hour, 10 days ago)",
            MessageQuery(big, since=now - 10 * day, until=now - 10 * day + 3600),
        ),
        ("text search, common word", MessageQuery(big, text="parcel")),
        ("text search, rare word (1 in 5000)", MessageQuery(big, text="kumquat")),
        ("text search, rare word, last day only", MessageQuery(big, text="kumquat", since=now - day)),
        ("text search, absent word (worst case)", MessageQuery(big, text="zzyzx")),
        ("admin: every service, first page", MessageQuery(None)),
        ("admin: every service, status Failed", MessageQuery(None, status="Failed")),
        ("live update: newer than the first row", MessageQuery(big, after=(now - 60, 0))),
    ]


def timed(fn: Callable[[], int], runs: int) -> tuple[float, float, int]:
    fn()  # warm the cache: the figures are for a database that is in use
    times = []
    found = 0
    for _ in range(runs):
        t = time.perf_counter()
        found = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), max(times), found


def report(title: str, results: list[tuple[str, float, float, int]]) -> None:
    print(f"\n{title}")
    print("| query | median ms | worst ms | rows |\n| --- | ---: | ---: | ---: |")
    for name, median, worst, found in results:
        print(f"| {name} | {median:.2f} | {worst:.2f} | {found} |")


def bench_sqlite(n: int, runs: int, now: float, folder: Path) -> None:
    path = folder / "listing.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for _, sql in load_migrations("sqlite"):
        conn.executescript(f"BEGIN;\n{sql}\nCOMMIT;")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")  # 400 MB: the fill is then CPU-bound, not a page shuffle
    # The log's indexes are built after the fill (a sort each), then made again exactly as migrated.
    log_indexes = [sql for number, sql in load_migrations("sqlite") if number == LOG_MIGRATION_SQLITE]
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND"
        " (name LIKE 'messages_log%' OR name IN ('messages_created', 'notifications_backlog'))"
    ).fetchall():
        conn.execute(f"DROP INDEX {name}")
    placeholders = ", ".join("?" * len(COLUMNS.split(",")))
    t = time.perf_counter()
    for batch in batches(n, now):
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO messages ({COLUMNS}) VALUES ({placeholders})", batch)
        conn.execute("COMMIT")
    conn.executescript(f"BEGIN;\n{log_indexes[0]}\nCOMMIT;")
    conn.execute("ANALYZE")
    fill = time.perf_counter() - t
    size = path.stat().st_size / 1e6
    print(
        f"SQLite {sqlite3.sqlite_version}: {n:,} messages filled and indexed in {fill:.1f} s"
        f" ({n / fill:,.0f}/s), {size:.0f} MB"
    )
    results = []
    for name, q in queries(now):
        marks = Marks("sqlite")
        sql = list_sql(q, marks, "sqlite")
        median, worst, found = timed(lambda: len(conn.execute(sql, marks.named).fetchall()), runs)  # noqa: B023
        results.append((name, median, worst, found))
    stats = stats_queries("svc-big", now - 3600, "sqlite")
    median, worst, _ = timed(lambda: sum(len(conn.execute(s, m.named).fetchall()) for s, m in stats), runs)
    results.append(("console stats, last hour (4 queries)", median, worst, 0))
    report("SQLite", results)
    conn.close()


async def bench_postgres(n: int, runs: int, now: float, dsn: str) -> None:
    import asyncpg

    from tidings.store.postgres import PostgresStore

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(f"{dsn}?schema={schema}")
    await store.open()  # creates the schema and runs the migrations
    await store.close()
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        version = await conn.fetchval("SHOW server_version")
        t = time.perf_counter()
        # As for SQLite: the log's indexes are built after the fill, exactly as migrated.
        log_indexes = [sql for number, sql in load_migrations("postgres") if number == LOG_MIGRATION_POSTGRES]
        for (name,) in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND (indexname LIKE 'messages_log%'"
            " OR indexname IN ('messages_created', 'notifications_backlog'))",
            schema,
        ):
            await conn.execute(f"DROP INDEX {name}")
        for batch in batches(n, now):
            await conn.copy_records_to_table(
                "messages", records=batch, columns=[c.strip() for c in COLUMNS.split(",")]
            )
        await conn.execute(log_indexes[0])
        # What autovacuum does soon after a bulk load: statistics, and the visibility map that lets
        # counts read an index alone.
        await conn.execute("VACUUM ANALYZE messages")
        fill = time.perf_counter() - t
        print(
            f"\nPostgreSQL {version}: {n:,} messages filled and indexed in {fill:.1f} s ({n / fill:,.0f}/s)"
        )
        results = []
        for name, q in queries(now):
            marks = Marks("postgres")
            sql = list_sql(q, marks, "postgres")
            results.append((name, *await atimed(lambda: conn.fetch(sql, *marks.values), runs)))  # noqa: B023
        stats = stats_queries("svc-big", now - 3600, "postgres")

        async def all_stats() -> list[Any]:
            return [await conn.fetch(s, *m.values) for s, m in stats]

        median, worst, _ = await atimed(all_stats, runs)
        results.append(("console stats, last hour (4 queries)", median, worst, 0))
        report("PostgreSQL", results)
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


async def atimed(fn: Callable[[], Any], runs: int) -> tuple[float, float, int]:
    await fn()
    times = []
    found = 0
    for _ in range(runs):
        t = time.perf_counter()
        found = len(await fn())
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), max(times), found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_000_000, help="messages to fill (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per query (default 5)")
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL, filled with COPY")
    parser.add_argument("--dsn", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="tidings-listing-") as folder:
        if not args.no_sqlite:
            bench_sqlite(args.n, args.runs, now, Path(folder))
    if args.postgres:
        asyncio.run(bench_postgres(args.n, args.runs, now, args.dsn))


if __name__ == "__main__":
    main()
