"""Bodies that are not JSON, or not JSON Tidings will read, on every route that takes a body: each answers
its API's documented invalid-JSON error (v1: 7000 in HTTP 200; the SMS and consent APIs: 400 with code
7000; the admin API: 400 "the body is not valid JSON") and the server logs no traceback.

Invalid UTF-8 is refused wherever it is, in a field Tidings reads or one it ignores; so are duplicate
keys, NaN and Infinity (not JSON), nesting deeper than 64 levels, a truncated body and an empty one."""

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import TidingsServer

TOKEN = "admin-token-" + uuid.uuid4().hex
KEY = "key-json-bodies-01"
CONFIG = f"""
[server]
admin_token = "{TOKEN}"

[sandbox]
delay_ms = 20

[[services]]
id = "svc-j"
name = "jay"
key = "{KEY}"
senderids = ["CONNCT"]

[[templates]]
id = "otp"
service = "jay"
text = "Code {{{{code}}}}"

[[smartlinks]]
linkid = 5
service = "jay"
url = "https://example.com/app"

[[contact_policy.groups]]
id = "news"
service = "jay"
kind = "opt-in"
"""
SERVICE = {"key": KEY}
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
MARK = "\u0000MARK\u0000"  # stands for a raw byte that json.dumps cannot write


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    headers: dict[str, str]
    good: dict[str, Any]  # a body this route reads; `known` is one of its string fields
    known: str
    check: Callable[[httpx.Response], None]


def v1_refusal(r: httpx.Response) -> None:
    assert r.status_code == 200, r.text
    response = r.json()["response"]
    assert response["code"] == "7000" and response["description"].startswith("Invalid JSON"), response
    uuid.UUID(response["transid"])


def sms_refusal(r: httpx.Response) -> None:
    assert (r.status_code, r.json()["code"], r.json()["message"]) == (400, "7000", "Invalid JSON"), r.text


def admin_refusal(r: httpx.Response) -> None:
    assert (r.status_code, r.json()["code"]) == (400, "400"), r.text
    assert r.json()["description"] == "the body is not valid JSON", r.text
    assert r.json()["problems"], "the problem is named"


V1_BODY = {
    "deliverychannel": "sms",
    "destination": [{"msisdn": ["+447700900123"]}],
    "channels": {"sms": {"text": "cafe", "senderid": "CONNCT"}},
    "correlationid": "c-1",
}
ADMIN_BODIES: dict[str, tuple[dict[str, Any], str, str]] = {
    # prefix: (body, its string field, the entry's name in the URL)
    "services": ({"id": "svc-new", "name": "cafe", "senderids": ["CONNCT"]}, "name", "svc-j"),
    "templates": ({"id": "t", "service": "jay", "channel": "sms", "text": "cafe"}, "text", "svc-j/sms/otp"),
    "smartlinks": ({"linkid": 9, "service": "jay", "url": "https://example.com/cafe"}, "url", "svc-j/5"),
    "contact-policy/groups": ({"id": "g", "service": "jay", "kind": "opt-in"}, "kind", "svc-j/news"),
}


def routes() -> dict[str, Route]:
    out = {
        "v1": Route("POST", "/resources/v1/messaging", SERVICE, V1_BODY, "correlationid", v1_refusal),
        "v1/": Route("POST", "/resources/v1/messaging/", SERVICE, V1_BODY, "correlationid", v1_refusal),
        "sms": Route(
            "POST",
            "/v1/sms/messages",
            SERVICE,
            {"from": "CONNCT", "to": "+447700900123", "content": "cafe"},
            "content",
            sms_refusal,
        ),
        "v2": Route(
            "POST",
            "/v2/messages",
            SERVICE,
            {
                "channel": "sms",
                "from": "CONNCT",
                "to": [{"msisdn": ["+447700900123"]}],
                "content": {"type": "text", "text": "cafe"},
                "correlationId": "c-2",
            },
            "correlationId",
            sms_refusal,
        ),
        "consent": Route(
            "POST",
            "/v1/groups/news/members",
            SERVICE,
            {"address": "+447700900123", "channel": "text", "consent": True, "reason": "cafe"},
            "reason",
            sms_refusal,
        ),
    }
    for prefix, (body, known, name) in ADMIN_BODIES.items():
        out[f"admin POST {prefix}"] = Route("POST", f"/admin/v1/{prefix}", ADMIN, body, known, admin_refusal)
        for method in ("PUT", "PATCH"):
            path = f"/admin/v1/{prefix}/{name}"
            out[f"admin {method} {prefix}"] = Route(method, path, ADMIN, body, known, admin_refusal)
    return out


def with_raw(body: dict[str, Any], raw: bytes) -> bytes:
    """`body` as JSON text with `raw` where MARK was put."""
    return json.dumps(body).encode().replace(json.dumps(MARK).encode(), raw)


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


BODIES: dict[str, Callable[[Route], bytes]] = {
    "utf8-in-a-known-field": lambda r: with_raw({**r.good, r.known: MARK}, b'"caf\xe9"'),
    "utf8-in-an-ignored-field": lambda r: with_raw({**r.good, "zz": MARK}, b'"caf\xe9"'),
    "utf8-overlong-slash": lambda r: with_raw({**r.good, "zz": MARK}, b'"\xc0\xaf"'),
    "utf8-encoded-surrogate": lambda r: with_raw({**r.good, r.known: MARK}, b'"\xed\xa0\x80"'),
    "truncated": lambda r: json.dumps(r.good).encode()[:-3],
    "deep-nesting-10000": lambda r: with_raw({**r.good, "zz": MARK}, nested(10_000)),
    "deep-nesting-top-level": lambda r: nested(10_000),
    "nesting-65": lambda r: with_raw({**r.good, "zz": MARK}, nested(64)),
    "nan": lambda r: with_raw({**r.good, "zz": MARK}, b"NaN"),
    "infinity": lambda r: with_raw({**r.good, "zz": MARK}, b"Infinity"),
    "minus-infinity": lambda r: with_raw({**r.good, "zz": MARK}, b"-Infinity"),
    "duplicate-key": lambda r: b'{"%s":"first",' % r.known.encode() + json.dumps(r.good).encode()[1:],
    "duplicate-key-nested": lambda r: with_raw({**r.good, "zz": MARK}, b'{"a":1,"a":2}'),
    "lone-surrogate-escape": lambda r: with_raw({**r.good, r.known: MARK}, b'"caf\\ud800"'),
    "bom": lambda r: b"\xef\xbb\xbf" + json.dumps(r.good).encode(),
    "empty": lambda r: b"",
    "whitespace": lambda r: b" \r\n\t ",
}
ROUTES = routes()


def log_sizes(server: TidingsServer) -> dict[Path, int]:
    return {f: f.stat().st_size for f in server.workdir.glob("std*.txt")}


def logged_since(server: TidingsServer, sizes: dict[Path, int]) -> str:
    """What the server printed since `sizes` were taken (a request is answered after it logs)."""
    text = ""
    for f in sorted(server.workdir.glob("std*.txt")):
        with f.open("rb") as out:
            out.seek(sizes.get(f, 0))
            text += out.read().decode(errors="replace")
    return text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TidingsServer]:
    s = TidingsServer(tmp_path_factory.mktemp("json-bodies"), CONFIG).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()


@pytest.mark.parametrize("body", list(BODIES))
@pytest.mark.parametrize("route", list(ROUTES))
def test_every_route_refuses_what_is_not_json(server: TidingsServer, route: str, body: str):
    r = ROUTES[route]
    raw = BODIES[body](r)
    before = log_sizes(server)
    answer = server.client.request(r.method, r.path, content=raw, headers=r.headers)
    r.check(answer)
    logged = logged_since(server, before)
    for word in ("Traceback", "UnicodeDecodeError", "RecursionError", "Internal error"):
        assert word not in logged, logged


@pytest.mark.parametrize("route", ["v1", "sms", "v2", "consent"])
def test_the_good_bodies_are_read(server: TidingsServer, route: str):
    """The table's bodies are refused for what was done to them, not for what they were."""
    r = ROUTES[route]
    answer = server.client.request(r.method, r.path, json=r.good, headers=r.headers)
    assert answer.status_code in (200, 201, 202, 204), answer.text
    if route == "v1":
        assert answer.json()["response"][0]["code"] == "1001", answer.text


def test_nesting_to_64_levels_is_read_and_a_65th_is_not(server: TidingsServer):
    route = ROUTES["sms"]
    # The body object is the first level: an ignored field holding 63 nested arrays is the 64th.
    ok = server.client.post(
        route.path, content=with_raw({**route.good, "zz": MARK}, nested(63)), headers=SERVICE
    )
    assert ok.status_code == 202, ok.text
    deep = server.client.post(
        route.path, content=with_raw({**route.good, "zz": MARK}, nested(64)), headers=SERVICE
    )
    assert deep.status_code == 400 and "64" in deep.json()["description"], deep.text


def test_the_refusal_says_what_is_wrong(server: TidingsServer):
    route = ROUTES["sms"]
    cases = {
        "utf8-in-an-ignored-field": "UTF-8",
        "duplicate-key": 'duplicate key "content"',
        "nan": "NaN",
        "empty": "empty",
        "deep-nesting-10000": "64 levels",
    }
    for name, words in cases.items():
        r = server.client.post(route.path, content=BODIES[name](route), headers=SERVICE)
        assert words in r.json()["description"], (name, r.text)
