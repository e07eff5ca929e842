"""Email bounces end to end: `POST /v2/messages` → the SMTP relay stand-in (aiosmtpd) takes the message
from the VERP envelope sender `bounces+<messageId>@<bounce_domain>` → a report built as mail systems
build it is sent over SMTP (aiosmtplib) to that address on the running server's bounce listener → the
notification at the receiver, the message's status, and what a later send to the address does.

Reports: an RFC 3464 multipart/report (built with the standard library) saying failed 5.1.1 (Bounce
7520, the address suppressed: the next send is Failed 7240 and never reaches the relay), delivered
(Delivered 7500), delayed (nothing changes); a qmail-style plain-text bounce that flufl.bounce reads;
and the listener refusing any other recipient with 550.
"""

import asyncio
from collections.abc import Iterator
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

import aiosmtplib
import pytest

from tests.conftest import unique_path
from tests.standins.smtp import Received, SmtpStandIn, relayed_config
from tests.support.receiver import Hit, Receiver
from tests.support.server import TidingsServer, free_port

KEY = "key-bounce-0001"
BOUNCES = "bounces.example.com"


def report(recipient: str, action: str, status: str, diagnostic: str = "") -> bytes:
    """An RFC 3464 delivery status notification about one recipient, as a relay sends it."""
    dsn = MIMEMultipart("report")
    dsn.set_param("report-type", "delivery-status")
    dsn["From"] = "Mail Delivery System <MAILER-DAEMON@relay.example.net>"
    dsn["Subject"] = "Delivery Status Notification"
    dsn.attach(MIMEText(f"Delivery to {recipient}: {action}.\n"))
    fields = Message()
    fields.set_type("message/delivery-status")
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; relay.example.net"
    per_recipient["Original-Recipient"] = f"rfc822;{recipient}"
    per_recipient["Final-Recipient"] = f"rfc822;{recipient}"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    if diagnostic:
        per_recipient["Diagnostic-Code"] = diagnostic
    fields.set_payload([per_message, per_recipient])
    dsn.attach(fields)
    dsn.attach(MIMEText("From: news@example.com\nSubject: Hello\n", "rfc822-headers"))
    return dsn.as_bytes()


QMAIL = b"""From: MAILER-DAEMON@mx.example.net
Subject: failure notice

Hi. This is the qmail-send program at mx.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<%s>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Subject: Hello
"""


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpStandIn]:
    s = SmtpStandIn(tmp_path_factory.mktemp("relay"), "none").start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def bounce_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, relay: SmtpStandIn, bounce_port: int
) -> Iterator[TidingsServer]:
    config = relayed_config("svc-mail", KEY, relay.port, BOUNCES, bounce_port)
    s = TidingsServer(tmp_path_factory.mktemp("bounces"), config).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()


def send(server: TidingsServer, address: str, notify: str) -> str:
    body = {
        "channel": "email",
        "from": "news@example.com",
        "to": [{"email": [address]}],
        "content": {"type": "text", "subject": "Hello", "text": "Hello there"},
        "notifyUrl": notify,
    }
    r = server.client.post("/v2/messages", json=body, headers={"key": KEY})
    assert r.status_code == 201, r.text
    return str(r.json()["messageId"])


def sent(server: TidingsServer, relay: SmtpStandIn, receiver: Receiver, address: str) -> tuple[str, str, str]:
    """One email to `address`, taken by the relay and notified Submitted: its messageId, its notify
    path and the envelope sender the relay saw."""
    path = unique_path("mail")
    transid = send(server, address, receiver.url(path))
    assert statuses(receiver.wait_count(path, 1, timeout=10)) == [("Submitted", "7501")]
    got: list[Received] = relay.for_address(address)
    assert got, f"the relay has nothing for {address}"
    return transid, path, got[-1].mail_from


def bounce(port: int, rcpt: list[str], raw: bytes) -> tuple[Any, str]:
    """Send one report to the server's bounce listener from the null sender, as mail systems send
    them; the refused recipients and the answer to its DATA."""

    async def deliver() -> tuple[Any, str]:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=5) as smtp:
            return await smtp.sendmail("", rcpt, raw)

    return asyncio.run(deliver())


def statuses(hits: list[Hit]) -> list[tuple[str, str]]:
    return [(h.info["deliveryStatus"], h.info["code"]) for h in hits]


def queued(server: TidingsServer, transid: str) -> int:
    """How many notifications the message has (sent or not yet)."""
    return int(server.rows("SELECT count(*) FROM notifications WHERE transid = ?", transid)[0][0])


def view(server: TidingsServer, transid: str) -> dict[str, Any]:
    r = server.client.get(f"/v2/messages/{transid}", headers={"key": KEY})
    return dict(r.json())


def test_a_hard_bounce_report_bounces_the_message_and_suppresses_the_address(
    server: TidingsServer, relay: SmtpStandIn, receiver: Receiver, bounce_port: int
):
    transid, path, sender = sent(server, relay, receiver, "ann@example.net")
    assert sender == f"bounces+{transid}@{BOUNCES}"
    diagnostic = "smtp; 550 5.1.1 <ann@example.net>: Recipient address rejected"
    bounce(bounce_port, [sender], report("ann@example.net", "failed", "5.1.1", diagnostic))
    hits = receiver.wait_count(path, 2, timeout=10)
    assert statuses(hits) == [("Submitted", "7501"), ("Bounce", "7520")]
    assert hits[1].info["Description"] == "Permanent_NoEmail"
    assert hits[1].info["additionalInfo"] == f"5.1.1 {diagnostic}"
    assert hits[1].info["destination"] == "ann@example.net" and hits[1].transid == transid
    # the next email to the address fails at once, and the relay never hears of it
    rcpts_before = relay.rcpts.count("ann@example.net")
    later_path = unique_path("later")
    later = send(server, "ann@example.net", receiver.url(later_path))
    later_hits = receiver.wait_count(later_path, 1, timeout=10)
    assert statuses(later_hits) == [("Failed", "7240")] and later_hits[0].transid == later
    assert relay.rcpts.count("ann@example.net") == rcpts_before
    # a repeat of the report changes nothing (what it changed would be stored before its 250)
    bounce(bounce_port, [sender], report("ann@example.net", "failed", "5.1.1"))
    assert queued(server, transid) == 2 and len(view(server, transid)["history"]) == 3


def test_a_success_report_delivers_and_a_delayed_one_changes_nothing(
    server: TidingsServer, relay: SmtpStandIn, receiver: Receiver, bounce_port: int
):
    ok, ok_path, ok_sender = sent(server, relay, receiver, "bob@example.net")
    slow, slow_path, slow_sender = sent(server, relay, receiver, "cy@example.net")
    bounce(bounce_port, [slow_sender], report("cy@example.net", "delayed", "4.4.1", "smtp; 451 4.4.1 later"))
    bounce(bounce_port, [ok_sender], report("bob@example.net", "delivered", "2.0.0", "smtp; 250 2.0.0 Ok"))
    hits = receiver.wait_count(ok_path, 2, timeout=10)
    assert statuses(hits) == [("Submitted", "7501"), ("Delivered", "7500")]
    # the delayed report was answered (committed) before the success one was sent
    assert view(server, slow)["status"] == "submitted"
    assert statuses(receiver.at(slow_path)) == [("Submitted", "7501")]
    assert view(server, ok)["status"] == "delivered"


def test_a_non_standard_bounce_is_read_too(
    server: TidingsServer, relay: SmtpStandIn, receiver: Receiver, bounce_port: int
):
    _, path, sender = sent(server, relay, receiver, "dee@example.net")
    bounce(bounce_port, [sender], QMAIL % b"dee@example.net")
    hits = receiver.wait_count(path, 2, timeout=10)
    assert statuses(hits)[1] == ("Bounce", "7520") and hits[1].info["Description"] == "Permanent_General"


def test_the_listener_takes_nothing_but_bounce_reports(
    server: TidingsServer, relay: SmtpStandIn, receiver: Receiver, bounce_port: int
):
    others = ["postmaster@bounces.example.com", "ann@example.net", "bounces+x@elsewhere.example"]
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        bounce(bounce_port, others, report("ann@example.net", "failed", "5.1.1"))
    assert [r.code for r in refused.value.recipients] == [550, 550, 550]
    # an unknown id and an out-of-office reply are taken (no bounce loop) and dropped
    unknown = report("x@example.net", "failed", "5.1.1")
    assert bounce(bounce_port, [f"bounces+no-such-id@{BOUNCES}"], unknown) == ({}, "2.0.0 OK")
    auto_reply = b"From: dee@example.net\r\nSubject: Out of office\r\n\r\nAway until Monday.\r\n"
    transid, _, sender = sent(server, relay, receiver, "eve@example.net")
    assert bounce(bounce_port, [sender], auto_reply) == ({}, "2.0.0 OK")
    assert queued(server, transid) == 1 and view(server, transid)["status"] == "submitted"
    assert "is no bounce report this can read" in server.output()
