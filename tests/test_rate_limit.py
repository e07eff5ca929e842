"""A service's tps is a token bucket of destinations per second (burst min(1.5 x tps, tps + 100));
beyond it the request is refused with 7020 and nothing of it is stored or sent."""

import time

from tests.conftest import KEY_NOSENDER, KEY_RATE, sms, unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer


def test_budget_spent_is_7020_and_refills(server: TidingsServer, receiver: Receiver):
    # svc-rate: tps 1000, burst 1100. After 1000 addresses, 100 tokens are left and 1000 more take
    # 0.9 s to come back: a window no slow machine closes between two requests.
    thousand = [f"+4477009{i:05d}" for i in range(1000)]
    first = server.send(sms(thousand), KEY_RATE).json()["response"]
    assert [i["code"] for i in first] == ["1001"] * 1000
    path = unique_path("limited")
    refused = server.send(sms(thousand, notifyurl=receiver.url(path)), KEY_RATE).json()["response"]
    assert refused["code"] == "7020"
    assert refused["description"] == "Maximum transaction limit reached"
    left = server.send(sms(thousand[:100]), KEY_RATE).json()["response"]
    assert [i["code"] for i in left] == ["1001"] * 100
    time.sleep(1.2)
    probe = unique_path("probe")
    refilled = server.send(sms(thousand, notifyurl=receiver.url(probe)), KEY_RATE).json()["response"]
    assert len(refilled) == 1000 and refilled[0]["code"] == "1001"
    receiver.wait_count(probe, 2000, timeout=60)  # later messages than the refused ones, all delivered
    assert receiver.at(path) == [], "a refused request stores and sends nothing"


def test_default_sender_connct_when_the_service_has_none(server: TidingsServer):
    body = sms(["+447700900123"])
    del body["channels"]["sms"]["senderid"]
    item = server.send(body, KEY_NOSENDER).json()["response"][0]
    view = server.client.get(f"/v1/messages/{item['transid']}", headers={"key": KEY_NOSENDER}).json()
    assert view["content"]["senderid"] == "CONNCT"
    assert server.send(sms(["+447700900123"]), KEY_NOSENDER).json()["response"][0]["code"] == "1001"
    other = sms(["+447700900123"])
    other["channels"]["sms"]["senderid"] = "OTHER"
    assert server.send(other, KEY_NOSENDER).json()["response"]["code"] == "7004"
