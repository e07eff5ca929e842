"""One HTTP POST of a notification and what came of it; runs inside the sender process."""

from dataclasses import dataclass

import aiohttp

MAX_RESPONSE_BYTES = 65536


@dataclass(frozen=True, slots=True)
class PostOutcome:
    """`status` is the HTTP status (None when there was no answer); `error` None means success.
    `aborted`: our own shutdown cut the post short, so it does not count as a try."""

    status: int | None
    error: str | None
    retry: bool
    aborted: bool = False


def retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


class Poster:
    def __init__(self, timeout_s: float, concurrency: int, user_agent: str) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency, ttl_dns_cache=60),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            headers={"User-Agent": user_agent},
        )

    async def close(self) -> None:
        await self._session.close()

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> PostOutcome:
        try:
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                await resp.content.read(MAX_RESPONSE_BYTES)  # drained for keep-alive; never kept
                status = resp.status
        except (aiohttp.InvalidURL, ValueError) as exc:
            return PostOutcome(None, f"invalid URL: {exc}", False)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return PostOutcome(None, f"{type(exc).__name__}: {exc}", True)
        except Exception as exc:  # anything else still counts as a try, so a row cannot loop forever
            return PostOutcome(None, f"{type(exc).__name__}: {exc}", True)
        if 200 <= status < 300:
            return PostOutcome(status, None, False)
        return PostOutcome(status, f"HTTP {status}", retryable_status(status))
