#!/usr/bin/env python3
"""A retention purge on N old messages (default 100,000), SQLite and PostgreSQL.

Fills a fresh database through the store itself (the rows a real message leaves): N messages sent 40
days ago and K (default 20,000) sent an hour ago, each accepted, Submitted under a provider id with its
provider attempt (a ~300-byte submit_sm as SMPP reports it), then Delivered by a receipt, with its two
history entries and its two notifications, both sent. Then runs one purge pass with a 30-day retention
(`tidings.retention.purge`, batches of --batch) and times every batch: the pass's total, messages and
rows per second, and each batch's median and worst (on SQLite a batch runs on the event loop, so the
worst batch is the longest a serving process stops answering). Last, a second pass that finds nothing.

  .venv/bin/python bench/retention.py                       # SQLite and PostgreSQL, 100,000 messages
  .venv/bin/python bench/retention.py --backends sqlite --n 20000
  .venv/bin/python bench/retention.py --batch 500

Bounded: the fill stops at --max-seconds (600) per backend, each purge likewise. Loopback PostgreSQL only
(127.0.0.1:5432, database test, a schema of its own, dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

# The repository instead of bench/ (whose email.py would shadow the standard library's email).
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from tidings.retention import PurgeReport  # noqa: E402
from tidings.statuses import DELIVERED, SUBMITTED  # noqa: E402
from tidings.store import Store, open_store  # noqa: E402
from tidings.store.base import (  # noqa: E402
    IncomingReceipt,
    NewMessage,
    NotificationResult,
    OutgoingNotification,
    ProviderAttempt,
    ReceiptTarget,
    Update,
)
from tidings.store.purge import DAY_S, PURGE_BATCH  # noqa: E402

PG = "postgresql://127.0.0.1:5432/test"
FILL_BATCH = 1000
REQUEST = "submit_sm source 5/0 CONNCT dest 1/1 +447700900123 data_coding 0 esm_class 0 " + "x" * 220
CONTENT = b'{"type":"1","senderid":"CONNCT","text":"Your code is 123456. It expires in 10 minutes."}'


def new_message(transid: str, at: float) -> NewMessage:
    return NewMessage(transid, "svc-a", "sms", "+447700900123", "msisdn", CONTENT, 1, "corr", None,
                      "https://hooks.example/n", 2, None, at)  # fmt: skip


def note(event_id: str) -> OutgoingNotification:
    return OutgoingNotification(event_id, "https://hooks.example/n", b'{"deliveryInfoNotification":{}}' * 10)


def receipt_note(target: ReceiptTarget, outcome: object, at: float) -> OutgoingNotification:
    return note(f"{target.transid}-final")


async def fill(store: Store, count: int, at: float, deadline: float) -> int:
    """`count` messages that went their whole way at `at`, FILL_BATCH at a time."""
    made = 0
    while made < count and time.monotonic() < deadline:
        ids = [str(uuid.uuid4()) for _ in range(min(FILL_BATCH, count - made))]
        await store.accept([new_message(t, at) for t in ids])
        claimed = await store.claim_due(at + 1, len(ids), 60)
        attempt = ProviderAttempt(at + 1, 1, "carrier-a", "smpp", "accepted", "7501", "id", REQUEST, "resp")
        await store.record([
            Update(m.transid, "svc-a", at + 1, None, 1, SUBMITTED, ext_id=f"smpp:{m.transid}",
                   notification=note(f"{m.transid}-sub"), provider_attempt=attempt)
            for m in claimed
        ])  # fmt: skip
        await store.apply_receipts(
            [IncomingReceipt([f"smpp:{t}"], DELIVERED, at + 2) for t in ids], receipt_note
        )
        while claimed_notes := await store.claim_notifications(at + 3, 2 * len(ids), 60):
            await store.finish_notifications(
                [NotificationResult(n.seq, "sent", at + 3, at + 3, 200) for n in claimed_notes]
            )
        made += len(ids)
    return made


async def timed_pass(store: Store, before: float, now: float, batch: int) -> tuple[PurgeReport, list[float]]:
    """`tidings.retention.purge`'s loop over the messages, each batch timed (then inbound, the forgets)."""
    report = PurgeReport(before)
    took: list[float] = []
    started = time.perf_counter()
    cursor = None
    while True:
        t = time.perf_counter()
        done = await store.purge_messages(before, now, cursor, batch)
        took.append(time.perf_counter() - t)
        report.add(done)
        if done.cursor is None:
            break
        cursor = done.cursor
    report.add(await store.purge_inbound(before, None, batch), inbound=True)
    report.count(await store.forget_expired(now))
    report.seconds = time.perf_counter() - started
    return report, took


async def run(backend: str, args: argparse.Namespace, tmp: str) -> None:
    schema = f"bench_retention_{uuid.uuid4().hex[:10]}"
    url = f"sqlite:///{tmp}/bench.db" if backend == "sqlite" else f"{PG}?schema={schema}"
    store = open_store(url)
    await store.open()
    now = time.time()
    try:
        deadline = time.monotonic() + args.max_seconds
        t = time.perf_counter()
        old = await fill(store, args.n, now - 40 * DAY_S, deadline)
        recent = await fill(store, args.recent, now - 3600, deadline)
        print(
            f"{backend}: filled {old:,} old + {recent:,} recent messages in {time.perf_counter() - t:.0f} s"
        )
        if backend == "sqlite":
            size = await asyncio.to_thread(os.path.getsize, f"{tmp}/bench.db")
            print(f"  database {size / 1e6:.0f} MB")
        report, took = await timed_pass(store, now - 30 * DAY_S, now, args.batch)
        rows = report.total
        print(
            f"  purge: {report.messages:,} messages, {rows:,} rows in {report.seconds:.2f} s: "
            f"{report.messages / report.seconds:,.0f} messages/s, {rows / report.seconds:,.0f} rows/s; "
            f"{len(took)} batches of {args.batch}: median {statistics.median(took) * 1000:.0f} ms, "
            f"worst {max(took) * 1000:.0f} ms"
        )
        worst = sorted(range(len(took)), key=lambda i: -took[i])[:3]
        print("  slowest batches: " + ", ".join(f"#{i + 1} {took[i] * 1000:.0f} ms" for i in worst))
        print(f"  rows: {report.rows}")
        again, took = await timed_pass(store, now - 30 * DAY_S, now, args.batch)
        print(f"  a second pass (nothing left): {again.seconds * 1000:.1f} ms, {again.messages} messages")
    finally:
        await store.close()
        if backend == "postgres":
            import asyncpg

            conn = await asyncpg.connect(PG)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--n", type=int, default=100_000, help="old messages (purged)")
    p.add_argument("--recent", type=int, default=20_000, help="recent messages (kept)")
    p.add_argument("--batch", type=int, default=PURGE_BATCH)
    p.add_argument("--max-seconds", type=float, default=600.0)
    args = p.parse_args()
    for backend in args.backends.split(","):
        tmp = tempfile.mkdtemp(prefix="retention-")
        try:
            asyncio.run(run(backend, args, tmp))
        finally:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
