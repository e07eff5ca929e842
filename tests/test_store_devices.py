"""The Store contract for push: registered devices, addresses remembered as gone, and statuses that move
forward on an app's or provider's word (`advance`). Run against every backend (tests/support/backends.py),
through the store's public methods and records only.

Times are epoch seconds chosen by the test (`T0` onwards).
"""

import json
import re
from dataclasses import replace
from typing import Any

import pytest

from tests.support.backends import Backend, backend
from tidings.specs.push_codes import INVALID_TOKEN, PUSH_FAILURES, TOKEN_UNREGISTERED
from tidings.statuses import DELIVERED, READ, SUBMITTED, Outcome, Status
from tidings.store.base import (
    Advance,
    Device,
    GoneAddress,
    MessageRecord,
    NewMessage,
    OutgoingNotification,
    ReceiptTarget,
    Store,
    Update,
)

__all__ = ["backend"]  # the fixture every test here takes, parametrised over the backends

T0 = 1_000_000.0
SVC, OTHER = "svc-a", "svc-b"
APP, OTHER_APP = "app-1", "app-2"
UNREGISTERED = PUSH_FAILURES[TOKEN_UNREGISTERED]
INVALID = PUSH_FAILURES[INVALID_TOKEN]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def device(token: str, user: str = "u1", app: str = APP, at: float = T0, **fields: Any) -> Device:
    d = Device(
        device_id="",
        app_id=app,
        service_id=SVC,
        user_id=user,
        customer_id=f"c-{user}",
        platform="android",
        provider="fcm",
        token=token,
        created_at=at,
        updated_at=at,
    )
    return replace(d, **fields)


def message(transid: str, address: str = "tok-1", service: str = SVC, **fields: Any) -> NewMessage:
    m = NewMessage(
        transid=transid,
        service_id=service,
        channel="push",
        address=address,
        address_type="fcm_pushid",
        content=json.dumps({"title": "hi"}).encode(),
        parts=1,
        correlationid=None,
        callback_data=None,
        notify_url=None,
        priority=2,
        expiry=None,
        created_at=T0,
    )
    return replace(m, **fields)


def change(transid: str, outcome: Outcome, at: float, service: str = SVC, **fields: Any) -> Update:
    """An update as the dispatcher makes one (final unless `next_at` says when to come back)."""
    fields.setdefault("next_at", None)
    return Update(transid=transid, service_id=service, at=at, attempts=1, outcome=outcome, **fields)


class Notices:
    """A ReceiptNotice that remembers its calls and builds a notification for each."""

    def __init__(self, give: bool = True) -> None:
        self.calls: list[tuple[ReceiptTarget, Outcome, float]] = []
        self.give = give

    def __call__(self, target: ReceiptTarget, outcome: Outcome, at: float) -> OutgoingNotification | None:
        self.calls.append((target, outcome, at))
        if not self.give:
            return None
        event_id = f"{target.transid}-{outcome.status.word}"
        return OutgoingNotification(event_id, "https://hooks.example/n", event_id.encode())


async def sent(store: Store, *transids: str, at: float = T0, **fields: Any) -> None:
    """Claim queued messages and record them Submitted, as the dispatcher does after a send."""
    claimed = await store.claim_due(at, 1000, 60)
    assert set(transids) <= {m.transid for m in claimed}
    await store.record([change(t, SUBMITTED, at, **fields) for t in transids])


def history(record: MessageRecord | None) -> list[tuple[str, str, float]]:
    assert record is not None
    return [(h.status, h.code, h.at) for h in record.history]


def fields(d: Device) -> tuple[str, ...]:
    return (d.app_id, d.user_id, d.customer_id, d.platform, d.provider, d.token)


# -- devices -------------------------------------------------------------------------------------------


def test_a_new_device_gets_an_id_and_a_second_registration_of_its_token_updates_it(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        first = await store.save_device(device("tok-1", platform="android"))
        again = await store.save_device(
            device("tok-1", user="u2", at=T0 + 50, platform="ios", p256dh="k", auth="a")
        )
        other_provider = await store.save_device(device("tok-1", provider="apns", at=T0 + 60))
        other_app = await store.save_device(device("tok-1", app=OTHER_APP, at=T0 + 70))
        return first, again, other_provider, other_app, await store.list_devices(APP)

    first, again, other_provider, other_app, listed = backend.run(scenario)
    assert UUID.match(first.device_id), first.device_id
    assert first == device("tok-1", device_id=first.device_id)
    assert again == Device(
        device_id=first.device_id,
        app_id=APP,
        service_id=SVC,
        user_id="u2",
        customer_id="c-u2",
        platform="ios",
        provider="fcm",
        token="tok-1",
        p256dh="k",
        auth="a",
        created_at=T0,
        updated_at=T0 + 50,
    )
    ids = {first.device_id, other_provider.device_id, other_app.device_id}
    assert len(ids) == 3, "the same token with another provider, or in another app, is another device"
    assert listed == [again, other_provider]


def test_a_device_saved_without_times_is_stamped_now(backend: Backend):
    async def scenario(store: Store) -> Device:
        return await store.save_device(device("tok-1", created_at=0.0, updated_at=0.0))

    saved = backend.run(scenario)
    assert saved.created_at == saved.updated_at > T0


def test_devices_list_oldest_first_per_app_and_per_user(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        late = await store.save_device(device("tok-3", user="u1", at=T0 + 30))
        early = await store.save_device(device("tok-1", user="u1", at=T0 + 10))
        other_user = await store.save_device(device("tok-2", user="u2", at=T0 + 20))
        await store.save_device(device("tok-9", user="u1", app=OTHER_APP, at=T0))
        every = await store.list_devices(APP)
        mine = await store.list_devices(APP, "u1")
        return [early, other_user, late], [early, late], every, mine, await store.list_devices("nope")

    want_every, want_mine, every, mine, none = backend.run(scenario)
    assert every == want_every
    assert mine == want_mine
    assert none == []


def test_find_devices_by_each_key_within_the_app(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        a = await store.save_device(device("tok-a", user="u1", at=T0 + 1))
        b = await store.save_device(device("tok-b", user="u1", customer_id="c-shared", at=T0 + 2))
        c = await store.save_device(device("tok-c", user="u2", customer_id="c-shared", at=T0 + 3))
        await store.save_device(device("tok-a", user="u1", app=OTHER_APP, at=T0))
        found = {
            "user": await store.find_devices(APP, "user_id", "u1"),
            "customer": await store.find_devices(APP, "customer_id", "c-shared"),
            "id": await store.find_devices(APP, "device_id", c.device_id),
            "id elsewhere": await store.find_devices(OTHER_APP, "device_id", c.device_id),
            "token": await store.find_devices(APP, "token", "tok-a"),
            "nobody": await store.find_devices(APP, "user_id", "u9"),
        }
        return (a, b, c), found

    (a, b, c), found = backend.run(scenario)
    assert found == {
        "user": [a, b],
        "customer": [b, c],
        "id": [c],
        "id elsewhere": [],
        "token": [a],
        "nobody": [],
    }


@pytest.mark.parametrize("key", ["platform", "app_id", "user_id = user_id OR 1", "User_Id", ""])
def test_find_devices_refuses_any_other_key(backend: Backend, key: str):
    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.save_device(device("tok-1"))
        with pytest.raises(ValueError, match="user_id"):
            await store.find_devices(APP, key, "u1")
        return tuple(await store.list_devices(APP))

    assert len(backend.run(scenario)) == 1, "the store still works and holds the device"


def test_devices_for_groups_each_values_devices_oldest_first_within_the_app(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        late = await store.save_device(device("tok-late", user="u1", at=T0 + 9))
        a = await store.save_device(device("tok-a", user="u1", at=T0 + 1))
        b = await store.save_device(device("tok-b", user="u2", customer_id="c-shared", at=T0 + 2))
        c = await store.save_device(device("tok-c", user="u3", customer_id="c-shared", at=T0 + 3))
        await store.save_device(device("tok-x", user="u1", app=OTHER_APP, at=T0))
        found = {
            "user": await store.devices_for(APP, "user_id", ["u1", "u2", "u9", "u1"]),
            "customer": await store.devices_for(APP, "customer_id", ["c-shared", "c-u1"]),
            "id": await store.devices_for(APP, "device_id", [c.device_id, a.device_id, "unknown"]),
            "id elsewhere": await store.devices_for(OTHER_APP, "device_id", [c.device_id]),
            "token": await store.devices_for(APP, "token", ["tok-a", "tok-x"]),
            "none asked": await store.devices_for(APP, "user_id", []),
        }
        return (a, b, c, late), found

    (a, b, c, late), found = backend.run(scenario)
    assert found == {
        "user": {"u1": [a, late], "u2": [b]},
        "customer": {"c-shared": [b, c], "c-u1": [a, late]},
        "id": {a.device_id: [a], c.device_id: [c]},
        "id elsewhere": {},
        "token": {"tok-a": [a]},
        "none asked": {},
    }


def test_devices_for_answers_as_find_devices_does_for_a_whole_batch(backend: Backend):
    # More values than SQLite's default limit of bound parameters, some shaped like SQL or LIKE patterns.
    users = [f"user-{n:04}" for n in range(1200)] + ["u' OR '1'='1", "user-%", "user-_001"]

    async def scenario(store: Store) -> tuple[Any, ...]:
        for n, user in enumerate(users[:1200:3]):
            await store.save_device(device(f"tok-{n}-a", user=user, at=T0 + n))
            await store.save_device(device(f"tok-{n}-b", user=user, at=T0 + n - 0.5))
        await store.save_device(device("tok-quote", user="u' OR '1'='1", at=T0))
        one_by_one = {u: await store.find_devices(APP, "user_id", u) for u in users}
        return await store.devices_for(APP, "user_id", users), one_by_one

    batch, one_by_one = backend.run(scenario)
    assert batch == {u: found for u, found in one_by_one.items() if found}
    assert len(batch) == 401
    assert [d.token for d in batch["user-0003"]] == ["tok-1-b", "tok-1-a"], "oldest first"


@pytest.mark.parametrize("values", [["u1"], []])
@pytest.mark.parametrize("key", ["platform", "app_id", "user_id = user_id OR 1", "User_Id", ""])
def test_devices_for_refuses_any_other_key(backend: Backend, key: str, values: list[str]):
    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.save_device(device("tok-1"))
        with pytest.raises(ValueError, match="user_id"):
            await store.devices_for(APP, key, values)
        return tuple(await store.list_devices(APP))

    assert len(backend.run(scenario)) == 1, "the store still works and holds the device"


def test_delete_devices_removes_the_apps_devices_and_counts_them(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        a = await store.save_device(device("tok-a", at=T0 + 1))
        b = await store.save_device(device("tok-b", at=T0 + 2))
        c = await store.save_device(device("tok-c", at=T0 + 3))
        elsewhere = await store.save_device(device("tok-x", app=OTHER_APP))
        counts = [
            await store.delete_devices(APP, [a.device_id, c.device_id, "unknown"]),
            await store.delete_devices(APP, [a.device_id]),
            await store.delete_devices(APP, [elsewhere.device_id]),
            await store.delete_devices(APP, []),
        ]
        return b, elsewhere, counts, await store.list_devices(APP), await store.list_devices(OTHER_APP)

    b, elsewhere, counts, left, other = backend.run(scenario)
    assert counts == [2, 0, 0, 0]
    assert left == [b]
    assert other == [elsewhere]


# -- gone addresses ------------------------------------------------------------------------------------


def test_a_failure_marked_gone_remembers_its_address_with_the_outcome(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept(
            [
                message("t-1", "tok-1"),
                message("t-2", "tok-2"),
                message("t-3", "tok-3"),
                message("t-4", "tok-1", service=OTHER),
            ]
        )
        await store.claim_due(T0, 10, 60)
        await store.record(
            [
                change("t-1", UNREGISTERED, T0 + 1, gone=True),
                change("t-2", INVALID, T0 + 2),  # a failure, but not one that says the address is gone
                change("t-3", SUBMITTED, T0 + 3),
                change("t-4", INVALID, T0 + 4, service=OTHER, gone=True),
            ]
        )
        asked = ["tok-1", "tok-2", "tok-3", "tok-9"]
        mine = await store.gone_addresses(SVC, "push", asked)
        other_channel = await store.gone_addresses(SVC, "sms", asked)
        t1 = await store.get_message(SVC, "t-1")
        return mine, other_channel, t1, await store.list_gone(), await store.list_gone(SVC)

    mine, other_channel, t1, every, own = backend.run(scenario)
    gone1 = GoneAddress(SVC, "push", "tok-1", "7513", "Unregistered device", T0 + 1)
    gone4 = GoneAddress(OTHER, "push", "tok-1", "7512", "Invalid push id", T0 + 4)
    assert mine == {"tok-1": gone1}
    assert other_channel == {}
    assert t1 is not None and (t1.status, t1.code) == ("Failed", "7513"), "the status change is recorded too"
    assert history(t1) == [("Failed", "7513", T0 + 1)]
    assert every == [gone4, gone1], "newest first"
    assert own == [gone1]


def test_an_address_gone_again_is_remembered_with_the_latest_failure_until_forgotten(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-1", "tok-1")])
        await store.claim_due(T0, 10, 60)
        await store.record([change("t-1", INVALID, T0 + 1, gone=True)])
        await store.accept([message("t-2", "tok-1")])
        await store.claim_due(T0 + 10, 10, 60)
        await store.record([change("t-2", UNREGISTERED, T0 + 11, gone=True)])
        latest = await store.list_gone()
        forgotten = await store.forget_gone(SVC, "push", "tok-1")
        again = await store.forget_gone(SVC, "push", "tok-1")
        never = await store.forget_gone(OTHER, "push", "tok-1")
        return latest, forgotten, again, never, await store.gone_addresses(SVC, "push", ["tok-1"])

    latest, forgotten, again, never, after = backend.run(scenario)
    assert latest == [GoneAddress(SVC, "push", "tok-1", "7513", "Unregistered device", T0 + 11)]
    assert (forgotten, again, never) == (True, False, False)
    assert after == {}


def test_gone_addresses_answers_for_a_whole_batch_at_once(backend: Backend):
    addresses = [f"tok-{n:03}" for n in range(500)]
    gone = addresses[::7]

    async def scenario(store: Store) -> dict[str, GoneAddress]:
        await store.accept([message(f"t-{a}", a) for a in gone])
        await store.claim_due(T0, 1000, 60)
        await store.record([change(f"t-{a}", UNREGISTERED, T0 + 1, gone=True) for a in gone])
        assert await store.gone_addresses(SVC, "push", []) == {}
        return await store.gone_addresses(SVC, "push", addresses)

    found = backend.run(scenario)
    assert sorted(found) == gone
    assert {(g.address, g.code, g.at) for g in found.values()} == {(a, "7513", T0 + 1) for a in gone}


# -- advance -------------------------------------------------------------------------------------------


def test_advance_moves_a_sent_message_forward_with_history_and_notifications(backend: Backend):
    notices = Notices()
    m = message("t-1", correlationid="corr", callback_data="cb", notify_url="https://hooks.example/t1")

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([m])
        await sent(store, "t-1")
        delivered = await store.advance([Advance(SVC, "t-1", DELIVERED, T0 + 5)], notices)
        read = await store.advance([Advance(SVC, "t-1", READ, T0 + 9)], notices)
        return delivered, read, await store.get_message(SVC, "t-1"), await store.next_due()

    delivered, read, record, due = backend.run(scenario)
    assert (delivered, read) == ([True], [True])
    assert record is not None
    assert (record.status, record.code, record.description, record.updated_at) == (
        "Read",
        "7502",
        "Read",
        T0 + 9,
    )
    assert history(record) == [
        ("Submitted", "7501", T0),
        ("Delivered", "7500", T0 + 5),
        ("Read", "7502", T0 + 9),
    ]
    assert [(n.event_id, n.state) for n in record.notifications] == [
        ("t-1-Delivered", "pending"),
        ("t-1-Read", "waiting"),  # after the Delivered one, in order
    ]
    target = ReceiptTarget(
        "t-1", SVC, "push", "tok-1", "fcm_pushid", 1, "corr", "cb", "https://hooks.example/t1"
    )
    assert notices.calls == [(target, DELIVERED, T0 + 5), (target, READ, T0 + 9)]
    assert due is None


def test_advance_never_goes_back_repeats_nothing_and_takes_changes_in_order(backend: Backend):
    notices = Notices()

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-1"), message("t-2")])
        await sent(store, "t-1", "t-2")
        changes = [
            Advance(SVC, "t-1", READ, T0 + 5),
            Advance(SVC, "t-1", DELIVERED, T0 + 6),  # behind the Read just applied
            Advance(SVC, "t-2", DELIVERED, T0 + 7),
            Advance(SVC, "t-2", DELIVERED, T0 + 8),  # a repeat
        ]
        first = await store.advance(changes, notices)
        later = await store.advance([Advance(SVC, "t-1", READ, T0 + 20)], notices)
        return first, later, await store.get_message(SVC, "t-1"), await store.get_message(SVC, "t-2")

    first, later, t1, t2 = backend.run(scenario)
    assert first == [True, False, True, False]
    assert later == [False]
    assert history(t1) == [("Submitted", "7501", T0), ("Read", "7502", T0 + 5)]
    assert history(t2) == [("Submitted", "7501", T0), ("Delivered", "7500", T0 + 7)]
    assert [(c[0].transid, c[1]) for c in notices.calls] == [("t-1", READ), ("t-2", DELIVERED)]


def test_a_due_pending_outcome_claimed_before_an_advance_is_dropped_whole(backend: Backend):
    """The dispatcher claims a message to apply its pending Delivered; a Read recorded meanwhile has
    moved it on. Its record must then change nothing: no Delivered over the Read, no event, no
    notification. The one whose pending outcome still stands is applied."""
    notices = Notices()

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-1"), message("t-2")])
        await sent(store, "t-1", "t-2", next_at=T0 + 1, pending=DELIVERED)
        due = await store.claim_due(T0 + 2, 10, 60)
        moved = await store.advance([Advance(SVC, "t-1", READ, T0 + 3)], notices)
        await store.record(
            [
                change(m.transid, DELIVERED, T0 + 4, applies_pending=True, notification=note(m.transid))
                for m in due
            ]
        )
        t1, t2 = await store.get_message(SVC, "t-1"), await store.get_message(SVC, "t-2")
        return sorted(m.transid for m in due), moved, t1, t2, await store.next_due()

    due, moved, t1, t2, next_due = backend.run(scenario)
    assert (due, moved) == (["t-1", "t-2"], [True])
    assert history(t1) == [("Submitted", "7501", T0), ("Read", "7502", T0 + 3)]
    assert [n.event_id for n in t1.notifications] == ["t-1-Read"]
    assert history(t2) == [("Submitted", "7501", T0), ("Delivered", "7500", T0 + 4)]
    assert [n.event_id for n in t2.notifications] == ["t-2-Delivered"]
    assert next_due is None


def note(transid: str) -> OutgoingNotification:
    return OutgoingNotification(f"{transid}-Delivered", "https://hooks.example/n", b"{}")


def test_advance_leaves_unsent_failed_unknown_and_other_services_messages_alone(backend: Backend):
    notices = Notices()

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("sent"), message("failed"), message("theirs", service=OTHER)])
        await store.claim_due(T0, 10, 60)
        await store.record(
            [
                change("sent", SUBMITTED, T0),
                change("failed", UNREGISTERED, T0 + 1),
                change("theirs", SUBMITTED, T0, service=OTHER),
            ]
        )
        await store.accept([message("queued")])
        before = [
            await store.get_message(s, t) for s, t in [(SVC, "failed"), (SVC, "queued"), (OTHER, "theirs")]
        ]
        moved = await store.advance(
            [
                Advance(SVC, "queued", DELIVERED, T0 + 5),
                Advance(SVC, "failed", DELIVERED, T0 + 5),
                Advance(SVC, "failed", READ, T0 + 5),
                Advance(SVC, "theirs", DELIVERED, T0 + 5),  # the message belongs to another service
                Advance(SVC, "nope", DELIVERED, T0 + 5),
                Advance(SVC, "sent", SUBMITTED, T0 + 5),  # not forward
                Advance(SVC, "sent", UNREGISTERED, T0 + 5),  # a failure is no step forward
            ],
            notices,
        )
        after = [
            await store.get_message(s, t) for s, t in [(SVC, "failed"), (SVC, "queued"), (OTHER, "theirs")]
        ]
        return moved, before, after, await store.get_message(SVC, "sent")

    moved, before, after, still_sent = backend.run(scenario)
    assert moved == [False] * 7
    assert after == before
    assert still_sent is not None and history(still_sent) == [("Submitted", "7501", T0)]
    assert notices.calls == []


def test_advance_ends_a_scheduled_receipt_so_it_is_never_applied_later(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-1"), message("t-2")])
        # A receipt is scheduled for each (a connector's due outcome): it must not undo what the app said.
        await sent(store, "t-1", "t-2", pending=DELIVERED, next_at=T0 + 30)
        moved = await store.advance(
            [Advance(SVC, "t-1", DELIVERED, T0 + 5), Advance(SVC, "t-2", READ, T0 + 6)], Notices(give=False)
        )
        claimed = await store.claim_due(T0 + 1000, 10, 60)
        return (
            moved,
            claimed,
            await store.next_due(),
            [await store.get_message(SVC, t) for t in ("t-1", "t-2")],
        )

    moved, claimed, due, (t1, t2) = backend.run(scenario)
    assert moved == [True, True]
    assert claimed == [] and due is None
    assert t1 is not None and t2 is not None
    assert (t1.status, t1.notifications) == ("Delivered", [])
    assert (t2.status, t2.notifications) == ("Read", [])


def test_advance_takes_a_message_delivered_by_its_receipt_on_to_read(backend: Backend):
    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.accept([message("t-1")])
        await sent(store, "t-1", pending=DELIVERED, next_at=T0 + 1)
        for m in await store.claim_due(T0 + 1, 10, 60):  # the dispatcher applies the due receipt
            assert m.pending is not None
            await store.record([change(m.transid, m.pending, T0 + 1)])
        moved = await store.advance([Advance(SVC, "t-1", READ, T0 + 9)], Notices())
        return moved, await store.get_message(SVC, "t-1")

    moved, record = backend.run(scenario)
    assert moved == [True]
    assert history(record) == [
        ("Submitted", "7501", T0),
        ("Delivered", "7500", T0 + 1),
        ("Read", "7502", T0 + 9),
    ]
    assert record is not None and record.status == Status.READ.word
