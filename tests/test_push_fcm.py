"""FCM HTTP v1 as Google sees it, at the provider: the token grant and its caching and refresh, retries
under a closed connection, timeouts, check(), and the v1 priority's mark on the `message`.

The `message` each kind of push object becomes and what each of FCM's answers becomes (an id or a
SendError) are the runner's cases in tests/connectors/cases_fcm.py, sent through the push connector.
"""

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.standins.fcm import FcmStandIn, free_port
from tidings.channels.base import FailureKind, SendError
from tidings.channels.push.fcm import FcmProvider, check, payload
from tidings.channels.push.provider import PushSend
from tidings.channels.push.settings import FcmSettings
from tidings.schema.push import PushContent
from tidings.specs import push_codes as codes

NAME = re.compile(r"projects/demo-project/messages/\d+")
NOW = 1_800_000_000.0


def content(**fields: Any) -> PushContent:
    return msgspec.convert(fields, PushContent)


def push(
    token: str, platform: str = "android", priority: int = 2, expiry: float | None = None, **fields: Any
) -> PushSend:
    if not fields:
        fields = {"android": {"text": "hello"}}
    return PushSend("tx-1", platform, token, content(**fields), expiry=expiry, priority=priority)


# Priority 1's mark on each platform: FCM's runner cases (tests/connectors/cases_fcm.py) are all at
# priority 2. Each row: the `message` is priority 2's (whose golden the runner pins) but for that field.
PRIORITY_1 = [
    (push("dev-a1", priority=1), ("android", "priority"), "HIGH"),
    (push("dev-i1", "ios", priority=1, ios={"text": "body"}), ("apns", "headers", "apns-priority"), "10"),
    (
        push("dev-i2", "ios", priority=1, ios={"text": "quiet", "extras": {"silentpush": True}}),
        ("apns", "headers", "apns-priority"),
        "5",  # a background push: 5 whatever the priority, as APNs requires
    ),
    (
        push("dev-w2", "web", priority=1, web={"title": "W", "text": "b"}),
        ("webpush", "headers", "Urgency"),
        "high",
    ),
]


# -- harness -------------------------------------------------------------------------------------------


@dataclass
class Seen:
    """Everything a test saw that must not carry a secret."""

    texts: list[str] = field(default_factory=list)


def run(
    tmp_path: Path, body: Callable[[FcmStandIn, FcmProvider, Seen], Awaitable[None]], **stand: Any
) -> Seen:
    seen = Seen()

    async def main() -> None:
        async with FcmStandIn(**stand) as stand_in:
            key_file = stand_in.write_key_file(tmp_path / "fcm.json")
            settings = FcmSettings(
                project_id="demo-project", service_account_file=key_file.name, base_url=stand_in.base_url
            )
            provider = FcmProvider(settings, base_dir=tmp_path)
            try:
                await body(stand_in, provider, seen)
            finally:
                await provider.close()
            seen.texts += stand_in.issued  # access tokens
            seen.texts += [str(r.body["assertion"]) for r in stand_in.received if r.path == "/token"]
            seen.texts.append(stand_in.private_key_pem().splitlines()[1])

    asyncio.run(asyncio.wait_for(main(), 60))
    return seen


async def outcome(provider: FcmProvider, item: PushSend, seen: Seen) -> str | SendError:
    try:
        return await provider.send(item)
    except SendError as exc:
        seen.texts.append(f"DESCRIPTION {exc.description}")
        return exc


def assert_no_secrets(seen: Seen, caplog: pytest.LogCaptureFixture) -> None:
    secrets = [t for t in seen.texts if not t.startswith("DESCRIPTION ")]
    said = [t for t in seen.texts if t.startswith("DESCRIPTION ")] + [r.getMessage() for r in caplog.records]
    assert secrets, "the test saw no secrets to look for"
    for secret in secrets:
        for text in said:
            assert secret not in text


# -- tests ---------------------------------------------------------------------------------------------


def test_priority_1() -> None:
    for item, path, mark in PRIORITY_1:
        expected = payload(replace(item, priority=2), now=NOW)["message"]
        place = expected
        for key in path[:-1]:
            place = place[key]
        place[path[-1]] = mark
        assert payload(item, now=NOW)["message"] == expected, item


def test_windows_is_not_fcms(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Only a provider handed a Windows push by hand sees this: the connector sends Windows to WNS."""
    caplog.set_level(logging.DEBUG, logger="tidings")

    async def body(stand: FcmStandIn, provider: FcmProvider, seen: Seen) -> None:
        result = await outcome(provider, push("dev-x", "windows", windows={"text": ["a"]}), seen)
        assert isinstance(result, SendError)
        assert (result.kind, result.code) == (FailureKind.INVALID, codes.INVALID_PAYLOAD)
        assert stand.received == []  # refused before the token grant

    assert_no_secrets(run(tmp_path, body), caplog)


def test_payload_lifetimes() -> None:
    """TTL comes from time_to_live, else from what is left until the message's expiry (never below 0)."""
    android = payload(push("t", expiry=NOW + 90.7), now=NOW)["message"]["android"]
    assert android["ttl"] == "90s"
    assert payload(push("t", expiry=NOW - 5), now=NOW)["message"]["android"]["ttl"] == "0s"
    explicit = push("t", expiry=NOW + 90, android={"text": "x", "extras": {"time_to_live": 30}})
    assert payload(explicit, now=NOW)["message"]["android"]["ttl"] == "30s"
    ios = push("t", "ios", ios={"text": "x", "extras": {"time_to_live": 3600}})
    assert payload(ios, now=NOW)["message"]["apns"]["headers"]["apns-expiration"] == str(int(NOW) + 3600)
    ios_expiry = push("t", "ios", expiry=NOW + 120, ios={"text": "x"})
    assert payload(ios_expiry, now=NOW)["message"]["apns"]["headers"]["apns-expiration"] == str(
        int(NOW) + 120
    )
    ios_gone = push("t", "ios", expiry=NOW - 1, ios={"text": "x"})
    assert payload(ios_gone, now=NOW)["message"]["apns"]["headers"]["apns-expiration"] == "0"
    web = push("t", "web", priority=3, expiry=NOW + 45, web={"title": "a", "text": "b"})
    assert payload(web, now=NOW)["message"]["webpush"]["headers"] == {"Urgency": "low", "TTL": "45"}


def test_the_grant_google_receives(tmp_path: Path) -> None:
    async def body(stand: FcmStandIn, provider: FcmProvider, seen: Seen) -> None:
        assert NAME.fullmatch(await provider.send(push("dev-1")))
        (grant,) = [r for r in stand.received if r.path == "/token"]
        assert grant.headers["content-type"] == "application/x-www-form-urlencoded"
        assert set(grant.body) == {"grant_type", "assertion"}
        assert grant.body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        assertion = str(grant.body["assertion"])
        assert jwt.get_unverified_header(assertion) == {"alg": "RS256", "typ": "JWT", "kid": stand.key_id}
        claims = jwt.decode(assertion, stand.key.public_key(), algorithms=["RS256"], audience=stand.token_url)
        assert set(claims) == {"iss", "scope", "aud", "iat", "exp"}
        assert claims["iss"] == stand.client_email
        assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
        assert claims["exp"] - claims["iat"] == 3600
        assert abs(claims["iat"] - time.time()) < 5

    run(tmp_path, body)


def test_token_cached_then_refreshed_before_expiry(tmp_path: Path) -> None:
    """A token living 1 s (the margins scale down with the lifetime): used as is for 0.5 s; then the next
    one is fetched while senders keep using it, until 0.75 s; after that senders wait for a new one."""

    async def body(stand: FcmStandIn, provider: FcmProvider, seen: Seen) -> None:
        for _ in range(3):
            await provider.send(push("dev-1"))
        assert (stand.token_requests, stand.sends) == (1, 3)
        await asyncio.sleep(0.55)
        await provider.send(push("dev-1"))  # starts the next fetch beside it, does not wait for it
        for _ in range(20):  # until the new token is in use
            await provider.send(push("dev-1"))
            if stand.sent()[-1].headers["authorization"] == f"Bearer {stand.issued[1]}":
                break
            await asyncio.sleep(0.01)
        assert stand.sent()[-1].headers["authorization"] == f"Bearer {stand.issued[1]}"
        assert stand.token_requests == 2
        await asyncio.sleep(0.8)  # past the second token's usable life: the next send waits for a third
        await provider.send(push("dev-1"))
        assert stand.token_requests == 3
        assert stand.sent()[-1].headers["authorization"] == f"Bearer {stand.issued[2]}"

    run(tmp_path, body, expires_in=1)


def test_failed_early_refresh_keeps_the_working_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tidings")

    async def body(stand: FcmStandIn, provider: FcmProvider, seen: Seen) -> None:
        await provider.send(push("dev-1"))
        stand.refuse_grant = True
        await asyncio.sleep(0.55)
        for _ in range(5):
            assert NAME.fullmatch(await provider.send(push("dev-1")))
            await asyncio.sleep(0.01)
        assert stand.token_requests == 2  # one failed refresh, not one per send
        assert {r.headers["authorization"] for r in stand.sent()} == {f"Bearer {stand.issued[0]}"}
        await asyncio.sleep(0.25)  # the token is no longer usable: now the refusal reaches the sender
        result = await outcome(provider, push("dev-1"), seen)
        assert isinstance(result, SendError)
        assert (result.kind, result.code) == (FailureKind.CONFIG, codes.AUTH_ERROR)
        assert stand.token_requests == 3

    seen = run(tmp_path, body, expires_in=1)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert_no_secrets(seen, caplog)


def test_a_connection_closed_under_a_send_is_tried_once_more(tmp_path: Path) -> None:
    async def body(stand: FcmStandIn, provider: FcmProvider, seen: Seen) -> None:
        await provider.send(push("dev-1"))
        stand.drop_next = 1
        assert NAME.fullmatch(await provider.send(push("dev-2")))
        assert stand.sends == 3
        stand.drop_next = 2
        result = await outcome(provider, push("dev-3"), seen)
        assert isinstance(result, SendError)
        assert (result.kind, result.code) == (FailureKind.CONNECTION, codes.SERVICE_UNAVAILABLE)
        assert stand.sends == 5

    run(tmp_path, body)


def test_slow_answer_is_a_timeout(tmp_path: Path) -> None:
    async def body(stand: FcmStandIn, provider: FcmProvider, seen: Seen) -> None:
        settings = FcmSettings("demo-project", "fcm.json", stand.base_url)
        hurried = FcmProvider(settings, base_dir=tmp_path, deadline=0.3)
        try:
            started = time.monotonic()
            result = await outcome(hurried, push("slow"), seen)
            assert isinstance(result, SendError)
            assert (result.kind, result.code) == (FailureKind.TIMEOUT, codes.SERVICE_UNAVAILABLE)
            assert time.monotonic() - started < 1.5
        finally:
            await hurried.close()

    run(tmp_path, body)


def test_one_refresh_however_many_senders_wait(tmp_path: Path) -> None:
    async def body(stand: FcmStandIn, provider: FcmProvider, seen: Seen) -> None:
        results = await asyncio.gather(*(provider.send(push(f"dev-{n}")) for n in range(50)))
        assert all(NAME.fullmatch(r) for r in results)
        assert len(set(results)) == 50
        assert (stand.token_requests, stand.sends) == (1, 50)

    run(tmp_path, body)


def test_refused_grant_is_shared_by_waiting_senders(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tidings")

    async def body(stand: FcmStandIn, provider: FcmProvider, seen: Seen) -> None:
        results = await asyncio.gather(*(outcome(provider, push(f"dev-{n}"), seen) for n in range(10)))
        assert all(isinstance(r, SendError) for r in results)
        assert {(r.kind, r.code) for r in results if isinstance(r, SendError)} == {
            (FailureKind.CONFIG, codes.AUTH_ERROR)
        }
        assert (stand.token_requests, stand.sends) == (1, 0)
        second = await outcome(provider, push("dev-x"), seen)
        assert isinstance(second, SendError) and second.kind is FailureKind.CONFIG
        assert "invalid_grant" in second.description
        assert stand.token_requests == 2  # a refused grant is not cached: fixing the key file helps
        stand.refuse_grant = False
        assert NAME.fullmatch(await provider.send(push("dev-y")))

    seen = run(tmp_path, body, refuse_grant=True)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "invalid_grant" in warnings[0].getMessage()
    assert_no_secrets(seen, caplog)


def test_refresh_once_on_401(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tidings")

    async def body(stand: FcmStandIn, provider: FcmProvider, seen: Seen) -> None:
        await provider.send(push("dev-1"))
        stand.unauthorized_next = 1
        assert NAME.fullmatch(await provider.send(push("dev-2")))
        assert (stand.token_requests, stand.sends) == (2, 3)
        assert stand.sent()[-1].headers["authorization"] == f"Bearer {stand.issued[1]}"
        stand.unauthorized_next = 2
        result = await outcome(provider, push("dev-3"), seen)
        assert isinstance(result, SendError)
        assert (result.kind, result.code) == (FailureKind.CONFIG, codes.AUTH_ERROR)
        assert (stand.token_requests, stand.sends) == (3, 5)
        assert NAME.fullmatch(await provider.send(push("dev-4")))  # the third token still works

    seen = run(tmp_path, body)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert_no_secrets(seen, caplog)


def test_unreachable_endpoints(tmp_path: Path) -> None:
    async def body(stand: FcmStandIn, provider: FcmProvider, seen: Seen) -> None:
        dead = f"http://127.0.0.1:{free_port()}"
        stand.write_key_file(tmp_path / "dead-token.json", token_uri=f"{dead}/token")
        no_token = FcmProvider(
            FcmSettings("demo-project", "dead-token.json", stand.base_url), base_dir=tmp_path
        )
        no_fcm = FcmProvider(FcmSettings("demo-project", "fcm.json", dead), base_dir=tmp_path)
        wrong_project = FcmProvider(
            FcmSettings("other-project", "fcm.json", stand.base_url), base_dir=tmp_path
        )
        try:
            for provider_, kind in [
                (no_token, FailureKind.CONNECTION),
                (no_fcm, FailureKind.CONNECTION),
                (wrong_project, FailureKind.CONFIG),
            ]:
                result = await outcome(provider_, push("dev-1"), seen)
                assert isinstance(result, SendError) and result.kind is kind, result
        finally:
            for p in (no_token, no_fcm, wrong_project):
                await p.close()

    run(tmp_path, body)


def test_unusable_key_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")

    async def main() -> None:
        provider = FcmProvider(
            FcmSettings("demo-project", "broken.json", "http://127.0.0.1:9"), base_dir=tmp_path
        )
        with pytest.raises(SendError) as raised:
            await provider.send(push("dev-1"))
        await provider.close()
        assert (raised.value.kind, raised.value.code) == (FailureKind.CONFIG, codes.AUTH_ERROR)
        assert "not JSON" in raised.value.description

    asyncio.run(main())


def test_check(tmp_path: Path) -> None:
    stand = FcmStandIn()
    stand.write_key_file(tmp_path / "good.json")
    good = FcmSettings("demo-project", "good.json", "https://fcm.googleapis.com")
    assert check(good, tmp_path) == []

    info = stand.key_file_json()
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    files = {
        "missing.json": None,
        "notjson.json": "nope",
        "user.json": json.dumps({**info, "type": "authorized_user"}),
        "nokey.json": json.dumps({k: v for k, v in info.items() if k != "private_key"}),
        "garbage-key.json": json.dumps({**info, "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n"}),
        "ec.json": json.dumps({**info, "private_key": ec_pem.decode()}),
        "ftp.json": json.dumps({**info, "token_uri": "ftp://x/token"}),
    }
    expected = {
        "missing.json": "cannot be read",
        "notjson.json": "not JSON",
        "user.json": "not a service-account key",
        "nokey.json": "missing private_key",
        "garbage-key.json": "not an unencrypted PEM key",
        "ec.json": "not an RSA key",
        "ftp.json": "token_uri is not an http(s) URL",
    }
    for name, text in files.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        (problem,) = check(FcmSettings("demo-project", name), tmp_path)
        assert expected[name] in problem and name in problem, problem
        assert "AAAA" not in problem and "BEGIN" not in problem
    for base_url in ("fcm.googleapis.com", "https://", "https://h/v1/x", "https://h?x=1", "https://h:port"):
        (problem,) = check(FcmSettings("demo-project", "good.json", base_url), tmp_path)
        assert "base_url" in problem
    assert "project_id" in check(FcmSettings("demo project", "good.json"), tmp_path)[0]


def test_the_stand_in_refuses_what_fcm_refuses(tmp_path: Path) -> None:
    """The stand-in is only a good judge if it says no: bad assertions, unknown tokens, non-string data."""

    async def body(stand: FcmStandIn, provider: FcmProvider, seen: Seen) -> None:
        await provider.send(push("dev-1"))
        bearer = {"authorization": f"Bearer {stand.issued[0]}"}
        send_url = f"{stand.base_url}/v1/projects/demo-project/messages:send"
        async with httpx.AsyncClient() as client:
            forged = jwt.encode(
                {"iss": stand.client_email, "aud": stand.token_url}, "k" * 32, algorithm="HS256"
            )
            grant = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": forged}
            answer = await client.post(stand.token_url, data=grant)
            assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")
            answer = await client.post(
                send_url, json={"message": {"token": "t"}}, headers={"authorization": "Bearer x"}
            )
            assert answer.status_code == 401
            for message in (
                {"token": "t", "data": {"n": 1}},
                {"token": "t", "topic": "news"},
                {"token": "t", "data": {"from": "x"}},
                {"token": "t", "android": {"ttl": "3600"}},
                {"token": "t", "data": {"big": "x" * 4100}},
            ):
                answer = await client.post(send_url, json={"message": message}, headers=bearer)
                assert answer.status_code == 400, message
                assert answer.json()["error"]["details"][0]["errorCode"] == "INVALID_ARGUMENT"

    run(tmp_path, body)
