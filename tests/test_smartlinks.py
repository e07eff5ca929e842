"""Smart links as a user meets them: each destination gets its own unguessable short link, a click from
an iPhone goes to the App Store target, from Android to Play, from anything else to the default, and
after the validity to the expired target; clicks are counted per message."""

import re
import time
from typing import Any

from tests.conftest import KEY_A, KEY_B, sms, unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36"
LINK = re.compile(r"(http://127\.0\.0\.1:\d+)?/l/([A-Za-z0-9_-]+)")


def send(server: TidingsServer, body: dict[str, Any], key: str = KEY_A) -> list[dict[str, Any]]:
    answer = server.send(body, key).json()["response"]
    assert isinstance(answer, list), answer
    views = []
    for item in answer:
        r = server.client.get(f"/v1/messages/{item['transid']}", headers={"key": key})
        views.append(r.json())
    return views


def linked(text: str, validity: float | int = 30, msisdns: list[str] | None = None) -> dict[str, Any]:
    body = sms(msisdns or ["+447700900123", "+447700900124"], text)
    body["channels"]["smartlinks"] = [{"linkid": 5, "validity": validity}]
    return body


def code_of(view: dict[str, Any]) -> str:
    m = LINK.search(view["content"]["text"])
    assert m is not None, view["content"]
    return m.group(2)


def test_each_destination_gets_its_own_link_and_clicks_redirect_by_os(server: TidingsServer):
    views = send(server, linked("Get the app: {{link_5}} today"))
    codes = [code_of(v) for v in views]
    assert len(set(codes)) == 2 and all(len(c) >= 16 for c in codes), codes
    assert views[0]["content"]["text"].startswith("Get the app: http") and "{{link_5}}" not in str(views)
    follow = server.client.get
    assert follow(f"/l/{codes[0]}", headers={"user-agent": IPHONE}).headers["location"] == (
        "https://apps.apple.com/app/id0"
    )
    assert follow(f"/l/{codes[0]}", headers={"user-agent": ANDROID}).headers["location"] == (
        "https://play.google.com/store/apps/details?id=x"
    )
    desktop = follow(f"/l/{codes[0]}", headers={"user-agent": "curl/8"})
    assert (desktop.status_code, desktop.headers["location"]) == (302, "https://example.com/app")
    clicks = [
        server.client.get(f"/v1/messages/{v['transid']}", headers={"key": KEY_A}).json()["clicks"]
        for v in views
    ]
    assert clicks == [3, 0]


def test_after_its_validity_a_link_goes_to_the_expired_target(server: TidingsServer):
    (view,) = send(server, linked("{{link_5}}", validity=0.005, msisdns=["+447700900125"]))  # 0.3 s
    time.sleep(0.5)
    r = server.client.get(f"/l/{code_of(view)}", headers={"user-agent": IPHONE})
    assert (r.status_code, r.headers["location"]) == (302, "https://example.com/expired")


def test_unknown_codes_and_links_are_refused(server: TidingsServer):
    r = server.client.get("/l/not-a-code")
    assert r.status_code == 404 and r.json()["code"] == "404"
    body = linked("{{link_5}}")
    body["channels"]["sms"]["senderid"] = "BETA"
    other = server.send(body, KEY_B).json()["response"]  # svc-b has no smart link 5
    assert other["code"] == "7004" and "channels.smartlinks[0].linkid" in other["description"]
    wrong = server.send(linked("{{link_6}}"), KEY_A).json()["response"]
    assert wrong["code"] == "7004" and "{{link_6}}" in wrong["description"]


def test_sms_api_shortens_https_urls_and_reports_clicks(server: TidingsServer, receiver: Receiver):
    path = unique_path("clicks")
    r = server.client.post(
        "/v1/sms/messages",
        headers={"Authorization": KEY_A},
        json={
            "from": "CONNCT",
            "to": "+447700900126",
            "content": "Track it at https://shop.example.com/orders/17?x=1. Not http://plain.example.com",
            "shortenUrls": True,
            "trackShortUrlClicks": True,
            "callbackUrl": receiver.url(path),
        },
    )
    assert r.status_code == 202, r.text
    message_id = r.json()["messageId"]
    text = server.client.get(f"/v1/sms/messages/{message_id}", headers={"Authorization": KEY_A}).json()[
        "content"
    ]
    assert "shop.example.com" not in text and "http://plain.example.com" in text, text
    m = LINK.search(text)
    assert m is not None and text.endswith(". Not http://plain.example.com"), text
    receiver.wait_count(path, 2)  # Submitted and Delivered: the handset has it
    click = server.client.get(f"/l/{m.group(2)}", headers={"user-agent": IPHONE})
    assert (click.status_code, click.headers["location"]) == (302, "https://shop.example.com/orders/17?x=1")
    hits = receiver.wait_count(path, 3)
    clicked = hits[-1].info
    assert [h.info["deliveryStatus"] for h in hits] == ["Submitted", "Delivered", "Clicked"]
    assert clicked["code"] == "7528"
    assert clicked["Description"] == "https://shop.example.com/orders/17?x=1|127.0.0.1"
    assert clicked["additionalInfo"] == IPHONE
