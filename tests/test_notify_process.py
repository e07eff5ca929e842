"""The notification sender process under stress: a server stopped or killed with posts in flight, and
a sender killed mid-post. No notification is lost, none counts a try it did not make, and no process is
left behind."""

import os
import re
import signal
import time
from pathlib import Path

from tests.conftest import KEY_A, config_text, sms, unique_path
from tests.support.receiver import HANG, Receiver
from tests.support.server import TidingsServer


def sender_pid(server: TidingsServer) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = re.findall(r"notification sender started \(pid (\d+)\)", server.output())
        if found:
            return int(found[-1])
        time.sleep(0.05)
    raise AssertionError("no sender pid in the server's log")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def send(server: TidingsServer, receiver: Receiver, path: str) -> str:
    body = sms(["+447700900123"], notifyurl=receiver.url(path))
    return server.send(body, KEY_A).json()["response"][0]["transid"]


def event_ids(receiver: Receiver, path: str, status: str) -> list[str]:
    return [h.headers["x-tidings-event-id"] for h in receiver.at(path) if h.info["deliveryStatus"] == status]


def test_stop_with_a_post_in_flight_requeues_it_without_counting_a_try(tmp_path: Path, receiver: Receiver):
    # The POST timeout (30 s) outlives the server's 5 s stop grace, so the post is cut short by the stop.
    server = TidingsServer(tmp_path, config_text(receiver, notify_timeout_s=30)).start()
    try:
        path = unique_path("stop-in-flight")
        receiver.script(path, [HANG])
        transid = send(server, receiver, path)
        receiver.wait_count(path, 1)  # the Submitted POST is now hanging at the receiver
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < 12
        server.start()
        receiver.wait_for(lambda: len(event_ids(receiver, path, "Delivered")) == 1, timeout=30)
        view = server.client.get(f"/v1/messages/{transid}", headers={"key": KEY_A}).json()
        submitted = view["notifications"][0]
        assert (submitted["state"], submitted["attempts"]) == ("sent", 1), (
            "the interrupted try is not counted"
        )
    finally:
        server.close()


def test_kill_9_with_a_post_in_flight_redelivers_it_and_leaves_no_orphan(tmp_path: Path, receiver: Receiver):
    server = TidingsServer(tmp_path, config_text(receiver, notify_timeout_s=30)).start()
    try:
        path = unique_path("kill-in-flight")
        receiver.script(path, [HANG])
        send(server, receiver, path)
        child = sender_pid(server)
        receiver.wait_count(path, 1)
        server.kill()
        deadline = time.monotonic() + 5
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child), "the sender must exit when its parent dies, not finish its posts"
        server.start()
        receiver.wait_for(lambda: len(event_ids(receiver, path, "Delivered")) == 1, timeout=30)
        submitted = event_ids(receiver, path, "Submitted")
        assert len(submitted) >= 2 and len(set(submitted)) == 1, "redelivered with the same event id"
    finally:
        server.close()


def test_a_sender_killed_mid_post_counts_a_failed_try_and_is_replaced(tmp_path: Path, receiver: Receiver):
    server = TidingsServer(tmp_path, config_text(receiver, notify_timeout_s=30)).start()
    try:
        path = unique_path("sender-killed")
        receiver.script(path, [HANG])
        transid = send(server, receiver, path)
        receiver.wait_count(path, 1)
        os.kill(sender_pid(server), signal.SIGKILL)  # a child of the server this test started
        receiver.wait_for(lambda: len(event_ids(receiver, path, "Delivered")) == 1, timeout=30)
        view = server.client.get(f"/v1/messages/{transid}", headers={"key": KEY_A}).json()
        submitted = view["notifications"][0]
        assert (submitted["state"], submitted["attempts"]) == ("sent", 2)
        assert len(set(event_ids(receiver, path, "Submitted"))) == 1
    finally:
        server.close()
