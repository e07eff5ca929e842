"""Identifiers: time-ordered UUIDs (version 7 layout) for transids and event ids.

Time-ordered ids keep B-tree inserts at the right edge of the index, and one `os.urandom` call per
batch is several times cheaper than `uuid4()` per id (see MEASURED.md).
"""

import os
import time


def new_ids(count: int) -> list[str]:
    """Return `count` distinct UUIDv7-shaped strings that sort by creation time."""
    ms = time.time_ns() // 1_000_000
    rand = os.urandom(10 * count)
    out: list[str] = []
    for i in range(count):
        r = int.from_bytes(rand[10 * i : 10 * i + 10], "big")
        rand_a = (r >> 68) & 0xFFF  # 12 bits
        rand_b = r & ((1 << 62) - 1)  # 62 bits
        value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
        h = f"{value:032x}"
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


def new_id() -> str:
    return new_ids(1)[0]
