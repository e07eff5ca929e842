"""The admin commands take --url, --token and --config after the subcommand as well as before it
(`tidings services list --url U`), for every command group: what a user types, what it prints, its exit
status."""

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import sms
from tests.support.server import TidingsServer
from tidings.cli import main

TOKEN = "admin-token-" + uuid.uuid4().hex
CONFIG = f"""
[server]
admin_token = "{TOKEN}"

[[services]]
id = "svc-a"
name = "alpha"
key = "key-admin-cli-alpha"
senderids = ["CONNCT"]
"""
BARE = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TidingsServer]:
    s = TidingsServer(tmp_path_factory.mktemp("admin-cli"), CONFIG).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()


def tidings(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`tidings ARGS` as a user types it, run in this process (click's runner) with exactly `env`'s
    TIDINGS_* variables: a new interpreter per call spent most of this file's time importing."""
    wanted = BARE if env is None else env
    overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TIDINGS_")}
    overrides.update({k: v for k, v in wanted.items() if k.startswith("TIDINGS_")})
    result = CliRunner().invoke(main, list(args), env=overrides, catch_exceptions=False)
    return subprocess.CompletedProcess(["tidings", *args], result.exit_code, result.stdout, result.stderr)


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    r = tidings(*args, env=env)
    assert r.returncode == 0, f"tidings {' '.join(args)}: {r.stderr}"
    assert "No such option" not in r.stderr
    return r.stdout


# One entry per command group: how to add it, its name, and a field to update.
GROUPS = {
    "services": (["id=svc-after", "name=after", "senderids=CONNCT"], "svc-after", "tps=7"),
    "templates": (
        ["service=alpha", "id=after", "text=Hi {{name}}"],
        "svc-a/sms/after",
        "text=Hello {{name}}",
    ),
    "smartlinks": (
        ["service=alpha", "linkid=42", "url=https://example.com/a"],
        "svc-a/42",
        "url=https://example.com/b",
    ),
    "groups": (["service=alpha", "id=after", "kind=opt-out"], "svc-a/after", "kind=opt-in"),
}


@pytest.mark.parametrize("group", list(GROUPS))
def test_every_subcommand_takes_the_server_options_after_it(server: TidingsServer, group: str):
    where = ["--url", server.url, "--token", TOKEN]
    fields, name, change = GROUPS[group]
    added = json.loads(ok(group, "add", *fields, *where))
    assert added["origin"] == "admin", added
    assert name.split("/")[-1] in ok(group, "list", *where)
    assert name.split("/")[-1] in ok(group, "list", "--service", "alpha", *where) or group == "services"
    listed = json.loads(ok(group, "list", "--json", *where))
    assert any(entry["origin"] == "admin" for entry in listed)
    updated = json.loads(ok(group, "update", name, change, *where))
    field, _, value = change.partition("=")
    assert str(updated[field]) == value, updated
    assert json.loads(ok(group, "show", name, *where))[field] == updated[field]
    assert ok(group, "remove", name, *where).strip() == f"deleted {group} {name}"
    gone = tidings(group, "show", name, *where)
    assert gone.returncode == 1 and "HTTP 404" in gone.stderr, gone.stderr


def test_options_before_after_and_split_around_the_subcommand(server: TidingsServer, tmp_path: Path):
    before = ok("services", "--url", server.url, "--token", TOKEN, "list")
    assert "svc-a  [config]" in before
    assert ok("services", "--url", server.url, "list", "--token", TOKEN) == before
    config = tmp_path / "admin.toml"
    config.write_text(f'[server]\nport = {server.port}\nadmin_token = "{TOKEN}"\n')
    assert ok("services", "list", "--config", str(config)) == before
    assert ok("templates", "list", "--config", str(config), "--service", "alpha") == ""


def test_options_after_the_subcommand_win_over_before_and_the_environment(server: TidingsServer):
    env = {**BARE, "TIDINGS_URL": server.url, "TIDINGS_ADMIN_TOKEN": "wrong"}
    wrong = tidings("services", "list", env=env)
    assert wrong.returncode == 1 and "the admin token is wrong" in wrong.stderr
    assert "svc-a  [config]" in ok("services", "list", "--token", TOKEN, env=env)
    assert "svc-a  [config]" in ok("services", "--token", "wrong", "list", "--token", TOKEN, env=env)
    elsewhere = tidings(
        "services", "--url", server.url, "list", "--url", "http://127.0.0.1:1", "--token", TOKEN
    )
    assert elsewhere.returncode == 1 and "cannot reach http://127.0.0.1:1" in elsewhere.stderr


def test_a_service_added_with_options_after_sends_at_once(server: TidingsServer):
    added = json.loads(
        ok("services", "add", "id=svc-now", "senderids=CONNCT", "--url", server.url, "--token", TOKEN)
    )
    answer = server.send(sms(["+447700900101"]), added["key"]).json()["response"]
    assert isinstance(answer, list) and answer[0]["code"] == "1001", answer
