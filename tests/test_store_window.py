"""The Store contract for the WhatsApp customer-service window: `last_inbound` gives, in one call, the
newest kept inbound time from each of several senders to one service on one channel. Run against every
backend (tests/support/backends.py) through the store's public methods only.

Times are epoch seconds chosen by the test (`T0` onwards).
"""

from tests.support.backends import Backend, backend
from tidings.store.base import InboundMessage, Store

__all__ = ["backend"]  # the fixture every test here takes, parametrised over the backends

T0 = 1_000_000.0
SVC, OTHER = "svc-a", "svc-b"


def inbound(tid: str, source: str, at: float, service_id: str | None = SVC, channel: str = "whatsapp"):
    return InboundMessage(tid, service_id, channel, source, "106540352242922", "hi", 1, at)


def test_the_newest_inbound_time_per_sender_of_the_service_on_the_channel(backend: Backend):
    async def scenario(store: Store):
        for m in (
            inbound("wa:1", "+15550001", T0),
            inbound("wa:2", "+15550001", T0 + 50),  # the newest from this sender
            inbound("wa:3", "+15550001", T0 + 20),  # kept later, but older: not the answer
            inbound("wa:4", "+15550002", T0 + 7),
            inbound("wa:5", "+15550003", T0 + 90, service_id=OTHER),  # another service's
            inbound("wa:6", "+15550003", T0 + 95, service_id=None),  # a number no service owns
            inbound("sms:7", "+15550003", T0 + 99, channel="sms"),  # another channel's
            inbound("sms:8", "+15550002", T0 + 99, channel="sms"),
        ):
            assert await store.record_inbound(m, None, None)
        wanted = ["+15550001", "+15550002", "+15550003", "+15550004"]
        return (
            await store.last_inbound(SVC, "whatsapp", wanted),
            await store.last_inbound(OTHER, "whatsapp", wanted),
            await store.last_inbound(SVC, "sms", ["+15550003"]),
            await store.last_inbound(SVC, "whatsapp", []),
        )

    mine, other, sms, none = backend.run(scenario)
    assert mine == {"+15550001": T0 + 50, "+15550002": T0 + 7}
    assert other == {"+15550003": T0 + 90}
    assert sms == {"+15550003": T0 + 99}
    assert none == {}


def test_a_batch_of_a_thousand_senders_is_one_answer(backend: Backend):
    senders = [f"+1555{n:07d}" for n in range(1000)]

    async def scenario(store: Store):
        for n, s in enumerate(senders[::2]):
            await store.record_inbound(inbound(f"wa:{n}", s, T0 + n), None, None)
        return await store.last_inbound(SVC, "whatsapp", senders)

    got = backend.run(scenario)
    assert got == {s: T0 + n for n, s in enumerate(senders[::2])}
