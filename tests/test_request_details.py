"""Smaller things a new user hit: a HEAD request to a short link is not a click, sender ids longer than
a handset shows are refused on both send APIs naming the field, and the consent API names the field
that has the wrong type."""

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer

KEY = "key-details-0001"
LONG_ALPHA, LONG_DIGITS, LONG_PLUS = "TWELVECHARSX", "12345678901234567", "+12345678901234567"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
LINK = re.compile(r"/l/([A-Za-z0-9_-]+)")


def config(receiver: Receiver) -> str:
    return f"""
[sandbox]
delay_ms = 20

[[services]]
id = "svc-d"
name = "dee"
key = "{KEY}"
# The long ones cannot be configured (the config check refuses them); a request naming one is refused
# for its length before anything asks whether the service has it.
senderids = ["CONNCT", "ELEVENCHARS", "+1234567890123456", "1234567890123456"]
notify_url = "{receiver.url("/details/default")}"

[[smartlinks]]
linkid = 5
service = "dee"
url = "https://example.com/app"
ios_url = "https://apps.apple.com/app/id0"

[[contact_policy.groups]]
id = "news"
service = "dee"
kind = "opt-in"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[TidingsServer]:
    s = TidingsServer(tmp_path_factory.mktemp("details"), config(receiver)).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()


def v1(server: TidingsServer, senderid: Any = "CONNCT", text: str = "hi", **extra: Any) -> Any:
    body = {
        "deliverychannel": "sms",
        "destination": [{"msisdn": ["+447700900123"]}],
        "channels": {"sms": {"text": text, "senderid": senderid}},
        **extra,
    }
    return server.send(body, KEY).json()["response"]


def sms_api(server: TidingsServer, **fields: Any) -> httpx.Response:
    body = {"from": "CONNCT", "to": "+447700900123", "content": "hi", **fields}
    return server.client.post("/v1/sms/messages", json=body, headers={"key": KEY})


def clicks(server: TidingsServer, transid: str) -> int:
    return int(server.message(transid, KEY)["clicks"])


# -- HEAD on a short link ---------------------------------------------------------------------------


def test_head_on_a_shortened_url_redirects_but_is_no_click(server: TidingsServer, receiver: Receiver):
    path = unique_path("head")
    r = sms_api(
        server,
        content="See https://shop.example.com/o/1 now",
        shortenUrls=True,
        trackShortUrlClicks=True,
        callbackUrl=receiver.url(path),
    )
    assert r.status_code == 202, r.text
    transid = r.json()["messageId"]
    m = LINK.search(server.message(transid, KEY)["content"]["text"])
    assert m is not None
    receiver.wait_count(path, 2)  # Submitted and Delivered
    head = server.client.head(f"/l/{m.group(1)}", headers={"user-agent": "curl/8.5.0"})
    assert (head.status_code, head.headers["location"]) == (302, "https://shop.example.com/o/1")
    assert head.content == b""
    assert clicks(server, transid) == 0, "a HEAD is not a click"
    # A GET is: it counts and is notified. Notifications of one message arrive in order, so had the
    # HEAD been notified, its Clicked would have come before this one.
    get = server.client.get(f"/l/{m.group(1)}", headers={"user-agent": IPHONE})
    assert (get.status_code, get.headers["location"]) == (302, "https://shop.example.com/o/1")
    hits = receiver.wait_count(path, 3)
    time.sleep(0.3)
    statuses = [h.info["deliveryStatus"] for h in receiver.at(path)]
    assert statuses == ["Submitted", "Delivered", "Clicked"], statuses
    assert hits[-1].info["additionalInfo"] == IPHONE
    assert clicks(server, transid) == 1


def test_head_on_a_smart_link_answers_its_target_without_counting(server: TidingsServer):
    sms = {"text": "App: {{link_5}}", "senderid": "CONNCT"}
    answer = v1(server, channels={"sms": sms, "smartlinks": [{"linkid": 5, "validity": 60}]})
    transid = answer[0]["transid"]
    m = LINK.search(server.message(transid, KEY)["content"]["text"])
    assert m is not None
    head = server.client.head(f"/l/{m.group(1)}", headers={"user-agent": IPHONE})
    assert (head.status_code, head.headers["location"]) == (302, "https://apps.apple.com/app/id0")
    assert head.headers["cache-control"] == "no-store"
    assert clicks(server, transid) == 0
    assert server.client.get(f"/l/{m.group(1)}").headers["location"] == "https://example.com/app"
    assert clicks(server, transid) == 1
    missing = server.client.head("/l/not-a-code")
    assert missing.status_code == 404


# -- sender ids -------------------------------------------------------------------------------------

ACCEPTED = ["ELEVENCHARS", "+1234567890123456", "1234567890123456"]
REFUSED = {LONG_ALPHA: "11 characters", LONG_DIGITS: "16 digits", LONG_PLUS: "16 digits"}


@pytest.mark.parametrize("sender", ACCEPTED)
def test_sender_ids_up_to_the_limits_are_sent(server: TidingsServer, sender: str):
    assert v1(server, sender)[0]["code"] == "1001"
    assert sms_api(server, **{"from": sender}).status_code == 202


@pytest.mark.parametrize("sender", list(REFUSED))
def test_longer_sender_ids_are_7004_naming_the_field(server: TidingsServer, sender: str):
    refused = v1(server, sender)
    assert refused["code"] == "7004", refused
    assert "channels.sms.senderid" in refused["description"] and REFUSED[sender] in refused["description"]
    r = sms_api(server, **{"from": sender})
    assert r.status_code == 400, r.text
    assert (r.json()["code"], r.json()["message"]) == ("7004", "Invalid parameter - from")
    assert REFUSED[sender] in r.json()["description"]


def test_a_numeric_sender_id_sent_as_a_json_number_counts_its_digits(server: TidingsServer):
    assert v1(server, 1234567890123456)[0]["code"] == "1001"
    assert v1(server, 12345678901234567)["code"] == "7004"
    assert sms_api(server, **{"from": 12345678901234567}).json()["message"] == "Invalid parameter - from"


# -- the consent API names the field ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("consent", "yes"), ("consent", 1), ("address", 447700900123), ("reason", ["x"]), ("channel", True)],
)
def test_the_consent_api_names_a_field_of_the_wrong_type(server: TidingsServer, field: str, value: Any):
    body = {"address": "+447700900123", "channel": "text", "consent": True, field: value}
    r = server.client.post("/v1/groups/news/members", json=body, headers={"key": KEY})
    assert r.status_code == 400, r.text
    assert (r.json()["code"], r.json()["message"]) == ("7004", f"Invalid parameter - {field}")
    assert r.json()["description"].startswith(f"{field}: "), r.json()


def test_a_consent_body_that_is_not_an_object_is_7000(server: TidingsServer):
    r = server.client.post("/v1/groups/news/members", json=[1, 2], headers={"key": KEY})
    assert (r.status_code, r.json()["code"]) == (400, "7000"), r.text
