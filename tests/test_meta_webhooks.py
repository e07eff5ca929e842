"""Meta's webhooks at /webhooks/{appid} over HTTP against a real `tidings serve` (issue 12 items 4 and 7,
CONTRACT.md "Provider webhooks"): the subscription handshake, X-Hub-Signature-256 checked before anything
is stored, inbound WhatsApp and Messenger messages posted to the service's inbound_url (once each however
often Meta sends them, scrambled), a WhatsApp STOP recorded as an opt-out, and statuses.

Webhooks are posted as Meta posts them, signed, by the Graph stand-in's simulator (tests/standins/graph.py
`deliver` and its payload builders).
"""

import asyncio
import re
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import config_text, unique_path
from tests.standins.graph import (
    GraphStandIn,
    deliver,
    ms_delivery,
    ms_message,
    ms_postback,
    ms_read,
    sign,
    wa_failure,
    wa_inbound,
    wa_status,
)
from tests.support.loop_thread import LoopThread
from tests.support.receiver import Hit, Receiver
from tests.support.server import TidingsServer
from tidings.specs.whatsapp_codes import UNDELIVERABLE, WHATSAPP_FAILURES

T = TypeVar("T")

KEY_META, KEY_AUTO = "key-meta-webhooks-0042", "key-meta-auto-0043"
WA_SECRET, FB_SECRET = "wa-app-secret-for-tests", "fb-app-secret-for-tests"
WA_VERIFY, FB_VERIFY = "wa-verify-token-for-tests", "fb-verify-token-for-tests"
INBOUND, NOTIFY = "/meta/inbound", "/meta/notify"


class GraphThread:
    """The Graph stand-in on an event loop of its own thread, so a sync test can aim a server at it."""

    def __init__(self) -> None:
        self.loop = LoopThread("graph-standin")
        self.graph = GraphStandIn()
        # Meta's side of a real run: each accepted send followed at once by its signed status webhooks
        # (aimed at the server once its URL is known), racing the connector's record of the send.
        self.auto = GraphStandIn(
            webhook_url="http://127.0.0.1:9/unset",
            app_secret=WA_SECRET,
            auto_statuses=("sent", "delivered", "read"),
        )

    def start(self) -> "GraphThread":
        self.loop.start()
        self.call(self.graph.start)
        self.call(self.auto.start)
        return self

    def call(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return self.loop.run(fn(), 15)

    def stop(self) -> None:
        try:
            self.call(self.graph.stop)
            self.call(self.auto.stop)
        finally:
            self.loop.stop()


def meta_toml(receiver: Receiver, graph: GraphStandIn, auto: GraphStandIn) -> str:
    wa = f"""phone_number_id = "{graph.phone_number_id}"
access_token = "{graph.wa_token}"
app_secret = "{WA_SECRET}"
verify_token = "{WA_VERIFY}"
base_url = "{graph.base_url}"
enforce_window = false  # sends to users who never wrote (tests/test_whatsapp_window.py has the rule)
"""
    fb = f"""page_id = "{graph.page_id}"
access_token = "{graph.page_token}"
app_secret = "{FB_SECRET}"
verify_token = "{FB_VERIFY}"
base_url = "{graph.base_url}"
enforce_window = false  # sends to users who never wrote (tests/test_messenger_window.py has the rule)
"""
    return f"""
[[services]]
id = "svc-meta"
name = "meta"
key = "{KEY_META}"
notify_url = "{receiver.url(NOTIFY)}"
inbound_url = "{receiver.url(INBOUND)}"

[[contact_policy.groups]]
id = "meta-news"
service = "meta"
kind = "opt-out"

[[apps]]
id = "wa-app"
service = "meta"
[apps.whatsapp]
{wa}
[[apps]]
id = "fb-app"
service = "meta"
[apps.messenger]
{fb}
[[apps]]
id = "both-app"
service = "meta"
[apps.whatsapp]
{wa}
[apps.messenger]
{fb}
[[apps]]
id = "push-only"
service = "meta"

# Its own service: the stand-ins number their wamids alike (wamid.1, …), which Meta never does.
[[services]]
id = "svc-meta-auto"
name = "meta-auto"
key = "{KEY_AUTO}"

[[apps]]
id = "wa-auto"
service = "meta-auto"
[apps.whatsapp]
phone_number_id = "{auto.phone_number_id}"
access_token = "{auto.wa_token}"
app_secret = "{WA_SECRET}"
verify_token = "{WA_VERIFY}"
base_url = "{auto.base_url}"
enforce_window = false  # sends to users who never wrote (tests/test_whatsapp_window.py has the rule)
"""


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphThread]:
    g = GraphThread().start()
    yield g
    g.stop()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver, graph: GraphThread
) -> Iterator[TidingsServer]:
    workdir: Path = tmp_path_factory.mktemp("metahooks")
    s = TidingsServer(workdir, config_text(receiver) + meta_toml(receiver, graph.graph, graph.auto))
    graph.auto.webhook_url = f"{s.url}/webhooks/wa-auto"
    s.start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()
    for secret in (WA_SECRET, FB_SECRET, WA_VERIFY, FB_VERIFY):
        assert secret not in s.output()


def post(server: TidingsServer, app: str, secret: str, payload: Any, **options: Any) -> list[int]:
    return asyncio.run(deliver(f"{server.url}/webhooks/{app}", secret, payload, **options))


def inbound(receiver: Receiver, message_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The inbound_url posts for one Meta message id, once one has come."""

    def hits() -> list[Hit]:
        return [h for h in receiver.hits if h.path == INBOUND and h.json.get("messageId") == message_id]

    receiver.wait_for(lambda: bool(hits()), timeout)
    return [h.json for h in hits()]


def stored(server: TidingsServer, tid: str) -> int:
    return int(server.rows("SELECT count(*) FROM inbound WHERE tid = ?", tid)[0][0])


# -- the handshake -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "token"), [("wa-app", WA_VERIFY), ("fb-app", FB_VERIFY), ("both-app", FB_VERIFY)]
)
def test_the_handshake_answers_the_challenge_for_the_apps_verify_token(server: TidingsServer, app, token):
    query = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"}
    answer = server.client.get(f"/webhooks/{app}", params=query)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text == "1158201444"


@pytest.mark.parametrize(
    ("app", "query", "status"),
    [
        ("wa-app", {"hub.mode": "subscribe", "hub.verify_token": FB_VERIFY, "hub.challenge": "1"}, 403),
        ("wa-app", {"hub.mode": "unsubscribe", "hub.verify_token": WA_VERIFY, "hub.challenge": "1"}, 403),
        ("wa-app", {"hub.mode": "subscribe", "hub.challenge": "1"}, 403),
        ("no-such-app", {"hub.mode": "subscribe", "hub.verify_token": WA_VERIFY, "hub.challenge": "1"}, 404),
        ("push-only", {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}, 404),
    ],
)
def test_the_handshake_refuses_anything_else(server: TidingsServer, app, query, status):
    answer = server.client.get(f"/webhooks/{app}", params=query)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    assert answer.text != "1"


# -- the signature -------------------------------------------------------------------------------------


def test_a_body_without_the_apps_signature_is_403_and_changes_nothing(
    server: TidingsServer, receiver: Receiver
):
    payload = wa_inbound({"type": "text", "text": {"body": "forged"}}, sender="15550000001")
    tid = "wa:" + payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert post(server, "wa-app", FB_SECRET, payload) == [403]  # another block's secret
    assert post(server, "fb-app", WA_SECRET, ms_message("4000", {"mid": "m_forged", "text": "x"})) == [403]
    raw = b'{"object":"whatsapp_business_account","entry":[]}'
    unsigned = httpx.post(f"{server.url}/webhooks/wa-app", content=raw)
    assert unsigned.status_code == 403 and unsigned.json()["code"] == "403"
    bad = httpx.post(
        f"{server.url}/webhooks/wa-app", content=raw, headers={"x-hub-signature-256": "sha256=00"}
    )
    assert bad.status_code == 403
    assert stored(server, tid) == 0 and stored(server, "fb:m_forged") == 0
    # the same body signed with the app's secret is taken: nothing else was wrong with it
    assert post(server, "wa-app", WA_SECRET, payload) == [200]
    assert [m["message"] for m in inbound(receiver, tid[3:])] == ["forged"]


def test_a_signed_body_that_cannot_be_read_is_400(server: TidingsServer):
    for raw in (b"not json", b"[1, 2]", b'{"object": "page", "entry": "nope"}'):
        answer = httpx.post(
            f"{server.url}/webhooks/fb-app",
            content=raw,
            headers={"x-hub-signature-256": sign(FB_SECRET, raw)},
        )
        assert answer.status_code == 400, raw


def test_an_app_with_both_blocks_takes_either_secret(server: TidingsServer, receiver: Receiver):
    wa = wa_inbound({"type": "text", "text": {"body": "both wa"}}, sender="15550000002")
    assert post(server, "both-app", WA_SECRET, wa) == [200]
    assert post(server, "both-app", FB_SECRET, ms_message("4001", {"mid": "m_both", "text": "both fb"})) == [
        200
    ]
    assert [m["message"] for m in inbound(receiver, "m_both")] == ["both fb"]


# -- inbound -------------------------------------------------------------------------------------------

WA_INBOUND = [
    {"type": "text", "text": {"body": "Hello there"}},
    {
        "type": "image",
        "image": {"id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "abc=", "caption": "a cat"},
    },
    {"type": "document", "document": {"id": "555", "mime_type": "application/pdf", "filename": "bill.pdf"}},
    {
        "type": "location",
        "location": {"latitude": 51.5, "longitude": -0.12, "name": "Office", "address": "1 Main St"},
    },
    {
        "type": "contacts",
        "contacts": [
            {
                "name": {"formatted_name": "Ana Lopez", "first_name": "Ana"},
                "phones": [{"phone": "+1 555 0100", "wa_id": "15550100", "type": "CELL"}],
                "emails": [{"email": "ana@example.com", "type": "WORK"}],
            }
        ],
    },
    {
        "type": "interactive",
        "interactive": {"type": "button_reply", "button_reply": {"id": "yes-1", "title": "Yes"}},
        "context": {"from": "15550783881", "id": "wamid.ours-1"},
    },
    {
        "type": "interactive",
        "interactive": {
            "type": "list_reply",
            "list_reply": {"id": "row-2", "title": "Blue", "description": "Navy"},
        },
    },
    {"type": "button", "button": {"payload": "TRACK_ORDER", "text": "Track"}},
]


def test_whatsapp_inbound_messages_reach_the_inbound_url_once_each(server: TidingsServer, receiver: Receiver):
    payloads = [wa_inbound(m, sender=f"1555010{n:04d}") for n, m in enumerate(WA_INBOUND)]
    answers = post(server, "wa-app", WA_SECRET, payloads, scramble=True, duplicate=True)
    assert answers == [200] * (2 * len(payloads))
    got = {}
    for p in payloads:
        wamid = p["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        got[wamid] = inbound(receiver, wamid)
    text, image, document, location, contacts, button_reply, list_reply, button = got.values()
    assert all(len(posts) == 1 for posts in got.values()), got  # the repeats changed nothing
    first = text[0]
    assert {
        k: first[k] for k in ("Channel", "da", "oa", "message", "messageCount", "appId", "messageType")
    } == {
        "Channel": "WHATSAPP",
        "da": "106540352242922",
        "oa": "+15550100000",
        "message": "Hello there",
        "messageCount": "1",
        "appId": "wa-app",
        "messageType": "text",
    }
    assert first["tid"] == f"wa:{first['messageId']}" and first["profileName"] == "Kerry Fisher"
    assert first["whatsapp"] == {"type": "text", "text": "Hello there"}
    assert image[0]["message"] == "a cat"
    media = {"type": "image", "id": "1479537139650973", "mimeType": "image/jpeg", "sha256": "abc="}
    assert image[0]["whatsapp"]["media"] == {**media, "caption": "a cat"}
    assert document[0]["whatsapp"]["media"]["filename"] == "bill.pdf"
    assert location[0]["whatsapp"]["location"] == {
        "latitude": 51.5, "longitude": -0.12, "name": "Office", "address": "1 Main St"
    }  # fmt: skip
    assert contacts[0]["whatsapp"]["contacts"] == [
        {
            "name": "Ana Lopez",
            "phones": [{"phone": "+1 555 0100", "waId": "15550100", "type": "CELL"}],
            "emails": ["ana@example.com"],
        }
    ]
    assert button_reply[0]["message"] == "Yes"
    assert button_reply[0]["whatsapp"]["reply"] == {"type": "button_reply", "id": "yes-1", "title": "Yes"}
    assert button_reply[0]["whatsapp"]["context"] == {"id": "wamid.ours-1"}
    assert list_reply[0]["whatsapp"]["reply"] == {
        "type": "list_reply", "id": "row-2", "title": "Blue", "description": "Navy"
    }  # fmt: skip
    assert button[0]["whatsapp"]["reply"] == {"type": "button", "id": "TRACK_ORDER", "title": "Track"}
    assert button[0]["messageType"] == "button"


def test_a_whatsapp_stop_records_an_opt_out_that_refuses_later_messages(
    server: TidingsServer, receiver: Receiver
):
    sender = "15550199999"

    def consent() -> list[tuple[bool, str]]:
        rows = server.rows(
            "SELECT consent, reason FROM consents WHERE address = ? AND channel = 'whatsapp'", f"+{sender}"
        )
        return [(bool(c), r) for c, r in rows]

    def send(path: str) -> str:
        policy = {"contactPolicyGroup": "meta-news", "channelCheckConsent": True}
        [transid] = send_v1(
            server, "wa-app", "whatsapp", "waid", [sender], receiver.url(path), contactPolicy=policy
        )
        return transid

    stop = wa_inbound({"type": "text", "text": {"body": " stop "}}, sender=sender)
    assert post(server, "wa-app", WA_SECRET, stop) == [200]
    assert consent() == [(False, "keyword STOP")]
    refused = unique_path("wa-stopped")
    transid = send(refused)
    [hit] = receiver.wait_count(refused, 1)
    assert (hit.transid, hit.info["deliveryStatus"], hit.info["code"]) == (transid, "Failed", "9002")

    start = wa_inbound({"type": "text", "text": {"body": "START"}}, sender=sender)
    assert post(server, "wa-app", WA_SECRET, start) == [200]
    assert consent() == [(True, "keyword START")]
    allowed = unique_path("wa-started")
    send(allowed)
    [hit] = receiver.wait_count(allowed, 1)
    assert (hit.info["deliveryStatus"], hit.info["code"]) == ("Submitted", "7501")


def test_messenger_messages_quick_replies_and_postbacks_reach_the_inbound_url(
    server: TidingsServer, receiver: Receiver
):
    payloads = [
        ms_message("5001", {"mid": "m_text", "text": "hi page"}),
        ms_message("5002", {"mid": "m_quick", "text": "Red", "quick_reply": {"payload": "COLOR_RED"}}),
        ms_message(
            "5003",
            {
                "mid": "m_image",
                "attachments": [{"type": "image", "payload": {"url": "https://cdn.example/x.jpg"}}],
            },
        ),
        ms_postback("5004", "GET_STARTED", "Get Started"),
        ms_message("5005", {"mid": "m_echo", "text": "ours", "is_echo": True}),  # the page's own: nothing
    ]
    assert post(server, "fb-app", FB_SECRET, payloads, scramble=True, duplicate=True) == [200] * 10
    text, quick, image = (inbound(receiver, mid) for mid in ("m_text", "m_quick", "m_image"))
    postback = inbound(receiver, "m_postback_5004")
    assert all(len(p) == 1 for p in (text, quick, image, postback))
    assert {k: text[0][k] for k in ("Channel", "da", "oa", "message", "tid", "appId", "messageType")} == {
        "Channel": "FB",
        "da": "1234567890",
        "oa": "5001",
        "message": "hi page",
        "tid": "fb:m_text",
        "appId": "fb-app",
        "messageType": "text",
    }
    assert quick[0]["messenger"] == {
        "type": "quick_reply",
        "text": "Red",
        "quickReply": {"payload": "COLOR_RED"},
    }
    assert image[0]["messenger"] == {
        "type": "attachment", "attachments": [{"type": "image", "url": "https://cdn.example/x.jpg"}]
    }  # fmt: skip
    assert postback[0]["message"] == "Get Started"
    assert postback[0]["messenger"] == {
        "type": "postback",
        "postback": {"payload": "GET_STARTED", "title": "Get Started"},
    }
    assert stored(server, "fb:m_echo") == 0


def test_statuses_for_ids_no_message_was_sent_with_are_acknowledged_and_change_nothing(server: TidingsServer):
    """Meta may report a message another integration sent from the same number, or one whose send is not
    recorded yet: 200 at once, the status kept for a send recorded later (for five minutes), nothing
    else changed."""
    failed = wa_status("wamid.unknown-2", "failed", errors=[wa_failure(131026, "Message undeliverable", "x")])
    body = wa_status("wamid.unknown-1", "delivered")
    statuses = body["entry"][0]["changes"][0]["value"]["statuses"]
    statuses += failed["entry"][0]["changes"][0]["value"]["statuses"]
    started = time.monotonic()
    assert post(server, "wa-app", WA_SECRET, body) == [200]
    assert post(server, "fb-app", FB_SECRET, [ms_delivery("6001", 1, ["m_unknown"]), ms_read("6001", 1)]) == [
        200,
        200,
    ]
    assert time.monotonic() - started < 1.0  # no waiting for a send's record: the status is kept
    kept = server.rows(
        "SELECT ext_id, service_id, additional_info FROM early_statuses WHERE ext_id LIKE ? ORDER BY seq",
        "%unknown%",
    )
    assert [tuple(r) for r in kept] == [
        ("wa:wamid.unknown-1", "svc-meta", ""),
        ("wa:wamid.unknown-2", "svc-meta", "131026 Message undeliverable: x"),
        ("fb:m_unknown", "svc-meta", ""),
    ]


# -- statuses of messages sent through the connector ---------------------------------------------------

SETTLE_S = 0.3  # time for a notification that should not come to show up anyway


def send_v1(
    server: TidingsServer,
    app: str,
    channel: str,
    key: str,
    addresses: list[str],
    notify: str,
    service_key: str = KEY_META,
    **extra: Any,
) -> list[str]:
    obj = (
        {"wa": {"type": "text", "text": {"body": "Hi"}}} if channel == "whatsapp" else {"fb": {"text": "Hi"}}
    )
    body = {
        "appid": app,
        "deliverychannel": channel,
        "channels": {"OTT-Messaging": obj},
        "destination": [{key: addresses}],
        "notifyurl": notify,
        **extra,
    }
    accepted = server.send(body, service_key).json()["response"]
    assert all(a["code"] == "1001" for a in accepted), accepted
    return [a["transid"] for a in accepted]


def statuses(receiver: Receiver, path: str) -> dict[str, list[tuple[str, str, str]]]:
    """Each message's notifications, in the order they came: (status, code, additionalInfo)."""
    seen: dict[str, list[tuple[str, str, str]]] = {}
    for h in receiver.at(path):
        seen.setdefault(h.transid, []).append(
            (h.info["deliveryStatus"], h.info["code"], h.info["additionalInfo"])
        )
    return seen


def ext_ids(server: TidingsServer, transids: list[str], receiver: Receiver, path: str) -> list[str]:
    """The ids the stand-in issued for each message (as the connector recorded them), once all are
    Submitted."""
    receiver.wait_count(path, len(transids))
    rows = dict(server.rows("SELECT transid, ext_id FROM messages WHERE ext_id IS NOT NULL"))
    return [str(rows[t]) for t in transids]


def wa(key: str) -> str:
    assert key.startswith("wa:"), key
    return key[3:]


def test_whatsapp_statuses_scrambled_and_repeated_notify_once_each_in_order(
    server: TidingsServer, receiver: Receiver
):
    path = unique_path("wa-status")
    a, b, c, d = transids = send_v1(
        server, "wa-app", "whatsapp", "waid", ["15550200001", "15550200002", "15550200003", "15550200004"],
        receiver.url(path),
    )  # fmt: skip
    wamids = [wa(k) for k in ext_ids(server, transids, receiver, path)]
    assert post(server, "wa-app", WA_SECRET, wa_status(wamids[2], "delivered")) == [200]
    undeliverable = wa_failure(131026, "Message undeliverable", "Unable to deliver the message.")
    events = [
        wa_status(wamids[0], "sent"),
        wa_status(wamids[0], "delivered"),
        wa_status(wamids[0], "read"),
        wa_status(wamids[1], "sent"),
        wa_status(wamids[1], "read"),  # its delivered never comes: Read reports Delivered first
        wa_status(wamids[2], "read"),
        wa_status(wamids[2], "failed", errors=[undeliverable]),  # after Delivered: ignored
        wa_status(wamids[3], "sent"),
        wa_status(wamids[3], "failed", errors=[undeliverable]),
    ]
    answers = post(server, "wa-app", WA_SECRET, events, scramble=True, duplicate=True, seed=7)
    assert answers == [200] * 18
    receiver.wait_count(path, 4 + 2 + 2 + 2 + 1)
    time.sleep(SETTLE_S)
    seen = statuses(receiver, path)
    submitted, delivered, read = ("Submitted", "7501", ""), ("Delivered", "7500", ""), ("Read", "7502", "")
    assert seen[a] == [submitted, delivered, read]
    assert seen[b] == [submitted, delivered, read]
    assert seen[c] == [submitted, delivered, read]
    failed = WHATSAPP_FAILURES[UNDELIVERABLE]
    assert seen[d] == [
        submitted,
        ("Failed", failed.code, "131026 Message undeliverable: Unable to deliver the message."),
    ]
    view = server.message(d, KEY_META)
    assert (view["status"], view["code"]) == ("Failed", failed.code), view


def test_messenger_deliveries_and_reads_by_mid_and_watermark(server: TidingsServer, receiver: Receiver):
    path = unique_path("fb-status")
    notify = receiver.url(path)
    first = send_v1(server, "fb-app", "fb", "psid", ["7001"], notify) + send_v1(
        server, "fb-app", "fb", "psid", ["7001"], notify
    )
    other = send_v1(server, "fb-app", "fb", "psid", ["7002"], notify)
    mids = ext_ids(server, first + other, receiver, path)
    between = int(time.time() * 1000)
    time.sleep(0.02)
    later = send_v1(server, "fb-app", "fb", "psid", ["7001"], notify)
    ext_ids(server, first + other + later, receiver, path)
    m1, m2, m3 = (*first, *later)

    # the first by its mid; a watermark older than every message names none
    assert post(server, "fb-app", FB_SECRET, ms_delivery("7001", 1, [mids[0][3:]]), duplicate=True) == [
        200,
        200,
    ]
    receiver.wait_count(path, 5)
    # the second by the watermark alone; the later one was sent after it
    assert post(server, "fb-app", FB_SECRET, ms_delivery("7001", between), duplicate=True) == [200, 200]
    receiver.wait_count(path, 6)
    # read: every earlier message to that PSID, the later one Delivered first
    assert (
        post(server, "fb-app", FB_SECRET, ms_read("7001", int(time.time() * 1000)), duplicate=True)
        == [200] * 2
    )
    receiver.wait_count(path, 10)
    time.sleep(SETTLE_S)
    seen = statuses(receiver, path)
    submitted, delivered, read = ("Submitted", "7501", ""), ("Delivered", "7500", ""), ("Read", "7502", "")
    assert seen[m1] == [submitted, delivered, read]
    assert seen[m2] == [submitted, delivered, read]
    assert seen[m3] == [submitted, delivered, read]
    assert seen[other[0]] == [submitted]  # another user's


def one_body(*payloads: dict[str, Any]) -> dict[str, Any]:
    """Several `page` webhooks as the one body Meta batches them in: their entries, in this order."""
    return {"object": "page", "entry": [e for p in payloads for e in p["entry"]]}


def store_commits(server: TidingsServer) -> float:
    """Tidings' store transactions so far, from its /metrics (what bench/messenger.py reads)."""
    text = server.client.get("/metrics").text
    found = re.findall(r"^tidings_store_commit_seconds_count\{[^}]*\} (\S+)$", text, re.MULTILINE)
    assert found, "no tidings_store_commit_seconds_count in /metrics"
    return sum(float(v) for v in found)


def test_a_messenger_body_of_deliveries_reads_and_a_message_applies_them_in_metas_order(
    server: TidingsServer, receiver: Receiver
):
    """One body as Meta batches it: a delivery by mid, a read of that PSID after it, a late delivery of
    a message the read covered, another user's delivery, and a message from the user. Each message is
    Delivered then Read, notified once each in that order, whatever the repeat of the body."""
    path = unique_path("fb-body")
    notify = receiver.url(path)
    early, late = (send_v1(server, "fb-app", "fb", "psid", ["7101"], notify)[0] for _ in range(2))
    other = send_v1(server, "fb-app", "fb", "psid", ["7102"], notify)[0]
    mids = [m[3:] for m in ext_ids(server, [early, late, other], receiver, path)]
    now = int(time.time() * 1000)
    body = one_body(
        ms_delivery("7101", 1, [mids[0]]),  # the first by its mid; its watermark names none
        ms_read("7101", now),  # both: the first Read, the second Delivered then Read
        ms_delivery("7101", now, [mids[1]]),  # after the read: nothing
        ms_delivery("7102", now, [mids[2]]),
        ms_message("7101", {"mid": "m_in_body_7101", "text": "thanks"}),
    )
    assert post(server, "fb-app", FB_SECRET, body, duplicate=True) == [200, 200]
    receiver.wait_count(path, 3 + 2 + 2 + 1)
    time.sleep(SETTLE_S)
    seen = statuses(receiver, path)
    submitted, delivered, read = ("Submitted", "7501", ""), ("Delivered", "7500", ""), ("Read", "7502", "")
    assert seen == {
        early: [submitted, delivered, read],
        late: [submitted, delivered, read],
        other: [submitted, delivered],
    }
    assert [h["message"] for h in inbound(receiver, "m_in_body_7101")] == ["thanks"]
    views = [server.message(t, KEY_META) for t in (early, late, other)]
    assert [(v["status"], v["code"]) for v in views] == [
        ("Read", "7502"),
        ("Read", "7502"),
        ("Delivered", "7500"),
    ]


def test_a_messenger_body_of_many_statuses_is_one_store_commit_not_one_per_event(
    server: TidingsServer, receiver: Receiver
):
    """A body's deliveries (mids and watermark) and reads go to the store in one call: the commits
    counted across its POST are that one and whatever background work ran meanwhile, never one or two
    per event (90 store calls one after another, as once)."""
    path = unique_path("fb-commits")
    psids = [f"72{n:02d}" for n in range(30)]
    transids = send_v1(server, "fb-app", "fb", "psid", psids, receiver.url(path))
    mids = [m[3:] for m in ext_ids(server, transids, receiver, path)]
    now = int(time.time() * 1000)
    events = [(ms_delivery(p, now, [mid]), ms_read(p, now)) for p, mid in zip(psids, mids, strict=True)]
    body = one_body(*(e for pair in events for e in pair))
    before = store_commits(server)
    assert post(server, "fb-app", FB_SECRET, body) == [200]
    commits = store_commits(server) - before
    assert commits <= 15, f"{commits:g} store commits for one body of 60 events"
    receiver.wait_count(path, 3 * len(transids))
    time.sleep(SETTLE_S)
    seen = statuses(receiver, path)
    expected = [("Submitted", "7501", ""), ("Delivered", "7500", ""), ("Read", "7502", "")]
    assert {t: seen[t] for t in transids} == {t: expected for t in transids}


def test_statuses_meta_sends_as_soon_as_it_accepts_find_their_messages(
    server: TidingsServer, receiver: Receiver, graph: GraphThread
):
    """Meta's webhook may come before the connector has recorded the send it reports: it waits for it."""
    path = unique_path("wa-race")
    addresses = [f"1555030{n:04d}" for n in range(20)]
    transids = send_v1(server, "wa-auto", "whatsapp", "waid", addresses, receiver.url(path), KEY_AUTO)
    receiver.wait_count(path, 3 * len(transids))
    time.sleep(SETTLE_S)
    seen = statuses(receiver, path)
    expected = [("Submitted", "7501", ""), ("Delivered", "7500", ""), ("Read", "7502", "")]
    assert {t: seen[t] for t in transids} == {t: expected for t in transids}

    async def answers() -> dict[int, int]:
        async with asyncio.timeout(10):
            await graph.auto.settle()
        return dict(graph.auto.webhook_answers)

    assert set(graph.call(answers)) == {200}


def test_a_status_posted_before_the_send_is_answered_is_kept_and_applied_in_order(
    server: TidingsServer, receiver: Receiver, graph: GraphThread
):
    """Meta posts `sent` and `delivered` before the Cloud API's answer to the send has even reached the
    connector (so before its record exists): the statuses are kept, acknowledged, and applied when the
    send is recorded: Submitted, then Delivered, once each."""
    path = unique_path("wa-early")
    numbers = ["15550400001", "15550400002"]
    graph.auto.early_statuses.update({numbers[0]: ("sent", "delivered"), numbers[1]: ("delivered", "read")})
    answers_before = graph.call(_answers(graph))
    transids = send_v1(server, "wa-auto", "whatsapp", "waid", numbers, receiver.url(path), KEY_AUTO)
    receiver.wait_count(path, 2 + 3)
    time.sleep(SETTLE_S)
    seen = statuses(receiver, path)
    submitted, delivered, read = ("Submitted", "7501", ""), ("Delivered", "7500", ""), ("Read", "7502", "")
    assert seen[transids[0]] == [submitted, delivered]
    assert seen[transids[1]] == [submitted, delivered, read]
    views = [server.message(t, KEY_AUTO) for t in transids]
    assert [(v["status"], v["code"]) for v in views] == [("Delivered", "7500"), ("Read", "7502")]
    assert graph.call(_answers(graph)) == {**answers_before, 200: answers_before.get(200, 0) + 2}
    assert not server.rows("SELECT seq FROM early_statuses WHERE service_id = ?", "svc-meta-auto")


def _answers(graph: GraphThread) -> Callable[[], Coroutine[Any, Any, dict[int, int]]]:
    async def answers() -> dict[int, int]:
        async with asyncio.timeout(10):
            await graph.auto.settle()
        return dict(graph.auto.webhook_answers)

    return answers
