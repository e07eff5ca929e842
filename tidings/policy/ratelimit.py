"""Per-service rate limits: a token bucket of destinations per second.

A service with `tps` T refills T tokens a second and holds at most min(1.5 x T, T + 100) (the documented
burst). A request takes one token per destination address, all or nothing.
"""

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("tidings.policy")


def burst_of(tps: int) -> float:
    return min(1.5 * tps, tps + 100.0)


@dataclass(slots=True)
class _Bucket:
    rate: float
    capacity: float
    tokens: float
    at: float


class Limiter(Protocol):
    async def take(self, service_id: str, tps: int, count: int) -> bool:
        """Take `count` tokens from the service's bucket; False (and nothing taken) if there are too few."""


class RateLimiter:
    """In-process buckets, one per service: each API process has its own (see RedisRateLimiter)."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    async def take(self, service_id: str, tps: int, count: int) -> bool:
        return self.take_now(service_id, tps, count)

    def take_now(self, service_id: str, tps: int, count: int) -> bool:
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


# One bucket per service in a Redis hash {tokens, at, rate}, refilled and taken in one script so that
# every API process draws on the same bucket. Time is the Redis server's, so processes on machines whose
# clocks differ still agree.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate, capacity, count = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'rate')
local tokens, at = tonumber(b[1]), tonumber(b[2])
if tokens == nil or tonumber(b[3]) ~= rate then
  tokens, at = capacity, now
end
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local ok = 0
if tokens >= count then
  tokens = tokens - count
  ok = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now), 'rate', tostring(rate))
redis.call('EXPIRE', KEYS[1], 3600)
return ok
"""


class RedisRateLimiter:
    """The buckets in Redis, shared by every process. If Redis cannot be reached the process falls back
    on its own bucket (logged once per outage): an outage must not stop the API from accepting."""

    def __init__(self, redis: "Redis", prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._script = redis.register_script(_TAKE)
        self._local = RateLimiter()
        self._down = False

    async def take(self, service_id: str, tps: int, count: int) -> bool:
        key = f"{self.prefix}bucket:{service_id}"
        try:
            ok = await self._script(keys=[key], args=[tps, burst_of(tps), count])
        except (RedisError, OSError) as exc:
            if not self._down:
                log.warning("Redis is not answering (%s): rate limits are per process until it is back", exc)
                self._down = True
            return self._local.take_now(service_id, tps, count)
        if self._down:
            log.warning("Redis is back: rate limits are shared again")
            self._down = False
        return bool(ok)
