"""The Web Push provider beyond its table cases (those run through the push connector in the shared
runner: tests/connectors/cases_webpush.py): the pure payload mapping, the VAPID JWT cache, the warning
on a refused key, connection failures with a short timeout, the endpoint and key rules, and check().
The stand-in is the push service of tests/standins/webpush.py (TLS), which decrypts as the browser.
"""

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import replace
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
    WebPushProvider,
    check,
    endpoint_problem,
    keys_problem,
    payload,
    vapid_public_key,
)
from tidings.schema.push import PushContent, WebExtras, WebPushMessage
from tidings.specs.push_codes import AUTH_ERROR

SUBJECT = "mailto:ops@example.com"
OTHER_KEY = "BOtherKeyThatIsNotOursAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def web(title: str = "Sale", text: str = "50% off", **kw: Any) -> PushContent:
    return PushContent(web=WebPushMessage(title=title, text=text, **kw))


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


def test_a_refused_key_is_logged_once_until_a_send_succeeds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tidings")
    public = write_vapid_key(tmp_path / "vapid.pem")

    async def main() -> list[str | SendError]:
        async with WebPushService(tmp_path, expected_vapid_key=public) as service:
            service.script["unauth"] = (401, {})
            _, keys = service.new_subscription("a")
            provider = WebPushProvider(settings(tmp_path, service), base_dir=tmp_path)

            async def send(sub: str, key: str) -> str | SendError:
                service.expected_vapid_key = key
                return await outcome(provider, PushSend("t", "web", service.endpoint(sub), web(), keys=keys))

            try:
                return [
                    await send("unauth", public),
                    await send("a", OTHER_KEY),  # 403: the subscription was made with another key
                    await send("a", public),
                    await send("a", OTHER_KEY),
                ]
            finally:
                await provider.close()

    got = asyncio.run(main())
    assert [(g.kind, g.code) if isinstance(g, SendError) else "sent" for g in got] == [
        (FailureKind.CONFIG, AUTH_ERROR),
        (FailureKind.CONFIG, AUTH_ERROR),
        "sent",
        (FailureKind.CONFIG, AUTH_ERROR),
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "web push: 127.0.0.1 refused our VAPID authorization (401)",
        "web push: 127.0.0.1 refused our VAPID authorization (403)",
    ]


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
    # The v1 priority as Urgency (it does not reach the push connector yet, so only here).
    urgency = {p: payload(replace(item, priority=p), now)[1]["Urgency"] for p in (1, 2, 3)}
    assert urgency == {1: "high", 2: "normal", 3: "low"}


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
            assert len({r.keyid for r in service.received}) == 4  # a fresh ECDH key per message

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
