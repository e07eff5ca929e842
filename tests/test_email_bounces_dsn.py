"""Reading bounce reports (tidings/channels/email/dsn.py) on their own: which recipient block speaks for a
message, and the Bounce description each status code gets."""

import pytest

from tests.test_email_bounces_listener import QMAIL, dsn
from tidings.channels.email.dsn import BounceReport, RecipientReport, for_address, read, verdict


def block(recipient: str, action: str = "failed", status: str = "5.1.1", final: str = "") -> RecipientReport:
    return RecipientReport(recipient, final or recipient, action, status, "")


def test_the_block_about_the_message_address_decides():
    own, cc = block("ann@example.org", "delivered", "2.0.0"), block("cc@example.org")
    assert for_address(BounceReport((cc, own), True), "Ann@Example.org") == own
    # Final-Recipient names it, Original-Recipient was another form of it
    renamed = block("ANN@example.org.", final="ann@example.org")
    assert for_address(BounceReport((renamed,), True), "ann@example.org") == renamed
    # a block about a cc (on the first message's envelope) never speaks for the message, even alone
    assert for_address(BounceReport((cc,), True), "ann@example.org") is None


@pytest.mark.parametrize(
    ("action", "status", "expected"),
    [
        ("failed", "5.1.1", ("Bounce", "Permanent_NoEmail", True)),
        ("failed", "5.2.2", ("Bounce", "Permanent_MailboxFull", True)),
        ("failed", "5.3.4", ("Bounce", "Permanent_MessageTooLarge", True)),
        ("failed", "5.7.1", ("Bounce", "Permanent_ContentRejected", True)),
        ("failed", "5.4.4", ("Bounce", "Permanent_General", True)),
        ("failed", "4.4.7", ("Bounce", "Transient_General", False)),
        ("failed", "", ("Bounce", "Permanent_General", True)),  # heuristic formats give no status
        ("delivered", "2.0.0", ("Delivered", "Delivered", False)),
        ("expanded", "2.0.0", ("Delivered", "Delivered", False)),
        ("delayed", "4.4.1", None),
        ("relayed", "2.0.0", None),
    ],
)
def test_what_each_report_does(action: str, status: str, expected: tuple[str, str, bool] | None):
    v = verdict(block("a@example.org", action, status))
    assert (None if v is None else (v.status, v.description, v.suppress)) == expected


def test_reports_are_read_from_dsns_and_other_formats():
    standard = read(dsn("ann@example.org", "failed", "5.1.1 (user unknown)", "smtp; 550 5.1.1 unknown"))
    assert standard is not None and standard.standard
    assert standard.recipients == (
        RecipientReport("ann@example.org", "ann@example.org", "failed", "5.1.1", "smtp; 550 5.1.1 unknown"),
    )
    heuristic = read(QMAIL % b"Old@Example.net")
    assert heuristic is not None and not heuristic.standard
    assert [(r.recipient, r.action) for r in heuristic.recipients] == [("old@example.net", "failed")]
    assert read(b"Subject: hello\r\n\r\nI am away.\r\n") is None
    assert read(b"\x00\xff not mail at all") is None
