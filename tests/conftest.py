import asyncio
import base64
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.support.backends import (
    NOT_REACHABLE,
    drop_schema,
    postgres_reachable,
    require_postgres_and_redis,
    services_required,
)
from tests.support.receiver import Receiver
from tests.support.server import BACKEND, TidingsServer

SECRET_A = b"alpha-secret-bytes-0123456789-abcdef"
SECRET_B = b"beta-secret-bytes-9876543210-fedcba"
KEY_A, KEY_B, KEY_OFF, KEY_SMALL = "key-alpha-0001", "key-beta-0002", "key-off-0003", "key-small-0004"
KEY_NOSENDER, KEY_RATE = "key-nosender-0005", "key-rate-0006"

# Everything that must never appear in a server's output.
SECRETS: list[str] = [
    KEY_A,
    KEY_B,
    KEY_OFF,
    KEY_SMALL,
    SECRET_A.decode(),
    SECRET_B.decode(),
    base64.b64encode(SECRET_A).decode(),
    base64.b64encode(SECRET_B).decode(),
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL run, skip what is SQLite's own; without PostgreSQL, skip the run (or, where
    TIDINGS_REQUIRE_SERVICES=1 as in CI, refuse to run it)."""
    if BACKEND != "postgres":
        return
    if not postgres_reachable():
        if services_required():
            raise pytest.UsageError(f"TIDINGS_TEST_BACKEND=postgres: {NOT_REACHABLE}")
        for item in items:
            item.add_marker(pytest.mark.skip(reason=NOT_REACHABLE))
    for item in items:
        if "sqlite_only" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="SQLite's own behaviour; this run is on PostgreSQL"))


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def make_jwt(secret: bytes, iss: str, **claims: Any) -> str:
    payload = {"iss": iss, "iat": int(time.time()), **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    with warnings.catch_warnings():  # short secrets are the tenant's choice; the server accepts them
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        token = jwt.encode(payload, secret, algorithm="HS256")
    SECRETS.append(token)
    return token


def config_text(receiver: Receiver, sandbox_delay_ms: int = 50, notify_timeout_s: float = 2) -> str:
    return f"""
[notify]
timeout_s = {notify_timeout_s}
retries = 3
retry_interval_s = 0.2

[sandbox]
delay_ms = {sandbox_delay_ms}

[[services]]
id = "svc-a"
name = "alpha"
key = "{KEY_A}"
secret = "{b64(SECRET_A)}"
senderids = ["CONNCT", "TIDINGS"]
notify_url = "{receiver.url("/default/a")}"

[[services]]
id = "svc-b"
name = "beta"
key = "{KEY_B}"
secret = "{b64(SECRET_B)}"
senderids = ["BETA"]

[[services]]
id = "svc-off"
key = "{KEY_OFF}"
secret = "c2VjcmV0LXNlY3JldA=="
active = false
senderids = ["CONNCT"]

[[services]]
id = "svc-small"
key = "{KEY_SMALL}"
tps = 5
senderids = ["CONNCT"]

[[services]]
id = "svc-nosender"
key = "{KEY_NOSENDER}"

[[services]]
id = "svc-rate"
key = "{KEY_RATE}"
tps = 1000
senderids = ["CONNCT"]

[[templates]]
id = "otp"
service = "alpha"
channel = "sms"
text = "Your code is {{{{code}}}}. It expires in {{{{minutes}}}} minutes."

[[smartlinks]]
linkid = 5
service = "alpha"
url = "https://example.com/app"
ios_url = "https://apps.apple.com/app/id0"
android_url = "https://play.google.com/store/apps/details?id=x"
expired_url = "https://example.com/expired"

[[contact_policy.groups]]
id = "marketing"
service = "alpha"
kind = "opt-in"

[[contact_policy.groups]]
id = "capped"
service = "alpha"
kind = "opt-out"
caps = {{ text = {{ day = 3, week = 10 }} }}
"""


def sms(msisdns: list[str], text: str = "hello", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "deliverychannel": "sms",
        "channels": {"sms": {"text": text, "senderid": "CONNCT"}},
        "destination": [{"msisdn": msisdns}],
    }
    body.update(extra)
    return body


def unique_path(name: str = "n") -> str:
    return f"/{name}/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pg_schema(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL schema name for a test that starts its own processes on it; dropped after.
    A test marked `postgres_pass` runs in the PostgreSQL pass instead of the default one."""
    require_postgres_and_redis(in_postgres_pass=request.node.get_closest_marker("postgres_pass") is not None)
    schema = f"t_{uuid.uuid4().hex}"
    yield schema
    asyncio.run(drop_schema(schema))


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def assert_no_secrets(server: TidingsServer) -> None:
    output = server.output()
    leaked = [s for s in SECRETS if s in output]
    assert not leaked, f"secrets in the server's output: {leaked}"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[TidingsServer]:
    workdir: Path = tmp_path_factory.mktemp("server")
    s = TidingsServer(workdir, config_text(receiver)).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()
    assert_no_secrets(s)
