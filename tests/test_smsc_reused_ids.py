"""Receipts find their message when an SMSC gives a message id out again: after a restart that numbers
from the start, or a counter that wraps. A receipt goes to the message of that SMSC still waiting for
one (the most recently sent if several), never to one already final. `tidings serve` against real SMSC
sockets: the `tidings smsc` simulator, and the scripted fake of tests/support/smsc.py."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer
from tests.support.smsc import (
    KEY_SMPP,
    ReceiptStyle,
    Reply,
    RudeSmsc,
    SimulatorProcess,
    assert_no_smpp_secrets,
    fresh_msisdn,
    tidings_config,
    wait_until,
)

FINAL = ("Delivered", "Un-Delivered", "Failed", "Expired")


def start_server(workdir: Path, port: int, **extra: Any) -> TidingsServer:
    workdir.mkdir(parents=True, exist_ok=True)
    config = tidings_config(port, enquire_link_s=5, response_timeout_s=2, reconnect_max_s=0.5, **extra)
    return TidingsServer(workdir, config).start()


def send(server: TidingsServer, text: str = "hello", **extra: Any) -> str:
    body = {
        "deliverychannel": "sms",
        "channels": {"sms": {"text": text, "senderid": "CONNCT"}},
        "destination": [{"msisdn": [fresh_msisdn()]}],
        **extra,
    }
    answer = server.send(body, KEY_SMPP).json()
    assert isinstance(answer["response"], list), answer
    return str(answer["response"][0]["transid"])


def final(server: TidingsServer, transid: str, timeout: float = 10.0) -> dict[str, Any]:
    return server.wait_message(transid, KEY_SMPP, lambda v: v["status"] in FINAL, timeout)


def statuses(view: dict[str, Any]) -> list[str]:
    return [h["status"] for h in view["history"]]


@pytest.fixture
def rude() -> Iterator[RudeSmsc]:
    smsc = RudeSmsc().start()
    try:
        yield smsc
    finally:
        smsc.close()


def restart(smsc: RudeSmsc) -> None:
    binds = len(smsc.binds())
    smsc.restart()
    wait_until(
        lambda: len(smsc.binds()) > binds and smsc.bound_connections() > 0, 10, "a bind after the restart"
    )


def test_messages_sent_before_and_after_a_simulator_restart_are_all_delivered(
    tmp_path: Path, receiver: Receiver
):
    """The user's case: `tidings smsc` restarted under a running Tidings. Its ids no longer start over,
    and every receipt, before and after the restart, reaches its message and its notify URL."""
    (tmp_path / "smsc").mkdir()
    sim = SimulatorProcess(tmp_path / "smsc", dlr_delay_ms=50).start()
    path = unique_path("sim-restart")
    server = None
    try:
        server = start_server(tmp_path / "serve", sim.port, notify_url=receiver.url(path))
        sim.wait_bound()
        before = send(server, "before the restart")
        assert final(server, before)["status"] == "Delivered"
        (first_id,) = [s["message_id"] for s in sim.submits()]
        sim.stop()
        sim.start()
        sim.wait_bound()
        after = send(server, "after the restart")
        view = final(server, after)
        assert (view["status"], statuses(view)) == ("Delivered", ["Queued", "Submitted", "Delivered"])
        (second_id,) = [s["message_id"] for s in sim.submits()]
        assert second_id != first_id
        hits = receiver.wait_count(path, 4)
        assert sorted((h.transid, h.info["deliveryStatus"]) for h in hits) == sorted(
            [(before, "Submitted"), (before, "Delivered"), (after, "Submitted"), (after, "Delivered")]
        )
    finally:
        if server is not None:
            server.close()
            assert_no_smpp_secrets(server.output())
        sim.close()


def test_an_smsc_that_numbers_from_the_start_again_gets_every_receipt_home(tmp_path: Path, rude: RudeSmsc):
    """Three restarts of an SMSC that hands out the same first id each time: a message per run gets that
    id, and each one's receipt finds it, also when the receipt overtakes its submit_sm_resp and when the
    message goes out in two parts."""
    server = start_server(tmp_path, rude.port)
    try:
        wait_until(lambda: rude.bound_connections() > 0, 10, "a bind")
        first = send(server, "first run")
        assert final(server, first)["status"] == "Delivered"

        restart(rude)
        second = send(server, "second run")
        assert final(server, second)["status"] == "Delivered"

        restart(rude)
        rude.style = ReceiptStyle(before_resp=True)  # the receipt is on the wire before its submit_sm_resp
        third = send(server, "third run")
        assert final(server, third)["status"] == "Delivered"

        restart(rude)
        rude.style = ReceiptStyle()
        long = send(server, "p" * 200)  # two parts: the first reuses the id again
        view = final(server, long)
        assert (view["status"], view["messageCount"]) == ("Delivered", 2)

        ids = [s.message_id for s in rude.accepted()]
        assert ids == [format(RudeSmsc.FIRST_ID, "X")] * 4 + [format(RudeSmsc.FIRST_ID + 1, "X")]
        for transid in (first, second, third, long):
            view = server.message(transid, KEY_SMPP)
            assert statuses(view) == ["Queued", "Submitted", "Delivered"], view
    finally:
        server.close()
        assert_no_smpp_secrets(server.output())


def test_two_messages_waiting_under_one_reused_id_both_get_a_receipt(tmp_path: Path, rude: RudeSmsc):
    """Both messages still wait when the SMSC sends the two receipts for the id it gave each of them:
    each receipt finishes one of them (the most recently sent first), and neither is lost."""
    rude.policy = lambda submit, n: Reply(park_receipt=True)
    server = start_server(tmp_path, rude.port)
    try:
        wait_until(lambda: rude.bound_connections() > 0, 10, "a bind")
        older = send(server, "older")
        wait_until(lambda: server.message(older, KEY_SMPP)["status"] == "Submitted", 10, "older Submitted")
        restart(rude)
        newer = send(server, "newer")
        wait_until(lambda: server.message(newer, KEY_SMPP)["status"] == "Submitted", 10, "newer Submitted")
        assert len({s.message_id for s in rude.accepted()}) == 1
        rude.release_parked()
        views = [final(server, t) for t in (older, newer)]
        assert [v["status"] for v in views] == ["Delivered", "Delivered"]
        assert sorted(rude.receipts_acked) == [format(RudeSmsc.FIRST_ID, "X")] * 2
    finally:
        server.close()
        assert_no_smpp_secrets(server.output())
