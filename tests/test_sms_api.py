"""The SMS API (`POST /v1/sms/messages`, `GET /v1/sms/messages/{messageId}`) over HTTP: its auth forms,
status codes, field-naming errors, Idempotency-Key, substitutions, callbacks and the status view."""

import re
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import KEY_A, KEY_B, KEY_OFF, KEY_SMALL, SECRET_A, make_jwt, unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")


def post(server: TidingsServer, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    h = {"key": KEY_A} if headers is None else headers
    if isinstance(body, bytes | str):
        return server.client.post("/v1/sms/messages", content=body, headers=h)
    return server.client.post("/v1/sms/messages", json=body, headers=h)


def sms_body(**extra: Any) -> dict[str, Any]:
    return {"from": "CONNCT", "to": "+447700900123", "content": "hello", **extra}


def final_status(server: TidingsServer, message_id: str, key: str = KEY_A) -> dict[str, Any]:
    for _ in range(200):
        r = server.client.get(f"/v1/sms/messages/{message_id}", headers={"key": key})
        assert r.status_code == 200, r.text
        if r.json()["status"] in ("DELIVERED", "FAILED"):
            return dict(r.json())
        time.sleep(0.05)
    raise AssertionError(f"{message_id} did not reach a final status")


def test_accepted_is_202_with_the_documented_body(server: TidingsServer):
    r = post(server, sms_body(correlationId="order-7"))
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) == {"acceptedTime", "messageId", "correlationId"}
    assert body["correlationId"] == "order-7"
    assert ISO.fullmatch(body["acceptedTime"])
    uuid.UUID(body["messageId"])
    assert r.headers["request-id"]


@pytest.mark.parametrize(
    "headers",
    [
        {"key": KEY_A},
        {"Authorization": KEY_A},
        {"Authorization": f"Bearer {KEY_A}"},
        {"Authorization": "Bearer JWT"},
        {"Authorization": "Bearer JWT", "key": "not-a-key"},  # the JWT decides
    ],
    ids=["key-header", "raw-authorization", "bearer-key", "bearer-jwt", "jwt-beats-key"],
)
def test_every_documented_auth_form_works(server: TidingsServer, headers: dict[str, str]):
    if "JWT" in headers.get("Authorization", ""):
        headers = {**headers, "Authorization": "Bearer " + make_jwt(SECRET_A, "svc-a")}
    r = post(server, sms_body(), headers)
    assert r.status_code == 202, r.text


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "7002"),
        ({"key": "wrong"}, 403, "7001"),
        ({"Authorization": "Bearer wrong"}, 403, "7001"),
        ({"Authorization": "Bearer a.b.c"}, 403, "7001"),
        ({"key": KEY_OFF}, 403, "7007"),
    ],
    ids=["none", "wrong-key", "wrong-bearer", "bad-jwt", "inactive"],
)
def test_auth_failures(server: TidingsServer, headers: dict[str, str], status: int, code: str):
    r = post(server, sms_body(), headers)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    if code == "7001":
        assert r.json()["message"] == "Authentication failed."


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b"{not json", "7000", None),
        (b"[1, 2]", "7000", None),
        ({"to": "+447700900123", "content": "x"}, "7003", "from"),
        ({"from": "CONNCT", "content": "x"}, "7003", "to"),
        ({"from": "CONNCT", "to": "+447700900123"}, "7003", "content"),
        (sms_body(to="12"), "7004", "to"),
        (sms_body(to="+44 07700 900123"), "7004", "to"),
        (sms_body(**{"from": "NOT-MINE"}), "7004", "from"),
        (sms_body(contentType="mms"), "7004", "contentType"),
        (sms_body(contentType="template", content="no-such-template"), "7004", "content"),
        (sms_body(contentType="binary", content="zz"), "7004", "content"),
        (sms_body(content="x" * 4001), "7004", "content"),
        (sms_body(expireAt="tomorrow"), "7004", "expireAt"),
        (sms_body(callbackUrl="not a url"), "7004", "callbackUrl"),
        (sms_body(callbackData="x" * 2001), "7004", "callbackData"),
        (sms_body(correlationId="x" * 51), "7004", "correlationId"),
        (sms_body(substitutions=["a"]), "7004", "substitutions"),
        (sms_body(shortenUrls="yes"), "7004", "shortenUrls"),
        (sms_body(to=[{"correlationId": "x"}]), "7003", "to[0].to"),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    server: TidingsServer, body: Any, code: str, field: str | None
):
    r = post(server, body)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == code
    if field is not None:
        assert r.json()["message"].endswith(f" - {field}"), r.json()
        assert r.json()["message"].startswith(("Invalid parameter", "Mandatory parameter missing"))


def test_content_type_is_case_insensitive_and_unicode_is_ucs2(server: TidingsServer):
    r = post(server, sms_body(contentType="UNICODE", content="hi"))
    assert r.status_code == 202, r.text
    view = final_status(server, r.json()["messageId"])
    assert view["contentType"] == "UNICODE"
    assert view["status"] == "DELIVERED"


def test_get_returns_the_documented_view_and_errors(server: TidingsServer):
    r = post(server, sms_body(correlationId="c-1", dltTemplateId="1107161234567890123"))
    message_id = r.json()["messageId"]
    view = final_status(server, message_id)
    assert view == {
        "acceptedTime": r.json()["acceptedTime"],
        "statusTime": view["statusTime"],
        "messageId": message_id,
        "correlationId": "c-1",
        "from": "CONNCT",
        "to": "+447700900123",
        "contentType": "TEXT",
        "content": "hello",
        "status": "DELIVERED",
        "dltTemplateId": "1107161234567890123",
    }
    assert ISO.fullmatch(view["statusTime"]) and view["statusTime"] >= view["acceptedTime"]
    failed = final_status(server, post(server, sms_body(to="+447700907203")).json()["messageId"])
    assert failed["status"] == "FAILED"
    assert failed["error"] == {"code": "7203", "message": "Unknown subscriber"}
    # Another service, an unknown id, no credentials.
    assert server.client.get(f"/v1/sms/messages/{message_id}", headers={"key": KEY_B}).status_code == 404
    assert server.client.get(f"/v1/sms/messages/{uuid.uuid4()}", headers={"key": KEY_A}).status_code == 404
    assert server.client.get(f"/v1/sms/messages/{message_id}").status_code == 401


def test_idempotency_key_replays_the_first_answer_and_sends_once(server: TidingsServer, receiver: Receiver):
    path = unique_path()
    key = uuid.uuid4().hex
    headers = {"key": KEY_A, "Idempotency-Key": key}
    body = sms_body(callbackUrl=receiver.url(path))
    first = post(server, body, headers)
    second = post(server, body, headers)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second.headers.get("idempotent-replayed") == "true"
    hits = receiver.wait_count(path, 2)
    time.sleep(0.3)
    assert len(receiver.at(path)) == 2, "a replayed request must not send again"
    assert {h.info["deliveryStatus"] for h in hits} == {"Submitted", "Delivered"}
    # The key is the service's own: another service may use the same one.
    other = post(server, {**body, "from": "BETA"}, {"key": KEY_B, "Idempotency-Key": key})
    assert other.status_code == 202 and other.json()["messageId"] != first.json()["messageId"]
    too_long = post(server, body, {"key": KEY_A, "Idempotency-Key": "k" * 65})
    assert (too_long.status_code, too_long.json()["message"]) == (400, "Invalid parameter - Idempotency-Key")


def test_callbacks_carry_callback_data_and_the_message_id(server: TidingsServer, receiver: Receiver):
    path = unique_path()
    r = post(server, sms_body(callbackUrl=receiver.url(path), callbackData="cb-9", correlationId="corr-9"))
    hits = receiver.wait_count(path, 2)
    note = hits[-1].json["deliveryInfoNotification"]
    assert note["transid"] == r.json()["messageId"]
    assert (note["callbackData"], note["correlationid"]) == ("cb-9", "corr-9")
    assert note["deliveryInfo"]["deliveryStatus"] == "Delivered"


def test_substitutions_global_and_per_destination(server: TidingsServer):
    r = post(
        server,
        {
            "from": "CONNCT",
            "content": "Hi {{name}}, code $(code) for {{unknown}}",
            "substitutions": {"name": "there", "code": 1234},
            "to": [
                "+447700900123",
                {"to": "+447700900124", "substitutions": {"name": "Ann"}, "correlationId": "ann"},
            ],
        },
    )
    assert r.status_code == 202, r.text
    messages = r.json()["messages"]
    assert [m["to"] for m in messages] == ["+447700900123", "+447700900124"]
    assert messages[1]["correlationId"] == "ann"
    texts = [final_status(server, m["messageId"])["content"] for m in messages]
    assert texts == ["Hi there, code 1234 for {{unknown}}", "Hi Ann, code 1234 for {{unknown}}"]


def test_expire_at_in_the_past_expires_without_sending(server: TidingsServer):
    r = post(server, sms_body(expireAt="2020-01-01T00:00:00.000+05:30"))
    view = final_status(server, r.json()["messageId"])
    assert view["status"] == "FAILED" and view["error"]["code"] == "7208"
    epoch = post(server, sms_body(expireAt=int(time.time()) + 3600))
    assert final_status(server, epoch.json()["messageId"])["status"] == "DELIVERED"


def test_rate_limit_is_429_with_retry_after(server: TidingsServer):
    # svc-small has tps 5: a burst of 7.5 allowed, then 429 until tokens come back.
    codes = [post(server, sms_body(), {"key": KEY_SMALL}) for _ in range(12)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited, [r.status_code for r in codes]
    assert limited[0].json()["code"] == "7020" and limited[0].headers["retry-after"] == "1"
    time.sleep(1.1)
    assert post(server, sms_body(), {"key": KEY_SMALL}).status_code == 202
    too_many = post(server, sms_body(to=[f"+4477009001{i:02d}" for i in range(6)]), {"key": KEY_SMALL})
    assert (too_many.status_code, too_many.json()["code"]) == (400, "7009")
