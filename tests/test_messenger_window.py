"""Messenger's 24-hour standard messaging window: a RESPONSE or UPDATE message, or a sender action, to a
PSID with nothing kept from it in the last 24 hours fails with 7313 (OUTSIDE_WINDOW, the code Graph's
10/2018278 maps to) and never reaches Meta; MESSAGE_TAG is exempt.

Over HTTP: a real `tidings serve` whose page's [apps.messenger] block is aimed at the Graph stand-in
(tests/standins/graph.py), the user's actions posted as Meta posts them, signed (`deliver`, `ms_*`): a
message, a postback, a reaction, a referral and an opt-in each open the window; a page with
`enforce_window = false` leaves the rule to Meta, whose own refusal still maps to 7313; the sandbox keeps
its last-four-digits rule. Through the connector and a real store (every backend): the 24 hours counted
from the kept inbound time.
"""

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.conftest import config_text, unique_path
from tests.connectors.runner import RecordingInbox
from tests.standins.graph import (
    MS_SCRIPTED,
    GraphStandIn,
    deliver,
    ms_message,
    ms_optin,
    ms_postback,
    ms_reaction,
    ms_referral,
)
from tests.support.backends import Backend, backend
from tests.support.receiver import Hit, Receiver
from tests.support.server import TidingsServer
from tests.test_whatsapp_window import GraphThread
from tidings.apps import App, AppRegistry
from tidings.channels.base import FailureKind, Outbound, SendError, SendResult
from tidings.channels.meta.connector import WINDOW_S, MessengerConnector
from tidings.channels.meta.settings import MessengerSettings
from tidings.schema.messenger import MessengerContent
from tidings.specs.messenger import MessengerMessage
from tidings.specs.messenger_codes import DEPRECATED_TEMPLATE, OUTSIDE_WINDOW
from tidings.store.base import InboundMessage, Store

__all__ = ["backend"]  # the fixture the store-backed tests take, parametrised over the backends

APP, OPEN_APP, SANDBOX_APP = "fb-window", "fb-window-open", "fb-window-sandbox"
SECRET, VERIFY = "fb-window-app-secret-7313", "fb-window-verify-7314"
KEY = "fb-window-key-0001"
INBOUND = "/fb-window/inbound"
GRAPH_WINDOW = "7313000099"  # Graph answers 10/2018278 for this PSID
SETTLE_S = 0.3  # time for a Graph request that should not come to show up anyway
REFUSED = "outside the 24-hour standard messaging window"
TEXT = {"text": "Your table is ready"}


@pytest.fixture(scope="module")
def meta() -> Iterator[GraphThread]:
    g = GraphThread()
    g.graph.errors[GRAPH_WINDOW] = MS_SCRIPTED["psid-window"]
    with g:
        yield g


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver, meta: GraphThread
) -> Iterator[TidingsServer]:
    workdir: Path = tmp_path_factory.mktemp("fb-window")
    graph = meta.graph
    block = f"""page_id = "{graph.page_id}"
access_token = "{graph.page_token}"
app_secret = "{SECRET}"
verify_token = "{VERIFY}"
base_url = "{graph.base_url}"
"""
    apps = f"""
[[services]]
id = "svc-fb-window"
name = "fb-window"
key = "{KEY}"
inbound_url = "{receiver.url(INBOUND)}"

[[apps]]
id = "{APP}"
service = "fb-window"

[apps.messenger]
{block}
[[apps]]
id = "{OPEN_APP}"
service = "fb-window"

[apps.messenger]
{block}enforce_window = false

[[apps]]
id = "{SANDBOX_APP}"
service = "fb-window"
"""
    s = TidingsServer(workdir, config_text(receiver) + apps).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()


def send_fb(
    server: TidingsServer,
    receiver: Receiver,
    psid: str,
    fb: dict[str, Any] = TEXT,
    app: str = APP,
    count: int = 1,
) -> Hit:
    """A v1 Messenger request to `psid`; its `count`th notification."""
    path = unique_path("fb-window")
    body = {
        "appid": app,
        "deliverychannel": "fb",
        "channels": {"OTT-Messaging": {"fb": fb}},
        "destination": [{"psid": [psid]}],
        "notifyurl": receiver.url(path),
    }
    answer = server.send(body, KEY).json()["response"]
    assert answer[0]["code"] == "1001", answer
    receiver.wait_count(path, count, timeout=15)
    return receiver.at(path)[count - 1]


def outcome(hit: Hit) -> tuple[str, str]:
    return hit.info["deliveryStatus"], hit.info["code"]


def reached(meta: GraphThread, psid: str) -> list[dict[str, Any]]:
    """The Send API bodies the stand-in got for `psid`."""

    async def pick() -> list[dict[str, Any]]:
        return [
            r.body
            for r in meta.graph.received
            if isinstance(r.body, dict) and r.body.get("recipient", {}).get("id") == psid
        ]

    return meta.call(pick)


def user_does(server: TidingsServer, payload: dict[str, Any]) -> None:
    """Post a user's action to the page's webhook as Meta does, signed."""
    assert asyncio.run(deliver(f"{server.url}/webhooks/{APP}", SECRET, payload)) == [200]


def test_a_psid_that_never_wrote_gets_7313_and_graph_is_not_asked(
    server: TidingsServer, receiver: Receiver, meta: GraphThread
):
    psid = "2448390000000001"
    requests = [
        TEXT,  # no messaging_type: RESPONSE
        {**TEXT, "messaging_type": "RESPONSE"},
        {**TEXT, "messaging_type": "update"},
        {"sender_action": "typing_on"},
        {"sender_action": "markseen"},
    ]
    for fb in requests:
        hit = send_fb(server, receiver, psid, fb)
        assert outcome(hit) == ("Failed", OUTSIDE_WINDOW), fb
        assert hit.info["additionalInfo"].startswith(f"{REFUSED} (the user never wrote)"), hit.info
        view = server.message(hit.transid, KEY)
        assert (view["status"], view["code"]) == ("Failed", OUTSIDE_WINDOW), view
    time.sleep(SETTLE_S)
    assert reached(meta, psid) == []


def test_after_the_user_writes_the_next_message_goes_out(
    server: TidingsServer, receiver: Receiver, meta: GraphThread
):
    psid = "2448390000000002"
    assert outcome(send_fb(server, receiver, psid)) == ("Failed", OUTSIDE_WINDOW)
    user_does(server, ms_message(psid, {"mid": f"m_hello_{psid}", "text": "is my table ready?"}))
    assert outcome(send_fb(server, receiver, psid)) == ("Submitted", "7501")
    assert outcome(send_fb(server, receiver, psid, {"sender_action": "typing_on"})) == ("Submitted", "7501")
    assert outcome(send_fb(server, receiver, psid, {**TEXT, "messaging_type": "UPDATE"})) == (
        "Submitted",
        "7501",
    )
    bodies = reached(meta, psid)
    assert [b.get("messaging_type") or b.get("sender_action") for b in bodies] == [
        "RESPONSE",
        "typing_on",
        "UPDATE",
    ]
    # another user's message opens no window for this one
    assert outcome(send_fb(server, receiver, "2448390000000003")) == ("Failed", OUTSIDE_WINDOW)


ACTORS = {
    "postback": "2448391000000001",
    "quick reply": "2448391000000002",
    "reaction": "2448391000000003",
    "referral": "2448391000000004",
    "opt-in": "2448391000000005",
}


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("postback", lambda psid: ms_postback(psid, "GET_STARTED", "Get Started")),
        (
            "quick reply",
            lambda psid: ms_message(psid, {"mid": f"m_qr_{psid}", "quick_reply": {"payload": "X"}}),
        ),
        ("reaction", lambda psid: ms_reaction(psid, "m_ours_1")),
        ("referral", lambda psid: ms_referral(psid, "spring-sale")),
        ("opt-in", lambda psid: ms_optin(psid, "WEEKLY")),
    ],
    ids=list(ACTORS),
)
def test_each_user_action_meta_counts_opens_the_window(
    server: TidingsServer,
    receiver: Receiver,
    meta: GraphThread,
    action: str,
    payload: Callable[[str], dict[str, Any]],
):
    user = ACTORS[action]
    assert outcome(send_fb(server, receiver, user)) == ("Failed", OUTSIDE_WINDOW)
    event = payload(user)
    user_does(server, event)
    user_does(server, event)  # Meta's repeat changes nothing
    assert outcome(send_fb(server, receiver, user)) == ("Submitted", "7501")
    assert len(reached(meta, user)) == 1
    # A postback and a quick reply are posted to the service; a reaction, referral or opt-in only
    # opens the window.
    time.sleep(SETTLE_S)
    posted = [h for h in receiver.at(INBOUND) if h.json["oa"] == user]
    assert [h.json["messageType"] for h in posted] == (
        ["postback"] if action == "postback" else ["quick_reply"] if action == "quick reply" else []
    )


def test_a_tagged_message_is_not_checked(server: TidingsServer, receiver: Receiver, meta: GraphThread):
    psid = "2448390000000004"
    tagged = {**TEXT, "messaging_type": "MESSAGE_TAG", "tag": "POST_PURCHASE_UPDATE"}
    assert outcome(send_fb(server, receiver, psid, tagged)) == ("Submitted", "7501")
    (body,) = reached(meta, psid)
    assert (body["messaging_type"], body["tag"]) == ("MESSAGE_TAG", "POST_PURCHASE_UPDATE")


def test_a_deprecated_template_still_fails_with_7004(
    server: TidingsServer, receiver: Receiver, meta: GraphThread
):
    psid = "2448390000000005"
    airline = {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "airline_checkin",
                "intro_message": "Check in now",
                "locale": "en_US",
                "pnr_number": "ABCDEF",
                "flight_info": [{"flight_number": "f001"}],
                "checkin_url": "https://example.com/checkin",
            },
        }
    }
    assert outcome(send_fb(server, receiver, psid, airline)) == ("Failed", DEPRECATED_TEMPLATE)
    time.sleep(SETTLE_S)
    assert reached(meta, psid) == []


def test_with_enforce_window_false_graph_decides(
    server: TidingsServer, receiver: Receiver, meta: GraphThread
):
    psid = "2448390000000006"
    assert outcome(send_fb(server, receiver, psid, app=OPEN_APP)) == ("Submitted", "7501")
    assert len(reached(meta, psid)) == 1
    # Graph's own refusal maps to the same code, with Meta's words
    hit = send_fb(server, receiver, GRAPH_WINDOW, app=OPEN_APP)
    assert outcome(hit) == ("Failed", OUTSIDE_WINDOW)
    assert "10/2018278" in hit.info["additionalInfo"], hit.info
    assert "outside of allowed window" in hit.info["additionalInfo"], hit.info
    assert len(reached(meta, GRAPH_WINDOW)) == 1


def test_the_sandbox_keeps_its_last_four_digits_rule(server: TidingsServer, receiver: Receiver):
    # Submitted, then the outcome the last four digits name: no record of the user is consulted
    assert outcome(send_fb(server, receiver, "2448390000000007", app=SANDBOX_APP, count=2)) == (
        "Delivered",
        "7500",
    )
    assert outcome(send_fb(server, receiver, "2448390000007313", app=SANDBOX_APP, count=2)) == (
        "Failed",
        OUTSIDE_WINDOW,
    )


# -- the connector and a real store: when the 24 hours end --------------------------------------------

SVC = "svc-a"


def content(fb: dict[str, Any]) -> MessengerContent:
    return msgspec.convert(fb, MessengerContent)


def settings(graph: GraphStandIn, **extra: Any) -> MessengerSettings:
    return MessengerSettings(
        page_id=graph.page_id,
        access_token=graph.page_token,
        app_secret=SECRET,
        verify_token=VERIFY,
        base_url=graph.base_url,
        **extra,
    )


def outbound(transid: str, psid: str, fb: MessengerContent, app: str = APP) -> Outbound:
    return Outbound(transid, SVC, "fb", psid, MessengerMessage(appid=app, fb=fb), 1, None, "psid")


def wrote(store: Store, psid: str, hours_ago: float) -> Coroutine[Any, Any, bool]:
    at = time.time() - hours_ago * 3600
    message = InboundMessage(f"fb:m_in_{psid}", SVC, "fb", psid, "1234567890", "hi", 1, at)
    return store.record_inbound(message, None, None)


def test_the_window_counts_24_hours_from_the_users_last_action(backend: Backend):
    text = content(TEXT)
    tagged = content({**TEXT, "messaging_type": "MESSAGE_TAG", "tag": "ACCOUNT_UPDATE"})
    typing = content({"sender_action": "typing_on"})

    async def scenario(store: Store) -> tuple[list[SendResult | SendError], list[str]]:
        await wrote(store, "100001", 25)  # closed an hour ago
        await wrote(store, "100002", 23)  # open for another hour
        async with GraphStandIn() as graph:
            other = App("fb-other", SVC, messenger=settings(graph, enforce_window=False))
            apps = AppRegistry([App(APP, SVC, messenger=settings(graph)), other])
            connector = MessengerConnector(apps, 0, store=store)
            await connector.start(RecordingInbox())
            try:
                results = await connector.send(
                    [
                        outbound("t-1", "100001", text),
                        outbound("t-2", "100002", text),
                        outbound("t-3", "100003", text),  # never wrote
                        outbound("t-4", "100003", tagged),  # a tag is Meta's way past the window
                        outbound("t-5", "100001", text, "fb-other"),  # the page leaves it to Meta
                        outbound("t-6", "100001", typing),  # a sender action is checked too
                        outbound("t-7", "100002", typing),
                    ]
                )
            finally:
                await connector.stop()
            sent = [r.body for r in graph.received if isinstance(r.body, dict)]
            return results, sorted(str(b["recipient"]["id"]) for b in sent)

    results, got = backend.run(scenario)
    late, open_, never, tagged_sent, unchecked, late_typing, open_typing = results
    for refused in (late, never, late_typing):
        assert isinstance(refused, SendError)
        assert (refused.kind, refused.code) == (FailureKind.REJECTED, OUTSIDE_WINDOW)
        assert refused.description.startswith(REFUSED)
        assert refused.description.endswith("only a MESSAGE_TAG message can reach them")
    assert isinstance(late, SendError) and "last wrote at" in late.description
    assert isinstance(never, SendError) and "never wrote" in never.description
    assert all(isinstance(r, SendResult) and r.ext_id for r in (open_, tagged_sent, unchecked))
    assert isinstance(open_typing, SendResult) and open_typing.ext_id is None  # no mid for an action
    assert got == ["100001", "100002", "100002", "100003"]  # t-5, t-2, t-7 and t-4 only
    assert WINDOW_S == 24 * 3600
