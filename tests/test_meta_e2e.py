"""WhatsApp and Messenger end to end: a real `tidings serve` whose apps have `[apps.whatsapp]` and
`[apps.messenger]` blocks aimed at the Graph stand-in (tests/standins/graph.py, HTTPS with a CA of its own
that the blocks' `ca_file` trusts). A v1 request goes out as the Cloud API / Send API body the stand-in
checks as Meta does; the service sees Submitted 7501 (Delivered and Read come from Meta's webhooks,
which this stand-in is not asked to send here); Meta's refusals end Failed with Webex Connect's code and
Meta's words kept with the message; a throttled send is tried again."""

import asyncio
import json
import re
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from tests.conftest import KEY_A, SECRETS, assert_no_secrets, config_text, unique_path
from tests.connectors.runner import RecordingInbox
from tests.standins.graph import MS_SCRIPTED, WA_SCRIPTED, GraphStandIn, Received, Scripted, error_body
from tests.support.attempts import message_page
from tests.support.console import health_saying, sign_in
from tests.support.loop_thread import LoopThread
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer
from tests.test_messenger_request import SEED_REQUESTS
from tidings.apps import App, AppRegistry
from tidings.channels.base import FailureKind, Outbound, SendError, SendResult
from tidings.channels.meta.connector import WhatsAppConnector
from tidings.channels.meta.settings import WhatsAppSettings
from tidings.schema.whatsapp import decode_whatsapp
from tidings.specs import messenger_codes, whatsapp_codes
from tidings.specs.whatsapp import WhatsAppMessage

T = TypeVar("T")
WA_APP, FB_APP = "wa-e2e", "fb-e2e"
APP_SECRET, VERIFY_TOKEN = "e2e-meta-app-secret-5150", "e2e-meta-verify-token-6160"
SETTLE_S = 0.3  # time for a notification that should not come to show up anyway

# Messenger refusals for PSIDs v1 takes (digits), as Meta documents them (the stand-in's own table
# keys them by words).
FB_WINDOW, FB_NO_USER, FB_THROTTLED = "7313000001", "2018001000", "6130000001"
FB_SLOW = "6130000002"  # 613 without a Retry-After, every time: Tidings waits its own minute
BAD_APP, BAD_TOKEN = "wa-bad-token", "EAAwrong-token-not-real"  # Meta answers 190 to this app's sends


class OnceThen(dict[str, Scripted]):
    """The stand-in's scripted answers, where some hold for a recipient's first send only."""

    def __init__(self, base: dict[str, Scripted], once: set[str]) -> None:
        super().__init__(base)
        self.once = once

    def get(self, key: str, default: Any = None) -> Any:
        answer = super().get(key, default)
        if key in self.once:
            self.once.discard(key)
            del self[key]
        return answer


class GraphThread:
    """The Graph stand-in on a background thread's event loop, for a sync test beside a server."""

    def __init__(self) -> None:
        self._loop = LoopThread("graph-standin")

    def __enter__(self) -> "GraphThread":
        self._loop.start()

        async def start() -> GraphStandIn:
            errors = {
                **WA_SCRIPTED,
                **MS_SCRIPTED,
                FB_WINDOW: MS_SCRIPTED["psid-window"],
                FB_NO_USER: MS_SCRIPTED["psid-nouser"],
                FB_THROTTLED: (
                    400,
                    error_body(613, "Calls to this api have exceeded the rate limit."),
                    {"Retry-After": "1"},
                ),
                "15550130429": WA_SCRIPTED["15550130429"],
                FB_SLOW: (400, error_body(613, "Calls to this api have exceeded the rate limit.")),
            }
            graph = GraphStandIn(tls=True, errors=OnceThen(errors, {"15550130429", FB_THROTTLED}))
            await graph.start()
            return graph

        self.graph = self.run(start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.graph.stop())
        finally:
            self._loop.stop()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return self._loop.run(coro, timeout)

    def call(self, fn: Callable[[], T]) -> T:
        return self._loop.call(fn)

    def received(self, recipient: str) -> list[Received]:
        def pick() -> list[Received]:
            return [r for r in self.graph.received if _recipient(r) == recipient]

        return self.call(pick)


def _recipient(r: Received) -> str:
    body = r.body if isinstance(r.body, dict) else {}
    return str(body.get("to") or (body.get("recipient") or {}).get("id") or "")


@pytest.fixture(scope="module")
def meta() -> Iterator[GraphThread]:
    with GraphThread() as standin:
        yield standin


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, meta: GraphThread, receiver: Receiver
) -> Iterator[TidingsServer]:
    workdir: Path = tmp_path_factory.mktemp("meta-e2e")
    graph = meta.graph
    ca = graph._ca
    assert ca is not None
    ca.cert_pem.write_to_path(str(workdir / "graph-ca.pem"))
    apps = f"""
[[apps]]
id = "{WA_APP}"
service = "alpha"

[apps.whatsapp]
phone_number_id = "{graph.phone_number_id}"
access_token = "{graph.wa_token}"
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"
base_url = "{graph.base_url}"
ca_file = "graph-ca.pem"
enforce_window = false  # sends to users who never wrote (tests/test_whatsapp_window.py has the rule)

[[apps]]
id = "{BAD_APP}"
service = "alpha"

[apps.whatsapp]
phone_number_id = "{graph.phone_number_id}"
access_token = "{BAD_TOKEN}"
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"
base_url = "{graph.base_url}"
ca_file = "graph-ca.pem"
enforce_window = false

[[apps]]
id = "{FB_APP}"
service = "alpha"

[apps.messenger]
page_id = "{graph.page_id}"
access_token = "{graph.page_token}"
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"
base_url = "{graph.base_url}"
ca_file = "graph-ca.pem"
enforce_window = false  # sends to users who never wrote (tests/test_messenger_window.py has the rule)
"""
    s = TidingsServer(workdir, config_text(receiver) + apps).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()
    SECRETS.extend([graph.wa_token, graph.page_token, APP_SECRET, VERIFY_TOKEN, BAD_TOKEN])
    assert_no_secrets(s)


def send(server: TidingsServer, body: dict[str, Any], notify: str) -> str:
    answer = server.send({**body, "notifyurl": notify}, KEY_A).json()["response"]
    assert isinstance(answer, list) and answer[0]["code"] == "1001", answer
    return str(answer[0]["transid"])


def whatsapp(number: str, wa: dict[str, Any]) -> dict[str, Any]:
    return {
        "appid": WA_APP,
        "deliverychannel": "whatsapp",
        "channels": {"OTT-Messaging": {"wa": wa}},
        "destination": [{"waid": [number]}],
    }


def messenger(psid: str, fb: dict[str, Any]) -> dict[str, Any]:
    return {
        "appid": FB_APP,
        "deliverychannel": "fb",
        "channels": {"OTT-Messaging": {"fb": fb}},
        "destination": [{"psid": [psid]}],
    }


def settled(receiver: Receiver, path: str, count: int) -> list[tuple[str, str]]:
    """The notifications at `path` once `count` came and no more followed."""
    receiver.wait_count(path, count, timeout=15)
    time.sleep(SETTLE_S)
    return [(h.info["deliveryStatus"], h.info["code"]) for h in receiver.at(path)]


def last_error(server: TidingsServer, transid: str) -> str:
    (row,) = server.rows("SELECT last_error FROM messages WHERE transid = ?", transid)
    return str(row[0] or "")


HELLO = {"type": "text", "text": {"body": "Your order has shipped"}}


def test_a_whatsapp_text_goes_to_the_cloud_api_and_is_submitted(
    server: TidingsServer, meta: GraphThread, receiver: Receiver
) -> None:
    path = unique_path("wa-e2e")
    transid = send(server, whatsapp("447700900123", {**HELLO, "preview_url": "true"}), receiver.url(path))
    assert settled(receiver, path, 1) == [("Submitted", "7501")]
    hit = receiver.at(path)[0]
    assert (hit.transid, hit.info["destination"], hit.info["deliveryChannel"]) == (
        transid,
        "+447700900123",
        "whatsapp",
    )
    (got,) = meta.received("447700900123")
    assert got.path == f"/v21.0/{meta.graph.phone_number_id}/messages"
    assert got.headers["authorization"] == f"Bearer {meta.graph.wa_token}"
    assert got.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "447700900123",
        "type": "text",
        "text": {"body": "Your order has shipped", "preview_url": True},
    }
    assert server.message(transid, KEY_A)["status"] == "Submitted"
    # The console's page shows the try: the Cloud API request and Meta's answer, never the token.
    page, (tried,) = message_page(server.url, KEY_A, transid)
    assert (tried.outcome, tried.connector, tried.code) == ("accepted", "whatsapp (whatsapp)", "7501")
    url = f"{meta.graph.base_url}/v21.0/{meta.graph.phone_number_id}/messages"
    assert tried.request.startswith(f"POST {url}\n\n{{") and "authorization" not in tried.request.lower()
    assert '"text":{"body":"Your order has shipped","preview_url":true}' in tried.request
    wamid = tried.detail.removeprefix("wa:")
    assert tried.answer.startswith("HTTP 200\n\n{") and f'"{wamid}"' in tried.answer
    assert meta.graph.wa_token not in page


def test_every_seed_messenger_sample_goes_to_the_send_api(
    server: TidingsServer, meta: GraphThread, receiver: Receiver
) -> None:
    sent: dict[str, tuple[str, str]] = {}
    for n, (name, request) in enumerate(SEED_REQUESTS.items()):
        psid = f"24483984711{n:06d}"
        raw = json.dumps(request).replace("<app-id>", FB_APP).replace("<appid>", FB_APP)
        body = json.loads(raw.replace("<psid>", psid))
        path = unique_path("fb-e2e")
        send(server, {k: v for k, v in body.items() if k != "notifyurl"}, receiver.url(path))
        sent[name] = (psid, path)
    for _, path in sent.values():
        receiver.wait_count(path, 1, timeout=15)
    time.sleep(SETTLE_S)  # once for all: no second notification may follow
    for name, (psid, path) in sent.items():
        requests = meta.received(psid)
        notified = [(h.info["deliveryStatus"], h.info["code"]) for h in receiver.at(path)]
        if "(deprecated)" in name:
            # Accepted by the API, then Failed by notification without a word to Graph.
            assert notified == [("Failed", messenger_codes.DEPRECATED_TEMPLATE)], name
            assert requests == [], name
            continue
        assert notified == [("Submitted", "7501")], name
        (got,) = requests
        assert got.path == "/v21.0/me/messages", name
        assert got.headers["authorization"] == f"Bearer {meta.graph.page_token}"
        assert got.body["recipient"] == {"id": psid}, name
        if name == "sender action":
            assert got.body == {"recipient": {"id": psid}, "sender_action": "typing_on"}
        else:
            assert "message" in got.body, name
    # What Graph got for the first sample, whole.
    (first,) = meta.received(sent["text, tag and quick replies"][0])
    assert first.body["messaging_type"] == "MESSAGE_TAG" and first.body["tag"] == "ACCOUNT_UPDATE"
    assert first.body["notification_type"] == "NO_PUSH"
    assert first.body["message"]["text"] == "Welcome to Webex Connect"
    assert [q["title"] for q in first.body["message"]["quick_replies"]] == ["Red", "Green"]


@pytest.mark.parametrize(
    ("channel", "recipient", "code", "words"),
    [
        ("whatsapp", "15550131047", whatsapp_codes.OUTSIDE_WINDOW, "24 hours"),
        ("whatsapp", "15550131026", whatsapp_codes.UNDELIVERABLE, "Message undeliverable"),
        ("fb", FB_WINDOW, messenger_codes.OUTSIDE_WINDOW, "outside of allowed window"),
        ("fb", FB_NO_USER, messenger_codes.UNREACHABLE, "No matching user found"),
    ],
)
def test_a_final_refusal_is_failed_with_the_mapped_code_and_metas_words(
    server: TidingsServer,
    meta: GraphThread,
    receiver: Receiver,
    channel: str,
    recipient: str,
    code: str,
    words: str,
) -> None:
    path = unique_path(f"{channel}-refused")
    body = whatsapp(recipient, HELLO) if channel == "whatsapp" else messenger(recipient, {"text": "Hi"})
    transid = send(server, body, receiver.url(path))
    assert settled(receiver, path, 1) == [("Failed", code)]
    assert len(meta.received(recipient)) == 1  # final: not tried again
    view = server.message(transid, KEY_A)
    assert (view["status"], view["code"]) == ("Failed", code), view
    assert words in last_error(server, transid)
    # Meta's words reach the service too, in the Failed notification's additionalInfo.
    (failed,) = receiver.at(path)
    assert words in failed.info["additionalInfo"], failed.info
    _, (tried,) = message_page(server.url, KEY_A, transid)
    assert (tried.outcome, tried.code) == ("failed", code)
    if code == whatsapp_codes.OUTSIDE_WINDOW:  # Meta's own refusal (131047): its answer, as it came
        assert tried.answer.startswith("HTTP 400\n\n{") and "131047" in tried.answer


def test_a_throttled_send_is_tried_again(
    server: TidingsServer, meta: GraphThread, receiver: Receiver
) -> None:
    # Both at once: each waits for the dispatcher's backoff (longer than Meta's Retry-After).
    wa_path, fb_path = unique_path("wa-throttled"), unique_path("fb-throttled")
    wa = send(server, whatsapp("15550130429", HELLO), receiver.url(wa_path))
    fb = send(server, messenger(FB_THROTTLED, {"text": "Hi"}), receiver.url(fb_path))
    assert settled(receiver, wa_path, 1) == [("Submitted", "7501")]
    assert settled(receiver, fb_path, 1) == [("Submitted", "7501")]
    assert len(meta.received("15550130429")) == 2
    assert len(meta.received(FB_THROTTLED)) == 2
    # Each try is a provider attempt: the throttled one with Meta's answer and Retry-After, then the send.
    page, (throttled, took) = message_page(server.url, KEY_A, wa)
    assert (throttled.outcome, throttled.code, took.outcome) == (
        "retry",
        whatsapp_codes.THROUGHPUT_LIMIT,
        "accepted",
    )
    assert throttled.answer.startswith("HTTP 400\nretry-after: 4\n\n{") and "130429" in throttled.answer
    assert throttled.detail.startswith("throttled: WhatsApp 400 error 130429: Rate limit hit")
    page_fb, (first, second) = message_page(server.url, KEY_A, fb)
    assert (first.outcome, second.outcome, second.connector) == ("retry", "accepted", "messenger (messenger)")
    assert first.request.startswith(f"POST {meta.graph.base_url}/v21.0/me/messages\n\n{{")
    for secret in (meta.graph.wa_token, meta.graph.page_token, APP_SECRET):
        assert secret not in page + page_fb


def test_the_health_page_shows_a_refused_token_and_metas_backoff(
    server: TidingsServer, meta: GraphThread, receiver: Receiver
) -> None:
    # Meta refuses one app's token (190): that send fails at once, and the connector needs attention.
    bad_path, slow_path = unique_path("wa-190"), unique_path("fb-613")
    send(server, {**whatsapp("15550000190", HELLO), "appid": BAD_APP}, receiver.url(bad_path))
    assert settled(receiver, bad_path, 1) == [("Failed", whatsapp_codes.TOKEN_EXPIRED)]
    # Messenger's 613 without a Retry-After: the message waits a minute, the connector backs off.
    send(server, messenger(FB_SLOW, {"text": "Hi"}), receiver.url(slow_path))
    deadline = time.monotonic() + 10
    while not meta.received(FB_SLOW) and time.monotonic() < deadline:
        time.sleep(0.02)
    with sign_in(server.url, KEY_A) as console:
        page, rows = health_saying(console, "messenger", "backing off", deadline)
    wa_state, wa = rows["whatsapp"]
    assert wa_state == "needs attention", wa
    assert f"credentials refused: app {BAD_APP} ({meta.graph.phone_number_id})" in wa
    assert (
        f"config code {whatsapp_codes.TOKEN_EXPIRED}: WhatsApp 401 error 190: Invalid OAuth access token"
        in wa
    )
    assert (
        f"app {BAD_APP} ({meta.graph.phone_number_id}): static token, does not expire refused: WhatsApp" in wa
    )
    assert f"app {WA_APP} ({meta.graph.phone_number_id}): static token, does not expire" in wa
    fb_state, fb = rows["messenger"]
    assert fb_state == "up", fb
    assert "throttled code" in fb and "error 613: Calls to this api have exceeded the rate limit" in fb
    assert re.search(r"backing off until \S+ \S+ \(in (59|60) s\): Messenger 400 error 613", fb), fb
    assert f"app {FB_APP} ({meta.graph.page_id}): static token, does not expire" in fb
    for secret in (BAD_TOKEN, meta.graph.wa_token, meta.graph.page_token, APP_SECRET):
        assert secret not in page
    # /metrics: the refused token is a gauge to alert on; Messenger's backoff ends in a minute.
    metrics = server.client.get("/metrics").text
    assert 'tidings_connector_attention{connector="whatsapp"} 1.0' in metrics
    assert 'tidings_connector_attention{connector="messenger"} 0.0' in metrics
    until = re.search(
        r'tidings_connector_backoff_until_timestamp_seconds\{connector="messenger"\} (\S+)', metrics
    )
    assert until and time.time() + 50 < float(until[1]) < time.time() + 61, metrics


def test_a_changed_block_is_used_from_the_next_send_on() -> None:
    """The admin API may change an app's block while the server runs: the connector's client follows
    (here over plain HTTP, a base_url without TLS)."""

    async def run() -> tuple[list[object], list[str]]:
        async with GraphStandIn() as graph:
            first = WhatsAppSettings(
                phone_number_id=graph.phone_number_id,
                access_token="EAAold-token-not-real",
                app_secret=APP_SECRET,
                verify_token=VERIFY_TOKEN,
                base_url=graph.base_url,
            )
            apps = AppRegistry([App(WA_APP, "svc-a", whatsapp=first)])
            connector = WhatsAppConnector(apps, 0)
            await connector.start(RecordingInbox())
            message = WhatsAppMessage(appid=WA_APP, wa=decode_whatsapp(json.dumps(HELLO).encode(), "wa"))
            out = Outbound("t-1", "svc-a", "whatsapp", "+447700900123", message, 1, None, "waid")
            try:
                results: list[object] = list(await connector.send([out]))
                fixed = msgspec.structs.replace(first, access_token=graph.wa_token)
                apps.replace([App(WA_APP, "svc-a", whatsapp=fixed)])
                results += await connector.send([out, out])
            finally:
                await connector.stop()
            return results, [r.headers["authorization"] for r in graph.received]

    results, auth = asyncio.run(run())
    refused, *accepted = results
    assert isinstance(refused, SendError) and refused.kind is FailureKind.CONFIG
    # The batch's two go at once, so either may get the first wamid.
    assert {r.ext_id for r in accepted if isinstance(r, SendResult)} == {"wa:wamid.1", "wa:wamid.2"}
    assert auth[0] == "Bearer EAAold-token-not-real" and auth[1:] == ["Bearer EAAwa-test-token-not-real"] * 2
