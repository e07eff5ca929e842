"""The APNs provider against a stand-in that speaks APNs' wire format: HTTP/2 only, TLS with its own CA,
ES256 provider tokens checked against the key's public half.

The request each push becomes and what each of APNs' answers becomes are the runner's cases in
tests/connectors/cases_apns.py, sent through the push connector; here only what those cannot show
(apns-expiration on a fixed clock, priority 3, a token given directly that is no hex, the warning a
refused credential logs). Then the connection (one for many pushes, a new one after 503, GOAWAY or a
closed idle connection), the provider token (reused, renewed on ExpiredProviderToken once), timeouts,
TLS verification and check().
"""

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.connectors.push_provider import key_lines
from tests.standins.apns import Answer, ApnsStandIn, device_token
from tidings.channels.base import FailureKind, SendError
from tidings.channels.push.apns import ApnsProvider, check, payload
from tidings.channels.push.provider import PushSend
from tidings.channels.push.settings import ApnsSettings
from tidings.schema.push import IosExtras, IosPush, PushContent
from tidings.specs import push_codes as codes

NOW = float(int(time.time()))  # the clock HEADERS are built on: apns-expiration is exact
MSG_UUID = "6f1c2a4e-8b3d-4c5f-9a7e-1d2b3c4d5e6f"


def ios(text: str = "This is a push notification", title: str | None = "Hello", **extras: Any) -> PushContent:
    return PushContent(ios=IosPush(text=text, title=title, extras=IosExtras(**extras) if extras else None))


def push(content: PushContent, token: str = device_token(1), transid: str = MSG_UUID, **kw: Any) -> PushSend:
    return PushSend(transid=transid, platform="ios", token=token, content=content, **kw)


def apns_id(transid: str) -> str:
    return payload(push(ios(), transid=transid)).headers["apns-id"]


# What the runner's cases (tests/connectors/cases_apns.py) cannot show: apns-expiration needs the
# provider's clock fixed (the connector's provider runs on the real one), and they are all at priority 2.
# Each row: the headers beyond a default alert's; its payload for the same content is the runner's golden.
HEADERS = [
    ("time_to_live", push(ios(time_to_live=3600)), {"apns-expiration": str(int(NOW) + 3600)}),
    (
        "silent, the message's expiry",
        push(ios(silentpush=True), expiry=NOW + 600),
        {"apns-push-type": "background", "apns-priority": "5", "apns-expiration": str(int(NOW) + 600)},
    ),
    (
        "the expiry before time_to_live: the earlier wins",
        push(ios(time_to_live=7200), expiry=NOW + 60),
        {"apns-expiration": str(int(NOW) + 60)},
    ),
    (
        "time_to_live before the expiry: the earlier wins",
        push(ios(time_to_live=60), expiry=NOW + 7200),
        {"apns-expiration": str(int(NOW) + 60)},
    ),
    ("low priority (3)", push(ios(), priority=3), {"apns-priority": "5"}),
]


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


def test_expiration_and_priority() -> None:
    for name, item, changes in HEADERS:
        expected = {"apns-push-type": "alert", "apns-priority": "10", "apns-id": MSG_UUID, **changes}
        assert payload(item, NOW).headers == expected, name


def test_a_token_given_directly_that_is_no_hex_is_gone() -> None:
    """The connector sends only a hex token to APNs directly; a registered one that is no hex is the
    runner's case (its device removed, nothing sent)."""
    with pytest.raises(SendError) as raised:
        payload(push(ios(), token="ab/cd"), NOW)
    assert (raised.value.kind, raised.value.code) == (FailureKind.GONE, codes.INVALID_TOKEN)


def test_a_refused_topic_or_credential_is_a_configuration_alarm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tidings")
    said: list[str] = []

    async def scenario(stand_in: ApnsStandIn, provider: ApnsProvider) -> None:
        stand_in.answers["forbid"] = Answer(403, "Forbidden")
        got = await outcome(provider, push(ios(), token="forbid"))
        assert isinstance(got, SendError)
        assert (got.kind, got.code) == (FailureKind.CONFIG, codes.AUTH_ERROR)
        said.append(got.description)
        said.extend(record.getMessage() for record in caplog.records)
        secrets = [*key_lines(stand_in.key_pem().decode()), *stand_in.provider_tokens, "PRIVATE KEY"]
        assert len(stand_in.provider_tokens) == 1
        assert not [secret for secret in secrets if any(secret in text for text in said)]

    run(scenario, tmp_path)
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
