"""The Store contract for what comes back from email: a message found by its transid alone
(`message_target`) and reports on it (`report`: a bounce report's Bounce or Delivered, an unsubscribe),
which move a message forward or from Submitted to Bounce and remember its address as gone. Run against
every backend (tests/support/backends.py), through the store's public methods and records only."""

import json
from typing import Any

from tests.support.backends import Backend, backend
from tidings.statuses import DELIVERED, SUBMITTED, Outcome, Status
from tidings.store.base import (
    MessageRecord,
    NewMessage,
    OutgoingNotification,
    ReceiptTarget,
    Report,
    Store,
    Update,
)

__all__ = ["backend"]

T0 = 1_000_000.0
SVC = "svc-a"
BOUNCE = Outcome(Status.BOUNCE, "7520", "Permanent_NoEmail")
GONE = BOUNCE
UNSUBSCRIBED = Outcome(Status.FAILED, "7241", "Unsubscribed")


def email(transid: str, address: str) -> NewMessage:
    return NewMessage(
        transid=transid,
        service_id=SVC,
        channel="email",
        address=address,
        address_type="email",
        content=json.dumps({"subject": "hi"}).encode(),
        parts=1,
        correlationid=None,
        callback_data=None,
        notify_url=None,
        priority=2,
        expiry=None,
        created_at=T0,
    )


class Notices:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, target: ReceiptTarget, o: Outcome, at: float, info: str) -> OutgoingNotification:
        self.calls.append((target.transid, o.status.word, info))
        event_id = f"{target.transid}-{len(self.calls)}"
        return OutgoingNotification(event_id, "https://hooks.example/n", event_id.encode())


async def submit(store: Store, transids: list[str]) -> None:
    claimed = {m.transid for m in await store.claim_due(T0, 1000, 60)}
    assert set(transids) <= claimed
    await store.record(
        [
            Update(transid=t, service_id=SVC, at=T0, next_at=None, attempts=1, outcome=SUBMITTED)
            for t in transids
        ]
    )


def history(record: MessageRecord | None) -> list[str]:
    assert record is not None
    return [h.status for h in record.history]


def test_reports_bounce_or_deliver_once_and_remember_the_address(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        addresses = {"e1": "a@example.org", "e2": "b@example.org", "e3": "c@example.org"}
        await store.accept([email(t, a) for t, a in addresses.items()] + [email("q1", "q@example.org")])
        await submit(store, ["e1", "e2", "e3"])
        notices = Notices()
        found = await store.message_target("e1"), await store.message_target("nope")
        moved = await store.report(
            [
                Report("e1", T0 + 1, BOUNCE, gone=GONE, additional_info="5.1.1 smtp; 550 no such user"),
                Report("e1", T0 + 2, BOUNCE, gone=GONE),  # a repeat: final already
                Report("e2", T0 + 3, DELIVERED),
                Report("e2", T0 + 4, BOUNCE, gone=GONE),  # after Delivered: stays, address remembered
                Report("e3", T0 + 5, None, gone=UNSUBSCRIBED),  # an unsubscribe: status stays
                Report("q1", T0 + 6, BOUNCE),  # not yet recorded as sent
                Report("nope", T0 + 7, BOUNCE, gone=GONE),
            ],
            notices,
        )
        gone = await store.gone_addresses(SVC, "email", [*addresses.values(), "q@example.org"])
        records = [await store.get_message(SVC, t) for t in ("e1", "e2", "e3", "q1")]
        return found, moved, notices.calls, gone, records

    (target, unknown), moved, calls, gone, (e1, e2, e3, q1) = backend.run(scenario)
    assert target is not None and unknown is None
    assert (target[0].transid, target[0].service_id, target[0].address, target[1]) == (
        "e1", SVC, "a@example.org", Status.SUBMITTED,
    )  # fmt: skip
    assert moved == [True, False, True, False, False, False, None]
    assert calls == [("e1", "Bounce", "5.1.1 smtp; 550 no such user"), ("e2", "Delivered", "")]
    assert e1 is not None and (e1.status, e1.code, e1.description) == ("Bounce", "7520", "Permanent_NoEmail")
    assert history(e1) == ["Submitted", "Bounce"]
    assert e2 is not None and e2.status == "Delivered"
    assert e3 is not None and e3.status == "Submitted"
    assert q1 is not None and q1.status == "Queued"
    assert {a: (g.code, g.description, g.at) for a, g in gone.items()} == {
        "a@example.org": ("7520", "Permanent_NoEmail", T0 + 2),
        "b@example.org": ("7520", "Permanent_NoEmail", T0 + 4),
        "c@example.org": ("7241", "Unsubscribed", T0 + 5),
    }
