"""RCS end to end over HTTP: a real `tidings serve` with an `[apps.rcs]` app aimed at the RBM stand-in
(tests/standins/rbm.py), a sandbox app (no block: the sandbox twin), and SMS routed to `tidings smsc`.
Each content type goes out through `POST /v2/messages`; a number RBM does not know takes the SMS
fallback (same messageId, the SMSC gets the text, later notifications say `sms`) or fails 7319; RBM's
signed webhooks move messages to Delivered/Read once each in order, and users' messages reach the
service's inbound_url; a bad signature is 403 and changes nothing."""

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SECRETS, assert_no_secrets
from tests.standins.rbm import (
    ALL_FEATURES,
    RbmStandIn,
    handshake_body,
    rpc_error,
    signed_event,
    status_event,
    user_message,
)
from tests.support.attempts import message_page
from tests.support.console import health_saying, sign_in
from tests.support.loop_thread import LoopThread
from tests.support.receiver import Hit, Receiver
from tests.support.server import TidingsServer
from tests.support.smsc import SMSC_PASSWORD, SimulatorProcess, smsc_config
from tidings.specs import rcs_codes

KEY = "rcs-e2e-key-0123456789abcdef"
APP, SANDBOX_APP = "rcs-e2e", "rcs-sandbox"
CLIENT_TOKEN = "rcs-e2e-client-token-8080"
REACHABLE = "+447700900501"
REACHABLE_2 = "+447700900502"
UNREACHABLE = "+447700900404"
BUSY = "+447700900429"  # RBM answers 429 RESOURCE_EXHAUSTED with Retry-After: 60


class Rbm:
    def __init__(self) -> None:
        self.loop = LoopThread("rbm-standin")

    def __enter__(self) -> "Rbm":
        self.loop.start()
        self.standin = RbmStandIn(reachable={REACHABLE: ALL_FEATURES, REACHABLE_2: ALL_FEATURES})
        self.loop.run(self.standin.start())
        return self

    def __exit__(self, *_: object) -> None:
        try:
            self.loop.run(self.standin.stop())
        finally:
            self.loop.stop()

    def sent(self, message_id: str) -> list[dict[str, Any]]:
        def pick() -> list[dict[str, Any]]:
            return [c.body or {} for c in self.standin.sent() if c.query.get("messageId") == message_id]

        return self.loop.call(pick)


@pytest.fixture(scope="module")
def rbm() -> Iterator[Rbm]:
    with Rbm() as standin:
        yield standin


@pytest.fixture(scope="module")
def smsc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    sim = SimulatorProcess(tmp_path_factory.mktemp("rcs-smsc"), dlr_delay_ms=20).start()
    yield sim
    sim.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, rbm: Rbm, smsc: SimulatorProcess, receiver: Receiver
) -> Iterator[TidingsServer]:
    workdir: Path = tmp_path_factory.mktemp("rcs-e2e")
    rbm.standin.write_key_file(workdir / "rbm.json")
    config = f"""
[notify]
timeout_s = 2
retries = 3
retry_interval_s = 0.2

[sandbox]
delay_ms = 30

[[services]]
id = "svc-rcs"
name = "rcs"
key = "{KEY}"
senderids = ["CONNCT"]
notify_url = "{receiver.url("/rcs/default")}"
inbound_url = "{receiver.url("/rcs/inbound")}"

[[apps]]
id = "{APP}"
service = "rcs"

[apps.rcs]
agent_id = "{rbm.standin.agent_id}"
service_account_file = "rbm.json"
client_token = "{CLIENT_TOKEN}"
base_url = "{rbm.standin.base_url}"

[[apps]]
id = "{SANDBOX_APP}"
service = "rcs"

""" + smsc_config("carrier-a", smsc.port)
    s = TidingsServer(workdir, config).start()
    smsc.wait_bound()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()
    SECRETS.extend([CLIENT_TOKEN])
    assert_no_secrets(s)


def send(
    server: TidingsServer, to: str, content: dict[str, Any], app: str = APP, **extra: Any
) -> tuple[str, str]:
    """POST /v2/messages; the messageId and the receiver path its notifications go to."""
    path = f"/rcs/{uuid.uuid4().hex[:12]}"
    body = {"channel": "rcs", "from": app, "to": [{"msisdn": [to]}], "content": content, **extra}
    body["notifyUrl"] = NOTIFY_BASE[0] + path
    answer = server.client.post("/v2/messages", json=body, headers={"key": KEY})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["messageId"]), path


def infos(hits: list[Hit]) -> list[tuple[str, str, str]]:
    return [(h.info["deliveryChannel"], h.info["deliveryStatus"], h.info["code"]) for h in hits]


def webhook(server: TidingsServer, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return server.client.post(f"/webhooks/{APP}", content=body, headers=headers)


NOTIFY_BASE = [""]  # the receiver's URL, set once the module's server is up


@pytest.fixture(scope="module", autouse=True)
def _notify_base(server: TidingsServer, receiver: Receiver) -> None:
    NOTIFY_BASE[0] = receiver.url("").rstrip("/")


TEXT = {
    "type": "text",
    "text": "Hello {{name}}",
    "suggestions": [
        {"type": "reply", "displayText": "Yes", "postbackData": "yes"},
        {"type": "openUrl", "displayText": "Site", "url": "https://example.com"},
    ],
}
CARD = {
    "title": "Boots",
    "description": "Size 42",
    "media": {"url": "https://example.com/b.png", "height": "SHORT"},
}
CONTENTS = {
    "text": TEXT,
    "media": {"type": "media", "mediaContentUrl": "https://example.com/v.mp4"},
    "standalone": {"type": "standalone", "richCard": {**CARD, "orientation": "VERTICAL"}},
    "carousel": {"type": "carousel", "richCard": {"cardWidth": "MEDIUM", "cards": [CARD, {"title": "Hat"}]}},
}


def test_each_content_type_is_sent_to_rbm_and_submitted(server: TidingsServer, rbm: Rbm, receiver: Receiver):
    sent = {
        kind: send(server, REACHABLE, content, substitutions={"name": "Ann"})
        for kind, content in CONTENTS.items()
    }
    for kind, (message_id, path) in sent.items():
        assert infos(receiver.wait_count(path, 1)) == [("rcs", "Submitted", "7501")], kind
        (body,) = rbm.sent(message_id)
        message = body["contentMessage"]
        if kind == "text":
            assert message["text"] == "Hello Ann"
            assert message["suggestions"][1]["action"]["openUrlAction"] == {"url": "https://example.com"}
        elif kind == "media":
            assert message == {"contentInfo": {"fileUrl": "https://example.com/v.mp4"}}
        elif kind == "standalone":
            assert message["richCard"]["standaloneCard"]["cardContent"]["title"] == "Boots"
        else:
            assert len(message["richCard"]["carouselCard"]["cardContents"]) == 2


def test_unreachable_with_fallback_goes_as_sms_under_the_same_message_id(
    server: TidingsServer, rbm: Rbm, smsc: SimulatorProcess, receiver: Receiver
):
    options = {"smsFallback": True, "smsSenderId": "CONNCT", "text": "Boots in size 42: example.com/b"}
    message_id, path = send(server, UNREACHABLE, CONTENTS["standalone"], options=options)
    hits = receiver.wait_count(path, 2)
    assert infos(hits) == [("sms", "Submitted", "7501"), ("sms", "Delivered", "7500")]
    assert {h.transid for h in hits} == {message_id}
    to_them = [x for x in smsc.submits() if x["destination_addr"].lstrip("+") == UNREACHABLE.lstrip("+")]
    assert [(x["source_addr"], bytes.fromhex(x["short_message"]).decode()) for x in to_them] == [
        ("CONNCT", "Boots in size 42: example.com/b")
    ]
    view = server.client.get(f"/v2/messages/{message_id}", headers={"key": KEY}).json()
    assert view["channel"] == "sms"
    # Two provider attempts: RBM's 404, rerouted; then the SMSC's submit_sm. No credential on the page.
    page, (to_rbm, to_smsc) = message_page(server.url, KEY, message_id)
    assert (to_rbm.outcome, to_rbm.code, to_rbm.connector) == (
        "rerouted",
        rcs_codes.NOT_RCS_USER,
        "rcs (rcs)",
    )
    assert to_rbm.detail.startswith("sent as sms instead: RBM 404")
    url = f"{rbm.standin.base_url}/v1/phones/{UNREACHABLE}/agentMessages?messageId={message_id}&agentId="
    assert to_rbm.request.startswith(f"POST {url}") and '"contentMessage":' in to_rbm.request
    assert to_rbm.answer.startswith("HTTP 404\n\n{") and "NOT_FOUND" in to_rbm.answer
    assert (to_smsc.outcome, to_smsc.connector) == ("accepted", "carrier-a (smpp)")
    assert to_smsc.request.startswith("submit_sm\nsource_addr CONNCT (ton 5, npi 0)\n")
    assert to_smsc.request.endswith("\ntext Boots in size 42: example.com/b")
    for secret in ("ya29.rbm-", "PRIVATE KEY", SMSC_PASSWORD, CLIENT_TOKEN):
        assert secret not in page, secret


def test_unreachable_without_fallback_fails_with_the_rcs_code(server: TidingsServer, receiver: Receiver):
    _, path = send(server, UNREACHABLE, {"type": "text", "text": "hi"})
    (hit,) = receiver.wait_count(path, 1)
    assert infos([hit]) == [("rcs", "Failed", rcs_codes.NOT_RCS_USER)]


def test_the_health_page_shows_the_agents_token_rbms_backoff_and_the_smsc(
    server: TidingsServer, rbm: Rbm, smsc: SimulatorProcess
):
    throttled = (
        429,
        rpc_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for the agent"),
        {"Retry-After": "60"},
    )
    rbm.loop.call(lambda: rbm.standin.answers.__setitem__(BUSY, throttled))
    send(server, BUSY, {"type": "text", "text": "hi"})
    deadline = time.monotonic() + 10
    while not rbm.loop.call(lambda: rbm.standin.sent(BUSY)) and time.monotonic() < deadline:
        time.sleep(0.02)
    with sign_in(server.url, KEY) as console:
        page, rows = health_saying(console, "rcs", "backing off", deadline)
    state, rcs = rows["rcs"]
    assert state == "up", rcs
    agent = f"app {APP} RBM agent {rbm.standin.agent_id} ({rbm.standin.client_email})"
    assert re.search(re.escape(agent) + r": OAuth access token, expires \S+ \S+ \(in (59|60) min\)", rcs), rcs
    assert f"throttled code {rcs_codes.TPS_EXCEEDED}: RBM 429 RESOURCE_EXHAUSTED: Quota exceeded" in rcs
    assert re.search(r"backing off until \S+ \S+ \(in (59|60) s\): RBM 429", rcs), rcs
    # The SMSC the SMS fallback goes through: bound, its login a password.
    state, sms = rows["carrier-a"]
    assert state == "up" and "carrier-a/tr1: bound" in sms and "password, does not expire" in sms, sms
    assert SMSC_PASSWORD not in page and CLIENT_TOKEN not in page


def test_the_sandbox_twin_follows_the_last_four_digits(server: TidingsServer, receiver: Receiver):
    options = {"smsFallback": True, "smsSenderId": "CONNCT"}
    _, delivered = send(server, "+447700901234", {"type": "text", "text": "hi"}, SANDBOX_APP)
    _, failed = send(server, "+447700907318", {"type": "text", "text": "hi"}, SANDBOX_APP)
    _, fell_back = send(server, "+447700907319", {"type": "text", "text": "hi"}, SANDBOX_APP, options=options)
    assert infos(receiver.wait_count(delivered, 2)) == [
        ("rcs", "Submitted", "7501"),
        ("rcs", "Delivered", "7500"),
    ]
    assert infos(receiver.wait_count(failed, 2))[-1] == ("rcs", "Failed", "7318")
    assert infos(receiver.wait_count(fell_back, 2)) == [
        ("sms", "Submitted", "7501"),
        ("sms", "Delivered", "7500"),
    ]


def test_the_webhook_handshake_answers_the_secret_for_the_client_token(server: TidingsServer):
    ok = webhook(server, handshake_body(CLIENT_TOKEN, "s3cr3t-echo"), {"content-type": "application/json"})
    assert (ok.status_code, ok.text) == (200, "s3cr3t-echo")
    bad = webhook(
        server, handshake_body("not-the-token", "s3cr3t-echo"), {"content-type": "application/json"}
    )
    assert bad.status_code == 403


def test_delivered_and_read_out_of_order_and_repeated_notify_once_each(
    server: TidingsServer, receiver: Receiver
):
    message_id, path = send(server, REACHABLE_2, {"type": "text", "text": "hi"})
    receiver.wait_count(path, 1)
    for kind in ("READ", "DELIVERED", "READ", "DELIVERED", "IS_TYPING"):
        body, headers = signed_event(CLIENT_TOKEN, status_event(kind, message_id, REACHABLE_2))
        assert webhook(server, body, headers).status_code == 200
    hits = receiver.wait_count(path, 3)
    time.sleep(0.3)
    assert infos(receiver.at(path)) == [
        ("rcs", "Submitted", "7501"),
        ("rcs", "Delivered", "7500"),
        ("rcs", "Read", "7502"),
    ]
    assert len(hits) == 3


def test_a_bad_or_missing_signature_is_403_and_changes_nothing(server: TidingsServer, receiver: Receiver):
    message_id, path = send(server, REACHABLE_2, {"type": "text", "text": "hi"})
    receiver.wait_count(path, 1)
    body, headers = signed_event("wrong-token", status_event("DELIVERED", message_id, REACHABLE_2))
    assert webhook(server, body, headers).status_code == 403
    body, headers = signed_event(CLIENT_TOKEN, status_event("DELIVERED", message_id, REACHABLE_2))
    assert webhook(server, body, {"content-type": "application/json"}).status_code == 403
    tampered = body.replace(b'"data": "', b'"data": "e30')  # other bytes than were signed
    assert webhook(server, tampered, headers).status_code == 403
    time.sleep(0.3)
    assert infos(receiver.at(path)) == [("rcs", "Submitted", "7501")]


def test_user_messages_reach_the_inbound_url(server: TidingsServer, receiver: Receiver):
    before = len(receiver.at("/rcs/inbound"))
    events = [
        user_message("+447700900777", text="STATUS please"),
        user_message(
            "+447700900777", suggestionResponse={"postbackData": "yes", "text": "Yes", "type": "REPLY"}
        ),
        user_message("+447700900777", location={"latitude": 51.5, "longitude": -0.1}),
    ]
    for event in events:
        body, headers = signed_event(CLIENT_TOKEN, event)
        assert webhook(server, body, headers).status_code == 200
        assert webhook(server, body, headers).status_code == 200  # RBM's repeat: kept once
    hits = receiver.wait_count("/rcs/inbound", before + 3)[before:]
    time.sleep(0.3)
    assert len(receiver.at("/rcs/inbound")) == before + 3
    bodies = sorted((h.json for h in hits), key=lambda b: b["messageType"])
    location, suggestion, text = bodies
    assert text["Channel"] == "RCS" and text["oa"] == "+447700900777" and text["message"] == "STATUS please"
    assert text["appId"] == APP and text["tid"] == f"rcs:{events[0]['messageId']}"
    assert suggestion["rcs"]["suggestionResponse"] == {"postbackData": "yes", "text": "Yes", "type": "REPLY"}
    assert suggestion["message"] == "Yes"
    assert location["rcs"]["location"] == {"latitude": 51.5, "longitude": -0.1}


@pytest.mark.parametrize(
    ("patch", "code", "field"),
    [
        ({"from": "no-such-app"}, "7104", ""),
        ({"content": {"type": "text", "text": "x" * 1025}}, "7004", "content.text"),
        ({"content": {"type": "carousel", "richCard": {"cards": [CARD]}}}, "7004", "content.richCard.cards"),
        ({"options": {"smsFallback": True}}, "7003", "options.smsSenderId"),
        ({"to": [{"msisdn": ["12"]}]}, "7004", "to[0].msisdn[0]"),
    ],
)
def test_v2_refusals_name_the_field(server: TidingsServer, patch: dict[str, Any], code: str, field: str):
    body = {"channel": "rcs", "from": APP, "to": [{"msisdn": [REACHABLE]}], "content": TEXT, **patch}
    answer = server.client.post("/v2/messages", json=body, headers={"key": KEY})
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == code
    assert field in answer.json()["message"]
