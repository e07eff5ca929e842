"""Notification retries: connection errors, timeouts and 5xx are retried with backoff; other 4xx not.

The session server is configured with retries = 3, retry_interval_s = 0.2, timeout_s = 2.
"""

import itertools
import time

from tests.conftest import KEY_A, sms, unique_path
from tests.support.receiver import SLOW, Receiver
from tests.support.server import TidingsServer, free_port


def send(server: TidingsServer, url: str) -> str:
    return server.send(sms(["+447700900123"], notifyurl=url), KEY_A).json()["response"][0]["transid"]


def test_receiver_that_fails_then_recovers(server: TidingsServer, receiver: Receiver):
    path = unique_path("flaky")
    receiver.script(path, [503, 500])
    send(server, receiver.url(path))
    hits = receiver.wait_count(path, 4)
    first_three = hits[:3]
    assert [h.status for h in first_three] == [503, 500, 200]
    assert len({h.headers["x-tidings-event-id"] for h in first_three}) == 1, "one event, retried"
    assert len({h.body for h in first_three}) == 1, "the same body on every try"
    assert [h.info["deliveryStatus"] for h in hits] == ["Submitted"] * 3 + ["Delivered"]
    gaps = [b.at - a.at for a, b in itertools.pairwise(first_three)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4, f"backoff doubles from retry_interval_s: {gaps}"


def test_client_errors_are_not_retried(server: TidingsServer, receiver: Receiver):
    path = unique_path("4xx")
    receiver.script(path, [400])
    transid = send(server, receiver.url(path))
    hits = receiver.wait_count(path, 2)
    assert [(h.status, h.info["deliveryStatus"]) for h in hits] == [(400, "Submitted"), (200, "Delivered")]
    time.sleep(0.5)
    assert len(receiver.at(path)) == 2
    notes = server.message(transid, KEY_A)["notifications"]
    assert [(n["state"], n["attempts"], n["httpStatus"]) for n in notes] == [
        ("failed", 1, 400),
        ("sent", 1, 200),
    ]


def test_timeouts_are_retried(server: TidingsServer, receiver: Receiver):
    path = unique_path("slow")
    receiver.script(path, [SLOW])
    send(server, receiver.url(path))
    hits = receiver.wait_count(path, 3, timeout=30)
    submitted = [h for h in hits if h.info["deliveryStatus"] == "Submitted"]
    assert (
        len(submitted) == 2
        and submitted[0].headers["x-tidings-event-id"] == submitted[1].headers["x-tidings-event-id"]
    )


def test_unreachable_receiver_is_retried_then_given_up(server: TidingsServer):
    transid = send(server, f"http://127.0.0.1:{free_port()}/closed")
    notes = server.wait_message(
        transid, KEY_A, lambda v: [n["state"] for n in v["notifications"]] == ["failed", "failed"], timeout=30
    )["notifications"]
    assert [(n["state"], n["attempts"]) for n in notes] == [("failed", 4), ("failed", 4)]
    assert "ConnectFailed: cannot connect to 127.0.0.1" in notes[0]["lastError"]
