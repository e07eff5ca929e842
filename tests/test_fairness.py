"""Dispatch is fair between services: a service with 100,000 queued messages does not hold up another
service's single message, and priority still orders each service's own messages. Through the Store
interface on a real SQLite file, the way the dispatcher claims."""

import asyncio
from pathlib import Path

import pytest

from tidings.store.base import NewMessage
from tidings.store.sqlite import SqliteStore

pytestmark = pytest.mark.sqlite_only  # the SQLite store itself; the contract suite covers both

BACKLOG = 100_000


def message(transid: str, service: str, at: float, priority: int = 2) -> NewMessage:
    return NewMessage(
        transid,
        service,
        "sms",
        "+447700900123",
        "msisdn",
        b'{"type":"1","senderid":"CONNCT","text":"x"}',
        1,
        None,
        None,
        None,
        priority,
        None,
        at,
    )


def test_one_message_is_not_stuck_behind_another_services_backlog(tmp_path: Path):
    async def scenario() -> tuple[list[str], list[str], list[str]]:
        store = SqliteStore(str(tmp_path / "t.db"))
        await store.open()
        try:
            for start in range(0, BACKLOG, 10_000):
                await store.accept(
                    [message(f"a-{i}", "svc-big", 1000.0 + i / 1e6) for i in range(start, start + 10_000)]
                )
            await store.accept([message("b-1", "svc-small", 2000.0)])  # queued after the whole backlog
            await store.accept([message("c-urgent", "svc-small", 2001.0, priority=1)])
            first = await store.claim_due(3000.0, 500, 60.0)
            second = await store.claim_due(3000.0, 500, 60.0)
            return [m.transid for m in first], [m.service_id for m in first], [m.transid for m in second]
        finally:
            await store.close()

    first, services, second = asyncio.run(scenario())
    assert "b-1" in first and "c-urgent" in first, "the small service waits for the first claim only"
    assert first[0] == "c-urgent", "priority 1 comes first"
    assert len(first) == 500 and services.count("svc-big") == 498, "the big service takes what is left"
    assert first[1:4] == ["a-0", "a-1", "a-2"], "each service's messages go oldest first"
    assert len(second) == 500 and second[0] == "a-498", "and the next claim carries on where it stopped"
