"""The Store contract for Meta's status webhooks: statuses applied by the provider's id
(`advance_by_ext`), Messenger watermarks (`advance_by_watermark`, and among a body's other statuses in
one `advance_by_ext`), and an inbound message kept once
whatever how often its provider sends it (`record_inbound`). Run against every backend
(tests/support/backends.py), through the store's public methods and records only.

Times are epoch seconds chosen by the test (`T0` onwards).
"""

import json
from dataclasses import replace
from typing import Any

from tests.support.backends import Backend, backend
from tidings.specs.whatsapp_codes import UNDELIVERABLE, WHATSAPP_FAILURES
from tidings.statuses import DELIVERED, READ, SUBMITTED, Outcome
from tidings.store.base import (
    ExtAdvance,
    InboundMessage,
    MessageRecord,
    NewMessage,
    OutgoingNotification,
    ReceiptTarget,
    Store,
    Update,
    Watermark,
)

__all__ = ["backend"]  # the fixture every test here takes, parametrised over the backends

T0 = 1_000_000.0
SVC, OTHER = "svc-a", "svc-b"
FAILED = WHATSAPP_FAILURES[UNDELIVERABLE]


def message(
    transid: str, channel: str = "whatsapp", address: str = "447700900001", **fields: Any
) -> NewMessage:
    m = NewMessage(
        transid=transid,
        service_id=SVC,
        channel=channel,
        address=address,
        address_type="waid" if channel == "whatsapp" else "psid",
        content=json.dumps({"appid": "app-1"}).encode(),
        parts=1,
        correlationid=None,
        callback_data=None,
        notify_url=None,
        priority=2,
        expiry=None,
        created_at=T0,
    )
    return replace(m, **fields)


class Notices:
    """An ExtNotice that remembers its calls and builds a notification for each."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []  # transid, status, additional info

    def __call__(self, target: ReceiptTarget, o: Outcome, at: float, info: str) -> OutgoingNotification:
        self.calls.append((target.transid, o.status.word, info))
        event_id = f"{target.transid}-{o.status.word}-{len(self.calls)}"
        return OutgoingNotification(event_id, "https://hooks.example/n", event_id.encode())


async def sent(store: Store, ids: dict[str, str], at: float = T0, notice: Notices | None = None) -> None:
    """Claim the queued messages and record them Submitted under their provider ids, as the dispatcher
    does after a send (with `notice`, early statuses kept for those ids are applied)."""
    claimed = {m.transid for m in await store.claim_due(at, 1000, 60)}
    assert set(ids) <= claimed
    await store.record(
        [
            Update(transid=t, service_id=SVC, at=at, next_at=None, attempts=1, outcome=SUBMITTED, ext_id=ext)
            for t, ext in ids.items()
        ],
        notice,
    )


def history(record: MessageRecord | None) -> list[str]:
    assert record is not None
    return [h.status for h in record.history]


def ext(key: str, outcome: Outcome, at: float, service: str = SVC, info: str = "") -> ExtAdvance:
    return ExtAdvance(service, key, outcome, at, info)


def test_statuses_by_provider_id_move_forward_once_each_and_never_back(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("m1"), message("m2"), message("m3"), message("m4")])
        await sent(store, {"m1": "wa:W1", "m2": "wa:W2", "m3": "wa:W3", "m4": "wa:W4"})
        notices = Notices()
        moved = await store.advance_by_ext(
            [
                ext("wa:W1", DELIVERED, T0 + 3),
                ext("wa:W1", READ, T0 + 3),
                ext("wa:W1", DELIVERED, T0 + 4),  # late and repeated
                ext("wa:W1", READ, T0 + 4),
                ext("wa:W2", FAILED, T0 + 5, info="131026 Message undeliverable"),
                ext("wa:W2", DELIVERED, T0 + 6),  # after a failure: nothing
                ext("wa:W3", DELIVERED, T0 + 7),
                ext("wa:W3", FAILED, T0 + 8),  # a late failure after Delivered is ignored
                ext("wa:W4", DELIVERED, T0 + 9, service=OTHER),  # another service's id
                ext("wa:NOPE", DELIVERED, T0 + 9),  # not recorded (yet)
            ],
            notices,
        )
        again = await store.advance_by_ext(
            [ext("wa:W1", READ, T0 + 10), ext("wa:W2", FAILED, T0 + 10)], notices
        )
        records = [await store.get_message(SVC, t) for t in ("m1", "m2", "m3", "m4")]
        return moved, again, notices.calls, records

    moved, again, calls, (m1, m2, m3, m4) = backend.run(scenario)
    assert moved == [True, True, False, False, True, False, True, False, None, None]
    assert again == [False, False]
    assert calls == [
        ("m1", "Delivered", ""),
        ("m1", "Read", ""),
        ("m2", "Failed", "131026 Message undeliverable"),
        ("m3", "Delivered", ""),
    ]
    assert history(m1) == ["Submitted", "Delivered", "Read"]
    assert (m1.status, m1.code) == ("Read", "7502")
    assert history(m2) == ["Submitted", "Failed"]
    assert (m2.status, m2.code, m2.description) == ("Failed", FAILED.code, FAILED.description)
    assert (m3.status, m3.code) == ("Delivered", "7500")
    assert m4 is not None and m4.status == "Submitted"
    # each notification queued once, in the order of the changes
    assert [n.event_id.rsplit("-", 1)[0] for n in m1.notifications] == ["m1-Delivered", "m1-Read"]


def test_a_status_never_touches_a_message_not_yet_sent_or_of_another_channel(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("q1"), message("s1", channel="sms", address="+447700900001")])
        claimed = await store.claim_due(T0, 1000, 60)
        assert {m.transid for m in claimed} == {"q1", "s1"}
        sms = Update(
            transid="s1", service_id=SVC, at=T0, next_at=None, attempts=1, outcome=SUBMITTED, ext_id="wa:S1"
        )
        await store.record([sms])
        moved = await store.advance_by_ext([ext("wa:S1", DELIVERED, T0 + 1)], Notices())
        return moved, await store.get_message(SVC, "s1")

    moved, s1 = backend.run(scenario)
    assert moved == [None]
    assert s1 is not None and s1.status == "Submitted"


def test_watermarks_move_every_earlier_sent_message_to_that_psid(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        fb = [
            message("f1", "fb", "P1", created_at=T0),
            message("f2", "fb", "P1", created_at=T0 + 10),
            message("f3", "fb", "P1", created_at=T0 + 20),
            message("f4", "fb", "P2", created_at=T0),  # another user
            message("w1", "whatsapp", "P1", created_at=T0),  # another channel
        ]
        await store.accept(fb)
        await store.accept([message("f5", "fb", "P1", created_at=T0 + 1)])  # never sent: stays Queued
        claimed = await store.claim_due(T0 + 30, 1000, 60)
        sends = [m.transid for m in claimed if m.transid != "f5"]
        await store.record(
            [Update(t, SVC, T0 + 30, None, 1, outcome=SUBMITTED, ext_id=f"fb:{t}") for t in sends]
        )
        notices = Notices()
        delivered = await store.advance_by_watermark(SVC, "P1", T0 + 15, [DELIVERED], T0 + 40, notices)
        read = await store.advance_by_watermark(SVC, "P1", T0 + 25, [DELIVERED, READ], T0 + 41, notices)
        repeat = await store.advance_by_watermark(SVC, "P1", T0 + 25, [DELIVERED, READ], T0 + 42, notices)
        other = await store.advance_by_watermark(OTHER, "P1", T0 + 25, [DELIVERED], T0 + 43, notices)
        records = {t: await store.get_message(SVC, t) for t in ("f1", "f2", "f3", "f4", "f5", "w1")}
        return delivered, read, repeat, other, notices.calls, records

    delivered, read, repeat, other, calls, r = backend.run(scenario)
    assert delivered == ["f1", "f2"]
    assert read == ["f1", "f2", "f3"]
    assert repeat == [] and other == []
    assert calls == [
        ("f1", "Delivered", ""),
        ("f2", "Delivered", ""),
        ("f1", "Read", ""),
        ("f2", "Read", ""),
        ("f3", "Delivered", ""),
        ("f3", "Read", ""),
    ]
    assert history(r["f3"]) == ["Submitted", "Delivered", "Read"]
    assert [r[t].status for t in ("f4", "f5", "w1")] == ["Submitted", "Queued", "Submitted"]  # type: ignore[union-attr]


def test_watermarks_among_statuses_by_id_apply_in_order_in_one_call(backend: Backend):
    """A Messenger body's changes in Meta's order, in one call: a delivery's mid then its watermark, a
    read over both, a late delivery of a message already Read; another user's, another service's, an id
    not recorded yet. Each sees the ones before it (in one transaction, before any is written)."""

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept(
            [
                message("f1", "fb", "P1", created_at=T0),
                message("f2", "fb", "P1", created_at=T0 + 10),
                message("f3", "fb", "P1", created_at=T0 + 20),
                message("g1", "fb", "P2", created_at=T0),
            ]
        )
        await sent(store, {"f1": "fb:F1", "f2": "fb:F2", "f3": "fb:F3", "g1": "fb:G1"}, T0 + 30)
        notices = Notices()
        moved = await store.advance_by_ext(
            [
                ext("fb:F1", DELIVERED, T0 + 40),
                Watermark(SVC, "P1", T0 + 15, [DELIVERED], T0 + 40),  # f1 is Delivered already: f2
                Watermark(SVC, "P1", T0 + 25, [DELIVERED, READ], T0 + 41),
                ext("fb:F3", DELIVERED, T0 + 42),  # after its Read: nothing
                ext("fb:NOPE", DELIVERED, T0 + 42),  # kept for a send recorded later
                Watermark(OTHER, "P2", T0 + 25, [DELIVERED], T0 + 43),
                Watermark(SVC, "P9", T0 + 25, [DELIVERED, READ], T0 + 43),  # no message to P9
                ext("fb:G1", DELIVERED, T0 + 44),
                Watermark(SVC, "P2", T0 + 25, [DELIVERED, READ], T0 + 45),
            ],
            notices,
        )
        again = await store.advance_by_ext(
            [Watermark(SVC, "P1", T0 + 25, [DELIVERED, READ], T0 + 46)], notices
        )
        records = {t: await store.get_message(SVC, t) for t in ("f1", "f2", "f3", "g1")}
        return moved, again, notices.calls, records

    moved, again, calls, r = backend.run(scenario)
    assert moved == [True, True, True, False, None, False, False, True, True]
    assert again == [False]
    assert calls == [
        ("f1", "Delivered", ""),
        ("f2", "Delivered", ""),
        ("f1", "Read", ""),
        ("f2", "Read", ""),
        ("f3", "Delivered", ""),
        ("f3", "Read", ""),
        ("g1", "Delivered", ""),
        ("g1", "Read", ""),
    ]
    for t in ("f1", "f2", "f3", "g1"):
        record = r[t]
        assert history(record) == ["Submitted", "Delivered", "Read"], t
        assert record is not None and (record.status, record.code) == ("Read", "7502")
        assert [n.event_id.rsplit("-", 1)[0] for n in record.notifications] == [f"{t}-Delivered", f"{t}-Read"]
    f1 = r["f1"]
    assert f1 is not None and [h.at for h in f1.history] == [T0 + 30, T0 + 40, T0 + 41]


def test_an_inbound_message_sent_twice_is_kept_and_forwarded_once(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        inbound = InboundMessage("wa:IN1", SVC, "whatsapp", "447700900001", "123456", "hello", 1, T0)
        note = OutgoingNotification("e1", "https://hooks.example/in", b"{}")
        first = await store.record_inbound(inbound, note, None)
        again = await store.record_inbound(inbound, replace(note, event_id="e2"), None)
        claimed = await store.claim_notifications(T0 + 1, 100, 60)
        return first, again, [n.event_id for n in claimed]

    first, again, claimed = backend.run(scenario)
    assert (first, again) == (True, False)
    assert claimed == ["e1"]


def test_a_status_before_its_send_is_kept_and_applied_when_the_send_is_recorded(backend: Backend):
    """Meta can report a wamid before the send's own record commits: the status is kept and applied, in
    order and forward only, by the transaction that records the send with that id; only within five
    minutes, only for the same service, and only once."""

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message(f"m{n}") for n in range(1, 6)])
        notices = Notices()
        early = await store.advance_by_ext(
            [
                ext("wa:E1", DELIVERED, T0 + 1),
                ext("wa:E1", READ, T0 + 1),
                ext("wa:E1", DELIVERED, T0 + 2),  # after Read: behind, ignored
                ext("wa:E2", DELIVERED, T0 + 1),
                ext("wa:E2", FAILED, T0 + 2, info="131026 Message undeliverable"),  # after Delivered: ignored
                ext("wa:E3", FAILED, T0 + 1, info="131026 Message undeliverable"),
                ext("wa:E4", DELIVERED, T0 + 1, service=OTHER),  # another service's
                ext("wa:E5", DELIVERED, T0 - 400),  # more than five minutes before the send
            ],
            notices,
        )
        assert notices.calls == []
        sends = {"m1": "wa:E1", "m2": "wa:E2", "m3": "wa:E3", "m4": "wa:E4", "m5": "wa:E5"}
        await sent(store, sends, T0 + 3, notices)
        applied = list(notices.calls)
        # taken once: a later send reusing an id, and a repeat of the status, change nothing more
        await store.accept([message("m6")])
        await sent(store, {"m6": "wa:E1"}, T0 + 4, notices)
        again = await store.advance_by_ext([ext("wa:E2", DELIVERED, T0 + 5)], notices)
        records = {t: await store.get_message(SVC, t) for t in ("m1", "m2", "m3", "m4", "m5", "m6")}
        return early, applied, notices.calls, again, records

    early, applied, calls, again, r = backend.run(scenario)
    assert early == [None] * 8
    assert applied == [
        ("m1", "Delivered", ""),
        ("m1", "Read", ""),
        ("m2", "Delivered", ""),
        ("m3", "Failed", "131026 Message undeliverable"),
    ]
    assert calls == applied and again == [False]
    assert history(r["m1"]) == ["Submitted", "Delivered", "Read"]
    assert (r["m1"].status, r["m1"].code) == ("Read", "7502")  # type: ignore[union-attr]
    assert history(r["m2"]) == ["Submitted", "Delivered"]
    assert history(r["m3"]) == ["Submitted", "Failed"]
    assert (r["m3"].status, r["m3"].code) == ("Failed", FAILED.code)  # type: ignore[union-attr]
    assert [r[t].status for t in ("m4", "m5", "m6")] == ["Submitted"] * 3  # type: ignore[union-attr]
    # the statuses come after the send's own Submitted, no earlier than it
    m1 = r["m1"]
    assert m1 is not None and [h.at for h in m1.history] == [T0 + 3] * 3
    assert [n.event_id.rsplit("-", 1)[0] for n in m1.notifications] == ["m1-Delivered", "m1-Read"]


def test_a_send_recorded_without_a_notice_leaves_early_statuses_for_none(backend: Backend):
    """Only the dispatcher's record (which passes its notice) applies early statuses; a record without
    one, and a send under another id, leave them."""

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("n1"), message("n2")])
        await store.advance_by_ext([ext("wa:N1", DELIVERED, T0 + 1)], Notices())
        assert {m.transid for m in await store.claim_due(T0 + 2, 1000, 60)} == {"n1", "n2"}
        notices = Notices()
        await store.record(
            [Update("n2", SVC, T0 + 2, None, 1, outcome=SUBMITTED, ext_id="wa:OTHER")], notices
        )
        await store.record([Update("n1", SVC, T0 + 2, None, 1, outcome=SUBMITTED, ext_id="wa:N1")])
        return notices.calls, await store.get_message(SVC, "n1")

    calls, n1 = backend.run(scenario)
    assert calls == []
    assert history(n1) == ["Submitted"]
