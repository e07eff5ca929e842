"""Ending a background task: what every part's `stop()` does with the loop it started."""

import asyncio
import contextlib
from typing import Any


async def cancel(task: "asyncio.Task[Any] | None") -> None:
    """Cancel `task` (None: nothing to do) and wait until it has ended; its cancellation is not an error
    of the caller's."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
