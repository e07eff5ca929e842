"""Email over `POST /v2/messages` without a relay (the sandbox twin), over HTTP: the CONTRACT's sandbox
rule on the address's last four digits (Bounce 7520, Failed 7240, else Delivered), and every refusal of
the email request naming its field (7003 missing, 7004 invalid) with nothing stored."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer

KEY = "key-mailbox-0002"


@pytest.fixture(scope="module")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[TidingsServer]:
    config = f"""
[sandbox]
delay_ms = 50

[[services]]
id = "svc-mailbox"
key = "{KEY}"
notify_url = "{receiver.url("/mailbox/default")}"
email_from = ["news@example.com", "@example.org"]
"""
    s = TidingsServer(tmp_path_factory.mktemp("mailbox"), config).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()


def mail(*addresses: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": "email",
        "from": "news@example.com",
        "to": [{"email": list(addresses or ("ann@example.net",))}],
        "content": {"type": "text", "subject": "Hello", "text": "Hello there"},
    }
    body.update(extra)
    return body


def post(server: TidingsServer, body: dict[str, Any]) -> httpx.Response:
    return server.client.post("/v2/messages", json=body, headers={"key": KEY})


def test_the_sandbox_twin_follows_the_last_four_digits(sandbox_server: TidingsServer, receiver: Receiver):
    path = unique_path("twin")
    addresses = ["user7520@example.net", "user.7240@example.net", "ann@example.net"]
    r = post(sandbox_server, mail(*addresses, notifyUrl=receiver.url(path)))
    assert r.status_code == 201, r.text
    ids = {m["messageId"]: m["to"] for m in r.json()["messages"]}
    hits = receiver.wait_count(path, 6, timeout=10)
    finals = {
        ids[h.transid]: (h.info["deliveryStatus"], h.info["code"]) for h in hits if h.info["code"] != "7501"
    }
    assert finals == {
        "user7520@example.net": ("Bounce", "7520"),
        "user.7240@example.net": ("Failed", "7240"),
        "ann@example.net": ("Delivered", "7500"),
    }
    assert {h.info["destinationType"] for h in hits} == {"email"}


def test_the_reference_notes_email_sample(sandbox_server: TidingsServer, receiver: Receiver):
    """reference/channels.md §5 and webex-connect.md §4: the v2 email body with every documented key."""
    path = unique_path("sample")
    body = {
        "channel": "email",
        "from": "news@example.com",
        "to": [
            {"email": ["ann@example.net"], "substitutions": {"{{param1}}": "Ann"}, "correlationId": "c-ann"},
            {"email": ["bob7520@example.net"], "correlationId": "c-bob"},
        ],
        "substitutions": {"{{param1}}": "friend"},
        "cc": [],
        "bcc": [],
        "multipleToRecipients": False,
        "options": {"fromName": "News", "trackOpens": True, "trackClicks": True},
        "content": {
            "type": "html",
            "encoding": "utf-8",
            "subject": "Hello {{param1}}",
            "replyTo": "help@example.com",
            "html": "<p>Hello {{param1}}</p>",
        },
        "requestedReceipts": [
            "submitted",
            "delivered",
            "read",
            "clicked",
            "bounce",
            "not verified",
            "invalid",
        ],
        "callbackData": "cb-mail",
        "notifyUrl": receiver.url(path),
    }
    r = post(sandbox_server, body)
    assert r.status_code == 201, r.text
    ids = {m["messageId"]: m["correlationId"] for m in r.json()["messages"]}
    hits = receiver.wait_count(path, 4, timeout=10)
    got = {(ids[h.transid], h.info["deliveryStatus"]) for h in hits}
    assert got == {
        ("c-ann", "Submitted"),
        ("c-ann", "Delivered"),
        ("c-bob", "Submitted"),
        ("c-bob", "Bounce"),
    }
    assert {h.json["deliveryInfoNotification"]["callbackData"] for h in hits} == {"cb-mail"}
    view = sandbox_server.client.get(f"/v1/messages/{next(iter(ids))}", headers={"key": KEY}).json()
    assert view["content"]["subject"] == "Hello Ann" and "/t/o/" in view["content"]["html"]


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    target = body
    for key in parents:
        target = target.setdefault(key, {})
    if value is _DROP:
        target.pop(last, None)
    else:
        target[last] = value
    return body


_DROP = object()

REFUSALS: list[tuple[str, Any, str, str]] = [
    ("from", _DROP, "7003", "from"),
    ("from", "news@elsewhere.com", "7004", "from"),
    ("from", "not an address", "7004", "from"),
    ("from", "news@example.org.evil.com", "7004", "from"),
    ("content.type", _DROP, "7003", "content.type"),
    ("content.type", "pdf", "7004", "content.type"),
    ("content.subject", _DROP, "7003", "content.subject"),
    ("content.subject", 5, "7004", "content.subject"),
    ("content.subject", "x" * 999, "7004", "content.subject"),
    ("content.text", _DROP, "7003", "content.text"),
    ("content.type", "html", "7003", "content.html"),
    ("content.replyTo", "help", "7004", "content.replyTo"),
    ("content.encoding", "klingon", "7004", "content.encoding"),
    ("options.fromName", "Two\nlines", "7004", "options.fromName"),
    ("options.trackOpens", "yes", "7004", "options.trackOpens"),
    ("options.trackClicks", 1, "7004", "options.trackClicks"),
    ("cc", "boss@example.net", "7004", "cc"),
    ("cc", ["boss@example.net", "boss"], "7004", "cc[1]"),
    ("bcc", [5], "7004", "bcc[0]"),
    ("bcc", [f"a{i}@example.net" for i in range(51)], "7004", "cc"),
    ("multipleToRecipients", "true", "7004", "multipleToRecipients"),
]


@pytest.mark.parametrize(("path", "value", "code", "field"), REFUSALS)
def test_every_email_field_is_checked(
    sandbox_server: TidingsServer, path: str, value: Any, code: str, field: str
):
    correlation = unique_path("refused")[1:]
    body = _set(mail(correlationId=correlation), path, value)
    r = post(sandbox_server, body)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == code and r.json()["message"].endswith(f" - {field}"), r.json()
    assert (
        sandbox_server.rows("SELECT count(*) FROM messages WHERE correlationid = ?", correlation)[0][0] == 0
    )


def test_an_address_and_a_charset_that_cannot_hold_the_text(sandbox_server: TidingsServer):
    r = post(sandbox_server, mail("ann@example.net", "ann@@example"))
    assert r.status_code == 400 and r.json()["message"].endswith(" - to[0].email[1]"), r.text
    body = mail(content={"type": "text", "subject": "Café", "text": "Hello", "encoding": "ascii"})
    r = post(sandbox_server, body)
    assert r.status_code == 400 and r.json()["message"].endswith(" - content.encoding"), r.text
