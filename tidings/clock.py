"""Wall-clock time as the API shows it: epoch seconds inside, ISO 8601 with milliseconds outside."""

import math
import time
from datetime import UTC, datetime


def now() -> float:
    return time.time()


# Every notification carries a timestamp, thousands a second, nearly all within the same second: the
# date and time of day are made once per second, the milliseconds appended.
_second = -1
_prefix = ""


def iso(ts: float) -> str:
    """Format epoch seconds like the notification samples: `2026-11-22T10:00:00.123+00:00`; the same text
    as `datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")`, whose rounding it keeps
    (to the microsecond, half to even, then the milliseconds cut)."""
    global _second, _prefix
    fraction, whole = math.modf(ts)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:  # before 1970: modf's fraction is negative
        whole, micros = whole - 1, micros + 1_000_000
    second = int(whole)
    if second != _second:
        _prefix = datetime.fromtimestamp(second, UTC).isoformat()[:19]
        _second = second
    return f"{_prefix}.{micros // 1000:03d}+00:00"
