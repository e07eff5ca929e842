"""The admin API and the admin commands as an operator meets them: every change is in force for the
next request with no restart, bad bodies name the key at fault, the config file seeds the catalogue at
each start (and wins over an admin edit of what it names), and what the admin API added survives a
restart."""

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import sms
from tests.support.server import TidingsServer

TOKEN = "admin-token-" + uuid.uuid4().hex
KEY = "key-admin-alpha-01"
CONFIG = f"""
[server]
admin_token = "{TOKEN}"

[sandbox]
delay_ms = 20

[[services]]
id = "svc-a"
name = "alpha"
key = "{KEY}"
senderids = ["CONNCT"]

[[templates]]
id = "otp"
service = "alpha"
text = "Code {{{{code}}}}"
"""
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TidingsServer]:
    s = TidingsServer(tmp_path_factory.mktemp("admin"), CONFIG).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()
    assert TOKEN not in s.output() and KEY not in s.output(), "the token and keys are never logged"


def call(server: TidingsServer, method: str, path: str, body: Any = None) -> httpx.Response:
    return server.client.request(method, f"/admin/v1/{path}", json=body, headers=AUTH)


def sent(server: TidingsServer, key: str, body: dict[str, Any]) -> Any:
    return server.send(body, key).json()["response"]


def new_service(server: TidingsServer, **fields: Any) -> dict[str, Any]:
    body = {"id": f"svc-{uuid.uuid4().hex[:8]}", "senderids": ["CONNCT"], **fields}
    r = call(server, "POST", "services", body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_the_admin_api_needs_the_token(admin: TidingsServer, server: TidingsServer):
    assert admin.client.get("/admin/v1/services").status_code == 401
    wrong = admin.client.get("/admin/v1/services", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    key_as_token = admin.client.get("/admin/v1/services", headers={"Authorization": f"Bearer {KEY}"})
    assert key_as_token.status_code == 401, "a service key is not an admin token"
    off = server.client.get("/admin/v1/services", headers=AUTH)  # this server has no admin_token
    assert off.status_code == 403 and "admin_token" in off.json()["description"]


def test_a_service_added_works_at_once_and_stops_when_deleted(admin: TidingsServer):
    svc = new_service(admin, name="gamma", tps=50)
    assert len(svc["key"]) == 32 and svc["origin"] == "admin", "a key is made when none is given"
    answer = sent(admin, svc["key"], sms(["+447700900101"]))
    assert isinstance(answer, list) and answer[0]["code"] == "1001", answer
    listed = call(admin, "GET", "services").json()["services"]
    assert {s["id"]: s["origin"] for s in listed}[svc["id"]] == "admin"
    assert {s["id"]: s["origin"] for s in listed}["svc-a"] == "config"

    off = call(admin, "PATCH", f"services/{svc['id']}", {"active": False})
    assert off.status_code == 200 and off.json()["active"] is False and off.json()["tps"] == 50
    assert sent(admin, svc["key"], sms(["+447700900101"]))["code"] == "7007"
    assert call(admin, "DELETE", f"services/{svc['id']}").status_code == 204
    assert sent(admin, svc["key"], sms(["+447700900101"]))["code"] == "7001"
    assert call(admin, "GET", f"services/{svc['id']}").status_code == 404


def test_a_tps_change_applies_to_the_next_request(admin: TidingsServer):
    svc = new_service(admin)
    burst = sms([f"+4477009{i:05d}" for i in range(150)])
    assert isinstance(sent(admin, svc["key"], burst), list)
    assert call(admin, "PATCH", f"services/{svc['id']}", {"tps": 1}).status_code == 200
    # A bucket of 1 a second holds 1.5: one destination passes, the next within the second does not.
    assert isinstance(sent(admin, svc["key"], sms(["+447700900101"])), list)
    assert sent(admin, svc["key"], sms(["+447700900102"]))["code"] == "7020"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"id": "svc-dup", "key": KEY}, "key: the same key is used by another service"),
        ({"id": "svc-t", "tps": 0}, "tps: must be at least 1"),
        ({"id": "svc-t", "tps": "many"}, "tps: expected `int`, got `str`"),
        ({"id": "svc-t", "colour": "red"}, "colour: unknown key"),
        ({"id": "svc-t", "notify_url": "ftp://x"}, "notify_url: must be an http:// or https:// URL"),
        ({"key": "k-123"}, "missing required key `id`"),
        (
            {"id": "svc-t", "senderids": ["TIDINGS-SHOP"]},
            "senderids[0]: an alphanumeric sender id has at most 11 characters (12 given)",
        ),
        (
            {"id": "svc-t", "senderids": ["+12345678901234567"]},
            "senderids[0]: a numeric sender id has at most 16 digits (17 given)",
        ),
    ],
    ids=["dup-key", "tps-zero", "tps-type", "unknown-key", "bad-url", "no-id", "long-alpha", "long-num"],
)
def test_a_bad_service_is_refused_naming_the_key(admin: TidingsServer, body: dict[str, Any], problem: str):
    r = call(admin, "POST", "services", body)
    assert r.status_code == 400, r.text
    assert any(p.startswith(problem) for p in r.json()["problems"]), r.json()
    assert call(admin, "GET", "services/svc-t").status_code == 404, "nothing was written"


def test_bodies_that_are_not_entries(admin: TidingsServer):
    raw = admin.client.post("/admin/v1/services", content=b"{nope", headers=AUTH)
    assert raw.status_code == 400 and raw.json()["description"] == "the body is not valid JSON"
    assert call(admin, "POST", "services", [1, 2]).status_code == 400
    assert call(admin, "POST", "services", {"id": "svc-a", "key": "other-key-1"}).status_code == 409
    renamed = call(admin, "PUT", "services/svc-a", {"id": "svc-z", "key": KEY})
    assert renamed.status_code == 400 and "id cannot change" in renamed.json()["description"]
    assert call(admin, "PATCH", "services/svc-none", {"tps": 5}).status_code == 404
    assert call(admin, "DELETE", "templates/svc-a/otp").status_code == 404, "a template is service/channel/id"


def test_templates_are_added_changed_and_removed_without_restart(admin: TidingsServer):
    body = {"deliverychannel": "sms", "destination": [{"msisdn": ["+447700900123"]}]}
    body["message"] = {"template": "welcome", "parameters": {"name": "Ada"}}
    assert sent(admin, KEY, body)["code"] == "7004", "no such template yet"

    added = call(admin, "POST", "templates", {"id": "welcome", "service": "alpha", "text": "Hi {{name}}"})
    assert added.status_code == 201 and added.json()["service"] == "svc-a", added.text
    assert added.headers["location"].endswith("/admin/v1/templates/svc-a/sms/welcome")
    transid = sent(admin, KEY, body)[0]["transid"]
    assert admin.message(transid, KEY)["content"]["text"] == "Hi Ada"

    changed = call(admin, "PATCH", "templates/alpha/sms/welcome", {"text": "Hello {{name}}!"})
    assert changed.status_code == 200, changed.text
    transid = sent(admin, KEY, body)[0]["transid"]
    assert admin.message(transid, KEY)["content"]["text"] == "Hello Ada!"

    refused = call(admin, "POST", "services", {"id": "svc-t2", "key": "k-t2"})
    assert refused.status_code == 201
    owned = call(admin, "POST", "templates", {"id": "x", "service": "svc-t2", "text": "x"})
    assert owned.status_code == 201
    busy = call(admin, "DELETE", "services/svc-t2")
    assert busy.status_code == 409 and "templates svc-t2/sms/x" in busy.json()["description"]

    assert call(admin, "DELETE", "templates/svc-a/sms/welcome").status_code == 204
    assert sent(admin, KEY, body)["code"] == "7004"
    nobody = call(admin, "POST", "templates", {"id": "y", "service": "nobody", "text": "x"})
    assert nobody.status_code == 400 and nobody.json()["problems"] == ["service: no service named 'nobody'"]


def test_smart_links_are_added_and_removed_without_restart(admin: TidingsServer):
    body = sms(["+447700900123"], text="Go {{link_9}}")
    body["channels"]["smartlinks"] = [{"linkid": 9}]
    assert sent(admin, KEY, body)["code"] == "7004"
    link = {"linkid": 9, "service": "svc-a", "url": "https://example.com/nine"}
    assert call(admin, "POST", "smartlinks", link).status_code == 201
    transid = sent(admin, KEY, body)[0]["transid"]
    short = admin.message(transid, KEY)["content"]["text"].removeprefix("Go ")
    assert admin.client.get(short).headers["location"] == "https://example.com/nine"
    bad = call(admin, "PUT", "smartlinks/svc-a/9", {"url": "javascript:alert(1)"})
    assert bad.status_code == 400 and bad.json()["problems"] == ["url: must be an http:// or https:// URL"]
    assert call(admin, "DELETE", "smartlinks/svc-a/9").status_code == 204
    assert sent(admin, KEY, body)["code"] == "7004"


def test_a_group_added_takes_consent_and_caps_at_once(admin: TidingsServer):
    member = {"address": "+447700900555", "channel": "text", "consent": True}
    assert admin.client.post("/v1/groups/vip/members", json=member, headers={"key": KEY}).status_code == 404
    group = {"id": "vip", "service": "alpha", "kind": "opt-in", "caps": {"text": {"day": 1}}}
    assert call(admin, "POST", "contact-policy/groups", group).status_code == 201
    assert admin.client.post("/v1/groups/vip/members", json=member, headers={"key": KEY}).status_code == 204
    policy = {"contactPolicyGroup": "vip", "channelCheckConsent": True, "channelApplyFrequencyCap": True}
    first, second = (
        sent(admin, KEY, sms(["+447700900555"], contactPolicy=policy))[0]["transid"] for _ in range(2)
    )
    final = ("Delivered", "Failed")
    assert admin.wait_message(first, KEY, lambda v: v["status"] in final)["code"] == "7500"
    assert admin.wait_message(second, KEY, lambda v: v["status"] in final)["code"] == "9006"
    bad = call(admin, "PATCH", "contact-policy/groups/alpha/vip", {"caps": {"text": {"year": 5}}})
    assert bad.status_code == 400 and bad.json()["problems"] == ["caps.text.year: must be day, week or month"]
    listed = call(admin, "GET", "contact-policy/groups?service=alpha").json()["groups"]
    assert [g["id"] for g in listed] == ["vip"]


def test_the_commands_drive_a_running_server(admin: TidingsServer, tmp_path: Path):
    env = {**os.environ, "TIDINGS_URL": admin.url, "TIDINGS_ADMIN_TOKEN": TOKEN}
    env.pop("TIDINGS_CONFIG", None)

    def tidings(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "tidings", *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)

    added = tidings("services", "add", "id=svc-cli", "name=cli", "senderids=ACME,CONNCT", "tps=20")
    assert added.returncode == 0, added.stderr
    key = json.loads(added.stdout)["key"]
    assert json.loads(added.stdout)["senderids"] == ["ACME", "CONNCT"]
    assert isinstance(sent(admin, key, sms(["+447700900101"])), list)
    listed = tidings("services", "list")
    assert "svc-cli  [admin]" in listed.stdout and key not in listed.stdout, "keys are not listed in full"
    assert tidings("services", "update", "svc-cli", "active=false").returncode == 0
    assert sent(admin, key, sms(["+447700900101"]))["code"] == "7007"
    dup = tidings("services", "add", "id=svc-cli2", f"key={key}")
    assert dup.returncode == 1 and "key: the same key is used by another service" in dup.stderr
    assert tidings("templates", "add", "id=t1", "service=cli", "text=Hi").returncode == 0
    assert "svc-cli/sms/t1  [admin]" in tidings("templates", "list", "--service", "cli").stdout
    assert tidings("services", "remove", "svc-cli").returncode == 1, "it still owns a template"
    assert tidings("templates", "remove", "svc-cli/sms/t1").returncode == 0
    assert tidings("services", "remove", "svc-cli").returncode == 0
    wrong = subprocess.run(
        [sys.executable, "-m", "tidings", "services", "list"],
        env={**env, "TIDINGS_ADMIN_TOKEN": "wrong"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert wrong.returncode == 1 and "the admin token is wrong" in wrong.stderr
    config = tmp_path / "t.toml"
    config.write_text(f'[server]\nport = {admin.port}\nadmin_token = "{TOKEN}"\n')
    bare = {k: v for k, v in env.items() if not k.startswith("TIDINGS_")}
    from_file = subprocess.run(
        [sys.executable, "-m", "tidings", "services", "--config", str(config), "list"],
        env=bare,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert from_file.returncode == 0 and "svc-a  [config]" in from_file.stdout, from_file.stderr


def test_the_file_seeds_at_each_start_and_admin_entries_survive(tmp_path: Path):
    s = TidingsServer(tmp_path, CONFIG).start()
    try:
        svc = new_service(s, name="kept")
        assert call(s, "PATCH", "templates/svc-a/sms/otp", {"text": "Changed {{code}}"}).status_code == 200
        assert s.stop() == 0
        assert s.config_path is not None
        s.config_path.write_text(CONFIG.replace('text = "Code {{code}}"', 'text = "New {{code}}"'))
        s.start()
        templates = call(s, "GET", "templates").json()["templates"]
        assert [(t["id"], t["text"], t["origin"]) for t in templates] == [("otp", "New {{code}}", "config")]
        assert call(s, "GET", f"services/{svc['id']}").json()["key"] == svc["key"]
        assert isinstance(sent(s, svc["key"], sms(["+447700900101"])), list), "admin services survive"
        assert s.stop() == 0
        s.config_path.write_text(CONFIG.split("[[templates]]")[0])
        s.start()
        assert call(s, "GET", "templates").json()["templates"] == [], "the file no longer names it"
        assert s.stop() == 0
    finally:
        s.close()
    output = s.output()
    assert TOKEN not in output and svc["key"] not in output and KEY not in output
