"""Push as a user of the API meets it on a sandbox app (no provider blocks): the v1 request with its
`appid`, the devices API, user tokens and the receipts that move a message to Delivered and Read."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import KEY_A, KEY_B, SECRETS, assert_no_secrets, b64, config_text, unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer

APP_SECRET = b"app-a-client-secret-0123456789ab"
SECRETS.append(b64(APP_SECRET))

APPS = f"""
[[apps]]
id = "app-a"
service = "alpha"
client_secret = "{b64(APP_SECRET)}"

[[apps]]
id = "app-b"
service = "beta"

[[apps]]
id = "app-wa"
service = "alpha"

[apps.whatsapp]
phone_number_id = "1098765"
access_token = "wa-token-not-a-secret-here"
app_secret = "wa-app-secret"
verify_token = "wa-verify"

[[templates]]
id = "welcome"
service = "alpha"
channel = "push"
text = "Welcome, {{{{name}}}}!"
"""


@pytest.fixture(scope="module")
def push_server(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[TidingsServer]:
    workdir: Path = tmp_path_factory.mktemp("push")
    s = TidingsServer(workdir, config_text(receiver) + APPS).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()
    assert_no_secrets(s)


def push(destination: dict[str, list[str]], notify: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "appid": "app-a",
        "deliverychannel": "push",
        "channels": {"push": {"android": {"text": "Hello", "title": "Hi"}, "ios": {"text": "Hello"}}},
        "destination": [destination],
        "notifyurl": notify,
    }
    body.update(extra)
    return body


def refused(server: TidingsServer, body: dict[str, Any], key: str = KEY_A) -> dict[str, Any]:
    answer = server.send(body, key).json()["response"]
    assert isinstance(answer, dict), answer
    return answer


def user_token(server: TidingsServer, user: str, key: str = KEY_A) -> str:
    r = server.client.post(f"/v1/apps/app-a/users/{user}/token", headers={"key": key})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    SECRETS.append(token)
    return str(token)


def receipt(server: TidingsServer, token: str, transid: str, status: str) -> httpx.Response:
    return server.client.post(
        "/v1/apps/app-a/receipts",
        json={"transid": transid, "status": status},
        headers={"authorization": f"Bearer {token}"},
    )


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"appid": None}, "7003", "appid"),
        ({"appid": "no-such-app"}, "7104", "no-such-app"),
        ({"appid": "app-b"}, "7104", "app-b"),  # beta's app
        ({"appid": "app-wa"}, "7104", "app-wa"),  # a WhatsApp number, not a push app
        ({"destination": [{"msisdn": ["+447700900123"]}]}, "7004", "destination[0].msisdn"),
        ({"channels": {"push": {}}}, "7003", "channels.push"),
        ({"channels": {"sms": {"text": "x"}}}, "7003", "channels.push"),
    ],
)
def test_refused_push_requests(push_server: TidingsServer, receiver: Receiver, change, code, field) -> None:
    body = push({"userid": ["u1"]}, receiver.url(unique_path("refused")))
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    answer = refused(push_server, body)
    assert answer["code"] == code, answer
    assert field in answer["description"], answer


def test_a_user_of_a_sandbox_app_is_delivered_then_read_on_the_apps_receipt(
    push_server: TidingsServer, receiver: Receiver
) -> None:
    path = unique_path("push")
    answer = push_server.send(push({"userid": ["u1"], "correlationid": "c-1"}, receiver.url(path)), KEY_A)
    transid = answer.json()["response"][0]["transid"]
    hits = receiver.wait_count(path, 2)
    infos = [h.info for h in hits]
    assert [(i["deliveryStatus"], i["code"]) for i in infos] == [("Submitted", "7501"), ("Delivered", "7500")]
    assert {(i["deliveryChannel"], i["destinationType"], i["destination"]) for i in infos} == {
        ("push", "userid", "u1")
    }
    token = user_token(push_server, "u1")
    assert receipt(push_server, token, transid, "Read").status_code == 204
    assert receipt(push_server, token, transid, "Read").status_code == 204  # a repeat changes nothing
    receiver.wait_count(path, 3)
    time.sleep(0.5)
    assert [(h.info["deliveryStatus"], h.info["code"]) for h in receiver.at(path)][2:] == [("Read", "7502")]
    view = push_server.client.get(f"/v1/messages/{transid}", headers={"key": KEY_A}).json()
    assert view["status"] == "Read"
    assert view["content"]["appid"] == "app-a" and view["content"]["push"]["android"]["text"] == "Hello"


def test_a_read_receipt_first_reports_delivered_then_read(push_server: TidingsServer, receiver: Receiver):
    path = unique_path("early-read")
    body = push({"userid": ["u2"]}, receiver.url(path))
    body["channels"]["push"]["android"]["text"] = "slow"
    transid = push_server.send(body, KEY_A).json()["response"][0]["transid"]
    receiver.wait_count(path, 1)  # Submitted; the sandbox's Delivered is 50 ms away
    token = user_token(push_server, "u2")
    assert receipt(push_server, token, transid, "Read").status_code == 204
    receiver.wait_count(path, 3)
    time.sleep(0.3)
    statuses = [h.info["deliveryStatus"] for h in receiver.at(path)]
    assert statuses == ["Submitted", "Delivered", "Read"], statuses


def test_receipts_need_the_users_own_valid_token(push_server: TidingsServer, receiver: Receiver) -> None:
    path = unique_path("guarded")
    transid = push_server.send(push({"userid": ["u3"]}, receiver.url(path)), KEY_A).json()["response"][0][
        "transid"
    ]
    receiver.wait_count(path, 2)
    missing = push_server.client.post("/v1/apps/app-a/receipts", json={"transid": transid, "status": "Read"})
    assert missing.status_code == 401, missing.text
    forged = jwt.encode({"sub": "u3", "aud": "app-a", "exp": int(time.time()) + 60}, b"x" * 32, "HS256")
    assert receipt(push_server, forged, transid, "Read").status_code == 403
    other_user = user_token(push_server, "someone-else")
    assert receipt(push_server, other_user, transid, "Read").status_code == 403
    assert receipt(push_server, user_token(push_server, "u3"), "nope", "Read").status_code == 404
    bad = receipt(push_server, user_token(push_server, "u3"), transid, "Clicked")
    assert (bad.status_code, bad.json()["code"]) == (400, "7004")
    time.sleep(0.3)
    assert len(receiver.at(path)) == 2


def test_the_devices_api(push_server: TidingsServer) -> None:
    post = push_server.client.post
    headers = {"key": KEY_A}
    first = post(
        "/v1/apps/app-a/devices",
        json={"userid": "d1", "platform": "android", "token": "tok-1"},
        headers=headers,
    )
    assert first.status_code == 201, first.text
    device = first.json()
    assert (device["provider"], device["platform"], device["token"]) == ("fcm", "android", "tok-1")
    again = post(
        "/v1/apps/app-a/devices",
        json={"userid": "d1", "customerid": "c9", "platform": "android", "token": "tok-1"},
        headers=headers,
    )
    assert again.status_code == 201 and again.json()["deviceId"] == device["deviceId"]
    assert again.json()["customerid"] == "c9"
    web = post(
        "/v1/apps/app-a/devices",
        json={
            "userid": "d1",
            "platform": "web",
            "subscription": {
                "endpoint": "https://fcm.googleapis.com/fcm/send/abc",
                "keys": {"p256dh": "BPub", "auth": "secret-auth-value"},
            },
        },
        headers=headers,
    )
    assert web.status_code == 201, web.text
    assert "secret-auth-value" not in web.text and web.json()["endpoint"].endswith("/abc")
    listed = push_server.client.get("/v1/apps/app-a/devices?userid=d1", headers=headers).json()["devices"]
    assert {d["platform"] for d in listed} == {"android", "web"}
    assert push_server.client.get("/v1/apps/app-a/devices", headers={"key": KEY_B}).status_code == 404
    bad = post(
        "/v1/apps/app-a/devices", json={"userid": "d1", "platform": "pager", "token": "x"}, headers=headers
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "7004")
    missing = post("/v1/apps/app-a/devices", json={"userid": "d1", "platform": "ios"}, headers=headers)
    assert (missing.status_code, missing.json()["code"]) == (400, "7003")
    gone = push_server.client.delete(f"/v1/apps/app-a/devices/{device['deviceId']}", headers=headers)
    assert gone.status_code == 204
    again_gone = push_server.client.delete(f"/v1/apps/app-a/devices/{device['deviceId']}", headers=headers)
    assert again_gone.status_code == 404


def test_sandbox_tokens_end_with_the_code_their_last_digits_name(
    push_server: TidingsServer, receiver: Receiver
) -> None:
    path = unique_path("codes")
    body = push({"android_pushid": ["token-ok-0001", "token-dead-7513"]}, receiver.url(path))
    push_server.send(body, KEY_A)
    hits = receiver.wait_count(path, 4)
    final = {
        h.info["destination"]: (h.info["deliveryStatus"], h.info["code"])
        for h in hits
        if h.info["deliveryStatus"] != "Submitted"
    }
    assert final["token-ok-0001"] == ("Delivered", "7500")
    assert final["token-dead-7513"][1] == "7513"
    assert {h.info["destinationType"] for h in hits} == {"android_pushid"}


def test_a_message_whose_expiry_passed_before_it_was_sent_expires(
    push_server: TidingsServer, receiver: Receiver
) -> None:
    path = unique_path("expired")
    push_server.send(push({"userid": ["u5"]}, receiver.url(path), expiry="2020-01-01T00:00:00Z"), KEY_A)
    hits = receiver.wait_count(path, 1)
    time.sleep(0.3)
    assert [(h.info["deliveryStatus"], h.info["code"]) for h in receiver.at(path)] == [("Expired", "7503")]
    assert len(hits) == 1


def test_a_push_template_fills_the_text_of_each_platform_block(
    push_server: TidingsServer, receiver: Receiver
) -> None:
    path = unique_path("template")
    body = push(
        {"userid": ["u6"]}, receiver.url(path), message={"template": "welcome", "parameters": {"name": "Ada"}}
    )
    body["channels"] = {
        "push": {"android": {"title": "Hi"}, "web": {"title": "Hi", "platform_types": ["chrome"]}}
    }
    transid = push_server.send(body, KEY_A).json()["response"][0]["transid"]
    view = push_server.client.get(f"/v1/messages/{transid}", headers={"key": KEY_A}).json()
    blocks = view["content"]["push"]
    assert (blocks["android"]["text"], blocks["web"]["text"]) == ("Welcome, Ada!", "Welcome, Ada!")
    assert blocks["android"]["title"] == "Hi" and "ios" not in blocks
    without = push(
        {"userid": ["u6"]}, receiver.url(path), message={"template": "welcome", "parameters": {"name": "Bo"}}
    )
    del without["channels"]
    transid = push_server.send(without, KEY_A).json()["response"][0]["transid"]
    blocks = push_server.client.get(f"/v1/messages/{transid}", headers={"key": KEY_A}).json()["content"][
        "push"
    ]
    assert (blocks["android"]["text"], blocks["ios"]["text"]) == ("Welcome, Bo!", "Welcome, Bo!")
    missing = push({"userid": ["u6"]}, receiver.url(path), message={"template": "welcome", "parameters": {}})
    answer = refused(push_server, missing)
    assert answer["code"] == "7003" and "message.parameters.name" in answer["description"], answer


def test_a_sandbox_user_without_devices_gets_a_message_for_any_platform(
    push_server: TidingsServer, receiver: Receiver
) -> None:
    path = unique_path("web-only")
    body = push({"userid": ["u7"]}, receiver.url(path))
    body["channels"] = {"push": {"web": {"title": "T", "text": "x", "platform_types": ["firefox"]}}}
    push_server.send(body, KEY_A)
    hits = receiver.wait_count(path, 2)
    assert [h.info["deliveryStatus"] for h in hits] == ["Submitted", "Delivered"]


def test_a_receipt_for_a_device_or_customer_comes_from_its_own_user(
    push_server: TidingsServer, receiver: Receiver
) -> None:
    headers = {"key": KEY_A}
    registered = push_server.client.post(
        "/v1/apps/app-a/devices",
        json={"userid": "owner", "customerid": "cust-1", "platform": "android", "token": "tok-owner"},
        headers=headers,
    )
    device_id = registered.json()["deviceId"]
    for key, address in (("android_pushid", device_id), ("customerid", "cust-1")):
        path = unique_path("owned")
        transid = push_server.send(push({key: [address]}, receiver.url(path)), KEY_A).json()["response"][0][
            "transid"
        ]
        receiver.wait_count(path, 2)
        assert receipt(push_server, user_token(push_server, "intruder"), transid, "Read").status_code == 403
        assert receipt(push_server, user_token(push_server, "owner"), transid, "Read").status_code == 204


def test_a_provider_must_serve_the_devices_platform(push_server: TidingsServer) -> None:
    for platform, provider in (("windows", "apns"), ("android", "wns"), ("web", "fcm")):
        r = push_server.client.post(
            "/v1/apps/app-a/devices",
            json={"userid": "p", "platform": platform, "provider": provider, "token": "t"},
            headers={"key": KEY_A},
        )
        assert (r.status_code, r.json()["code"]) == (400, "7004"), (platform, provider, r.text)
    ios_fcm = push_server.client.post(
        "/v1/apps/app-a/devices",
        json={"userid": "p", "platform": "ios", "provider": "fcm", "token": "fcm-ios"},
        headers={"key": KEY_A},
    )
    assert ios_fcm.status_code == 201, ios_fcm.text
