"""`GET /readyz`: 200 `{"status":"ready"}` while the store (and Redis, when configured) answers, else 503
naming what failed, in JSON, without the Redis password anywhere."""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import TidingsServer, free_port

PASSWORD = "hunter2-readyz-secret"
CONFIG = """
[sandbox]
delay_ms = 20

[[services]]
id = "svc-r"
key = "key-readyz-0001"
senderids = ["CONNCT"]
"""


def start_redis(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen([*args, "--requirepass", PASSWORD], cwd=tmp_path, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("redis-server did not start")


def readyz(server: TidingsServer) -> httpx.Response:
    return server.client.get("/readyz", timeout=10)


def test_ready_without_redis(tmp_path: Path):
    server = TidingsServer(tmp_path, CONFIG).start()
    try:
        r = readyz(server)
        assert (r.status_code, r.json()) == (200, {"status": "ready"}), r.text
        assert r.headers["content-type"] == "application/json"
    finally:
        assert server.stop() == 0
        server.close()


def test_not_ready_while_redis_is_down_and_ready_once_it_answers(tmp_path: Path):
    redis_port = free_port()  # a Redis of this test's own, which nothing serves until it is started
    config = CONFIG + f'\n[redis]\nurl = "redis://:{PASSWORD}@127.0.0.1:{redis_port}/0"\nprefix = "readyz:"\n'
    server = TidingsServer(tmp_path, config).start()
    redis = None
    try:
        down = readyz(server)
        assert down.status_code == 503, down.text
        body = down.json()
        assert body["status"] == "not ready" and set(body["failed"]) == {"redis"}, body
        assert body["code"] == "503" and "redis" in body["message"] and body["description"]
        redis = start_redis(tmp_path, redis_port)
        up = readyz(server)
        assert (up.status_code, up.json()) == (200, {"status": "ready"}), up.text
        redis.kill()
        redis.wait(5)
        again = readyz(server)
        assert again.status_code == 503 and "redis" in again.json()["failed"], again.text
        assert PASSWORD not in down.text + again.text
    finally:
        if redis is not None and redis.poll() is None:
            redis.kill()
            redis.wait(5)
        assert server.stop() == 0
        server.close()
    assert PASSWORD not in server.output(), "the Redis password is never logged"
    assert "Traceback" not in server.output()
