"""What a real client (the Webex Connect CPaaS SDKs) reads: the SMS API's `contentType` in upper case, a
`message` in every 404 and 405 body, and a retried request with the same Idempotency-Key answered from
its first response even when the service's rate is spent."""

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import TidingsServer

TOKEN = "admin-token-" + uuid.uuid4().hex
KEY, KEY_TINY = "key-compat-0001", "key-compat-tiny-0002"
CONFIG = f"""
[server]
admin_token = "{TOKEN}"

[sandbox]
delay_ms = 20

[[services]]
id = "svc-c"
name = "sea"
key = "{KEY}"
senderids = ["CONNCT"]

[[services]]
id = "svc-tiny"
key = "{KEY_TINY}"
tps = 1
senderids = ["CONNCT"]

[[templates]]
id = "otp"
service = "sea"
channel = "sms"
text = "Code {{{{code}}}}"

[[contact_policy.groups]]
id = "news"
service = "sea"
kind = "opt-in"
"""
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TidingsServer]:
    s = TidingsServer(tmp_path_factory.mktemp("compat"), CONFIG).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()


def post_sms(server: TidingsServer, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    return server.client.post("/v1/sms/messages", json=body, headers=headers)


def viewed_content_type(server: TidingsServer, message_id: str) -> str:
    r = server.client.get(f"/v1/sms/messages/{message_id}", headers={"key": KEY})
    assert r.status_code == 200, r.text
    return str(r.json()["contentType"])


SENT_AS = {
    "text": "hello",
    "unicode": "h\u00e9llo \u263a",
    "binary": "0102A0FF",
    "template": "otp",
}


@pytest.mark.parametrize("spelling", [str.lower, str.upper, str.title], ids=["lower", "upper", "title"])
@pytest.mark.parametrize("content_type", list(SENT_AS))
def test_the_sms_api_answers_content_type_in_upper_case(
    server: TidingsServer, content_type: str, spelling: Any
):
    body = {
        "from": "CONNCT",
        "to": "+447700900123",
        "contentType": spelling(content_type),
        "content": SENT_AS[content_type],
        "substitutions": {"code": "1234"},
    }
    r = post_sms(server, body, {"key": KEY})
    assert r.status_code == 202, r.text
    assert viewed_content_type(server, r.json()["messageId"]) == content_type.upper()


@pytest.mark.parametrize(
    ("sms", "expected"),
    [
        ({"text": "hi"}, "TEXT"),
        ({"text": "hi", "type": "2"}, "TEXT"),
        ({"text": "h\u00e9", "type": "4"}, "UNICODE"),
        ({"type": "3", "body": "0102"}, "BINARY"),
    ],
    ids=["text", "flash", "unicode", "binary"],
)
def test_an_sms_sent_with_v1_reads_the_same_on_the_sms_api(
    server: TidingsServer, sms: dict[str, str], expected: str
):
    body = {
        "deliverychannel": "sms",
        "destination": [{"msisdn": ["+447700900123"]}],
        "channels": {"sms": {"senderid": "CONNCT", **sms}},
    }
    answer = server.send(body, KEY).json()["response"]
    assert viewed_content_type(server, answer[0]["transid"]) == expected


KEYED = {"key": KEY}
NOT_FOUND: dict[str, tuple[str, str, dict[str, str], int]] = {
    "unknown path": ("GET", "/v2/nothing-here", {}, 404),
    "v1 send with GET": ("GET", "/resources/v1/messaging", KEYED, 405),
    "sms send with PUT": ("PUT", "/v1/sms/messages", KEYED, 405),
    "short link with POST": ("POST", "/l/abc", {}, 405),
    "healthz with DELETE": ("DELETE", "/healthz", {}, 405),
    "admin entry with POST": ("POST", "/admin/v1/services/svc-c", ADMIN, 405),
    "unknown v1 message": ("GET", f"/v1/messages/{uuid.uuid4()}", KEYED, 404),
    "unknown sms message": ("GET", f"/v1/sms/messages/{uuid.uuid4()}", KEYED, 404),
    "unknown short link": ("GET", "/l/not-a-code", {}, 404),
    "unknown group": ("GET", "/v1/groups/nope/members?address=%2B447700900123", KEYED, 404),
    "no consent record": ("GET", "/v1/groups/news/members?address=%2B447700900999", KEYED, 404),
    "unknown admin entry": ("GET", "/admin/v1/services/svc-none", ADMIN, 404),
    "unknown admin template": ("PATCH", "/admin/v1/templates/svc-c/sms/none", ADMIN, 404),
}


@pytest.mark.parametrize("name", list(NOT_FOUND))
def test_every_404_and_405_says_message_and_description(server: TidingsServer, name: str):
    method, path, headers, status = NOT_FOUND[name]
    json_body = {"text": "x"} if method == "PATCH" else None
    r = server.client.request(method, path, headers=headers, json=json_body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert isinstance(body.get("code"), str) and body["code"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert isinstance(body.get("description"), str) and body["description"], body


def test_a_retry_with_the_same_idempotency_key_is_not_rate_limited(server: TidingsServer):
    body = {"from": "CONNCT", "to": "+447700900123", "content": "once"}
    keyed = {"key": KEY_TINY, "Idempotency-Key": uuid.uuid4().hex}
    first = post_sms(server, body, keyed)
    assert first.status_code == 202, first.text
    # tps 1: a bucket of 1.5, so the next request within the second is refused.
    spent = post_sms(server, body, {"key": KEY_TINY})
    assert spent.status_code == 429, spent.text
    again = post_sms(server, body, keyed)
    assert again.status_code == 202, again.text
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    # A new key is a new request, and that one the spent rate refuses.
    fresh = post_sms(server, body, {**keyed, "Idempotency-Key": uuid.uuid4().hex})
    assert fresh.status_code == 429, fresh.text
