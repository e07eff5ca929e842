"""`GET /metrics` and `--log-format json` as an operator meets them: a real `tidings serve` (JSON logs) with
a notify receiver, messages sent through the sandbox, then the scrape parsed as Prometheus does."""

import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.receiver import Receiver
from tests.support.server import BACKEND, TidingsServer, free_port

KEY = "metrics-key"
TOKEN = "metrics-admin-token"
SMSC_PASSWORD = "pw-k9Xz"
PROCESSES = 2 if BACKEND == "postgres" else 1  # API processes: SQLite allows one

CONFIG = """
[server]
admin_token = "{token}"

[sandbox]
delay_ms = 50

[notify]
timeout_s = 2
retry_interval_s = 0.2

[[services]]
id = "svc-m"
key = "{key}"
senderids = ["CONNCT"]
notify_url = "{notify}"

[[smsc]]
name = "carrier-down"
host = "127.0.0.1"
port = {closed}
system_id = "tidings"
password = "{password}"
window = 7
binds = 2
reconnect_max_s = 1
"""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: httpx.Client) -> Samples:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    wanted = frozenset(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and wanted <= ls]
    assert found, f"no {name} {labels} in {sorted(n for n, _ in samples if n.startswith(name))}"
    return sum(found)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[TidingsServer]:
    workdir = tmp_path_factory.mktemp("metrics")
    config = CONFIG.format(
        token=TOKEN, key=KEY, notify=receiver.url("/n"), closed=free_port(), password=SMSC_PASSWORD
    )
    # On PostgreSQL two API processes share the port (and the metrics).
    workers = ["--workers", str(PROCESSES)] if PROCESSES > 1 else []
    s = TidingsServer(workdir, config, ["--log-format", "json", *workers]).start()
    yield s
    s.close()


def send_sms(server: TidingsServer, *numbers: str) -> list[str]:
    return send_sms_with(server.client, *numbers)


def send_sms_with(client: httpx.Client, *numbers: str) -> list[str]:
    body = {
        "deliverychannel": "sms",
        "channels": {"sms": {"text": "metrics", "senderid": "CONNCT"}},
        "destination": [{"msisdn": list(numbers)}],
    }
    answer = client.post("/resources/v1/messaging", json=body, headers={"key": KEY}).json()["response"]
    assert all(r["code"] == "1001" for r in answer), answer
    return [r["transid"] for r in answer]


def test_messages_notifications_and_requests_are_counted_with_their_labels(
    server: TidingsServer, receiver: Receiver
):
    transids = send_sms(server, "+447700900101", "+447700900102", "+447700907203")
    finals = [
        server.wait_message(t, KEY, lambda v: v["status"] not in ("Queued", "Submitted")) for t in transids
    ]
    assert [v["status"] for v in finals] == ["Delivered", "Delivered", "Un-Delivered"]
    receiver.wait_count("/n", 6)  # Submitted and the final status of each
    refused = server.send({"deliverychannel": "sms"}, key=KEY).json()["response"]
    assert refused["code"] == "7003"

    receiver_label = receiver.url("/n").removesuffix("/n")
    sent = {"receiver": receiver_label, "result": "sent"}
    sms = {"channel": "sms", "service": "svc-m"}
    # The receiver sees a post before its answer is back and the result written; with several
    # processes, each adds its counts to the shared ones once a second: wait for both.
    m = scrape_until(
        server.url,
        lambda m: (
            value(m, "tidings_notifications_total", **sent) == 6
            and value(m, "tidings_notifications_pending", receiver=receiver_label) == 0
            and value(m, "tidings_messages_delivered_total", **sms) == 2
            and value(m, "tidings_messages_accepted_total", **sms) == 3
            and value(m, "tidings_connector_window", connector="carrier-down") == 14 * PROCESSES
        ),
    )
    assert value(m, "tidings_messages_accepted_total", **sms) == 3
    assert value(m, "tidings_messages_sent_total", **sms) == 3
    assert value(m, "tidings_messages_delivered_total", **sms) == 2
    assert value(m, "tidings_messages_failed_total", **sms, status="Un-Delivered") == 1
    assert value(m, "tidings_notifications_total", **sent) == 6
    assert value(m, "tidings_notifications_pending", receiver=receiver_label) == 0
    assert value(m, "tidings_notifications_in_flight", receiver=receiver_label) == 0

    # Latency per route template, never per path: the transids do not become labels.
    v1 = {"method": "POST", "route": "/resources/v1/messaging"}
    assert value(m, "tidings_http_request_duration_seconds_count", **v1) == 2
    assert value(m, "tidings_http_requests_total", **v1, status="200") == 2
    get = {"method": "GET", "route": "/v1/messages/{transid}"}
    assert value(m, "tidings_http_request_duration_seconds_count", **get) >= 3
    assert value(m, "tidings_http_request_duration_seconds_bucket", **get, le="+Inf") >= 3
    assert not any(t in str(labels) for (_, labels) in m for t in transids)

    for lane in "0123":
        assert value(m, "tidings_queue_depth", lane=lane) == 0
    assert value(m, "tidings_store_commit_seconds_count", backend=BACKEND) > 0
    assert value(m, "tidings_connector_up", connector="sandbox", kind="sandbox") == 1
    assert value(m, "tidings_connector_up", connector="carrier-down", kind="smpp") == 0
    assert value(m, "tidings_connector_window", connector="carrier-down") == 14 * PROCESSES
    # The binds' connection failures are the SMSC connector's last error; no provider asked us to wait.
    assert time.time() - 120 < value(
        m, "tidings_connector_last_error_timestamp_seconds", connector="carrier-down"
    )
    assert value(m, "tidings_connector_backoff_until_timestamp_seconds", connector="carrier-down") == 0
    assert value(m, "tidings_connector_attention", connector="sandbox") == 0
    started = [v for (n, ls), v in m.items() if n == "tidings_process_start_time_seconds"]
    assert len(started) == PROCESSES and all(time.time() - 120 < t <= time.time() for t in started)


def test_queue_depth_and_unmatched_requests(server: TidingsServer):
    # A message scheduled for later waits in its lane; a path no route takes is one label, not its own.
    body = {
        "channel": "sms",
        "from": "CONNCT",
        "to": [{"msisdn": ["+447700900103"]}],
        "content": {"text": "later"},
        "sendAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600)),
    }
    assert server.client.post("/v2/messages", json=body, headers={"key": KEY}).status_code == 201
    for path in ("/nothing/1", "/nothing/2"):
        assert server.client.get(path).status_code == 404
    unmatched = {"method": "GET", "route": "(unmatched)", "status": "404"}
    m = scrape_until(server.url, lambda m: value(m, "tidings_http_requests_total", **unmatched) == 2)
    assert sum(value(m, "tidings_queue_depth", lane=lane) for lane in "123") == 1


def test_json_log_lines_parse_and_carry_the_request_id(server: TidingsServer):
    answer = server.client.post(
        "/admin/v1/templates",
        json={"id": "logged", "service": "svc-m", "text": "Hi {{name}}"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code in (200, 201), answer.text
    request_id = answer.headers["request-id"]
    stderr = server.workdir / f"stderr.{server.starts}.txt"
    deadline = time.monotonic() + 5
    while request_id not in stderr.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [json.loads(line) for line in stderr.read_text().splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    ours = [line for line in lines if line.get("request_id") == request_id]
    assert ours and "logged" in ours[0]["message"] and ours[0]["logger"] == "tidings.admin"
    # Lines logged outside a request carry no request id; no secret is ever written.
    assert any("request_id" not in line for line in lines)
    text = stderr.read_text() + (server.workdir / f"stdout.{server.starts}.txt").read_text()
    for secret in (SMSC_PASSWORD, TOKEN, KEY):
        assert secret not in text


def scrape_until(url: str, done: Callable[[Samples], bool], timeout: float = 5.0) -> Samples:
    """Scrape (a new connection each time, so any process may answer) until `done` holds."""
    deadline = time.monotonic() + timeout
    while True:
        with httpx.Client(base_url=url, timeout=10) as client:
            m = scrape(client)
        if time.monotonic() > deadline or _holds(done, m):
            return m
        time.sleep(0.05)


def _holds(done: Callable[[Samples], bool], m: Samples) -> bool:
    try:
        return done(m)
    except AssertionError:  # a series not there yet
        return False


@pytest.mark.skipif(BACKEND != "postgres", reason="serve --workers needs PostgreSQL")
def test_several_api_processes_show_one_sum(server: TidingsServer):
    # Last in the module: it adds to the counts the tests above check.
    sms = {"channel": "sms", "service": "svc-m"}
    before = value(scrape_until(server.url, lambda m: True), "tidings_messages_accepted_total", **sms)
    for _ in range(6):  # a new connection each time: the kernel hands them to either process
        with httpx.Client(base_url=server.url, timeout=10) as client:
            send_sms_with(client, "+447700900104")
    total = before + 6
    scrape_until(server.url, lambda m: value(m, "tidings_messages_accepted_total", **sms) == total)
    seen, pids = [], set()
    for _ in range(6):
        with httpx.Client(base_url=server.url, timeout=10) as client:
            m = scrape(client)
        seen.append(value(m, "tidings_messages_accepted_total", **sms))
        pids |= {dict(ls)["pid"] for (n, ls) in m if n == "tidings_process_start_time_seconds"}
    assert seen == [total] * 6
    assert len(pids) == 2  # both processes' gauges, whichever answered
