"""Apps (`[[apps]]`) as an operator meets them: the config file's apps in the admin API, apps added,
changed and deleted through it, bad entries named by key (and by line in `check-config`), and the
secrets write-only: never in an answer, never in the log, kept when a change leaves them out."""

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.server import TidingsServer

TOKEN = "admin-token-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Every secret this file gives Tidings; none may come back in an answer or reach the log.
CLIENT_SECRET = base64.b64encode(b"client-secret-" + uuid.uuid4().hex.encode()).decode()
WNS_SECRET = "wns-secret-" + uuid.uuid4().hex
NEW_SECRET = base64.b64encode(b"rotated-" + uuid.uuid4().hex.encode()).decode()
NEW_WNS_SECRET = "wns-rotated-" + uuid.uuid4().hex
SECRETS = (CLIENT_SECRET, WNS_SECRET, NEW_SECRET, NEW_WNS_SECRET)

CONFIG = f"""
[server]
admin_token = "{TOKEN}"

[[services]]
id = "svc-a"
name = "alpha"
key = "key-apps-alpha-01"

[[services]]
id = "svc-b"
name = "beta"
key = "key-apps-beta-01"

[[apps]]
id = "app-file"
service = "alpha"
client_secret = "{CLIENT_SECRET}"

[apps.fcm]
project_id = "demo-project"
service_account_file = "keys/fcm.json"

[apps.apns]
team_id = "TEAM123456"
key_id = "KEY1234567"
key_file = "keys/AuthKey.p8"
topic = "com.example.app"

[apps.webpush]
vapid_private_key_file = "keys/vapid.pem"
subject = "mailto:ops@example.com"

[apps.wns]
client_id = "ms-app://s-1-15-2-1"
client_secret = "{WNS_SECRET}"
"""


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def write_keys(folder: Path) -> None:
    """The key files an app's blocks name: a service-account file, an APNs .p8 and a VAPID key."""
    folder.mkdir(parents=True, exist_ok=True)
    account = {
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": "kid-1",
        "private_key": _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "client_email": "push@demo-project.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    (folder / "fcm.json").write_text(json.dumps(account))
    (folder / "AuthKey.p8").write_text(_pem(ec.generate_private_key(ec.SECP256R1())))
    (folder / "vapid.pem").write_text(_pem(ec.generate_private_key(ec.SECP256R1())))


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TidingsServer]:
    # The config file lives in a folder of its own, below the server's working directory: its apps'
    # relative key files are read from the file's folder, not from where Tidings runs.
    work = tmp_path_factory.mktemp("apps")
    conf = work / "conf"
    write_keys(conf / "keys")
    (conf / "tidings.toml").write_text(CONFIG)
    s = TidingsServer(work, None, ["--config", str(conf / "tidings.toml")]).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()
    leaked = [secret for secret in (*SECRETS, TOKEN) if secret in s.output()]
    assert not leaked, "secrets are never logged"


def call(server: TidingsServer, method: str, path: str, body: Any = None) -> httpx.Response:
    r = server.client.request(method, f"/admin/v1/{path}", json=body, headers=AUTH)
    assert not [secret for secret in SECRETS if secret in r.text], f"a secret came back: {r.text}"
    return r


def stored(server: TidingsServer, app_id: str) -> dict[str, Any]:
    """What the catalogue holds for an app, secrets included (the admin API never shows them)."""
    rows = server.rows("SELECT body FROM catalogue WHERE kind = 'apps' AND name = ?", app_id)
    return dict(json.loads(rows[0][0]))


def new_app(**fields: Any) -> dict[str, Any]:
    return {"id": f"app-{uuid.uuid4().hex[:8]}", "service": "beta", **fields}


def test_the_file_s_apps_are_listed_without_their_secrets(apps: TidingsServer):
    listing = call(apps, "GET", "apps").json()["apps"]
    app = next(a for a in listing if a["id"] == "app-file")
    assert app["service"] == "svc-a" and app["origin"] == "config"
    assert app["fcm"]["project_id"] == "demo-project"
    assert (
        app["apns"]["topic"] == "com.example.app" and app["apns"]["base_url"] == "https://api.push.apple.com"
    )
    assert app["wns"] == {
        "client_id": "ms-app://s-1-15-2-1",
        "token_url": "https://login.live.com/accesstoken.srf",
        "allow_hosts": [],
        "ca_file": "",
    }
    assert "client_secret" not in app
    assert Path(app["base_dir"]) == apps.workdir.resolve() / "conf"
    assert call(apps, "GET", "apps/app-file").json() == app
    assert [a["id"] for a in call(apps, "GET", "apps?service=alpha").json()["apps"]] == ["app-file"]
    assert "app-file" not in [a["id"] for a in call(apps, "GET", "apps?service=svc-b").json()["apps"]]
    assert stored(apps, "app-file")["client_secret"] == CLIENT_SECRET
    assert stored(apps, "app-file")["wns"]["client_secret"] == WNS_SECRET


def test_an_app_is_added_changed_and_deleted(apps: TidingsServer):
    body = new_app(
        client_secret=CLIENT_SECRET, wns={"client_id": "ms-app://s-1", "client_secret": WNS_SECRET}
    )
    added = call(apps, "POST", "apps", body)
    assert added.status_code == 201, added.text
    assert added.headers["location"].endswith(f"/admin/v1/apps/{body['id']}")
    shown = added.json()
    assert shown["service"] == "svc-b" and shown["origin"] == "admin" and "base_dir" not in shown
    assert "client_secret" not in shown and "client_secret" not in shown["wns"]
    name = f"apps/{body['id']}"

    # A listing edited and sent back holds no secrets: the stored ones stay.
    edited = {**shown, "wns": {**shown["wns"], "client_id": "ms-app://s-2"}}
    assert call(apps, "PUT", name, edited).status_code == 200
    kept = stored(apps, body["id"])
    assert kept["client_secret"] == CLIENT_SECRET and kept["wns"]["client_secret"] == WNS_SECRET
    assert kept["wns"]["client_id"] == "ms-app://s-2"

    # PATCH merges within a block too; a secret given replaces the stored one.
    patched = call(
        apps, "PATCH", name, {"wns": {"client_secret": NEW_WNS_SECRET}, "client_secret": NEW_SECRET}
    )
    assert patched.status_code == 200 and patched.json()["wns"]["client_id"] == "ms-app://s-2", patched.text
    rotated = stored(apps, body["id"])
    assert rotated["client_secret"] == NEW_SECRET and rotated["wns"]["client_secret"] == NEW_WNS_SECRET
    dropped = call(apps, "PATCH", name, {"wns": None})
    assert dropped.status_code == 200 and dropped.json()["wns"] is None
    assert call(apps, "PATCH", name, {"client_secret": ""}).status_code == 200
    assert stored(apps, body["id"])["client_secret"] == ""

    # A service that owns an app stays until the app goes.
    busy = call(apps, "DELETE", "services/svc-b")
    assert busy.status_code == 409 and f"apps {body['id']}" in busy.json()["description"]
    assert call(apps, "DELETE", name).status_code == 204
    assert call(apps, "GET", name).status_code == 404


def test_an_app_from_the_file_changed_by_the_admin_api_keeps_its_folder(apps: TidingsServer):
    shown = call(apps, "GET", "apps/app-file").json()
    shown["fcm"]["project_id"] = "other-project"
    changed = call(apps, "PUT", "apps/app-file", shown)
    assert changed.status_code == 200, changed.text  # keys/fcm.json is still read from conf/
    assert changed.json()["base_dir"] == shown["base_dir"] and changed.json()["origin"] == "config"
    assert stored(apps, "app-file")["wns"]["client_secret"] == WNS_SECRET


def test_an_app_added_through_the_api_reads_its_files_from_the_working_directory(apps: TidingsServer):
    fcm = {"project_id": "demo-project", "service_account_file": "keys/fcm.json"}
    missing = call(apps, "POST", "apps", new_app(fcm=fcm))
    assert missing.status_code == 400
    [problem] = missing.json()["problems"]
    assert problem.startswith(f"fcm.service_account_file: cannot read {Path('keys/fcm.json')}"), problem
    found = call(apps, "POST", "apps", new_app(fcm={**fcm, "service_account_file": "conf/keys/fcm.json"}))
    assert found.status_code == 201, found.text


def test_an_app_may_share_its_id_with_a_service_name(apps: TidingsServer):
    assert call(apps, "POST", "apps", {"id": "alpha", "service": "beta"}).status_code == 201
    assert call(apps, "GET", "apps/alpha").json()["service"] == "svc-b"
    assert call(apps, "DELETE", "apps/alpha").status_code == 204


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"service": "nobody"}, "service: no service named 'nobody'"),
        (
            {"client_secret": "not base64!"},
            "client_secret: must be Base64 (its decoded bytes sign user tokens)",
        ),
        ({"colour": "red"}, "colour: unknown key"),
        ({"wns": {"client_id": "ms-app://s", "client_secret": "x", "colour": 1}}, "wns.colour: unknown key"),
        ({"wns": {"client_id": "ms-app://s"}}, "wns: missing required key `client_secret`"),
        ({"messenger": {"page_id": "1"}}, "messenger: missing required key `access_token`"),
        ({"abc": {"business_id": "1"}}, "abc: unknown key"),  # Apple Messages for Business: not yet
        (
            {
                "apns": {
                    "team_id": "T",
                    "key_id": "K",
                    "key_file": "conf/keys/AuthKey.p8",
                    "topic": "t",
                    "base_url": "ftp://apple",
                }
            },
            "apns.base_url: must be an http:// or https:// URL",
        ),
    ],
)
def test_a_bad_app_is_refused_naming_the_key(apps: TidingsServer, body: dict[str, Any], problem: str):
    r = call(apps, "POST", "apps", new_app(**body))
    assert r.status_code == 400, r.text
    assert [p for p in r.json()["problems"] if p.startswith(problem)], r.json()


def test_an_app_id_is_unique(apps: TidingsServer):
    again = call(apps, "POST", "apps", {"id": "app-file", "service": "beta"})
    assert again.status_code == 409 and "apps entry app-file already exists" in again.json()["description"]
    empty = call(apps, "POST", "apps", {"id": " ", "service": "beta"})
    assert empty.status_code == 400 and empty.json()["problems"] == ["id: must not be empty"]


def test_check_config_names_a_bad_app_by_line(tmp_path: Path):
    write_keys(tmp_path / "keys")
    cfg = tmp_path / "bad.toml"
    cfg.write_text(
        CONFIG
        + """
[[apps]]
id = "app-file"
service = "nobody"
client_secret = "%%%"

[apps.fcm]
project_id = "p"
service_account_file = "keys/nothing.json"
colour = "red"
"""
    )
    first = len(CONFIG.splitlines()) + 2  # the second [[apps]] header
    r = subprocess.run(
        [sys.executable, "-m", "tidings", "check-config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1, r.stdout
    for expected in [
        f"{cfg}:{first + 1}: apps[1].id: duplicate app id 'app-file'",
        f"{cfg}:{first + 2}: apps[1].service: no service named 'nobody'",
        f"{cfg}:{first + 3}: apps[1].client_secret: must be Base64",
        f"{cfg}:{first + 7}: apps[1].fcm.service_account_file: cannot read {tmp_path / 'keys/nothing.json'}",
        f"{cfg}:{first + 8}: apps[1].fcm.colour: unknown key",
    ]:
        assert expected in r.stderr, f"{expected!r} not in:\n{r.stderr}"
    assert not [secret for secret in SECRETS if secret in r.stderr + r.stdout]
