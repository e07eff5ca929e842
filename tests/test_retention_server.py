"""Retention as a user meets it, on a real server's database: `tidings purge` (and its dry run), the
periodic pass inside `tidings serve`, and what the API, the listing and the links answer afterwards.

Messages are sent over HTTP and go their whole way (Delivered, notifications sent); the test then moves
their times back by ten days in the database (the one thing it cannot wait for) and purges.
"""

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support.backends import PG_DSN
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer

KEY = "key-retain-0001"
DAY = 86_400
AGE = 10 * DAY  # how far back the "old" messages are moved
LINK = re.compile(r"https?://[^/\s]+/l/([A-Za-z0-9_-]+)")


def config(receiver: Receiver, store: str = "") -> str:
    return f"""
[sandbox]
delay_ms = 20

[notify]
retry_interval_s = 0.2

[[services]]
id = "svc-retain"
key = "{KEY}"
senderids = ["CONNCT"]
notify_url = "{receiver.url("/retain")}"
email_from = ["news@example.com"]
{store}
"""


def db_url(server: TidingsServer) -> str:
    if server.schema is not None:
        return f"{PG_DSN}?schema={server.schema}"
    return f"sqlite:///{server.workdir / 'tidings.db'}"


def execute(server: TidingsServer, sql: str, *args: Any) -> None:
    """Change the stopped server's database (SQLite's `?` placeholders; rewritten for PostgreSQL)."""
    if server.schema is None:
        conn = sqlite3.connect(server.workdir / "tidings.db")
        try:
            conn.execute(sql, args)
            conn.commit()
        finally:
            conn.close()
        return
    parts = sql.split("?")
    numbered = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))

    async def run() -> None:
        conn = await asyncpg.connect(PG_DSN, server_settings={"search_path": str(server.schema)})
        try:
            await conn.execute(numbered, *args)
        finally:
            await conn.close()

    asyncio.run(run())


def purge_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidings", "purge", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def send_sms(server: TidingsServer, *msisdns: str) -> list[str]:
    body = {
        "deliverychannel": "sms",
        "channels": {"sms": {"text": "hello", "senderid": "CONNCT"}},
        "destination": [{"msisdn": list(msisdns)}],
    }
    return [r["transid"] for r in server.send(body, KEY).json()["response"]]


def send_short_link(server: TidingsServer) -> tuple[str, str]:
    """An SMS API message whose URL became a short link (valid 180 days): its id and the link's code."""
    r = server.client.post(
        "/v1/sms/messages",
        headers={"Authorization": KEY},
        json={"from": "CONNCT", "to": "+447700900301", "content": "See https://shop.example.com/a",
              "shortenUrls": True},
    )  # fmt: skip
    assert r.status_code == 202, r.text
    message_id = r.json()["messageId"]
    view = server.client.get(f"/v1/sms/messages/{message_id}", headers={"Authorization": KEY}).json()
    m = LINK.search(view["content"])
    assert m is not None, view
    return message_id, m.group(1)


def send_tracked_email(server: TidingsServer) -> tuple[str, str]:
    """An email with a tracked link: its id and the link's click code (a tracking record, no expiry)."""
    r = server.client.post(
        "/v2/messages",
        headers={"key": KEY},
        json={
            "channel": "email",
            "from": "news@example.com",
            "to": [{"email": ["ann@example.net"]}],
            "options": {"trackClicks": True},
            "content": {"type": "html", "subject": "Offer",
                        "html": '<p>See <a href="https://shop.example.com/offer">it</a>.</p>'},
        },
    )  # fmt: skip
    assert r.status_code == 201, r.text
    transid = r.json()["messageId"]
    (code,) = server.rows("SELECT code FROM links WHERE transid = ? AND linkid = -2", transid)[0]
    return transid, code


def wait_done(server: TidingsServer, transids: list[str], timeout: float = 15.0) -> None:
    """Until every message is final and no notification is left to send."""
    deadline = time.monotonic() + timeout
    final = ("Delivered", "Un-Delivered", "Failed", "Expired", "Bounce", "Read")
    while time.monotonic() < deadline:
        statuses = [server.message(t, KEY).get("status") for t in transids]
        left = server.rows("SELECT count(*) FROM notifications WHERE state IN ('pending', 'waiting')")[0][0]
        if all(s in final for s in statuses) and left == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"not done within {timeout}s: {statuses}, {left} notifications left")


def age(server: TidingsServer, transids: list[str]) -> None:
    """Move the messages' times back by AGE, as if they had been sent then."""
    for t in transids:
        execute(server, "UPDATE messages SET created_at = created_at - ?, updated_at = updated_at - ? "
                "WHERE transid = ?", AGE, AGE, t)  # fmt: skip


def unknown_answer(server: TidingsServer, transid: str) -> tuple[int, Any]:
    r = server.client.get(f"/v1/messages/{transid}", headers={"key": KEY})
    return r.status_code, r.json()["code"] if r.content else None


def listed(server: TidingsServer) -> set[str]:
    page = server.client.get("/v1/messages", headers={"key": KEY}, params={"limit": 200}).json()
    return {m["transid"] for m in page["messages"]}


@pytest.fixture
def server(tmp_path: Path, receiver: Receiver) -> Iterator[TidingsServer]:
    s = TidingsServer(tmp_path, config(receiver))
    yield s
    s.close()


def test_tidings_purge_deletes_old_messages_and_says_how_many(server: TidingsServer):
    server.start()
    old = send_sms(server, "+447700900101", "+447700900102")
    email, click_code = send_tracked_email(server)
    held, short_code = send_short_link(server)
    recent = send_sms(server, "+447700900103")
    everything = [*old, email, held, *recent]
    wait_done(server, everything)
    assert server.client.get(f"/t/c/{click_code}").status_code == 302
    server.stop()
    age(server, [*old, email, held])

    url, cwd = db_url(server), server.workdir
    refused = purge_cli("--db", url, cwd=cwd)
    assert refused.returncode == 1 and "--older-than" in refused.stderr, refused.stderr
    too_soon = purge_cli("--db", url, "--older-than", "1", cwd=cwd)
    assert too_soon.returncode == 2 and "--older-than" in too_soon.stderr

    dry = purge_cli("--db", url, "--older-than", "7", "--dry-run", "--json", cwd=cwd)
    assert dry.returncode == 0, dry.stderr
    counted = json.loads(dry.stdout)
    assert counted["dry_run"] and counted["messages"] == 3 and counted["older_than_days"] == 7
    text = purge_cli("--db", url, "--older-than", "7", "--dry-run", cwd=cwd)
    assert text.stdout.startswith("Would purge 3 messages and 0 inbound messages"), text.stdout

    done = purge_cli("--db", url, "--older-than", "7", "--json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["messages"], report["rows"]) == (3, counted["rows"])
    # Each SMS and the email: Submitted and Delivered, in history and notifications; the email's link and
    # the Clicked notification of its click.
    assert {k: report["rows"][k] for k in ("messages", "events", "notifications", "links")} == {
        "messages": 3, "events": 6, "notifications": 7, "links": 1,
    }  # fmt: skip
    again = purge_cli("--db", url, "--older-than", "7", cwd=cwd)
    assert again.stdout.startswith("Purged 0 messages and 0 inbound messages"), again.stdout

    server.start()
    never = "01a21e35-8471-7bca-8f32-c1c4dd9cd2dd"
    for t in [*old, email]:
        assert unknown_answer(server, t) == unknown_answer(server, never) == (404, "404")
    assert listed(server) == {held, *recent}
    for t in [held, *recent]:
        assert server.message(t, KEY)["status"] == "Delivered"
    # The email's tracked link is gone with it, as an unknown code; the short link, valid for 180 days,
    # kept its message.
    assert server.client.get(f"/t/c/{click_code}").status_code == 404
    short = server.client.get(f"/l/{short_code}")
    assert (short.status_code, short.headers["location"]) == (302, "https://shop.example.com/a")


def test_tidings_purge_reads_the_retention_from_the_config_file(tmp_path: Path, receiver: Receiver):
    server = TidingsServer(tmp_path, config(receiver, "[store]\nretain_days = 7\npurge_interval_s = 3600\n"))
    try:
        server.start()
        old = send_sms(server, "+447700900111")
        wait_done(server, old)
        server.stop()
        age(server, old)
        assert server.config_path is not None
        r = purge_cli("--config", str(server.config_path), "--db", db_url(server), cwd=server.workdir)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("Purged 1 message and 0 inbound messages last changed before"), r.stdout
        assert "(older than 7 days)" in r.stdout
        assert "messages 1, inbound 0, events 2, notifications 2, attempts 1" in r.stdout
    finally:
        server.close()


@pytest.mark.sqlite_only
def test_tidings_purge_cannot_take_a_sqlite_file_a_server_holds(server: TidingsServer):
    server.start()
    r = purge_cli("--db", db_url(server), "--older-than", "7", cwd=server.workdir)
    assert r.returncode == 1
    assert "in use by another Tidings process" in r.stderr and "purges by itself" in r.stderr, r.stderr


def test_check_config_refuses_a_retention_under_two_days(tmp_path: Path):
    cfg = tmp_path / "t.toml"
    cfg.write_text("[store]\nretain_days = 1\npurge_interval_s = 0\n")
    r = subprocess.run(
        [sys.executable, "-m", "tidings", "check-config", str(cfg)], capture_output=True, text=True
    )
    assert r.returncode == 1
    assert f"{cfg}:2: store.retain_days: must be 0 (keep every message) or at least 2, got 1" in r.stderr
    assert f"{cfg}:3: store.purge_interval_s: must be greater than 0" in r.stderr


def test_serve_purges_by_itself_every_interval(tmp_path: Path, receiver: Receiver):
    server = TidingsServer(tmp_path, config(receiver, "[store]\nretain_days = 7\npurge_interval_s = 0.3\n"))
    try:
        server.start()
        old = send_sms(server, "+447700900121", "+447700900122")
        recent = send_sms(server, "+447700900123")
        wait_done(server, [*old, *recent])
        assert listed(server) == {*old, *recent}, "nothing is old enough yet"
        server.stop()
        age(server, old)
        server.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(unknown_answer(server, t)[0] != 404 for t in old):
            time.sleep(0.1)
        assert [unknown_answer(server, t)[0] for t in old] == [404, 404]
        assert listed(server) == set(recent)
        assert server.rows("SELECT count(*) FROM events WHERE transid IN (?, ?)", *old) == [(0,)]
        server.stop()
        assert "retention: purged 2 messages and 0 inbound messages older than 7 days" in server.output()
    finally:
        server.close()
