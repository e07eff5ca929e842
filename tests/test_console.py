"""The console and the listing API over HTTP against a real `tidings serve`: sign-in and the cookie's
flags, CSRF refusals, a service key sees only its service's messages (the admin every service's), the log's
live rows over SSE, a notification sent again with the same event id, the test form, the previews, and
`GET /v1/messages`'s filters, cursor and refusals."""

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import KEY_A, KEY_B, SECRET_A, SECRETS, assert_no_secrets, config_text, make_jwt
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer, free_port
from tidings.console.previews import preview

ADMIN_TOKEN = "console-admin-token-0123456789"
SECRETS.append(ADMIN_TOKEN)


SMSC_PASSWORD = "smsc9x7q"
SMSC_PORT = free_port()
SECRETS.append(SMSC_PASSWORD)


def console_config(receiver: Receiver) -> str:
    # An SMSC nobody listens on (not routed: SMS stays on the sandbox): the health page shows its bind down.
    smsc = (
        f'\n[[smsc]]\nname = "carrier-x"\nhost = "127.0.0.1"\nport = {SMSC_PORT}\n'
        f'system_id = "tidings"\npassword = "{SMSC_PASSWORD}"\n'
    )
    return f'[server]\nadmin_token = "{ADMIN_TOKEN}"\n' + config_text(receiver) + smsc


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[TidingsServer]:
    s = TidingsServer(tmp_path_factory.mktemp("console"), console_config(receiver)).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()
    assert_no_secrets(s)


def sms(key: str, *msisdns: str, sender: str = "CONNCT", **extra: Any) -> list[str]:
    body = {
        "deliverychannel": "sms",
        "channels": {"sms": {"text": extra.pop("text", "hello console"), "senderid": sender}},
        "destination": [{"msisdn": list(msisdns)}],
        **extra,
    }
    r = httpx.post(URL[0] + "/resources/v1/messaging", json=body, headers={"key": key}, timeout=10)
    answer = r.json()["response"]
    assert all(a["code"] == "1001" for a in answer), answer
    return [a["transid"] for a in answer]


URL: list[str] = [""]


@pytest.fixture(autouse=True)
def _url(server: TidingsServer) -> None:
    URL[0] = server.url


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def signed_in(server: TidingsServer, credential: str) -> httpx.Client:
    c = httpx.Client(base_url=server.url, timeout=10)
    OPEN.append(c)
    form = c.get("/console/login")
    r = c.post("/console/login", data={"csrf": csrf_of(form.text), "key": credential})
    assert (r.status_code, r.headers["location"]) == (303, "/console/messages"), r.text
    return c


def test_sign_in_cookie_flags_and_refusals(server: TidingsServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.get("/console/messages").headers["location"] == "/console/login"
        form = c.get("/console/login")
        assert form.status_code == 200 and 'type="password"' in form.text
        # No CSRF token, a wrong one, a wrong key: refused, no session
        assert c.post("/console/login", data={"key": KEY_A}).status_code == 403
        assert c.post("/console/login", data={"key": KEY_A, "csrf": "forged"}).status_code == 403
        token = csrf_of(c.get("/console/login").text)
        wrong = c.post("/console/login", data={"key": "not-a-key", "csrf": token})
        assert wrong.status_code == 401 and "tidings_console=" not in wrong.headers.get("set-cookie", "")
        token = csrf_of(c.get("/console/login").text)
        r = c.post("/console/login", data={"key": KEY_A, "csrf": token})
        assert r.status_code == 303
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("tidings_console="))
        flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
        assert "httponly" in flags and flags["samesite"].lower() == "samesite=strict"
        assert flags["path"] == "Path=/console"
        assert "secure" not in flags  # served over http here; https sets it (docs/console.md)
        assert KEY_A not in cookie and SECRET_A.decode() not in cookie
        page = c.get("/console/messages")
        assert page.status_code == 200 and "service alpha" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        # A tampered cookie is no session
        value = c.cookies["tidings_console"]
        c.cookies.set(
            "tidings_console", value[:-2] + ("AA" if not value.endswith("AA") else "BB"), path="/console"
        )
        assert c.get("/console/messages").headers["location"] == "/console/login"


def test_csrf_refused_on_every_post(server: TidingsServer) -> None:
    c = signed_in(server, KEY_A)
    before = len(httpx.get(server.url + "/v1/messages?limit=200", headers={"key": KEY_A}).json()["messages"])
    body = json.dumps({"deliverychannel": "sms", "channels": {"sms": {"text": "x", "senderid": "CONNCT"}},
                       "destination": [{"msisdn": ["447700900555"]}]})  # fmt: skip
    for path, data in (
        ("/console/send", {"channel": "sms", "body": body}),
        ("/console/logout", {}),
        ("/console/messages/x/resend", {"event_id": "x"}),
        ("/console/health/forget", {"channel": "sms", "address": "1"}),
    ):
        assert c.post(path, data=data).status_code == 403, path
        assert c.post(path, data={**data, "csrf": "not-the-token"}).status_code == 403, path
    after = len(httpx.get(server.url + "/v1/messages?limit=200", headers={"key": KEY_A}).json()["messages"])
    assert after == before  # nothing was sent
    assert c.get("/console/messages").status_code == 200  # still signed in: the logout was refused
    token = csrf_of(c.get("/console/send").text)
    r = c.post("/console/send", data={"csrf": token, "channel": "sms", "body": body})
    assert r.status_code == 200 and "HTTP 200" in r.text
    [transid] = re.findall(r'href="/console/messages/([0-9a-f-]+)"', r.text)
    assert c.get(f"/console/messages/{transid}").status_code == 200
    out = c.post("/console/logout", data={"csrf": token})
    assert out.status_code == 303 and c.get("/console/messages").headers["location"] == "/console/login"


def test_a_service_sees_only_its_own_messages(server: TidingsServer) -> None:
    [mine] = sms(KEY_A, "447700900101", correlationid="mine-1")
    [theirs] = sms(KEY_B, "447700900102", sender="BETA", correlationid="theirs-1")
    a = signed_in(server, KEY_A)
    log = a.get("/console/messages").text
    assert mine in log and theirs not in log and "447700900102" not in log
    assert a.get(f"/console/messages/{theirs}").status_code == 404
    assert theirs not in a.get("/console/messages", params={"correlationid": "theirs-1"}).text
    assert theirs not in a.get("/console/messages", params={"service": "svc-b"}).text  # not the admin
    admin = signed_in(server, ADMIN_TOKEN)
    everything = admin.get("/console/messages").text
    assert mine in everything and theirs in everything and "admin (every service)" in everything
    only_b = admin.get("/console/messages", params={"service": "svc-b"}).text
    assert theirs in only_b and mine not in only_b
    assert admin.get(f"/console/messages/{theirs}").status_code == 200
    # Stats and health: the admin picks a service; a service's session has no picker and its own figures
    accepted = re.compile(r"accepted</span>|accepted (\d+)")
    own = accepted.findall(a.get("/console/stats").text)
    assert own == accepted.findall(a.get("/console/stats", params={"service": "svc-b"}).text)
    assert 'name="service"' not in a.get("/console/stats").text
    picked = admin.get("/console/stats", params={"service": "svc-b"}).text
    assert '<option value="svc-b" selected>' in picked and "<svg" in picked
    assert '<option value="svc-a" selected>' in admin.get("/console/health", params={"service": "svc-a"}).text
    # The listing API too
    listed = httpx.get(server.url + "/v1/messages?limit=200", headers={"key": KEY_B}).json()["messages"]
    assert theirs in {m["transid"] for m in listed} and mine not in {m["transid"] for m in listed}


def test_live_rows_over_sse(server: TidingsServer) -> None:
    c = signed_in(server, KEY_A)
    seen: dict[str, list[str]] = {}
    with c.stream("GET", "/console/events", params={"channel": "sms"}, timeout=15) as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        [transid] = sms(KEY_A, "447700900201")
        deadline = time.monotonic() + 10
        event = ""
        for line in events.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "row":
                row = json.loads(line[6:])
                seen.setdefault(row["transid"], []).append(row["status"])
            if "Delivered" in seen.get(transid, []) or time.monotonic() > deadline:
                break
    assert seen[transid][-1] == "Delivered", seen
    assert all(s in ("Queued", "Submitted", "Delivered") for s in seen[transid])


def test_resend_arrives_with_the_same_event_id(server: TidingsServer, receiver: Receiver) -> None:
    path = "/console/resend"
    [transid] = sms(KEY_A, "447700900301", notifyurl=receiver.url(path))
    hits = receiver.wait_count(path, 2)  # Submitted, Delivered
    c = signed_in(server, KEY_A)
    deadline = time.monotonic() + 10
    detail = c.get(f"/console/messages/{transid}").text
    while detail.count("Send again</button>") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # the receiver has it; the server records the result a moment later
        detail = c.get(f"/console/messages/{transid}").text
    delivered = next(h for h in hits if h.info["deliveryStatus"] == "Delivered")
    event_id = delivered.headers["x-tidings-event-id"]
    assert event_id in detail and "Status timeline" in detail and "Delivered" in detail
    r = c.post(f"/console/messages/{transid}/resend", data={"csrf": csrf_of(detail), "event_id": event_id})
    assert r.status_code == 303 and "due+again" in r.headers["location"]
    again = receiver.wait_count(path, 3)
    assert again[2].headers["x-tidings-event-id"] == event_id
    assert again[2].body == delivered.body
    # Another service cannot send it again
    b = signed_in(server, KEY_B)
    page = b.get("/console/send").text
    r = b.post(f"/console/messages/{transid}/resend", data={"csrf": csrf_of(page), "event_id": event_id})
    assert "Not+sent+again" in r.headers["location"]
    time.sleep(0.5)
    assert len(receiver.at(path)) == 3


def test_pages_and_sms_preview(server: TidingsServer) -> None:
    text = "Привет " * 30  # 210 characters in UCS-2: four parts of at most 67
    [transid] = sms(KEY_A, "447700900401", text=text)
    c = signed_in(server, KEY_A)
    server.wait_message(transid, KEY_A, lambda v: v["status"] != "Queued")
    detail = c.get(f"/console/messages/{transid}").text
    assert "UCS-2 (Unicode)" in detail and detail.count("class='part-no'") == 4
    # The sandbox's try, as a provider attempt: what it decided, behind <details>.
    assert '<h2 id="h-attempts">Provider attempts</h2>' in detail
    assert '<li data-attempt="1" data-outcome="accepted"><h3 id="attempt-1">Try 1</h3>' in detail
    assert "<dt>Connector</dt><dd>sandbox (sandbox)</dd>" in detail
    assert '<summary>Request sent</summary><pre class="wire">sandbox: sms to +447700900401' in detail
    assert f"accepted as sandbox-{transid}: Delivered 7500 in " in detail
    assert server.message(transid, KEY_A)["messageCount"] == 4  # as the connector cuts it
    for page in ("stats", "health", "send"):
        r = c.get(f"/console/{page}")
        assert r.status_code == 200, page
    health = c.get("/console/health").text
    smsc = re.search(r"<tr data-connector='carrier-x' data-state='down'>(.*?)</tr>", health)
    assert smsc, health
    down = r"<td>carrier-x</td><td>smpp</td><td>none</td><td><span class=\"badge failed\">DOWN</span>"
    assert re.match(
        down + r"<br>in flight 0 of 64<br>carrier-x/tr1: down \(connection failed: [^)]+\)</td>", smsc[1]
    )
    # The bind's failure is the last error; the login is a password; SMS is not throttled.
    assert "<strong>connection</strong>: <span class='said'>connection failed:" in smsc[1]
    assert f"system_id tidings at 127.0.0.1:{SMSC_PORT}: password, does not expire" in smsc[1]
    assert "no tps limit, window 64 per bind, 1 transmitting bind(s)<br>not backing off" in smsc[1]
    assert (
        '<td>sandbox</td><td>sandbox</td><td>email, sms</td><td><span class="badge delivered">up</span>'
        in health
    )
    assert SMSC_PASSWORD not in health
    stats = c.get("/console/stats").text
    assert "<svg" in stats and "sms" in stats
    assert c.get("/console/static/console.js").headers["content-type"].startswith("text/javascript")
    assert c.get("/console/static/../../config.py").status_code == 404
    bad = c.get("/console/messages", params={"status": "Lost"})
    assert bad.status_code == 400 and "status must be one of" in bad.text


def test_previews_escape_and_fall_back() -> None:
    email = {"from": "a@example.com", "subject": "<b>s</b>", "type": "html", "text": "t <script>"}
    html = preview("email", {**email, "html": '<p onclick="x">"hi"</p>'}, "b@example.net")
    assert '<iframe class="email-html" sandbox=""' in html
    assert "<script>" not in html and 'onclick="x"' not in html
    assert "Subject" in html and "Raw source" in html
    unknown = preview("carrier-pigeon", {"note": "<img src=x onerror=alert(1)>"}, "x")
    assert unknown.startswith('<pre class="json">') and "<img" not in unknown
    broken = preview("sms", {"type": "3", "body": "not hex"}, "x")  # unreadable: the JSON view
    assert broken.startswith('<pre class="json">')


def test_listing_api_filters_cursor_and_refusals(server: TidingsServer) -> None:
    tag = f"api-{time.monotonic_ns()}"
    ids = [
        sms(KEY_A, f"4477009006{i:02d}", correlationid=f"{tag}-{i}", text=f"{tag} n{i}")[0] for i in range(5)
    ]
    get = lambda **p: httpx.get(server.url + "/v1/messages", params=p, headers={"key": KEY_A}, timeout=10)  # noqa: E731
    found = get(q=tag, limit=2).json()
    assert [m["transid"] for m in found["messages"]] == ids[:2:-1][:2] == [ids[4], ids[3]]
    second = get(q=tag, limit=2, cursor=found["nextCursor"]).json()
    third = get(q=tag, limit=2, cursor=second["nextCursor"]).json()
    assert [m["transid"] for m in second["messages"] + third["messages"]] == [ids[2], ids[1], ids[0]]
    assert third["nextCursor"] is None
    one = get(correlationid=f"{tag}-3").json()["messages"]
    assert [(m["transid"], m["destination"], m["sender"], m["channel"]) for m in one] == [
        (ids[3], "+447700900603", "CONNCT", "sms")
    ]
    assert get(destination="+447700900604", q=tag).json()["messages"][0]["transid"] == ids[4]
    assert get(q=tag, channel="push").json()["messages"] == []
    first_at = one[0]["createdAt"]
    assert {m["transid"] for m in get(q=tag, **{"from": first_at}).json()["messages"]} >= {ids[3], ids[4]}
    assert ids[3] not in {m["transid"] for m in get(q=tag, to=first_at).json()["messages"]}
    jwt_headers = {"Authorization": "Bearer " + make_jwt(SECRET_A, "svc-a")}
    assert httpx.get(server.url + "/v1/messages", params={"q": tag}, headers=jwt_headers).status_code == 200
    for params, field in (
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
        ({"channel": "pigeon"}, "channel"),
        ({"status": "Lost"}, "status"),
        ({"from": "yesterday"}, "from"),
    ):
        r = get(**params)
        assert (r.status_code, r.json()["code"]) == (400, "7004"), params
        assert field in r.json()["description"]
    assert httpx.get(server.url + "/v1/messages").status_code == 401
    assert httpx.get(server.url + "/v1/messages", headers={"key": "nope"}).json()["code"] == "7001"
