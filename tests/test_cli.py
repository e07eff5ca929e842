"""The `tidings` command as a user meets it: zero-config start, check-config, bad configs, flags."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.server import TidingsServer, free_port

TIDINGS = [sys.executable, "-m", "tidings"]


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TIDINGS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.sqlite_only
def test_zero_config_start_prints_a_curl_that_works(tmp_path: Path):
    server = TidingsServer(tmp_path, None).start()
    try:
        out = server.wait_stdout("curl ")
        curl = next(line.strip() for line in out.splitlines() if line.strip().startswith("curl "))
        answer = subprocess.run(shlex.split(curl), capture_output=True, text=True, timeout=30, check=True)
        assert json.loads(answer.stdout)["response"][0]["code"] == "1001"
        key = shlex.split(curl)[shlex.split(curl).index("-H") + 1].removeprefix("key: ")
        assert (tmp_path / "tidings.db").exists()
        server.stop()
        server.start()  # the demo service persists: same key on the next start
        server.wait_stdout(f"key {key}")
    finally:
        server.close()


def test_check_config_accepts_the_contract_example(tmp_path: Path):
    cfg = tmp_path / "ok.toml"
    cfg.write_text(CONTRACT_EXAMPLE)
    r = run("check-config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout


CONTRACT_EXAMPLE = """
[server]
host = "127.0.0.1"
port = 8080
database = "sqlite:///tidings.db"        # or postgresql://user@host/db
public_url = "http://127.0.0.1:8080"     # base of short links and console links

[notify]
timeout_s = 10          # per notification POST
retries = 3             # retries after the first try
retry_interval_s = 60   # first retry delay (backoff may grow from here)

[sandbox]
delay_ms = 200          # time from Submitted to the final status in the sandbox

[[services]]
id = "svc-demo"                   # service id; a JWT's `iss` may be this id or the key
name = "demo"
key = "demo-key"                  # service key: `key:` header
secret = "c2VjcmV0LXNlY3JldA=="   # service secret, Base64; its decoded bytes sign HS256 JWTs
active = true
notify_url = ""                   # default notify URL when a request names none
tps = 1000                        # destinations per second; also caps destinations per request
senderids = ["CONNCT"]            # sender ids this service may use on SMS
inbound_url = "http://127.0.0.1:9000/mo"     # receives MO messages for this service's numbers
numbers = ["+447700900000"]                  # numbers (long/short codes) that belong to the service

[[smsc]]
name = "carrier-a"
host = "127.0.0.1"
port = 2775
system_id = "tidings"
password = "secret"
system_type = ""
bind = "transceiver"        # or "transmitter" + "receiver"
window = 64                 # submit_sm in flight before waiting for responses
tps = 0                     # submits per second on this bind; 0 = unlimited
source_ton = 5              # optional overrides of TON/NPI
source_npi = 0
dlt_tlv = 0x1400            # optional: TLV tag that carries the DLT template id

[routes]
sms = "carrier-a"           # the connector serving a channel; "sandbox" when absent

[[templates]]
id = "otp"                        # referenced by message.template (v1) or content with contentType template
service = "demo"                  # owning service name
channel = "sms"
text = "Your code is {{code}}. It expires in {{minutes}} minutes."

[[smartlinks]]
linkid = 5
service = "demo"
url = "https://example.com/app"   # default target
ios_url = "https://apps.apple.com/app/id0"       # optional, chosen by User-Agent
android_url = "https://play.google.com/store/apps/details?id=x"   # optional
expired_url = "https://example.com/expired"      # after validity

[[contact_policy.groups]]
id = "marketing"
service = "demo"
kind = "opt-in"                   # opt-in: consent needed; opt-out: everyone unless opted out
caps = { text = { day = 3, week = 10 }, email = { day = 1 } }   # frequency caps per channel category
"""

BAD_SMPP = """[[services]]
id = "a"
key = "k1"
inbound_url = "ftp://x"
numbers = ["+447700900000", "call me"]

[[services]]
id = "b"
key = "k2"
numbers = ["447700900000"]

[[smsc]]
name = "sandbox"
system_id = "a-system-id-far-too-long"
password = "123456789"
bind = "both"
long_messages = "split"
window = 0
dlt_tlv = 0x0424

[routes]
sms = "nowhere"
fax = "sandbox"
"""


def test_check_config_lists_smpp_and_inbound_problems(tmp_path: Path):
    cfg = tmp_path / "smpp.toml"
    cfg.write_text(BAD_SMPP)
    r = run("check-config", str(cfg))
    assert r.returncode == 1
    for expected in [
        f"{cfg}:4: services[0].inbound_url: must be an http:// or https:// URL",
        f"{cfg}:5: services[0].numbers[1]: must be a phone number or short code",
        f"{cfg}:10: services[1].numbers[0]: already belongs to another service",
        f"{cfg}:13: smsc[0].name: must be a non-empty name other than 'sandbox'",
        f"{cfg}:14: smsc[0].system_id: is longer than SMPP 3.4 allows (15 characters)",
        f"{cfg}:15: smsc[0].password: is longer than SMPP 3.4 allows (8 characters)",
        f"{cfg}:16: smsc[0].bind: must be one of transceiver, transmitter+receiver",
        f"{cfg}:17: smsc[0].long_messages: must be one of udh, sar, payload",
        f"{cfg}:18: smsc[0].window: must be at least 1",
        f"{cfg}:19: smsc[0].dlt_tlv: must be a vendor-specific TLV tag",
        f"{cfg}:22: routes.sms: no connector named 'nowhere'",
        f"{cfg}:23: routes.fax: unknown channel",
    ]:
        assert expected in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


BAD = """[server]
port = "eighty"
colour = "blue"

[notify]
retries = -1

[[services]]
id = "a"
key = "k1"
tps = 0

[[services]]
id = "a"
key = "k2"
secret = "not base64!"
senderids = "CONNCT"

[[services]]
name = "no id or key"
"""


def test_check_config_lists_every_problem_with_key_and_line(tmp_path: Path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(BAD)
    r = run("check-config", str(cfg))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    for expected in [
        f"{cfg}:2: server.port: expected `int`, got `str`",
        f"{cfg}:3: server.colour: unknown key",
        f"{cfg}:6: notify.retries: must be 0 or more",
        f"{cfg}:11: services[0].tps: must be at least 1",
        f"{cfg}:14: services[1].id: duplicate service id 'a'",
        f"{cfg}:17: services[1].senderids: expected `array`, got `str`",
        f"{cfg}:19: services[2]: missing required key `id`",
        f"{cfg}:19: services[2]: missing required key `key`",
    ]:
        assert expected in r.stderr, r.stderr


def test_value_problems_are_listed_together(tmp_path: Path):
    cfg = tmp_path / "values.toml"
    cfg.write_text(
        BAD.replace('port = "eighty"\ncolour = "blue"', "port = 70000")
        .split("[[services]]\nname")[0]
        .replace('senderids = "CONNCT"', 'senderids = ["CONNCT", ""]')
    )
    r = run("check-config", str(cfg))
    assert r.returncode == 1
    for expected in [
        f"{cfg}:2: server.port: must be between 1 and 65535",
        f"{cfg}:5: notify.retries: must be 0 or more",
        f"{cfg}:10: services[0].tps: must be at least 1",
        f"{cfg}:13: services[1].id: duplicate service id 'a'",
        f"{cfg}:15: services[1].secret: must be Base64",
        f"{cfg}:16: services[1].senderids[1]: must not be empty",
    ]:
        assert expected in r.stderr, r.stderr


def test_toml_syntax_error_names_the_line(tmp_path: Path):
    cfg = tmp_path / "syntax.toml"
    cfg.write_text('[server]\nport = 8080\nhost = "unterminated\n')
    r = run("check-config", str(cfg))
    assert r.returncode == 1
    assert "line 3" in r.stderr and "Traceback" not in r.stderr


def test_serve_with_a_bad_config_exits_1_without_traceback(tmp_path: Path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(BAD)
    r = run("serve", "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 1
    assert "server.port" in r.stderr and "Traceback" not in r.stderr
    r = run("check-config", str(tmp_path / "missing.toml"))
    assert r.returncode == 1 and "cannot read" in r.stderr


@pytest.mark.sqlite_only
def test_config_from_environment_and_flags_override_it(tmp_path: Path):
    cfg = tmp_path / "env.toml"
    cfg.write_text(CONTRACT_EXAMPLE.replace("port = 8080", "port = 1"))
    port = free_port()
    env = {**os.environ, "TIDINGS_CONFIG": str(cfg)}
    proc = subprocess.Popen(
        [*TIDINGS, "serve", "--port", str(port), "--db", "sqlite:///other.db"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert f"http://127.0.0.1:{port}" in line and "sqlite:///other.db" in line
        r = httpx.post(
            f"http://127.0.0.1:{port}/resources/v1/messaging",
            headers={"key": "demo-key"},
            json={
                "deliverychannel": "sms",
                "channels": {"sms": {"text": "x"}},
                "destination": [{"msisdn": ["+447700900123"]}],
            },
        )
        assert r.json()["response"][0]["code"] == "1001"
        assert (tmp_path / "other.db").exists() and not (tmp_path / "tidings.db").exists()
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
        proc.stdout and proc.stdout.close()
        proc.stderr and proc.stderr.close()


@pytest.mark.sqlite_only
def test_a_second_server_on_the_same_database_refuses_to_start(tmp_path: Path):
    first = TidingsServer(tmp_path, None).start()
    try:
        r = run("serve", "--port", str(free_port()), cwd=tmp_path)
        assert r.returncode == 1
        assert "in use by another Tidings process" in r.stderr and "Traceback" not in r.stderr
    finally:
        first.close()


@pytest.mark.sqlite_only
def test_an_unusable_database_is_a_clear_error(tmp_path: Path):
    (tmp_path / "junk.db").write_text("not a database")
    for url, words in [  # tmp_path is absolute, so these are sqlite:////...
        (f"sqlite:///{tmp_path}/missing/dir/t.db", "No such file or directory"),
        (f"sqlite:///{tmp_path}/junk.db", "file is not a database"),
    ]:
        r = run(
            "serve",
            "--port",
            str(free_port()),
            "--db",
            url,
            cwd=tmp_path,
        )
        assert r.returncode == 1, r.stderr
        assert words in r.stderr and "Traceback" not in r.stderr


def test_a_port_in_use_is_a_clear_error(tmp_path: Path):
    (tmp_path / "a").mkdir()
    first = TidingsServer(tmp_path / "a", None).start()
    try:
        (tmp_path / "b").mkdir()
        r = run("serve", "--port", str(first.port), cwd=tmp_path / "b")
        assert r.returncode == 1
        assert f"cannot listen on 127.0.0.1:{first.port}" in r.stderr and "Traceback" not in r.stderr
    finally:
        first.close()


def test_a_bounce_listener_that_cannot_listen_is_a_clear_error(tmp_path: Path):
    # 192.0.2.1 (TEST-NET-1) is no address of this host: the bind fails at once, nothing is sent.
    (tmp_path / "t.toml").write_text(
        """
[[services]]
id = "svc"
key = "k-0123456789"
email_from = ["news@example.com"]

[[smtp]]
name = "relay"
port = 2525
security = "none"

[email]
bounce_domain = "bounces.example.com"
bounce_host = "192.0.2.1"
bounce_port = 2526

[routes]
email = "relay"
"""
    )
    r = run("serve", "--port", str(free_port()), "--config", "t.toml", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "[email] bounce listener: cannot listen on 192.0.2.1:2526: " in r.stderr, r.stderr
    # It ended (before, the notification sender it had started kept it waiting for ever: `run` times out).
    assert "Traceback" not in r.stderr


def test_check_config_checks_templates(tmp_path: Path):
    cfg = tmp_path / "templates.toml"
    cfg.write_text(
        """[[services]]
id = "svc-a"
name = "alpha"
key = "k1"

[[templates]]
id = "otp"
service = "nobody"
text = "Your code is {{code}}"

[[templates]]
id = "otp2"
service = "alpha"
channel = "fax"
text = ""
"""
    )
    r = run("check-config", str(cfg))
    assert r.returncode == 1
    for expected in [
        f"{cfg}:8: templates[0].service: no service named 'nobody'",
        f"{cfg}:14: templates[1].channel: unknown channel",
        f"{cfg}:15: templates[1].text: must not be empty",
    ]:
        assert expected in r.stderr, r.stderr


ADMIN_TOKEN = "admin-token-cli-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SEND = {
    "deliverychannel": "sms",
    "channels": {"sms": {"text": "x", "senderid": "CONNCT"}},
    "destination": [{"msisdn": ["+447700900123"]}],
}


def banner_command(out: str, starts: str) -> list[str]:
    """The command a banner line tells the user to run, ready to run here (`tidings` is this checkout's)."""
    line = next(line.strip() for line in out.splitlines() if starts in line)
    words = shlex.split(line[line.index(starts) :])
    assert words[0] == "curl" or os.path.basename(words[0]) == "tidings", line
    return words if words[0] == "curl" else [*TIDINGS, *words[1:]]


def test_serve_without_config_names_the_services_left_and_how_to_get_a_key(tmp_path: Path):
    """A database a config file seeded, with a service the admin API added: started without the file,
    the banner names that service and says how to read its key, and following it gives a key that works."""
    server = TidingsServer(
        tmp_path,
        f'[server]\nadmin_token = "{ADMIN_TOKEN}"\n\n'
        '[[services]]\nid = "svc-demo"\nname = "demo"\nkey = "demo-key"\nsenderids = ["CONNCT"]\n',
    )
    try:
        server.start()
        shop = {"id": "svc-shop", "name": "shop", "senderids": ["CONNCT"]}
        added = server.client.post("/admin/v1/services", json=shop, headers=ADMIN)
        assert added.status_code == 201, added.text
        key = added.json()["key"]
        assert server.stop() == 0

        config = server.config_path
        server.config_path = None  # the README's first command again: no config file
        server.start()
        out = server.wait_stdout("svc-shop")
        assert 'svc-shop ("shop")' in out and key not in out, out
        assert "admin API is off" in out and "admin_token" in out, out
        assert server.stop() == 0

        assert config is not None
        config.write_text(f'[server]\nadmin_token = "{ADMIN_TOKEN}"\n')  # the admin API on, no services
        server.config_path = config
        server.start()
        out = server.wait_stdout("tidings services show")
        shown = subprocess.run(
            banner_command(out, "tidings services show"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["key"] == key
        assert server.send(SEND, key).json()["response"][0]["code"] == "1001"
    finally:
        server.close()


def test_serve_makes_a_demo_service_when_no_active_service_remains(tmp_path: Path):
    """Every service switched off: the next start without services in the file makes a new demo
    service and prints a curl that is accepted, instead of the key of a service that refuses it."""
    server = TidingsServer(tmp_path, f'[server]\nadmin_token = "{ADMIN_TOKEN}"\n')
    try:
        server.start()
        out = server.wait_stdout("curl ")
        off = server.client.patch("/admin/v1/services/svc-demo", json={"active": False}, headers=ADMIN)
        assert off.status_code == 200, off.text
        assert server.stop() == 0

        server.start()
        out = server.wait_stdout("curl ")
        assert "(id svc-demo-2)" in out, out
        answer = subprocess.run(banner_command(out, "curl "), capture_output=True, text=True, timeout=30)
        assert json.loads(answer.stdout)["response"][0]["code"] == "1001", answer.stdout
        assert server.stop() == 0

        server.start()  # the new demo service is the one shown from now on
        out = server.wait_stdout("curl ")
        assert "(id svc-demo-2)" in out, out
    finally:
        server.close()


def test_serve_says_so_when_the_file_has_no_active_service(tmp_path: Path):
    server = TidingsServer(tmp_path, '[[services]]\nid = "svc-a"\nkey = "k-a"\nactive = false\n')
    try:
        server.start()
        out = server.wait_stdout("No active service")
        assert "svc-a" in out and "active = true" in out, out
        assert server.send(SEND, "k-a").json()["response"]["code"] == "7007"
    finally:
        server.close()
