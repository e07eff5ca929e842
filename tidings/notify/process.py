"""The main process's handle on the notification sender process (see `tidings.notify.sender`)."""

import asyncio
import contextlib
import logging
import sys
import time
from dataclasses import dataclass, field

import msgspec

from tidings.notify.poster import PostOutcome
from tidings.notify.sender import STOP_REQUEST, frame, read_frame, response_decoder

log = logging.getLogger("tidings.notify")

RESTART_PAUSE_S = 1.0
ANSWER_SLACK_S = 5.0  # beyond the POST timeout, before a silent sender counts as wedged
WATCHDOG_PERIOD_S = 0.5


@dataclass
class _Child:
    proc: asyncio.subprocess.Process
    # Posts awaiting an answer, oldest first (ids only grow), with the loop time each was sent.
    waiting: dict[int, tuple["asyncio.Future[PostOutcome]", float]] = field(default_factory=dict)
    reader: "asyncio.Task[None] | None" = None
    watchdog: "asyncio.Task[None] | None" = None
    # Frames written in this loop iteration, sent to the pipe in one write at its end (a write per post
    # was a system call per notification, a twentieth of the main process's time at full load).
    outbox: list[bytes] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)


class SenderProcess:
    def __init__(self, timeout_s: float, concurrency: int, user_agent: str) -> None:
        self._args = [
            "--timeout",
            str(timeout_s),
            "--concurrency",
            str(concurrency),
            "--user-agent",
            user_agent,
        ]
        self._deadline = timeout_s + ANSWER_SLACK_S
        self._child: _Child | None = None
        self._next_id = 0
        self._started_at = 0.0
        self._starting = asyncio.Lock()
        self._stopping = False

    async def start(self) -> _Child:
        async with self._starting:
            if self._child is not None:
                return self._child
            pause = self._started_at + RESTART_PAUSE_S - time.monotonic()
            if pause > 0:  # a process that dies at once must not be restarted in a tight loop
                await asyncio.sleep(pause)
            self._started_at = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tidings.notify.sender", *self._args,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                # Its own session: Ctrl-C or a signal to our process group must not cut its posts short;
                # it stops when we tell it to (STOP), or when we are gone.
                start_new_session=True,
            )  # fmt: skip
            log.info("notification sender started (pid %d)", proc.pid)
            child = _Child(proc)
            child.reader = asyncio.create_task(self._read(child), name="notify-sender-read")
            child.watchdog = asyncio.create_task(self._watch(child), name="notify-sender-watchdog")
            self._child = child
            return child

    def post_soon(self, url: str, headers: dict[str, str], body: bytes) -> "asyncio.Future[PostOutcome]":
        """`post` without a coroutine: the future of its outcome. While a sender runs (the usual
        case) this costs no task, which at thousands of posts a second is a measurable share of the
        main process's time."""
        child = self._child
        if child is None or self._stopping:
            return asyncio.ensure_future(self.post(url, headers, body))
        return self._write(child, url, headers, body)

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> PostOutcome:
        if self._stopping:
            return PostOutcome(None, "not sent: shutting down", True, aborted=True)
        child = self._child or await self.start()
        return await self._write(child, url, headers, body)

    def _write(
        self, child: _Child, url: str, headers: dict[str, str], body: bytes
    ) -> "asyncio.Future[PostOutcome]":
        self._next_id += 1
        ident = self._next_id
        loop = asyncio.get_running_loop()
        future: asyncio.Future[PostOutcome] = loop.create_future()
        if not child.outbox:
            loop.call_soon(self._send_outbox, child)
        child.outbox.append(frame((ident, url, list(headers.items()), body)))
        child.outbox_ids.append(ident)
        # No timer per post: at thousands of posts a second they cost more than the posts' own
        # bookkeeping. The watchdog restarts a sender that leaves any post unanswered too long.
        child.waiting[ident] = (future, loop.time())
        return future

    def _send_outbox(self, child: _Child) -> None:
        if not child.outbox:
            return
        frames, child.outbox = child.outbox, []
        ids, child.outbox_ids = child.outbox_ids, []
        assert child.proc.stdin is not None
        try:
            child.proc.stdin.write(b"".join(frames))
        except (ConnectionError, RuntimeError) as exc:  # it died a moment ago; its reader will notice
            for ident in ids:
                entry = child.waiting.pop(ident, None)
                if entry is not None and not entry[0].done():
                    outcome = PostOutcome(None, f"the notification sender is not running: {exc}", True)
                    entry[0].set_result(outcome)

    async def _watch(self, child: _Child) -> None:
        loop = asyncio.get_running_loop()
        while child.proc.returncode is None:
            await asyncio.sleep(WATCHDOG_PERIOD_S)
            oldest = next(iter(child.waiting.values()), None)
            if oldest is not None and loop.time() - oldest[1] > self._deadline:
                log.error("the notification sender gave no answer in %.0fs; restarting it", self._deadline)
                self._kill(child)  # its reader then fails everything it still owed
                return

    async def _read(self, child: _Child) -> None:
        assert child.proc.stdout is not None
        try:
            while (data := await read_frame(child.proc.stdout)) is not None:
                try:
                    ident, status, error, retry, overloaded, elapsed, wait = response_decoder.decode(data)
                except msgspec.DecodeError:
                    log.error("the notification sender sent a malformed answer; restarting it")
                    self._kill(child)
                    break
                entry = child.waiting.pop(ident, None)
                if entry is not None and not entry[0].done():
                    entry[0].set_result(
                        PostOutcome(status or None, error or None, retry, False, overloaded, elapsed, wait)
                    )
        finally:
            code = await child.proc.wait()
            if self._child is child:
                self._child = None
            if child.watchdog is not None:
                child.watchdog.cancel()
            self._fail(child, code)

    def _fail(self, child: _Child, code: int) -> None:
        waiting, child.waiting = child.waiting, {}
        if self._stopping:
            outcome = PostOutcome(None, "not finished: shutting down", True, aborted=True)
        else:
            outcome = PostOutcome(None, f"the notification sender process exited with {code}", True)
            if waiting:
                log.error("%s; %d notifications will be retried", outcome.error, len(waiting))
        for future, _ in waiting.values():
            if not future.done():
                future.set_result(outcome)

    def _kill(self, child: _Child) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.proc.kill()

    async def stop(self, grace_s: float) -> None:
        """Let the process finish what it was given (bounded by `grace_s`), then end it. Posts it
        could not finish come back marked `aborted`: not a failed try, only an interrupted one."""
        self._stopping = True
        child = self._child
        if child is None:
            return
        if child.outbox:  # posts given this iteration go before the STOP (its call_soon then finds none)
            self._send_outbox(child)
        if child.proc.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                child.proc.stdin.write(frame(STOP_REQUEST))
            child.proc.stdin.close()
        try:
            await asyncio.wait_for(child.proc.wait(), grace_s)
        except TimeoutError:
            self._kill(child)
        if child.reader is not None:
            await child.reader
