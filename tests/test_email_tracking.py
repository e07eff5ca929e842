"""Email tracking over HTTP against a running server: the open pixel (Read once, on the first counted
open), tracked clicks (a 302 to the recorded URL only, one Clicked per click with the URL and the user
agent), HEAD and link scanners answered but not counted, unknown codes 404, `/l/` refusing email's
records, and the RFC 8058 one-click unsubscribe (a GET page that changes nothing, a POST that suppresses
the address).

The email messages and their link records are written through the store before the server starts, as
the v2 intake writes them at accept (issue 13 "Email link records"), and recorded Submitted as the
dispatcher does after the relay took them.
"""

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.backends import PG_DSN
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer
from tidings.statuses import SUBMITTED
from tidings.store import open_store
from tidings.store.base import NewLink, NewMessage, Update

SVC = "svc-mail"
TARGET = "https://shop.example.com/offer?x=1&y=2"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"
SCANNERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 BingPreview/1.0b",
    "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
    "Proofpoint URL Defense",
]


@dataclass
class Mail:
    transid: str
    address: str
    pixel: str
    click: str
    unsubscribe: str


def database_url(server: TidingsServer) -> str:
    if server.schema is not None:
        return f"{PG_DSN}?schema={server.schema}"
    return f"sqlite:///{server.workdir / 'tidings.db'}"


def seed(server: TidingsServer, notify_url: str, addresses: list[str], now: float) -> list[Mail]:
    """Email messages to `addresses`, each with an open pixel, one tracked link and an unsubscribe
    record, recorded Submitted; written before the server starts (SQLite allows one process)."""
    mails = [
        Mail(f"email-{secrets.token_hex(8)}", a, *(secrets.token_urlsafe(16) for _ in range(3)))
        for a in addresses
    ]

    async def write() -> None:
        store = open_store(database_url(server))
        await store.open()
        try:
            messages, links = [], []
            for m in mails:
                messages.append(
                    NewMessage(
                        transid=m.transid, service_id=SVC, channel="email", address=m.address,
                        address_type="email", content=json.dumps({"subject": "Offer"}).encode(), parts=1,
                        correlationid="corr-1", callback_data="cb-1", notify_url=notify_url, priority=2,
                        expiry=None, created_at=now,
                    )
                )  # fmt: skip
                links += [
                    NewLink(m.pixel, SVC, m.transid, -1, None, now, None, True),
                    NewLink(m.click, SVC, m.transid, -2, None, now, TARGET, True),
                    NewLink(m.unsubscribe, SVC, m.transid, -3, None, now, None, False),
                ]
            await store.accept(messages, links=links)
            claimed = {d.transid for d in await store.claim_due(now + 1, 1000, 60)}
            assert claimed == {m.transid for m in mails}
            sent = [
                Update(transid=m.transid, service_id=SVC, at=now, next_at=None, attempts=1, outcome=SUBMITTED)
                for m in mails
            ]
            await store.record(sent)
        finally:
            await store.close()

    asyncio.run(write())
    return mails


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TidingsServer, Receiver, list[Mail]]]:
    receiver = Receiver()
    workdir: Path = tmp_path_factory.mktemp("email-tracking")
    server = TidingsServer(workdir, None)
    mails = seed(server, receiver.url("/mail"), [f"reader{i}@example.org" for i in range(4)], time.time())
    server.start()
    try:
        yield server, receiver, mails
    finally:
        server.close()
        receiver.close()


def status(server: TidingsServer, transid: str) -> str:
    return str(server.rows("SELECT status FROM messages WHERE transid = ?", transid)[0][0])


def notes(receiver: Receiver, transid: str) -> list[tuple[str, str, str, str]]:
    return [
        (h.info["deliveryStatus"], h.info["code"], h.info["Description"], h.info["additionalInfo"])
        for h in receiver.at("/mail")
        if h.transid == transid
    ]


def test_the_pixel_reads_once_and_head_and_scanners_do_not_count(setup):
    server, receiver, (mail, *_) = setup
    head = server.client.head(f"/t/o/{mail.pixel}.gif")
    scanned = [server.client.get(f"/t/o/{mail.pixel}.gif", headers={"user-agent": ua}) for ua in SCANNERS]
    assert head.status_code == 200 and all(r.status_code == 200 for r in scanned)
    assert status(server, mail.transid) == "Submitted"
    opens = [server.client.get(f"/t/o/{mail.pixel}.gif", headers={"user-agent": BROWSER}) for _ in range(3)]
    for r in opens:
        assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
        assert r.content.startswith(b"GIF89a") and len(r.content) == 43
        assert "no-store" in r.headers["cache-control"]
    receiver.wait_for(lambda: len(notes(receiver, mail.transid)) >= 1)
    assert status(server, mail.transid) == "Read"
    time.sleep(0.3)  # a second Read would have been queued with the first
    assert notes(receiver, mail.transid) == [("Read", "7502", "Read", "")]
    hit = next(h for h in receiver.at("/mail") if h.transid == mail.transid)
    assert hit.info["deliveryChannel"] == "email" and hit.info["destination"] == mail.address


def test_each_click_redirects_to_the_recorded_url_and_notifies(setup):
    server, receiver, (_, mail, *_) = setup
    head = server.client.head(f"/t/c/{mail.click}")
    scanned = [server.client.get(f"/t/c/{mail.click}", headers={"user-agent": ua}) for ua in SCANNERS]
    for r in [head, *scanned]:
        assert (r.status_code, r.headers["location"]) == (302, TARGET)
    clicks = [
        server.client.get(f"/t/c/{mail.click}", headers={"user-agent": f"{BROWSER} n{i}"}) for i in range(2)
    ]
    for r in clicks:
        assert (r.status_code, r.headers["location"], r.headers["cache-control"]) == (302, TARGET, "no-store")
    receiver.wait_for(lambda: len(notes(receiver, mail.transid)) >= 2)
    time.sleep(0.3)
    assert notes(receiver, mail.transid) == [
        ("Clicked", "7528", TARGET, f"{BROWSER} n0"),
        ("Clicked", "7528", TARGET, f"{BROWSER} n1"),
    ]
    assert server.rows("SELECT clicks FROM links WHERE code = ?", mail.click) == [(2,)]
    assert status(server, mail.transid) == "Submitted"  # a click is a notification, not a status


def test_unknown_codes_and_codes_of_another_kind_are_404(setup):
    server, _, (mail, *_) = setup
    get = server.client.get
    for path in [
        "/t/o/nope-nope-nope.gif", "/t/c/nope-nope-nope", "/t/u/nope-nope-nope",
        f"/t/c/{mail.pixel}", f"/t/o/{mail.click}.gif", f"/t/u/{mail.click}", f"/t/c/{mail.unsubscribe}",
    ]:  # fmt: skip
        r = get(path)
        assert r.status_code == 404 and "location" not in r.headers, path
    # /l/ never serves email's records (negative linkids), counted or not
    for code in (mail.click, mail.pixel, mail.unsubscribe):
        assert get(f"/l/{code}").status_code == 404
        assert server.client.head(f"/l/{code}").status_code == 404
    assert server.rows("SELECT clicks FROM links WHERE code = ?", mail.click) == [(0,)]


def test_one_click_unsubscribe_needs_a_post(setup):
    server, receiver, (*_, mail, other) = setup
    page = server.client.get(f"/t/u/{mail.unsubscribe}", headers={"user-agent": SCANNERS[0]})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'method="post"' in page.text and 'name="List-Unsubscribe" value="One-Click"' in page.text
    gone = "SELECT address, code, description FROM gone_addresses WHERE service_id = ? ORDER BY address"
    assert server.rows(gone, SVC) == []
    bare = server.client.post(f"/t/u/{mail.unsubscribe}", data={"unsubscribe": "yes"})
    assert bare.status_code == 400 and server.rows(gone, SVC) == []
    done = server.client.post(f"/t/u/{mail.unsubscribe}", data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    # multipart/form-data, as RFC 8058 also allows
    multi = server.client.post(f"/t/u/{other.unsubscribe}", files={"List-Unsubscribe": (None, "One-Click")})
    assert multi.status_code == 200
    assert server.rows(gone, SVC) == [
        (mail.address, "7241", "Unsubscribed address"),
        (other.address, "7241", "Unsubscribed address"),
    ]
    again = server.client.post(f"/t/u/{mail.unsubscribe}", content=b"List-Unsubscribe=One-Click",
                               headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert again.status_code == 200 and len(server.rows(gone, SVC)) == 2
    assert status(server, mail.transid) == "Submitted" and notes(receiver, mail.transid) == []
