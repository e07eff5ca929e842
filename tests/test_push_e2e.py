"""Push end to end: a real `tidings serve` process whose app has a block for every provider, each aimed at
its local stand-in (FCM, APNs over HTTP/2 + TLS, a web push service that decrypts as the browser, WNS).
What is checked is what a user sees (the API, notifications, the message's status) and what each
provider received."""

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import KEY_A, SECRETS, assert_no_secrets, b64, config_text, unique_path
from tests.standins.apns import device_token
from tests.standins.fcm import SCRIPTED, fcm_error
from tests.support.attempts import message_page
from tests.support.console import health_saying, sign_in
from tests.support.push_standins import VAPID_SUBJECT, PushStandIns
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer
from tidings.specs import push_codes

APP = "app-e2e"
APP_SECRET = b"e2e-app-client-secret-0123456789"
SECRETS.append(b64(APP_SECRET))
SETTLE_S = 0.3  # time for a notification that should not come to show up anyway

THROTTLED = (
    429,
    fcm_error(429, "RESOURCE_EXHAUSTED", "Sending quota for this device exceeded.", "QUOTA_EXCEEDED"),
    {"Retry-After": "1"},
)

ADMIN_TOKEN = "e2e-admin-token-4711"
SECRETS.append(ADMIN_TOKEN)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("push-e2e")


@pytest.fixture(scope="module")
def providers(workdir: Path) -> Iterator[PushStandIns]:
    with PushStandIns(workdir) as standins:
        yield standins


@pytest.fixture(scope="module")
def server(workdir: Path, providers: PushStandIns, receiver: Receiver) -> Iterator[TidingsServer]:
    app = providers.app_toml(APP, "alpha", b64(APP_SECRET))
    admin = f'[server]\nadmin_token = "{ADMIN_TOKEN}"\n'
    s = TidingsServer(workdir, admin + config_text(receiver) + app).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()
    SECRETS.extend(providers.secrets())
    assert_no_secrets(s)


def register(server: TidingsServer, **device: Any) -> str:
    r = server.client.post(f"/v1/apps/{APP}/devices", json=device, headers={"key": KEY_A})
    assert r.status_code == 201, r.text
    return str(r.json()["deviceId"])


def devices_of(server: TidingsServer, user: str) -> list[dict[str, Any]]:
    r = server.client.get(f"/v1/apps/{APP}/devices", params={"userid": user}, headers={"key": KEY_A})
    assert r.status_code == 200, r.text
    return list(r.json()["devices"])


def send(server: TidingsServer, destination: dict[str, list[str]], notify: str, **blocks: Any) -> str:
    body = {
        "appid": APP,
        "deliverychannel": "push",
        "channels": {"push": blocks or {"android": {"title": "Hi", "text": "Hello"}}},
        "destination": [destination],
        "notifyurl": notify,
    }
    answer = server.send(body, KEY_A).json()["response"]
    assert isinstance(answer, list) and answer[0]["code"] == "1001", answer
    return str(answer[0]["transid"])


def statuses(receiver: Receiver, path: str) -> list[tuple[str, str]]:
    return [(h.info["deliveryStatus"], h.info["code"]) for h in receiver.at(path)]


def settled(receiver: Receiver, path: str, count: int) -> list[tuple[str, str]]:
    """The notifications at `path` once `count` came and no more followed."""
    receiver.wait_count(path, count, timeout=10)
    time.sleep(SETTLE_S)
    return statuses(receiver, path)


def user_token(server: TidingsServer, user: str) -> str:
    r = server.client.post(f"/v1/apps/{APP}/users/{user}/token", headers={"key": KEY_A})
    assert r.status_code == 201, r.text
    token = str(r.json()["token"])
    SECRETS.append(token)
    return token


def receipt(server: TidingsServer, token: str, transid: str, status: str) -> int:
    r = server.client.post(
        f"/v1/apps/{APP}/receipts",
        json={"transid": transid, "status": status},
        headers={"authorization": f"Bearer {token}"},
    )
    return r.status_code


EVERY_PLATFORM: dict[str, Any] = {
    "android": {"title": "Android title", "text": "Android text"},
    "ios": {"title": "iOS title", "text": "iOS text"},
    "web": {"title": "Web title", "text": "Web text", "platform_types": ["chrome"]},
    "windows": {"text": ["Windows title", "Windows text"]},
}


def register_everywhere(
    server: TidingsServer, providers: PushStandIns, user: str, n: int
) -> tuple[str, str, str, str]:
    """A phone (FCM), an iPhone (APNs), a browser (web push) and a PC (WNS) for `user`: their FCM
    token, APNs token, web push subscription id and WNS channel id."""
    fcm_token, apns_token, browser, channel = (
        f"fcm-{user}-phone",
        device_token(n),
        f"{user}-web",
        f"{user}-pc",
    )
    register(server, userid=user, platform="android", token=fcm_token)
    register(server, userid=user, platform="ios", token=apns_token)
    register(server, userid=user, platform="web", subscription=providers.subscribe(browser))
    register(server, userid=user, platform="windows", token=providers.wns.channel(channel))
    return fcm_token, apns_token, browser, channel


def test_a_user_is_reached_on_every_device_and_the_apps_receipts_move_the_message(
    server: TidingsServer, providers: PushStandIns, receiver: Receiver
) -> None:
    fcm_token, apns_token, browser, channel = register_everywhere(server, providers, "u1", 0xE2E1)
    assert {(d["platform"], d["provider"]) for d in devices_of(server, "u1")} == {
        ("android", "fcm"),
        ("ios", "apns"),
        ("web", "webpush"),
        ("windows", "wns"),
    }

    path = unique_path("e2e-user")
    transid = send(server, {"userid": ["u1"]}, receiver.url(path), **EVERY_PLATFORM)
    assert settled(receiver, path, 1) == [("Submitted", "7501")]
    first = receiver.at(path)[0]
    assert (first.transid, first.info["destination"], first.info["destinationType"]) == (
        transid,
        "u1",
        "userid",
    )

    # Each provider got exactly one request, carrying its platform's block.
    print(providers.call(lambda: providers.fcm.received))
    print(server.output())
    print(server.message(transid, KEY_A))
    (fcm,) = providers.fcm_sent(fcm_token)
    assert fcm["notification"] == {"title": "Android title", "body": "Android text"}
    (apns,) = providers.call(lambda: [r for r in providers.apns.received if r.token == apns_token])
    assert (apns.status, apns.headers["apns-topic"]) == (200, providers.apns.topic)
    assert apns.body["aps"]["alert"] == {"title": "iOS title", "body": "iOS text"}
    (web,) = providers.call(lambda: [r for r in providers.webpush.received if r.sub_id == browser])
    assert (web.json["title"], web.json["body"], web.json["transid"]) == ("Web title", "Web text", transid)
    assert web.vapid_key == providers.vapid_public_key
    (toast,) = providers.call(lambda: [r for r in providers.wns.received if r.channel == channel])
    assert toast.status == 200 and toast.toast is not None
    assert [t.text for t in toast.toast.iter("text")] == ["Windows title", "Windows text"]

    # The real providers say nothing more: the app's receipts do.
    token = user_token(server, "u1")
    assert receipt(server, token, transid, "Delivered") == 204
    receiver.wait_count(path, 2, timeout=10)
    assert receipt(server, token, transid, "Read") == 204
    assert receipt(server, token, transid, "Read") == 204  # a repeat changes nothing
    assert settled(receiver, path, 3) == [("Submitted", "7501"), ("Delivered", "7500"), ("Read", "7502")]
    assert {h.transid for h in receiver.at(path)} == {transid}
    view = server.message(transid, KEY_A)
    assert (view["status"], view["code"]) == ("Read", "7502"), view


def test_a_dead_fcm_token_removes_its_device(
    server: TidingsServer, providers: PushStandIns, receiver: Receiver
) -> None:
    token = "fcm-uninstalled-e2e"
    providers.script_fcm(token, SCRIPTED["stale"])  # 404 UNREGISTERED
    device = register(server, userid="u-dead", platform="android", token=token)
    path = unique_path("e2e-dead-fcm")
    send(server, {"android_pushid": [device]}, receiver.url(path))
    assert settled(receiver, path, 1) == [("Failed", push_codes.TOKEN_UNREGISTERED)]
    assert len(providers.fcm_sent(token)) == 1
    assert devices_of(server, "u-dead") == []

    again = unique_path("e2e-dead-fcm-again")
    send(server, {"android_pushid": [device]}, receiver.url(again))
    assert settled(receiver, again, 1) == [("Failed", push_codes.UNKNOWN_USER)]
    assert len(providers.fcm_sent(token)) == 1  # nothing more reached FCM


def test_a_dead_apns_token_given_directly_is_remembered(
    server: TidingsServer, providers: PushStandIns, receiver: Receiver
) -> None:
    token = "dead" + device_token(0xE2E2)[4:]  # the stand-in answers 410 Unregistered to "dead…"
    ios = {"title": "Hi", "text": "Hello"}
    path = unique_path("e2e-dead-apns")
    send(server, {"ios_pushid": [token]}, receiver.url(path), ios=ios)
    assert settled(receiver, path, 1) == [("Failed", push_codes.TOKEN_UNREGISTERED)]

    def to_token() -> list[tuple[int, str | None]]:
        return [(r.status, r.reason) for r in providers.apns.received if r.token == token]

    assert providers.call(to_token) == [(410, "Unregistered")]
    again = unique_path("e2e-dead-apns-again")
    send(server, {"ios_pushid": [token]}, receiver.url(again), ios=ios)
    assert settled(receiver, again, 1) == [("Failed", push_codes.TOKEN_UNREGISTERED)]
    assert providers.call(to_token) == [(410, "Unregistered")]  # the dispatcher did not ask APNs again
    # The admin lists the address as gone, and removing it lets the next message go to APNs again.
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    listed = server.client.get("/admin/v1/gone-addresses?service=alpha", headers=admin).json()[
        "goneAddresses"
    ]
    assert {(g["channel"], g["address"], g["code"]) for g in listed} >= {
        ("push", token, push_codes.TOKEN_UNREGISTERED)
    }
    removed = server.client.delete(f"/admin/v1/gone-addresses/alpha/push/{token}", headers=admin)
    assert removed.status_code == 204, removed.text
    assert (
        server.client.delete(f"/admin/v1/gone-addresses/alpha/push/{token}", headers=admin).status_code == 404
    )
    third = unique_path("e2e-dead-apns-third")
    send(server, {"ios_pushid": [token]}, receiver.url(third), ios=ios)
    assert settled(receiver, third, 1) == [("Failed", push_codes.TOKEN_UNREGISTERED)]
    assert providers.call(to_token) == [(410, "Unregistered")] * 2


def test_a_throttled_send_is_retried_after_the_wait_fcm_asked_for(
    server: TidingsServer, providers: PushStandIns, receiver: Receiver
) -> None:
    token = "fcm-throttled-once-e2e"
    providers.script_fcm(token, THROTTLED, times=1)
    path = unique_path("e2e-throttled")
    send(server, {"android_pushid": [token]}, receiver.url(path))
    # The dispatcher's own backoff (5 s) is longer than FCM's Retry-After (1 s), so the retry comes then.
    assert settled(receiver, path, 1) == [("Submitted", "7501")]
    asked = providers.fcm_answered_at(token)
    assert len(asked) == 2, asked
    assert asked[1] - asked[0] >= 1.0, asked
    assert len(providers.fcm_sent(token)) == 2
    # Two provider attempts: FCM's 429, then the send it took.
    (transid,) = {h.transid for h in receiver.at(path)}
    _, (throttled, took) = message_page(server.url, KEY_A, transid)
    assert (throttled.outcome, throttled.code, throttled.connector) == (
        "retry",
        push_codes.QUOTA_EXCEEDED,
        "push (push)",
    )
    assert throttled.answer.startswith("HTTP 429\nretry-after: 1\n\n")
    assert (took.outcome, took.code) == ("accepted", "7501") and took.answer.startswith("HTTP 200\n\n")
    assert took.request.startswith("POST http")
    assert "/v1/projects/demo-project/messages:send\n\n{" in took.request


def test_the_health_page_shows_each_providers_token_and_fcms_backoff(
    server: TidingsServer, providers: PushStandIns, receiver: Receiver
) -> None:
    # A message to every platform: each provider's credential is made (FCM's and WNS's OAuth tokens,
    # APNs' provider JWT, a VAPID JWT). Then FCM asks for a minute's pause for one token.
    register_everywhere(server, providers, "u-health", 0xE2E4)
    path = unique_path("e2e-health")
    send(server, {"userid": ["u-health"]}, receiver.url(path), **EVERY_PLATFORM)
    receiver.wait_count(path, 1, timeout=10)
    token = "fcm-throttled-long-e2e"
    providers.script_fcm(token, (*THROTTLED[:2], {"Retry-After": "60"}))
    send(server, {"android_pushid": [token]}, receiver.url(unique_path("e2e-health-429")))
    deadline = time.monotonic() + 10
    while not providers.fcm_answered_at(token) and time.monotonic() < deadline:
        time.sleep(0.02)
    with sign_in(server.url, ADMIN_TOKEN) as console:
        page, rows = health_saying(console, "push", "backing off", deadline)
    state, push = rows["push"]
    assert state == "up", push
    fcm = providers.call(lambda: (providers.fcm.project_id, providers.fcm.client_email))
    expiring = r": (OAuth access token|provider JWT|VAPID JWT), expires \S+ \S+ \(in ({})\)"
    for credential, span in [
        (f"app {APP} FCM project {fcm[0]} \\({fcm[1]}\\)", "59|60 min"),
        (f"app {APP} APNs team \\w+ key \\w+", "59|60 min"),
        (f"app {APP} VAPID key \\({VAPID_SUBJECT}\\)", "11.9|12.0 h"),
        (f"app {APP} WNS client \\S+", "\\d+ (s|min|h)"),
    ]:
        assert re.search(credential + expiring.format(span), push), (credential, push)
    assert "refused" not in push
    assert f"throttled code {push_codes.QUOTA_EXCEEDED}: FCM 429 QUOTA_EXCEEDED: Sending quota" in push
    assert re.search(r"backing off until \S+ \S+ \(in (59|60) s\): FCM 429", push), push
    leaked = [s for s in [*SECRETS, *providers.secrets()] if s in page]
    assert not leaked, leaked
    # /metrics says the same: each credential's expiry, and until when FCM has us wait.
    metrics = {
        (s.name, s.labels.get("credential", "")): s.value
        for family in text_string_to_metric_families(server.client.get("/metrics").text)
        for s in family.samples
        if s.labels.get("connector") == "push"
    }
    fcm_name = f"app {APP} FCM project {fcm[0]} ({fcm[1]})"
    expiry = metrics[("tidings_connector_credential_expiry_timestamp_seconds", fcm_name)]
    assert time.time() + 3500 < expiry < time.time() + 3600, metrics
    assert (
        time.time() + 50
        < metrics[("tidings_connector_backoff_until_timestamp_seconds", "")]
        < time.time() + 61
    )
    assert metrics[("tidings_connector_last_error_timestamp_seconds", "")] > time.time() - 30
    assert metrics[("tidings_connector_attention", "")] == 0


def test_no_secret_shows_in_the_servers_output(
    server: TidingsServer, providers: PushStandIns, receiver: Receiver
) -> None:
    register_everywhere(server, providers, "u-secret", 0xE2E3)
    path = unique_path("e2e-secrets")
    transid = send(server, {"userid": ["u-secret"]}, receiver.url(path), **EVERY_PLATFORM)
    receiver.wait_count(path, 1, timeout=10)
    assert receipt(server, user_token(server, "u-secret"), transid, "Read") == 204
    receiver.wait_count(path, 3, timeout=10)
    issued = providers.call(
        lambda: (providers.fcm.issued, providers.apns.provider_tokens, providers.wns.issued)
    )
    assert all(issued), f"each provider's credentials were used: {issued}"
    output = server.output()
    leaked = [s for s in [*SECRETS, *providers.secrets()] if s in output]
    assert not leaked, f"secrets in the server's output: {leaked}"
    # The message's provider attempt: each device's request and answer, and none of the credentials.
    page, (tried,) = message_page(server.url, KEY_A, transid)
    heads = re.findall(r"^── (\S+) \((\w+)\), device \S+ ──$", tried.request, re.MULTILINE)
    assert sorted(heads) == [("apns", "ios"), ("fcm", "android"), ("webpush", "web"), ("wns", "windows")]
    assert tried.answer.count("\nHTTP 200\n") + tried.answer.count("\nHTTP 201\n") == 4, tried.answer
    assert "apns-topic: " in tried.request and "(encrypted: " in tried.request
    assert '"title": "Web title"' in tried.request or '"title":"Web title"' in tried.request
    leaked = [s for s in [*SECRETS, *providers.secrets()] if s in page]
    assert not leaked, f"secrets on the message's page: {leaked}"
