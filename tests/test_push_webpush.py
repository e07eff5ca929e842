"""The Web Push provider against a push service stand-in on 127.0.0.1 (TLS, HTTP/2) that checks the VAPID
JWT, the RFC 8030 headers and the record size, and decrypts the body as the browser would
(tests/standins/webpush.py). Each case: the message, the subscription id the service scripts (or an
endpoint we must refuse), what the browser must decrypt and the headers the service must get, and the
id or the SendError kind + code the provider must give.
"""

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.standins.webpush import WebPushService, write_vapid_key
from tidings.channels.base import FailureKind, SendError
from tidings.channels.push.provider import PushSend, WebPushKeys
from tidings.channels.push.settings import WebPushSettings
from tidings.channels.push.webpush import (
    MAX_PLAINTEXT,
    WebPushProvider,
    check,
    endpoint_problem,
    keys_problem,
    payload,
    vapid_public_key,
)
from tidings.schema.push import PushContent, WebExtras, WebPushMessage
from tidings.specs.push_codes import (
    AUTH_ERROR,
    INVALID_PAYLOAD,
    INVALID_TOKEN,
    PAYLOAD_TOO_LARGE,
    PLATFORM_FAILURE,
    QUOTA_EXCEEDED,
    SERVICE_UNAVAILABLE,
    TOKEN_UNREGISTERED,
)

SUBJECT = "mailto:ops@example.com"
FOUR_WEEKS = 2419200


def at_limit(name: str, extra: int = 0) -> PushContent:
    """A message whose JSON is MAX_PLAINTEXT (+ extra) bytes long when sent as case `name`."""
    rest = len(f'{{"title":"t","body":"","transid":"tid-{name}"}}'.encode())
    return web("t", "x" * (MAX_PLAINTEXT - rest + extra))


def web(title: str = "Sale", text: str = "50% off", **kw: Any) -> PushContent:
    return PushContent(web=WebPushMessage(title=title, text=text, **kw))


@dataclass
class Case:
    name: str
    content: PushContent
    sub: str = "a"  # the subscription id at the stand-in (scripted ids answer as scripted)
    endpoint: str | None = None  # instead of the stand-in's: an endpoint the provider must refuse
    keys: WebPushKeys | str | None = "sub"  # "sub": the subscription's own keys
    priority: int = 2
    expires_in: float | None = None
    pushref: str | None = None
    plaintext: bytes | None = None  # exactly what the browser decrypts
    headers: dict[str, str] = field(default_factory=dict)  # what the service must get (lower-case names)
    absent: tuple[str, ...] = ()  # headers the service must not get
    error: tuple[FailureKind, str] | None = None
    retry_after: float | None = None
    reaches_service: bool = True
    vapid_key: str | None = None  # the key the service expects for this case, when not ours


OTHER_KEY = "BOtherKeyThatIsNotOursAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

CASES = [
    Case(
        "everything",
        web(
            "Sale",
            "50% off, été",
            url="https://shop.example.com/sale",
            actiontext="Open",
            platform_types=["chrome", "firefox"],
            extras=WebExtras(collapse_key="sale", time_to_live=600, customtags={"k": "v", "n": 2}),
        ),
        priority=1,
        pushref="ref-1",
        plaintext=(
            '{"title":"Sale","body":"50% off, été","url":"https://shop.example.com/sale","actiontext":"Open",'
            '"platform_types":["chrome","firefox"],"customtags":{"k":"v","n":2},"pushref":"ref-1",'
            '"transid":"tid-everything"}'
        ).encode(),
        headers={"ttl": "600", "urgency": "high", "topic": "sale", "content-encoding": "aes128gcm"},
    ),
    Case(
        "minimal",
        web(),
        plaintext=b'{"title":"Sale","body":"50% off","transid":"tid-minimal"}',
        headers={"ttl": str(FOUR_WEEKS), "urgency": "normal", "content-encoding": "aes128gcm"},
        absent=("topic",),
    ),
    Case(
        "long collapse key, low priority, expiry in the past",
        web(extras=WebExtras(collapse_key="order status #42 for user")),
        priority=3,
        expires_in=-30,
        headers={"ttl": "0", "urgency": "low", "topic": "8d0_TuLeMzqvN7F6tBzYwf_gNUeJVwXs"},
    ),
    Case("at the limit", at_limit("at the limit"), headers={"content-length": "4096"}),
    Case(
        "one byte more",
        at_limit("one byte more", 1),
        error=(FailureKind.INVALID, PAYLOAD_TOO_LARGE),
        reaches_service=False,
    ),
    Case("410", web(), sub="gone", error=(FailureKind.GONE, TOKEN_UNREGISTERED)),
    Case("404", web(), sub="missing", error=(FailureKind.GONE, TOKEN_UNREGISTERED)),
    Case("413", web(), sub="toolarge", error=(FailureKind.INVALID, PAYLOAD_TOO_LARGE)),
    Case("400", web(), sub="badreq", error=(FailureKind.INVALID, INVALID_PAYLOAD)),
    Case("429", web(), sub="flood", error=(FailureKind.THROTTLED, QUOTA_EXCEEDED), retry_after=7),
    Case("503", web(), sub="boom", error=(FailureKind.UNAVAILABLE, SERVICE_UNAVAILABLE), retry_after=3),
    Case("502 without Retry-After", web(), sub="down", error=(FailureKind.UNAVAILABLE, SERVICE_UNAVAILABLE)),
    Case("401", web(), sub="unauth", error=(FailureKind.CONFIG, AUTH_ERROR)),
    Case("418", web(), sub="teapot", error=(FailureKind.REJECTED, PLATFORM_FAILURE)),
    # The service verifies the JWT but holds another key for the subscription: 403, twice, one warning.
    Case("403", web(), vapid_key=OTHER_KEY, error=(FailureKind.CONFIG, AUTH_ERROR)),
    Case("403 again", web(), vapid_key=OTHER_KEY, error=(FailureKind.CONFIG, AUTH_ERROR)),
    Case("accepted after the 403s", web()),
    Case("no web block", PushContent(), error=(FailureKind.INVALID, INVALID_PAYLOAD), reaches_service=False),
    Case("no keys", web(), keys=None, error=(FailureKind.INVALID, INVALID_TOKEN), reaches_service=False),
    Case(
        "auth secret too short",
        web(),
        keys="short-auth",
        error=(FailureKind.INVALID, INVALID_TOKEN),
        reaches_service=False,
    ),
    *[
        Case(
            f"endpoint {url}",
            web(),
            endpoint=url,
            error=(FailureKind.INVALID, INVALID_TOKEN),
            reaches_service=False,
        )
        for url in (
            "http://fcm.googleapis.com/fcm/send/x",
            "https://10.0.0.1/push/x",
            "https://user:pw@fcm.googleapis.com/fcm/send/x",
            "https://fcm.googleapis.com:8443/fcm/send/x",
            "https://push.example.net/x",
            "https://fcm.googleapis.com.example.net/x",
        )
    ],
]


def settings(tmp_path: Path, service: WebPushService, **kw: Any) -> WebPushSettings:
    base: dict[str, Any] = {
        "vapid_private_key_file": "vapid.pem",
        "subject": SUBJECT,
        "allow_hosts": ["127.0.0.1"],
        "ca_file": str(service.ca_file),
    }
    return WebPushSettings(**(base | kw))


async def outcome(provider: WebPushProvider, item: PushSend) -> str | SendError:
    try:
        return await provider.send(item)
    except SendError as exc:
        return exc


def test_cases(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tidings")
    public = write_vapid_key(tmp_path / "vapid.pem")
    errors: list[SendError] = []

    async def main() -> None:
        async with WebPushService(tmp_path, expected_vapid_key=public) as service:
            service.script |= {"unauth": (401, {}), "teapot": (418, {})}
            _, keys = service.new_subscription("a")
            provider = WebPushProvider(settings(tmp_path, service), base_dir=tmp_path)
            try:
                for case in CASES:
                    got = await run_case(service, provider, case, keys, public)
                    if isinstance(got, SendError):
                        errors.append(got)
            finally:
                await provider.close()
            # One JWT for the one audience, signed with our key, and one fresh ECDH key per message.
            assert {r.headers["authorization"] for r in service.received} == {
                service.received[0].headers["authorization"]
            }
            assert {r.vapid_key for r in service.received} == {public}
            assert len({r.keyid for r in service.received}) == len(service.received) == 5
            claims = service.received[0].claims
            assert claims["aud"] == service.origin and claims["sub"] == SUBJECT
            assert 11.9 * 3600 < claims["exp"] - time.time() <= 12 * 3600
            assert {r.http_version for r in service.received} == {"2"}
            secrets = [
                (tmp_path / "vapid.pem").read_text().splitlines()[1],
                service.received[0].headers["authorization"].split("t=")[1].split(",")[0],
                keys.auth,
            ]
            texts = [r.getMessage() for r in caplog.records] + [e.description for e in errors]
            assert not [t for t in texts for s in secrets if s in t]

    asyncio.run(main())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["web push: 127.0.0.1 refused our VAPID authorization (401)"]


async def run_case(
    service: WebPushService, provider: WebPushProvider, case: Case, keys: WebPushKeys, public: str
) -> str | SendError:
    if case.keys == "sub":
        item_keys: WebPushKeys | None = keys
    elif case.keys == "short-auth":
        item_keys = WebPushKeys(p256dh=keys.p256dh, auth="c2hvcnQ")
    else:
        item_keys = None
    expiry = time.time() + case.expires_in if case.expires_in is not None else None
    item = PushSend(
        transid=f"tid-{case.name}",
        platform="web",
        token=case.endpoint or service.endpoint(case.sub),
        content=PushContent(**{**_fields(case.content), "pushref": case.pushref}),
        expiry=expiry,
        priority=case.priority,
        keys=item_keys,
    )
    service.expected_vapid_key = case.vapid_key or public
    requests, delivered = service.requests, len(service.received)
    got = await outcome(provider, item)
    assert service.requests == requests + (1 if case.reaches_service else 0), case.name
    if case.error is not None:
        assert isinstance(got, SendError), (case.name, got)
        assert (got.kind, got.code) == case.error, (case.name, got.kind, got.code, got.description)
        assert got.retry_after == case.retry_after, case.name
        assert len(service.received) == delivered, case.name
        return got
    assert len(service.received) == delivered + 1, (case.name, got, service.refused[-1:])
    seen = service.received[-1]
    assert got == f"{service.origin}/m/{len(service.received)}", case.name
    if case.plaintext is not None:
        assert seen.plaintext == case.plaintext, case.name
    assert seen.json["transid"] == item.transid
    assert {k: seen.headers.get(k) for k in case.headers} == case.headers, case.name
    assert not [h for h in case.absent if h in seen.headers], case.name
    return got


def _fields(content: PushContent) -> dict[str, Any]:
    return {f: getattr(content, f) for f in content.__struct_fields__}


def test_payload_is_pure_and_golden() -> None:
    now = 1_800_000_000.0
    item = PushSend(
        "tid-1",
        "web",
        "https://fcm.googleapis.com/fcm/send/x",
        web("Hi", "Hello", url="https://e.example/", extras=WebExtras(customtags={"a": "b"})),
        expiry=now + 90.7,
        priority=3,
    )
    assert payload(item, now) == (
        b'{"title":"Hi","body":"Hello","url":"https://e.example/","customtags":{"a":"b"},"transid":"tid-1"}',
        {
            "TTL": "90",
            "Urgency": "low",
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
        },
    )


def test_jwt_is_cached_per_audience_and_renewed_an_hour_before_it_expires(tmp_path: Path) -> None:
    write_vapid_key(tmp_path / "vapid.pem", pkcs8=False)  # a SEC1 "EC PRIVATE KEY" PEM is taken as well
    clock = [time.time()]

    async def main() -> None:
        async with WebPushService(tmp_path) as service:
            _, keys = service.new_subscription("a")
            conf = settings(tmp_path, service, allow_hosts=["127.0.0.1", "localhost"])
            provider = WebPushProvider(conf, base_dir=tmp_path, clock=lambda: clock[0])
            start = clock[0]

            async def send(host: str) -> dict[str, Any]:
                token = service.endpoint("a").replace("127.0.0.1", host)
                got = await provider.send(PushSend("t", "web", token, web(), keys=keys))
                assert got.startswith("https://"), got
                return service.received[-1].claims

            try:
                first = await send("127.0.0.1")
                clock[0] = start + 10.9 * 3600
                assert await send("127.0.0.1") == first
                other = await send("localhost")  # another origin: its own JWT
                assert other["aud"] == f"https://localhost:{service.port}"
                clock[0] = start + 11 * 3600 + 1
                renewed = await send("127.0.0.1")
                assert renewed["exp"] == int(clock[0]) + 12 * 3600 > first["exp"]
            finally:
                await provider.close()
            assert len({r.headers["authorization"] for r in service.received}) == 3

    asyncio.run(main())


def test_connection_failures(tmp_path: Path) -> None:
    write_vapid_key(tmp_path / "vapid.pem")

    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # never answers the TLS handshake

    async def main() -> None:
        async with WebPushService(tmp_path) as service:
            _, keys = service.new_subscription("a")
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            closed_port = sock.getsockname()[1]
            sock.close()
            server = await asyncio.start_server(silent, "127.0.0.1", 0)
            silent_port = server.sockets[0].getsockname()[1]
            trusting = WebPushProvider(settings(tmp_path, service), base_dir=tmp_path, timeout_s=0.3)
            untrusting = WebPushProvider(settings(tmp_path, service, ca_file=""), base_dir=tmp_path)
            cases: list[tuple[WebPushProvider, str, FailureKind]] = [
                (trusting, f"https://127.0.0.1:{closed_port}/push/a", FailureKind.CONNECTION),
                (trusting, f"https://127.0.0.1:{silent_port}/push/a", FailureKind.TIMEOUT),
                (untrusting, service.endpoint("a"), FailureKind.CONNECTION),  # its certificate is not trusted
                (trusting, service.endpoint("hang"), FailureKind.TIMEOUT),  # takes the request, never answers
            ]
            try:
                for provider, url, kind in cases:
                    started = time.monotonic()
                    got = await outcome(provider, PushSend("t", "web", url, web(), keys=keys))
                    assert isinstance(got, SendError) and got.kind is kind, (url, got)
                    assert got.code is None and "127.0.0.1" in got.description
                    assert time.monotonic() - started < 3
            finally:
                for provider in (trusting, untrusting):
                    await provider.close()
                server.close()
                for writer in held:
                    writer.close()
                    await writer.wait_closed()
                await server.wait_closed()
            assert service.received == []

    asyncio.run(main())


def test_unusable_credentials_fail_as_config(tmp_path: Path) -> None:
    (tmp_path / "vapid.pem").write_text("not a key")
    conf = WebPushSettings(vapid_private_key_file="vapid.pem", subject=SUBJECT, allow_hosts=["127.0.0.1"])
    keys = WebPushKeys(*_browser_keys())

    async def main() -> SendError | str:
        provider = WebPushProvider(conf, base_dir=tmp_path)
        try:
            return await outcome(
                provider, PushSend("t", "web", "https://127.0.0.1:1/push/a", web(), keys=keys)
            )
        finally:
            await provider.close()

    got = asyncio.run(main())
    assert isinstance(got, SendError) and (got.kind, got.code) == (FailureKind.CONFIG, AUTH_ERROR)
    assert "not an unencrypted PEM private key" in got.description


def _browser_keys() -> tuple[str, str]:
    import base64

    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("="), "AAAAAAAAAAAAAAAAAAAAAA"


ALLOWED = WebPushSettings(
    vapid_private_key_file="v.pem",
    subject=SUBJECT,
    allow_hosts=["push.example.org", "*.corp.example", "10.1.2.3"],
)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc", None),
        ("https://fcm.googleapis.com:443/fcm/send/abc", None),
        ("https://updates.push.services.mozilla.com/wpush/v2/x", None),
        ("https://eu.push.services.mozilla.com/wpush/v2/x", None),
        ("https://wns2-by3p.notify.windows.com/w/?token=x", None),
        ("https://web.push.apple.com/QGx", None),
        ("https://api.push.apple.com/x", None),
        ("https://push.example.org:8443/x", None),  # listed: any port
        ("https://a.b.corp.example/x", None),
        ("https://10.1.2.3/x", None),
        ("https://corp.example/x", "corp.example is not a known push service nor in allow_hosts"),
        ("http://fcm.googleapis.com/x", "not an https URL"),
        (
            "https://fcm.googleapis.com:8443/x",
            "port 8443 is not 443 and fcm.googleapis.com is not in allow_hosts",
        ),
        ("https://u:p@fcm.googleapis.com/x", "the URL carries credentials"),
        ("https://fcm.googleapis.com@evil.example/x", "the URL carries credentials"),
        ("https://10.1.2.4/x", "the address 10.1.2.4 is not in allow_hosts"),
        ("https://[::1]/x", "the address ::1 is not in allow_hosts"),
        ("https://169.254.169.254/latest", "the address 169.254.169.254 is not in allow_hosts"),
        ("https://push.services.mozilla.com.evil.example/x", "push.services.mozilla.com.evil.example is not"),
        ("https://fcm.googleapis.com%2eevil.example/x", "the URL's host is not a plain host name"),
        ("https://fcm.googleapis.com/x y", "not a plain URL of at most 2048 characters"),
        ("https://fcm.googleapis.com:99999/x", "not a valid URL"),
        ("https:///x", "the URL has no host"),
        ("fcm.googleapis.com/x", "not an https URL"),
    ],
)
def test_endpoint_problem(url: str, problem: str | None) -> None:
    found = endpoint_problem(url, ALLOWED)
    assert found == problem or (problem and found and found.startswith(problem)), found


def test_keys_problem() -> None:
    p256dh, auth = _browser_keys()
    assert keys_problem(WebPushKeys(p256dh, auth)) is None
    assert keys_problem(WebPushKeys(p256dh + "==", auth)) is None  # padded base64url is taken too
    assert keys_problem(None) == "the subscription has no keys"
    assert keys_problem(WebPushKeys(p256dh[:-4], auth)) == "p256dh is not an uncompressed P-256 public key"
    off_curve = p256dh[:60] + ("A" if p256dh[60] != "A" else "B") + p256dh[61:]
    assert keys_problem(WebPushKeys(off_curve, auth)) == "p256dh is not a point on P-256"
    assert keys_problem(WebPushKeys(p256dh, auth[:-2])) == "auth is not a 16-byte secret"


def _write(path: Path, make: Callable[[], Any]) -> None:
    key = make()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def test_check(tmp_path: Path) -> None:
    public = write_vapid_key(tmp_path / "vapid.pem")
    _write(tmp_path / "rsa.pem", lambda: rsa.generate_private_key(65537, 2048))
    _write(tmp_path / "p384.pem", lambda: ec.generate_private_key(ec.SECP384R1()))
    (tmp_path / "ca.pem").write_text("junk")
    good = WebPushSettings(vapid_private_key_file="vapid.pem", subject="https://ops.example.com/contact")
    assert check(good, tmp_path) == []
    assert vapid_public_key(good, tmp_path) == public
    bad = WebPushSettings(
        vapid_private_key_file="rsa.pem",
        subject="ops@example.com",
        allow_hosts=["*.com", "https://push.example.org", "push.example.org", "*.corp.example"],
        ca_file="ca.pem",
    )
    assert check(bad, tmp_path) == [
        f"vapid_private_key_file {tmp_path}/rsa.pem is not a P-256 (prime256v1) key",
        "subject 'ops@example.com' is neither mailto: nor https:",
        "allow_hosts entry '*.com' would allow a whole top-level domain",
        "allow_hosts entry 'https://push.example.org' is not a host name, an IP address or *.domain",
        f"ca_file {tmp_path}/ca.pem is not a readable PEM CA bundle",
    ]
    for name, problem in [
        ("p384.pem", "is not a P-256 (prime256v1) key"),
        ("missing.pem", "does not exist"),
        ("ca.pem", "is not an unencrypted PEM private key"),
    ]:
        conf = WebPushSettings(vapid_private_key_file=name, subject="mailto:")
        assert check(conf, tmp_path) == [
            f"vapid_private_key_file {tmp_path}/{name} {problem}",
            "subject 'mailto:' is not a mailto: address",
        ]
