"""The message log on both backends: `Store.list_messages` (every filter, the cursor, newest first, one
service's rows only), sending a notification again (`resend_notification`) and the console's counts
(`message_stats`)."""

import json
from dataclasses import replace
from typing import Any

import pytest

from tests.support.backends import Backend, backend
from tidings.statuses import DELIVERED, Outcome, Status
from tidings.store.base import NewMessage, NotificationResult, OutgoingNotification, Store, Update
from tidings.store.listing import MessageQuery

__all__ = ["backend"]

SVC, OTHER = "svc-a", "svc-b"
T0 = 1_790_000_000.0
FAILED = Outcome(Status.FAILED, "7518", "Failed")


def message(i: int, service: str = SVC, **fields: Any) -> NewMessage:
    m = NewMessage(
        transid=f"t-{service}-{i:03d}",
        service_id=service,
        channel="sms",
        address=f"4479000000{i % 10:02d}",
        address_type="msisdn",
        content=json.dumps({"type": "1", "senderid": "CONNCT", "text": f"hello number {i}"}).encode(),
        parts=1,
        correlationid=f"corr-{i}" if i % 3 == 0 else None,
        callback_data=None,
        notify_url=None,
        priority=2,
        expiry=None,
        created_at=T0 + i,
    )
    return replace(m, **fields)


async def fill(store: Store) -> None:
    await store.accept([message(i) for i in range(30)])
    await store.accept([message(i, channel="push") for i in range(30, 40)])
    await store.accept([message(i, content=b'{"text":"100% sure_thing"}') for i in range(40, 42)])
    await store.accept([message(i, service=OTHER) for i in range(25)])


def ids(rows: list[Any]) -> list[int]:
    return [int(r.transid.rsplit("-", 1)[1]) for r in rows]


def test_filters_order_and_service(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await fill(store)
        everything = await store.list_messages(MessageQuery(SVC, limit=200))
        assert ids(everything) == list(range(41, -1, -1))  # newest first
        assert {r.service_id for r in everything} == {SVC}
        assert ids(await store.list_messages(MessageQuery(SVC, channel="push"))) == list(range(39, 29, -1))
        assert ids(await store.list_messages(MessageQuery(SVC, address="447900000007", limit=200))) == [
            37,
            27,
            17,
            7,
        ]
        assert ids(await store.list_messages(MessageQuery(SVC, correlationid="corr-9"))) == [9]
        assert await store.list_messages(MessageQuery(OTHER, correlationid="corr-30")) == []
        window = MessageQuery(SVC, since=T0 + 5, until=T0 + 8)
        assert ids(await store.list_messages(window)) == [7, 6, 5]
        assert ids(await store.list_messages(MessageQuery(SVC, text="NUMBER 1", limit=200))) == [
            19,
            18,
            17,
            16,
            15,
            14,
            13,
            12,
            11,
            10,
            1,
        ]
        # % and _ are searched for as themselves
        assert ids(await store.list_messages(MessageQuery(SVC, text="100% sure_"))) == [41, 40]
        assert await store.list_messages(MessageQuery(SVC, text="100%% sure")) == []
        assert len(await store.list_messages(MessageQuery(None, limit=200))) == 67  # the admin's view
        assert ids(await store.list_messages(MessageQuery(SVC, transids=["t-svc-a-003", "t-svc-b-004"]))) == [
            3
        ]
        row = (await store.list_messages(MessageQuery(SVC, limit=1)))[0]
        assert (row.channel, row.address, row.status, row.content["text"]) == (
            "sms",
            "447900000001",
            "Queued",
            "100% sure_thing",
        )

    backend.run(scenario)


def test_cursor_pages_and_newer(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await fill(store)
        # Two messages at the same time: the cursor's seq settles the tie, none is lost or repeated.
        await store.accept([message(90, created_at=T0 + 20.5), message(91, created_at=T0 + 20.5)])
        seen: list[int] = []
        query = MessageQuery(SVC, limit=7)
        for _ in range(20):
            page = await store.list_messages(query)
            seen += ids(page)
            if len(page) < 7:
                break
            query = replace(query, before=page[-1].cursor)
        assert sorted(seen) == sorted([*range(42), 90, 91])
        assert len(seen) == len(set(seen))
        top = (await store.list_messages(MessageQuery(SVC, limit=1)))[0]
        assert await store.list_messages(MessageQuery(SVC, after=top.cursor)) == []
        await store.accept([message(95, created_at=T0 + 100)])
        assert ids(await store.list_messages(MessageQuery(SVC, after=top.cursor))) == [95]
        # A filter with the cursor: pages of push only
        first = await store.list_messages(MessageQuery(SVC, channel="push", limit=4))
        second = await store.list_messages(
            MessageQuery(SVC, channel="push", limit=4, before=first[-1].cursor)
        )
        assert ids(first) + ids(second) == list(range(39, 31, -1))

    backend.run(scenario)


def test_status_filter_resend_and_stats(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        url = "http://127.0.0.1:9/hook"
        await store.accept([message(i, notify_url=url, created_at=T0 + i) for i in range(3)])
        at = T0 + 10
        note = OutgoingNotification("ev-1", url, b'{"n":1}')
        await store.record(
            [
                Update("t-svc-a-000", SVC, at, None, 1, outcome=DELIVERED, notification=note),
                Update("t-svc-a-001", SVC, at, None, 1, outcome=FAILED),
            ]
        )
        assert ids(await store.list_messages(MessageQuery(SVC, status="Delivered"))) == [0]
        assert ids(await store.list_messages(MessageQuery(SVC, status="Failed"))) == [1]
        assert ids(await store.list_messages(MessageQuery(SVC, status="Queued"))) == [2]

        [pending] = await store.notifications_of(SVC, "t-svc-a-000")
        assert (pending.event_id, pending.state, pending.next_at is not None) == ("ev-1", "pending", True)
        assert not await store.resend_notification(SVC, "ev-1", at)  # still on its way
        claimed = await store.claim_notifications(at + 1, 10, 30)
        assert [c.event_id for c in claimed] == ["ev-1"]
        await store.finish_notifications([NotificationResult(claimed[0].seq, "sent", at + 2, at + 2, 200)])
        [sent] = await store.notifications_of(SVC, "t-svc-a-000")
        assert (sent.state, sent.attempts, sent.http_status, sent.next_at) == ("sent", 1, 200, None)
        assert await store.notifications_of(OTHER, "t-svc-a-000") == []

        assert not await store.resend_notification(OTHER, "ev-1", at + 3)  # not that service's
        assert await store.resend_notification(SVC, "ev-1", at + 3)
        assert not await store.resend_notification(SVC, "ev-1", at + 3)  # already due again
        [again] = await store.claim_notifications(at + 4, 10, 30)
        assert (again.event_id, again.attempts, again.body) == ("ev-1", 0, b'{"n":1}')

        stats = await store.message_stats(SVC, T0 - 60)
        by_channel = {}
        for m in stats.minutes:
            row = by_channel.setdefault(m.channel, [0, 0, 0])
            row[0] += m.accepted
            row[1] += m.delivered
            row[2] += m.failed
        assert by_channel == {"sms": [3, 1, 1]}
        assert stats.queue_depth == 1  # the Queued one still needs work
        assert stats.backlog == {"http://127.0.0.1:9": 1}  # ev-1, in flight again
        assert (await store.message_stats(OTHER, T0 - 60)).minutes == []

    backend.run(scenario)


@pytest.mark.parametrize("limit", [1, 200, 500])
def test_limit_is_capped(backend: Backend, limit: int) -> None:
    async def scenario(store: Store) -> None:
        await store.accept([message(i, created_at=T0 + i / 1000) for i in range(210)])
        assert len(await store.list_messages(MessageQuery(SVC, limit=limit))) == min(limit, 200)

    backend.run(scenario)
