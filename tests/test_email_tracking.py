"""Email tracking end to end: bulk HTML emails sent through `POST /v2/messages` with `trackOpens` and
`trackClicks` reach the SMTP relay stand-in; the pixel, the tracked link and the unsubscribe URLs are
taken from the MIME it received and fetched over HTTP, as a mail client and its reader would:

- the open pixel: Read once, on the first counted open;
- tracked clicks: a 302 to the URL written in the email only, one Clicked per click with the URL and
  the user agent;
- HEAD and link scanners answered the same but not counted; unknown codes 404; `/l/` refusing email's
  records;
- RFC 8058 one-click unsubscribe (a GET page that changes nothing, a POST that suppresses the address:
  the next email to it is Failed 7241 and never reaches the relay), and the List-Unsubscribe mailto
  sent to the bounce listener doing the same.
"""

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest

from tests.conftest import unique_path
from tests.standins.smtp import SmtpStandIn, relayed_config
from tests.support.receiver import Hit, Receiver
from tests.support.server import TidingsServer, free_port

KEY = "key-track-0001"
BOUNCES = "bounces.example.com"
TARGET = "https://shop.example.com/offer?x=1&y=2"
HREF = TARGET.replace("&", "&amp;")  # as HTML writes it
CROWD = "crowd@example.org"  # one more address in every request: a bulk send has List-Unsubscribe
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"
SCANNERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 BingPreview/1.0b",
    "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
    "Proofpoint URL Defense",
]
URL = r"http://127\.0\.0\.1:\d+(/t/{}/[A-Za-z0-9_-]{{22}}{})"


@dataclass
class Mail:
    transid: str
    address: str
    path: str  # where its notifications go
    pixel: str  # the URL paths, as the email holds them
    click: str
    unsubscribe: str
    mailto: str  # List-Unsubscribe's mailto address


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
    config = relayed_config("svc-track", KEY, relay.port, BOUNCES, bounce_port)
    s = TidingsServer(tmp_path_factory.mktemp("tracking"), config).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()


def post(server: TidingsServer, addresses: list[str], notify: str) -> list[str]:
    body = {
        "channel": "email",
        "from": "news@example.com",
        "to": [{"email": [a]} for a in addresses],
        "options": {"trackOpens": True, "trackClicks": True},
        "content": {
            "type": "html",
            "subject": "Offer",
            "html": f'<html><body><p>See <a href="{HREF}">the offer</a>.</p></body></html>',
        },
        "notifyUrl": notify,
    }
    r = server.client.post("/v2/messages", json=body, headers={"key": KEY})
    assert r.status_code == 201, r.text
    answer = r.json()
    return [m["messageId"] for m in answer["messages"]] if "messages" in answer else [answer["messageId"]]


def received(relay: SmtpStandIn, address: str, timeout: float = 10) -> EmailMessage:
    deadline = time.monotonic() + timeout
    while not (got := relay.for_address(address)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert got, f"the relay received nothing for {address}"
    msg = message_from_bytes(got[-1].data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def bulk(server: TidingsServer, relay: SmtpStandIn, receiver: Receiver, *addresses: str) -> list[Mail]:
    """One bulk email to `addresses` (and CROWD), each taken by the relay and notified Submitted."""
    path = unique_path("track")
    transids = post(server, [*addresses, CROWD], receiver.url(path))[: len(addresses)]
    mails = []
    for transid, address in zip(transids, addresses, strict=True):
        msg = received(relay, address)
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        pixel = re.search(URL.format("o", r"\.gif"), html)
        click = re.search(URL.format("c", ""), html)
        unsubscribe = re.search(URL.format("u", ""), msg["List-Unsubscribe"])
        mailto = re.search(r"<mailto:([^?>]+)", msg["List-Unsubscribe"])
        assert pixel and click and unsubscribe and mailto, (html, msg["List-Unsubscribe"])
        mails.append(Mail(transid, address, path, pixel[1], click[1], unsubscribe[1], mailto[1]))
    receiver.wait_count(path, len(addresses) + 1, timeout=10)
    return mails


def notes(receiver: Receiver, m: Mail) -> list[tuple[str, str, str, str]]:
    return [
        (h.info["deliveryStatus"], h.info["code"], h.info["Description"], h.info["additionalInfo"])
        for h in receiver.at(m.path)
        if h.transid == m.transid and h.info["deliveryStatus"] != "Submitted"
    ]


def status(server: TidingsServer, transid: str) -> str:
    return str(server.client.get(f"/v2/messages/{transid}", headers={"key": KEY}).json()["status"])


def one_more(server: TidingsServer, receiver: Receiver, address: str) -> Hit:
    """Another email to `address`: its first notification."""
    path = unique_path("again")
    (transid,) = post(server, [address], receiver.url(path))
    (hit,) = receiver.wait_count(path, 1, timeout=10)
    assert hit.transid == transid
    return hit


def test_the_pixel_reads_once_and_head_and_scanners_do_not_count(server, relay, receiver):
    (mail,) = bulk(server, relay, receiver, "ann@example.net")
    head = server.client.head(mail.pixel)
    scanned = [server.client.get(mail.pixel, headers={"user-agent": ua}) for ua in SCANNERS]
    assert head.status_code == 200 and all(r.status_code == 200 for r in scanned)
    assert status(server, mail.transid) == "submitted"
    opens = [server.client.get(mail.pixel, headers={"user-agent": BROWSER}) for _ in range(3)]
    for r in opens:
        assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
        assert r.content.startswith(b"GIF89a") and len(r.content) == 43
        assert "no-store" in r.headers["cache-control"] and r.headers["pragma"] == "no-cache"
    assert status(server, mail.transid) == "read"
    # A click after the opens: a message's notifications arrive in order, so once its Clicked is in, a
    # second Read would be too.
    server.client.get(mail.click, headers={"user-agent": BROWSER})
    receiver.wait_for(lambda: len(notes(receiver, mail)) >= 2)
    assert notes(receiver, mail) == [("Read", "7502", "Read", ""), ("Clicked", "7528", TARGET, BROWSER)]


def test_each_click_redirects_to_the_recorded_url_and_notifies(server, relay, receiver):
    (mail,) = bulk(server, relay, receiver, "bob@example.net")
    head = server.client.head(mail.click)
    scanned = [server.client.get(mail.click, headers={"user-agent": ua}) for ua in SCANNERS]
    for r in [head, *scanned]:
        assert (r.status_code, r.headers["location"]) == (302, TARGET)
    for i in range(2):
        r = server.client.get(mail.click, headers={"user-agent": f"{BROWSER} n{i}"})
        assert (r.status_code, r.headers["location"], r.headers["cache-control"]) == (302, TARGET, "no-store")
    # had HEAD or a scanner counted, their notifications would come first
    receiver.wait_for(lambda: len(notes(receiver, mail)) >= 2)
    assert notes(receiver, mail) == [
        ("Clicked", "7528", TARGET, f"{BROWSER} n0"),
        ("Clicked", "7528", TARGET, f"{BROWSER} n1"),
    ]
    assert status(server, mail.transid) == "submitted"  # a click is a notification, not a status


def test_unknown_codes_and_codes_of_another_kind_are_404(server, relay, receiver):
    (mail,) = bulk(server, relay, receiver, "cy@example.net")
    code = {kind: getattr(mail, kind).rsplit("/", 1)[1].removesuffix(".gif") for kind in ("pixel", "click")}
    code["unsubscribe"] = mail.unsubscribe.rsplit("/", 1)[1]
    for path in [
        "/t/o/nope-nope-nope.gif", "/t/c/nope-nope-nope", "/t/u/nope-nope-nope",
        f"/t/c/{code['pixel']}", f"/t/o/{code['click']}.gif", f"/t/u/{code['click']}",
        f"/t/c/{code['unsubscribe']}",
    ]:  # fmt: skip
        r = server.client.get(path)
        assert r.status_code == 404 and "location" not in r.headers, path
    # /l/ never serves email's records (negative linkids), counted or not
    for c in code.values():
        assert server.client.get(f"/l/{c}").status_code == 404
        assert server.client.head(f"/l/{c}").status_code == 404
    assert server.rows("SELECT clicks FROM links WHERE code = ?", code["click"]) == [(0,)]
    assert notes(receiver, mail) == []


def test_one_click_unsubscribe_needs_a_post_and_suppresses_the_address(server, relay, receiver):
    dee, eve = bulk(server, relay, receiver, "dee@example.net", "eve@example.net")
    page = server.client.get(dee.unsubscribe, headers={"user-agent": SCANNERS[0]})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'method="post"' in page.text and 'name="List-Unsubscribe" value="One-Click"' in page.text
    bare = server.client.post(dee.unsubscribe, data={"unsubscribe": "yes"})
    assert bare.status_code == 400
    gone = "SELECT address, code FROM gone_addresses WHERE service_id = ? ORDER BY address"
    assert server.rows(gone, "svc-track") == []
    assert server.client.post(dee.unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    # multipart/form-data, as RFC 8058 also allows; a repeat changes nothing
    assert (
        server.client.post(eve.unsubscribe, files={"List-Unsubscribe": (None, "One-Click")}).status_code
        == 200
    )
    assert server.client.post(eve.unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert server.rows(gone, "svc-track") == [("dee@example.net", "7241"), ("eve@example.net", "7241")]
    assert status(server, dee.transid) == "submitted" and notes(receiver, dee) == []
    rcpts = len(relay.rcpts)
    hit = one_more(server, receiver, "dee@example.net")
    assert (hit.info["deliveryStatus"], hit.info["code"]) == ("Failed", "7241")
    assert len(relay.rcpts) == rcpts  # the relay never heard of it


def test_the_unsubscribe_mailto_reaches_the_bounce_listener(server, relay, receiver, bounce_port):
    (fay,) = bulk(server, relay, receiver, "fay@example.net")
    assert re.fullmatch(rf"unsubscribe\+[A-Za-z0-9_-]{{22}}@{re.escape(BOUNCES)}", fay.mailto)

    async def write() -> Any:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=bounce_port, timeout=5) as smtp:
            return await smtp.sendmail("fay@example.net", [fay.mailto], b"Subject: unsubscribe\r\n\r\n\r\n")

    assert asyncio.run(write()) == ({}, "2.0.0 OK")
    hit = one_more(server, receiver, "fay@example.net")
    assert (hit.info["deliveryStatus"], hit.info["code"]) == ("Failed", "7241")
