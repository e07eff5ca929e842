"""Accepted sends: the documented success shape, spelling variants, and HTTP in general."""

import json
import uuid

import httpx

from tests.conftest import KEY_A, sms, unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer


def test_one_transid_per_address_in_request_order(server: TidingsServer, receiver: Receiver):
    path = unique_path()
    body = sms(["+447700900001"], correlationid="req-corr", notifyurl=receiver.url(path))
    body["destination"] = [
        {"msisdn": ["+447700900001", "447700900002"]},
        {"msisdn": ["+447700900003"], "correlationid": "own-corr"},
    ]
    r = server.send(body, KEY_A)
    assert r.status_code == 200
    items = r.json()["response"]
    assert [i["code"] for i in items] == ["1001"] * 3
    assert [i["description"] for i in items] == ["Queued"] * 3
    assert [i["correlationid"] for i in items] == ["req-corr", "req-corr", "own-corr"]
    transids = [i["transid"] for i in items]
    assert len(set(transids)) == 3
    assert all(uuid.UUID(t) for t in transids)
    hits = receiver.wait_count(path, 6)
    by_transid = {h.transid: h.info["destination"] for h in hits}
    assert [by_transid[t] for t in transids] == ["+447700900001", "+447700900002", "+447700900003"]
    corr = {h.transid: h.json["deliveryInfoNotification"]["correlationid"] for h in hits}
    assert [corr[t] for t in transids] == ["req-corr", "req-corr", "own-corr"]


def test_no_correlationid_means_none_in_the_answer(server: TidingsServer):
    item = server.send(sms(["+447700900001"]), KEY_A).json()["response"][0]
    assert set(item) == {"code", "transid", "description"}


def test_spelling_variants(server: TidingsServer, receiver: Receiver):
    path = unique_path()
    body = sms(["+447700900001"], correlationId="camel", notifyUrl=receiver.url(path), callbackdata="lower")
    body["destination"][0]["correlationId"] = "dest-camel"
    assert server.send(body, KEY_A).json()["response"][0]["correlationid"] == "dest-camel"
    final = receiver.wait_count(path, 2)[-1].json["deliveryInfoNotification"]
    assert (final["correlationid"], final["callbackData"]) == ("dest-camel", "lower")


def test_array_holding_one_request_and_trailing_slash(server: TidingsServer):
    r = server.client.post("/resources/v1/messaging/", json=[sms(["+447700900001"])], headers={"key": KEY_A})
    assert r.json()["response"][0]["code"] == "1001"


def test_documented_extras_and_types_are_accepted(server: TidingsServer, receiver: Receiver):
    path = unique_path()
    body = sms(["+447700900001"], notifyurl=receiver.url(path), priority="1", appid="")
    body["channels"]["sms"].update({"type": "4", "text": "Grüße 👋", "extras": {"dlt_templateid": "1107"}})
    transid = server.send(body, KEY_A).json()["response"][0]["transid"]
    receiver.wait_count(path, 2)
    view = server.client.get(f"/v1/messages/{transid}", headers={"key": KEY_A}).json()
    assert view["content"] == {
        "type": "4",
        "senderid": "CONNCT",
        "text": "Grüße 👋",
        "dlt_templateid": "1107",
    }
    assert view["priority"] == "1"


def test_binary_message_and_segment_count(server: TidingsServer, receiver: Receiver):
    path = unique_path()
    body = sms(["+447700900001"], notifyurl=receiver.url(path))
    body["channels"]["sms"] = {"type": "3", "body": "00" * 200, "senderid": "TIDINGS"}
    server.send(body, KEY_A)
    long_path = unique_path()
    server.send(sms(["+447700900001"], text="a" * 161, notifyurl=receiver.url(long_path)), KEY_A)
    assert receiver.wait_count(path, 2)[-1].info["messageCount"] == "2"  # 200 bytes > 140
    assert receiver.wait_count(long_path, 2)[-1].info["messageCount"] == "2"  # 161 GSM-7 chars


def test_senderid_defaults_to_the_services_first(server: TidingsServer, receiver: Receiver):
    body = sms(["+447700900001"])
    del body["channels"]["sms"]["senderid"]
    transid = server.send(body, KEY_A).json()["response"][0]["transid"]
    view = server.client.get(f"/v1/messages/{transid}", headers={"key": KEY_A}).json()
    assert view["content"]["senderid"] == "CONNCT"


def test_chunked_body(server: TidingsServer):
    payload = httpx.Request("POST", "/", json=sms(["+447700900001"])).content

    def chunks():
        for i in range(0, len(payload), 10):
            yield payload[i : i + 10]

    r = server.client.post("/resources/v1/messaging", content=chunks(), headers={"key": KEY_A})
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert r.json()["response"][0]["code"] == "1001"


def test_every_response_is_json_with_a_request_id(server: TidingsServer):
    responses = {
        404: server.client.get("/no/such/path"),
        405: server.client.get("/resources/v1/messaging"),
        200: server.client.get("/healthz"),
    }
    for status, r in responses.items():
        assert r.status_code == status
        assert r.headers["content-type"] == "application/json"
        assert r.json()
        uuid.UUID(r.headers["request-id"])
    assert responses[405].headers["allow"] == "POST"
    ids = {r.headers["request-id"] for r in responses.values()}
    assert len(ids) == 3


def test_bytes_that_are_not_http_get_a_json_400_with_a_request_id(server: TidingsServer):
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"content-type: application/json" in head.lower()
    assert b"request-id: " in head.lower()
    assert json.loads(body)["code"] == "400"
