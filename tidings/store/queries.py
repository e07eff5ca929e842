"""Named SQL queries, read from `sql/<backend>/queries.sql` and its siblings (blocks headed `-- name --`)."""

import re
from importlib import resources

_HEADER = re.compile(r"^-- ([a-z_]+) --$", re.MULTILINE)


def load_queries(backend: str, name: str = "queries") -> dict[str, str]:
    """The named queries of `sql/<backend>/<name>.sql`."""
    text = resources.files("tidings.store").joinpath("sql", backend, f"{name}.sql").read_text("utf-8")
    parts = _HEADER.split(text)
    return {key: sql.strip() for key, sql in zip(parts[1::2], parts[2::2], strict=True)}


def load_migrations(backend: str) -> list[tuple[int, str]]:
    """(number, sql) of every `migrations/NNNN_name.sql`, in order."""
    folder = resources.files("tidings.store").joinpath("sql", backend, "migrations")
    found = [(int(f.name[:4]), f.read_text("utf-8")) for f in folder.iterdir() if f.name.endswith(".sql")]
    return sorted(found)
