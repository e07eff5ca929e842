"""The Messaging API v2 (`POST /v2/messages`, `GET /v2/messages/{messageId}`) with SMS, over HTTP: the
reference notes' v2 SMS samples, the 201 shapes, every refusal naming its field (and storing nothing),
401/403/429, the status view with its history, requestedReceipts as a notification receiver sees them,
sendAt, expireAt/validity, link shortening and Idempotency-Key."""

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import KEY_A, KEY_B, KEY_OFF, KEY_SMALL, SECRET_A, make_jwt, unique_path
from tests.support.receiver import Hit, Receiver
from tests.support.server import TidingsServer

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")
LINK = re.compile(r"/l/([A-Za-z0-9_-]+)")


def post(server: TidingsServer, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    h = {"key": KEY_A} if headers is None else headers
    if isinstance(body, bytes | str):
        return server.client.post("/v2/messages", content=body, headers=h)
    return server.client.post("/v2/messages", json=body, headers=h)


def v2_sms(*msisdns: str, **extra: Any) -> dict[str, Any]:
    return {
        "channel": "sms",
        "from": "CONNCT",
        "to": [{"msisdn": list(msisdns or ("+447700900123",))}],
        "content": {"type": "text", "text": "hello"},
        **extra,
    }


def get(server: TidingsServer, message_id: str, key: str = KEY_A) -> httpx.Response:
    return server.client.get(f"/v2/messages/{message_id}", headers={"key": key})


def final(server: TidingsServer, message_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        view = get(server, message_id).json()
        if view["status"] not in ("queued", "submitted"):
            return dict(view)
        time.sleep(0.03)
    raise AssertionError(f"{message_id} did not reach a final status")


def iso_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def stored(server: TidingsServer, correlationid: str) -> int:
    return int(server.rows("SELECT count(*) FROM messages WHERE correlationid = ?", correlationid)[0][0])


def notes(receiver: Receiver, path: str, count: int) -> list[Hit]:
    return receiver.wait_count(path, count, timeout=10)


# -- the reference notes' v2 SMS samples (reference/webex-connect.md §3 item 3, §1.3) ---------------------


def test_the_full_v2_sms_sample_is_accepted_and_delivered(server: TidingsServer, receiver: Receiver):
    path = unique_path("v2full")
    body = {
        "channel": "sms",
        "from": "CONNCT",
        "to": [
            {"msisdn": ["+447700900301"], "substitutions": {"{{name}}": "Ann"}, "correlationId": "c-ann"},
            {"msisdn": ["447700900302"], "correlationId": "c-bob"},
        ],
        "substitutions": {"{{name}}": "friend", "code": "77"},
        "options": {"shortenLinks": False, "trackClicks": False, "domain": "ex.co", "tag1": "t"},
        "requestedReceipts": ["SUBMITTED", "DELIVERED", "CLICKED", "FAILED"],
        "content": {"type": "text", "text": "Hi {{name}}, code {{code}}"},
        "validity": 3600,
        "callbackData": "cb-1",
        "notifyUrl": receiver.url(path),
        "notifyUrlAuthId": "TNPXXXT09U",
        "correlationId": "c-top",
        "contactPolicy": {"contactPolicyGroup": "capped", "channelApplyFrequencyCap": True},
    }
    r = post(server, body)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["status"] == "queued" and answer["correlationId"] == "c-ann"
    ids = [m["messageId"] for m in answer["messages"]]
    hits = notes(receiver, path, 4)
    by_id = {(h.transid, h.info["deliveryStatus"]) for h in hits}
    assert by_id == {(i, s) for i in ids for s in ("Submitted", "Delivered")}
    texts = {
        m["messageId"]: server.client.get(f"/v1/messages/{m['messageId']}", headers={"key": KEY_A}).json()
        for m in answer["messages"]
    }
    assert [texts[i]["content"]["text"] for i in ids] == ["Hi Ann, code 77", "Hi friend, code 77"]
    note = hits[0].json["deliveryInfoNotification"]
    assert (note["callbackData"], hits[0].info["deliveryChannel"], hits[0].info["destinationType"]) == (
        "cb-1",
        "sms",
        "msisdn",
    )
    assert {h.json["deliveryInfoNotification"]["correlationid"] for h in hits} == {"c-ann", "c-bob"}


def test_the_samples_lower_case_spellings_and_unicode(server: TidingsServer, receiver: Receiver):
    path = unique_path("v2lower")
    body = v2_sms("+447700900303", notifyurl=receiver.url(path), correlationid="low-1")
    body["content"] = {"type": "UNICODE", "text": "Привет"}
    r = post(server, body)
    assert r.status_code == 201, r.text
    assert r.json()["correlationId"] == "low-1"
    hits = notes(receiver, path, 2)
    assert [h.info["deliveryStatus"] for h in hits] == ["Submitted", "Delivered"]
    view = server.client.get(f"/v1/messages/{r.json()['messageId']}", headers={"key": KEY_A}).json()
    assert view["content"]["type"] == "4" and view["content"]["text"] == "Привет"


def test_a_template_by_id_with_substitutions(server: TidingsServer):
    body = v2_sms("+447700900304", template={"id": "otp"}, substitutions={"code": "1234", "minutes": 5})
    del body["content"]
    r = post(server, body)
    assert r.status_code == 201, r.text
    view = server.client.get(f"/v1/messages/{r.json()['messageId']}", headers={"key": KEY_A}).json()
    assert view["content"]["text"] == "Your code is 1234. It expires in 5 minutes."


def test_smartlinks_give_each_message_its_own_link(server: TidingsServer):
    body = v2_sms("+447700900305", "+447700900306", smartlinks=[{"smartlinkId": 5, "validity": 30}])
    body["content"]["text"] = "Get it: {{smartlink_5}}"
    r = post(server, body)
    assert r.status_code == 201, r.text
    codes = []
    for m in r.json()["messages"]:
        view = server.client.get(f"/v1/messages/{m['messageId']}", headers={"key": KEY_A}).json()
        found = LINK.search(view["content"]["text"])
        assert found, view["content"]
        codes.append(found.group(1))
    assert len(set(codes)) == 2
    follow = server.client.get(f"/l/{codes[0]}", headers={"user-agent": "curl/8"})
    assert (follow.status_code, follow.headers["location"]) == (302, "https://example.com/app")


# -- 201 shapes -----------------------------------------------------------------------------------------


def test_one_address_answers_201_with_the_documented_body(server: TidingsServer):
    r = post(server, v2_sms(correlationId="one-1"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"requestTimestamp", "messageId", "correlationId", "status"}
    assert (body["correlationId"], body["status"]) == ("one-1", "queued")
    assert ISO.fullmatch(body["requestTimestamp"])
    uuid.UUID(body["messageId"])


def test_several_addresses_list_every_message(server: TidingsServer):
    body = v2_sms(correlationId="top")
    body["to"] = [
        {"msisdn": ["+447700900311", "+447700900312"]},
        {"msisdn": ["+447700900313"], "correlationId": "own"},
    ]
    r = post(server, body)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["messageId"] == answer["messages"][0]["messageId"] and answer["correlationId"] == "top"
    assert [(m["to"], m["correlationId"]) for m in answer["messages"]] == [
        ("+447700900311", "top"),
        ("+447700900312", "top"),
        ("+447700900313", "own"),
    ]
    assert len({m["messageId"] for m in answer["messages"]}) == 3


# -- refusals: each names its field, nothing is stored --------------------------------------------------


def _set(path: str, value: Any) -> Any:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = body
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        if value is _DELETE:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value

    return change


_DELETE = object()
LONG = "x" * 51

REFUSALS = [
    (_set("channel", _DELETE), "7003", "channel"),
    (_set("channel", "pigeon"), "7004", "channel"),
    (_set("channel", "push"), "7004", "channel"),  # a channel, but not one v2 serves
    (_set("from", _DELETE), "7003", "from"),
    (_set("from", "NOPE"), "7004", "from"),
    (_set("from", "ABCDEFGHIJKL"), "7004", "from"),
    (_set("to", _DELETE), "7003", "to"),
    (_set("to", "+447700900123"), "7004", "to"),
    (_set("to.0", "+447700900123"), "7004", "to[0]"),
    (_set("to.0", {}), "7003", "to[0].msisdn"),
    (_set("to.0.msisdn", ["12"]), "7004", "to[0].msisdn[0]"),
    (_set("to.0.msisdn", ["+447700900123", "not-a-number"]), "7004", "to[0].msisdn[1]"),
    (_set("to.0.email", ["a@example.com"]), "7004", "to[0].email"),
    (_set("to.0.correlationId", LONG), "7004", "to[0].correlationId"),
    (_set("to.0.substitutions", ["x"]), "7004", "to[0].substitutions"),
    (_set("to.0.msisdn", [f"+4477009{i:05d}" for i in range(1001)]), "7009", "to"),
    (_set("content", _DELETE), "7003", "content"),
    (_set("content.type", "binary"), "7004", "content.type"),
    (_set("content.text", _DELETE), "7003", "content.text"),
    (_set("content.text", "x" * 4001), "7004", "content.text"),
    (_set("options", {"shortenLinks": "yes"}), "7004", "options.shortenLinks"),
    (_set("requestedReceipts", ["DELIVERED", "OPENED"]), "7004", "requestedReceipts[1]"),
    (_set("callbackData", "x" * 2001), "7004", "callbackData"),
    (_set("notifyUrl", "ftp://example.com/x"), "7004", "notifyUrl"),
    (_set("correlationId", LONG), "7004", "correlationId"),
    (_set("expireAt", iso_in(3600)), "7004", "validity"),  # with validity: one or the other
    (_set("validity", 72 * 3600 + 1), "7004", "validity"),
    (_set("validity", "soon"), "7004", "validity"),
    (_set("sendAt", iso_in(8 * 86400)), "7004", "sendAt"),
    (_set("sendAt", "tomorrow"), "7004", "sendAt"),
    (_set("substitutions", {"a": {"b": 1}}), "7004", "substitutions.a"),
    (_set("template", {"id": "nope"}), "7004", "template.id"),
    (_set("contactPolicy", {"contactPolicyGroup": "marketing"}), "7004", "contactPolicy"),
    (_set("contactPolicy", {"channelCheckConsent": True}), "7003", "contactPolicy.contactPolicyGroup"),
    (
        _set("contactPolicy", {"contactPolicyGroup": "nobody", "channelCheckConsent": True}),
        "7004",
        "contactPolicy.contactPolicyGroup",
    ),
    (_set("smartlinks", [{"smartlinkId": 99}]), "7004", "smartlinks[0].smartlinkId"),
    (_set("content.text", "see {{smartlink_7}}"), "7004", "smartlinks"),
]


@pytest.mark.parametrize(("change", "code", "field"), REFUSALS, ids=[f"{c}-{f}" for _, c, f in REFUSALS])
def test_every_refusal_names_its_field_and_stores_nothing(
    server: TidingsServer, change: Any, code: str, field: str
):
    corr = uuid.uuid4().hex[:20]
    body = v2_sms(correlationId=corr, validity=600)
    change(body)
    r = post(server, body)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == code and r.json()["message"].endswith(f" - {field}"), r.text
    assert stored(server, corr) == 0


def test_expire_at_alone_in_the_past_and_a_template_without_values_are_refused(server: TidingsServer):
    corr = uuid.uuid4().hex[:20]
    past = post(server, v2_sms(correlationId=corr, expireAt=iso_in(-60)))
    assert (past.status_code, past.json()["message"]) == (400, "Invalid parameter - expireAt")
    hole = v2_sms(correlationId=corr, template={"id": "otp"}, substitutions={"code": "1"})
    del hole["content"]
    r = post(server, hole)
    assert (r.status_code, r.json()["code"], r.json()["message"]) == (
        400,
        "7003",
        "Mandatory parameter missing - substitutions.minutes",
    )
    assert stored(server, corr) == 0


@pytest.mark.parametrize("raw", [b"{not json", b"[1]", b'"text"'], ids=["broken", "array", "string"])
def test_a_body_that_is_not_a_json_object_is_7000(server: TidingsServer, raw: bytes):
    r = post(server, raw, {"key": KEY_A, "content-type": "application/json"})
    assert (r.status_code, r.json()["code"], r.json()["message"]) == (400, "7000", "Invalid JSON")


# -- auth and rate ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"key": "wrong"}, {"Authorization": "Bearer a.b.c"}, {"Authorization": "Bearer not-a-jwt"}],
    ids=["none", "wrong-key", "bad-jwt", "bearer-garbage"],
)
def test_missing_or_wrong_credentials_are_401_with_no_body(server: TidingsServer, headers: dict[str, str]):
    r = post(server, v2_sms(), headers)
    assert (r.status_code, r.content) == (401, b"")
    assert get(server, str(uuid.uuid4()), key="wrong").status_code == 401


def test_a_jwt_works_and_an_inactive_service_is_403(server: TidingsServer):
    token = make_jwt(SECRET_A, "svc-a")
    assert post(server, v2_sms(), {"Authorization": f"Bearer {token}", "key": "ignored"}).status_code == 201
    off = post(server, v2_sms(), {"key": KEY_OFF})
    assert (off.status_code, off.json()["code"]) == (403, "7007")


def test_the_rate_limit_is_429_with_retry_after_and_stores_nothing(server: TidingsServer):
    # svc-small: tps 5, burst 7.5. Five addresses fit once; the next five at once do not.
    corr = uuid.uuid4().hex[:20]
    five = [f"+4477009004{i:02d}" for i in range(5)]
    answers = [post(server, v2_sms(*five, correlationId=f"{corr}-{n}"), {"key": KEY_SMALL}) for n in range(3)]
    limited = [(n, r) for n, r in enumerate(answers) if r.status_code == 429]
    assert limited, [r.status_code for r in answers]
    n, r = limited[0]
    assert r.json()["code"] == "7020" and r.headers["retry-after"] == "1"
    assert stored(server, f"{corr}-{n}") == 0
    too_many = post(server, v2_sms(*five, "+447700900499"), {"key": KEY_SMALL})
    assert (too_many.status_code, too_many.json()["message"]) == (
        400,
        "Max number of destinations exceeded - to",
    )


# -- GET ----------------------------------------------------------------------------------------------------


def test_get_shows_the_message_and_its_history(server: TidingsServer):
    r = post(server, v2_sms("+447700900321", correlationId="g-1"))
    view = final(server, r.json()["messageId"])
    assert {k: view[k] for k in ("messageId", "channel", "from", "to", "status", "correlationId")} == {
        "messageId": r.json()["messageId"],
        "channel": "sms",
        "from": "CONNCT",
        "to": "+447700900321",
        "status": "delivered",
        "correlationId": "g-1",
    }
    assert ISO.fullmatch(view["statusTime"]) and view["requestTimestamp"] == r.json()["requestTimestamp"]
    assert [(h["status"], h["code"]) for h in view["history"]] == [
        ("queued", "1001"),
        ("submitted", "7501"),
        ("delivered", "7500"),
    ]
    assert "error" not in view
    assert get(server, r.json()["messageId"], key=KEY_B).status_code == 404
    assert get(server, str(uuid.uuid4())).status_code == 404


def test_get_shows_a_failure_as_error(server: TidingsServer):
    r = post(server, v2_sms("+447700907203"))
    view = final(server, r.json()["messageId"])
    assert view["status"] == "un-delivered"
    assert view["error"]["code"] == "7203"


# -- requestedReceipts --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("receipts", "address", "expected"),
    [
        (["DELIVERED"], "+447700900331", ["Delivered"]),
        (["sent"], "+447700900332", ["Submitted"]),
        (["Failed"], "+447700907203", ["Un-Delivered"]),
        (None, "+447700900333", ["Submitted", "Delivered"]),
    ],
    ids=["delivered-only", "sent-is-submitted", "failed-any-case", "absent-means-all"],
)
def test_requested_receipts_decide_what_the_receiver_gets(
    server: TidingsServer, receiver: Receiver, receipts: list[str] | None, address: str, expected: list[str]
):
    path = unique_path("rr")
    extra: dict[str, Any] = {"notifyUrl": receiver.url(path)}
    if receipts is not None:
        extra["requestedReceipts"] = receipts
    r = post(server, v2_sms(address, **extra))
    assert r.status_code == 201, r.text
    message_id = r.json()["messageId"]
    final(server, message_id)
    notes(receiver, path, len(expected))
    time.sleep(0.2)  # a notification the filter let through by mistake would be here by now
    hits = receiver.at(path)
    assert [h.info["deliveryStatus"] for h in hits] == expected
    assert {h.transid for h in hits} == {message_id}


def test_clicks_are_notified_when_asked_for(server: TidingsServer, receiver: Receiver):
    path = unique_path("click")
    body = v2_sms(
        "+447700900341",
        notifyUrl=receiver.url(path),
        requestedReceipts=["CLICKED"],
        options={"shortenLinks": True, "trackClicks": True},
    )
    body["content"]["text"] = "See https://example.com/offer?id=1 now"
    r = post(server, body)
    message_id = r.json()["messageId"]
    view = server.client.get(f"/v1/messages/{message_id}", headers={"key": KEY_A}).json()
    code = LINK.search(view["content"]["text"])
    assert code and "example.com" not in view["content"]["text"], view["content"]
    final(server, message_id)
    follow = server.client.get(f"/l/{code.group(1)}", headers={"user-agent": "agent/1"})
    assert (follow.status_code, follow.headers["location"]) == (302, "https://example.com/offer?id=1")
    (hit,) = notes(receiver, path, 1)
    assert (hit.info["deliveryStatus"], hit.info["code"], hit.transid) == ("Clicked", "7528", message_id)
    assert hit.info["Description"].startswith("https://example.com/offer?id=1|")


# -- sendAt, expireAt, validity ----------------------------------------------------------------------------


def test_send_at_is_the_first_moment_a_message_is_sent(server: TidingsServer, receiver: Receiver):
    path = unique_path("later")
    send_at = time.time() + 2
    when = datetime.fromtimestamp(send_at, UTC).isoformat(timespec="milliseconds")
    r = post(server, v2_sms("+447700900351", sendAt=when, notifyUrl=receiver.url(path), validity=60))
    assert r.status_code == 201, r.text
    message_id = r.json()["messageId"]
    time.sleep(1.0)
    assert get(server, message_id).json()["status"] == "queued"
    hits = notes(receiver, path, 2)
    assert hits[0].at >= send_at and hits[0].info["deliveryStatus"] == "Submitted"
    v1 = server.client.get(f"/v1/messages/{message_id}", headers={"key": KEY_A}).json()
    expiry = datetime.fromisoformat(v1["expiry"]).timestamp()
    assert abs(expiry - (send_at + 60)) < 0.01  # validity counts from sendAt


def test_a_past_send_at_sends_at_once_and_expire_at_is_kept(server: TidingsServer):
    at = iso_in(3600)
    r = post(server, v2_sms("+447700900352", sendAt=iso_in(-30), expireAt=at))
    assert r.status_code == 201, r.text
    assert final(server, r.json()["messageId"])["status"] == "delivered"
    v1 = server.client.get(f"/v1/messages/{r.json()['messageId']}", headers={"key": KEY_A}).json()
    assert v1["expiry"] == at


# -- Idempotency-Key ---------------------------------------------------------------------------------------


def test_a_repeat_with_the_same_idempotency_key_sends_nothing_new(server: TidingsServer):
    key = uuid.uuid4().hex
    corr = uuid.uuid4().hex[:20]
    first = post(server, v2_sms(correlationId=corr), {"key": KEY_A, "Idempotency-Key": key})
    again = post(server, v2_sms(correlationId=corr), {"key": KEY_A, "Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert stored(server, corr) == 1
    bad = post(server, v2_sms(), {"key": KEY_A, "Idempotency-Key": "k" * 65})
    assert (bad.status_code, bad.json()["message"]) == (400, "Invalid parameter - Idempotency-Key")


# -- channels v1 does not serve, and app channels ------------------------------------------------------------


@pytest.mark.parametrize("channel", ["email", "rcs"])
def test_v1_does_not_take_the_channels_only_v2_serves(server: TidingsServer, channel: str):
    key = "email" if channel == "email" else "msisdn"
    body = {"deliverychannel": channel, "destination": [{key: ["a7000@example.com"]}], "channels": {}}
    refused = server.send(body, KEY_A).json()["response"]
    assert refused["code"] == "7004" and "not supported" in refused["description"], refused


def test_an_app_channels_from_is_its_app_id(server: TidingsServer):
    body = {
        "channel": "rcs",
        "to": [{"msisdn": ["+447700900361"]}],
        "content": {"type": "text", "text": "hi"},
    }
    missing = post(server, body)
    assert (missing.status_code, missing.json()["message"]) == (400, "Mandatory parameter missing - from")
    unknown = post(server, {**body, "from": "no-such-app"})
    assert (unknown.status_code, unknown.json()["code"], unknown.json()["message"]) == (
        400,
        "7104",
        "Invalid app id - from",
    )
