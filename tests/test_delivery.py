"""Accepted messages reach a final status through the sandbox, and every status change is notified."""

import hashlib
import hmac
import re
import time

from tests.conftest import KEY_A, KEY_B, SECRET_A, sms, unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")


def send_one(server: TidingsServer, body: dict, key: str = KEY_A) -> str:
    r = server.send(body, key)
    assert r.status_code == 200
    items = r.json()["response"]
    assert isinstance(items, list) and items[0]["code"] == "1001", r.text
    return items[0]["transid"]


def test_delivered_notifications_have_the_documented_shape(server: TidingsServer, receiver: Receiver):
    path = unique_path()
    transid = send_one(
        server,
        sms(["+447700900123"], notifyurl=receiver.url(path), callbackData="cb-1", correlationid="corr-1"),
    )
    hits = receiver.wait_count(path, 2)
    assert [h.info["deliveryStatus"] for h in hits] == ["Submitted", "Delivered"]
    submitted, delivered = hits
    assert delivered.json == {
        "deliveryInfoNotification": {
            "deliveryInfo": {
                "timeStamp": delivered.info["timeStamp"],
                "Description": "Delivered",
                "code": "7500",
                "messageCount": "1",
                "deliveryChannel": "sms",
                "additionalInfo": "",
                "destination": "+447700900123",
                "destinationType": "msisdn",
                "deliveryStatus": "Delivered",
            },
            "subtid": "",
            "transid": transid,
            "callbackData": "cb-1",
            "correlationid": "corr-1",
        }
    }
    assert ISO.fullmatch(delivered.info["timeStamp"])
    assert submitted.info["code"] == "7501"
    for hit in hits:
        assert hit.headers["content-type"] == "application/json"
        expected = "sha256=" + hmac.new(SECRET_A, hit.body, hashlib.sha256).hexdigest()
        assert hit.headers["x-hub-signature"] == expected
    assert submitted.headers["x-tidings-event-id"] != delivered.headers["x-tidings-event-id"]


def test_sandbox_failure_codes_by_last_four_digits(server: TidingsServer, receiver: Receiver):
    path = unique_path()
    cases = {
        "+447700907203": ("Un-Delivered", "7203"),
        "+447700907207": ("Un-Delivered", "7207"),
        "+447700907208": ("Expired", "7208"),
        "+447700907101": ("Failed", "7101"),
        "+447700907102": ("Failed", "7102"),
        "+447700900200": ("Delivered", "7500"),
    }
    r = server.send(sms(list(cases), notifyurl=receiver.url(path)), KEY_A)
    transids = {item["transid"] for item in r.json()["response"]}
    hits = receiver.wait_count(path, 2 * len(cases))
    finals = {
        h.info["destination"]: (h.info["deliveryStatus"], h.info["code"])
        for h in hits
        if h.info["deliveryStatus"] != "Submitted"
    }
    assert finals == cases
    assert {h.transid for h in hits} == transids


def test_past_expiry_is_expired_without_being_sent(server: TidingsServer, receiver: Receiver):
    path = unique_path()
    transid = send_one(
        server, sms(["+447700900123"], notifyurl=receiver.url(path), expiry="2020-01-01T00:00:00Z")
    )
    (hit,) = receiver.wait_count(path, 1)
    assert (hit.info["deliveryStatus"], hit.info["code"]) == ("Expired", "7208")
    time.sleep(0.3)
    assert len(receiver.at(path)) == 1, "an expired message must not be submitted"
    view = server.client.get(f"/v1/messages/{transid}", headers={"key": KEY_A}).json()
    assert [h["status"] for h in view["history"]] == ["Queued", "Expired"]
    assert view["attempts"] == 0


def test_future_expiry_with_offset_is_sent(server: TidingsServer, receiver: Receiver):
    path = unique_path()
    send_one(
        server, sms(["+447700900123"], notifyurl=receiver.url(path), expiry="2099-04-12T18:30:19.456+5:30")
    )
    hits = receiver.wait_count(path, 2)
    assert hits[-1].info["deliveryStatus"] == "Delivered"


def test_service_notify_url_is_the_default(server: TidingsServer, receiver: Receiver):
    transid = send_one(server, sms(["+447700900123"]))
    receiver.wait_for(
        lambda: any(h.transid == transid and h.info["code"] == "7500" for h in receiver.at("/default/a"))
    )


def test_invalid_notify_url_gets_no_notification_but_the_message_finishes(server: TidingsServer):
    transid = send_one(server, sms(["+447700900123"], notifyurl=" http://127.0.0.1:1/x"))
    view = server.wait_message(transid, KEY_A, lambda v: v["status"] == "Delivered")
    assert view["status"] == "Delivered"
    assert view["notifications"] == []


def test_status_endpoint_shows_history_and_is_scoped_to_the_service(
    server: TidingsServer, receiver: Receiver
):
    path = unique_path()
    body = sms(["+447700900123"], text="status check", notifyurl=receiver.url(path), correlationid="c-9")
    transid = send_one(server, body)
    receiver.wait_count(path, 2)
    r = server.client.get(f"/v1/messages/{transid}", headers={"key": KEY_A})
    assert r.status_code == 200
    view = r.json()
    assert view["transid"] == transid
    assert view["channel"] == "sms"
    assert view["destination"] == "+447700900123"
    assert view["content"] == {"type": "1", "senderid": "CONNCT", "text": "status check"}
    assert view["correlationid"] == "c-9"
    assert (view["status"], view["code"]) == ("Delivered", "7500")
    assert [(h["status"], h["code"]) for h in view["history"]] == [
        ("Queued", "1001"),
        ("Submitted", "7501"),
        ("Delivered", "7500"),
    ]
    assert all(ISO.fullmatch(h["timeStamp"]) for h in view["history"])
    other = server.client.get(f"/v1/messages/{transid}", headers={"key": KEY_B})
    assert other.status_code == 404
    assert other.json()["code"] == "404"
    assert server.client.get(f"/v1/messages/{transid}").status_code == 401
    assert server.client.get(f"/v1/messages/{transid}", headers={"key": "nope"}).json()["code"] == "7001"


def test_receipts_arrive_after_the_sandbox_delay_not_the_idle_poll(server: TidingsServer, receiver: Receiver):
    # delay_ms is 50 in the tests; a receipt that waited for the dispatcher's 1 s idle poll would show.
    gaps = []
    for _ in range(6):
        transid = send_one(server, sms(["+447700900123"]))
        view = server.wait_message(transid, KEY_A, lambda v: v["status"] == "Delivered")
        stamps = {h["status"]: h["timeStamp"] for h in view["history"]}
        gaps.append(_seconds(stamps["Delivered"]) - _seconds(stamps["Submitted"]))
        time.sleep(0.13)
    gaps.sort()
    assert gaps[len(gaps) // 2] < 0.6, gaps


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()
