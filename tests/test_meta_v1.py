"""WhatsApp and Messenger through the v1 API on sandbox apps (issue 12, first step): the objects in
`channels["OTT-Messaging"]`, their destinations, their app rules, and every seed Messenger sample
accepted and delivered by the sandbox."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KEY_A, assert_no_secrets, config_text, unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer
from tests.test_messenger_request import SEED_REQUESTS

APPS = """
[[apps]]
id = "sandbox-app"
service = "alpha"

[[apps]]
id = "wa-number"
service = "alpha"

[apps.whatsapp]
phone_number_id = "1098765"
access_token = "meta-v1-test-token"
app_secret = "meta-v1-app-secret"
verify_token = "meta-v1-verify"
"""


@pytest.fixture(scope="module")
def meta_server(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[TidingsServer]:
    workdir: Path = tmp_path_factory.mktemp("meta")
    s = TidingsServer(workdir, config_text(receiver) + APPS).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()
    assert_no_secrets(s)


def whatsapp(destination: dict[str, list[str]], notify: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "appid": "sandbox-app",
        "deliverychannel": "whatsapp",
        "channels": {"OTT-Messaging": {"wa": {"type": "text", "text": {"body": "Hello"}}}},
        "destination": [destination],
        "notifyurl": notify,
    }
    body.update(extra)
    return body


def answer(server: TidingsServer, body: dict[str, Any]) -> Any:
    return server.send(body, KEY_A).json()["response"]


def test_a_whatsapp_text_to_a_waid_is_delivered_by_the_sandbox(
    meta_server: TidingsServer, receiver: Receiver
):
    path = unique_path("wa")
    accepted = answer(
        meta_server, whatsapp({"waid": ["447700900123"], "msisdn": ["+447700900124"]}, receiver.url(path))
    )
    assert [a["code"] for a in accepted] == ["1001", "1001"], accepted
    hits = receiver.wait_count(path, 4)
    final = {(h.info["destination"], h.info["destinationType"], h.info["deliveryStatus"]) for h in hits}
    assert ("+447700900123", "waid", "Delivered") in final and (
        "+447700900124",
        "msisdn",
        "Delivered",
    ) in final
    assert {h.info["deliveryChannel"] for h in hits} == {"whatsapp"}
    view = meta_server.client.get(f"/v1/messages/{accepted[0]['transid']}", headers={"key": KEY_A}).json()
    assert view["content"] == {"appid": "sandbox-app", "wa": {"type": "text", "text": {"body": "Hello"}}}


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"channels": {"OTT-Messaging": {}}}, "7003", "channels.OTT-Messaging.wa"),
        ({"channels": {"OTT-Messaging": {"wa": {"type": "text"}}}}, "7003", "channels.OTT-Messaging.wa.text"),
        ({"destination": [{"psid": ["123"]}]}, "7004", "destination[0].psid"),
        ({"destination": [{"waid": ["not a number"]}]}, "7004", "destination[0].waid[0]"),
        ({"appid": None}, "7003", "appid"),
        ({"deliverychannel": "fb", "appid": "wa-number"}, "7104", "wa-number"),  # a number, not a page
    ],
)
def test_refused_meta_requests(meta_server: TidingsServer, receiver: Receiver, change, code, field) -> None:
    body = whatsapp({"waid": ["447700900123"]}, receiver.url(unique_path("refused")))
    body.update(change)
    if body.get("deliverychannel") == "fb":
        body["destination"] = [{"psid": ["1234567890"]}]
        body["channels"] = {"OTT-Messaging": {"fb": {"text": "hi"}}}
    body = {k: v for k, v in body.items() if v is not None}
    refused = answer(meta_server, body)
    assert isinstance(refused, dict) and refused["code"] == code, refused
    assert field in refused["description"], refused


def test_a_text_over_4096_characters_is_7714(meta_server: TidingsServer, receiver: Receiver) -> None:
    body = whatsapp({"waid": ["447700900123"]}, receiver.url(unique_path("long")))
    body["channels"]["OTT-Messaging"]["wa"]["text"]["body"] = "x" * 4097
    refused = answer(meta_server, body)
    assert refused["code"] == "7714", refused


@pytest.mark.parametrize("name", sorted(SEED_REQUESTS))
def test_every_seed_messenger_sample_is_accepted_and_delivered(
    meta_server: TidingsServer, receiver: Receiver, name: str
) -> None:
    path = unique_path("fb")
    body = {**SEED_REQUESTS[name], "appid": "sandbox-app", "notifyurl": receiver.url(path)}
    body["destination"] = [{"psid": ["2345678901234567"]}]
    accepted = answer(meta_server, body)
    assert isinstance(accepted, list) and accepted[0]["code"] == "1001", accepted
    hits = receiver.wait_count(path, 2)
    assert {(h.info["deliveryChannel"], h.info["destinationType"]) for h in hits} == {("fb", "psid")}
