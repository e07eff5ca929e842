"""A service's tps is a token bucket of destinations per second (burst min(1.5 x tps, tps + 100));
beyond it the request is refused with 7020 and nothing of it is stored or sent."""

import time

from tests.conftest import KEY_NOSENDER, KEY_SMALL, sms, unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer


def test_budget_spent_is_7020_and_refills(server: TidingsServer, receiver: Receiver):
    time.sleep(1.5)  # svc-small (tps 5, burst 7.5) starts full whatever ran before
    five = [f"+4477009{i:05d}" for i in range(5)]
    first = server.send(sms(five), KEY_SMALL).json()["response"]
    assert [i["code"] for i in first] == ["1001"] * 5
    path = unique_path("limited")
    refused = server.send(sms(five, notifyurl=receiver.url(path)), KEY_SMALL).json()["response"]
    assert refused["code"] == "7020"
    assert refused["description"] == "Maximum transaction limit reached"
    two = server.send(sms(five[:2]), KEY_SMALL).json()["response"]  # 2.5 tokens were left
    assert [i["code"] for i in two] == ["1001"] * 2
    time.sleep(1.1)
    assert server.send(sms(five), KEY_SMALL).json()["response"][0]["code"] == "1001"
    time.sleep(0.3)
    assert receiver.at(path) == []


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
