"""The PostgreSQL worker that stalled under load and ignored SIGTERM (issue 10, point 5).

Cause: on a database without statistics (a fresh one, or autovacuum off or behind) PostgreSQL planned the
"promote the message's next notification" statement as a walk of the whole notifications primary key,
0.1-0.3 s a statement at 140,000 notifications; a batch of notification results then held its
transaction, and its messages' row locks, for minutes, receipts and sends queued behind it, and the
worker's stop waited for it. These tests hold the fix (an index that answers it with one probe), and what
a worker does whatever else it waits on: it says what it waits on, and it leaves on SIGTERM."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.support.backends import PG_DSN, Backend, postgres_backend
from tidings import clock
from tidings.store.base import NewMessage, NotificationResult, Store

NOTIFICATIONS = 200_000
FINISHED = 50


@pytest.fixture
def pg() -> Iterator[Backend]:
    if os.environ.get("TIDINGS_TEST_BACKEND") == "postgres":
        pytest.skip("runs once, in the default pass: it sets up PostgreSQL itself")
    yield from postgres_backend()


def test_a_batch_of_notification_results_is_fast_on_a_database_without_statistics(pg: Backend):
    """50 notifications sent, among 200,000 sent before, on tables never analysed (autovacuum off, as on
    the machine that stalled): their results are written at once (the old plan took ~8 s, 0.16 s each)."""

    async def scenario(store: Store) -> float:
        schema = pg.url.rsplit("schema=", 1)[1]
        conn = await asyncpg.connect(PG_DSN, server_settings={"search_path": schema})
        try:
            # Sent notifications, two per message with a body of a real one's size, each row written
            # twice (claimed, then sent), as a run of deliveries leaves them.
            await conn.execute(
                """INSERT INTO notifications (event_id, transid, service_id, url, body, state, created_at,
                                              updated_at, next_at)
                   SELECT 'old-' || g, 'm-' || (g / 2), 'svc', 'http://127.0.0.1:9/n',
                          convert_to(repeat('x', 400), 'UTF8'), 'sent', 0, 0, 0
                   FROM generate_series(1, $1::int) AS g""",
                NOTIFICATIONS,
            )
            await conn.execute("UPDATE notifications SET updated_at = 1")
            await conn.execute(
                """INSERT INTO notifications (event_id, transid, service_id, url, body, state, created_at,
                                              updated_at, next_at)
                   SELECT 'new-' || g, 'n-' || g, 'svc', 'http://127.0.0.1:9/n', '\\x7b7d', 'pending', 1, 1, 1
                   FROM generate_series(1, $1::int) AS g""",
                FINISHED,
            )
        finally:
            await conn.close()
        claimed = await store.claim_notifications(clock.now(), FINISHED, 60)
        assert len(claimed) == FINISHED
        now = clock.now()
        results = [NotificationResult(n.seq, "sent", now, now, 200) for n in claimed]
        started = time.monotonic()
        await store.finish_notifications(results)
        return time.monotonic() - started

    took = pg.run(scenario)
    assert took < 2.0, f"{FINISHED} notification results took {took:.1f} s"


# -- a worker whose database is blocked ------------------------------------------------------------


def worker_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "tidings.toml"
    path.write_text(
        f"""
[sandbox]
delay_ms = 50
{extra}
[[services]]
id = "svc-stall"
key = "key-stall-0001"
senderids = ["CONNCT"]
"""
    )
    return path


def message(n: int) -> NewMessage:
    return NewMessage(
        transid=f"stall-{n}-{uuid.uuid4().hex[:8]}",
        service_id="svc-stall",
        channel="sms",
        address=f"+4477009{n:05d}",
        address_type="msisdn",
        content=b'{"type":"1","senderid":"CONNCT","text":"stall"}',
        parts=1,
        correlationid=None,
        callback_data=None,
        notify_url=None,
        priority=2,
        expiry=None,
        created_at=clock.now(),
    )


class Worker:
    def __init__(self, tmp_path: Path, schema: str, extra_config: str = "") -> None:
        self.log_path = tmp_path / "worker.log"
        config = worker_config(tmp_path, extra_config)
        cmd = [sys.executable, "-m", "tidings", "worker", "--config", str(config)]
        cmd += ["--db", f"{PG_DSN}?schema={schema}", "--log-level", "info"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            if text in out:
                return out
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not in the worker's output within {timeout:g} s:\n{self.output()}")

    def stop_on_sigterm(self) -> None:
        """SIGTERM, then a clean exit (code 0) within 5 s."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(15)
        took = time.monotonic() - started
        assert took < 5.0, f"the worker took {took:.1f} s to stop:\n{self.output()}"
        assert code == 0, self.output()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


async def accept(schema: str, count: int) -> None:
    from tidings.store import open_store

    store = open_store(f"{PG_DSN}?schema={schema}")
    await store.open()
    try:
        await store.accept([message(n) for n in range(count)])
    finally:
        await store.close()


def test_a_worker_blocked_on_postgresql_says_what_it_waits_on_and_leaves_on_sigterm(
    tmp_path: Path, pg_schema: str
):
    """The test holds a lock on the messages table: every claim of the worker waits for it. Within a
    few seconds the worker logs that it is stuck, on which store call, and what PostgreSQL says (a lock
    wait, and the test's session that blocks it); SIGTERM then stops it within a few seconds."""
    worker = Worker(tmp_path, pg_schema)
    holder: asyncpg.Connection | None = None
    loop = asyncio.new_event_loop()
    try:
        worker.wait_for("worker (pid", 30)
        loop.run_until_complete(accept(pg_schema, 20))
        holder = loop.run_until_complete(asyncpg.connect(PG_DSN, server_settings={"search_path": pg_schema}))
        blocker = loop.run_until_complete(holder.fetchval("SELECT pg_backend_pid()"))
        loop.run_until_complete(holder.execute("BEGIN; LOCK TABLE messages IN ACCESS EXCLUSIVE MODE"))
        out = worker.wait_for("no progress", 15)
        said = out[out.index("no progress") :]
        assert "store.claim_due" in said or "store.next_due" in said, said
        assert "Lock/relation" in said and f"blocked by {blocker}" in said, said
        assert "dispatch-" in said, said  # the task that waits, with its chain of awaits

        worker.stop_on_sigterm()
        assert "stopping" in worker.output()[worker.output().index("no progress") :]
    finally:
        worker.stop()
        if holder is not None:
            loop.run_until_complete(holder.close())
        loop.close()


class Blackhole:
    """A TCP server that accepts connections and never answers: a Redis that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self.held:
            conn.close()
        self.sock.close()


def test_a_worker_whose_redis_never_answers_delivers_by_polling_and_leaves_on_sigterm(
    tmp_path: Path, pg_schema: str
):
    redis = Blackhole()
    worker = Worker(tmp_path, pg_schema, f'[redis]\nurl = "redis://127.0.0.1:{redis.port}/0"\n')
    try:
        worker.wait_for("worker (pid", 30)
        asyncio.run(accept(pg_schema, 20))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and asyncio.run(count_final(pg_schema)) < 20:
            time.sleep(0.2)
        assert asyncio.run(count_final(pg_schema)) == 20, worker.output()
        assert redis.held, "the worker did try Redis"
        worker.stop_on_sigterm()
    finally:
        worker.stop()
        redis.close()


async def count_final(schema: str) -> int:
    conn = await asyncpg.connect(PG_DSN, server_settings={"search_path": schema})
    try:
        return int(await conn.fetchval("SELECT count(*) FROM messages WHERE status = 'Delivered'"))
    finally:
        await conn.close()
