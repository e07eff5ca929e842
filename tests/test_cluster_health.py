"""Every process's connectors on one health page (tidings.observe.cluster): what a process publishes into
the store, how the store keeps it on every backend (publish, read back with its age, forget what a gone
process left, delete on stop), how the page shows a stale or unreadable process, and a real server's
rows: there while it runs, free of its secrets, gone once it stops.

The several-process case (`serve --api-only` showing a `tidings worker`'s connectors) is in
tests/test_processes.py."""

import asyncio
import re
import socket
import time
from pathlib import Path

import msgspec

from tests.support.backends import Backend, backend
from tests.support.console import sign_in
from tests.support.server import TidingsServer, free_port
from tidings.channels.base import FailureKind, SendError
from tidings.console.health import process_rows
from tidings.observe.cluster import (
    STALE_AFTER_S,
    UNREADABLE,
    ConnectorEntry,
    channels_run,
    group,
)
from tidings.observe.connectors import Credential, Ledger
from tidings.store.base import ProcessRecord, PublishedReport, Store

__all__ = ["backend"]

WORKER = ProcessRecord("host-b:41:aa", "host-b", 41, "worker", 1_000.0)
SERVE = ProcessRecord("host-a:7:bb", "host-a", 7, "serve", 2_000.0)
KEY = "key-cluster-0001"
PASSWORD = "zq9x7w4p"


def entry(name: str, *channels: str, up: bool = True) -> ConnectorEntry:
    return ConnectorEntry(name, name, channels, Ledger().report(up=up))


def body(e: ConnectorEntry) -> str:
    return msgspec.json.encode(e).decode()


# -- the store, on every backend --------------------------------------------------------------------------


def test_a_process_publishes_its_connectors_and_every_process_reads_them(backend: Backend):
    sms, push = entry("sandbox", "email", "sms"), entry("push", "push", up=False)

    async def scenario(store: Store) -> tuple[list[PublishedReport], ...]:
        await store.publish_reports(WORKER, [("push", body(push)), ("sandbox", body(sms))], 600)
        await store.publish_reports(SERVE, [("sandbox", body(sms))], 600)
        first = await store.published_reports()
        await asyncio.sleep(0.3)
        later = await store.published_reports()
        # Published again, with one connector fewer: its row goes, the other's age starts again.
        await store.publish_reports(WORKER, [("sandbox", body(sms))], 600)
        again = await store.published_reports()
        return first, later, again

    first, later, again = backend.run(scenario)
    assert [(r.process, r.connector) for r in first] == [
        (SERVE, "sandbox"),
        (WORKER, "push"),
        (WORKER, "sandbox"),
    ]
    assert msgspec.json.decode(first[1].body, type=ConnectorEntry) == push
    assert all(0 <= r.age < 1 for r in first)
    assert all(r.age >= 0.25 for r in later), "the age is the store's clock since publication"
    assert [(r.process.id, r.connector) for r in again] == [(SERVE.id, "sandbox"), (WORKER.id, "sandbox")]
    assert again[1].age < 0.25 <= again[0].age


def test_a_stopping_process_removes_its_rows_and_a_gone_ones_are_forgotten(backend: Backend):
    async def scenario(store: Store) -> tuple[list[str], list[str]]:
        await store.publish_reports(WORKER, [("sandbox", body(entry("sandbox", "sms")))], 600)
        await store.publish_reports(SERVE, [("sandbox", body(entry("sandbox", "sms")))], 600)
        await store.unpublish_reports(SERVE.id)  # a clean stop
        stopped = [r.process.id for r in await store.published_reports()]
        await asyncio.sleep(0.3)
        # The worker never published again (killed): the next publication by anyone forgets its rows.
        await store.publish_reports(SERVE, [("sandbox", body(entry("sandbox", "sms")))], 0.25)
        forgotten = [r.process.id for r in await store.published_reports()]
        return stopped, forgotten

    stopped, forgotten = backend.run(scenario)
    assert stopped == [WORKER.id]
    assert forgotten == [SERVE.id]


# -- the page's view of the rows ---------------------------------------------------------------------------


def test_a_process_not_heard_from_is_stale_and_runs_no_channel():
    rows = [
        PublishedReport(WORKER, "sandbox", body(entry("sandbox", "sms")), STALE_AFTER_S + 1),
        PublishedReport(SERVE, "sandbox", body(entry("sandbox", "email")), 2.0),
        PublishedReport(SERVE, "later", '{"name": 3}', 2.0),  # a shape this version cannot read
        PublishedReport(ProcessRecord("me", "host-c", 9, "api", 0), "x", "{}", 0.0),
    ]
    views = group(rows, mine="me")
    assert [(v.process, v.stale) for v in views] == [(SERVE, False), (WORKER, True)]
    assert views[0].connectors[1] == ConnectorEntry("later", "?", state=UNREADABLE)
    assert channels_run(views) == {"email"}, "a stale process's channels count as run by no one"
    stale = process_rows(views[1], time.time())
    assert stale.startswith("<tbody data-process='host-b:41' data-role='worker' data-stale='yes'>")
    assert "<strong>stale (process gone?)</strong>: last reported 16 s ago, expected every 5 s" in stale
    live = process_rows(views[0], time.time())
    assert "host-a:7 (serve), started" in live and "; reported 2 s ago</th>" in live
    assert f"<td>{UNREADABLE}</td>" in live


def test_provider_words_in_a_report_are_redacted_before_they_are_shown_or_published():
    token = "EAAG-token-0123456789"
    ledger = Ledger(lambda: [token])
    ledger.record([SendError(FailureKind.CONFIG, f"190 Malformed access token {token}")])
    refused = Credential("app a (page 1)", "static token", refused=f"Malformed access token {token}")
    report = ledger.report(
        detail=[f"bind: down (login {token} refused)"],
        credentials=[refused],
        backoff=(time.time() + 5, f"slow down, {token}"),
    )
    published = body(ConnectorEntry("messenger", "messenger", ("fb",), report))
    assert token not in published
    assert (
        "Malformed access token [redacted]" in published
        and "bind: down (login [redacted] refused)" in published
    )
    assert report.credentials[0].name == "app a (page 1)"


# -- a real server ---------------------------------------------------------------------------------------


def test_a_servers_rows_are_there_while_it_runs_and_gone_once_it_stops(tmp_path: Path):
    smsc = free_port()  # nobody listens: the bind is down, with its connection error in the report
    config = (
        f'[[services]]\nid = "svc-c"\nkey = "{KEY}"\nsenderids = ["CONNCT"]\n\n'
        f'[[smsc]]\nname = "carrier-z"\nhost = "127.0.0.1"\nport = {smsc}\n'
        f'system_id = "tidings"\npassword = "{PASSWORD}"\n'
    )
    server = TidingsServer(tmp_path, config).start()
    try:
        query = "SELECT connector, host, pid, role, body FROM connector_reports ORDER BY connector"
        rows = server.rows(query)
        assert server.proc is not None
        here = (socket.gethostname(), server.proc.pid, "serve")
        assert [(r[0], *r[1:4]) for r in rows] == [(name, *here) for name in sorted(r[0] for r in rows)]
        assert {"carrier-z", "sandbox", "push", "whatsapp"} <= {r[0] for r in rows}
        assert not any(PASSWORD in r[4] for r in rows), "the SMSC password is never published"
        with sign_in(server.url, KEY) as console:
            page = console.get("/console/health").text
        label = f"{socket.gethostname()}:{server.proc.pid}"
        assert f"<tbody data-process='{label}' data-role='serve'>" in page
        assert re.search(rf"{re.escape(label)} \(serve\), started .*?; this process \(as of now\)</th>", page)
        assert f"Answered by {label} (serve)." in page and "not run by" not in page
        assert server.stop() == 0
        assert server.rows("SELECT count(*) FROM connector_reports") == [(0,)]
    finally:
        server.close()
