"""Templates as a user meets them: v1 `message{template, parameters}` and the SMS API's
`contentType: template`, filled in, overridden by the request's own text, and refused when unknown or
missing a value."""

from typing import Any

import pytest

from tests.conftest import KEY_A, KEY_B
from tests.support.server import TidingsServer

OTP = {"template": "otp", "parameters": {"code": "4821", "minutes": 10}}


def v1(message: dict[str, Any], channels: dict[str, Any] | None = None, key: str = KEY_A) -> dict[str, Any]:
    body: dict[str, Any] = {
        "deliverychannel": "sms",
        "destination": [{"msisdn": ["+447700900123"]}],
        "message": message,
    }
    if channels is not None:
        body["channels"] = channels
    return body


def sent_text(server: TidingsServer, body: dict[str, Any], key: str = KEY_A) -> str:
    answer = server.send(body, key).json()["response"]
    assert isinstance(answer, list) and answer[0]["code"] == "1001", answer
    view = server.client.get(f"/v1/messages/{answer[0]['transid']}", headers={"key": key}).json()
    return str(view["content"]["text"])


def test_v1_template_is_filled_in(server: TidingsServer):
    assert sent_text(server, v1(OTP)) == "Your code is 4821. It expires in 10 minutes."


def test_v1_template_keeps_the_channel_objects_other_fields_and_its_text_wins(server: TidingsServer):
    body = v1(OTP, {"sms": {"senderid": "TIDINGS"}})
    answer = server.send(body, KEY_A).json()["response"][0]
    view = server.client.get(f"/v1/messages/{answer['transid']}", headers={"key": KEY_A}).json()
    assert view["content"]["senderid"] == "TIDINGS"
    assert view["content"]["text"].startswith("Your code is 4821")
    assert sent_text(server, v1(OTP, {"sms": {"text": "My own words"}})) == "My own words"


@pytest.mark.parametrize(
    ("body", "key", "code", "named"),
    [
        (v1({"template": "otp", "parameters": {"code": "1"}}), KEY_A, "7003", "message.parameters.minutes"),
        (v1({"template": "nope"}), KEY_A, "7004", "message.template"),
        (v1(OTP), KEY_B, "7004", "message.template"),  # another service's template
        (v1({"parameters": {"code": "1"}}), KEY_A, "7003", "message.template"),
    ],
    ids=["missing-parameter", "unknown", "other-service", "no-template-id"],
)
def test_v1_template_refusals(server: TidingsServer, body: dict[str, Any], key: str, code: str, named: str):
    answer = server.send(body, key).json()["response"]
    assert isinstance(answer, dict), answer
    assert answer["code"] == code and named in answer["description"], answer


def test_sms_api_template_with_substitutions(server: TidingsServer):
    headers = {"Authorization": KEY_A}
    r = server.client.post(
        "/v1/sms/messages",
        headers=headers,
        json={
            "from": "CONNCT",
            "contentType": "TEMPLATE",
            "content": "otp",
            "substitutions": {"minutes": 5},
            "to": [{"to": "+447700900123", "substitutions": {"code": "1111"}}],
        },
    )
    assert r.status_code == 202, r.text
    message_id = r.json()["messages"][0]["messageId"]
    view = server.client.get(f"/v1/sms/messages/{message_id}", headers=headers).json()
    assert view["content"] == "Your code is 1111. It expires in 5 minutes."
    missing = server.client.post(
        "/v1/sms/messages",
        headers=headers,
        json={"from": "CONNCT", "to": "+447700900123", "contentType": "template", "content": "otp"},
    )
    assert missing.status_code == 400
    assert missing.json()["code"] == "7003"
    assert missing.json()["message"] == "Mandatory parameter missing - substitutions.code"
    unknown = server.client.post(
        "/v1/sms/messages",
        headers=headers,
        json={"from": "CONNCT", "to": "+447700900123", "contentType": "template", "content": "nope"},
    )
    assert (unknown.status_code, unknown.json()["message"]) == (400, "Invalid parameter - content")
