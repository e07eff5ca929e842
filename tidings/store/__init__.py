"""Durable state behind one interface (`Store`); the backend is chosen by the database URL."""

from tidings.store.base import Store, StoreUnavailable

__all__ = ["Store", "StoreUnavailable", "open_store"]


def open_store(url: str) -> Store:
    """A store for `sqlite:///relative/path` or `sqlite:////absolute/path`."""
    if url.startswith("sqlite:///"):
        from tidings.store.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"))
    raise ValueError(f"unsupported database URL {url!r}")
