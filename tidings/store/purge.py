"""What a retention purge deletes, and what one batch of it reports, whatever the database.

The rule (both backends' `sql/<backend>/retention.sql` state it, `tidings.retention` runs it): an outbound
message goes once it is final (`FINAL_WORDS`), last changed before the cut-off, with no work left
(`next_at` NULL), every notification of it sent or given up, and no short link of it still valid (a link
with an expiry is a promise to its reader; one without, such as email's tracking codes, goes with its
message). It goes whole: its row and every row under its transid in `PURGED_WITH_MESSAGE`. An inbound
message goes once received before the cut-off with its notification sent or given up, with that
notification. Nothing else is keyed by a message: suppression lists, consent records, devices and the
catalogue stay.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tidings.statuses import Status

# The shortest retention: a day and more beyond what anything reads back (the WhatsApp and Messenger
# windows read 24 hours of inbound messages, an Idempotency-Key answer is replayed for 24 hours).
MIN_RETAIN_DAYS = 2
DAY_S = 86_400.0
# How many messages one batch looks at, and so at most deletes: one transaction each. SQLite runs it on
# the event loop's thread, so it sets how long the loop stops: about 55 ms for 500 messages with 6 rows
# each on a 300 MB file, 100 ms for 1,000, at the same messages per second (bench/retention.py;
# docs/operations.md#retention).
PURGE_BATCH = 500
# The statuses a message ends in: nothing moves it on from these but a Read after Delivered (which
# changes its updated_at, and so restarts its retention) and clicks (notifications, held above).
FINAL_WORDS = tuple(s.word for s in Status if s.final)
# Every table whose rows belong to one outbound message, by its `transid` column; `messages` last.
PURGED_WITH_MESSAGE = ("events", "notifications", "attempts", "links", "ext_parts", "messages")
# The same for an inbound message, by its `tid` (its notification's transid).
PURGED_WITH_INBOUND = ("notifications", "inbound")
# Where a purge starts: before every (created_at, seq).
START: tuple[float, int] = (float("-inf"), 0)


@dataclass(slots=True)
class PurgeBatch:
    """One batch: rows deleted (or, dry, that would be) per table, the messages among them, how many
    candidates it looked at, and where the next batch starts (None: nothing older is left to look at)."""

    rows: dict[str, int] = field(default_factory=dict)
    purged: int = 0
    scanned: int = 0
    cursor: tuple[float, int] | None = None


def scanned(rows: Sequence[Any], limit: int) -> PurgeBatch:
    """A batch that looked at `rows` (key, created_at, seq; in that order) of at most `limit`: the next
    one starts after the last, unless there were fewer (nothing older is left)."""
    last = (float(rows[-1][1]), int(rows[-1][2])) if rows and len(rows) >= limit else None
    return PurgeBatch(scanned=len(rows), cursor=last)
