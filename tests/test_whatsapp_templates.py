"""WhatsApp template sends (issue 12 item 1): v1 `message{template, parameters}` with a WhatsApp entry of
the template registry becomes the Cloud API's template message, its components filled from the
parameters by the entry's layout. Shown over HTTP against a real `tidings serve`: what is stored (a
sandbox app), the exact body the Graph stand-in receives (an app with `[apps.whatsapp]`), the refusals
(7003 a missing parameter, 7004 an unknown template, 7722 a namespace that is not the app's), and
`check-config` naming a bad layout by line."""

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KEY_A, SECRETS, assert_no_secrets, config_text, unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer
from tests.test_meta_e2e import GraphThread
from tidings.config.schema import TemplateComponentConfig, TemplateConfig
from tidings.schema.whatsapp import WhatsAppContent, cloud_message
from tidings.templates import Template, whatsapp_message

WA_APP, SANDBOX_APP, NAMESPACE = "wa-templates", "sandbox-templates", "c8ae5f90_307a_ca4c_b8f6_d1e2a2573574"
APP_SECRET, VERIFY_TOKEN = "wa-templates-app-secret-7181", "wa-templates-verify-8191"
ADMIN_TOKEN = "wa-templates-admin-token-9201"

TEMPLATES = f"""
[[templates]]
id = "welcome"
service = "alpha"
channel = "whatsapp"
text = "Hi {{{{name}}}}, welcome to {{{{shop}}}}."

[[templates]]
id = "order_update"
service = "alpha"
channel = "whatsapp"
name = "order_update_v2"
language = "en_GB"
namespace = "{NAMESPACE}"

[[templates.components]]
type = "header"
format = "image"
parameters = ["banner"]

[[templates.components]]
type = "body"
parameters = ["name", "order"]

[[templates.components]]
type = "button"
sub_type = "url"
index = 0
parameters = ["track"]

[[templates.components]]
type = "button"
sub_type = "quick_reply"
index = 1
parameters = ["stop"]

[[templates]]
id = "elsewhere"
service = "alpha"
channel = "whatsapp"
text = "Hello"
namespace = "another_accounts_namespace"
"""

ORDER = {
    "banner": {"link": "https://cdn.example.com/banner.png"},
    "name": "Ada",
    "order": 4711,
    "track": "4711?ref=wa",
    "stop": "STOP-4711",
}

# The Cloud API body of `order_update` sent with ORDER to 447700900321: Meta's template shape.
ORDER_GOLDEN = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": "447700900321",
    "type": "template",
    "template": {
        "name": "order_update_v2",
        "language": {"code": "en_GB"},
        "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": ORDER["banner"]["link"]}}]},
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "4711"}],
            },
            {
                "type": "button",
                "sub_type": "url",
                "index": "0",
                "parameters": [{"type": "text", "text": "4711?ref=wa"}],
            },
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": "1",
                "parameters": [{"type": "payload", "payload": "STOP-4711"}],
            },
        ],
    },
}


@pytest.fixture(scope="module")
def meta() -> Iterator[GraphThread]:
    with GraphThread() as standin:
        yield standin


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, meta: GraphThread, receiver: Receiver
) -> Iterator[TidingsServer]:
    workdir: Path = tmp_path_factory.mktemp("wa-templates")
    graph = meta.graph
    assert graph._ca is not None
    graph._ca.cert_pem.write_to_path(str(workdir / "graph-ca.pem"))
    apps = f"""
[[apps]]
id = "{SANDBOX_APP}"
service = "alpha"

[[apps]]
id = "{WA_APP}"
service = "alpha"

[apps.whatsapp]
phone_number_id = "{graph.phone_number_id}"
access_token = "{graph.wa_token}"
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"
namespace = "{NAMESPACE}"
base_url = "{graph.base_url}"
ca_file = "graph-ca.pem"
"""
    admin = f'[server]\nadmin_token = "{ADMIN_TOKEN}"\n'
    s = TidingsServer(workdir, admin + config_text(receiver) + TEMPLATES + apps).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()
    SECRETS.extend([graph.wa_token, APP_SECRET, VERIFY_TOKEN, ADMIN_TOKEN])
    assert_no_secrets(s)


def template_send(
    number: str, message: dict[str, Any], app: str = WA_APP, wa: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "appid": app,
        "deliverychannel": "whatsapp",
        "destination": [{"waid": [number]}],
        "message": message,
    }
    if wa is not None:
        body["channels"] = {"OTT-Messaging": {"wa": wa}}
    return body


def accepted(server: TidingsServer, body: dict[str, Any], notify: str) -> str:
    answer = server.send({**body, "notifyurl": notify}, KEY_A).json()["response"]
    assert isinstance(answer, list) and answer[0]["code"] == "1001", answer
    return str(answer[0]["transid"])


def refused(server: TidingsServer, body: dict[str, Any]) -> dict[str, Any]:
    answer = server.send(body, KEY_A).json()["response"]
    assert isinstance(answer, dict), answer
    return dict(answer)


def graph_body(meta: GraphThread, number: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not (got := meta.received(number)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(got) == 1, got
    assert got[0].path == f"/v21.0/{meta.graph.phone_number_id}/messages"
    assert isinstance(got[0].body, dict)
    return got[0].body


WELCOME = {"template": "welcome", "parameters": {"name": "Ada", "shop": "Tidings & Co"}}


def test_a_template_send_is_stored_as_a_template_message(server: TidingsServer, receiver: Receiver) -> None:
    path = unique_path("wa-tpl")
    wa = {"identity_key_hash": "njbYlYc0001"}  # Webex Connect's sample puts it beside message.template
    transid = accepted(server, template_send("447700900311", WELCOME, SANDBOX_APP, wa), receiver.url(path))
    assert receiver.wait_count(path, 2)[-1].info["deliveryStatus"] == "Delivered"
    assert server.message(transid, KEY_A)["content"] == {
        "appid": SANDBOX_APP,
        "wa": {
            "type": "template",
            "template": {
                "name": "welcome",
                "language": "en_US",
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Ada"},
                            {"type": "text", "text": "Tidings & Co"},
                        ],
                    }
                ],
            },
            "identity_key_hash": "njbYlYc0001",
        },
    }


def test_the_cloud_api_gets_metas_template_shape(
    server: TidingsServer, meta: GraphThread, receiver: Receiver
) -> None:
    path = unique_path("wa-tpl-graph")
    accepted(server, template_send("447700900312", WELCOME), receiver.url(path))
    assert graph_body(meta, "447700900312") == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "447700900312",
        "type": "template",
        "template": {
            "name": "welcome",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "Tidings & Co"}],
                }
            ],
        },
    }
    assert [h.info["deliveryStatus"] for h in receiver.wait_count(path, 1)] == ["Submitted"]


def test_the_apps_own_namespace_is_accepted_and_not_sent(
    server: TidingsServer, meta: GraphThread, receiver: Receiver
) -> None:
    path = unique_path("wa-tpl-ns")
    accepted(server, template_send("447700900313", WELCOME, wa={"namespace": NAMESPACE}), receiver.url(path))
    sent = graph_body(meta, "447700900313")
    assert sent["template"]["name"] == "welcome" and "namespace" not in str(sent)


def test_a_wa_message_of_its_own_wins_over_the_template(server: TidingsServer, receiver: Receiver) -> None:
    """As an SMS channel object's text wins over its template's (Webex Connect: the channel block
    overrides the message block)."""
    path = unique_path("wa-tpl-own")
    own = {"type": "text", "text": {"body": "My own words"}}
    transid = accepted(server, template_send("447700900314", WELCOME, wa=own), receiver.url(path))
    assert server.message(transid, KEY_A)["content"]["wa"] == own


def test_a_layout_with_header_body_and_buttons_reaches_the_cloud_api(
    server: TidingsServer, meta: GraphThread, receiver: Receiver
) -> None:
    """The entry's name, language and components, and a namespace that is the app's (in the entry
    and in the request's `wa` object)."""
    path = unique_path("wa-tpl-layout")
    message = {"template": "order_update", "parameters": ORDER}
    accepted(server, template_send("447700900321", message, wa={"namespace": NAMESPACE}), receiver.url(path))
    assert graph_body(meta, "447700900321") == ORDER_GOLDEN


def test_the_layout_gives_metas_shape_without_a_server() -> None:
    """The same golden body from the registry entry as the config file states it."""
    config = TemplateConfig(
        id="order_update",
        service="alpha",
        channel="whatsapp",
        name="order_update_v2",
        language="en_GB",
        components=[
            TemplateComponentConfig("header", ["banner"], format="image"),
            TemplateComponentConfig("body", ["name", "order"]),
            TemplateComponentConfig("button", ["track"], sub_type="url", index=0),
            TemplateComponentConfig("button", ["stop"], sub_type="quick_reply", index=1),
        ],
    )
    made = whatsapp_message(Template.from_config(config), ORDER, "message.parameters")
    content = WhatsAppContent(type="template", template=made)
    assert cloud_message(content, to="447700900321") == ORDER_GOLDEN


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        (
            template_send("447700900331", {"template": "welcome", "parameters": {"name": "Ada"}}),
            "7003",
            "message.parameters.shop",
        ),
        pytest.param(
            template_send(
                "447700900332", {"template": "order_update", "parameters": {**ORDER, "banner": None}}
            ),
            "7003",
            "message.parameters.banner",
        ),
        pytest.param(
            template_send(
                "447700900333",
                {"template": "order_update", "parameters": {**ORDER, "banner": {"link": "ftp://x/y.png"}}},
            ),
            "7004",
            "message.parameters.banner.link",
        ),
        (
            template_send(
                "447700900338", {"template": "welcome", "parameters": {"name": {"a": 1}, "shop": "x"}}
            ),
            "7004",
            "message.parameters.name must be a string or a number",
        ),
        (template_send("447700900334", {"template": "nope", "parameters": {}}), "7004", "message.template"),
        (
            template_send("447700900339", {**WELCOME, "namespace": "not_this_accounts"}),
            "7722",
            "message.namespace 'not_this_accounts'",
        ),
        (
            template_send("447700900335", WELCOME, wa={"namespace": "not_this_accounts"}),
            "7722",
            "channels.OTT-Messaging.wa.namespace 'not_this_accounts'",
        ),
        pytest.param(
            template_send("447700900336", {"template": "elsewhere"}),
            "7722",
            "another_accounts_namespace",
        ),
        (
            # A template object from the client, past the registry: refused whatever it claims.
            template_send(
                "447700900337",
                WELCOME,
                wa={"type": "template", "template": {"name": "x", "language": "en"}, "seal": "00" * 32},
            ),
            "7004",
            "message.template",
        ),
    ],
    ids=[
        "missing-text",
        "missing-media",
        "bad-media",
        "not-text",
        "unknown",
        "message-namespace",
        "wa-namespace",
        "entry-namespace",
        "forged",
    ],
)
def test_template_refusals(
    server: TidingsServer, meta: GraphThread, body: dict[str, Any], code: str, named: str
) -> None:
    answer = refused(server, body)
    assert answer["code"] == code and named in answer["description"], answer
    assert meta.received(body["destination"][0]["waid"][0]) == []


def test_the_admin_api_takes_whatsapp_templates_and_refuses_a_bad_layout(server: TidingsServer) -> None:
    def admin(method: str, path: str, body: Any = None) -> Any:
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return server.client.request(method, f"/admin/v1/{path}", json=body, headers=auth)

    bad = {
        "id": "promo",
        "service": "alpha",
        "channel": "whatsapp",
        "components": [{"type": "header", "format": "image"}, {"type": "button", "parameters": ["x"]}],
    }
    answer = admin("POST", "templates", bad)
    assert answer.status_code == 400, answer.text
    assert answer.json()["problems"] == [
        "components[0].parameters: the image header needs its parameter (the media)",
        "components[1].sub_type: must be one of url, quick_reply, copy_code",
        "components[1].index: must be given: the button's position, from 0",
    ]
    good = {"id": "promo", "service": "alpha", "channel": "whatsapp", "text": "{{code}} off today"}
    assert admin("POST", "templates", good).status_code == 201
    try:
        body = template_send(
            "447700900315", {"template": "promo", "parameters": {"code": "10%"}}, SANDBOX_APP
        )
        transid = accepted(server, body, "")
        wa = server.message(transid, KEY_A)["content"]["wa"]
        assert wa["template"]["components"] == [
            {"type": "body", "parameters": [{"type": "text", "text": "10%"}]}
        ]
    finally:
        assert admin("DELETE", "templates/svc-a/whatsapp/promo").status_code == 204


BAD_LAYOUT = """
[[templates]]
id = "Bad Name"
service = "alpha"
channel = "whatsapp"
language = "english"

[[templates.components]]
type = "header"
format = "gif"

[[templates.components]]
type = "button"
sub_type = "call"
parameters = []

[[templates.components]]
type = "footer"

[[templates]]
id = "sms_with_layout"
service = "alpha"
text = "Hi"
language = "en"
"""


def test_check_config_names_a_bad_layout_by_line(tmp_path: Path, receiver: Receiver) -> None:
    base = config_text(receiver)
    cfg = tmp_path / "bad.toml"
    cfg.write_text(base + BAD_LAYOUT)
    first = len(base.splitlines()) + 2  # the first [[templates]] header of BAD_LAYOUT
    r = subprocess.run(
        [sys.executable, "-m", "tidings", "check-config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1, r.stdout
    for expected in [
        f"{cfg}:{first + 1}: templates[1].id: is Meta's template name",
        f"{cfg}:{first + 4}: templates[1].language: must be a language code",
        f'{cfg}:{first + 22}: templates[2].language: only for channel = "whatsapp"',
    ]:
        assert expected in r.stderr, f"{expected!r} not in:\n{r.stderr}"
    # A component's problem carries its own line once tidings/config/loading.py counts a nested
    # [[templates.components]] within its template; until then it carries its template's.
    for line, expected in [
        (first + 8, "templates[1].components[0].format: must be one of text, image, video, document"),
        (first + 12, "templates[1].components[1].sub_type: must be one of url, quick_reply, copy_code"),
        (first + 12, "templates[1].components[1].index: must be given"),
        (first + 13, "templates[1].components[1].parameters: a button takes exactly one parameter"),
        (first + 16, "templates[1].components[2].type: must be one of header, body, button"),
    ]:
        pattern = rf"{re.escape(str(cfg))}:({line}|{first}): {re.escape(expected)}"
        assert re.search(pattern, r.stderr), f"{expected!r} (line {line}) not in:\n{r.stderr}"
