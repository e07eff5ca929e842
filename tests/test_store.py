"""The SQLite store's group commit, through its public interface: callers that share a commit do not
share each other's failures, a caller that stopped waiting writes nothing, and closing never strands one."""

import asyncio
from pathlib import Path

import pytest

from tidings.store.base import NewMessage
from tidings.store.sqlite import SqliteStore, StoreLocked

pytestmark = pytest.mark.sqlite_only  # the SQLite store itself; the contract suite covers both


CONTENT = b'{"type":"1","senderid":"CONNCT","text":"x"}'


def message(transid: str, at: float = 1000.0) -> NewMessage:
    return NewMessage(
        transid,
        "svc",
        "sms",
        "+447700900123",
        "msisdn",
        CONTENT,
        1,
        None,
        None,
        None,
        2,
        None,
        at,
    )


def run(tmp_path: Path, scenario) -> object:
    async def main() -> object:
        store = SqliteStore(str(tmp_path / "t.db"))
        await store.open()
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(main())


def test_a_failing_caller_does_not_fail_those_sharing_its_commit(tmp_path: Path):
    async def scenario(store: SqliteStore) -> list[object]:
        await store.accept([message("dup")])
        # Queued in one loop iteration, so one commit: the duplicate transid fails alone.
        return await asyncio.gather(
            store.accept([message("a")]), store.accept([message("dup")]), store.accept([message("b")]),
            return_exceptions=True,
        )  # fmt: skip

    a, dup, b = run(tmp_path, scenario)  # type: ignore[misc]
    assert a is None and b is None
    assert "UNIQUE" in str(dup)

    async def check(store: SqliteStore) -> list[bool]:
        return [await store.get_message("svc", t) is not None for t in ("a", "b", "dup")]

    assert run(tmp_path, check) == [True, True, True]


def test_a_caller_that_stopped_waiting_writes_nothing(tmp_path: Path):
    async def scenario(store: SqliteStore) -> bool:
        task = asyncio.create_task(store.accept([message("gone")]))
        await asyncio.sleep(0)  # its job is queued; the commit has not run yet
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.accept([message("later")])
        return await store.get_message("svc", "gone") is None

    assert run(tmp_path, scenario) is True


def test_closing_answers_every_queued_caller(tmp_path: Path):
    async def scenario(store: SqliteStore) -> object:
        claim = asyncio.create_task(store.claim_due(2000.0, 10, 60))  # background job: waits 2 ms
        await asyncio.sleep(0)
        await store.close()
        return await asyncio.wait_for(claim, 1)

    assert run(tmp_path, scenario) == []


def test_next_due_and_claims_follow_lanes(tmp_path: Path):
    async def scenario(store: SqliteStore) -> tuple[object, ...]:
        await store.accept([message("m1", at=1000.0), message("m2", at=1001.0)])
        first = await store.next_due()
        claimed = await store.claim_due(1000.5, 10, 60)
        after = await store.next_due()
        return first, [m.transid for m in claimed], after

    first, claimed, after = run(tmp_path, scenario)  # type: ignore[misc]
    assert first == 1000.0
    assert claimed == ["m1"]
    assert after == 1001.0  # m2; m1's lease ends at 1060.5


def test_one_process_per_database_file(tmp_path: Path):
    async def scenario(store: SqliteStore) -> None:
        with pytest.raises(StoreLocked):
            await SqliteStore(store.path).open()

    run(tmp_path, scenario)
