"""`clock.iso`, the timestamp of every notification and API answer, gives exactly the text of
`datetime.isoformat(timespec="milliseconds")`, rounding included, while it makes each second's prefix once."""

import random
from datetime import UTC, datetime

from tidings.clock import iso


def test_iso_is_datetimes_text_to_the_millisecond():
    rng = random.Random(20261127)
    values = [rng.uniform(0, 4e9) for _ in range(20_000)] + [rng.uniform(-1e9, 0) for _ in range(2_000)]
    values += [k / 1000 + 1.7e9 for k in range(2_000)]  # every millisecond of two seconds, in order
    values += [1764237600.9995, 1764237600.9999995, 1764237600.0000005, 0.0, -0.5, 1.5e9 + 0.0005]
    for ts in values:
        assert iso(ts) == datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds"), ts
    assert iso(1764237600.123) == "2025-11-27T10:00:00.123+00:00"
