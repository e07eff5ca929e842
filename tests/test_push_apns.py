"""The APNs provider against a stand-in that speaks APNs' wire format: HTTP/2 only, TLS with its own CA,
ES256 provider tokens checked against the key's public half.

One table: each case is a push, the request APNs must receive (its apns-* headers and the exact JSON
payload, or none at all when the push can never be sent) and the result (the apns-id, or the failure
kind and push code). Then the connection (one for many pushes, a new one after 503, GOAWAY or a closed
idle connection), the provider token (reused, renewed on ExpiredProviderToken once), timeouts, TLS
verification and check().
"""

import asyncio
import logging
import ssl
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from msgspec.structs import replace

from tests.standins.apns import TOPIC, Answer, ApnsStandIn, device_token
from tidings.channels.base import FailureKind, SendError
from tidings.channels.push.apns import ApnsProvider, check, payload
from tidings.channels.push.provider import PushSend
from tidings.channels.push.settings import ApnsSettings
from tidings.schema.push import (
    Interactive,
    InteractiveAction,
    IosExtras,
    IosPush,
    NotificationAction,
    PushContent,
)
from tidings.specs import push_codes as codes

NOW = float(int(time.time()))  # the provider's clock in the table: apns-expiration is exact
MSG_UUID = "6f1c2a4e-8b3d-4c5f-9a7e-1d2b3c4d5e6f"
TAGS = {"key1": "object1", "key2": {"object2": "val"}, "key3": ["object3", "object4"]}


def ios(text: str = "This is a push notification", title: str | None = "Hello", **extras: Any) -> PushContent:
    return PushContent(ios=IosPush(text=text, title=title, extras=IosExtras(**extras) if extras else None))


def push(content: PushContent, token: str = device_token(1), transid: str = MSG_UUID, **kw: Any) -> PushSend:
    return PushSend(transid=transid, platform="ios", token=token, content=content, **kw)


def apns_id(transid: str) -> str:
    return payload(push(ios(), transid=transid)).headers["apns-id"]


def alert_headers(transid: str = MSG_UUID, **more: str) -> dict[str, str]:
    return {
        "apns-topic": TOPIC,
        "apns-push-type": "alert",
        "apns-priority": "10",
        "apns-id": apns_id(transid),
        **more,
    }


ALERT = {"aps": {"alert": {"title": "Hello", "body": "This is a push notification"}}}


@dataclass
class Case:
    name: str
    item: PushSend
    headers: dict[str, str] | None  # the apns-* headers APNs receives; None: no request at all
    body: dict[str, Any] | None  # the exact payload (None: not checked)
    result: str | tuple[FailureKind, str]  # the id send() returns, or the failure's kind and code
    retry_after: float | None = None


INTERACTIVE = Interactive(
    category="DOUBLE_YES_NO",
    device_types=["ios", "android"],
    actions=[
        InteractiveAction(pos=2, action="DISMISS", identifier="no"),
        InteractiveAction(pos=1, action="OPENURL", identifier="yes", value="https://example.com/yes"),
    ],
    pushref="campaign-7",
)

CASES = [
    Case("alert: title and text", push(ios()), alert_headers(), ALERT, MSG_UUID),
    Case(
        "alert: every extra; a transid that is no UUID gives a stable UUID5",
        push(
            ios(
                badge=3,
                sound="default",
                time_to_live=3600,
                collapse_key="promo",
                url="https://example.com/a",
                customtags=TAGS,
                notificationaction=NotificationAction(action="DEEPLINK", value="app://settings"),
                attachmenturl="https://example.com/cat.jpg",
            ),
            transid="msg-42",
        ),
        alert_headers("msg-42", **{"apns-expiration": str(int(NOW) + 3600), "apns-collapse-id": "promo"}),
        {
            "aps": {
                "alert": {"title": "Hello", "body": "This is a push notification"},
                "badge": 3,
                "sound": "default",
                "mutable-content": 1,
            },
            **TAGS,
            "notificationaction": {"action": "DEEPLINK", "value": "app://settings"},
            "url": "https://example.com/a",
            "attachmenturl": "https://example.com/cat.jpg",
        },
        str(uuid.uuid5(uuid.UUID("0b7e2c1a-5d34-4f0e-9a61-3c52d8e4f7a9"), "msg-42")),
    ),
    Case(
        "silent push: background, priority 5, text as custom keys; the message's expiry",
        push(ios(silentpush=True, badge=1, customtags={"k": 1}), expiry=NOW + 600),
        {
            "apns-topic": TOPIC,
            "apns-push-type": "background",
            "apns-priority": "5",
            "apns-id": MSG_UUID,
            "apns-expiration": str(int(NOW) + 600),
        },
        {"aps": {"content-available": 1}, "k": 1, "text": "This is a push notification", "title": "Hello"},
        MSG_UUID,
    ),
    Case(
        "expiry and time_to_live: the earlier wins; no title",
        push(ios(title=None, time_to_live=7200), expiry=NOW + 60),
        alert_headers(**{"apns-expiration": str(int(NOW) + 60)}),
        {"aps": {"alert": {"body": "This is a push notification"}}},
        MSG_UUID,
    ),
    Case(
        "time_to_live 0: deliver once; low priority (3) gives apns-priority 5; html",
        push(ios(time_to_live=0, html="<b>hi</b>"), priority=3),
        alert_headers(**{"apns-expiration": "0", "apns-priority": "5"}),
        {**ALERT, "html": "<b>hi</b>"},
        MSG_UUID,
    ),
    Case(
        "interactive for ios: category, actions by pos, pushref",
        push(replace(ios(), interactive=INTERACTIVE)),
        alert_headers(),
        {
            "aps": {**ALERT["aps"], "category": "DOUBLE_YES_NO"},
            "pushref": "campaign-7",
            "actions": [
                {"pos": 1, "action": "OPENURL", "identifier": "yes", "value": "https://example.com/yes"},
                {"pos": 2, "action": "DISMISS", "identifier": "no"},
            ],
        },
        MSG_UUID,
    ),
    Case(
        "interactive for android only: nothing of it on iOS but the push's own pushref",
        push(replace(ios(), interactive=replace(INTERACTIVE, device_types=["android"]), pushref="p1")),
        alert_headers(),
        {**ALERT, "pushref": "p1"},
        MSG_UUID,
    ),
    # Refused before any request.
    Case(
        "customtags 'aps'",
        push(ios(customtags={"aps": {}})),
        None,
        None,
        (FailureKind.INVALID, codes.INVALID_PAYLOAD),
    ),
    Case(
        "customtags clashing with url",
        push(ios(url="https://a.example", customtags={"url": "x"})),
        None,
        None,
        (FailureKind.INVALID, codes.INVALID_PAYLOAD),
    ),
    Case(
        "collapse_key over 64 bytes",
        push(ios(collapse_key="é" * 33)),
        None,
        None,
        (FailureKind.INVALID, codes.INVALID_PAYLOAD),
    ),
    Case(
        "payload over 4096 bytes",
        push(ios(text="x" * 4100)),
        None,
        None,
        (FailureKind.INVALID, codes.PAYLOAD_TOO_LARGE),
    ),
    Case(
        "no ios block",
        push(PushContent(android=None, pushref="x")),
        None,
        None,
        (FailureKind.INVALID, codes.INVALID_PAYLOAD),
    ),
    Case(
        "token that is no hex",
        push(ios(), token="ab/cd"),
        None,
        None,
        (FailureKind.GONE, codes.INVALID_TOKEN),
    ),
    # APNs' answers.
    Case(
        "410 Unregistered",
        push(ios(), token="dead01"),
        alert_headers(),
        ALERT,
        (FailureKind.GONE, codes.TOKEN_UNREGISTERED),
    ),
    Case(
        "410 ExpiredToken",
        push(ios(), token="stale"),
        alert_headers(),
        ALERT,
        (FailureKind.GONE, codes.TOKEN_UNREGISTERED),
    ),
    Case(
        "400 BadDeviceToken",
        push(ios(), token="bad0"),
        alert_headers(),
        ALERT,
        (FailureKind.GONE, codes.INVALID_TOKEN),
    ),
    Case(
        "400 BadDeviceToken (not hex)",
        push(ios(), token="zz"),
        alert_headers(),
        ALERT,
        (FailureKind.GONE, codes.INVALID_TOKEN),
    ),
    Case(
        "400 DeviceTokenNotForTopic",
        push(ios(), token="topic"),
        alert_headers(),
        ALERT,
        (FailureKind.GONE, codes.TOKEN_NOT_FOR_APP),
    ),
    Case(
        "400 BadExpirationDate",
        push(ios(), token="expdate"),
        alert_headers(),
        ALERT,
        (FailureKind.INVALID, codes.INVALID_PAYLOAD),
    ),
    Case(
        "400 BadTopic",
        push(ios(), token="xtopic"),
        alert_headers(),
        ALERT,
        (FailureKind.CONFIG, codes.AUTH_ERROR),
    ),
    Case(
        "403 Forbidden",
        push(ios(), token="forbid"),
        alert_headers(),
        ALERT,
        (FailureKind.CONFIG, codes.AUTH_ERROR),
    ),
    Case(
        "404 BadPath",
        push(ios(), token="path"),
        alert_headers(),
        ALERT,
        (FailureKind.CONFIG, codes.PLATFORM_FAILURE),
    ),
    Case(
        "413",
        push(ios(), token="huge"),
        alert_headers(),
        ALERT,
        (FailureKind.INVALID, codes.PAYLOAD_TOO_LARGE),
    ),
    Case(
        "429",
        push(ios(), token="busy"),
        alert_headers(),
        ALERT,
        (FailureKind.THROTTLED, codes.QUOTA_EXCEEDED),
    ),
    Case(
        "429 with Retry-After",
        push(ios(), token="flood"),
        alert_headers(),
        ALERT,
        (FailureKind.THROTTLED, codes.QUOTA_EXCEEDED),
        retry_after=7.0,
    ),
    Case(
        "503",
        push(ios(), token="down"),
        alert_headers(),
        ALERT,
        (FailureKind.UNAVAILABLE, codes.SERVICE_UNAVAILABLE),
    ),
    Case(
        "500",
        push(ios(), token="oops"),
        alert_headers(),
        ALERT,
        (FailureKind.UNAVAILABLE, codes.SERVICE_UNAVAILABLE),
    ),
]

EXTRA_ANSWERS = {
    "expdate": Answer(400, "BadExpirationDate"),
    "xtopic": Answer(400, "BadTopic"),
    "forbid": Answer(403, "Forbidden"),
    "path": Answer(404, "BadPath"),
}


def run(
    scenario: Callable[[ApnsStandIn, ApnsProvider], Coroutine[Any, Any, None]],
    tmp_path: Path,
    *,
    key_id: str | None = None,
    **provider_kw: Any,
) -> None:
    """Run `scenario` against a fresh stand-in and a provider configured for it (closed before the
    stand-in stops, as a process does)."""

    async def main() -> None:
        async with ApnsStandIn() as stand_in:
            settings = stand_in.write_credentials(tmp_path, key_id=key_id)
            provider = ApnsProvider(settings, base_dir=tmp_path, **provider_kw)
            try:
                await scenario(stand_in, provider)
            finally:
                await provider.close()
            assert stand_in.protocol_errors == []

    asyncio.run(main())


async def outcome(provider: ApnsProvider, item: PushSend) -> str | SendError:
    try:
        return await provider.send(item)
    except SendError as exc:
        return exc


def test_table(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tidings")
    failures: list[str] = []
    descriptions: list[str] = []

    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        stand_in.answers.update(EXTRA_ANSWERS)
        for case in CASES:
            seen = len(stand_in.received)
            got = await outcome(provider, case.item)
            sent = stand_in.received[seen:]
            if isinstance(got, SendError):
                descriptions.append(got.description)
                result: object = (got.kind, got.code)
                if got.retry_after != case.retry_after:
                    failures.append(f"{case.name}: retry_after {got.retry_after}")
            else:
                result = got
            if result != case.result:
                failures.append(f"{case.name}: got {result}, expected {case.result}")
            if case.headers is None:
                if sent:
                    failures.append(f"{case.name}: sent {len(sent)} request(s), expected none")
                continue
            if len(sent) != 1:
                failures.append(f"{case.name}: {len(sent)} requests")
                continue
            headers = {k: v for k, v in sent[0].headers.items() if k.startswith("apns-")}
            if headers != case.headers:
                failures.append(f"{case.name}: headers {headers}")
            if not sent[0].headers["authorization"].startswith("bearer "):
                failures.append(f"{case.name}: authorization {sent[0].headers['authorization'][:7]}")
            if case.body is not None and sent[0].body != case.body:
                failures.append(f"{case.name}: body {sent[0].body}")
        # Everything above went through one provider token.
        assert len(stand_in.provider_tokens) == 1
        secrets = [stand_in.key_pem().decode(), *stand_in.provider_tokens, "BEGIN", "PRIVATE KEY"]
        logged = [record.getMessage() for record in caplog.records]
        for secret in secrets:
            assert not any(secret in text for text in logged + descriptions)

    run(scenario, tmp_path, clock=lambda: NOW)
    assert failures == []
    # The refusals of the app's credentials/topic are a configuration alarm, logged.
    assert any(r.levelno == logging.WARNING and "403 Forbidden" in r.getMessage() for r in caplog.records)


def test_one_connection_serves_many_concurrent_pushes(tmp_path: Path) -> None:
    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        content = ios()
        ids = await asyncio.gather(
            *(provider.send(push(content, token=device_token(n), transid=f"m{n}")) for n in range(300))
        )
        assert len(set(ids)) == 300
        assert len(stand_in.connections) == 1
        assert len(stand_in.provider_tokens) == 1
        assert all(item.status == 200 for item in stand_in.received)

    run(scenario, tmp_path)


def test_provider_token_is_reused_for_40_minutes(tmp_path: Path) -> None:
    start = time.time() - 41 * 60  # so that the token minted at +41 min is the real now
    clock = [start]

    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        for minutes in (0, 20, 39):
            clock[0] = start + minutes * 60
            await provider.send(push(ios()))
        assert len(stand_in.provider_tokens) == 1
        clock[0] = start + 41 * 60
        await provider.send(push(ios()))
        assert len(stand_in.provider_tokens) == 2
        first, second = (jwt.decode(t, options={"verify_signature": False}) for t in stand_in.provider_tokens)
        assert second["iat"] - first["iat"] == 41 * 60
        header = jwt.get_unverified_header(stand_in.provider_tokens[1])
        assert header == {"alg": "ES256", "kid": stand_in.key_id, "typ": "JWT"}

    run(scenario, tmp_path, clock=lambda: clock[0])


def test_expired_provider_token_is_renewed_once_and_the_pushes_retried(tmp_path: Path) -> None:
    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        await provider.send(push(ios()))
        stand_in.expire_provider_tokens()
        ids = await asyncio.gather(*(provider.send(push(ios(), transid=f"m{n}")) for n in range(20)))
        assert len(ids) == 20
        assert len(stand_in.provider_tokens) == 2  # twenty refusals, one renewal
        refused = [r for r in stand_in.received if r.reason == "ExpiredProviderToken"]
        assert 1 <= len(refused) <= 20
        assert len(stand_in.received) == 1 + 20 + len(refused)

    run(scenario, tmp_path)


def test_a_token_still_expired_after_renewal_is_a_configuration_error(tmp_path: Path) -> None:
    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        got = await outcome(provider, push(ios()))
        assert isinstance(got, SendError)
        assert (got.kind, got.code, got.description) == (
            FailureKind.CONFIG,
            codes.AUTH_ERROR,
            "APNs 403 ExpiredProviderToken",
        )
        assert [r.reason for r in stand_in.received] == ["ExpiredProviderToken"] * 2
        assert len(stand_in.provider_tokens) == 2

    run(scenario, tmp_path, clock=lambda: time.time() - 2 * 3600)  # a clock two hours slow


def test_a_refused_key_is_a_configuration_alarm_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tidings")

    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        for _ in range(3):
            got = await outcome(provider, push(ios()))
            assert isinstance(got, SendError)
            assert (got.kind, got.code, got.description) == (
                FailureKind.CONFIG,
                codes.AUTH_ERROR,
                "APNs 403 InvalidProviderToken",
            )
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "InvalidProviderToken" in warnings[0]
        assert len(stand_in.received) == 3  # not renewed: that would not help

    run(scenario, tmp_path, key_id="OTHERKEY01")


def test_an_unusable_key_file_fails_without_a_request(tmp_path: Path) -> None:
    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        (tmp_path / f"AuthKey_{stand_in.key_id}.p8").write_text("not a key")
        got = await outcome(provider, push(ios()))
        assert isinstance(got, SendError)
        assert (got.kind, got.code) == (FailureKind.CONFIG, codes.AUTH_ERROR)
        assert "not an unencrypted PEM private key" in got.description
        assert stand_in.received == []

    run(scenario, tmp_path)


def test_503_moves_the_next_push_to_a_new_connection(tmp_path: Path) -> None:
    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        await provider.send(push(ios()))
        got = await outcome(provider, push(ios(), token="down"))
        assert isinstance(got, SendError) and got.kind is FailureKind.UNAVAILABLE
        assert len(stand_in.connections) == 1
        await provider.send(push(ios()))
        await provider.send(push(ios()))
        assert len(stand_in.connections) == 2

    run(scenario, tmp_path)


def test_goaway_the_push_goes_out_on_a_new_connection(tmp_path: Path) -> None:
    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        await provider.send(push(ios()))
        stand_in.goaway_next()
        await provider.send(push(ios(), transid="after-goaway"))
        await provider.send(push(ios()))
        assert len(stand_in.connections) == 2
        delivered = [r for r in stand_in.received if r.status == 200]
        assert [r.headers["apns-id"] for r in delivered].count(apns_id("after-goaway")) == 1
        assert len(delivered) == 3

    run(scenario, tmp_path)


def test_a_connection_the_server_closed_is_replaced(tmp_path: Path) -> None:
    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        stand_in.close_when_idle(0.05)
        await provider.send(push(ios()))
        await asyncio.sleep(0.3)  # the server closes the idle connection after 0.05 s
        assert await provider.send(push(ios(), transid="later")) == apns_id("later")
        assert len(stand_in.connections) == 2

    run(scenario, tmp_path)


def test_a_connection_broken_under_a_push_is_replaced_and_the_push_sent_once_more(tmp_path: Path) -> None:
    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        stand_in.drop_next()
        assert await provider.send(push(ios(), transid="dropped")) == apns_id("dropped")
        assert [r.headers["apns-id"] for r in stand_in.received] == [apns_id("dropped")] * 2
        assert len(stand_in.connections) == 2
        stand_in.drop_next(2)  # broken twice: given up, as a connection failure
        got = await outcome(provider, push(ios()))
        assert isinstance(got, SendError) and got.kind is FailureKind.CONNECTION
        assert len(stand_in.received) == 4 and len(stand_in.connections) == 3
        assert await provider.send(push(ios())) == MSG_UUID  # and the next push gets through
        assert len(stand_in.connections) == 4

    run(scenario, tmp_path)


def test_close_fails_the_pushes_in_flight_without_a_new_connection(tmp_path: Path) -> None:
    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        sends = [asyncio.ensure_future(outcome(provider, push(ios(), token=f"slow{n}"))) for n in range(3)]
        for _ in range(400):  # at most 2 s for the three requests to arrive
            if len(stand_in.received) == 3:
                break
            await asyncio.sleep(0.005)
        await provider.close()
        got = await asyncio.gather(*sends)
        assert all(isinstance(g, SendError) and g.kind is FailureKind.CONNECTION for g in got)
        assert len(stand_in.connections) == 1 and len(stand_in.received) == 3

    run(scenario, tmp_path)


def test_without_recording_the_stand_in_only_counts(tmp_path: Path) -> None:
    async def main() -> None:
        async with ApnsStandIn(record=False) as stand_in:
            provider = ApnsProvider(stand_in.write_credentials(tmp_path), base_dir=tmp_path)
            try:
                await asyncio.gather(*(provider.send(push(ios(), token=device_token(n))) for n in range(50)))
                got = await outcome(provider, push(ios(), token="dead"))
            finally:
                await provider.close()
            assert isinstance(got, SendError) and got.kind is FailureKind.GONE  # still checked and scripted
            assert (stand_in.answered, stand_in.received, len(stand_in.provider_tokens)) == (51, [], 1)

    asyncio.run(main())


def test_no_answer_in_time_is_a_timeout(tmp_path: Path) -> None:
    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        started = time.monotonic()
        got = await outcome(provider, push(ios(), token="slow"))
        assert isinstance(got, SendError) and got.kind is FailureKind.TIMEOUT
        assert time.monotonic() - started < 0.45
        assert await provider.send(push(ios())) == MSG_UUID  # the connection still serves

    run(scenario, tmp_path, timeout_s=0.2)


def test_the_server_certificate_is_verified(tmp_path: Path) -> None:
    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        settings = stand_in.write_credentials(tmp_path)
        untrusting = ApnsProvider(replace_settings(settings, ca_file=""), base_dir=tmp_path)
        try:
            got = await outcome(untrusting, push(ios()))
        finally:
            await untrusting.close()
        assert isinstance(got, SendError) and got.kind is FailureKind.CONNECTION
        assert "CERTIFICATE_VERIFY_FAILED" in got.description
        assert stand_in.received == []

    run(scenario, tmp_path)


def test_nobody_listening_is_a_connection_failure(tmp_path: Path) -> None:
    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        settings = stand_in.write_credentials(tmp_path)
        closed = ApnsProvider(replace_settings(settings, base_url="https://127.0.0.1:9"), base_dir=tmp_path)
        try:
            got = await outcome(closed, push(ios()))
        finally:
            await closed.close()
        assert isinstance(got, SendError) and got.kind is FailureKind.CONNECTION

    run(scenario, tmp_path)


def test_the_stand_in_speaks_http2_only(tmp_path: Path) -> None:
    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        ctx = ssl.create_default_context()
        stand_in.ca.configure_trust(ctx)
        async with httpx.AsyncClient(verify=ctx) as http1:  # offers ALPN http/1.1 only
            response = await http1.post(f"{stand_in.base_url}/3/device/{device_token(1)}", content=b"{}")
        # No ALPN in common: the client speaks HTTP/1.1, which the stand-in refuses as APNs would.
        assert response.status_code == 505
        assert stand_in.protocol_errors == ["HTTP/1.1 /3/device/" + device_token(1)]
        stand_in.protocol_errors.clear()
        assert stand_in.received == []

    run(scenario, tmp_path)


def replace_settings(settings: ApnsSettings, **changes: str) -> ApnsSettings:
    fields = {name: getattr(settings, name) for name in settings.__struct_fields__}
    return ApnsSettings(**{**fields, **changes})


@dataclass
class CheckCase:
    name: str
    changes: dict[str, str] = field(default_factory=dict)
    key: bytes | None = None  # the key file's content (None: the stand-in's key)
    problem: str | None = None  # a fragment of the one problem expected (None: no problem)


def rsa_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


CHECKS = [
    CheckCase("the stand-in's own settings"),
    CheckCase("missing key file", {"key_file": "nowhere.p8"}, problem="cannot be read"),
    CheckCase("not PEM", key=b"hello", problem="not an unencrypted PEM private key"),
    CheckCase("an RSA key", key=rsa_pem(), problem="not a P-256"),
    CheckCase("plain http", {"base_url": "http://127.0.0.1:1"}, problem="base_url must be https://host"),
    CheckCase("a path in base_url", {"base_url": "https://api.push.apple.com/3"}, problem="base_url"),
    CheckCase("missing ca_file", {"ca_file": "none.pem"}, problem="ca_file"),
    CheckCase("empty topic", {"topic": ""}, problem="topic"),
    CheckCase("team id with a space", {"team_id": "TEAM 12345"}, problem="team_id"),
]


def test_check(tmp_path: Path) -> None:
    stand_in = ApnsStandIn()
    for case in CHECKS:
        directory = tmp_path / case.name.replace(" ", "_").replace("'", "")
        directory.mkdir()
        (directory / f"AuthKey_{stand_in.key_id}.p8").write_bytes(case.key or stand_in.key_pem())
        stand_in.ca.cert_pem.write_to_path(str(directory / "apns-ca.pem"))
        settings = ApnsSettings(
            team_id=stand_in.team_id,
            key_id=stand_in.key_id,
            key_file=f"AuthKey_{stand_in.key_id}.p8",
            topic=stand_in.topic,
            base_url="https://127.0.0.1:2197",
            ca_file="apns-ca.pem",
        )
        problems = check(replace_settings(settings, **case.changes), directory)
        if case.problem is None:
            assert problems == [], case.name
        else:
            assert len(problems) == 1 and case.problem in problems[0], (case.name, problems)
        assert not any("BEGIN" in p for p in problems)
