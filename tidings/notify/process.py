"""The main process's handle on the notification sender process (see `tidings.notify.sender`)."""

import asyncio
import contextlib
import logging
import sys
import time

from tidings.notify.poster import PostOutcome
from tidings.notify.sender import frame, read_frame, response_decoder

log = logging.getLogger("tidings.notify")

RESTART_PAUSE_S = 1.0


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
        self._proc: asyncio.subprocess.Process | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[PostOutcome]] = {}
        self._next_id = 0
        self._started_at = 0.0
        self._starting: asyncio.Lock | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._proc is not None and self._proc.returncode is None:
                return
            pause = self._started_at + RESTART_PAUSE_S - time.monotonic()
            if pause > 0:  # a process that dies at once must not be restarted in a tight loop
                await asyncio.sleep(pause)
            self._started_at = time.monotonic()
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tidings.notify.sender", *self._args,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            log.info("notification sender started (pid %d)", self._proc.pid)
            self._reader_task = asyncio.create_task(self._read(self._proc), name="notify-sender-read")

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> PostOutcome:
        if self._proc is None or self._proc.returncode is not None or self._proc.stdin is None:
            await self.start()
        assert self._proc is not None and self._proc.stdin is not None
        self._next_id += 1
        ident = self._next_id
        future: asyncio.Future[PostOutcome] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        try:
            self._proc.stdin.write(frame((ident, url, list(headers.items()), body)))
        except (ConnectionError, RuntimeError) as exc:
            self._waiting.pop(ident, None)
            return PostOutcome(None, f"notification sender unavailable: {exc}", True)
        return await future

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while (data := await read_frame(proc.stdout)) is not None:
            ident, status, error, retry = response_decoder.decode(data)
            future = self._waiting.pop(ident, None)
            if future is not None and not future.done():
                future.set_result(PostOutcome(status or None, error or None, retry))
        code = await proc.wait()
        if self._proc is proc:
            self._fail_waiting(f"the notification sender process exited with {code}")

    def _fail_waiting(self, reason: str) -> None:
        waiting, self._waiting = self._waiting, {}
        if waiting:
            log.error("%s; %d notifications will be retried", reason, len(waiting))
        for future in waiting.values():
            if not future.done():
                future.set_result(PostOutcome(None, reason, True))

    async def stop(self, grace_s: float) -> None:
        """Let the process finish what it was given (bounded by `grace_s`), then end it."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), grace_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        self._fail_waiting("the notification sender stopped")
