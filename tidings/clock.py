"""Wall-clock time as the API shows it: epoch seconds inside, ISO 8601 with milliseconds outside."""

import time
from datetime import UTC, datetime


def now() -> float:
    return time.time()


def iso(ts: float) -> str:
    """Format epoch seconds like the notification samples: `2026-11-22T10:00:00.123+00:00`."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
