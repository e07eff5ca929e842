"""Every refusal of POST /resources/v1/messaging: HTTP 200, one object, the documented code, the field named.

A refused request stores and sends nothing: every case, sent with its own notify URL, is followed by an
accepted message; once that one is fully notified, not one notification has reached a refused case.
"""

import json
import time
import uuid
from typing import Any

import pytest

from tests.conftest import KEY_A, KEY_OFF, KEY_SMALL, sms, unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer


def case(body: Any, code: str, words: str, key: str | None = KEY_A) -> tuple[Any, str, str, str | None]:
    return body, code, words, key


def without(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


def with_sms(**fields: Any) -> dict[str, Any]:
    body = sms(["+447700900123"])
    body["channels"]["sms"].update(fields)
    body["channels"]["sms"] = {k: v for k, v in body["channels"]["sms"].items() if v is not None}
    return body


GOOD = sms(["+447700900123"])

CASES = {
    "not json": case(b"{not json", "7000", "Invalid JSON"),
    "empty body": case(b"", "7000", "Invalid JSON"),
    "json but not an object": case(b'"sms"', "7004", "JSON object"),
    "array of two objects": case([GOOD, GOOD], "7004", "one JSON object"),
    "wrong key": case(GOOD, "7001", "Authentication failed", key="not-a-key"),
    "no credentials": case(GOOD, "7002", "Service key missing", key=None),
    "inactive service": case(GOOD, "7007", "Service inactive", key=KEY_OFF),
    "no deliverychannel": case(without(GOOD, "deliverychannel"), "7003", "deliverychannel"),
    "no destination": case(without(GOOD, "destination"), "7003", "destination"),
    "empty destination": case({**GOOD, "destination": []}, "7003", "destination"),
    "no channels": case(without(GOOD, "channels"), "7003", "channels"),
    "no sms object": case({**GOOD, "channels": {"voice": {}}}, "7003", "channels.sms"),
    "no text": case(with_sms(text=None), "7003", "channels.sms.text"),
    "no msisdn": case({**GOOD, "destination": [{"correlationid": "x"}]}, "7003", "destination[0].msisdn"),
    # CONTRACT.md "Channel names and addresses": a key of another channel is 7004.
    "a key of another channel": case(
        {**GOOD, "destination": [{"email": ["a@b.c"]}]}, "7004", "destination[0].email"
    ),
    "binary without body": case(with_sms(type="3", text=None), "7003", "channels.sms.body"),
    "unknown channel": case({**GOOD, "deliverychannel": "pigeon"}, "7004", "deliverychannel"),
    "text too long": case(with_sms(text="x" * 1025), "7004", "channels.sms.text"),
    "text not a string": case(with_sms(text=5), "7004", "channels.sms.text"),
    "bad type": case(with_sms(type="9"), "7004", "channels.sms.type"),
    "binary not hex": case(with_sms(type="3", body="zz"), "7004", "channels.sms.body"),
    "unconfigured sender": case(with_sms(senderid="OTHER"), "7004", "channels.sms.senderid"),
    "not e164": case(sms(["+447700900123", "12ab"]), "7004", "destination[0].msisdn[1]"),
    "too short for its country": case(sms(["+4412"]), "7004", "destination[0].msisdn[0]"),
    "trunk prefix is not e164": case(sms(["+4407700900123"]), "7004", "destination[0].msisdn[0]"),
    "missing text beats tps": case(
        {**sms([f"+4477009{i:05d}" for i in range(6)]), "channels": {"sms": {"senderid": "CONNCT"}}},
        "7003",
        "channels.sms.text",
        key=KEY_SMALL,
    ),
    "correlationid too long": case({**GOOD, "correlationid": "é" * 26}, "7004", "correlationid"),
    "destination correlationid too long": case(
        {**GOOD, "destination": [{"msisdn": ["+447700900123"], "correlationid": "x" * 51}]},
        "7004",
        "destination[0].correlationid",
    ),
    "callbackData too long": case({**GOOD, "callbackData": "x" * 2001}, "7004", "callbackData"),
    "bad expiry": case({**GOOD, "expiry": "tomorrow"}, "7004", "expiry"),
    "non-ascii digits as expiry": case({**GOOD, "expiry": "²"}, "7004", "expiry"),
    "expiry past year 9999": case({**GOOD, "expiry": "9999-12-31T23:59:59-05:00"}, "7004", "expiry"),
    "impossible expiry": case({**GOOD, "expiry": "2026-02-30T10:00:00Z"}, "7004", "expiry"),
    "bad priority": case({**GOOD, "priority": "7"}, "7004", "priority"),
    "destination not an array": case({**GOOD, "destination": "+447700900123"}, "7004", "destination"),
    "contact policy without checks": case(
        {**GOOD, "contactPolicy": {"contactPolicyGroup": "g"}}, "7004", "channelCheckConsent"
    ),
    "contact policy without group": case(
        {**GOOD, "contactPolicy": {"channelCheckConsent": True}}, "7003", "contactPolicyGroup"
    ),
    "unknown contact policy group": case(
        {**GOOD, "contactPolicy": {"contactPolicyGroup": "g", "channelCheckConsent": True}},
        "7004",
        "contactPolicyGroup",
    ),
    "smart link placeholder without entry": case(with_sms(text="go {{link_5}}"), "7004", "{{link_5}}"),
    "unknown template": case(
        {**without(GOOD, "channels"), "channels": {}, "message": {"template": "t1"}},
        "7004",
        "message.template",
    ),
    "more than 1000 addresses": case(sms([f"+4477009{i:05d}" for i in range(1001)]), "7009", "1001"),
    "more than the service's tps": case(
        sms([f"+4477009{i:05d}" for i in range(6)]), "7009", "tps", key=KEY_SMALL
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_refused_with_the_documented_code(server: TidingsServer, receiver: Receiver, name: str):
    body, code, words, key = CASES[name]
    path = unique_path("refused")
    if isinstance(body, dict):
        body = {**body, "notifyurl": receiver.url(path)}
    r = server.send(body, key)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    response = r.json()["response"]
    assert isinstance(response, dict), "errors are one object, not an array"
    assert response["code"] == code, response
    assert words in response["description"]
    uuid.UUID(response["transid"])
    assert "request-id" in r.headers


def test_oversized_body_is_413_with_json(server: TidingsServer):
    body = json.dumps(sms(["+447700900123"], callbackData="x" * 2_000_000))
    r = server.send(body, KEY_A)
    assert r.status_code == 413
    assert r.json()["response"]["code"] == "7022"


def test_refused_requests_sent_nothing(server: TidingsServer, receiver: Receiver):
    paths = []
    for body, _, _, key in CASES.values():
        if isinstance(body, dict):
            path = unique_path("refused-all")
            paths.append(path)
            server.send({**body, "notifyurl": receiver.url(path)}, key)
    probe = unique_path("probe")
    r = server.send(sms(["+447700900123"], notifyurl=receiver.url(probe)), KEY_A)
    assert r.json()["response"][0]["code"] == "1001"
    receiver.wait_count(probe, 2)  # a later, accepted message has been fully notified by now
    time.sleep(0.2)
    assert not [h for h in receiver.hits if h.path in paths]
