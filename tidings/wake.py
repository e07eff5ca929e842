"""Wake-ups between processes: "there are new messages" and "there are new notifications".

Within one process a wake-up is a callback. Across processes (API processes accepting, worker processes
dispatching) it goes through Redis pub/sub when `[redis] url` is set; without Redis each worker still
finds new work by polling the store every second, so a wake-up lost in an outage only costs latency.
"""

import asyncio
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tidings.tasks import cancel

log = logging.getLogger("tidings")
TOPICS = ("dispatch", "notify")
RECONNECT_S = 1.0
PUBLISH_EVERY_S = 0.005  # at most one message per topic in this window: a burst of accepts is one wake-up


class Wakeups:
    def __init__(self, redis: Redis | None, prefix: str, url: str = "") -> None:
        self.redis = redis
        self.url = url
        self.prefix = prefix
        self._local: dict[str, list[Callable[[], None]]] = {t: [] for t in TOPICS}
        self._queued: set[str] = set()
        self._listener: asyncio.Task[None] | None = None

    def on(self, topic: str, callback: Callable[[], None]) -> None:
        self._local[topic].append(callback)

    def wake(self, topic: str) -> None:
        for callback in self._local[topic]:
            callback()
        if self.redis is not None and topic not in self._queued:
            self._queued.add(topic)
            asyncio.get_running_loop().call_later(PUBLISH_EVERY_S, self._publish, topic)

    def _publish(self, topic: str) -> None:
        self._queued.discard(topic)
        assert self.redis is not None
        task = asyncio.ensure_future(self.redis.publish(self.prefix + topic, b"1"))
        task.add_done_callback(_quiet)

    async def start(self) -> None:
        if self.redis is not None and any(self._local.values()):
            self._listener = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        await cancel(self._listener)
        self._listener = None

    async def _listen(self) -> None:
        assert self.redis is not None
        wanted = {self.prefix + t: t for t in TOPICS if self._local[t]}
        # Its own connection with no read timeout: a quiet channel is not a broken one.
        listener = Redis.from_url(self.url, health_check_interval=30)
        try:
            while True:
                try:
                    async with listener.pubsub() as pubsub:
                        await pubsub.subscribe(*wanted)
                        async for message in pubsub.listen():
                            topic = wanted.get(_text(message.get("channel")))
                            if message.get("type") == "message" and topic is not None:
                                for callback in self._local[topic]:
                                    callback()
                except (RedisError, OSError) as exc:
                    log.warning("Redis wake-ups interrupted (%s); polling the store until they are back", exc)
                    await asyncio.sleep(RECONNECT_S)
        finally:
            await listener.aclose()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _quiet(task: "asyncio.Future[object]") -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.debug("wake-up not published: %s", exc)
