"""Per-service rate limits: a token bucket of destinations per second.

A service with `tps` T refills T tokens a second and holds at most min(1.5 x T, T + 100) (the documented
burst). A request takes one token per destination address, all or nothing.
"""

import time
from dataclasses import dataclass


def burst_of(tps: int) -> float:
    return min(1.5 * tps, tps + 100.0)


@dataclass(slots=True)
class _Bucket:
    rate: float
    capacity: float
    tokens: float
    at: float


class RateLimiter:
    """In-process buckets, one per service; enough while one process serves the API."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    def take(self, service_id: str, tps: int, count: int) -> bool:
        """Take `count` tokens from the service's bucket; False (and nothing taken) if there are too few."""
        now = time.monotonic()
        b = self._buckets.get(service_id)
        if b is None or b.rate != tps:
            b = self._buckets[service_id] = _Bucket(float(tps), burst_of(tps), burst_of(tps), now)
        b.tokens = min(b.capacity, b.tokens + (now - b.at) * b.rate)
        b.at = now
        if b.tokens < count:
            return False
        b.tokens -= count
        return True
