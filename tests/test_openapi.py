"""GET /openapi.json: a valid OpenAPI 3.1 document describing every route of the application, whose
sample requests validate against their schemas and work, and whose answer schemas match what a live
server answers. Also the regressions for what scripts/fuzz (schemathesis) found."""

import base64
import time
from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import unquote

import httpx
import pytest
from jsonschema import Draft202012Validator
from starlette.routing import Route

from tests.support.server import TidingsServer
from tidings.api.app import create_app
from tidings.api.openapi import openapi_path
from tidings.runtime import Runtime

KEY = "openapi-key-0123456789"
TOKEN = "openapi-admin-token-0123456789"
APP_SECRET = b"openapi-app-client-secret-32-bytes!"
CONFIG = f"""
[server]
admin_token = "{TOKEN}"

[sandbox]
delay_ms = 20

[[services]]
id = "svc-demo"
name = "demo"
key = "{KEY}"
secret = "{base64.b64encode(b"openapi-service-secret").decode()}"
senderids = ["CONNCT"]

[[apps]]
id = "app-demo"
service = "demo"
client_secret = "{base64.b64encode(APP_SECRET).decode()}"

[[contact_policy.groups]]
id = "news"
service = "demo"
"""
SERVICE = {"key": KEY}
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TidingsServer]:
    s = TidingsServer(tmp_path_factory.mktemp("openapi"), CONFIG).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()
    assert "Traceback" not in s.output(), s.output()


@pytest.fixture(scope="module")
def doc(server: TidingsServer) -> dict[str, Any]:
    answer = server.client.get("/openapi.json")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    body: dict[str, Any] = answer.json()
    return body


def schema_check(doc: dict[str, Any], schema: dict[str, Any], instance: Any) -> None:
    """Validate against a schema of the document, its `#/components/...` references resolved in it."""
    root = {**schema, "components": doc["components"]}
    errors = sorted(Draft202012Validator(root).iter_errors(instance), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def answer_check(doc: dict[str, Any], path: str, method: str, answer: httpx.Response) -> None:
    """`answer` is one its operation documents: status, media type and body schema."""
    responses = doc["paths"][path][method.lower()]["responses"]
    documented = responses.get(str(answer.status_code))
    assert documented is not None, f"{method} {path}: {answer.status_code} is not documented ({answer.text})"
    content = documented.get("content")
    if content is None:
        assert not answer.content, f"{method} {path} {answer.status_code}: a body where none is documented"
        return
    media = answer.headers["content-type"].split(";")[0]
    assert media in content, f"{method} {path}: {media} is not documented"
    if media == "application/json":
        schema_check(doc, content[media]["schema"], answer.json())


def test_the_document_is_well_formed_openapi_3_1(doc: dict[str, Any]) -> None:
    """Structural checks; scripts/fuzz runs openapi-spec-validator's full validation (~10 s here) on it,
    and the tests below validate samples and answers against its schemas."""
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] and doc["info"]["version"]
    components, schemes = doc["components"]["schemas"], doc["components"]["securitySchemes"]
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in components, ref
    ids, links = [], []
    for path, item in doc["paths"].items():
        named = {p.split("}")[0] for p in path.split("{")[1:]}
        for method, op in item.items():
            assert method in {"get", "put", "post", "delete", "patch", "head"}, (path, method)
            ids.append(op["operationId"])
            params = op.get("parameters", [])
            assert {p["name"] for p in params if p["in"] == "path"} == named, (path, method)
            assert all(p["required"] for p in params if p["in"] == "path"), (path, method)
            for requirement in op["security"]:
                assert set(requirement) <= set(schemes), (path, method, requirement)
            for status, response in op["responses"].items():
                assert status.isdigit() and response["description"], (path, method, status)
                links.extend(response.get("links", {}).values())
    assert len(ids) == len(set(ids)), "operationIds are unique"
    assert len(links) >= 7 and all(link["operationId"] in ids for link in links), links
    assert schemes["serviceKey"] == {**schemes["serviceKey"], "type": "apiKey", "in": "header", "name": "key"}
    assert schemes["serviceJwt"]["bearerFormat"] == "JWT" and schemes["adminToken"]["scheme"] == "bearer"
    assert set(components["ApiErrorBody"]["required"]) == {"code", "message"}
    assert components["V1RefusalBody"]["required"] == ["code", "description", "transid"]


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_every_route_of_the_application_is_described(doc: dict[str, Any]) -> None:
    """A route added without its description fails here (HEAD aside: Starlette adds it to every GET;
    the console's pages aside: they are not the API)."""
    app = create_app(cast(Runtime, None)).app  # type: ignore[attr-defined]
    routes = {
        (method, openapi_path(route.path))
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD" and not route.path.startswith("/console")  # the console's own: not the API
    }
    described = {
        (method.upper(), path) for path, item in doc["paths"].items() for method in item if method != "head"
    }
    assert routes - described == set(), "routes without a description"
    assert described - routes == set(), "descriptions of routes that do not exist"
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["responses"] and op["summary"], f"{method} {path}"


def operations_with_samples(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], Any]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if "requestBody" in op:
                (media,) = op["requestBody"]["content"].values()
                yield path, method, media["schema"], media.get("example")


def test_each_documented_body_has_a_sample_that_validates(doc: dict[str, Any]) -> None:
    seen = 0
    for path, method, schema, example in operations_with_samples(doc):
        assert example is not None, f"{method} {path} has no sample request"
        schema_check(doc, schema, example)
        seen += 1
    assert seen >= 25


# The samples that work as given on a server with the demo service, its app and group "news".
LIVE = {
    ("post", "/resources/v1/messaging"): ("/resources/v1/messaging", 200),
    ("post", "/v1/sms/messages"): ("/v1/sms/messages", 202),
    ("post", "/v1/whatsapp/messages"): ("/v1/whatsapp/messages", 202),
    ("post", "/v2/messages"): ("/v2/messages", 201),
    ("post", "/v1/groups/{group_id}/members"): ("/v1/groups/news/members", 204),
    ("post", "/v1/apps/{app_id}/devices"): ("/v1/apps/app-demo/devices", 201),
    ("post", "/v1/apps/{app_id}/users/{user_id}/token"): ("/v1/apps/app-demo/users/u1/token", 201),
    ("post", "/admin/v1/services"): ("/admin/v1/services", 201),
    ("post", "/admin/v1/templates"): ("/admin/v1/templates", 201),
    ("post", "/admin/v1/smartlinks"): ("/admin/v1/smartlinks", 201),
    ("post", "/admin/v1/contact-policy/groups"): ("/admin/v1/contact-policy/groups", 201),
    ("post", "/admin/v1/apps"): ("/admin/v1/apps", 201),
}


def test_the_samples_work_and_their_answers_match_the_description(
    server: TidingsServer, doc: dict[str, Any]
) -> None:
    samples = {(method, path): example for path, method, _, example in operations_with_samples(doc)}
    for (method, path), (url, status) in LIVE.items():
        headers = ADMIN if url.startswith("/admin/") else SERVICE
        answer = server.client.request(method, url, json=samples[method, path], headers=headers)
        assert answer.status_code == status, (path, answer.text)
        answer_check(doc, path, method, answer)
        if path == "/resources/v1/messaging":
            assert answer.json()["response"][0]["code"] == "1001"


def test_message_views_and_errors_match_the_description(server: TidingsServer, doc: dict[str, Any]) -> None:
    c = server.client
    v1 = c.post("/resources/v1/messaging", json={"deliverychannel": "sms"}, headers=SERVICE)
    assert v1.json()["response"]["code"] == "7003"
    answer_check(doc, "/resources/v1/messaging", "POST", v1)
    sms = c.post(
        "/v1/sms/messages", json={"from": "CONNCT", "to": "+447700907203", "content": "x"}, headers=SERVICE
    )
    sms_id = sms.json()["messageId"]
    wa = c.post(
        "/v1/whatsapp/messages",
        json={
            "from": "app-demo",
            "to": "+447700900123",
            "contentType": "TEXT",
            "content": "x",
            "caption": None,
        },
        headers=SERVICE,
    )
    v2 = c.post(
        "/v2/messages",
        json={
            "channel": "sms",
            "from": "CONNCT",
            "to": [{"msisdn": ["+447700900123", "+447700900124"]}],
            "content": {"type": "text", "text": "x"},
        },
        headers=SERVICE,
    )
    answer_check(doc, "/v2/messages", "POST", v2)
    assert len(v2.json()["messages"]) == 2
    reads = [
        ("/v1/messages/{transid}", f"/v1/messages/{sms_id}"),
        ("/v1/sms/messages/{message_id}", f"/v1/sms/messages/{sms_id}"),
        ("/v1/whatsapp/messages/{message_id}", f"/v1/whatsapp/messages/{wa.json()['messageId']}"),
        ("/v2/messages/{message_id}", f"/v2/messages/{v2.json()['messageId']}"),
        ("/v1/groups/{group_id}/members", "/v1/groups/news/members?address=%2B447700900123"),
        ("/v1/apps/{app_id}/devices", "/v1/apps/app-demo/devices"),
        ("/v1/sms/messages/{message_id}", "/v1/sms/messages/nope"),
    ]
    for path, url in reads:
        answer = c.get(url, headers=SERVICE)
        answer_check(doc, path, "GET", answer)
    assert c.get(f"/v1/whatsapp/messages/{wa.json()['messageId']}", headers=SERVICE).json()["caption"] is None
    failed = c.get(f"/v1/sms/messages/{sms_id}", headers=SERVICE)  # 7203: FAILED with error{code,message}
    deadline = time.monotonic() + 10
    while failed.json()["status"] != "FAILED" and time.monotonic() < deadline:  # sandbox: 20 ms
        time.sleep(0.02)
        failed = c.get(f"/v1/sms/messages/{sms_id}", headers=SERVICE)
    assert failed.json()["error"]["code"] == "7203"
    answer_check(doc, "/v1/sms/messages/{message_id}", "GET", failed)
    for path, url, headers in [
        ("/v1/sms/messages", "/v1/sms/messages", {}),
        ("/v1/sms/messages", "/v1/sms/messages", {"key": "wrong"}),
        ("/v2/messages", "/v2/messages", {}),
        ("/admin/v1/services", "/admin/v1/services", {"Authorization": "Bearer wrong"}),
    ]:
        answer_check(doc, path, "POST", c.post(url, json={}, headers=headers))
    for path in (
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/messages",
        "/admin/v1/services",
        "/admin/v1/gone-addresses",
    ):
        answer_check(doc, path, "GET", c.get(path, headers=ADMIN if path.startswith("/admin") else SERVICE))
    answer_check(doc, "/l/{code}", "HEAD", c.head("/l/nope"))


# Found by scripts/fuzz (schemathesis), kept here so they stay fixed.


def test_an_admin_entry_named_beyond_latin_1_gets_a_percent_encoded_location(server: TidingsServer) -> None:
    """Was a 500: the Location header carried the name as is, and headers are Latin-1."""
    name = "svc-\u00e7\U0007790b"
    answer = server.client.post("/admin/v1/services", json={"id": name, "key": "k-unicode"}, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    location = answer.headers["location"]
    assert location.isascii() and unquote(location) == f"/admin/v1/services/{name}"


def test_an_app_key_file_named_with_a_nul_is_refused_naming_it(server: TidingsServer) -> None:
    """Was a 500: opening a path with a NUL raises ValueError, not OSError."""
    body = {
        "id": "app-nul",
        "service": "demo",
        "fcm": {"project_id": "p", "service_account_file": "a\u0000b"},
    }
    answer = server.client.post("/admin/v1/apps", json=body, headers=ADMIN)
    assert answer.status_code == 400, answer.text
    assert any(p.startswith("fcm.service_account_file") for p in answer.json()["problems"]), answer.text
