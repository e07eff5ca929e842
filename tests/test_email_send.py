"""Email sent through `POST /v2/messages` to a real SMTP relay stand-in (aiosmtpd with STARTTLS under a
trustme CA, AUTH), over HTTP: the MIME the relay receives (parts, headers, the open pixel, rewritten
links, the generated text part, List-Unsubscribe on a bulk send, no Bcc header), the VERP envelope
sender, the two DKIM signatures, RSA and Ed25519 (each verified with dkimpy), Submitted and never
Delivered without evidence, a 4xx retried until it goes, a 5xx bounced (Bounce 7520) and the address
suppressed (Failed 7240 without the relay seeing it), a 5xx at DATA, and the link records the tracking
endpoints read."""

import base64
import email
import email.policy
import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tests.conftest import unique_path
from tests.standins.smtp import Received, SmtpStandIn
from tests.support.attempts import message_page
from tests.support.console import health_saying, sign_in
from tests.support.receiver import Hit, Receiver
from tests.support.server import TidingsServer

KEY = "key-mail-0001"
RELAY_USER, RELAY_PASSWORD = "relayuser", "relay-pass-7c1e"
BOUNCES = "bounces.example.com"
MESSAGE_ID = re.compile(r"<([0-9a-f-]{36})@example\.com>")


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpStandIn]:
    s = SmtpStandIn(tmp_path_factory.mktemp("relay"), "starttls", {RELAY_USER: RELAY_PASSWORD}).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


@pytest.fixture(scope="module")
def ed25519_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path_factory.mktemp("dkim") / "ed25519.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return path, b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public)


@pytest.fixture(scope="module")
def mail_server(
    tmp_path_factory: pytest.TempPathFactory,
    receiver: Receiver,
    relay: SmtpStandIn,
    dkim_key: tuple[Path, bytes],
    ed25519_key: tuple[Path, bytes],
) -> Iterator[TidingsServer]:
    workdir = tmp_path_factory.mktemp("mailserver")
    config = f"""
[notify]
timeout_s = 2
retry_interval_s = 0.2

[sandbox]
delay_ms = 50

[[services]]
id = "svc-mail"
key = "{KEY}"
notify_url = "{receiver.url("/mail/default")}"
email_from = ["news@example.com", "@example.org"]

[[smtp]]
name = "relay"
host = "127.0.0.1"
port = {relay.port}
security = "starttls"
username = "{RELAY_USER}"
password = "{RELAY_PASSWORD}"
ca_file = "{relay.ca_file}"
connections = 2

[email]
bounce_domain = "{BOUNCES}"
dkim_domain = "example.com"
dkim_selector = "s1"
dkim_key_file = "{dkim_key[0]}"
dkim_ed25519_selector = "ed1"
dkim_ed25519_key_file = "{ed25519_key[0]}"

[routes]
email = "relay"
"""
    s = TidingsServer(workdir, config).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()
    output = s.output()
    assert RELAY_PASSWORD not in output and KEY not in output


def post(server: TidingsServer, body: dict[str, Any]) -> httpx.Response:
    return server.client.post("/v2/messages", json=body, headers={"key": KEY})


def mail(*addresses: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": "email",
        "from": "news@example.com",
        "to": [{"email": list(addresses)}],
        "content": {"type": "text", "subject": "Hello", "text": "Hello there"},
    }
    body.update(extra)
    return body


def arrived(relay: SmtpStandIn, address: str, count: int = 1, timeout: float = 10) -> list[Received]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = relay.for_address(address)
        if len(got) >= count:
            return got
        time.sleep(0.02)
    raise AssertionError(f"the relay did not receive {count} message(s) for {address}")


def parsed(r: Received) -> EmailMessage:
    msg = email.message_from_bytes(r.data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def statuses(hits: list[Hit]) -> list[tuple[str, str]]:
    return [(h.info["deliveryStatus"], h.info["code"]) for h in hits]


def test_a_bulk_html_email_as_the_relay_receives_it(
    mail_server: TidingsServer,
    relay: SmtpStandIn,
    receiver: Receiver,
    dkim_key: tuple[Path, bytes],
    ed25519_key: tuple[Path, bytes],
):
    path = unique_path("mail")
    body = mail(
        "ann@example.net",
        "bob@example.net",
        notifyUrl=receiver.url(path),
        cc=["boss@example.net"],
        bcc=["archive@example.net"],
        options={"fromName": "News Desk", "trackOpens": True, "trackClicks": True},
        substitutions={"name": "friend"},
        content={
            "type": "html",
            "subject": "Hi {{name}}",
            "replyTo": "help@example.com",
            "html": (
                "<html><body><p>Hello {{name}} &amp; co,</p>"
                '<p><a href="https://shop.example.com/a?x=1&amp;y=2">Shop</a> '
                "<a href='mailto:help@example.com'>Mail us</a> "
                '<a no-track-connect href="https://example.com/raw">Raw</a></p></body></html>'
            ),
        },
    )
    body["to"] = [
        {"email": ["ann@example.net"], "substitutions": {"name": "Ann <3"}},
        {"email": ["bob@example.net"]},
    ]
    r = post(mail_server, body)
    assert r.status_code == 201, r.text
    ids = [m["messageId"] for m in r.json()["messages"]]
    ann = parsed(arrived(relay, "ann@example.net")[0])
    received = arrived(relay, "ann@example.net")[0]

    # The envelope: VERP sender, the address then cc and bcc; AUTH and TLS were used.
    assert received.mail_from == f"bounces+{ids[0]}@{BOUNCES}"
    assert received.rcpt_tos == ["ann@example.net", "boss@example.net", "archive@example.net"]
    assert (received.user, received.tls) == (RELAY_USER, True)

    # Headers: no Bcc; Message-ID names the message; List-Unsubscribe on a bulk send (RFC 8058).
    assert ann["From"] == "News Desk <news@example.com>"
    assert ann["Reply-To"] == "help@example.com"
    assert (ann["To"], ann["Cc"]) == ("ann@example.net", "boss@example.net")
    assert ann["Subject"] == "Hi Ann <3"
    assert ann["Bcc"] is None and b"archive@example.net" not in received.data
    assert MESSAGE_ID.fullmatch(ann["Message-ID"]) and MESSAGE_ID.fullmatch(ann["Message-ID"])[1] == ids[0]
    assert ann["Date"] is not None
    unsubscribe = re.findall(r"<([^>]+)>", ann["List-Unsubscribe"])
    assert unsubscribe[0].startswith("mailto:unsubscribe+") and f"@{BOUNCES}" in unsubscribe[0]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/t/u/[A-Za-z0-9_-]{22}", unsubscribe[1])
    assert ann["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # Parts: text then HTML; the pixel; tracked links rewritten, mailto and no-track left alone;
    # substituted values escaped in the HTML.
    assert ann.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in ann.iter_parts()] == ["text/plain", "text/html"]
    html = ann.get_body(("html",)).get_content()
    text = ann.get_body(("plain",)).get_content()
    assert "Hello Ann &lt;3 &amp; co," in html
    pixel = re.findall(
        r'<img src="(http://127\.0\.0\.1:\d+/t/o/[A-Za-z0-9_-]{22}\.gif)" width="1" height="1"', html
    )
    assert len(pixel) == 1 and html.index(pixel[0]) < html.index("</body>")
    clicks = re.findall(r'href="(http://127\.0\.0\.1:\d+/t/c/[A-Za-z0-9_-]{22})"', html)
    assert len(clicks) == 1 and "shop.example.com" not in html
    assert "href='mailto:help@example.com'" in html and 'href="https://example.com/raw"' in html
    assert "Hello Ann <3 & co," in text and f"Shop ({clicks[0]})" in text

    # The link records the tracking endpoints read: the pixel, the click (its target as written), the
    # one-click unsubscribe.
    rows = mail_server.rows(
        "SELECT linkid, code, target, track FROM links WHERE transid = ? ORDER BY linkid", ids[0]
    )
    by_id = {int(row[0]): row for row in rows}
    assert sorted(by_id) == [-3, -2, -1]
    assert by_id[-2][2] == "https://shop.example.com/a?x=1&y=2" and clicks[0].endswith(by_id[-2][1])
    assert pixel[0].endswith(f"{by_id[-1][1]}.gif") and unsubscribe[1].endswith(by_id[-3][1])
    assert (by_id[-1][2], by_id[-3][2]) == (None, None)

    # DKIM: signed twice by example.com, rsa-sha256 with selector s1 on top, then ed25519-sha256 with
    # selector ed1; dkimpy verifies each against its selector's public key.
    assert received.data.startswith(b"DKIM-Signature:")
    assert re.findall(rb"^DKIM-Signature: v=1; a=([a-z0-9-]+);", received.data, re.M) == [
        b"rsa-sha256",
        b"ed25519-sha256",
    ]
    dns = {b"s1._domainkey.example.com.": dkim_key[1], b"ed1._domainkey.example.com.": ed25519_key[1]}
    assert dkim.verify(received.data, dnsfunc=lambda name, timeout=5: dns.get(name))
    for index in (0, 1):
        verified = dkim.DKIM(received.data).verify(idx=index, dnsfunc=lambda name, timeout=5: dns.get(name))
        assert verified, index

    # Bob's message: his own messageId, his substitutions (the request's), his own tracking codes.
    bob = parsed(arrived(relay, "bob@example.net")[0])
    assert bob["Subject"] == "Hi friend" and MESSAGE_ID.fullmatch(bob["Message-ID"])[1] == ids[1]
    assert re.findall(r"/t/c/[A-Za-z0-9_-]{22}", bob.get_body(("html",)).get_content()) != clicks

    # Submitted, and never Delivered without evidence (no success DSN).
    hits = receiver.wait_count(path, 2, timeout=10)
    assert sorted(statuses(hits)) == [("Submitted", "7501")] * 2
    assert {h.info["deliveryChannel"] for h in hits} == {"email"}
    assert {h.info["destinationType"] for h in hits} == {"email"}
    time.sleep(0.3)  # several sandbox delays: a Delivered would have come by now
    assert len(receiver.at(path)) == 2
    view = mail_server.client.get(f"/v2/messages/{ids[0]}", headers={"key": KEY}).json()
    assert (view["status"], view["from"], view["to"], view["channel"]) == (
        "submitted",
        "news@example.com",
        "ann@example.net",
        "email",
    )


def test_a_single_text_email_tracks_its_links_and_has_no_unsubscribe_header(
    mail_server: TidingsServer, relay: SmtpStandIn
):
    body = mail(
        "carol@example.net",
        options={"trackOpens": True, "trackClicks": True},
        content={
            "type": "text",
            "subject": "Your order",
            "text": "See https://shop.example.com/orders/1. Thanks!",
            "encoding": "iso-8859-1",
        },
    )
    body["from"] = "orders@example.org"  # an address of an @domain entry
    r = post(mail_server, body)
    assert r.status_code == 201, r.text
    got = parsed(arrived(relay, "carol@example.net")[0])
    assert got.get_content_type() == "text/plain" and got.get_content_charset() == "iso-8859-1"
    text = got.get_content()
    assert re.fullmatch(r"See http://127\.0\.0\.1:\d+/t/c/[A-Za-z0-9_-]{22}\. Thanks!\r?\n", text)
    assert got["List-Unsubscribe"] is None and got["From"] == "orders@example.org"
    assert "/t/o/" not in text  # a text email has no pixel


def test_multiple_to_recipients_share_one_to_header_and_the_copies_go_once(
    mail_server: TidingsServer, relay: SmtpStandIn
):
    body = mail(
        "dan@example.net",
        "eve@example.net",
        multipleToRecipients=True,
        cc=["copy@example.net"],
        substitutions={"n": 3, "ok": True},
        content={"type": "text", "subject": "Team of {{n}}", "text": "All {{n}} of you: {{ok}}"},
    )
    r = post(mail_server, body)
    assert r.status_code == 201, r.text
    dan, eve = arrived(relay, "dan@example.net")[0], arrived(relay, "eve@example.net")[0]
    assert dan.rcpt_tos == ["dan@example.net", "copy@example.net"] and eve.rcpt_tos == ["eve@example.net"]
    for got in (parsed(dan), parsed(eve)):
        assert got["To"] == "dan@example.net, eve@example.net" and got["Cc"] == "copy@example.net"
        assert got["Subject"] == "Team of 3" and got.get_content().startswith("All 3 of you: true")
    assert parsed(dan)["List-Unsubscribe"] is not None  # two addresses: a bulk send


def test_a_4xx_is_retried_until_the_relay_takes_it(
    mail_server: TidingsServer, relay: SmtpStandIn, receiver: Receiver
):
    path = unique_path("flaky")
    relay.script("flaky@example.net", "rcpt", "451 4.3.0 Mailbox busy, try later")
    r = post(mail_server, mail("flaky@example.net", notifyUrl=receiver.url(path)))
    assert r.status_code == 201, r.text
    arrived(relay, "flaky@example.net", timeout=15)
    assert relay.rcpts.count("flaky@example.net") == 2
    hits = receiver.wait_count(path, 1, timeout=5)
    assert statuses(hits) == [("Submitted", "7501")]
    # Two provider attempts: the relay's 451, then its 250; the envelope and headers, not the body.
    page, (busy, took) = message_page(mail_server.url, KEY, r.json()["messageId"])
    assert (busy.outcome, busy.connector, took.outcome) == ("retry", "relay (smtp)", "accepted")
    assert busy.answer == "RCPT TO:<flaky@example.net>: 451 4.3.0 Mailbox busy, try later"
    assert took.answer.startswith("250 ")
    lines = took.request.splitlines()
    assert lines[0].startswith("MAIL FROM:<bounces+") and lines[1] == "RCPT TO:<flaky@example.net>"
    assert re.fullmatch(r"DATA \([\d,]+ bytes\), its headers:", lines[2]) and "Subject: Hello" in lines
    assert "Hello there" not in took.request
    assert RELAY_PASSWORD not in page and RELAY_USER not in took.request


def test_the_health_page_shows_the_relay_asking_to_wait(
    mail_server: TidingsServer, relay: SmtpStandIn, receiver: Receiver
):
    relay.script("later@example.net", "rcpt", "451 4.7.1 Greylisted, come back later")
    assert post(mail_server, mail("later@example.net")).status_code == 201
    deadline = time.monotonic() + 10
    while "later@example.net" not in relay.rcpts and time.monotonic() < deadline:
        time.sleep(0.02)
    with sign_in(mail_server.url, KEY) as console:
        page, rows = health_saying(console, "relay", "backing off", deadline)
    state, row = rows["relay"]
    assert state == "up", row
    assert f"AUTH {RELAY_USER} at 127.0.0.1:{relay.port}: password, does not expire" in row
    said = "relay: 451 4.7.1 Greylisted, come back later (at RCPT TO later@example.net)"
    assert f"throttled: {said}" in row
    assert re.search(
        r"none set \(2 sessions\) backing off until \S+ \S+ \(in [45] s\): " + re.escape(said), row
    )
    assert RELAY_PASSWORD not in page


def test_a_5xx_bounces_and_the_address_is_suppressed(
    mail_server: TidingsServer, relay: SmtpStandIn, receiver: Receiver
):
    path = unique_path("bounce")
    relay.script("nobody@example.net", "rcpt", "550 5.1.1 No such user here")
    first = post(mail_server, mail("nobody@example.net", notifyUrl=receiver.url(path)))
    assert first.status_code == 201, first.text
    hits = receiver.wait_count(path, 1, timeout=10)
    assert statuses(hits) == [("Bounce", "7520")]
    assert "550 5.1.1 No such user here" in hits[0].info["additionalInfo"]
    second = post(mail_server, mail("nobody@example.net", notifyUrl=receiver.url(path)))
    hits = receiver.wait_count(path, 2, timeout=10)
    assert statuses(hits)[1] == ("Failed", "7240")
    assert hits[1].transid == second.json()["messageId"]
    assert relay.rcpts.count("nobody@example.net") == 1  # the relay never saw the second
    view = mail_server.client.get(f"/v2/messages/{first.json()['messageId']}", headers={"key": KEY}).json()
    assert view["status"] == "bounce" and view["error"]["code"] == "7520"


def test_a_5xx_at_data_bounces_too(mail_server: TidingsServer, relay: SmtpStandIn, receiver: Receiver):
    path = unique_path("databounce")
    relay.script("spam@example.net", "data", "554 5.7.1 Message refused")
    post(mail_server, mail("spam@example.net", notifyUrl=receiver.url(path)))
    hits = receiver.wait_count(path, 1, timeout=10)
    assert statuses(hits) == [("Bounce", "7520")]
    assert relay.for_address("spam@example.net") == []
