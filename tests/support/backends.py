"""Run one test against every Store backend.

A test asks for the `backend` fixture (import it into the test module) and gets a `Backend`: the URL of a
fresh, empty database of that kind and the means to open stores on it. `sqlite` is a new file under the
test's tmp_path; `postgres` is a new schema `t_<uuid>` in the database `test` on 127.0.0.1:5432 (Tidings
creates the schema and sets its search_path to it), dropped after the test.

The postgres param skips when PostgreSQL is not reachable, unless TIDINGS_REQUIRE_SERVICES=1 (CI sets
it): then it fails, so a CI run cannot pass without it.

Tests that need several stores on one database at once (several processes) parametrise over
`MULTI_PROCESS` instead: SQLite allows one process per file, so it skips there.
"""

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tidings.store import Store, open_store

PG_HOST, PG_PORT, PG_DATABASE = "127.0.0.1", 5432, "test"
PG_DSN = f"postgresql://{PG_HOST}:{PG_PORT}/{PG_DATABASE}"
REQUIRE_SERVICES = "TIDINGS_REQUIRE_SERVICES"
NOT_REACHABLE = f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}"
SINGLE_PROCESS = "SQLite is single-process"

BACKENDS = ["sqlite", "postgres"]
MULTI_PROCESS = [pytest.param("sqlite", marks=pytest.mark.skip(reason=SINGLE_PROCESS)), "postgres"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backend:
    name: str  # sqlite or postgres
    url: str  # what `open_store` takes

    def store(self) -> Store:
        """A new, unopened store on this backend's database."""
        return open_store(self.url)

    def run(self, scenario: Callable[[Store], Awaitable[T]]) -> T:
        """Open a store, run `scenario` with it in a fresh event loop, close the store."""

        async def main() -> T:
            store = self.store()
            await store.open()
            try:
                return await scenario(store)
            finally:
                await store.close()

        return asyncio.run(main())

    def run_many(self, count: int, scenario: Callable[[list[Store]], Awaitable[T]]) -> T:
        """Like `run`, with `count` stores opened separately on the same database (as processes would)."""

        async def main() -> T:
            stores: list[Store] = []
            try:
                for _ in range(count):
                    store = self.store()
                    await store.open()
                    stores.append(store)
                return await scenario(stores)
            finally:
                for store in stores:
                    await store.close()

        return asyncio.run(main())


def services_required() -> bool:
    return os.environ.get(REQUIRE_SERVICES) == "1"


def unavailable(reason: str) -> None:
    """Skip the test, or fail it when the environment says the service is required."""
    if services_required():
        pytest.fail(f"{reason} (and {REQUIRE_SERVICES}=1 requires it)", pytrace=False)
    pytest.skip(reason)


def postgres_reachable(timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=timeout_s):
            return True
    except OSError:
        return False


def require_postgres_and_redis(in_postgres_pass: bool = False) -> None:
    """For the tests that start processes of their own on PostgreSQL with Redis: they run once, in the
    default pass (or, with `in_postgres_pass`, in the `TIDINGS_TEST_BACKEND=postgres` pass, so that the
    longest of them do not all land in one pass), and skip (or, where required, fail) without either
    service."""
    postgres_pass = os.environ.get("TIDINGS_TEST_BACKEND") == "postgres"
    if postgres_pass and not in_postgres_pass:
        pytest.skip("runs once, in the default pass: it sets up PostgreSQL itself")
    if in_postgres_pass and not postgres_pass:
        pytest.skip("runs once, in the PostgreSQL pass (TIDINGS_TEST_BACKEND=postgres)")
    if not postgres_reachable():
        unavailable(NOT_REACHABLE)
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.RedisError:
        unavailable("Redis is not reachable on 127.0.0.1:6379")


def sqlite_backend(tmp_path: Path) -> Backend:
    return Backend("sqlite", f"sqlite:///{tmp_path / 'contract.db'}")


def postgres_backend() -> Iterator[Backend]:
    """A fresh schema while the test runs; dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex}"
    url = f"{PG_DSN}?schema={schema}"
    if not postgres_reachable():
        unavailable(NOT_REACHABLE)
    yield Backend("postgres", url)
    asyncio.run(drop_schema(schema))


async def drop_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield sqlite_backend(tmp_path)
    elif request.param == "postgres":
        yield from postgres_backend()
    else:
        raise ValueError(f"unknown backend {request.param!r}")
