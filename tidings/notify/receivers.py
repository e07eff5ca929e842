"""How many notifications each receiver gets at once: a limit per receiver (scheme://host[:port]) that
learns what the receiver can take.

The limit starts small and grows while posts come back quickly (doubling per round trip up to 32 or the
first sign of trouble, then by one per round trip). Posts coming back slower than twice the receiver's
quickest recent ones mean a queue is building there: the limit then shrinks by one per round trip. A
timeout, a refused or dropped connection, an answer that says "too much" (429/502/503/504) or a post far
slower than the receiver's usual halves it, at most once per round trip, down to one. A receiver's posts
never take another receiver's slots, and the rows claimed for it beyond its limit wait in its own short
queue.

A failure counts as one of a notification's tries only when the receiver was not sharing its attention with
another post of ours at the time: a receiver drowned by our own load has not failed, we have.
"""

from collections import deque
from dataclasses import dataclass, field

from tidings.store.base import ClaimedNotification

INITIAL_LIMIT = 4.0
# Doubling stops here even without trouble: the signs of a queue (slow posts, dropped connection attempts)
# come a second late, long after a receiver answering in a millisecond could be sent hundreds at once.
# A fast receiver needs few: at 5 ms a post, 32 in flight are 6,400 a second.
INITIAL_THRESHOLD = 32.0
# A post slower than BASE_SLOWDOWN x the receiver's quickest recent posts + SLOW_ALLOWANCE_S is a sign
# of a queue building up (a dropped SYN alone costs 1 s); one within 2 x + QUICK_ALLOWANCE_S is not.
BASE_SLOWDOWN = 4.0
SLOW_ALLOWANCE_S = 0.5
QUICK_ALLOWANCE_S = 0.05
BASE_WINDOW_S = 10.0  # the quickest post is remembered over two such windows, then forgotten
FORGET_AFTER_S = 300.0  # a receiver idle this long starts again from INITIAL_LIMIT


@dataclass(slots=True)
class Post:
    """One notification on its way to its receiver."""

    n: ClaimedNotification
    receiver: "Receiver"
    sent_at: float
    crowded: bool  # another post to the same receiver was in flight at some point during this one


@dataclass(eq=False)
class Receiver:
    key: str
    max_limit: int
    limit: float = INITIAL_LIMIT
    threshold: float = INITIAL_THRESHOLD  # growth turns from doubling to linear here (lowered by a cut)
    waiting: deque[ClaimedNotification] = field(default_factory=deque)
    paused_until: float = 0.0
    last_used: float = 0.0
    _inflight: list[Post] = field(default_factory=list)
    _last_cut: float = float("-inf")
    _base: float | None = None  # the quickest post in the current and previous window
    _window_min: float | None = None
    _window_started: float = 0.0

    def __post_init__(self) -> None:
        self.limit = min(self.limit, float(self.max_limit))

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def slots(self) -> int:
        return max(1, int(self.limit))

    @property
    def hold(self) -> int:
        """How many claimed rows may wait here beyond those in flight: enough to refill every slot once."""
        return self.slots

    def paused(self, now: float) -> bool:
        return now < self.paused_until

    def can_send(self, now: float) -> bool:
        return self.inflight < self.slots and not self.paused(now)

    def room(self, now: float) -> int:
        """How many more rows this receiver could take from a claim now."""
        if self.paused(now):
            return 0
        return max(0, self.slots + self.hold - self.inflight - len(self.waiting))

    def start(self, n: ClaimedNotification, now: float) -> Post:
        crowded = bool(self._inflight)
        if len(self._inflight) == 1:
            self._inflight[0].crowded = True  # from now on it shares the receiver with this one
        post = Post(n, self, now, crowded)
        self._inflight.append(post)
        self.last_used = now
        return post

    def finish(self, post: Post, now: float, elapsed: float, overloaded: bool, retry_after: float) -> None:
        """Learn from one post's outcome (`overloaded`: it failed the way an overwhelmed receiver does)."""
        self._inflight.remove(post)
        self.last_used = now
        if retry_after > 0:
            self.paused_until = max(self.paused_until, now + retry_after)
        slow = self._base is not None and elapsed > self._base * BASE_SLOWDOWN + SLOW_ALLOWANCE_S
        if overloaded or slow:
            self._cut(post, now)
            return
        self._observe(elapsed, now)
        if elapsed > (self._base or elapsed) * 2 + QUICK_ALLOWANCE_S:
            # A queue is building at the receiver: stop doubling, and drift down by one per round trip
            # until posts come back quickly again.
            self.threshold = min(self.threshold, self.limit)
            self.limit = max(1.0, self.limit - 1.0 / self.limit)
        elif self.waiting or self.inflight + 1 >= self.slots:
            # Grow only when the limit is what held us back; an idle receiver's limit means nothing.
            self.limit += 1.0 if self.limit < self.threshold else 1.0 / self.limit
            self.limit = min(self.limit, float(self.max_limit))

    def _cut(self, post: Post, now: float) -> None:
        if post.sent_at < self._last_cut:
            return  # sent before the last cut: its trouble was already answered
        self.limit = max(1.0, self.limit / 2)
        self.threshold = self.limit
        self._last_cut = now

    def _observe(self, elapsed: float, now: float) -> None:
        if now - self._window_started > BASE_WINDOW_S:
            self._base, self._window_min, self._window_started = self._window_min, None, now
        self._window_min = elapsed if self._window_min is None else min(self._window_min, elapsed)
        self._base = elapsed if self._base is None else min(self._base, elapsed)
