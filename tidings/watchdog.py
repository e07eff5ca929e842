"""Saying what a process is stuck on, and leaving when told to, whatever it waits for.

`ACTIVITY` holds what the process is waiting on right now (store calls, connector sends): named spans,
each with the task that waits and since when. The watchdog looks every second. A span open for
STUCK_AFTER_S is logged once, with the chain of awaits of its task and, where the store can tell, what
the database says its connections wait on (a lock, and who holds it); work that has been due for as
long while the dispatcher did nothing is logged with every task's awaits. A thread watches the event
loop itself: one that has not turned for LOOP_STUCK_S is blocked in a call or busy in code, and the main
thread's stack says which. Once a stop is asked for, `leave_after` makes sure the process ends even when
the clean stop cannot.

A stall on a busy machine (issue 10) left a worker silent for minutes: every task waited on a database
transaction and nothing said so. These are what it would have said.
"""

import asyncio
import itertools
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import CoroutineType, FrameType, GeneratorType
from typing import Any

from tidings.tasks import cancel

log = logging.getLogger("tidings.watchdog")

STUCK_AFTER_S = 5.0  # store calls take milliseconds; a send has its own timeouts below 30 s
LOOP_STUCK_S = 5.0
CHECK_EVERY_S = 1.0
DUE_CHECK_EVERY_S = 5.0
DB_WAITS_TIMEOUT_S = 2.0
FORCED_EXIT_CODE = 70  # EX_SOFTWARE: the clean stop did not finish in time


@dataclass(slots=True)
class Span:
    what: str
    since: float  # time.monotonic()
    task: "asyncio.Task[Any] | None"
    reported: bool = False


class _Open:
    """One span while its `with` block runs (a class, not a generator: store calls are hot)."""

    __slots__ = ("_activity", "_key", "_what")

    def __init__(self, activity: "Activity", what: str) -> None:
        self._activity = activity
        self._what = what
        self._key = 0

    def __enter__(self) -> None:
        self._key = self._activity.enter(self._what)

    def __exit__(self, *exc: object) -> None:
        self._activity.leave(self._key)


class Activity:
    """What this process waits on right now."""

    def __init__(self) -> None:
        self._open: dict[int, Span] = {}
        self._keys = itertools.count(1)

    def span(self, what: str) -> _Open:
        return _Open(self, what)

    def enter(self, what: str) -> int:
        key = next(self._keys)
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop
            task = None
        self._open[key] = Span(what, time.monotonic(), task)
        return key

    def leave(self, key: int) -> None:
        self._open.pop(key, None)

    def spans(self) -> list[Span]:
        return sorted(self._open.values(), key=lambda s: s.since)

    def stuck(self, after_s: float = STUCK_AFTER_S, prefix: str = "") -> list[Span]:
        """The spans open for at least `after_s` whose name starts with `prefix`, oldest first."""
        now = time.monotonic()
        return [s for s in self.spans() if now - s.since >= after_s and s.what.startswith(prefix)]


ACTIVITY = Activity()


# -- what a task awaits ------------------------------------------------------------------------------


def awaits(task: "asyncio.Task[Any]", limit: int = 40) -> list[str]:
    """The task's chain of awaits, outermost first: each coroutine's file, line and function, down to
    the future it waits for. asyncio's own `get_stack` shows a suspended task's outermost frame only."""
    lines: list[str] = []
    seen: set[int] = set()
    current: Any = task.get_coro()
    while current is not None and len(lines) < limit and id(current) not in seen:
        seen.add(id(current))
        frame = _frame_of(current)
        if frame is not None:
            lines.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
            current = getattr(current, "cr_await", None) or getattr(current, "gi_yieldfrom", None)
        elif isinstance(current, asyncio.Task):
            lines.append(f"task {current.get_name()}")
            current = current.get_coro()
        else:
            lines.append(f"waiting for {_short(current)}")
            break
    return lines


def _frame_of(obj: Any) -> FrameType | None:
    if isinstance(obj, CoroutineType):
        return obj.cr_frame
    if isinstance(obj, GeneratorType):
        return obj.gi_frame
    frame = getattr(obj, "cr_frame", None) or getattr(obj, "ag_frame", None)
    return frame if isinstance(frame, FrameType) else None


def _short(obj: object) -> str:
    text = repr(obj)
    return text if len(text) <= 200 else text[:197] + "..."


def describe_tasks(tasks: "set[asyncio.Task[Any]] | None" = None) -> str:
    """Every task of the running loop (or `tasks`) with what it awaits."""
    chosen = tasks if tasks is not None else asyncio.all_tasks()
    parts = []
    for task in sorted(chosen, key=lambda t: t.get_name()):
        chain = "\n".join(f"      {line}" for line in awaits(task))
        parts.append(f"    task {task.get_name()}:\n{chain}")
    return "\n".join(parts)


def thread_stacks() -> str:
    """Every thread's Python stack, the main thread first."""
    frames = sys._current_frames()
    main = threading.main_thread().ident
    names = {t.ident: t.name for t in threading.enumerate()}
    parts = []
    for ident in sorted(frames, key=lambda i: i != main):
        stack = "".join(traceback.format_stack(frames[ident])).rstrip()
        parts.append(f"  thread {names.get(ident, ident)}:\n{stack}")
    return "\n".join(parts)


# -- the watchdog ------------------------------------------------------------------------------------

DbWaits = Callable[[], Awaitable[list[str]]]


class Watchdog:
    """Logs, once per stall, what the process waits on when a wait outlasts `stuck_after_s`, or when
    work has been due that long while the dispatcher did none (`due`, `progress`)."""

    def __init__(
        self,
        *,
        activity: Activity = ACTIVITY,
        db_waits: DbWaits | None = None,
        due: Callable[[], Awaitable[float | None]] | None = None,
        progress: Callable[[], int] | None = None,
        stuck_after_s: float = STUCK_AFTER_S,
    ) -> None:
        self.activity = activity
        self.db_waits = db_waits
        self.due = due
        self.progress = progress
        self.stuck_after_s = stuck_after_s
        self._task: asyncio.Task[None] | None = None
        self._loop_monitor: LoopMonitor | None = None
        self._last_progress = (-1, time.monotonic())
        self._idle_reported = False

    async def start(self) -> None:
        self._loop_monitor = LoopMonitor(asyncio.get_running_loop(), LOOP_STUCK_S)
        self._loop_monitor.start()
        self._task = asyncio.create_task(self._run(), name="watchdog")

    async def stop(self) -> None:
        if self._loop_monitor is not None:
            self._loop_monitor.stop()
        await cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        checks = itertools.count()
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            try:
                if not await self.check_waits() and next(checks) % round(DUE_CHECK_EVERY_S) == 0:
                    await self.check_due()
            except Exception:  # the watchdog must outlive whatever it watches
                log.exception("watchdog check failed")

    async def check_waits(self) -> bool:
        """Log the waits that became stuck since the last look; True when any wait is stuck."""
        stuck = self.activity.stuck(self.stuck_after_s)
        new = [s for s in stuck if not s.reported]
        if new:
            for span in new:
                span.reported = True
            db = await self._db_waits()
            log.warning(
                "no progress: %d wait%s outlasted %g s:\n%s%s",
                len(new),
                "s" if len(new) > 1 else "",
                self.stuck_after_s,
                describe_spans(new),
                "\n  the database says:\n" + "\n".join(f"    {w}" for w in db) if db else "",
            )
        return bool(stuck)

    async def check_due(self) -> None:
        """Work due for `stuck_after_s` while the dispatcher's progress did not move: every task's awaits."""
        if self.due is None or self.progress is None:
            return
        done, now = self.progress(), time.monotonic()
        if done != self._last_progress[0]:
            self._last_progress = (done, now)
            self._idle_reported = False
            return
        idle_s = now - self._last_progress[1]
        try:
            async with asyncio.timeout(DB_WAITS_TIMEOUT_S):  # the look must not become a wait of its own
                due = await self.due()
        except (TimeoutError, OSError):
            return
        late_s = 0.0 if due is None else time.time() - due
        if late_s >= self.stuck_after_s and idle_s >= self.stuck_after_s and not self._idle_reported:
            self._idle_reported = True
            log.warning(
                "no progress: work has been due for %.0f s and none was done for %.0f s; the tasks:\n%s",
                late_s,
                idle_s,
                describe_tasks(),
            )

    async def _db_waits(self) -> list[str]:
        if self.db_waits is None:
            return []
        try:
            async with asyncio.timeout(DB_WAITS_TIMEOUT_S):
                return await self.db_waits()
        except Exception as exc:
            return [f"(could not ask: {exc or type(exc).__name__})"]


def _in_task(span: Span) -> str:
    if span.task is None:
        return ""
    chain = "\n".join(f"      {line}" for line in awaits(span.task))
    return f", in task {span.task.get_name()}:\n{chain}"


class LoopMonitor:
    """A thread that notices when the event loop stops turning, and logs the main thread's stack."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stuck_after_s: float) -> None:
        self.loop = loop
        self.stuck_after_s = stuck_after_s
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="tidings-loop-monitor", daemon=True)
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._tick()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()

    def _tick(self) -> None:
        self._last = time.monotonic()
        self._handle = self.loop.call_later(self.stuck_after_s / 10, self._tick)

    def _watch(self) -> None:
        reported = 0.0
        while not self._stop.wait(self.stuck_after_s / 10):
            lag = time.monotonic() - self._last
            if lag >= self.stuck_after_s and not reported:
                reported = lag
                log.warning(
                    "the event loop has not turned for %.1f s; the threads:\n%s", lag, thread_stacks()
                )
            elif lag < self.stuck_after_s and reported:
                log.warning("the event loop turns again")
                reported = 0.0


class Deadline:
    """A timer that ends the process if it is still running when the timer runs out (see `leave_after`)."""

    def __init__(self, seconds: float, why: str) -> None:
        self.seconds = seconds
        self.why = why
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._wait, name="tidings-stop-deadline", daemon=True)

    def start(self) -> "Deadline":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancelled.set()

    def _wait(self) -> None:
        if self._cancelled.wait(self.seconds):
            return
        stacks = thread_stacks()
        log.error("%s: not stopped after %g s; leaving now. The threads:\n%s", self.why, self.seconds, stacks)
        logging.shutdown()
        os._exit(FORCED_EXIT_CODE)


def leave_after(seconds: float, why: str) -> Deadline:
    """End the process after `seconds` unless the returned deadline is cancelled first: a clean stop that
    cannot finish (a call that never returns, a loop that does not turn) must not keep it alive. It logs
    every thread's stack, then exits with FORCED_EXIT_CODE."""
    return Deadline(seconds, why).start()


def describe_spans(spans: list[Span]) -> str:
    """The spans with how long each has waited and its task's chain of awaits."""
    now = time.monotonic()
    return "\n".join(f"  {s.what}: waiting for {now - s.since:.1f} s" + _in_task(s) for s in spans)
