"""The bounce listener as a mail server sees it, on every store backend: reports sent over SMTP
(aiosmtplib) to `bounces+<transid>@<bounce domain>`, built as mail systems build them (RFC 3464
multipart/report with the standard library, and a qmail-style plain-text bounce), and what each does to
the message it names: its status, its history, the notification queued, the address suppressed. Also the
SMTP answers: 550 for any other recipient, 250 for unknown ids and unreadable mail (no bounce loops),
451 for a message not yet recorded as sent."""

import asyncio
import json
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

import aiosmtplib
import pytest

from tests.support.backends import Backend, backend
from tidings.channels.email import bounces
from tidings.channels.email.bounces import BounceListener
from tidings.services import ServiceRegistry
from tidings.statuses import SUBMITTED
from tidings.store.base import NewMessage, Store, Update

__all__ = ["backend"]

SVC = "svc-mail"
DOMAIN = "bounces.example.com"
T0 = 1_700_000_000.0


def dsn(recipient: str, action: str, status: str, diagnostic: str = "", original: bool = True) -> bytes:
    """An RFC 3464 delivery status notification from a relay, about one recipient."""
    report = MIMEMultipart("report")
    report.set_param("report-type", "delivery-status")
    report["From"] = "Mail Delivery System <MAILER-DAEMON@relay.example.net>"
    report["To"] = f"bounces+x@{DOMAIN}"
    report["Subject"] = "Delivery Status Notification"
    report.attach(MIMEText(f"Your message to {recipient}: {action}.\n"))
    status_part = Message()
    status_part.set_type("message/delivery-status")
    per_message = Message()
    per_message["Reporting-MTA"] = "dns; relay.example.net"
    per_recipient = Message()
    if original:
        per_recipient["Original-Recipient"] = f"rfc822;{recipient}"
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    if diagnostic:
        per_recipient["Diagnostic-Code"] = diagnostic
    status_part.set_payload([per_message, per_recipient])
    report.attach(status_part)
    headers = MIMEText("From: news@example.com\nSubject: Offer\n", "rfc822-headers")
    report.attach(headers)
    return report.as_bytes()


QMAIL = b"""From: MAILER-DAEMON@mx.example.net
To: bounces+x@bounces.example.com
Subject: failure notice

Hi. This is the qmail-send program at mx.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<%s>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Subject: Offer
"""

AUTO_REPLY = b"""From: someone@example.org
To: bounces+x@bounces.example.com
Subject: Out of office

I am away until Monday.
"""


def email(transid: str, address: str) -> NewMessage:
    return NewMessage(
        transid=transid, service_id=SVC, channel="email", address=address, address_type="email",
        content=json.dumps({"subject": "Offer"}).encode(), parts=1, correlationid=None, callback_data=None,
        notify_url="http://127.0.0.1:9/notify", priority=2, expiry=None, created_at=T0,
    )  # fmt: skip


async def submit(store: Store, addresses: dict[str, str], queued: dict[str, str]) -> None:
    await store.accept([email(t, a) for t, a in addresses.items()])
    claimed = await store.claim_due(T0 + 1, 1000, 60)
    await store.record(
        [
            Update(transid=m.transid, service_id=SVC, at=T0, next_at=None, attempts=1, outcome=SUBMITTED)
            for m in claimed
        ]
    )
    await store.accept([email(t, a) for t, a in queued.items()])


async def deliver(port: int, rcpt: list[str], raw: bytes) -> tuple[dict[str, Any], str]:
    """Send one mail from the null sender, as reports are sent; the refused recipients and the answer
    to its DATA."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=5) as smtp:
        refused, answer = await smtp.sendmail("", rcpt, raw)
    return dict(refused), answer


def test_reports_over_smtp_bounce_deliver_or_leave_each_message(backend: Backend):
    addresses = {
        "e-hard": "gone@example.net",
        "e-ok": "fine@example.net",
        "e-later": "slow@example.net",
        "e-qmail": "old@example.net",
        "e-given-up": "full@example.net",
    }

    async def scenario(store: Store) -> tuple[Any, ...]:
        await submit(store, addresses, {"e-queued": "early@example.net"})
        listener = BounceListener(
            store, ServiceRegistry(), lambda: None, domain=DOMAIN, host="127.0.0.1", port=0
        )
        await listener.start()
        try:
            to = lambda transid: [f"bounces+{transid}@{DOMAIN}"]  # noqa: E731
            sent = [
                await deliver(
                    listener.port,
                    to("e-hard"),
                    dsn(
                        "gone@example.net",
                        "failed",
                        "5.1.1",
                        "smtp; 550 5.1.1 <gone@example.net>: no such user",
                    ),
                ),
                await deliver(listener.port, to("e-ok"), dsn("fine@example.net", "delivered", "2.0.0")),
                await deliver(listener.port, to("e-later"), dsn("slow@example.net", "delayed", "4.4.1")),
                await deliver(listener.port, to("e-qmail"), QMAIL % b"old@example.net"),
                await deliver(
                    listener.port,
                    to("e-given-up"),
                    dsn("full@example.net", "failed", "4.2.2", original=False),
                ),
                await deliver(
                    listener.port, to("nobody-knows-this-id"), dsn("x@example.net", "failed", "5.1.1")
                ),
                await deliver(listener.port, to("e-hard"), AUTO_REPLY),
            ]
            with pytest.raises(aiosmtplib.SMTPResponseException) as early:
                await deliver(listener.port, to("e-queued"), dsn("early@example.net", "failed", "5.1.1"))
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
                await deliver(
                    listener.port,
                    ["postmaster@bounces.example.com", "bounces+e-ok@other.example"],
                    dsn("fine@example.net", "failed", "5.1.1"),
                )
        finally:
            await listener.stop()
        records = {t: await store.get_message(SVC, t) for t in [*addresses, "e-queued"]}
        gone = await store.gone_addresses(SVC, "email", [*addresses.values(), "early@example.net"])
        return sent, early.value, refused.value, records, gone

    sent, early, refused, records, gone = backend.run(scenario)
    assert [answer for _, answer in sent] == ["2.0.0 OK"] * 7  # 250: anything else raises
    assert all(not rejected for rejected, _ in sent)
    assert early.code == 451
    assert sorted(r.code for r in refused.recipients) == [550, 550]

    def view(transid: str) -> tuple[str, str, str, list[str]]:
        r = records[transid]
        assert r is not None
        return r.status, r.code, r.description, [h.status for h in r.history]

    assert view("e-hard") == ("Bounce", "7520", "Permanent_NoEmail", ["Submitted", "Bounce"])
    assert view("e-ok") == ("Delivered", "7500", "Delivered", ["Submitted", "Delivered"])
    assert view("e-later")[:2] == ("Submitted", "7501")
    assert view("e-qmail") == ("Bounce", "7520", "Permanent_General", ["Submitted", "Bounce"])
    assert view("e-given-up") == ("Bounce", "7520", "Transient_MailboxFull", ["Submitted", "Bounce"])
    assert view("e-queued")[0] == "Queued"
    # a hard bounce suppresses the address; a relay giving up on a full mailbox does not
    assert {a: (g.code, g.description) for a, g in gone.items()} == {
        "gone@example.net": ("7520", "Permanent_NoEmail"),
        "old@example.net": ("7520", "Permanent_General"),
    }
    # the notifications queued with the changes
    hard = records["e-hard"]
    assert hard is not None and len(hard.notifications) == 1
    assert hard.notifications[0].url == "http://127.0.0.1:9/notify"


def test_one_process_listens_and_another_takes_over_when_it_stops(monkeypatch: pytest.MonkeyPatch):
    """Every dispatching process starts a listener on the same port (`serve --workers N`): the first
    binds it, the others keep trying and one takes over once it is free."""
    monkeypatch.setattr(bounces, "RETRY_BIND_S", 0.05)

    async def scenario() -> tuple[bool, bool, bool]:
        services = ServiceRegistry()
        store: Any = None  # neither listener gets a mail here
        first = BounceListener(store, services, lambda: None, domain=DOMAIN, host="127.0.0.1", port=0)
        await first.start()
        second = BounceListener(
            store, services, lambda: None, domain=DOMAIN, host="127.0.0.1", port=first.port
        )
        await second.start()
        both = first.listening and second.listening
        await first.stop()
        for _ in range(100):  # bounded: 5 s
            if second.listening:
                break
            await asyncio.sleep(0.05)
        took_over = second.listening
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=second.port, timeout=5) as smtp:
            answer = await smtp.ehlo()
        await second.stop()
        return both, took_over, answer.code == 250

    assert asyncio.run(scenario()) == (False, True, True)
