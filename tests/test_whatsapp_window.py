"""WhatsApp's 24-hour customer-service window (issue 12 item 1): a free-form message to a user with no
inbound message kept in the last 24 hours fails with 7710 (OUTSIDE_WINDOW) and never reaches Meta.

Over HTTP: a real `tidings serve` whose app's [apps.whatsapp] block is aimed at the Graph stand-in
(tests/standins/graph.py), inbound messages posted as Meta posts them, signed (`deliver`, `wa_inbound`).
Through the connector and a real store (every backend): the 24 hours counted from the kept inbound
time, a template exempt, and `enforce_window = false` leaving the rule to Meta.
"""

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from tests.conftest import KEY_A, config_text, unique_path
from tests.connectors.runner import RecordingInbox
from tests.standins.graph import GraphStandIn, deliver, wa_inbound
from tests.support.backends import Backend, backend
from tests.support.loop_thread import LoopThread
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer
from tidings.apps import App, AppRegistry
from tidings.channels.base import FailureKind, Outbound, SendError, SendResult
from tidings.channels.meta.connector import WINDOW_S, WhatsAppConnector
from tidings.channels.meta.settings import WhatsAppSettings
from tidings.schema.whatsapp import WhatsAppContent
from tidings.specs.whatsapp import WhatsAppMessage
from tidings.specs.whatsapp_codes import OUTSIDE_WINDOW
from tidings.store.base import InboundMessage, Store

__all__ = ["backend"]  # the fixture the store-backed tests take, parametrised over the backends

T = TypeVar("T")
APP, SANDBOX_APP = "wa-window", "wa-window-sandbox"
SECRET, VERIFY = "wa-window-app-secret-0710", "wa-window-verify-0711"
SETTLE_S = 0.3  # time for a Graph request that should not come to show up anyway


class GraphThread:
    """The Graph stand-in on its own thread's event loop, so a sync test can aim a server at it."""

    def __init__(self) -> None:
        self.loop = LoopThread("graph-standin")
        self.graph = GraphStandIn()

    def __enter__(self) -> "GraphThread":
        self.loop.start()
        self.call(self.graph.start)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.call(self.graph.stop)
        finally:
            self.loop.stop()

    def call(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return self.loop.run(fn(), 15)

    def sent_to(self, number: str) -> int:
        async def count() -> int:
            return sum(
                1 for r in self.graph.received if isinstance(r.body, dict) and r.body.get("to") == number
            )

        return self.call(count)


@pytest.fixture(scope="module")
def meta() -> Iterator[GraphThread]:
    with GraphThread() as g:
        yield g


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver, meta: GraphThread
) -> Iterator[TidingsServer]:
    workdir: Path = tmp_path_factory.mktemp("wa-window")
    graph = meta.graph
    apps = f"""
[[apps]]
id = "{APP}"
service = "alpha"

[apps.whatsapp]
phone_number_id = "{graph.phone_number_id}"
access_token = "{graph.wa_token}"
app_secret = "{SECRET}"
verify_token = "{VERIFY}"
base_url = "{graph.base_url}"

[[apps]]
id = "{SANDBOX_APP}"
service = "alpha"
"""
    s = TidingsServer(workdir, config_text(receiver) + apps).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()


def send_text(
    server: TidingsServer, receiver: Receiver, number: str, app: str = APP, count: int = 1
) -> tuple[str, str]:
    """A v1 free-form text to `number`; its `count`th notification's (deliveryStatus, code)."""
    path = unique_path("wa-window")
    body = {
        "appid": app,
        "deliverychannel": "whatsapp",
        "channels": {"OTT-Messaging": {"wa": {"type": "text", "text": {"body": "Your order has shipped"}}}},
        "destination": [{"waid": [number]}],
        "notifyurl": receiver.url(path),
    }
    answer = server.send(body, KEY_A).json()["response"]
    assert answer[0]["code"] == "1001", answer
    receiver.wait_count(path, count, timeout=15)
    hit = receiver.at(path)[count - 1]
    return hit.info["deliveryStatus"], hit.info["code"]


def test_a_user_who_never_wrote_gets_7710_and_meta_is_not_asked(
    server: TidingsServer, receiver: Receiver, meta: GraphThread
):
    assert send_text(server, receiver, "+15550700001") == ("Failed", OUTSIDE_WINDOW)
    time.sleep(SETTLE_S)
    assert meta.sent_to("15550700001") == 0


def test_after_the_user_writes_the_next_free_form_message_goes_out(
    server: TidingsServer, receiver: Receiver, meta: GraphThread
):
    assert send_text(server, receiver, "+15550700002") == ("Failed", OUTSIDE_WINDOW)
    hello = wa_inbound({"type": "text", "text": {"body": "where is my order?"}}, sender="15550700002")
    assert asyncio.run(deliver(f"{server.url}/webhooks/{APP}", SECRET, hello)) == [200]
    assert send_text(server, receiver, "+15550700002") == ("Submitted", "7501")
    assert meta.sent_to("15550700002") == 1
    # another user's message opens no window for this one
    assert send_text(server, receiver, "+15550700003") == ("Failed", OUTSIDE_WINDOW)


def test_the_sandbox_keeps_its_last_four_digits_rule(server: TidingsServer, receiver: Receiver):
    # Submitted, then the outcome the last four digits name: no record of the user is consulted
    assert send_text(server, receiver, "+15550700004", SANDBOX_APP, 2) == ("Delivered", "7500")
    assert send_text(server, receiver, "+15550707710", SANDBOX_APP, 2) == ("Failed", OUTSIDE_WINDOW)


# -- the connector and a real store: when the 24 hours end --------------------------------------------

SVC = "svc-a"
TEXT = msgspec.convert({"type": "text", "text": {"body": "hi"}}, WhatsAppContent)


def settings(graph: GraphStandIn, **extra: Any) -> WhatsAppSettings:
    return WhatsAppSettings(
        phone_number_id=graph.phone_number_id,
        access_token=graph.wa_token,
        app_secret=SECRET,
        verify_token=VERIFY,
        base_url=graph.base_url,
        **extra,
    )


def outbound(transid: str, number: str, wa: WhatsAppContent, app: str = APP) -> Outbound:
    return Outbound(
        transid, SVC, "whatsapp", f"+{number}", WhatsAppMessage(appid=app, wa=wa), 1, None, "waid"
    )


def wrote(store: Store, number: str, hours_ago: float) -> Coroutine[Any, Any, bool]:
    at = time.time() - hours_ago * 3600
    message = InboundMessage(f"wa:wamid.in-{number}", SVC, "whatsapp", f"+{number}", "1065", "hi", 1, at)
    return store.record_inbound(message, None, None)


def test_the_window_counts_24_hours_from_the_users_last_message(backend: Backend):
    template = msgspec.convert(
        {"type": "template", "template": {"name": "order_update", "language": "en_US"}}, WhatsAppContent
    )

    async def scenario(store: Store) -> tuple[list[SendResult | SendError], list[str]]:
        await wrote(store, "15550800001", 25)  # closed an hour ago
        await wrote(store, "15550800002", 23)  # open for another hour
        async with GraphStandIn() as graph:
            other = App("wa-other", SVC, whatsapp=settings(graph, enforce_window=False))
            apps = AppRegistry([App(APP, SVC, whatsapp=settings(graph)), other])
            connector = WhatsAppConnector(apps, 0, store=store)
            await connector.start(RecordingInbox())
            try:
                results = await connector.send(
                    [
                        outbound("t-1", "15550800001", TEXT),
                        outbound("t-2", "15550800002", TEXT),
                        outbound("t-3", "15550800003", TEXT),  # never wrote
                        outbound("t-4", "15550800003", template),  # a template opens a conversation
                        outbound("t-5", "15550800001", TEXT, "wa-other"),  # the app leaves it to Meta
                    ]
                )
            finally:
                await connector.stop()
            return results, sorted(str(r.body["to"]) for r in graph.received if isinstance(r.body, dict))

    results, reached = backend.run(scenario)
    late, open_, never, template_sent, unchecked = results
    for refused in (late, never):
        assert isinstance(refused, SendError)
        assert (refused.kind, refused.code) == (FailureKind.REJECTED, OUTSIDE_WINDOW)
        assert refused.description.startswith("outside the 24-hour customer service window")
    assert isinstance(late, SendError) and "last wrote at" in late.description
    assert isinstance(never, SendError) and "never wrote" in never.description
    assert all(isinstance(r, SendResult) and r.ext_id for r in (open_, template_sent, unchecked))
    assert reached == ["15550800001", "15550800002", "15550800003"]  # t-5, t-2 and t-4 only
    assert WINDOW_S == 24 * 3600
