"""The Store contract, run against every backend (tests/support/backends.py): what `tidings.store.base`
promises, through its public methods and records only. A backend passes when it behaves here exactly as
the others do; nothing in this file knows how a backend keeps its data.

Times are epoch seconds chosen by the test (`T0` onwards) unless the method takes none.
"""

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

import msgspec
import pytest

from tests.support.backends import MULTI_PROCESS, Backend, backend
from tidings.policy.contact import PolicyCheck
from tidings.specs.sms import SMS_FAILURES
from tidings.statuses import DELIVERED, SUBMITTED, Outcome, Status
from tidings.store.base import (
    CatalogueEntry,
    ClaimedNotification,
    Click,
    ConsentChange,
    IdempotentAnswer,
    InboundMessage,
    IncomingReceipt,
    MessageRecord,
    NewLink,
    NewMessage,
    NotificationResult,
    OutgoingNotification,
    ProviderAttempt,
    ReceiptTarget,
    Store,
    Update,
    receiver_of,
)
from tidings.store.rows import ATTEMPTS_KEPT

__all__ = ["backend"]  # the fixture every test here takes, parametrised over the backends

T0 = 1_000_000.0
SVC, OTHER = "svc-a", "svc-b"
ADDRESS = "+447700900123"
CONTENT = {"type": "1", "senderid": "CONNCT", "text": "hello"}
UNKNOWN_SUBSCRIBER = SMS_FAILURES["7203"]  # Un-Delivered
OUT_OF_COVERAGE = SMS_FAILURES["7207"]  # Un-Delivered
DAY = 86_400.0


def message(transid: str, service: str = SVC, at: float = T0, priority: int = 2, **fields: Any) -> NewMessage:
    m = NewMessage(
        transid=transid,
        service_id=service,
        channel="sms",
        address=ADDRESS,
        address_type="msisdn",
        content=json.dumps(CONTENT).encode(),
        parts=1,
        correlationid=None,
        callback_data=None,
        notify_url=None,
        priority=priority,
        expiry=None,
        created_at=at,
    )
    return replace(m, **fields)


def note(event_id: str) -> OutgoingNotification:
    return OutgoingNotification(
        event_id, f"https://hooks.example/{event_id}", f'{{"e":"{event_id}"}}'.encode()
    )


def change(transid: str, outcome: Outcome | None, at: float, **fields: Any) -> Update:
    """An update as the dispatcher makes one (final unless `next_at` says when to come back)."""
    fields.setdefault("next_at", None)
    fields.setdefault("attempts", 1)
    return Update(transid=transid, service_id=SVC, at=at, outcome=outcome, **fields)


class Notices:
    """A ReceiptNotice that remembers its calls and builds a notification for each."""

    def __init__(self, give: bool = True) -> None:
        self.calls: list[tuple[ReceiptTarget, Outcome, float]] = []
        self.give = give

    def __call__(self, target: ReceiptTarget, outcome: Outcome, at: float) -> OutgoingNotification | None:
        self.calls.append((target, outcome, at))
        return note(f"rcpt-{target.transid}-{len(self.calls)}") if self.give else None


async def sent(store: Store, transid: str, at: float, **fields: Any) -> None:
    """Claim a queued message and record it Submitted, as the dispatcher does after a send."""
    claimed = await store.claim_due(at, 1000, 60)
    assert transid in [m.transid for m in claimed]
    await store.record([change(transid, SUBMITTED, at, **fields)])


async def settle(store: Store, transid: str, now: float) -> MessageRecord:
    """Apply the message's due outcome, if it has one, the way the dispatcher does; return the message."""
    for m in await store.claim_due(now, 1000, 60):
        if m.transid == transid and m.status is Status.SUBMITTED and m.pending is not None:
            await store.record([change(transid, m.pending, now, attempts=m.attempts)])
    record = await store.get_message(SVC, transid)
    assert record is not None
    return record


def history(record: MessageRecord | None) -> list[tuple[str, str, float]]:
    assert record is not None
    return [(h.status, h.code, h.at) for h in record.history]


def body(entry: CatalogueEntry) -> Any:
    return json.loads(entry.body)


async def caught(awaitable: Any) -> BaseException | None:
    try:
        await awaitable
    except Exception as exc:
        return exc
    return None


# -- accept and get_message ----------------------------------------------------------------------------


def test_an_accepted_message_reads_back_with_every_field(backend: Backend):
    m = message(
        "t-1",
        priority=1,
        parts=2,
        correlationid="corr-1",
        callback_data="cb-1",
        notify_url="https://hooks.example/m",
        expiry=T0 + 3600,
        address="+447700900555",
    )

    async def scenario(store: Store) -> MessageRecord | None:
        assert await store.accept([m]) is None
        return await store.get_message(SVC, "t-1")

    record = backend.run(scenario)
    assert record == MessageRecord(
        transid="t-1",
        service_id=SVC,
        channel="sms",
        address="+447700900555",
        address_type="msisdn",
        content=CONTENT,
        parts=2,
        correlationid="corr-1",
        callback_data="cb-1",
        notify_url="https://hooks.example/m",
        priority=1,
        expiry=T0 + 3600,
        status="Queued",
        code="1001",
        description="Queued",
        created_at=T0,
        updated_at=T0,
        attempts=0,
        history=[],
        notifications=[],
        clicks=0,
    )


def test_a_message_is_visible_to_its_own_service_only(backend: Backend):
    async def scenario(store: Store) -> list[bool]:
        await store.accept([message("t-1"), message("t-2", service=OTHER)])
        found = [("t-1", SVC), ("t-1", OTHER), ("t-2", OTHER), ("t-2", SVC), ("nope", SVC)]
        return [await store.get_message(s, t) is not None for t, s in found]

    assert backend.run(scenario) == [True, False, True, False, False]


def test_an_accept_with_a_duplicate_transid_fails_and_writes_nothing_of_that_call(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("dup")])
        clash = await caught(store.accept([message("new-1"), message("dup", at=T0 + 5)]))
        within = await caught(store.accept([message("new-2"), message("new-2")]))
        answer = IdempotentAnswer(SVC, "key-1", b'{"first":true}', T0)
        keyed = await caught(store.accept([message("new-3"), message("dup")], idempotent=answer))
        # The failed call saved no answer either: the key is still free.
        retry = await store.accept([message("new-4")], idempotent=answer)
        found = [await store.get_message(SVC, t) for t in ("dup", "new-1", "new-2", "new-3", "new-4")]
        return clash, within, keyed, retry, found

    clash, within, keyed, retry, found = backend.run(scenario)
    assert clash is not None and within is not None and keyed is not None
    dup, new1, new2, new3, new4 = found
    assert dup is not None and dup.created_at == T0, "the first message is untouched"
    assert (new1, new2, new3) == (None, None, None)
    assert retry is None and new4 is not None


def test_an_idempotent_accept_replays_the_first_answer_for_24_hours(backend: Backend):
    first = IdempotentAnswer(SVC, "idem-1", b'{"messageId":"m-1"}', T0)

    async def scenario(store: Store) -> tuple[Any, ...]:
        stored = await store.accept([message("m-1")], idempotent=first)
        again = IdempotentAnswer(SVC, "idem-1", b'{"messageId":"m-2"}', T0 + DAY - 60)
        replayed = await store.accept([message("m-2")], idempotent=again)
        # The same key from another service is that service's own.
        theirs = IdempotentAnswer(OTHER, "idem-1", b'{"messageId":"o-1"}', T0 + 10)
        other = await store.accept([message("o-1", service=OTHER)], idempotent=theirs)
        # A day later the key is free again.
        later = IdempotentAnswer(SVC, "idem-1", b'{"messageId":"m-3"}', T0 + DAY + 60)
        fresh = await store.accept([message("m-3", at=T0 + DAY + 60)], idempotent=later)
        after = IdempotentAnswer(SVC, "idem-1", b'{"messageId":"m-4"}', T0 + DAY + 120)
        replayed_later = await store.accept([message("m-4")], idempotent=after)
        exist = [
            await store.get_message(s, t) is not None
            for s, t in [(SVC, "m-1"), (SVC, "m-2"), (OTHER, "o-1"), (SVC, "m-3"), (SVC, "m-4")]
        ]
        return stored, replayed, other, fresh, replayed_later, exist

    stored, replayed, other, fresh, replayed_later, exist = backend.run(scenario)
    assert stored is None
    assert replayed == b'{"messageId":"m-1"}'
    assert other is None
    assert fresh is None
    assert replayed_later == b'{"messageId":"m-3"}'
    assert exist == [True, False, True, True, False]


def test_short_links_count_clicks(backend: Backend):
    links = [
        NewLink("code-a", SVC, "t-1", 5, T0 + 3600, T0),
        NewLink("code-b", SVC, "t-1", 0, None, T0, target="https://example.com/x", track=True),
    ]

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-1")], links=links)
        before = await store.get_message(SVC, "t-1")
        a1 = await store.click("code-a", T0 + 10)
        a2 = await store.click("code-a", T0 + 20)
        b1 = await store.click("code-b", T0 + 30)
        unknown = await store.click("code-z", T0 + 40)
        after = await store.get_message(SVC, "t-1")
        return before, a1, a2, b1, unknown, after

    before, a1, a2, b1, unknown, after = backend.run(scenario)
    assert before is not None and before.clicks == 0
    assert a1 == Click(SVC, "t-1", 5, T0 + 3600, None, False)
    assert a2 == a1
    assert b1 == Click(SVC, "t-1", 0, None, "https://example.com/x", True)
    assert unknown is None
    assert after is not None and after.clicks == 3


# -- claims --------------------------------------------------------------------------------------------


def test_claim_due_hands_out_due_queued_messages(backend: Backend):
    policy = {"group": "marketing", "consent": True, "cap": False}
    m1 = message(
        "t-1",
        correlationid="c",
        callback_data="d",
        notify_url="https://hooks.example/n",
        expiry=T0 + 600,
        policy=json.dumps(policy).encode(),
    )

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([m1, message("t-2", at=T0 + 50)])
        early = await store.claim_due(T0 - 1, 10, 60)
        claimed = await store.claim_due(T0 + 10, 10, 60)
        return early, claimed

    early, claimed = backend.run(scenario)
    assert early == []
    assert len(claimed) == 1, "t-2 is not due before its created_at"
    m = claimed[0]
    assert (m.transid, m.service_id, m.channel, m.address, m.address_type) == (
        "t-1",
        SVC,
        "sms",
        ADDRESS,
        "msisdn",
    )
    assert (msgspec.json.decode(m.content), m.parts, m.correlationid, m.callback_data, m.notify_url) == (
        CONTENT,
        1,
        "c",
        "d",
        "https://hooks.example/n",
    )
    assert (m.priority, m.expiry, m.status, m.attempts, m.ext_id, m.pending) == (
        2,
        T0 + 600,
        Status.QUEUED,
        0,
        None,
        None,
    )
    assert m.policy == policy


def test_claims_take_due_outcomes_first_then_priority_order(backend: Backend):
    async def scenario(store: Store) -> tuple[list[str], ...]:
        await store.accept([message("low", priority=3, at=T0), message("rx", priority=3, at=T0)])
        # rx goes out and its outcome is due at T0+5: it outranks every queued message.
        await sent(store, "rx", T0, pending=DELIVERED, next_at=T0 + 5)
        await store.accept([message("high", priority=1, at=T0 + 1), message("normal", priority=2, at=T0 + 2)])
        await store.record([change("low", None, T0, next_at=T0, attempts=0)])  # back in the queue
        one = await store.claim_due(T0 + 10, 1, 60)
        two = await store.claim_due(T0 + 10, 1, 60)
        rest = await store.claim_due(T0 + 10, 10, 60)
        return [m.transid for m in one], [m.transid for m in two], [m.transid for m in rest]

    one, two, rest = backend.run(scenario)
    assert one == ["rx"]
    assert two == ["high"]
    assert rest == ["normal", "low"]


def test_a_claimed_message_is_leased_until_its_lease_ends(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-1")])
        first = await store.claim_due(T0, 10, 60)
        due_after_claim = await store.next_due()
        during = await store.claim_due(T0 + 59, 10, 60)
        after = await store.claim_due(T0 + 60, 10, 30)
        again = await store.claim_due(T0 + 61, 10, 30)
        return first, due_after_claim, during, after, again

    first, due_after_claim, during, after, again = backend.run(scenario)
    assert [m.transid for m in first] == ["t-1"]
    assert due_after_claim == T0 + 60, "the lease's end is the message's next work"
    assert during == []
    assert [(m.transid, m.status, m.attempts) for m in after] == [("t-1", Status.QUEUED, 0)]
    assert again == []


def test_a_small_service_is_not_stuck_behind_another_services_backlog(backend: Backend):
    backlog = 2000

    async def scenario(store: Store) -> list[tuple[str, str]]:
        await store.accept([message(f"a-{i}", service="svc-big", at=T0 + i / 1000) for i in range(backlog)])
        await store.accept([message("b-1", service="svc-small", at=T0 + 10)])  # after the whole backlog
        claimed = await store.claim_due(T0 + 100, 100, 60)
        return [(m.service_id, m.transid) for m in claimed]

    claimed = backend.run(scenario)
    assert ("svc-small", "b-1") in claimed
    assert len(claimed) == 100
    big = {t for s, t in claimed if s == "svc-big"}
    assert big == {f"a-{i}" for i in range(99)}, "the big service takes the rest, oldest first"


def test_next_due_is_the_earliest_work(backend: Backend):
    async def scenario(store: Store) -> list[float | None]:
        empty = await store.next_due()
        await store.accept([message("t-2", at=T0 + 20), message("t-1", at=T0 + 10)])
        queued = await store.next_due()
        await store.claim_due(T0 + 30, 10, 60)
        leased = await store.next_due()
        await store.record(
            [
                change("t-1", SUBMITTED, T0 + 31, pending=DELIVERED, next_at=T0 + 45),
                change("t-2", SMS_FAILURES["7101"], T0 + 31),
            ]
        )
        pending = await store.next_due()
        await store.claim_due(T0 + 45, 10, 60)
        await store.record([change("t-1", DELIVERED, T0 + 46)])
        done = await store.next_due()
        return [empty, queued, leased, pending, done]

    assert backend.run(scenario) == [None, T0 + 10, T0 + 90, T0 + 45, None]


# -- record --------------------------------------------------------------------------------------------


def test_record_commits_status_history_and_notification_together(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-1"), message("t-2")])
        await store.claim_due(T0, 10, 60)
        await store.record(
            [
                change("t-1", SUBMITTED, T0 + 1, ext_id="sim:1", notification=note("n-1")),
                change("t-2", SMS_FAILURES["7101"], T0 + 2, attempts=1, error="bad sender"),
            ]
        )
        t1 = await store.get_message(SVC, "t-1")
        t2 = await store.get_message(SVC, "t-2")
        claimed = await store.claim_notifications(T0 + 5, 10, 30)
        again = await store.claim_due(T0 + 1000, 10, 60)
        return t1, t2, claimed, again

    t1, t2, claimed, again = backend.run(scenario)
    assert t1 is not None and t2 is not None
    assert (t1.status, t1.code, t1.description, t1.updated_at, t1.attempts) == (
        "Submitted",
        "7501",
        "Submitted",
        T0 + 1,
        1,
    )
    assert history(t1) == [("Submitted", "7501", T0 + 1)]
    assert [(n.event_id, n.url, n.state, n.attempts, n.created_at) for n in t1.notifications] == [
        ("n-1", "https://hooks.example/n-1", "pending", 0, T0 + 1)
    ]
    assert (t2.status, t2.code, t2.description) == ("Failed", "7101", "Invalid sender")
    assert history(t2) == [("Failed", "7101", T0 + 2)]
    assert t2.notifications == []
    assert [(c.event_id, c.transid, c.service_id, c.body, c.attempts) for c in claimed] == [
        ("n-1", "t-1", SVC, b'{"e":"n-1"}', 0)
    ]
    assert again == [], "neither message has work left"


def tried(n: int, outcome: str, at: float, **fields: Any) -> ProviderAttempt:
    values: dict[str, Any] = {
        "at": at,
        "attempt": n,
        "connector": "carrier-x",
        "kind": "smpp",
        "outcome": outcome,
        "code": "",
        "detail": "",
        "request": f"submit_sm try {n}",
        "answer": f"submit_sm_resp try {n}",
    }
    return ProviderAttempt(**(values | fields))


def test_provider_attempts_are_kept_with_their_update_and_read_by_their_service(backend: Backend):
    long = "x" * 4096 + "é"  # the store keeps what it is given: the dispatcher cuts texts to 4 KiB

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-1"), message("t-2"), message("t-3", service=OTHER)])
        await store.claim_due(T0, 10, 60)
        await store.record(
            [
                change("t-1", None, T0 + 1, next_at=T0 + 5, provider_attempt=tried(1, "retry", T0 + 1)),
                change("t-2", SUBMITTED, T0 + 1, provider_attempt=tried(1, "accepted", T0 + 1, request=long)),
                change("t-3", SUBMITTED, T0 + 1, provider_attempt=tried(1, "accepted", T0 + 1)),
            ]
        )
        await store.claim_due(T0 + 5, 10, 60)
        failed = tried(2, "failed", T0 + 6, code="7102", detail="invalid: bad address")
        await store.record([change("t-1", SMS_FAILURES["7102"], T0 + 6, attempts=2, provider_attempt=failed)])
        return (
            await store.attempts_of(SVC, "t-1"),
            await store.attempts_of(SVC, "t-2"),
            await store.attempts_of(SVC, "t-3"),  # another service's message
            await store.attempts_of(OTHER, "t-3"),
            await store.attempts_of(SVC, "no-such-message"),
        )

    t1, t2, foreign, t3, unknown = backend.run(scenario)
    assert t1 == [
        tried(1, "retry", T0 + 1),
        tried(2, "failed", T0 + 6, code="7102", detail="invalid: bad address"),
    ]
    assert t2 == [tried(1, "accepted", T0 + 1, request=long)]
    assert foreign == [] and unknown == []
    assert [a.outcome for a in t3] == ["accepted"]


def test_a_message_keeps_its_first_retries_and_every_try_that_ended_otherwise(backend: Backend):
    async def scenario(store: Store) -> list[ProviderAttempt]:
        await store.accept([message("t-1")])
        batch = [
            change("t-1", None, T0 + n, next_at=T0 + n + 1, provider_attempt=tried(1, "retry", T0 + n))
            for n in range(ATTEMPTS_KEPT + 3)
        ]
        await store.record(batch[: ATTEMPTS_KEPT - 1])
        await store.record(batch[ATTEMPTS_KEPT - 1 :])  # one more is kept, then none
        await store.record(
            [change("t-1", SUBMITTED, T0 + 99, provider_attempt=tried(2, "accepted", T0 + 99))]
        )
        return await store.attempts_of(SVC, "t-1")

    kept = backend.run(scenario)
    assert [a.at for a in kept] == [T0 + n for n in range(ATTEMPTS_KEPT)] + [T0 + 99]
    assert kept[-1].outcome == "accepted"


def test_a_reschedule_keeps_the_status_and_sets_next_at_and_attempts(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-1")])
        await store.claim_due(T0, 10, 60)
        await store.record([change("t-1", None, T0 + 1, next_at=T0 + 20, attempts=2, error="timeout")])
        record = await store.get_message(SVC, "t-1")
        due = await store.next_due()
        early = await store.claim_due(T0 + 19, 10, 60)
        on_time = await store.claim_due(T0 + 20, 10, 60)
        return record, due, early, on_time

    record, due, early, on_time = backend.run(scenario)
    assert record is not None
    assert (record.status, record.code, record.attempts, record.history) == ("Queued", "1001", 2, [])
    assert record.notifications == []
    assert due == T0 + 20
    assert early == []
    assert [(m.transid, m.status, m.attempts) for m in on_time] == [("t-1", Status.QUEUED, 2)]


def test_a_pending_outcome_comes_back_when_due(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-1")])
        await sent(store, "t-1", T0, pending=UNKNOWN_SUBSCRIBER, next_at=T0 + 30, ext_id="sim:9")
        early = await store.claim_due(T0 + 29, 10, 60)
        due = await store.claim_due(T0 + 30, 10, 60)
        await store.record([change("t-1", due[0].pending, T0 + 31)])
        final = await store.get_message(SVC, "t-1")
        return early, due, final

    early, due, final = backend.run(scenario)
    assert early == []
    assert [(m.status, m.pending, m.ext_id, m.attempts) for m in due] == [
        (Status.SUBMITTED, UNKNOWN_SUBSCRIBER, "sim:9", 1)
    ]
    assert final is not None and (final.status, final.code) == ("Un-Delivered", "7203")
    assert history(final) == [("Submitted", "7501", T0), ("Un-Delivered", "7203", T0 + 31)]


# -- receipts ------------------------------------------------------------------------------------------


def test_a_receipt_gives_its_message_the_final_status_and_a_notification(backend: Backend):
    notices = Notices()
    m1 = message("t-1", correlationid="corr", callback_data="cb", notify_url="https://hooks.example/t1")

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([m1, message("t-2")])
        claimed = await store.claim_due(T0, 10, 60)
        assert len(claimed) == 2
        await store.record(
            [
                change("t-1", SUBMITTED, T0 + 1, ext_id="sim:abc1", notification=note("sub-1")),
                change("t-2", SUBMITTED, T0 + 1, ext_id="sim:abc2"),
            ]
        )
        idle = await store.next_due()
        receipts = [
            # Candidate forms of the provider's id, the exact one first: the second one is recorded.
            IncomingReceipt(["sim:ABC1", "sim:abc1"], DELIVERED, T0 + 5),
            IncomingReceipt(["sim:abc2"], UNKNOWN_SUBSCRIBER, T0 + 6),
        ]
        await store.apply_receipts(receipts, notices)
        t1 = await store.get_message(SVC, "t-1")
        t2 = await store.get_message(SVC, "t-2")
        return idle, t1, t2, await store.next_due()

    idle, t1, t2, after = backend.run(scenario)
    assert idle is None, "a submitted message without a scheduled outcome waits for its receipt"
    assert t1 is not None and t2 is not None
    assert (t1.status, t1.code, t1.description, t1.updated_at) == ("Delivered", "7500", "Delivered", T0 + 5)
    assert history(t1) == [("Submitted", "7501", T0 + 1), ("Delivered", "7500", T0 + 5)]
    assert [n.event_id for n in t1.notifications] == ["sub-1", "rcpt-t-1-1"]
    assert (t2.status, t2.code) == ("Un-Delivered", "7203")
    assert history(t2) == [("Submitted", "7501", T0 + 1), ("Un-Delivered", "7203", T0 + 6)]
    assert [n.event_id for n in t2.notifications] == ["rcpt-t-2-2"]
    target = ReceiptTarget("t-1", SVC, "sms", ADDRESS, "msisdn", 1, "corr", "cb", "https://hooks.example/t1")
    assert notices.calls[0] == (target, DELIVERED, T0 + 5)
    assert [(c[0].transid, c[1], c[2]) for c in notices.calls[1:]] == [("t-2", UNKNOWN_SUBSCRIBER, T0 + 6)]
    assert after is None


def test_a_repeated_receipt_changes_nothing(backend: Backend):
    quiet = Notices(give=False)
    loud = Notices()

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-1")])
        await sent(store, "t-1", T0, ext_id="sim:r1")
        await store.apply_receipts([IncomingReceipt(["sim:r1"], DELIVERED, T0 + 5)], quiet)
        first = await store.get_message(SVC, "t-1")
        await store.apply_receipts([IncomingReceipt(["sim:r1"], DELIVERED, T0 + 7)], loud)
        await store.apply_receipts([IncomingReceipt(["sim:r1"], UNKNOWN_SUBSCRIBER, T0 + 8)], loud)
        return first, await store.get_message(SVC, "t-1")

    first, second = backend.run(scenario)
    assert first is not None and (first.status, first.code) == ("Delivered", "7500")
    assert first.notifications == [], "the notice built none"
    assert len(quiet.calls) == 1
    assert second == first
    assert loud.calls == []


def test_a_receipt_that_arrives_before_its_submit_is_recorded_is_applied_then(backend: Backend):
    notices = Notices()

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-1")])
        claimed = await store.claim_due(T0, 10, 60)
        assert [m.transid for m in claimed] == ["t-1"]
        # The SMSC's receipt comes in before the submit's response was recorded.
        await store.apply_receipts(
            [IncomingReceipt(["sim:E1", "sim:e1"], UNKNOWN_SUBSCRIBER, T0 + 2)], notices
        )
        before = await store.get_message(SVC, "t-1")
        await store.record([change("t-1", SUBMITTED, T0 + 3, ext_id="sim:e1")])
        final = await settle(store, "t-1", T0 + 10)
        return before, final, await store.next_due()

    before, final, due = backend.run(scenario)
    assert before is not None and (before.status, before.history) == ("Queued", [])
    assert (final.status, final.code) == ("Un-Delivered", "7203")
    assert [(h.status, h.code) for h in final.history] == [("Submitted", "7501"), ("Un-Delivered", "7203")]
    assert due is None


def test_a_message_in_parts_is_delivered_once_every_part_is(backend: Backend):
    notices = Notices()

    async def scenario(store: Store) -> list[Any]:
        await store.accept([message("t-1", parts=3)])
        await sent(store, "t-1", T0, part_ids=("sim:p1", "sim:p2", "sim:p3"))
        seen = []
        for n, key in enumerate(["sim:p1", "sim:p3", "sim:p2"], start=1):
            await store.apply_receipts([IncomingReceipt([key], DELIVERED, T0 + n)], notices)
            record = await store.get_message(SVC, "t-1")
            assert record is not None
            seen.append((record.status, len(record.history)))
        return seen

    assert backend.run(scenario) == [("Submitted", 1), ("Submitted", 1), ("Delivered", 2)]
    assert [(c[0].transid, c[0].parts, c[1], c[2]) for c in notices.calls] == [("t-1", 3, DELIVERED, T0 + 3)]


def test_the_first_failing_part_decides_a_message_in_parts(backend: Backend):
    notices = Notices()

    async def scenario(store: Store) -> list[Any]:
        await store.accept([message("t-1", parts=3)])
        await sent(store, "t-1", T0, part_ids=("sim:q1", "sim:q2", "sim:q3"))
        seen = []
        for n, (key, outcome) in enumerate(
            [("sim:q2", OUT_OF_COVERAGE), ("sim:q1", UNKNOWN_SUBSCRIBER), ("sim:q3", DELIVERED)], start=1
        ):
            await store.apply_receipts([IncomingReceipt([key], outcome, T0 + n)], notices)
            record = await store.get_message(SVC, "t-1")
            assert record is not None
            seen.append((record.status, record.code, len(record.history)))
        return seen

    assert backend.run(scenario) == [("Un-Delivered", "7207", 2)] * 3
    assert [(c[1], c[2]) for c in notices.calls] == [(OUT_OF_COVERAGE, T0 + 1)]


def test_early_receipts_for_every_part_deliver_the_message_once_its_parts_are_recorded(backend: Backend):
    async def scenario(store: Store) -> MessageRecord:
        await store.accept([message("t-1", parts=2)])
        await store.claim_due(T0, 10, 60)
        receipts = [
            IncomingReceipt(["sim:x1"], DELIVERED, T0 + 1),
            IncomingReceipt(["sim:x2"], DELIVERED, T0 + 2),
        ]
        await store.apply_receipts(receipts, Notices())
        await store.record([change("t-1", SUBMITTED, T0 + 3, part_ids=("sim:x1", "sim:x2"))])
        return await settle(store, "t-1", T0 + 10)

    final = backend.run(scenario)
    assert (final.status, final.code) == ("Delivered", "7500")
    assert [h.status for h in final.history] == ["Submitted", "Delivered"]


# -- receipts for reused provider ids -----------------------------------------------------------------
# SMSCs reuse their message ids (a restart, a counter that wraps). A receipt goes to the message of that id
# still waiting for one, the most recently sent if several; never to one already final.


def test_a_reused_id_finds_the_message_still_waiting_not_the_finished_one(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-old"), message("t-new", at=T0 + 100)])
        await sent(store, "t-old", T0, ext_id="sim:10000")
        await store.apply_receipts([IncomingReceipt(["sim:10000"], UNKNOWN_SUBSCRIBER, T0 + 5)], Notices())
        await sent(store, "t-new", T0 + 100, ext_id="sim:10000")
        notices = Notices()
        await store.apply_receipts([IncomingReceipt(["sim:10000"], DELIVERED, T0 + 105)], notices)
        old, new = await store.get_message(SVC, "t-old"), await store.get_message(SVC, "t-new")
        return old, new, [c[0].transid for c in notices.calls]

    old, new, notified = backend.run(scenario)
    assert old is not None and (old.status, old.code) == ("Un-Delivered", "7203")
    assert history(new) == [("Submitted", "7501", T0 + 100), ("Delivered", "7500", T0 + 105)]
    assert notified == ["t-new"]


def test_two_messages_waiting_under_one_id_each_get_one_receipt_newest_first(backend: Backend):
    async def scenario(store: Store) -> list[Any]:
        await store.accept([message("t-1"), message("t-2")])
        await store.claim_due(T0, 10, 60)
        await store.record([change("t-1", SUBMITTED, T0 + 1, ext_id="sim:7")])
        await store.record([change("t-2", SUBMITTED, T0 + 2, ext_id="sim:7")])
        receipts = [
            IncomingReceipt(["sim:7"], DELIVERED, T0 + 5),
            IncomingReceipt(["sim:7"], UNKNOWN_SUBSCRIBER, T0 + 5),
        ]
        await store.apply_receipts(receipts, Notices())  # one batch, as an SMSC's burst arrives
        return [await store.get_message(SVC, t) for t in ("t-1", "t-2")]

    t1, t2 = backend.run(scenario)
    assert t1 is not None and t2 is not None
    assert [(t1.status, t1.code), (t2.status, t2.code)] == [("Un-Delivered", "7203"), ("Delivered", "7500")]


def test_a_receipt_for_a_reused_id_that_overtakes_its_submit_waits_for_it(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-old"), message("t-new", at=T0 + 100)])
        await sent(store, "t-old", T0, ext_id="sim:e5")
        await store.apply_receipts([IncomingReceipt(["sim:e5"], DELIVERED, T0 + 5)], Notices())
        claimed = await store.claim_due(T0 + 100, 10, 60)
        assert [m.transid for m in claimed] == ["t-new"]
        # The receipt comes before the submit_sm_resp is recorded; the finished t-old has the same id.
        await store.apply_receipts(
            [IncomingReceipt(["sim:E5", "sim:e5"], OUT_OF_COVERAGE, T0 + 101)], Notices()
        )
        await store.record([change("t-new", SUBMITTED, T0 + 102, ext_id="sim:e5")])
        return await store.get_message(SVC, "t-old"), await settle(store, "t-new", T0 + 110)

    old, new = backend.run(scenario)
    assert old is not None and history(old) == [("Submitted", "7501", T0), ("Delivered", "7500", T0 + 5)]
    assert [(h.status, h.code) for h in new.history] == [("Submitted", "7501"), ("Un-Delivered", "7207")]


def test_parts_with_reused_ids_find_the_message_still_waiting(backend: Backend):
    """A finished message in one piece, then one in two parts whose first part's id is the same."""
    notices = Notices()

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-one"), message("t-two", parts=2, at=T0 + 100)])
        await sent(store, "t-one", T0, ext_id="sim:p1")
        await store.apply_receipts([IncomingReceipt(["sim:p1"], DELIVERED, T0 + 5)], Notices())
        await sent(store, "t-two", T0 + 100, part_ids=("sim:p1", "sim:p2"))
        for n, key in enumerate(["sim:p2", "sim:p1"], start=1):
            await store.apply_receipts([IncomingReceipt([key], DELIVERED, T0 + 100 + n)], notices)
        return await store.get_message(SVC, "t-one"), await store.get_message(SVC, "t-two")

    one, two = backend.run(scenario)
    assert one is not None and [h.status for h in one.history] == ["Submitted", "Delivered"]
    assert history(two) == [("Submitted", "7501", T0 + 100), ("Delivered", "7500", T0 + 102)]
    assert [c[0].transid for c in notices.calls] == ["t-two"]


def test_a_repeated_receipt_is_not_taken_by_a_message_that_reuses_its_id_much_later(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        later = T0 + DAY
        await store.accept([message("t-old"), message("t-new", at=later)])
        await sent(store, "t-old", T0, ext_id="sim:r9")
        await store.apply_receipts([IncomingReceipt(["sim:r9"], DELIVERED, T0 + 5)], Notices())
        # The SMSC repeats the receipt (our acknowledgement was lost): it names no waiting message.
        await store.apply_receipts([IncomingReceipt(["sim:r9"], UNKNOWN_SUBSCRIBER, T0 + 6)], Notices())
        await sent(store, "t-new", later, ext_id="sim:r9")
        waiting = await store.get_message(SVC, "t-new")
        await store.apply_receipts([IncomingReceipt(["sim:r9"], DELIVERED, later + 5)], Notices())
        return waiting, await store.get_message(SVC, "t-new")

    waiting, final = backend.run(scenario)
    assert waiting is not None and waiting.status == "Submitted"
    assert final is not None and (final.status, final.code) == ("Delivered", "7500")


# -- notifications -------------------------------------------------------------------------------------


def test_notifications_are_claimed_oldest_first(backend: Backend):
    async def scenario(store: Store) -> tuple[list[str], ...]:
        await store.accept([message(f"t-{i}") for i in range(1, 4)])
        await store.claim_due(T0, 10, 60)
        for at, i in [(T0 + 11, 2), (T0 + 12, 1), (T0 + 13, 3)]:
            await store.record([change(f"t-{i}", SUBMITTED, at, notification=note(f"n-{i}"))])
        two = await store.claim_notifications(T0 + 20, 2, 30)
        rest = await store.claim_notifications(T0 + 20, 10, 30)
        return [c.event_id for c in two], [c.event_id for c in rest], [c.transid for c in two + rest]

    two, rest, transids = backend.run(scenario)
    assert two == ["n-2", "n-1"]
    assert rest == ["n-3"]
    assert transids == ["t-2", "t-1", "t-3"]


def test_notifications_of_busy_receivers_are_left_for_later(backend: Backend):
    """Receivers are scheme://host[:port], any case, credentials dropped; both backends agree."""
    urls = {
        "n-1": "https://Hooks.Example/a?x=1",
        "n-2": "https://user:pw@hooks.example/b",
        "n-3": "https://hooks.example:8443/c",
        "n-4": "http://hooks.example/d",
        "n-5": "https://other.example/e",
    }

    async def scenario(store: Store) -> tuple[list[str], list[str]]:
        await store.accept([message(f"t-{i}") for i in range(1, 6)])
        await store.claim_due(T0, 10, 60)
        for i in range(1, 6):
            event = f"n-{i}"
            notification = OutgoingNotification(event, urls[event], b"{}")
            await store.record([change(f"t-{i}", SUBMITTED, T0 + i, notification=notification)])
        busy = ["https://hooks.example", "https://other.example"]
        open_ones = await store.claim_notifications(T0 + 20, 10, 30, busy=busy)
        rest = await store.claim_notifications(T0 + 20, 10, 30)
        return [c.event_id for c in open_ones], [c.event_id for c in rest]

    open_ones, rest = backend.run(scenario)
    assert open_ones == ["n-3", "n-4"]
    assert rest == ["n-1", "n-2", "n-5"]
    assert receiver_of("HTTPS://u:p@Hooks.Example:8443/x?y#z") == "https://hooks.example:8443"


def test_a_messages_notifications_go_one_at_a_time_in_order(backend: Backend):
    def states(record: MessageRecord | None) -> list[tuple[Any, ...]]:
        assert record is not None
        return [(n.event_id, n.state, n.attempts, n.http_status, n.last_error) for n in record.notifications]

    async def scenario(store: Store) -> list[Any]:
        seen: list[Any] = []
        await store.accept([message("t-1"), message("t-2")])
        await store.claim_due(T0, 10, 60)
        await store.record([change("t-1", SUBMITTED, T0 + 1, ext_id="sim:1", notification=note("a-sub"))])
        await store.record([change("t-2", SUBMITTED, T0 + 1, ext_id="sim:2", notification=note("b-sub"))])
        await store.apply_receipts(
            [IncomingReceipt(["sim:1"], DELIVERED, T0 + 2)], lambda t, o, at: note("a-dlr")
        )
        seen.append(states(await store.get_message(SVC, "t-1")))
        # Only the first of t-1's; t-2's does not wait for t-1's.
        first = await store.claim_notifications(T0 + 5, 10, 30)
        seen.append([c.event_id for c in first])
        seq = {c.event_id: c.seq for c in first}
        await store.finish_notifications(
            [
                NotificationResult(seq["a-sub"], "pending", T0 + 6, T0 + 20, 500, "HTTP 500"),
                NotificationResult(seq["b-sub"], "sent", T0 + 6, T0 + 6, 200),
            ]
        )
        seen.append([c.event_id for c in await store.claim_notifications(T0 + 10, 10, 30)])
        retry = await store.claim_notifications(T0 + 20, 10, 30)
        seen.append([(c.event_id, c.attempts) for c in retry])
        # Our own shutdown cut this try short: it does not count.
        await store.finish_notifications(
            [NotificationResult(retry[0].seq, "pending", T0 + 21, T0 + 21, None, "stopping", counted=False)]
        )
        retry = await store.claim_notifications(T0 + 21, 10, 30)
        seen.append([(c.event_id, c.attempts) for c in retry])
        await store.finish_notifications([NotificationResult(retry[0].seq, "sent", T0 + 22, T0 + 22, 200)])
        nxt = await store.claim_notifications(T0 + 22, 10, 30)
        seen.append([(c.event_id, c.attempts, c.body) for c in nxt])
        await store.finish_notifications(
            [NotificationResult(nxt[0].seq, "failed", T0 + 23, T0 + 23, 410, "HTTP 410")]
        )
        seen.append([c.event_id for c in await store.claim_notifications(T0 + 1000, 10, 30)])
        seen.append(states(await store.get_message(SVC, "t-1")))
        seen.append(states(await store.get_message(SVC, "t-2")))
        return seen

    (
        initial,
        first,
        blocked,
        retry,
        uncounted,
        nxt,
        none_left,
        final_a,
        final_b,
    ) = backend.run(scenario)
    assert initial == [("a-sub", "pending", 0, None, None), ("a-dlr", "waiting", 0, None, None)]
    assert first == ["a-sub", "b-sub"]
    assert blocked == [], "a-sub waits for its retry time and a-dlr waits for a-sub"
    assert retry == [("a-sub", 1)]
    assert uncounted == [("a-sub", 1)]
    assert nxt == [("a-dlr", 0, b'{"e":"a-dlr"}')]
    assert none_left == []
    assert final_a == [("a-sub", "sent", 2, 200, None), ("a-dlr", "failed", 1, 410, "HTTP 410")]
    assert final_b == [("b-sub", "sent", 1, 200, None)]


def test_a_claimed_notification_is_leased_until_its_lease_ends(backend: Backend):
    async def scenario(store: Store) -> list[list[ClaimedNotification]]:
        await store.accept([message("t-1")])
        await sent(store, "t-1", T0, notification=note("n-1"))
        first = await store.claim_notifications(T0 + 1, 10, 30)
        during = await store.claim_notifications(T0 + 30, 10, 30)
        after = await store.claim_notifications(T0 + 31, 10, 30)
        return [first, during, after]

    first, during, after = backend.run(scenario)
    assert [(c.event_id, c.attempts) for c in first] == [("n-1", 0)]
    assert during == []
    assert [(c.event_id, c.seq, c.attempts) for c in after] == [("n-1", first[0].seq, 0)]


def test_an_added_notification_goes_after_the_messages_others(backend: Backend):
    now = time.time()

    async def scenario(store: Store) -> list[list[str]]:
        await store.accept([message("t-1", at=now)])
        await sent(store, "t-1", now, ext_id="sim:1", notification=note("n-sub"))
        await store.add_notification("t-1", SVC, note("n-click"))
        first = await store.claim_notifications(now + 60, 10, 30)
        await store.finish_notifications([NotificationResult(first[0].seq, "sent", now + 61, now + 61, 200)])
        second = await store.claim_notifications(now + 62, 10, 30)
        record = await store.get_message(SVC, "t-1")
        assert record is not None
        return [
            [c.event_id for c in first],
            [c.event_id for c in second],
            [n.event_id for n in record.notifications],
        ]

    assert backend.run(scenario) == [["n-sub"], ["n-click"], ["n-sub", "n-click"]]


# -- inbound, consent and contact policy ---------------------------------------------------------------


def check(
    transid: str,
    address: str = ADDRESS,
    group: str = "marketing",
    opt_in: bool = False,
    consent: bool = False,
    limits: list[tuple[float, int]] | None = None,
) -> PolicyCheck:
    return PolicyCheck(transid, SVC, group, opt_in, "text", address, consent, limits or [])


def consent_record(
    address: str, consent: bool, group: str = "marketing", channel: str = "text", **fields: Any
) -> ConsentChange:
    c = ConsentChange(SVC, group, channel, address, consent, "web form", "api", None, T0)
    return replace(c, **fields)


def test_an_inbound_message_keeps_its_notification_and_consent_change(backend: Backend):
    mo = InboundMessage("mo-1", SVC, "sms", "+447700900555", "+447700900000", "STOP", 1, T0)
    stop = ConsentChange(SVC, "", "text", "+447700900555", False, "STOP", "keyword", None, T0)

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.record_inbound(mo, note("n-mo"), stop)
        claimed = await store.claim_notifications(T0 + 1, 10, 30)
        saved = await store.get_consent(SVC, "", "text", "+447700900555")
        # The keyword opt-out overrides a group's consent.
        await store.save_consent(consent_record("+447700900555", True))
        refused = await store.check_policies([check("t-1", "+447700900555", consent=True)], T0 + 2)
        return claimed, saved, refused

    claimed, saved, refused = backend.run(scenario)
    assert [(c.event_id, c.transid, c.service_id, c.url, c.body, c.attempts) for c in claimed] == [
        ("n-mo", "mo-1", SVC, "https://hooks.example/n-mo", b'{"e":"n-mo"}', 0)
    ]
    assert saved == stop
    assert refused == {"t-1": "9002"}


def test_consent_records_save_read_and_delete(backend: Backend):
    address = "+447700900777"

    async def scenario(store: Store) -> list[Any]:
        seen: list[Any] = [await store.get_consent(SVC, "marketing", "text", address)]
        await store.save_consent(consent_record(address, True, expires=T0 + 500))
        seen.append(await store.get_consent(SVC, "marketing", "text", address))
        await store.save_consent(consent_record(address, False, reason="user asked", source="sms", at=T0 + 1))
        seen.append(await store.get_consent(SVC, "marketing", "text", address))
        seen.append(await store.get_consent(OTHER, "marketing", "text", address))
        seen.append(await store.get_consent(SVC, "other-group", "text", address))
        await store.save_consent(consent_record(address, True, channel="email"))
        await store.delete_consent(SVC, "marketing", address, "text")
        seen.append(await store.get_consent(SVC, "marketing", "text", address))
        seen.append(await store.get_consent(SVC, "marketing", "email", address))
        await store.save_consent(consent_record(address, True))
        await store.delete_consent(SVC, "marketing", address, None)
        seen.append(await store.get_consent(SVC, "marketing", "text", address))
        seen.append(await store.get_consent(SVC, "marketing", "email", address))
        return seen

    seen = backend.run(scenario)
    assert seen == [
        None,
        ConsentChange(SVC, "marketing", "text", address, True, "web form", "api", T0 + 500, T0),
        ConsentChange(SVC, "marketing", "text", address, False, "user asked", "sms", None, T0 + 1),
        None,
        None,
        None,
        ConsentChange(SVC, "marketing", "email", address, True, "web form", "api", None, T0),
        None,
        None,
    ]


def test_consent_checks_refuse_with_the_documented_codes(backend: Backend):
    a = [f"+44770090{n:04d}" for n in range(10)]

    async def scenario(store: Store) -> dict[str, str]:
        await store.save_consent(consent_record(a[3], True))
        await store.save_consent(consent_record(a[4], True, expires=T0 - 1))
        await store.save_consent(consent_record(a[5], False))
        await store.save_consent(consent_record(a[6], True))
        await store.save_consent(consent_record(a[6], False, group=""))  # STOP
        await store.save_consent(consent_record(a[8], True, expires=T0 + 100))
        await store.save_consent(consent_record(a[9], False, group="other-group"))
        checks = [
            check("t-1", a[1], opt_in=True, consent=True),  # opt-in, no record
            check("t-2", a[2], opt_in=False, consent=True),  # opt-out, no record
            check("t-3", a[3], opt_in=True, consent=True),  # opted in
            check("t-4", a[4], opt_in=True, consent=True),  # consent expired
            check("t-5", a[5], opt_in=False, consent=True),  # opted out
            check("t-6", a[6], opt_in=True, consent=True),  # opted in, then STOP
            check("t-7", a[7], opt_in=True, consent=False),  # consent not asked for
            check("t-8", a[8], opt_in=True, consent=True),  # consent not yet expired
            check("t-9", a[9], opt_in=False, consent=True),  # opted out of another group only
        ]
        return await store.check_policies(checks, T0)

    assert backend.run(scenario) == {"t-1": "9002", "t-4": "9010", "t-5": "9002", "t-6": "9002"}


def test_a_frequency_cap_counts_only_messages_that_passed_a_capped_check(backend: Backend):
    cap = [(DAY, 2)]
    other = "+447700900999"

    async def scenario(store: Store) -> list[dict[str, str]]:
        results = []
        for at, c in [
            (T0, check("c-1", limits=cap)),
            (T0 + 10, check("c-2", opt_in=True, consent=True, limits=cap)),  # 9002: not counted
            (T0 + 20, check("c-3", limits=cap)),
            (T0 + 30, check("c-4", limits=cap)),  # 9006: not counted
            (T0 + 40, check("c-5", limits=cap)),  # 9006: not counted
            (T0 + 50, check("c-6")),  # no cap asked for: not counted
            (T0 + 60, check("c-7", address=other, limits=cap)),  # another address
            (T0 + 70, check("c-8", group="other-group", limits=cap)),  # another group
            # A day after c-1, only c-3 is in the window (and then c-9 too).
            (T0 + DAY + 15, check("c-9", limits=cap)),
            (T0 + DAY + 19, check("c-10", limits=cap)),  # c-3 and c-9 in the window
        ]:
            results.append(await store.check_policies([c], at))
        return results

    assert backend.run(scenario) == [
        {},
        {"c-2": "9002"},
        {},
        {"c-4": "9006"},
        {"c-5": "9006"},
        {},
        {},
        {},
        {},
        {"c-10": "9006"},
    ]


def test_a_batch_of_checks_for_one_address_passes_exactly_the_cap(backend: Backend):
    async def scenario(store: Store) -> tuple[dict[str, str], dict[str, str]]:
        batch = [check(f"b-{i}", limits=[(DAY, 3), (7 * DAY, 10)]) for i in range(1, 6)]
        first = await store.check_policies(batch, T0)
        later = await store.check_policies([check("b-6", limits=[(DAY, 3)])], T0 + 60)
        return first, later

    first, later = backend.run(scenario)
    assert first == {"b-4": "9006", "b-5": "9006"}
    assert later == {"b-6": "9006"}


def test_a_message_that_passed_its_check_is_not_checked_again(backend: Backend):
    policy = {"group": "marketing", "consent": False, "cap": True}

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-1", policy=json.dumps(policy).encode()), message("t-2", at=T0 + 1)])
        claimed = await store.claim_due(T0 + 5, 10, 60)
        refused = await store.check_policies([check("t-1", limits=[(DAY, 5)])], T0 + 5)
        # The send failed and is retried: the message comes back without its check.
        await store.record([change("t-1", None, T0 + 6, next_at=T0 + 10)])
        again = await store.claim_due(T0 + 10, 10, 60)
        return {m.transid: m.policy for m in claimed}, refused, {m.transid: m.policy for m in again}

    claimed, refused, again = backend.run(scenario)
    assert claimed == {"t-1": policy, "t-2": None}
    assert refused == {}
    assert again == {"t-1": None}


# -- the catalogue -------------------------------------------------------------------------------------


def test_catalogue_changes_add_update_and_delete(backend: Backend):
    svc = CatalogueEntry("services", "svc-x", b'{"id": "svc-x", "key": "k-1"}')

    async def scenario(store: Store) -> list[Any]:
        seen: list[Any] = []
        rev0, entries = await store.load_catalogue()
        seen.append(entries)
        seen.append(await store.change_catalogue(svc, "add"))
        rev1 = await store.catalogue_revision()
        seen.append(await store.change_catalogue(replace(svc, body=b'{"id": "svc-x", "key": "k-9"}'), "add"))
        seen.append(await store.catalogue_revision() == rev1)
        rev, entries = await store.load_catalogue()
        seen.append((rev == rev1, [(e.kind, e.name, body(e), e.origin) for e in entries]))
        updated = CatalogueEntry("services", "svc-x", b'{"id": "svc-x", "key": "k-2"}', origin="config")
        seen.append(await store.change_catalogue(updated, "update"))
        rev2 = await store.catalogue_revision()
        missing = CatalogueEntry("services", "svc-nope", b"{}")
        seen.append(await store.change_catalogue(missing, "update"))
        seen.append(await store.change_catalogue(missing, "delete"))
        seen.append(await store.catalogue_revision() == rev2)
        rev, entries = await store.load_catalogue()
        seen.append((rev == rev2, [(e.kind, e.name, body(e), e.origin) for e in entries]))
        seen.append(await store.change_catalogue(svc, "delete"))
        rev3, entries = await store.load_catalogue()
        seen.append(entries)
        seen.append(rev0 < rev1 < rev2 < rev3)
        return seen

    assert backend.run(scenario) == [
        [],
        True,
        False,  # the kind and name exist
        True,  # and a refused change does not move the revision
        (True, [("services", "svc-x", {"id": "svc-x", "key": "k-1"}, "admin")]),
        True,
        False,
        False,
        True,
        (True, [("services", "svc-x", {"id": "svc-x", "key": "k-2"}, "admin")]),  # the origin stays
        True,
        [],
        True,
    ]


def test_seeding_the_catalogue_follows_the_origin_rules(backend: Backend):
    def entry(kind: str, name: str, version: int, origin: str = "admin") -> CatalogueEntry:
        return CatalogueEntry(kind, name, json.dumps({"name": name, "v": version}).encode(), origin)

    def view(entries: list[CatalogueEntry]) -> dict[tuple[str, str], tuple[int, str]]:
        return {(e.kind, e.name): (body(e)["v"], e.origin) for e in entries}

    async def scenario(store: Store) -> list[Any]:
        seen: list[Any] = []
        await store.change_catalogue(entry("services", "svc-admin", 1), "add")
        await store.change_catalogue(entry("services", "svc-named", 1), "add")
        await store.change_catalogue(entry("services", "svc-demo", 1, origin="demo"), "add")
        rev0 = await store.catalogue_revision()
        # The file's entries come in with any origin: the seed makes them config's.
        await store.seed_catalogue(
            [entry("services", "svc-c1", 1), entry("templates", "svc-c1/sms/otp", 1)], drop_demo=False
        )
        rev1, entries = await store.load_catalogue()
        seen.append(view(entries))
        await store.seed_catalogue(
            [
                entry("services", "svc-c1", 2),
                entry("smartlinks", "svc-c1/5", 1),
                entry("services", "svc-named", 2),  # the file wins over the admin API
            ],
            drop_demo=False,
        )
        rev2, entries = await store.load_catalogue()
        seen.append(view(entries))
        await store.seed_catalogue([entry("services", "svc-c1", 2)], drop_demo=True)
        rev3, entries = await store.load_catalogue()
        seen.append(view(entries))
        seen.append(rev0 < rev1 < rev2 < rev3)
        return seen

    first, second, third, moved = backend.run(scenario)
    assert first == {
        ("services", "svc-admin"): (1, "admin"),
        ("services", "svc-named"): (1, "admin"),
        ("services", "svc-demo"): (1, "demo"),
        ("services", "svc-c1"): (1, "config"),
        ("templates", "svc-c1/sms/otp"): (1, "config"),
    }
    assert second == {
        ("services", "svc-admin"): (1, "admin"),
        ("services", "svc-named"): (2, "config"),
        ("services", "svc-demo"): (1, "demo"),
        ("services", "svc-c1"): (2, "config"),
        ("smartlinks", "svc-c1/5"): (1, "config"),
    }
    assert third == {
        ("services", "svc-admin"): (1, "admin"),
        ("services", "svc-c1"): (2, "config"),
    }
    assert moved is True


# -- several processes on one database -----------------------------------------------------------------


@pytest.mark.parametrize("backend", MULTI_PROCESS, indirect=True)
def test_two_stores_claiming_at_once_get_disjoint_sets_covering_everything_due(backend: Backend):
    total = 300

    async def scenario(stores: list[Store]) -> tuple[Any, ...]:
        a, b = stores
        await a.accept([message(f"m-{i}", service=f"svc-{i % 3}", at=T0 + i / 1000) for i in range(total)])
        first = await asyncio.gather(a.claim_due(T0 + 10, total, 60), b.claim_due(T0 + 10, total, 60))
        leftover = await a.claim_due(T0 + 10, total, 60)
        # Again in small bites, each store claiming what the other has not.
        await a.accept([message(f"n-{i}", service=f"svc-{i % 3}", at=T0 + 20) for i in range(total)])
        rounds: list[list[str]] = []
        for _ in range(50):
            got = await asyncio.gather(a.claim_due(T0 + 30, 25, 60), b.claim_due(T0 + 30, 25, 60))
            if not got[0] and not got[1]:
                break
            rounds.extend([m.transid for m in g] for g in got)
        return [[m.transid for m in g] for g in first], [m.transid for m in leftover], rounds

    first, leftover, rounds = backend.run_many(2, scenario)
    assert not set(first[0]) & set(first[1])
    assert set(first[0]) | set(first[1]) == {f"m-{i}" for i in range(total)}
    assert leftover == []
    claimed = [t for r in rounds for t in r]
    assert len(claimed) == len(set(claimed)), "no message is claimed twice"
    assert set(claimed) == {f"n-{i}" for i in range(total)}


@pytest.mark.parametrize("backend", MULTI_PROCESS, indirect=True)
def test_two_stores_checking_one_address_at_once_let_only_the_cap_through(backend: Backend):
    async def scenario(stores: list[Store]) -> list[tuple[dict[str, str], dict[str, str]]]:
        a, b = stores
        results = []
        for n in range(20):
            address = f"+4477009{n:05d}"
            got = await asyncio.gather(
                a.check_policies([check(f"a-{n}", address, limits=[(DAY, 1)])], T0),
                b.check_policies([check(f"b-{n}", address, limits=[(DAY, 1)])], T0),
            )
            results.append((got[0], got[1]))
        return results

    for n, (a, b) in enumerate(backend.run_many(2, scenario)):
        refused = {**a, **b}
        assert list(refused.values()) == ["9006"], f"address {n}: {a} {b}"
        assert len(refused) == 1
