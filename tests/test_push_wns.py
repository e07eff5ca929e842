"""WNS provider against the WNS stand-in (tests/standins/wns.py): TLS on loopback, HTTP/2, the real
token exchange. Each case names what is sent, how the stand-in answers, the exact request it must have
received (golden headers and body) and the id or the SendError (kind, code) the provider gives back.
No log record under `tidings` and no SendError description may hold a secret (client secret, token)."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.standins.wns import WnsStandIn
from tidings.channels.base import FailureKind, SendError
from tidings.channels.push.provider import PushSend
from tidings.channels.push.settings import WnsSettings
from tidings.channels.push.wns import PAYLOAD_LIMIT, WnsProvider, channel_uri_problem, check, payload
from tidings.schema.push import (
    Interactive,
    InteractiveAction,
    NotificationAction,
    PushContent,
    WindowsExtras,
    WindowsPush,
)
from tidings.specs import push_codes

T = TypeVar("T")
F = FailureKind


def windows(text: list[str], **extras: Any) -> PushContent:
    return PushContent(windows=WindowsPush(text=text, extras=WindowsExtras(**extras) if extras else None))


@dataclass(frozen=True)
class Err:
    kind: FailureKind
    code: str
    retry_after: float | None = None


@dataclass(frozen=True)
class Case:
    name: str
    content: PushContent
    channel: str = "dev1"  # the stand-in channel id (its scripted answer, see NAMED)
    headers: dict[str, str] = field(default_factory=dict)  # headers that must have arrived, exactly
    body: str | None = None  # the exact body that must have arrived
    error: Err | None = None  # None: success, the id is the stand-in's X-WNS-Msg-ID
    priority: int = 2
    absent: tuple[str, ...] = ("x-wns-ttl", "x-wns-priority")  # headers that must not have arrived


TOAST = {"x-wns-type": "wns/toast", "content-type": "text/xml", "x-wns-requestforstatus": "true"}
HELLO = windows(["Hello"])
HELLO_XML = (
    '<toast launch="{&quot;transid&quot;:&quot;m1&quot;}"><visual><binding template="ToastGeneric">'
    "<text>Hello</text></binding></visual></toast>"
)

CASES = [
    Case(
        "two lines, escaped",
        windows(["Sale & <50%> off", 'say "hi"']),
        headers=TOAST,
        body='<toast launch="{&quot;transid&quot;:&quot;m1&quot;}"><visual><binding template="ToastGeneric">'
        '<text>Sale &amp; &lt;50%&gt; off</text><text>say "hi"</text></binding></visual></toast>',
    ),
    Case(
        "lines past the third fold into it; action, customtags, pushref in launch; ttl; high priority",
        PushContent(
            pushref="r9",
            windows=WindowsPush(
                text=["a", "b", "c", "d"],
                extras=WindowsExtras(
                    time_to_live=600,
                    customtags={"k": "v", "n": {"x": [1, 2]}},
                    notificationaction=NotificationAction("DEEPLINK", "app://x?a=1&b=2"),
                ),
            ),
        ),
        priority=1,
        headers={**TOAST, "x-wns-ttl": "600", "x-wns-priority": "1"},
        absent=(),
        body='<toast launch="{&quot;transid&quot;:&quot;m1&quot;,&quot;notificationaction&quot;:'
        "{&quot;action&quot;:&quot;DEEPLINK&quot;,&quot;value&quot;:&quot;app://x?a=1&amp;b=2&quot;},"
        "&quot;customtags&quot;:{&quot;k&quot;:&quot;v&quot;,&quot;n&quot;:{&quot;x&quot;:[1,2]}},"
        '&quot;pushref&quot;:&quot;r9&quot;}"><visual><binding template="ToastGeneric">'
        "<text>a</text><text>b</text><text>c\nd</text></binding></visual></toast>",
    ),
    Case(
        "interactive for windows: buttons in pos order, labels from the category",
        PushContent(
            windows=WindowsPush(text=["Q?"]),
            interactive=Interactive(
                category="DOUBLE_YES_NO",
                device_types=["ios", "windows"],
                pushref="p1",
                actions=[
                    InteractiveAction(pos=2, action="SHARE", identifier="NO", value="54333"),
                    InteractiveAction(pos=1, action="OPEN_APP", identifier="YES"),
                ],
            ),
        ),
        headers=TOAST,
        body='<toast launch="{&quot;transid&quot;:&quot;m1&quot;,&quot;pushref&quot;:&quot;p1&quot;}">'
        '<visual><binding template="ToastGeneric"><text>Q?</text></binding></visual><actions>'
        '<action content="Yes" arguments="{&quot;transid&quot;:&quot;m1&quot;,&quot;pushref&quot;:'
        "&quot;p1&quot;,&quot;pos&quot;:1,&quot;action&quot;:&quot;OPEN_APP&quot;,&quot;identifier&quot;:"
        '&quot;YES&quot;}" activationType="foreground" />'
        '<action content="No" arguments="{&quot;transid&quot;:&quot;m1&quot;,&quot;pushref&quot;:'
        "&quot;p1&quot;,&quot;pos&quot;:2,&quot;action&quot;:&quot;SHARE&quot;,&quot;identifier&quot;:"
        '&quot;NO&quot;,&quot;value&quot;:&quot;54333&quot;}" activationType="foreground" />'
        "</actions></toast>",
    ),
    Case(
        "interactive dismiss and open-url buttons",
        PushContent(
            windows=WindowsPush(text=["Go"]),
            interactive=Interactive(
                category="DOUBLE_OK_LEARN_MORE",
                device_types=["windows"],
                actions=[
                    InteractiveAction(pos=1, action="DISMISS"),
                    InteractiveAction(pos=2, action="OPENURL", value="https://ex.com/?a=1&b=2"),
                ],
            ),
        ),
        headers=TOAST,
        body='<toast launch="{&quot;transid&quot;:&quot;m1&quot;}"><visual><binding template="ToastGeneric">'
        '<text>Go</text></binding></visual><actions><action content="" arguments="dismiss" '
        'activationType="system" /><action content="Learn more" arguments="https://ex.com/?a=1&amp;b=2" '
        'activationType="protocol" /></actions></toast>',
    ),
    Case(
        "reply category adds a text box",
        PushContent(
            windows=WindowsPush(text=["Reply?"]),
            interactive=Interactive(
                category="SINGLE_REPLY", device_types=["windows"], actions=[InteractiveAction(1, "OPEN_APP")]
            ),
        ),
        headers=TOAST,
        body='<toast launch="{&quot;transid&quot;:&quot;m1&quot;}"><visual><binding template="ToastGeneric">'
        '<text>Reply?</text></binding></visual><actions><input id="reply" type="text" />'
        '<action content="Reply" arguments="{&quot;transid&quot;:&quot;m1&quot;,&quot;pos&quot;:1,'
        '&quot;action&quot;:&quot;OPEN_APP&quot;}" activationType="foreground" hint-inputId="reply" />'
        "</actions></toast>",
    ),
    Case(
        "interactive for other devices only: no buttons",
        PushContent(
            windows=WindowsPush(text=["Hello"]),
            interactive=Interactive(
                category="SINGLE_OPEN", device_types=["android"], actions=[InteractiveAction(1, "OPEN_APP")]
            ),
        ),
        headers=TOAST,
        body=HELLO_XML,
    ),
    Case(
        "characters XML cannot carry are dropped",
        windows(["a\x00b\x1fc\u00e9"]),
        headers=TOAST,
        body='<toast launch="{&quot;transid&quot;:&quot;m1&quot;}"><visual><binding template="ToastGeneric">'
        "<text>abc\u00e9</text></binding></visual></toast>",
    ),
    Case(
        "customtags without text: a raw data notification, low priority",
        windows([], customtags={"sync": True}),
        priority=3,
        headers={
            "x-wns-type": "wns/raw",
            "content-type": "application/octet-stream",
            "x-wns-requestforstatus": "true",
            "x-wns-priority": "3",
        },
        absent=("x-wns-ttl",),
        body='{"transid":"m1","customtags":{"sync":true}}',
    ),
    # -- WNS's answers
    Case(
        "410 channel expired", HELLO, "expired", TOAST, HELLO_XML, Err(F.GONE, push_codes.TOKEN_UNREGISTERED)
    ),
    Case("404 unknown channel", HELLO, "unknown", TOAST, HELLO_XML, Err(F.GONE, push_codes.INVALID_TOKEN)),
    Case("406 throttled", HELLO, "flood", TOAST, HELLO_XML, Err(F.THROTTLED, push_codes.QUOTA_EXCEEDED, 30)),
    Case(
        "200 channelthrottled",
        HELLO,
        "busy",
        TOAST,
        HELLO_XML,
        Err(F.THROTTLED, push_codes.QUOTA_EXCEEDED, 12),
    ),
    Case("200 dropped", HELLO, "offline", TOAST, HELLO_XML, Err(F.REJECTED, push_codes.PLATFORM_FAILURE)),
    Case("413 too large", HELLO, "huge", TOAST, HELLO_XML, Err(F.INVALID, push_codes.PAYLOAD_TOO_LARGE)),
    Case("403 forbidden", HELLO, "forbidden", TOAST, HELLO_XML, Err(F.CONFIG, push_codes.AUTH_ERROR)),
    Case("503", HELLO, "boom", TOAST, HELLO_XML, Err(F.UNAVAILABLE, push_codes.SERVICE_UNAVAILABLE, 7)),
    Case("500", HELLO, "oops", TOAST, HELLO_XML, Err(F.UNAVAILABLE, push_codes.SERVICE_UNAVAILABLE)),
    Case("400 bad request", HELLO, "bad400", TOAST, HELLO_XML, Err(F.INVALID, push_codes.INVALID_PAYLOAD)),
]


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


# ------------------------------------------------------------------------------------------------ cases


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_wire(case: Case, tmp_path: Path, logs: Records) -> None:
    async def scenario() -> None:
        async with wns(tmp_path) as (standin, provider):
            standin.script("bad400", 400, {"X-WNS-Error-Description": "Invalid header"})
            item = push(standin, case.content, case.channel, priority=case.priority)
            errors: list[SendError] = []
            if case.error is None:
                got = await provider.send(item)
                assert got == standin.received[-1].msg_id
            else:
                err = await failure(provider.send(item))
                errors.append(err)
                assert (err.kind, err.code, err.retry_after) == (
                    case.error.kind,
                    case.error.code,
                    case.error.retry_after,
                )
                assert f"WNS {standin.received[-1].status}" in err.description
            [seen] = standin.received
            assert seen.http_version == "2"
            assert seen.headers["authorization"] == f"Bearer {standin.issued[0]}"
            assert {k: seen.headers.get(k) for k in case.headers} == case.headers
            assert not [h for h in case.absent if h in seen.headers]
            assert seen.text == case.body
            assert payload(item).body == seen.body  # the pure mapping is what went on the wire
            no_secrets(standin, logs, errors)

    run(scenario)


REFUSED_BEFORE_SENDING = [
    (
        "http channel",
        "http://db5.notify.windows.com/?token=x",
        HELLO,
        Err(F.INVALID, push_codes.INVALID_TOKEN),
    ),
    ("foreign host", "https://evil.example.com/w/x", HELLO, Err(F.INVALID, push_codes.INVALID_TOKEN)),
    (
        "lookalike host",
        "https://notify.windows.com.evil.io/x",
        HELLO,
        Err(F.INVALID, push_codes.INVALID_TOKEN),
    ),
    ("too large", None, windows(["x" * PAYLOAD_LIMIT]), Err(F.INVALID, push_codes.PAYLOAD_TOO_LARGE)),
    ("no windows block", None, PushContent(), Err(F.INVALID, push_codes.INVALID_PAYLOAD)),
    ("no text, no tags", None, windows(["", " "]), Err(F.INVALID, push_codes.INVALID_PAYLOAD)),
]


@pytest.mark.parametrize(
    ("name", "uri", "content", "error"), REFUSED_BEFORE_SENDING, ids=[c[0] for c in REFUSED_BEFORE_SENDING]
)
def test_refused_without_a_connection(
    name: str, uri: str | None, content: PushContent, error: Err, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with wns(tmp_path) as (standin, provider):
            item = PushSend("m1", "windows", uri or standin.channel("dev1"), content)
            err = await failure(provider.send(item))
            assert (err.kind, err.code) == (error.kind, error.code)
            assert standin.received == [] and standin.token_requests == []

    run(scenario)


def test_expired_message_is_not_sent(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with wns(tmp_path) as (standin, provider):
            item = push(standin, HELLO, expiry=1.0)
            err = await failure(provider.send(item))
            assert (err.kind, err.code) == (F.INVALID, push_codes.EXPIRED)
            assert standin.received == []

    run(scenario)


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


def test_unreachable_and_untrusted(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with wns(tmp_path, ca_file="") as (standin, provider):
            err = await failure(provider.send(push(standin, HELLO)))  # the stand-in's CA is not trusted
            assert err.kind is F.CONNECTION
            assert standin.token_requests == []
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
