"""Asking the relay for delivery reports (RFC 3461): what goes on the wire to a relay that offers DSN,
and what comes of it.

End to end: `POST /v2/messages` with a cc → the relay stand-in (aiosmtpd, offering DSN) records
`RET=HDRS ENVID=<messageId>` on MAIL FROM and `NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;<address>` on the
message's own RCPT TO (none on the cc) → the success report such a relay sends back, over SMTP to the
server's bounce listener → Delivered 7500 at the notify URL. Then, through the connector: nothing asked
of a relay that does not offer DSN (pipelined or not), with `dsn_notify = []`, or without a bounce
domain (the reports would go to the From mailbox); `never` and `delay` as configured; the provider
attempt shows what went; the config checks; xtext.
"""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import unique_path
from tests.standins.smtp import SmtpStandIn, relayed_config
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer, free_port
from tests.test_email_bounces import BOUNCES, bounce, report, statuses
from tidings.channels.base import Outbound, SendError, SendResult
from tidings.channels.email.connector import SmtpConnector
from tidings.channels.email.notify import xtext
from tidings.channels.email.settings import EmailConfig, SmtpConfig
from tidings.config import ConfigError, parse_config
from tidings.ids import new_id
from tidings.schema.email import EmailContent

KEY = "key-dsn-0001"


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpStandIn]:
    s = SmtpStandIn(tmp_path_factory.mktemp("dsn-relay"), "none", dsn=True).start()
    yield s
    s.stop()


def test_a_relay_offering_dsn_is_asked_and_its_success_report_is_delivered(
    tmp_path: Path, relay: SmtpStandIn, receiver: Receiver
):
    bounce_port = free_port()
    server = TidingsServer(tmp_path, relayed_config("svc-dsn", KEY, relay.port, BOUNCES, bounce_port))
    server.start()
    try:
        path = unique_path("dsn")
        body = {
            "channel": "email",
            "from": "news@example.com",
            "to": [{"email": ["ann+news@example.org"]}],
            "content": {"type": "text", "subject": "Hello", "text": "Hello there"},
            "cc": ["copy@example.net"],
            "notifyUrl": receiver.url(path),
        }
        r = server.client.post("/v2/messages", json=body, headers={"key": KEY})
        assert r.status_code == 201, r.text
        transid = r.json()["messageId"]
        assert statuses(receiver.wait_count(path, 1, timeout=10)) == [("Submitted", "7501")]
        (got,) = relay.for_address("ann+news@example.org")
        # aiosmtpd gives the parameters upper-cased
        assert got.mail_options == [f"SIZE={len(got.data)}", "RET=HDRS", f"ENVID={transid.upper()}"]
        assert got.rcpt_options == {
            "ann+news@example.org": ["NOTIFY=SUCCESS,FAILURE", "ORCPT=RFC822;ANN+2BNEWS@EXAMPLE.ORG"]
        }
        assert got.rcpt_tos == ["ann+news@example.org", "copy@example.net"]

        refused, answer = bounce(
            bounce_port, [got.mail_from], report("ann+news@example.org", "delivered", "2.0.0")
        )
        assert refused == {}, answer
        hits = receiver.wait_count(path, 2, timeout=10)
        assert statuses(hits) == [("Submitted", "7501"), ("Delivered", "7500")]
    finally:
        assert server.stop() == 0, server.output()
        server.close()


CONTENT = EmailContent(
    sender="news@example.com", subject="Hi", type="text", text="Hello", cc=["cc@example.net"]
)


def _send(
    s: SmtpStandIn, address: str, email: EmailConfig, **overrides: object
) -> tuple[SendResult | SendError, list[str], dict[str, list[str]]]:
    settings = SmtpConfig(**{"name": "relay", "port": s.port, "security": "none", **overrides})  # type: ignore[arg-type]
    m = Outbound(new_id(), "svc", "email", address, CONTENT, 1, None, "email")

    async def run() -> SendResult | SendError:
        connector = SmtpConnector(settings, email)
        await connector.start(None)  # type: ignore[arg-type]  # it takes nothing from the inbox
        try:
            (result,) = await connector.send([m])
            return result
        finally:
            await connector.stop()

    result = asyncio.run(run())
    (got,) = s.for_address(address)
    return result, [o for o in got.mail_options if not o.startswith("SIZE=")], got.rcpt_options


def test_what_is_asked_and_when(tmp_path: Path, relay: SmtpStandIn):
    with_bounces = EmailConfig(bounce_domain=BOUNCES)
    result, mail, rcpt = _send(relay, "never@example.org", with_bounces, dsn_notify=["never"])
    assert mail[0] == "RET=HDRS" and rcpt == {
        "never@example.org": ["NOTIFY=NEVER", "ORCPT=RFC822;NEVER@EXAMPLE.ORG"]
    }
    assert isinstance(result, SendResult) and result.exchange is not None
    assert (
        "RCPT TO:<never@example.org> NOTIFY=NEVER ORCPT=rfc822;never@example.org" in result.exchange.request
    )
    assert "MAIL FROM:<bounces+" in result.exchange.request and " RET=HDRS ENVID=" in result.exchange.request

    _, _, rcpt = _send(relay, "all@example.org", with_bounces, dsn_notify=["failure", "delay", "success"])
    assert rcpt["all@example.org"][0] == "NOTIFY=FAILURE,DELAY,SUCCESS"

    result, mail, rcpt = _send(relay, "quiet@example.org", with_bounces, dsn_notify=[])
    assert (mail, rcpt) == ([], {})
    assert isinstance(result, SendResult) and result.exchange is not None
    assert "RCPT TO:<quiet@example.org>\n" in result.exchange.request

    # no bounce domain: the envelope sender is the From address, which must not get a report per email
    _, mail, rcpt = _send(relay, "from@example.org", EmailConfig())
    assert (mail, rcpt) == ([], {})

    for pipelining in (True, False):  # a relay that does not offer DSN must not see the parameters
        plain = SmtpStandIn(tmp_path, "none", pipelining=pipelining).start()
        try:
            result, mail, rcpt = _send(plain, f"plain{pipelining}@example.org", with_bounces)
            assert isinstance(result, SendResult) and (mail, rcpt) == ([], {})
        finally:
            plain.stop()
    lockstep = SmtpStandIn(tmp_path, "none", pipelining=False, dsn=True).start()
    try:
        result, mail, rcpt = _send(lockstep, "step@example.org", with_bounces)
        assert isinstance(result, SendResult) and mail[0] == "RET=HDRS"
        assert rcpt == {"step@example.org": ["NOTIFY=SUCCESS,FAILURE", "ORCPT=RFC822;STEP@EXAMPLE.ORG"]}
    finally:
        lockstep.stop()


def test_xtext():
    assert xtext("ann+news@example.org") == b"ann+2Bnews@example.org"
    assert xtext("a=b c\u00e9") == b"a+3Db+20c+C3+A9"
    assert xtext("0196f3c2-7a5e-7c3b") == b"0196f3c2-7a5e-7c3b"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('["success", "sometimes"]', "unknown value 'sometimes'"),
        ('["never", "failure"]', "'never' must be alone"),
        ('["failure", "failure"]', "names a value twice"),
    ],
)
def test_the_config_refuses_a_bad_dsn_notify(tmp_path: Path, value: str, problem: str):
    text = f'[[smtp]]\nname = "relay"\ndsn_notify = {value}\n\n[routes]\nemail = "relay"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "mail.toml", tmp_path)
    assert f"smtp[0].dsn_notify: {problem}" in "\n".join(caught.value.problems)
    ok = parse_config('[[smtp]]\nname = "relay"\n\n[routes]\nemail = "relay"\n', "mail.toml", tmp_path)
    assert ok.smtp[0].dsn_notify == ["success", "failure"]
