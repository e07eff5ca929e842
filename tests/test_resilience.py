"""What goes wrong around the server does not lose or stop it: a foreign writer on its database,
a crashed notification sender, a config that drops or renames services."""

import os
import re
import signal
import sqlite3
import time

import pytest

from tests.conftest import KEY_A, KEY_B, assert_no_secrets, config_text, sms, unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer


@pytest.mark.sqlite_only
def test_a_foreign_write_lock_fails_requests_briefly_then_service_resumes(tmp_path, receiver: Receiver):
    server = TidingsServer(tmp_path, config_text(receiver)).start()
    try:
        foreign = sqlite3.connect(tmp_path / "tidings.db", isolation_level=None, timeout=10)
        foreign.execute("BEGIN IMMEDIATE")
        try:
            refused = server.send(sms(["+447700900123"]), KEY_A).json()["response"]
            assert refused["code"] == "7006"
        finally:
            foreign.execute("ROLLBACK")
            foreign.close()
        path = unique_path("after-lock")
        ok = server.send(sms(["+447700900123"], notifyurl=receiver.url(path)), KEY_A).json()["response"]
        assert ok[0]["code"] == "1001"
        receiver.wait_count(path, 2)
        assert server.client.get("/healthz").status_code == 200
    finally:
        server.close()
    assert_no_secrets(server)


def test_a_killed_notification_sender_is_replaced(tmp_path, receiver: Receiver):
    server = TidingsServer(tmp_path, config_text(receiver)).start()
    try:
        log = (tmp_path / "stderr.1.txt").read_text()
        pid = int(re.search(r"notification sender started \(pid (\d+)\)", log).group(1))
        os.kill(pid, signal.SIGKILL)  # a child of the server this test started
        time.sleep(0.2)
        path = unique_path("after-sender-crash")
        transid = server.send(sms(["+447700900123"], notifyurl=receiver.url(path)), KEY_A).json()["response"][
            0
        ]["transid"]
        hits = receiver.wait_count(path, 2)
        assert {h.transid for h in hits} == {transid}
        assert [h.info["deliveryStatus"] for h in hits] == ["Submitted", "Delivered"]
    finally:
        server.close()


def test_the_config_file_decides_which_services_exist(tmp_path, receiver: Receiver):
    server = TidingsServer(tmp_path, config_text(receiver)).start()
    beta = sms(["+447700900123"])
    beta["channels"]["sms"]["senderid"] = "BETA"
    try:
        assert server.send(beta, KEY_B).json()["response"][0]["code"] == "1001"
        server.stop()
        # svc-b leaves the file; svc-a is renamed but keeps its key.
        text = config_text(receiver).replace('id = "svc-a"', 'id = "svc-alpha"')
        text = re.sub(r'\[\[services\]\]\nid = "svc-b".*?(?=\[\[services\]\])', "", text, flags=re.S)
        assert server.config_path is not None
        server.config_path.write_text(text)
        server.start()
        assert server.send(beta, KEY_B).json()["response"]["code"] == "7001"
        assert server.send(sms(["+447700900123"]), KEY_A).json()["response"][0]["code"] == "1001"
    finally:
        server.close()
