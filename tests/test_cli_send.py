"""`tidings send` and `tidings status` as a user runs them, against a real `tidings serve`."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.support.server import TidingsServer
from tidings.cli import main

KEY = "cli-send-key"
CONFIG = f"""
[sandbox]
delay_ms = 50

[[services]]
id = "svc-cli"
key = "{KEY}"
senderids = ["CONNCT"]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TidingsServer]:
    s = TidingsServer(tmp_path_factory.mktemp("cli-send"), CONFIG).start()
    yield s
    s.close()


def tidings(server: TidingsServer, *args: str, key: str = KEY) -> Result:
    """The command as its console script runs it (`tidings.cli:main`), in this process: a new
    interpreter per call would spend seconds importing."""
    env = {"TIDINGS_URL": server.url, "TIDINGS_KEY": key, "COLUMNS": "100"}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def accepted_ids(stdout: str) -> dict[str, str]:
    """address -> transid from the lines `[line N: ]ADDRESS: accepted TRANSID`."""
    found = {}
    for line in stdout.splitlines():
        if ": accepted " in line:
            head, transid = line.rsplit(": accepted ", 1)
            found[head.rsplit(": ", 1)[-1]] = transid
    return found


def test_send_from_a_csv_with_substitutions_reports_each_row_and_fails_when_one_is_refused(
    server: TidingsServer, tmp_path: Path
):
    rows = tmp_path / "people.csv"
    rows.write_text("msisdn,name,code\n+447700900201,Ann,111\n12,Bob,222\n+447700900203,Cy,333\n")
    r = tidings(
        server, "send", "sms", "--from", "CONNCT", "--text", "Hi {{name}}, code {{code}}", "--csv", str(rows)
    )
    assert r.exit_code == 1, r.output
    assert "line 3: 12: refused 7004 Invalid parameter - to[0].msisdn[0]" in r.stdout
    assert r.stdout.splitlines()[-1] == "2 accepted, 1 refused, of 3"
    assert "sending" in r.stderr and "3/3" in r.stderr and "1 refused" in r.stderr  # the progress bar
    ids = accepted_ids(r.stdout)
    assert set(ids) == {"+447700900201", "+447700900203"}
    for address, text in (("+447700900201", "Hi Ann, code 111"), ("+447700900203", "Hi Cy, code 333")):
        view = server.message(ids[address], KEY)
        assert view["destination"] == address and text in json.dumps(view["content"])


def test_send_to_addresses_with_a_json_body_exits_0_when_all_are_accepted(
    server: TidingsServer, tmp_path: Path
):
    content = tmp_path / "content.json"
    content.write_text(json.dumps({"type": "text", "text": "from a file"}))
    r = tidings(
        server,
        "send",
        "sms",
        "--from",
        "CONNCT",
        "--json",
        f"@{content}",
        "--to",
        "+447700900204",
        "--to",
        "+447700900205",
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1] == "2 accepted, 0 refused, of 2"
    for transid in accepted_ids(r.stdout).values():
        assert "from a file" in json.dumps(server.message(transid, KEY)["content"])


def test_send_says_why_before_sending_and_when_the_key_is_wrong(server: TidingsServer):
    nothing = tidings(server, "send", "sms", "--from", "CONNCT", "--text", "x")
    assert nothing.exit_code == 1 and "no address" in nothing.stderr
    both = tidings(server, "send", "sms", "--to", "+447700900206", "--text", "x", "--json", "{}")
    assert both.exit_code == 1 and "either --text or --json" in both.stderr
    v1_only = tidings(server, "send", "whatsapp", "--to", "447700900206", "--text", "x")
    assert v1_only.exit_code == 1 and "--json" in v1_only.stderr
    wrong = tidings(
        server, "send", "sms", "--from", "CONNCT", "--to", "+447700900206", "--text", "x", key="nope"
    )
    assert wrong.exit_code == 1 and "refused 401" in wrong.stdout


def test_status_prints_the_timeline(server: TidingsServer):
    r = tidings(server, "send", "sms", "--from", "CONNCT", "--to", "+447700907203", "--text", "undelivered")
    transid = accepted_ids(r.stdout)["+447700907203"]
    server.wait_message(transid, KEY, lambda v: v["status"] == "Un-Delivered")
    status = tidings(server, "status", transid)
    assert status.exit_code == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0] == f"{transid}  sms to +447700907203 (msisdn)"
    assert lines[1].startswith("status: Un-Delivered 7203")
    timeline = [line.split()[1:3] for line in lines[lines.index("timeline:") + 1 :]]
    assert timeline == [["Queued", "1001"], ["Submitted", "7501"], ["Un-Delivered", "7203"]]
    missing = tidings(server, "status", "01a21e00-0000-7000-8000-000000000000")
    assert missing.exit_code == 1 and "HTTP 404" in missing.stderr
