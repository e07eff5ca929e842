"""WNS provider beyond its table cases (those run through the push connector in the shared runner:
tests/connectors/cases_wns.py): the access token (one request for concurrent sends, renewed early, and
once on 401), refused credentials, a service that is not there, TTL and priority on the pure payload, the
channel URI rules and check(). The stand-in is tests/standins/wns.py: TLS on loopback, HTTP/1.1, the real
token exchange. No log record under `tidings` and no SendError description may hold a secret."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.standins.wns import WnsStandIn
from tidings.channels.base import FailureKind, SendError
from tidings.channels.push.provider import PushSend
from tidings.channels.push.settings import WnsSettings
from tidings.channels.push.wns import WnsProvider, channel_uri_problem, check, payload
from tidings.schema.push import PushContent, WindowsExtras, WindowsPush
from tidings.specs import push_codes

T = TypeVar("T")
F = FailureKind


def windows(text: list[str], **extras: Any) -> PushContent:
    return PushContent(windows=WindowsPush(text=text, extras=WindowsExtras(**extras) if extras else None))


HELLO = windows(["Hello"])


# ---------------------------------------------------------------------------------------------- harness


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def logs() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("tidings")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


@asynccontextmanager
async def wns(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[WnsStandIn, WnsProvider]]:
    async with WnsStandIn(tmp_path, token_life=settings.pop("token_life", 3600.0)) as standin:
        provider = WnsProvider(standin.settings(**settings))
        try:
            yield standin, provider
        finally:
            await provider.close()


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(scenario(), 20)

    return asyncio.run(bounded())


async def failure(call: Awaitable[object]) -> SendError:
    with pytest.raises(SendError) as caught:
        await call
    return caught.value


def no_secrets(standin: WnsStandIn, logs: Records, errors: list[SendError]) -> None:
    texts = logs.lines + [e.description for e in errors]
    for secret in standin.secrets:
        assert not any(secret in text for text in texts), "a secret leaked into a log line or error"


def push(standin: WnsStandIn, content: PushContent, channel: str = "dev1", **kw: Any) -> PushSend:
    return PushSend("m1", "windows", standin.channel(channel), content, **kw)


# ------------------------------------------------------------------------------------------------ payload


def test_ttl_is_the_shorter_of_time_to_live_and_expiry() -> None:
    def ttl(expiry: float | None, time_to_live: int | None) -> str | None:
        content = windows(["x"], time_to_live=time_to_live) if time_to_live else HELLO
        item = PushSend("m1", "windows", "https://a.notify.windows.com/", content, expiry=expiry)
        return payload(item, now=1000.0).headers.get("X-WNS-TTL")

    assert ttl(None, None) is None
    assert ttl(None, 3600) == "3600"
    assert ttl(1120.5, 3600) == "120"
    assert ttl(5000.0, 60) == "60"
    assert ttl(1000.4, None) == "1"  # less than a second left still goes, for one second


def test_priority_high_and_low_are_sent_normal_is_left_to_wns() -> None:
    # The v1 priority does not reach the push connector yet, so the table cases cannot show it.
    def priority(value: int) -> str | None:
        item = PushSend("m1", "windows", "https://a.notify.windows.com/", HELLO, priority=value)
        return payload(item, now=1000.0).headers.get("X-WNS-PRIORITY")

    assert [priority(p) for p in (1, 2, 3)] == ["1", None, "3"]


# ------------------------------------------------------------------------------------------------ tokens


def test_token_request_and_caching(tmp_path: Path, logs: Records) -> None:
    async def scenario() -> None:
        async with wns(tmp_path) as (standin, provider):
            await asyncio.gather(*(provider.send(push(standin, HELLO)) for _ in range(20)))
            await provider.send(push(standin, HELLO))
            [asked] = standin.token_requests  # one fetch for 21 sends, 20 of them concurrent
            assert asked.form == {
                "grant_type": "client_credentials",
                "client_id": standin.CLIENT_ID,
                "client_secret": standin.CLIENT_SECRET,
                "scope": "notify.windows.com",
            }
            assert len(standin.received) == 21 and {r.status for r in standin.received} == {200}
            no_secrets(standin, logs, [])

    run(scenario)


def test_expired_token_is_renewed_once_and_the_send_retried(tmp_path: Path, logs: Records) -> None:
    async def scenario() -> None:
        async with wns(tmp_path) as (standin, provider):
            await provider.send(push(standin, HELLO))
            standin.revoke_tokens()  # WNS now answers 401 "Token expired" to the cached token
            got = await provider.send(push(standin, HELLO))
            assert [r.status for r in standin.received] == [200, 401, 200]
            assert got == standin.received[-1].msg_id
            assert len(standin.token_requests) == 2
            first, second = standin.issued
            assert standin.received[1].headers["authorization"] == f"Bearer {first}"
            assert standin.received[2].headers["authorization"] == f"Bearer {second}"
            no_secrets(standin, logs, [])

    run(scenario)


def test_token_refused_twice_is_an_auth_error(tmp_path: Path, logs: Records) -> None:
    async def scenario() -> None:
        async with wns(tmp_path) as (standin, provider):
            standin.expire_next(2)
            err = await failure(provider.send(push(standin, HELLO)))
            assert (err.kind, err.code) == (F.CONFIG, push_codes.AUTH_ERROR)
            assert [r.status for r in standin.received] == [401, 401]
            assert len(standin.token_requests) == 2
            assert any("refused" in line for line in logs.lines)
            no_secrets(standin, logs, [err])

    run(scenario)


def test_token_renewed_before_it_expires(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with wns(tmp_path, token_life=0.3) as (standin, provider):
            await provider.send(push(standin, HELLO))
            await asyncio.sleep(0.3)
            await provider.send(push(standin, HELLO))
            assert [r.status for r in standin.received] == [200, 200]  # never sent an expired token
            assert len(standin.token_requests) == 2

    run(scenario)


def test_refused_credentials(tmp_path: Path, logs: Records) -> None:
    async def scenario() -> None:
        async with wns(tmp_path, client_secret="wrong-secret-value-123") as (standin, provider):
            err = await failure(provider.send(push(standin, HELLO)))
            assert (err.kind, err.code) == (F.CONFIG, push_codes.AUTH_ERROR)
            assert "invalid_client" in err.description
            again = await failure(provider.send(push(standin, HELLO)))
            assert again.code == push_codes.AUTH_ERROR
            assert len(standin.token_requests) == 1  # a refusal is held briefly, not retried per send
            assert standin.received == []
            texts = [*logs.lines, err.description]
            assert not any("wrong-secret-value-123" in t for t in texts)
            assert sum("refused" in line for line in logs.lines) == 1

    run(scenario)


def test_token_endpoint_unavailable(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with wns(tmp_path) as (standin, provider):
            standin.fail_tokens(503, {"error": "temporarily_unavailable"})
            err = await failure(provider.send(push(standin, HELLO)))
            assert (err.kind, err.code) == (F.UNAVAILABLE, push_codes.SERVICE_UNAVAILABLE)
            assert standin.received == []

    run(scenario)


def test_nothing_listening_is_a_connection_failure(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with wns(tmp_path) as (standin, _):
            pass
        closed = WnsProvider(standin.settings())  # the stand-in has stopped: nothing listens
        try:
            err = await failure(closed.send(push(standin, HELLO)))
            assert err.kind is F.CONNECTION
        finally:
            await closed.close()

    run(scenario)


# ------------------------------------------------------------------------------------ URIs and config


SETTINGS = WnsSettings(
    client_id="ms-app://s-1-15-2-1", client_secret="s", allow_hosts=["127.0.0.1", "*.wns.test"]
)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://db5p.notify.windows.com/?token=AwYAAAD", True),
        ("https://wns2-by3p.notify.windows.com/w/?token=BQYAAA", True),
        ("https://db5p.notify.windows.com:443/?token=A", True),
        ("https://db5p.notify.windows.com:8443/?token=A", False),
        ("http://db5p.notify.windows.com/?token=A", False),
        ("https://notify.windows.com/?token=A", False),
        ("https://evilnotify.windows.com/", False),
        ("https://notify.windows.com.evil.io/", False),
        ("https://user:pw@db5p.notify.windows.com/", False),
        ("https://127.0.0.1:8443/w/1", True),
        ("https://a.b.wns.test/w/1", True),
        ("https://wns.test/w/1", False),
        ("https://127.0.0.2/w/1", False),
        ("not a url", False),
        ("", False),
    ],
)
def test_channel_uri_problem(url: str, ok: bool) -> None:
    problem = channel_uri_problem(url, SETTINGS)
    assert (problem is None) == ok, problem


def test_check(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    assert check(SETTINGS, tmp_path) == []
    ca.write_text("not a certificate\n")
    bad = WnsSettings(
        client_id="123",
        client_secret="",
        token_url="ftp://login",
        allow_hosts=["ok.example", "bad host", "*."],
        ca_file="ca.pem",
    )
    problems = check(bad, tmp_path)
    assert len(problems) == 6, problems
    assert any("ca.pem" in p and "PEM" in p for p in problems)
    missing = check(WnsSettings(client_id="ms-app://x", client_secret="s", ca_file="nope.pem"), tmp_path)
    assert len(missing) == 1 and "does not exist" in missing[0]
