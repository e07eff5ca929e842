"""The process layout as an operator meets it: `serve --workers N --api-only` and `tidings worker` on
PostgreSQL, one rate limit shared through Redis, the worker's own /metrics (`--metrics-port`), the
console's health page of an API-only process (the worker's connectors, then none once it stops), a
killed API process replaced by its parent, and clear refusals when the layout needs PostgreSQL but the
database is SQLite."""

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import sms
from tests.support.backends import PG_DSN, drop_schema, require_postgres_and_redis
from tests.support.server import TidingsServer, free_port, wait_healthy
from tests.support.smsc import KEY_SMPP, SimulatorProcess, fresh_msisdn, tidings_config

KEY = "key-procs-0001"


def tidings(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidings", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    "args",
    [["serve", "--workers", "2"], ["serve", "--api-only"], ["worker"]],
    ids=["workers", "api-only", "worker"],
)
def test_the_multi_process_layout_refuses_sqlite(tmp_path: Path, args: list[str]):
    done = tidings(*args, "--db", f"sqlite:///{tmp_path}/t.db")
    assert done.returncode == 1 and "PostgreSQL" in done.stderr and "Traceback" not in done.stderr, done


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]], str]]:
    """The API (`serve --workers 2 --api-only`), a `tidings worker` with its own /metrics, their URLs."""
    require_postgres_and_redis()
    schema = f"t_{uuid.uuid4().hex}"
    port, metrics_port = free_port(), free_port()
    config = tmp_path / "tidings.toml"
    config.write_text(
        f"""
[server]
port = {port}
database = "{PG_DSN}?schema={schema}"

[redis]
url = "redis://127.0.0.1:6379/0"
prefix = "{schema}:"

[[services]]
id = "svc-p"
key = "{KEY}"
tps = 2
senderids = ["CONNCT"]
"""
    )
    procs: list[subprocess.Popen[bytes]] = []
    out = open(tmp_path / "api.log", "wb")  # noqa: SIM115
    procs.append(
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tidings",
                "serve",
                "--config",
                str(config),
                "--workers",
                "2",
                "--api-only",
            ],
            stdout=out,
            stderr=out,
        )
    )
    procs.append(
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tidings",
                "worker",
                "--config",
                str(config),
                "--metrics-port",
                str(metrics_port),
            ],
            stdout=out,
            stderr=out,
        )
    )
    out.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "serving http://" not in (tmp_path / "api.log").read_text():
        time.sleep(0.1)  # the banner: the first API process is listening
    while time.monotonic() < deadline and len(children(procs[0].pid)) < 2:
        time.sleep(0.1)
    try:
        yield url, procs, f"http://127.0.0.1:{metrics_port}/metrics"
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(30) for p in procs]
        asyncio.run(drop_schema(schema))
        log = (tmp_path / "api.log").read_text()
        assert codes == [0, 0], log
        assert log.count("serving http://") == 1, "the banner is printed once, not once per process"


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_api_processes_share_one_rate_limit_and_a_worker_delivers(
    cluster: tuple[str, list[subprocess.Popen[bytes]], str],
):
    url, procs, worker_metrics = cluster
    assert len(children(procs[0].pid)) == 2

    # No keep-alive: every request is a new connection, so the kernel spreads them over both processes.
    fresh = httpx.Client(base_url=url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0))

    def send(i: int) -> str:
        answer = fresh.post("/resources/v1/messaging", json=sms([f"+44770090{i:04d}"]), headers={"key": KEY})
        items = answer.json()["response"]
        return str(items[0]["code"] if isinstance(items, list) else items["code"])

    with ThreadPoolExecutor(8) as pool:
        started = time.monotonic()
        codes = list(pool.map(send, range(8)))
        elapsed = time.monotonic() - started
    fresh.close()
    # tps 2 holds 3 tokens and refills 2 a second; each request takes 1. One bucket for both processes
    # lets 3 + 2 x elapsed requests through; a bucket each would let 6 or more.
    allowed = int(3 + 2 * elapsed)
    assert elapsed < 1.4, f"too slow to tell one bucket from two ({elapsed:.2f} s)"
    assert 3 <= codes.count("1001") <= allowed and codes.count("7020") >= 8 - allowed, (codes, elapsed)
    with httpx.Client(base_url=url, timeout=10) as client:
        time.sleep(1.3)
        again = client.post(
            "/resources/v1/messaging", json=sms(["+447700900999"]), headers={"key": KEY}
        ).json()
        assert again["response"][0]["code"] == "1001", "the bucket refills"
        transid = again["response"][0]["transid"]
        deadline = time.monotonic() + 15
        status = ""
        while time.monotonic() < deadline and status != "Delivered":
            status = client.get(f"/v1/messages/{transid}", headers={"key": KEY}).json()["status"]
            time.sleep(0.1)
        assert status == "Delivered", "the worker process sent it"

        # The worker's own /metrics (--metrics-port) counts what it sent, by channel and service.
        sms_of = {"channel": "sms", "service": "svc-p"}
        accepted = codes.count("1001") + 1
        deadline = time.monotonic() + 10
        while True:
            answer = httpx.get(worker_metrics, timeout=5)
            samples = {
                (s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(answer.text)
                for s in family.samples
            }
            sent = samples.get(("tidings_messages_sent_total", frozenset(sms_of.items())), 0)
            if sent == accepted or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
        assert sent == accepted, answer.text
        assert samples[("tidings_messages_delivered_total", frozenset(sms_of.items()))] >= 1
        started = samples[("tidings_process_start_time_seconds", frozenset({("role", "worker")}))]
        assert time.time() - 120 < started <= time.time()
        # Accepting is the API processes' work: the worker counts none.
        assert ("tidings_messages_accepted_total", frozenset(sms_of.items())) not in samples

        # An --api-only process runs no connector: its health page shows the worker's, as the worker
        # published them (host:pid, role, state); once the worker stops, that no process runs them.
        form = client.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf, form.text
        signed = client.post("/console/login", data={"csrf": csrf.group(1), "key": KEY})
        assert signed.status_code == 303, signed.text
        health = client.get("/console/health").text
        worker = f"{socket.gethostname()}:{procs[1].pid}"
        group = re.search(
            rf"<tbody data-process='{re.escape(worker)}' data-role='worker'>(.*?)</tbody>", health
        )
        assert group, health
        assert re.match(rf"<tr class='process'><th [^>]+>{re.escape(worker)} \(worker\), started ", group[1])
        sandbox = (
            "<tr data-connector='sandbox' data-state='up'><td>sandbox</td><td>sandbox</td><td>email, sms</td>"
        )
        assert sandbox in group[1], group[1]
        assert re.search(r"Answered by [^ ]+:\d+ \(api\)\.", health) and "not run by" not in health
        procs[1].send_signal(signal.SIGTERM)
        assert procs[1].wait(15) == 0
        health = client.get("/console/health").text
        assert f"data-process='{worker}'" not in health, "a worker that stops takes its rows with it"
        assert (
            "<tr><td colspan='3'>sms → sandbox</td><td colspan='5'>not run by any process</td></tr>" in health
        )


def test_a_killed_api_process_is_replaced(cluster: tuple[str, list[subprocess.Popen[bytes]], str]):
    url, procs, _ = cluster
    before = children(procs[0].pid)
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        now = children(procs[0].pid)
        if len(now) == 2 and before[0] not in now:
            break
        time.sleep(0.1)
    assert len(now) == 2 and before[0] not in now and before[1] in now, (before, now)
    for _ in range(6):  # both processes answer, whichever gets the connection
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200


def test_an_unreachable_redis_costs_no_message(tmp_path: Path):
    # Nothing listens on this port: rate limits fall back to the process's own bucket and wake-ups to
    # polling, each said once in the log, and sending goes on.
    config = f"""
[redis]
url = "redis://127.0.0.1:{free_port()}/0"

[sandbox]
delay_ms = 20

[[services]]
id = "svc-r"
key = "{KEY}"
senderids = ["CONNCT"]
"""
    server = TidingsServer(tmp_path, config).start()
    try:
        answer = server.send(sms(["+447700900123"]), KEY).json()["response"]
        assert answer[0]["code"] == "1001", answer
        view = server.wait_message(answer[0]["transid"], KEY, lambda v: v["status"] == "Delivered", 10)
        assert view["status"] == "Delivered"
    finally:
        assert server.stop() == 0
        server.close()
    assert "rate limits are per process until it is back" in server.output()


def test_two_workers_on_one_smsc_submit_each_message_once(tmp_path: Path):
    # Two workers claim from one queue and each binds to the SMSC: every message goes out once, and
    # every receipt, whichever worker's bind it arrives on, finds its message.
    require_postgres_and_redis()
    schema = f"t_{uuid.uuid4().hex}"
    simulator = SimulatorProcess(tmp_path, dlr_delay_ms=50).start()
    port = free_port()
    config = tmp_path / "tidings.toml"
    config.write_text(
        f'[server]\nport = {port}\ndatabase = "{PG_DSN}?schema={schema}"\n'
        + tidings_config(simulator.port, window=32)
    )
    log = open(tmp_path / "procs.log", "wb")  # noqa: SIM115
    cmd = [sys.executable, "-m", "tidings"]
    procs = [subprocess.Popen([*cmd, "serve", "--api-only", "--workers", "2", "--config", str(config)],
                              stdout=log, stderr=log)]  # fmt: skip
    procs += [
        subprocess.Popen([*cmd, "worker", "--config", str(config)], stdout=log, stderr=log) for _ in (1, 2)
    ]
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        simulator.wait_bound(2, timeout=30)
        wait_healthy(url)
        addresses = [fresh_msisdn() for _ in range(1000)]
        transids: list[str] = []
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(0, len(addresses), 100):
                body = sms(addresses[i : i + 100])
                answer = client.post("/resources/v1/messaging", json=body, headers={"key": KEY_SMPP}).json()
                transids += [item["transid"] for item in answer["response"]]
            pending = set(transids)
            deadline = time.monotonic() + 60
            while pending and time.monotonic() < deadline:
                pending = {
                    t
                    for t in pending
                    if client.get(f"/v1/messages/{t}", headers={"key": KEY_SMPP}).json()["status"]
                    != "Delivered"
                }
                time.sleep(0.2)
        assert not pending, f"{len(pending)} of {len(transids)} messages were not delivered"
        submitted = [s["destination_addr"] for s in simulator.submits()]
        assert len(submitted) == len(transids) and len(set(submitted)) == len(transids), "each sent once"
        assert len(simulator.stats()["bound"]) >= 2, "both workers are bound"
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(30) for p in procs]
        simulator.close()
        asyncio.run(drop_schema(schema))
    assert codes == [0, 0, 0], (tmp_path / "procs.log").read_text()
