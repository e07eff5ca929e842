"""Retention, on every backend: a purge pass (`tidings.retention.purge`) deletes the messages that are done
and old with every row of theirs, keeps everything else, and works in bounded batches.

Unlike tests/test_store_contract.py this file also reads the database itself: to show that no row of a
purged message is left in any table, it lists the tables from the schema, so that a table added later
with a `transid` (or `tid`) column fails here until the purge deletes its rows too.
"""

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest

from tests.support.backends import MULTI_PROCESS, Backend, backend
from tidings.retention import PurgeReport, purge
from tidings.specs.sms import SMS_FAILURES
from tidings.statuses import DELIVERED, READ, SUBMITTED, Outcome
from tidings.store.base import (
    Advance,
    CatalogueEntry,
    ConsentChange,
    Device,
    IdempotentAnswer,
    InboundMessage,
    IncomingReceipt,
    NewLink,
    NewMessage,
    NotificationResult,
    NotificationState,
    OutgoingNotification,
    ProviderAttempt,
    ReceiptTarget,
    Store,
    Update,
)
from tidings.store.listing import MessageQuery
from tidings.store.postgres import parse_url
from tidings.store.purge import PURGED_WITH_INBOUND, PURGED_WITH_MESSAGE

__all__ = ["backend"]

DAY = 86_400.0
T0 = 1_000_000.0  # when the old messages were sent
NOW = T0 + 40 * DAY
RETAIN = 30 * DAY
BEFORE = NOW - RETAIN  # the cut-off: ten days after T0
SVC = "svc-a"
ADDRESS = "+447700900123"
UNKNOWN_SUBSCRIBER = SMS_FAILURES["7203"]

# Tables that hold no row of any one message, and why each is kept by a purge. A new table must be added
# here, or carry a transid (tid) column whose rows the purge deletes with their message.
KEPT_TABLES = {
    "catalogue": "configuration: services, templates, smart links, groups, apps",
    "catalogue_revision": "configuration",
    "consents": "contact-policy consent records (opt-ins, STOP)",
    "devices": "push devices of apps' users",
    "gone_addresses": "suppression list: addresses a provider said are gone, email unsubscribes",
    "policy_sends": "frequency caps' counts, forgotten after 31 days (rows.EXPIRING)",
    "idempotency": "Idempotency-Key answers, forgotten after 24 hours (rows.EXPIRING)",
    "early_receipts": "receipts no send took yet, forgotten after 7 days (rows.EXPIRING)",
    "early_statuses": "statuses no send took yet, forgotten after 5 minutes (rows.EXPIRING)",
    "processes": "PostgreSQL: the running processes' heartbeats",
    "connector_reports": "each running process's connectors for the health page, gone when it stops",
    "tidings_migrations": "PostgreSQL: the schema's version",
    "sqlite_sequence": "SQLite's own AUTOINCREMENT counters",
}
KEY_COLUMNS = ("transid", "tid")


def message(transid: str, at: float = T0, **fields: Any) -> NewMessage:
    m = NewMessage(
        transid=transid,
        service_id=SVC,
        channel="sms",
        address=ADDRESS,
        address_type="msisdn",
        content=json.dumps({"type": "1", "senderid": "CONNCT", "text": "hello"}).encode(),
        parts=1,
        correlationid=None,
        callback_data=None,
        notify_url="https://hooks.example/n",
        priority=2,
        expiry=None,
        created_at=at,
    )
    for key, value in fields.items():
        setattr(m, key, value)
    return m


def note(event_id: str) -> OutgoingNotification:
    return OutgoingNotification(event_id, "https://hooks.example/n", f'{{"e":"{event_id}"}}'.encode())


def attempt(at: float, outcome: str = "accepted") -> ProviderAttempt:
    return ProviderAttempt(
        at, 1, "carrier-a", "smpp", outcome, "7501", "id", "submit_sm …", "submit_sm_resp …"
    )


def receipt_note(target: ReceiptTarget, outcome: Outcome, at: float) -> OutgoingNotification:
    return note(f"{target.transid}-{outcome.status.word}-{at}")


def link(code: str, transid: str, expires_at: float | None, linkid: int = 0) -> NewLink:
    return NewLink(code, SVC, transid, linkid, expires_at, T0, "https://example.com/x", True)


async def accepted(
    store: Store, transid: str, at: float = T0, links: Sequence[NewLink] = (), **fields: Any
) -> None:
    await store.accept([message(transid, at, **fields)], links=links)


async def submitted(store: Store, transids: Sequence[str], at: float, parts: int = 1) -> None:
    """Claim the queued messages and record each Submitted under its provider id (in parts: one id per
    part), with its notification and its provider attempt, as the dispatcher does."""
    claimed = {m.transid for m in await store.claim_due(at, 1000, 60)}
    assert set(transids) <= claimed
    await store.record(
        [
            Update(
                transid=t,
                service_id=SVC,
                at=at,
                next_at=None,
                attempts=1,
                outcome=SUBMITTED,
                ext_id=f"smpp:{t}",
                part_ids=tuple(f"smpp:{t}:{n}" for n in range(1, parts + 1)) if parts > 1 else (),
                notification=note(f"{t}-sub"),
                provider_attempt=attempt(at),
            )
            for t in transids
        ]
    )


async def finished(store: Store, transid: str, outcome: Outcome, at: float, parts: int = 1) -> None:
    """The provider's receipt (one per part) makes the message final, with its notification."""
    keys = [[f"smpp:{transid}:{n}"] for n in range(1, parts + 1)] if parts > 1 else [[f"smpp:{transid}"]]
    await store.apply_receipts([IncomingReceipt(k, outcome, at) for k in keys], receipt_note)


async def notifications_done(store: Store, at: float, state: NotificationState = "sent") -> None:
    """Send (or give up) every notification due, one message's after another's, until none is left."""
    while claimed := await store.claim_notifications(at, 1000, 60):
        await store.finish_notifications([NotificationResult(c.seq, state, at, at, 200) for c in claimed])


async def sent_and_done(
    store: Store, transid: str, at: float = T0, outcome: Outcome = DELIVERED, **kw: Any
) -> None:
    """A message that went the whole way at `at`: accepted, Submitted, final a minute later."""
    parts = kw.pop("parts", 1)
    await accepted(store, transid, at, parts=parts, **kw)
    await submitted(store, [transid], at + 1, parts=parts)
    await finished(store, transid, outcome, at + 60, parts=parts)


# -- reading the database itself -----------------------------------------------------------------------


async def tables(backend: Backend) -> dict[str, list[str]]:
    """Every table of the store's schema with its columns."""
    if backend.name == "sqlite":
        conn = sqlite3.connect(backend.url.removeprefix("sqlite:///"))
        try:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {n: [c[1] for c in conn.execute(f'PRAGMA table_info("{n}")')] for n in names}
        finally:
            conn.close()
    dsn, schema = parse_url(backend.url)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema or "public"})
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() ORDER BY ordinal_position"
        )
    finally:
        await conn.close()
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(table, []).append(column)
    return found


async def rows_of(backend: Backend, keys: Sequence[str]) -> dict[str, int]:
    """How many rows each table keyed by a message (its transid or tid column) holds under `keys`."""
    keyed = {t: next(c for c in KEY_COLUMNS if c in cols) for t, cols in (await tables(backend)).items()
             if any(c in cols for c in KEY_COLUMNS)}  # fmt: skip
    if backend.name == "sqlite":
        conn = sqlite3.connect(backend.url.removeprefix("sqlite:///"))
        try:
            marks = ",".join("?" * len(keys))
            count = "SELECT count(*) FROM {} WHERE {} IN ({})"
            return {
                t: conn.execute(count.format(t, c, marks), list(keys)).fetchone()[0] for t, c in keyed.items()
            }
        finally:
            conn.close()
    dsn, schema = parse_url(backend.url)
    pg = await asyncpg.connect(dsn, server_settings={"search_path": schema or "public"})
    try:
        return {t: await pg.fetchval(f"SELECT count(*) FROM {t} WHERE {c} = ANY($1::text[])", list(keys))
                for t, c in keyed.items()}  # fmt: skip
    finally:
        await pg.close()


async def count_all(backend: Backend, table: str) -> int:
    if backend.name == "sqlite":
        conn = sqlite3.connect(backend.url.removeprefix("sqlite:///"))
        try:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        finally:
            conn.close()
    dsn, schema = parse_url(backend.url)
    pg = await asyncpg.connect(dsn, server_settings={"search_path": schema or "public"})
    try:
        return int(await pg.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await pg.close()


# -- what goes, and with it every row --------------------------------------------------------------------


def test_every_table_is_either_purged_with_its_message_or_kept_on_purpose(backend: Backend):
    async def scenario(store: Store) -> dict[str, list[str]]:
        return await tables(backend)

    schema = backend.run(scenario)
    keyed = {t for t, cols in schema.items() if any(c in cols for c in KEY_COLUMNS)}
    assert keyed == set(PURGED_WITH_MESSAGE) | set(PURGED_WITH_INBOUND), (
        "a table keyed by a message that the purge does not know (tidings/store/purge.py)"
    )
    unclassified = set(schema) - keyed - set(KEPT_TABLES)
    assert not unclassified, f"tables neither purged with a message nor kept on purpose: {unclassified}"


def test_a_done_old_message_goes_with_every_row_of_its_in_every_table(backend: Backend):
    gone = ["whole", "in-parts", "failed-gone", "given-up", "expired-link"]

    async def scenario(store: Store) -> tuple[Any, ...]:
        # One message with a row in every table a message has: events, notifications, an attempt, a
        # tracked email-like link without expiry (email's open pixel), parts.
        await sent_and_done(store, "whole", links=[link("c-whole", "whole", None, linkid=-1)])
        await sent_and_done(store, "in-parts", parts=2)
        await store.click("c-whole", T0 + 120)
        await store.add_notification("whole", SVC, note("whole-click"))
        # A failure that said the address is gone: the message goes, the suppression stays.
        await accepted(store, "failed-gone")
        await store.claim_due(T0 + 1, 1000, 60)
        failure = Update("failed-gone", SVC, T0 + 1, None, 1, UNKNOWN_SUBSCRIBER, gone=True,
                         notification=note("failed-gone-n"),
                         provider_attempt=attempt(T0 + 1, "failed"))  # fmt: skip
        await store.record([failure])
        await sent_and_done(store, "expired-link", links=[link("c-exp", "expired-link", T0 + DAY)])
        await notifications_done(store, T0 + 200)
        # A notification given up on counts as done as well.
        await sent_and_done(store, "given-up", at=T0 + 300)
        await notifications_done(store, T0 + 400, state="failed")
        # An inbound message, with its webhook sent and a STOP it recorded.
        stop = ConsentChange(SVC, "", "text", ADDRESS, False, "STOP", "keyword", None, T0 + 500)
        await store.record_inbound(
            InboundMessage("mo-old", SVC, "sms", ADDRESS, "+447700900000", "STOP", 1, T0 + 500),
            note("mo-old-n"),
            stop,
        )
        await notifications_done(store, T0 + 501)
        await store.save_device(Device("", "app-1", SVC, "u1", "c1", "android", "fcm", "tok-1"))
        await store.seed_catalogue([CatalogueEntry("services", SVC, b'{"id":"svc-a"}')], drop_demo=False)

        before = await rows_of(backend, [*gone, "mo-old"])
        report = await purge(store, BEFORE, NOW)
        after = await rows_of(backend, [*gone, "mo-old"])
        seen = [await store.get_message(SVC, t) for t in gone]
        listed = await store.list_messages(MessageQuery(SVC))
        kept = (
            await store.get_consent(SVC, "", "text", ADDRESS),
            await store.gone_addresses(SVC, "sms", [ADDRESS]),
            await store.list_devices("app-1"),
            (await store.load_catalogue())[1],
        )
        found = (await store.find_link("c-whole"), await store.attempts_of(SVC, "whole"),
                 await store.last_inbound(SVC, "sms", [ADDRESS]))  # fmt: skip
        return before, report, after, seen, listed, kept, *found

    before, report, after, seen, listed, kept, found_link, attempts, last = backend.run(scenario)
    assert all(n > 0 for n in before.values()), f"the scenario must leave rows in every keyed table: {before}"
    assert after == dict.fromkeys(after, 0), f"rows left behind: {after}"
    assert (report.messages, report.inbound) == (5, 1)
    for table, n in before.items():
        assert report.rows[table] == n, table
    assert seen == [None] * 5 and listed == [] and found_link is None and attempts == [] and last == {}
    consent, suppressed, devices, catalogue = kept
    assert consent is not None and not consent.consent
    assert ADDRESS in suppressed
    assert [d.token for d in devices] == ["tok-1"]
    assert [e.name for e in catalogue] == [SVC]


def test_what_is_not_done_or_not_old_enough_stays(backend: Backend):
    async def scenario(store: Store) -> tuple[PurgeReport, dict[str, bool]]:
        # Sent at T0 and final, but with a notification still to go: first pending, then one behind it.
        await sent_and_done(store, "notifying")
        await notifications_done(store, T0 + 100)
        await store.add_notification("notifying", SVC, note("late-click"))
        # Never final: still Queued, and Submitted with no receipt.
        await accepted(store, "queued", at=T0 + 10, not_before=NOW + DAY)
        await accepted(store, "waiting-receipt", at=T0 + 20)
        await submitted(store, ["waiting-receipt"], T0 + 21)
        # Delivered long ago, read lately: a Read restarts its retention.
        await sent_and_done(store, "read-lately", at=T0 + 30)
        # A short link valid for another day holds its message; the dead one's does not.
        await sent_and_done(store, "live-link", at=T0 + 40, links=[link("c-live", "live-link", NOW + DAY)])
        await sent_and_done(store, "dead-link", at=T0 + 50, links=[link("c-dead", "dead-link", NOW - DAY)])
        # Final, but after the cut-off.
        await sent_and_done(store, "recent", at=BEFORE - 30)
        await notifications_done(store, BEFORE)
        await store.advance([Advance(SVC, "read-lately", READ, NOW - DAY)], receipt_note)
        await notifications_done(store, NOW - DAY)
        # Inbound: recent, and old with its webhook still to go.
        await store.record_inbound(
            InboundMessage("mo-new", SVC, "sms", ADDRESS, "+4477", "hi", 1, NOW - DAY), None, None
        )
        await store.record_inbound(
            InboundMessage("mo-held", SVC, "sms", ADDRESS, "+4477", "hi", 1, T0), note("held"), None
        )
        report = await purge(store, BEFORE, NOW)
        names = ["notifying", "queued", "waiting-receipt", "read-lately", "live-link", "dead-link", "recent"]
        there = {t: await store.get_message(SVC, t) is not None for t in names}
        last = await store.last_inbound(SVC, "sms", [ADDRESS])
        there["mo-new"] = last.get(ADDRESS) == NOW - DAY
        return report, there

    report, there = backend.run(scenario)
    assert there == {
        "notifying": True,
        "queued": True,
        "waiting-receipt": True,
        "read-lately": True,
        "live-link": True,
        "dead-link": False,
        "recent": True,
        "mo-new": True,
    }
    assert (report.messages, report.inbound) == (1, 0), "only the message whose link is dead goes"


def test_a_purge_goes_in_batches_of_at_most_its_size_and_misses_nothing(backend: Backend):
    async def scenario(store: Store) -> tuple[PurgeReport, PurgeReport, int, list[str]]:
        # 24 messages accepted in three requests of eight (each request's messages share created_at),
        # every third one still notifying: 16 may go.
        transids = [f"m-{i:02d}" for i in range(24)]
        for r in range(3):
            batch = transids[r * 8 : (r + 1) * 8]
            await store.accept([message(t, T0 + r) for t in batch])
            await submitted(store, batch, T0 + 5)
            for t in batch:
                await finished(store, t, DELIVERED, T0 + 6)
        await notifications_done(store, T0 + 10)
        for t in transids[::3]:
            await store.add_notification(t, SVC, note(f"{t}-click"))
        dry = await purge(store, BEFORE, NOW, batch=5, dry_run=True)
        report = await purge(store, BEFORE, NOW, batch=5)
        left = [t for t in transids if await store.get_message(SVC, t) is not None]
        return dry, report, await count_all(backend, "messages"), left

    dry, report, messages, left = backend.run(scenario)
    assert report.messages == 16 and report.rows["messages"] == 16
    assert report.batches == 5 + 1, "24 candidates, 5 at a time (the fifth finds 4: the last), then inbound"
    assert left == [f"m-{i:02d}" for i in range(0, 24, 3)] and messages == 8
    assert (dry.messages, dry.rows, dry.batches) == (report.messages, report.rows, report.batches)


def test_a_dry_run_counts_exactly_and_deletes_nothing(backend: Backend):
    async def scenario(store: Store) -> tuple[PurgeReport, PurgeReport, PurgeReport, dict[str, int]]:
        await sent_and_done(store, "a", parts=3)
        await sent_and_done(store, "b")
        await notifications_done(store, T0 + 100)
        await store.record_inbound(
            InboundMessage("mo", SVC, "sms", ADDRESS, "+4477", "hi", 1, T0), None, None
        )
        dry = await purge(store, BEFORE, NOW, dry_run=True)
        again = await purge(store, BEFORE, NOW, dry_run=True)
        still = await rows_of(backend, ["a", "b", "mo"])
        return dry, again, await purge(store, BEFORE, NOW), still

    dry, again, real, still = backend.run(scenario)
    assert dry.dry_run and not real.dry_run
    assert (dry.messages, dry.inbound, dry.rows) == (again.messages, again.inbound, again.rows)
    assert (dry.messages, dry.inbound, dry.rows) == (real.messages, real.inbound, real.rows)
    assert (real.messages, real.inbound) == (2, 1)
    assert real.rows["ext_parts"] == 3 and real.rows["events"] == 4 and still["messages"] == 2


def test_a_pass_forgets_what_outlived_its_use(backend: Backend):
    async def scenario(store: Store) -> tuple[dict[str, int], bytes | None, bytes | None]:
        now = NOW
        await store.accept(
            [message("idem-old", now - 2 * DAY)], IdempotentAnswer(SVC, "k-old", b"old", now - 2 * DAY)
        )
        await store.accept([message("idem-new", now - 60)], IdempotentAnswer(SVC, "k-new", b"new", now - 60))
        await store.apply_receipts([IncomingReceipt(["smpp:none"], DELIVERED, now - 8 * DAY)], receipt_note)
        report = await purge(store, now - RETAIN, now)
        return (
            report.rows,
            await store.earlier_answer(SVC, "k-new", now),
            await store.earlier_answer(SVC, "k-old", now - 2 * DAY + 1),
        )

    rows, new, old = backend.run(scenario)
    assert rows["idempotency"] == 1 and rows["early_receipts"] == 1
    assert new == b"new" and old is None


def test_a_purged_message_takes_no_notification_after_it(backend: Backend):
    async def scenario(store: Store) -> tuple[int, int]:
        await sent_and_done(store, "clicked")
        await notifications_done(store, T0 + 100)
        report = await purge(store, BEFORE, NOW)
        await store.add_notification("clicked", SVC, note("too-late"))  # a click read the message before
        return report.messages, (await rows_of(backend, ["clicked"]))["notifications"]

    assert backend.run(scenario) == (1, 0)


# -- several processes (PostgreSQL) ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", MULTI_PROCESS, indirect=True)
def test_one_process_purges_at_a_time_and_two_at_once_share_the_work(backend: Backend):
    async def scenario(stores: list[Store]) -> tuple[list[bool], list[bool], list[PurgeReport], int]:
        one, two = stores
        transids = [f"m-{i:03d}" for i in range(120)]
        await one.accept([message(t, T0 + i // 10) for i, t in enumerate(transids)])
        await submitted(one, transids, T0 + 20)
        for t in transids:
            await finished(one, t, DELIVERED, T0 + 30)
        await notifications_done(one, T0 + 40)
        async with one.purging() as first, two.purging() as second:
            held = [first, second]
        async with two.purging() as second_after:
            freed = [second_after]
        # Two purges at once (the CLI beside a server's pass): each message goes once, none is missed.
        reports = await asyncio.gather(purge(one, BEFORE, NOW, batch=7), purge(two, BEFORE, NOW, batch=7))
        return held, freed, list(reports), await count_all(backend, "messages")

    held, freed, reports, left = backend.run_many(2, scenario)
    assert held == [True, False] and freed == [True]
    assert sum(r.messages for r in reports) == 120 and left == 0
    assert sum(r.rows["events"] for r in reports) == 240
