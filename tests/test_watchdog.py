"""The watchdog (tidings/watchdog.py) on its own: what it says when a wait outlasts its limit, when work
is due and nothing moves, when the event loop stops turning, and the deadline that ends a process whose
stop cannot finish. The same machinery in a real worker: tests/test_worker_stall.py."""

import asyncio
import logging
import subprocess
import sys
import time

import pytest

from tidings.watchdog import FORCED_EXIT_CODE, Activity, LoopMonitor, Watchdog


async def waits_on_something_that_never_comes(activity: Activity, forever: "asyncio.Future[None]") -> None:
    with activity.span("store.record"):
        await forever


def test_a_wait_that_outlasts_the_limit_is_logged_once_with_its_chain_of_awaits(
    caplog: pytest.LogCaptureFixture,
):
    async def scenario() -> None:
        activity = Activity()
        forever: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(waits_on_something_that_never_comes(activity, forever), name="dispatch-7")

        async def db_waits() -> list[str]:
            return ["pid 42 active for 0.3 s, waiting for Lock/relation, blocked by 99 (psql)"]

        watchdog = Watchdog(activity=activity, db_waits=db_waits, stuck_after_s=0.2)
        await asyncio.sleep(0.05)
        assert not await watchdog.check_waits(), "not stuck yet"
        await asyncio.sleep(0.25)
        assert await watchdog.check_waits()
        assert await watchdog.check_waits(), "still stuck, and said once only"
        forever.set_result(None)
        await task
        assert not await watchdog.check_waits()

    with caplog.at_level(logging.WARNING, logger="tidings.watchdog"):
        asyncio.run(scenario())
    said = [r.getMessage() for r in caplog.records if r.name == "tidings.watchdog"]
    assert len(said) == 1, said
    assert "no progress: 1 wait outlasted 0.2 s" in said[0]
    assert "store.record: waiting for" in said[0] and "in task dispatch-7" in said[0]
    assert "in waits_on_something_that_never_comes" in said[0]  # where the task waits, not only its top
    assert "blocked by 99 (psql)" in said[0]


def test_work_due_while_the_dispatcher_does_nothing_is_logged_with_every_task(
    caplog: pytest.LogCaptureFixture,
):
    async def scenario() -> None:
        async def due() -> float:
            return time.time() - 60  # due for a minute

        watchdog = Watchdog(due=due, progress=lambda: 3, stuck_after_s=0.1)
        await watchdog.check_due()  # first look: progress seen
        await asyncio.sleep(0.15)
        await watchdog.check_due()
        await watchdog.check_due()

    with caplog.at_level(logging.WARNING, logger="tidings.watchdog"):
        asyncio.run(scenario())
    said = [r.getMessage() for r in caplog.records if r.name == "tidings.watchdog"]
    assert len(said) == 1, said
    assert said[0].startswith("no progress: work has been due for 60 s and none was done for 0 s")
    assert "in scenario" in said[0]


def blocks_the_event_loop() -> None:
    time.sleep(0.8)


def test_an_event_loop_that_stops_turning_is_logged_with_the_main_threads_stack(
    caplog: pytest.LogCaptureFixture,
):
    async def scenario() -> None:
        monitor = LoopMonitor(asyncio.get_running_loop(), 0.3)
        monitor.start()
        try:
            await asyncio.sleep(0.1)
            blocks_the_event_loop()
            await asyncio.sleep(0.2)  # the loop turns again
        finally:
            monitor.stop()

    with caplog.at_level(logging.WARNING, logger="tidings.watchdog"):
        asyncio.run(scenario())
    said = [r.getMessage() for r in caplog.records if r.name == "tidings.watchdog"]
    assert len(said) == 2, said
    assert said[0].startswith("the event loop has not turned for")
    assert "in blocks_the_event_loop" in said[0] and "time.sleep(0.8)" in said[0]
    assert said[1] == "the event loop turns again"


def test_a_process_whose_stop_cannot_finish_ends_at_its_deadline_and_says_where_it_was():
    script = (
        "import logging, time\n"
        "from tidings.watchdog import leave_after\n"
        "logging.basicConfig(level='INFO')\n"
        "leave_after(0.5, 'stopping')\n"
        "def stuck_in_a_call():\n"
        "    time.sleep(30)\n"
        "stuck_in_a_call()\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20)
    assert done.returncode == FORCED_EXIT_CODE, done.stderr
    assert time.monotonic() - started < 10
    assert "stopping: not stopped after 0.5 s; leaving now" in done.stderr
    assert "in stuck_in_a_call" in done.stderr
