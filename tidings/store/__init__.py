"""Durable state behind one interface (`Store`); the backend is chosen by the database URL."""

from tidings.store.base import Store, StoreUnavailable

__all__ = ["Store", "StoreUnavailable", "open_store"]


def open_store(url: str) -> Store:
    """A store for `sqlite:///relative/path`, `sqlite:////absolute/path` or `postgresql://…/DATABASE`."""
    if url.startswith("sqlite:///"):
        from tidings.store.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from tidings.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError("unsupported database URL (sqlite:///PATH or postgresql://HOST/DATABASE)")
