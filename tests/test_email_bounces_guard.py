"""The bounce listener faces the internet (it is the bounce domain's MX): STARTTLS offered when a
certificate is configured, and taken by a mail server that asks for it (aiosmtplib with a trustme CA),
while a server without TLS is still served; connections over `bounce_max_sessions` are answered 421 and
closed, and a freed slot takes the next; the `[email]` checks of those keys."""

import asyncio
import ssl
from pathlib import Path

import aiosmtplib
import pytest
import trustme

from tests.standins.smtp import relayed_config
from tests.support.backends import Backend, backend
from tests.support.server import TidingsServer, free_port
from tests.test_email_bounces_listener import DOMAIN, SVC, dsn, submit
from tidings.channels.email.bounces import BounceListener
from tidings.channels.email.settings import EmailConfig
from tidings.config import ConfigError, parse_config
from tidings.services import ServiceRegistry
from tidings.store.base import Store

__all__ = ["backend"]


def certificate(tmp_path: Path) -> tuple[trustme.CA, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key = tmp_path / "bounces.pem", tmp_path / "bounces.key"
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    return ca, chain, key


def test_starttls_is_offered_and_taken(backend: Backend, tmp_path: Path):
    ca, chain, key = certificate(tmp_path)
    settings = EmailConfig(
        bounce_tls_cert_file=chain.name, bounce_tls_key_file=key.name, base_dir=str(tmp_path)
    )
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)

    async def scenario(store: Store) -> tuple[bool, bool, str, str]:
        report = dsn("tls@example.net", "delivered", "2.0.0")
        await submit(store, {"e-tls": "tls@example.net", "e-plain": "plain@example.net"}, {})
        listener = BounceListener(
            store,
            ServiceRegistry(),
            lambda: None,
            domain=DOMAIN,
            host="127.0.0.1",
            port=0,
            tls=settings.bounce_tls(),
        )
        await listener.start()
        try:
            smtp = aiosmtplib.SMTP(
                hostname="127.0.0.1", port=listener.port, timeout=5, start_tls=True, tls_context=client_tls
            )
            async with smtp:
                encrypted = smtp.get_transport_info("sslcontext") is not None
                await smtp.sendmail("", [f"bounces+e-tls@{DOMAIN}"], report)
            # a server without TLS is still served (an MX cannot require it), and it was offered TLS
            plain = aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port, timeout=5, start_tls=False)
            async with plain:
                await plain.ehlo()
                offered = plain.supports_extension("starttls")
                await plain.sendmail(
                    "", [f"bounces+e-plain@{DOMAIN}"], dsn("plain@example.net", "delivered", "2.0.0")
                )
        finally:
            await listener.stop()
        tls_view, plain_view = await store.get_message(SVC, "e-tls"), await store.get_message(SVC, "e-plain")
        assert tls_view is not None and plain_view is not None
        return encrypted, offered, tls_view.status, plain_view.status

    assert backend.run(scenario) == (True, True, "Delivered", "Delivered")


async def _greeting(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(5):
            return await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()


def test_connections_over_the_limit_are_told_to_come_back(backend: Backend):
    async def scenario(store: Store) -> tuple[list[bytes], bytes, bytes]:
        listener = BounceListener(
            store, ServiceRegistry(), lambda: None, domain=DOMAIN, host="127.0.0.1", port=0, max_sessions=2
        )
        await listener.start()
        try:
            held = [aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port, timeout=5) for _ in range(2)]
            greetings = [(await smtp.connect()).message.encode() for smtp in held]
            refused = await _greeting(listener.port)
            await held[0].quit()
            for _ in range(50):  # the listener learns of the closed session on its loop's next turns
                if len(listener._sessions) < 2:
                    break
                await asyncio.sleep(0.01)
            after = await _greeting(listener.port)
            await held[1].quit()
        finally:
            await listener.stop()
        return greetings, refused, after

    greetings, refused, after = backend.run(scenario)
    assert all(b"Tidings bounces" in g for g in greetings), greetings
    assert refused == b"421 4.7.0 Too many connections; try again later\r\n"
    assert after.startswith(b"220 "), after


@pytest.mark.parametrize(
    ("keys", "problems"),
    [
        (
            'bounce_tls_cert_file = "c.pem"',
            ["email.bounce_tls_key_file: STARTTLS needs bounce_tls_cert_file"],
        ),
        (
            'bounce_tls_cert_file = "missing.pem"\nbounce_tls_key_file = "missing.key"',
            ["email.bounce_tls_cert_file: cannot load the certificate and key: No such file or directory"],
        ),
        ("bounce_max_sessions = 0", ["email.bounce_max_sessions: must be at least 1, got 0"]),
    ],
)
def test_the_checks(tmp_path: Path, keys: str, problems: list[str]):
    text = f'[email]\nbounce_domain = "{DOMAIN}"\nbounce_port = 2525\n{keys}\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "mail.toml", tmp_path)
    said = "\n".join(caught.value.problems)
    for problem in problems:
        assert problem in said, said


def test_a_certificate_that_does_not_match_its_key_is_refused(tmp_path: Path):
    _, chain, _ = certificate(tmp_path)
    other = tmp_path / "other.key"
    trustme.CA().issue_cert("127.0.0.1").private_key_pem.write_to_path(str(other))
    text = f'[email]\nbounce_domain = "{DOMAIN}"\nbounce_port = 2525\n'
    text += f'bounce_tls_cert_file = "{chain.name}"\nbounce_tls_key_file = "{other.name}"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "mail.toml", tmp_path)
    assert "email.bounce_tls_cert_file: cannot load the certificate and key" in "\n".join(
        caught.value.problems
    )
    good = text.replace(other.name, "bounces.key")
    assert parse_config(good, "mail.toml", tmp_path).email.bounce_tls() is not None


def test_the_server_listens_with_the_configured_tls_and_limit(tmp_path: Path):
    ca, chain, key = certificate(tmp_path)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    bounce_port = free_port()
    config = relayed_config("svc-guard", "key-guard-0001", free_port(), DOMAIN, bounce_port)
    config = config.replace(
        "[email]\n",
        f'[email]\nbounce_tls_cert_file = "{chain.name}"\nbounce_tls_key_file = "{key.name}"\n'
        "bounce_max_sessions = 1\n",
    )
    server = TidingsServer(tmp_path, config).start()

    async def session() -> tuple[bool, bytes]:
        smtp = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=bounce_port, timeout=5, start_tls=True, tls_context=client_tls
        )
        async with smtp:
            return smtp.get_transport_info("sslcontext") is not None, await _greeting(bounce_port)

    try:
        assert asyncio.run(session()) == (True, b"421 4.7.0 Too many connections; try again later\r\n")
    finally:
        assert server.stop() == 0, server.output()
        server.close()
