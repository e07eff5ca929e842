"""The WhatsApp REST API (`POST /v1/whatsapp/messages`, `GET /v1/whatsapp/messages/{messageId}`) over
HTTP against a real `tidings serve`: a sandbox app (no provider block) and an app whose [apps.whatsapp]
block points at the Graph stand-in, which shows the Cloud API body each REST request became."""

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import KEY_A, KEY_B, KEY_OFF, SECRET_A, SECRETS, assert_no_secrets, config_text, make_jwt
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer
from tests.test_meta_e2e import GraphThread

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")
SANDBOX, CLOUD, BETA_APP = "wa-rest-sandbox", "wa-rest-cloud", "wa-rest-beta"
APP_SECRET, VERIFY_TOKEN = "rest-wa-app-secret-7171", "rest-wa-verify-8181"
IMAGE_URL = "https://example.com/cat.jpg"


@pytest.fixture(scope="module")
def meta() -> Iterator[GraphThread]:
    with GraphThread() as standin:
        yield standin


@pytest.fixture(scope="module")
def wa_server(
    tmp_path_factory: pytest.TempPathFactory, meta: GraphThread, receiver: Receiver
) -> Iterator[TidingsServer]:
    workdir: Path = tmp_path_factory.mktemp("wa-rest")
    graph = meta.graph
    assert graph._ca is not None
    graph._ca.cert_pem.write_to_path(str(workdir / "graph-ca.pem"))
    apps = f"""
[[apps]]
id = "{SANDBOX}"
service = "alpha"

[[apps]]
id = "{BETA_APP}"
service = "beta"

[[apps]]
id = "{CLOUD}"
service = "alpha"

[apps.whatsapp]
phone_number_id = "{graph.phone_number_id}"
access_token = "{graph.wa_token}"
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"
base_url = "{graph.base_url}"
ca_file = "graph-ca.pem"
enforce_window = false  # sends to users who never wrote (tests/test_whatsapp_window.py has the rule)

[[templates]]
id = "shipped"
service = "alpha"
channel = "whatsapp"
name = "order_shipped"
language = "en_GB"
text = "Hi {{{{name}}}}, order {{{{order}}}} has shipped"
"""
    s = TidingsServer(workdir, config_text(receiver) + apps).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()
    SECRETS.extend([graph.wa_token, APP_SECRET, VERIFY_TOKEN])
    assert_no_secrets(s)


def post(server: TidingsServer, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    h = {"key": KEY_A} if headers is None else headers
    if isinstance(body, bytes):
        return server.client.post("/v1/whatsapp/messages", content=body, headers=h)
    return server.client.post("/v1/whatsapp/messages", json=body, headers=h)


def get(server: TidingsServer, message_id: str, key: str = KEY_A) -> httpx.Response:
    return server.client.get(f"/v1/whatsapp/messages/{message_id}", headers={"key": key})


def text(**extra: Any) -> dict[str, Any]:
    return {"from": SANDBOX, "to": "+447700900123", "contentType": "text", "content": "hello", **extra}


def accepted(server: TidingsServer, body: Any, headers: dict[str, str] | None = None) -> str:
    r = post(server, body, headers)
    assert r.status_code == 202, r.text
    answer = r.json()
    assert set(answer) == {"acceptedTime", "messageId", "correlationId"}
    assert ISO.fullmatch(answer["acceptedTime"])
    uuid.UUID(answer["messageId"])
    return str(answer["messageId"])


def status_until(server: TidingsServer, message_id: str, wanted: str) -> tuple[list[str], dict[str, Any]]:
    """Every distinct status the GET showed, polling until `wanted`."""
    seen: list[str] = []
    for _ in range(300):
        view = get(server, message_id).json()
        if not seen or seen[-1] != view["status"]:
            seen.append(view["status"])
        if view["status"] == wanted:
            return seen, dict(view)
        time.sleep(0.01)
    raise AssertionError(f"{message_id} never {wanted}: {seen}")


def cloud_body(meta: GraphThread, number: str) -> dict[str, Any]:
    for _ in range(300):
        got = meta.received(number)
        if got:
            (one,) = got
            assert one.path == f"/v21.0/{meta.graph.phone_number_id}/messages"
            assert one.headers["authorization"] == f"Bearer {meta.graph.wa_token}"
            return dict(one.body)
        time.sleep(0.02)
    raise AssertionError(f"nothing reached the Cloud API for {number}")


MEDIA = {"url": IMAGE_URL, "mimeType": "image/jpeg", "caption": "a cat"}
CONTACT = {
    "formattedName": "Ada Lovelace",
    "firstName": "Ada",
    "lastName": "Lovelace",
    "birthday": "1815-12-10",
    "company": "Analytical",
    "phones": [{"type": "CELL", "number": "+447700900999", "whatsAppId": "447700900999"}],
    "emails": [{"type": "WORK", "address": "ada@example.com"}],
    "urls": [{"type": "WORK", "address": "https://example.com"}],
    "addresses": [{"type": "HOME", "city": "London", "countryCode": "GB"}],
}
EVERY_TYPE: dict[str, dict[str, Any]] = {
    "TEXT": {"content": "hello", "previewUrl": True},
    "IMAGE": MEDIA,
    "VIDEO": {"url": "https://example.com/v.mp4", "mimeType": "video/mp4", "caption": "watch"},
    "AUDIO": {"url": "https://example.com/a.ogg", "mimeType": "audio/ogg"},
    "DOCUMENT": {"url": "https://example.com/d.pdf", "mimeType": "application/pdf", "fileName": "d.pdf"},
    "STICKER": {"url": "https://example.com/s.webp", "mimeType": "image/webp"},
    "LOCATION": {"latitude": 51.5, "longitude": -0.12, "name": "Office", "address": "1 Main St"},
    "CONTACTS": {"contacts": [CONTACT]},
}


@pytest.mark.parametrize("kind", list(EVERY_TYPE))
def test_every_content_type_is_accepted_and_read_back(wa_server: TidingsServer, kind: str):
    fields = EVERY_TYPE[kind]
    body = {"from": SANDBOX, "to": "+447700900123", "contentType": kind.lower(), **fields}
    message_id = accepted(wa_server, {**body, "correlationId": f"c-{kind}"})
    seen, view = status_until(wa_server, message_id, "DELIVERED")
    assert seen[-2:] == ["SENT", "DELIVERED"] and set(seen) <= {"QUEUED", "SENT", "DELIVERED"}, seen
    assert view["contentType"] == kind
    assert (view["messageId"], view["from"], view["to"]) == (message_id, SANDBOX, "+447700900123")
    assert view["correlationId"] == f"c-{kind}"
    assert ISO.fullmatch(view["acceptedTime"]) and ISO.fullmatch(view["statusTime"])
    assert "error" not in view
    if kind == "CONTACTS":
        (contact,) = view["contacts"]
        assert contact == CONTACT
    else:
        assert {k: view[k] for k in fields} == fields


def test_the_status_only_moves_forward_queued_sent_delivered(wa_server: TidingsServer):
    message_id = accepted(wa_server, text())
    assert get(wa_server, message_id).json()["status"] in ("QUEUED", "SENT", "DELIVERED")
    seen, _ = status_until(wa_server, message_id, "DELIVERED")
    assert seen == sorted(seen, key=["QUEUED", "SENT", "DELIVERED"].index)


def test_a_failure_code_number_reads_failed_with_its_error(wa_server: TidingsServer):
    message_id = accepted(wa_server, text(to="+447700907710"))
    _, view = status_until(wa_server, message_id, "FAILED")
    assert view["error"]["code"] == "7710", view


def test_text_goes_to_the_cloud_api(wa_server: TidingsServer, meta: GraphThread):
    accepted(wa_server, text(**{"from": meta.graph.phone_number_id}, to="+447700900201", previewUrl=True))
    assert cloud_body(meta, "447700900201") == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "447700900201",
        "type": "text",
        "text": {"body": "hello", "preview_url": True},
    }


def test_image_goes_to_the_cloud_api(wa_server: TidingsServer, meta: GraphThread):
    body = {"from": CLOUD, "to": "+447700900202", "contentType": "IMAGE", **MEDIA}
    message_id = accepted(wa_server, body)
    got = cloud_body(meta, "447700900202")
    assert got["type"] == "image"
    assert got["image"] == {"link": IMAGE_URL, "caption": "a cat"}
    _, view = status_until(wa_server, message_id, "SENT")
    assert view["from"] == CLOUD and view["contentType"] == "IMAGE"  # as the request named it


def test_quick_replies_are_reply_buttons(wa_server: TidingsServer, meta: GraphThread):
    replies = [{"buttonText": "Yes", "payload": "y"}, {"buttonText": "No", "payload": "n"}]
    body = text(
        **{"from": CLOUD},
        to="+447700900203",
        content="Confirm?",
        quickReplies=replies,
        mediaHeader={"contentType": "IMAGE", "url": IMAGE_URL},
    )
    message_id = accepted(wa_server, body)
    assert cloud_body(meta, "447700900203")["interactive"] == {
        "type": "button",
        "header": {"type": "image", "image": {"link": IMAGE_URL}},
        "body": {"text": "Confirm?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "y", "title": "Yes"}},
                {"type": "reply", "reply": {"id": "n", "title": "No"}},
            ]
        },
    }
    view = get(wa_server, message_id).json()
    assert (view["contentType"], view["content"], view["quickReplies"]) == ("TEXT", "Confirm?", replies)
    assert view["mediaHeader"] == {"contentType": "IMAGE", "url": IMAGE_URL}


def test_quick_replies_on_an_image_put_the_image_in_the_header(wa_server: TidingsServer, meta: GraphThread):
    replies = [{"buttonText": "Like", "payload": "like"}]
    body = {"from": CLOUD, "to": "+447700900205", "contentType": "IMAGE", **MEDIA, "quickReplies": replies}
    accepted(wa_server, body)
    got = cloud_body(meta, "447700900205")
    assert (got["type"], got["interactive"]["type"]) == ("interactive", "button")
    assert got["interactive"]["header"] == {"type": "image", "image": {"link": IMAGE_URL}}
    assert got["interactive"]["body"] == {"text": "a cat"}


@pytest.mark.parametrize(
    "subs",
    [{"name": "Ada", "n": 3}, [{"name": "Ada"}, {"n": 3}]],
    ids=["object", "array-of-one-key-objects"],
)
def test_substitutions_fill_the_content(wa_server: TidingsServer, meta: GraphThread, subs: Any):
    body = text(
        **{"from": CLOUD},
        to="+447700900206" if isinstance(subs, dict) else "+447700900207",
        content="Hi {{name}}, {{n}} parcels; {{other}} stays",
        substitutions=subs,
    )
    view = get(wa_server, accepted(wa_server, body)).json()
    sent = cloud_body(meta, body["to"].removeprefix("+"))
    assert sent["text"]["body"] == "Hi Ada, 3 parcels; {{other}} stays"
    assert (view["content"], view["substitutions"]) == (body["content"], subs)  # the GET: as requested


REPLIES = [{"buttonText": "Yes", "payload": "y"}, {"buttonText": "No", "payload": "n"}]
AS_SENT: dict[str, dict[str, Any]] = {
    **{kind.lower(): {"contentType": kind.lower(), **fields} for kind, fields in EVERY_TYPE.items()},
    "template": {
        "contentType": "Template",
        "templateId": "shipped",
        "substitutions": {"name": "A", "order": 7},
    },
    "quick-replies": {"contentType": "TEXT", "content": "Confirm?", "quickReplies": REPLIES},
    "image-quick-replies": {"contentType": "image", **MEDIA, "content": "Like?", "quickReplies": REPLIES[:1]},
    "media-header": {
        "contentType": "TEXT",
        "content": "Confirm?",
        "quickReplies": REPLIES,
        "mediaHeader": {"contentType": "DOCUMENT", "url": "https://example.com/d.pdf", "filename": "d.pdf"},
    },
    "text-header": {
        "contentType": "text",
        "content": "Pick",
        "quickReplies": REPLIES,
        "mediaHeader": {"contentType": "TEXT", "text": "Your order"},
    },
    "substitutions-object": {
        "contentType": "TEXT",
        "content": "Hi {{name}}",
        "substitutions": {"name": "Ada"},
    },
    "substitutions-array": {
        "contentType": "IMAGE",
        **MEDIA,
        "caption": "{{who}} at {{where}}",
        "substitutions": [{"who": "Ada"}, {"where": "home"}],
    },
    "every-optional-field": {
        "contentType": "TEXT",
        "content": "hello",
        "previewUrl": False,
        "correlationId": "corr-1",
        "callbackUrl": "https://example.com/cb",
        "callbackData": "data-1",
    },
}


@pytest.mark.parametrize("sender", ["app-id", "number", "number-as-json-number"])
@pytest.mark.parametrize("case", list(AS_SENT))
def test_get_gives_back_the_request_exactly(
    wa_server: TidingsServer, meta: GraphThread, case: str, sender: str
):
    """POST, then GET: the request's fields exactly as sent (contentType upper-case), plus the status."""
    number = meta.graph.phone_number_id
    given = {"app-id": CLOUD, "number": number, "number-as-json-number": int(number)}[sender]
    body = {"from": given, "to": "+447700900300", **AS_SENT[case]}
    message_id = accepted(wa_server, body)
    view = get(wa_server, message_id).json()
    status = {k: view.pop(k) for k in ("messageId", "acceptedTime", "status", "statusTime")}
    assert view == {**body, "contentType": body["contentType"].upper()}
    assert status["messageId"] == message_id and status["status"] in ("QUEUED", "SENT", "DELIVERED")
    assert ISO.fullmatch(status["acceptedTime"]) and ISO.fullmatch(status["statusTime"])


def test_get_of_a_failed_message_adds_its_error(wa_server: TidingsServer):
    body = {"from": SANDBOX, "to": "+447700907710", "contentType": "location", **EVERY_TYPE["LOCATION"]}
    message_id = accepted(wa_server, body)
    _, view = status_until(wa_server, message_id, "FAILED")
    assert view.pop("error")["code"] == "7710"
    assert {k: v for k, v in view.items() if k in body} == {**body, "contentType": "LOCATION"}
    assert set(view) - set(body) == {"messageId", "acceptedTime", "status", "statusTime"}


def test_idempotency_key_replays_the_answer_and_sends_nothing_new(
    wa_server: TidingsServer, meta: GraphThread
):
    headers = {"key": KEY_A, "Idempotency-Key": str(uuid.uuid4())}
    body = text(**{"from": CLOUD}, to="+447700900204", correlationId="once")
    first = post(wa_server, body, headers)
    assert first.status_code == 202, first.text
    cloud_body(meta, "447700900204")
    again = post(wa_server, body, headers)
    assert (again.status_code, again.content) == (202, first.content)
    assert again.headers["idempotent-replayed"] == "true"
    time.sleep(0.3)  # a second send, were there one, would have reached the stand-in by now
    assert len(meta.received("447700900204")) == 1
    (count,) = wa_server.rows("SELECT COUNT(*) FROM messages WHERE address = ?", "+447700900204")
    assert count[0] == 1


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b"{nope", "7000", None),
        ({"to": "+447700900123", "contentType": "TEXT", "content": "x"}, "7003", "from"),
        ({"from": SANDBOX, "contentType": "TEXT", "content": "x"}, "7003", "to"),
        ({"from": SANDBOX, "to": "+447700900123", "contentType": "TEXT"}, "7003", "content"),
        (text(to="12"), "7004", "to"),
        (text(contentType="MMS"), "7004", "contentType"),
        (text(contentType="TEMPLATE", templateId="t1"), "7004", "templateId"),
        (text(contentType="TEMPLATE"), "7003", "templateId"),
        (text(**{"from": "nobody"}), "7104", "from"),
        (text(**{"from": BETA_APP}), "7104", "from"),
        (
            text(quickReplies=[{"buttonText": str(i), "payload": str(i)} for i in range(4)]),
            "7004",
            "quickReplies",
        ),
        (text(quickReplies=[{"buttonText": "x" * 21, "payload": "p"}]), "7004", "quickReplies[0].buttonText"),
        (text(quickReplies=[{"buttonText": "Yes"}]), "7003", "quickReplies[0].payload"),
        (text(mediaHeader={"contentType": "IMAGE", "url": IMAGE_URL}), "7004", "mediaHeader"),
        (
            {
                **text(contentType="IMAGE"),
                **MEDIA,
                "quickReplies": [{"buttonText": "a", "payload": "a"}],
                "mediaHeader": {"contentType": "TEXT", "text": "t"},
            },
            "7004",
            "mediaHeader",
        ),
        (
            text(quickReplies=[{"buttonText": "a", "payload": "a"}], mediaHeader={"contentType": "GIF"}),
            "7004",
            "mediaHeader.contentType",
        ),
        ({**text(contentType="IMAGE"), "url": "ftp://x/y.jpg", "mimeType": "image/jpeg"}, "7004", "url"),
        ({**text(contentType="IMAGE"), "url": IMAGE_URL}, "7003", "mimeType"),
        ({**text(contentType="AUDIO"), **MEDIA, "mimeType": "audio/ogg"}, "7004", "caption"),
        ({**text(contentType="LOCATION"), "latitude": 95, "longitude": 0}, "7004", "latitude"),
        (
            {**text(contentType="CONTACTS"), "contacts": [{"firstName": "A"}]},
            "7003",
            "contacts[0].formattedName",
        ),
        (text(substitutions=[{"a": "1", "b": "2"}]), "7004", "substitutions[0]"),
        (text(correlationId="x" * 51), "7004", "correlationId"),
        (text(callbackUrl="not a url"), "7004", "callbackUrl"),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    wa_server: TidingsServer, body: Any, code: str, field: str | None
):
    r = post(wa_server, body)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == code, r.json()
    if field is not None:
        assert r.json()["message"].endswith(f" - {field}"), r.json()


def test_a_text_too_long_is_refused_naming_content(wa_server: TidingsServer):
    r = post(wa_server, text(content="x" * 4097))
    assert (r.status_code, r.json()["message"]) == (400, "Message too long - content"), r.text


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "7002"),
        ({"key": "wrong"}, 403, "7001"),
        ({"Authorization": "Bearer wrong"}, 403, "7001"),
        ({"key": KEY_OFF}, 403, "7007"),
    ],
    ids=["none", "wrong-key", "wrong-bearer", "inactive"],
)
def test_auth_failures(wa_server: TidingsServer, headers: dict[str, str], status: int, code: str):
    r = post(wa_server, text(), headers)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    view = wa_server.client.get(f"/v1/whatsapp/messages/{uuid.uuid4()}", headers=headers)
    assert (view.status_code, view.json()["code"]) == (status, code)


def test_jwt_and_bearer_key_work(wa_server: TidingsServer):
    accepted(wa_server, text(), {"Authorization": "Bearer " + make_jwt(SECRET_A, "svc-a")})
    accepted(wa_server, text(), {"Authorization": f"Bearer {KEY_A}"})


def test_get_is_404_for_another_service_or_unknown_or_an_sms(wa_server: TidingsServer):
    message_id = accepted(wa_server, text())
    assert get(wa_server, message_id, KEY_B).status_code == 404
    assert get(wa_server, str(uuid.uuid4())).status_code == 404
    sms = wa_server.client.post(
        "/v1/sms/messages",
        json={"from": "CONNCT", "to": "+447700900123", "content": "x"},
        headers={"key": KEY_A},
    )
    assert get(wa_server, sms.json()["messageId"]).status_code == 404


def test_a_template_goes_to_the_cloud_api_from_the_registry(wa_server: TidingsServer, meta: GraphThread):
    body = {
        "from": CLOUD,
        "to": "+447700900209",
        "contentType": "template",
        "templateId": "shipped",
        "substitutions": [{"name": "Ada"}, {"order": "A-17"}],
    }
    message_id = accepted(wa_server, body)
    assert cloud_body(meta, "447700900209") == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "447700900209",
        "type": "template",
        "template": {
            "name": "order_shipped",
            "language": {"code": "en_GB"},
            "components": [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "A-17"}],
                }
            ],
        },
    }
    assert get(wa_server, message_id).json()["contentType"] == "TEMPLATE"
    missing = post(wa_server, {**body, "substitutions": {"name": "Ada"}})
    assert (missing.status_code, missing.json()["code"]) == (400, "7003"), missing.text
    assert "order" in missing.text
