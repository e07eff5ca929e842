"""Crash safety under load: at least 10,000 messages are sent while a random process is killed with
SIGKILL every two seconds (and started again). Afterwards every accepted message has exactly one final
status, and every final status reached the notify URL at least once, repeats carrying the same
X-Tidings-Event-Id.

On PostgreSQL: 2 API processes (`serve --workers 2 --api-only`, whose parent restarts a killed one), 2
`tidings worker` processes, and Redis for rate limits and wake-ups; every process then stops on SIGTERM
within a few seconds. Once more, shorter, on a CPU-starved machine: a process of the test's own burns a
core meanwhile (a worker once stalled under load on a busy machine, and ignored SIGTERM). On SQLite: one
`tidings serve`."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.backends import PG_DSN
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer, free_port, wait_healthy

MESSAGES = 10_000
STARVED_MESSAGES = 8_000  # the CPU-starved run: shorter (the whole file must stay quick), still 4+ kills
STOP_WITHIN_S = 10.0  # a process that has not stopped on SIGTERM by then is killed, and that fails
BURN_AT_MOST_S = 300.0
BATCH = 100  # addresses per request
SENDERS = 2
KILL_EVERY_S = 2.0
DRAIN_TIMEOUT_S = 150.0
FINAL = ("Delivered", "Failed", "Un-Delivered", "Expired")
KEY = "key-crash-0001"

pytestmark = pytest.mark.timeout(420)


def config(receiver: Receiver, path: str, port: int, extra: str = "") -> str:
    return f"""
[server]
port = {port}

[notify]
timeout_s = 5
retries = 5
retry_interval_s = 0.5

[sandbox]
delay_ms = 100
{extra}
[[services]]
id = "svc-crash"
key = "{KEY}"
tps = 100000
senderids = ["CONNCT"]
notify_url = "{receiver.url(path)}"
"""


def addresses(batch: int) -> list[str]:
    # Distinct numbers the sandbox delivers (none ends in a documented failure code 7xxx).
    return [f"+4477009{(batch * BATCH + i) % 60_000:05d}" for i in range(BATCH)]


class Load:
    """Send MESSAGES in batches from SENDERS threads; a request cut off by a kill is sent again (as new
    messages: a client cannot know whether the cut-off one was accepted)."""

    def __init__(self, url: str, messages: int = MESSAGES) -> None:
        self.url = url
        self.messages = messages
        self.accepted: list[str] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._next = 0

    def run(self) -> None:
        threads = [threading.Thread(target=self._sender) for _ in range(SENDERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _sender(self) -> None:
        deadline = time.monotonic() + 240
        with httpx.Client(base_url=self.url, timeout=15) as client:
            while time.monotonic() < deadline:
                with self._lock:
                    if len(self.accepted) >= self.messages:
                        return
                    batch = self._next
                    self._next += 1
                body = {
                    "deliverychannel": "sms",
                    "channels": {"sms": {"text": f"crash {batch}", "senderid": "CONNCT"}},
                    "destination": [{"msisdn": addresses(batch)}],
                }
                try:
                    answer = client.post("/resources/v1/messaging", json=body, headers={"key": KEY}).json()
                except (httpx.TransportError, ValueError):
                    time.sleep(0.1)  # the process answering was killed; another (or its successor) will
                    continue
                items = answer.get("response")
                if isinstance(items, list):
                    with self._lock:
                        self.accepted += [i["transid"] for i in items if i["code"] == "1001"]
                else:
                    with self._lock:
                        self.refused += 1
                time.sleep(0.2)  # spread the load over several kills


def check(rows: list[tuple[Any, ...]], events: list[tuple[Any, ...]], receiver: Receiver, path: str,
          accepted: list[str]) -> None:  # fmt: skip
    """The assertions both backends share, on the database's rows and what the receiver saw."""
    status = {r[0]: r[1] for r in rows}
    missing = [t for t in accepted if t not in status]
    assert not missing, f"{len(missing)} accepted messages are not in the database"
    unfinished = [t for t, s in status.items() if s not in FINAL]
    assert not unfinished, f"{len(unfinished)} messages never reached a final status"
    finals: dict[str, int] = defaultdict(int)
    for transid, word in events:
        if word in FINAL:
            finals[transid] += 1
    twice = [t for t, n in finals.items() if n != 1]
    assert not twice, f"{len(twice)} messages have more than one final status"
    notified: dict[str, set[str]] = defaultdict(set)
    for hit in receiver.at(path):
        if hit.info["deliveryStatus"] in FINAL:
            notified[hit.transid].add(hit.headers["x-tidings-event-id"])
    silent = [t for t in status if not notified.get(t)]
    assert not silent, f"{len(silent)} final statuses never reached the notify URL"
    split = [t for t, ids in notified.items() if len(ids) != 1]
    assert not split, f"{len(split)} repeated final notifications carry different event ids"


def wait_drained(read: Any, receiver: Receiver, path: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        rows = read("SELECT transid, status FROM messages")
        done = {r[0] for r in rows if r[1] in FINAL}
        told = {h.transid for h in receiver.at(path) if h.info["deliveryStatus"] in FINAL}
        if len(done) == len(rows) and done <= told:
            return
        time.sleep(1.0)


def killer(stop: threading.Event, victims: Any, restart: Any, log: list[str]) -> None:
    rng = random.Random(1234)
    while not stop.wait(KILL_EVERY_S):
        name, pid = rng.choice(victims())
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        log.append(f"{time.strftime('%X')} killed {name} {pid}")
        restart(name)


@pytest.mark.sqlite_only
def test_sqlite_kill_9_every_two_seconds_loses_nothing(tmp_path: Path, receiver: Receiver):
    path = f"/crash/{uuid.uuid4().hex[:8]}"
    server = TidingsServer(tmp_path, config(receiver, path, free_port()), ["--log-level", "warning"])
    server.start()
    kills: list[str] = []
    lock = threading.Lock()

    def restart(name: str) -> None:
        with lock:
            assert server.proc is not None
            server.proc.wait(10)
            server.start(timeout=30)

    stop = threading.Event()
    assert server.proc is not None
    chaos = threading.Thread(target=killer, args=(stop, lambda: [("serve", server.proc.pid)], restart, kills))
    chaos.start()
    try:
        load = Load(server.url)
        load.run()
    finally:
        stop.set()
        chaos.join()
    try:
        assert len(load.accepted) >= MESSAGES and len(kills) >= 3, (len(load.accepted), kills)
        wait_drained(server.rows, receiver, path, time.monotonic() + DRAIN_TIMEOUT_S)
        rows = server.rows("SELECT transid, status FROM messages")
        events = server.rows("SELECT transid, status FROM events")
        check(rows, events, receiver, path, load.accepted)
        print(f"\n{len(load.accepted)} accepted, {len(rows)} stored, {len(kills)} kills: {kills}")
    finally:
        server.close()


class Cluster:
    """2 API processes under one `serve --workers 2 --api-only` parent, and 2 `tidings worker`s."""

    def __init__(self, workdir: Path, config_text: str, db: str) -> None:
        self.workdir = workdir
        self.config = workdir / "tidings.toml"
        self.config.write_text(config_text)
        self.db = db
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts = 0

    def _spawn(self, name: str, *args: str) -> None:
        self.starts += 1
        log = open(self.workdir / f"{name}.{self.starts}.log", "wb")  # noqa: SIM115
        cmd = [sys.executable, "-m", "tidings", *args, "--config", str(self.config), "--db", self.db]
        self.procs[name] = subprocess.Popen([*cmd, "--log-level", "warning"], stdout=log, stderr=log)
        log.close()

    def start(self) -> None:
        self._spawn("api", "serve", "--workers", "2", "--api-only")
        for name in ("worker-1", "worker-2"):
            self._spawn(name, "worker")

    def api_children(self) -> list[int]:
        parent = self.procs["api"].pid
        try:
            text = Path(f"/proc/{parent}/task/{parent}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def victims(self) -> list[tuple[str, int]]:
        found = [("api-child", pid) for pid in self.api_children()]
        return found + [(name, self.procs[name].pid) for name in ("worker-1", "worker-2")]

    def restart(self, name: str) -> None:
        if name.startswith("worker"):
            self.procs[name].wait(10)
            self._spawn(name, "worker")
        # A killed API process is started again by its parent.

    def stop(self) -> dict[str, str]:
        """SIGTERM to every process; how each one ended (killed when it ignored SIGTERM)."""
        started = time.monotonic()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        ended: dict[str, str] = {}
        for name, proc in self.procs.items():
            try:
                code = proc.wait(max(0.1, started + STOP_WITHIN_S - time.monotonic()))
                ended[name] = f"exit {code} after {time.monotonic() - started:.1f} s"
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
                ended[name] = f"killed: SIGTERM ignored for {STOP_WITHIN_S:g} s"
        return ended

    def output(self) -> str:
        return "".join(
            f"--- {f.name}\n{f.read_text(errors='replace')}" for f in sorted(self.workdir.glob("*.log"))
        )


class BurningACore:
    """Another process that keeps one core busy: a machine where Tidings gets less CPU than it wants.
    Ended by its PID; it ends by itself after BURN_AT_MOST_S in any case."""

    def __enter__(self) -> "BurningACore":
        burn = f"import time\nend = time.monotonic() + {BURN_AT_MOST_S}\nwhile time.monotonic() < end: pass"
        self.proc = subprocess.Popen([sys.executable, "-c", burn])
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.mark.postgres_pass  # the default pass is the longer one
def test_postgres_two_api_two_workers_killed_at_random_lose_nothing(
    tmp_path: Path, receiver: Receiver, pg_schema: str
):
    cluster_under_kills(tmp_path, receiver, pg_schema, MESSAGES)


@pytest.mark.postgres_pass
def test_postgres_cluster_killed_at_random_on_a_cpu_starved_machine_loses_nothing_and_stops_on_sigterm(
    tmp_path: Path, receiver: Receiver, pg_schema: str
):
    with BurningACore():
        cluster_under_kills(tmp_path, receiver, pg_schema, STARVED_MESSAGES)


def cluster_under_kills(tmp_path: Path, receiver: Receiver, pg_schema: str, messages: int) -> None:
    path = f"/crash/{uuid.uuid4().hex[:8]}"
    port = free_port()
    redis_table = f'\n[redis]\nurl = "redis://127.0.0.1:6379/0"\nprefix = "{pg_schema}:"\n'
    cluster = Cluster(tmp_path, config(receiver, path, port, redis_table), f"{PG_DSN}?schema={pg_schema}")
    cluster.start()
    reader = TidingsServer(tmp_path / "reader", None)  # only for its database helper, never started
    reader.schema = pg_schema
    url = f"http://127.0.0.1:{port}"
    kills: list[str] = []
    ended: dict[str, str] = {}
    try:
        wait_healthy(url)
        stop = threading.Event()
        chaos = threading.Thread(target=killer, args=(stop, cluster.victims, cluster.restart, kills))
        chaos.start()
        try:
            load = Load(url, messages)
            load.run()
        finally:
            stop.set()
            chaos.join()
        assert len(load.accepted) >= messages and len(kills) >= 3, (len(load.accepted), kills)
        wait_drained(reader.rows, receiver, path, time.monotonic() + DRAIN_TIMEOUT_S)
        rows = reader.rows("SELECT transid, status FROM messages")
        events = reader.rows("SELECT transid, status FROM events")
        check(rows, events, receiver, path, load.accepted)
        ended = cluster.stop()
        assert all(how.startswith("exit 0") for how in ended.values()), ended
        print(f"\n{len(load.accepted)} accepted, {len(rows)} stored, {len(kills)} kills: {kills}; {ended}")
    except BaseException:
        print("\n".join(kills))
        print(ended)
        print(cluster.output()[-20_000:])
        raise
    finally:
        cluster.stop()
        reader.schema = None
        reader.client.close()
