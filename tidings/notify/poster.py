"""One HTTP POST of a notification and what came of it; runs inside the sender process."""

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from tidings.http1 import HttpClient, HttpError, InvalidUrl

MAX_RESPONSE_BYTES = 65536
MAX_RETRY_AFTER_S = 3600.0
# Answers by which a receiver (or the proxy in front of it) says it has more than it can take now.
OVERLOAD_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class PostOutcome:
    """`status` is the HTTP status (None when there was no answer); `error` None means success.
    `aborted`: our own shutdown cut the post short, so it does not count as a try.
    `overloaded`: the failure is one a receiver gives when it has too much at once (a timeout, a
    refused or dropped connection, 429/502/503/504), so sending it less at a time may cure it.
    `elapsed` is how long the post took; `retry_after` the receiver's Retry-After in seconds (0: none)."""

    status: int | None
    error: str | None
    retry: bool
    aborted: bool = False
    overloaded: bool = False
    elapsed: float = 0.0
    retry_after: float = 0.0


def retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def retry_after_s(value: str | None, now: float) -> float:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), bounded; 0 when absent."""
    if not value:
        return 0.0
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        at = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0.0
    return max(0.0, min(at - now, MAX_RETRY_AFTER_S))


class Poster:
    def __init__(self, timeout_s: float, concurrency: int, user_agent: str) -> None:
        # Keep-alive: a receiver that allows it gets its connections reused. The answer's body is never
        # kept (only drained, so the connection can be reused).
        self._client = HttpClient(
            connections=concurrency,
            deadline=timeout_s,
            headers={"User-Agent": user_agent},
            max_body=MAX_RESPONSE_BYTES,
        )

    async def close(self) -> None:
        await self._client.close()

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> PostOutcome:
        started = time.monotonic()
        try:
            answer = await self._client.post(url, body, headers)
            status = answer.status_code
            wait = retry_after_s(answer.headers.get("Retry-After"), time.time())
        except (InvalidUrl, ValueError) as exc:
            return PostOutcome(None, f"invalid URL: {exc}", False)
        except (TimeoutError, HttpError, OSError) as exc:
            elapsed = time.monotonic() - started
            return PostOutcome(None, f"{type(exc).__name__}: {exc}", True, overloaded=True, elapsed=elapsed)
        except Exception as exc:  # anything else still counts as a try, so a row cannot loop forever
            return PostOutcome(None, f"{type(exc).__name__}: {exc}", True)
        elapsed = time.monotonic() - started
        if 200 <= status < 300:
            return PostOutcome(status, None, False, elapsed=elapsed)
        overloaded = status in OVERLOAD_STATUSES
        return PostOutcome(
            status,
            f"HTTP {status}",
            retryable_status(status),
            overloaded=overloaded,
            elapsed=elapsed,
            retry_after=wait if overloaded else 0.0,
        )
