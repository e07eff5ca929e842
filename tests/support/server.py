"""A real `tidings serve` process on a free loopback port, with its own config and database."""

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.backends import PG_DSN, drop_schema


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The backend every server in this test run uses: `TIDINGS_TEST_BACKEND=postgres` runs the whole suite
# on PostgreSQL, each server on a fresh schema of its own (tests marked sqlite_only are skipped there).
BACKEND = os.environ.get("TIDINGS_TEST_BACKEND", "sqlite")


def wait_healthy(url: str, timeout: float = 30.0) -> None:
    """Until `GET /healthz` answers 200 (processes this test started itself, not a TidingsServer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer /healthz within {timeout:g}s")


class TidingsServer:
    def __init__(self, workdir: Path, config_text: str | None, extra_args: list[str] | None = None) -> None:
        self.workdir = workdir
        self.schema: str | None = None
        if BACKEND == "postgres" and "--db" not in (extra_args or []):
            self.schema = f"t_{uuid.uuid4().hex}"
            extra_args = [*(extra_args or []), "--db", f"{PG_DSN}?schema={self.schema}"]
        self.port = free_port()
        self.config_path: Path | None = None
        if config_text is not None:
            self.config_path = workdir / "tidings.toml"
            self.config_path.write_text(config_text)
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.url, timeout=30)
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> "TidingsServer":
        self.starts += 1
        args = [sys.executable, "-m", "tidings", "serve", "--port", str(self.port), *self.extra_args]
        if self.config_path is not None:
            args += ["--config", str(self.config_path)]
        env = {k: v for k, v in os.environ.items() if k != "TIDINGS_CONFIG"}
        out = open(self.workdir / f"stdout.{self.starts}.txt", "wb")  # noqa: SIM115
        err = open(self.workdir / f"stderr.{self.starts}.txt", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(args, cwd=self.workdir, stdout=out, stderr=err, env=env)
        out.close()
        err.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tidings exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if self.client.get("/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"tidings did not answer /healthz within {timeout}s:\n{self.output()}")

    def wait_stdout(self, text: str, timeout: float = 10.0) -> str:
        """This start's stdout once it contains `text` (the banner prints just after the port opens)."""
        path = self.workdir / f"stdout.{self.starts}.txt"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = path.read_text(errors="replace")
            if text in out:
                return out
            time.sleep(0.02)
        raise AssertionError(f"{text!r} not printed within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        text = ""
        for f in sorted(self.workdir.glob("std*.txt")):
            text += f"--- {f.name}\n{f.read_text(errors='replace')}"
        return text

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the server's database directly (SQLite's `?` placeholders; rewritten for PostgreSQL)."""
        if self.schema is None:
            conn = sqlite3.connect(f"file:{self.workdir / 'tidings.db'}?mode=ro", uri=True, timeout=5)
            try:
                return conn.execute(query, args).fetchall()
            finally:
                conn.close()
        parts = query.split("?")
        numbered = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))
        return asyncio.run(_pg_rows(self.schema, numbered, args))

    def close(self) -> None:
        self.stop()
        self.client.close()
        if self.schema is not None:
            asyncio.run(drop_schema(self.schema))
            self.schema = None

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def message(self, transid: str, key: str) -> dict[str, Any]:
        return dict(self.client.get(f"/v1/messages/{transid}", headers={"key": key}).json())

    def wait_message(
        self, transid: str, key: str, until: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """GET /v1/messages/{transid} until `until` holds for the answer (or the time is up)."""
        deadline = time.monotonic() + timeout
        view = self.message(transid, key)
        while not until(view) and time.monotonic() < deadline:
            time.sleep(0.02)
            view = self.message(transid, key)
        return view

    def send(
        self, body: Any, key: str | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        h = dict(headers or {})
        if key is not None:
            h["key"] = key
        if isinstance(body, bytes | str):
            return self.client.post("/resources/v1/messaging", content=body, headers=h)
        return self.client.post("/resources/v1/messaging", json=body, headers=h)


async def _pg_rows(schema: str, query: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN, timeout=5, server_settings={"search_path": schema})
    try:
        return [tuple(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()
