"""Identifiers: time-ordered UUIDs (version 7 layout) for transids and event ids.

Time-ordered ids keep B-tree inserts at the right edge of the index. The 74 random bits come from the
`random` module (seeded from the OS at start): these ids must be unique, not secret, and `os.urandom`
releases the GIL, which under load costs a wait for the store's writer thread on every call.
"""

import random
import time

_bits = random.getrandbits


def new_ids(count: int, at: float | None = None) -> list[str]:
    """Return `count` distinct UUIDv7-shaped strings that sort by creation time (now, or `at`)."""
    millis = time.time_ns() // 1_000_000 if at is None else int(at * 1000)
    head = millis << 80 | 0x7 << 76
    out: list[str] = []
    for _ in range(count):
        r = _bits(74)
        h = f"{head | (r >> 62) << 64 | 0b10 << 62 | (r & 0x3FFFFFFFFFFFFFFF):032x}"
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


def new_id() -> str:
    return new_ids(1)[0]


def age_s(transid: str, now: float) -> float:
    """Seconds from a transid's creation (its first 48 bits: UUIDv7 milliseconds) to `now`; 0 for an id
    of another shape."""
    try:
        millis = int(transid[:8] + transid[9:13], 16)
    except ValueError:
        return 0.0
    return max(0.0, now - millis / 1000)
