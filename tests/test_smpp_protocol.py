"""SMPP as it goes wrong: `tidings serve` against a deliberately rude fake SMSC (tests/support/smsc.py),
and the PDU codec, framer and receipt reader on their own (no processes)."""

import re
import signal
import socket
import struct
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unique_path
from tests.support.console import health_saying, sign_in
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer
from tests.support.smsc import (
    ACCEPT,
    KEY_SMPP,
    ReceiptStyle,
    Reply,
    RudeSmsc,
    Submit,
    assert_no_smpp_secrets,
    fresh_msisdn,
    tidings_config,
    wait_until,
)
from tidings.smpp.pdu import (
    MAX_PDU_LEN,
    Cmd,
    Framer,
    Pdu,
    PduError,
    Status,
    Tag,
    cstring_tlv,
    decode,
    encode,
)
from tidings.smpp.receipt import id_keys, read_receipt

FINAL = ("Delivered", "Un-Delivered", "Failed", "Expired")


# -- helpers ----------------------------------------------------------------------------------------


def start_server(workdir: Path, smsc: RudeSmsc, **smsc_extra: Any) -> TidingsServer:
    workdir.mkdir(parents=True, exist_ok=True)
    extra = {"enquire_link_s": 5, "response_timeout_s": 2, "reconnect_max_s": 0.5, **smsc_extra}
    return TidingsServer(workdir, tidings_config(smsc.port, **extra)).start()


def stop_server(server: TidingsServer) -> int:
    code = server.stop()
    server.close()
    assert_no_smpp_secrets(server.output())
    return code


def send(server: TidingsServer, addresses: list[str], text: str = "hello", **extra: Any) -> list[str]:
    body = {
        "deliverychannel": "sms",
        "channels": {"sms": {"text": text, "senderid": "CONNCT"}},
        "destination": [{"msisdn": addresses}],
        **extra,
    }
    answer = server.send(body, KEY_SMPP).json()
    assert isinstance(answer["response"], list), answer
    return [item["transid"] for item in answer["response"]]


def send_each(server: TidingsServer, texts: list[str]) -> dict[str, str]:
    """One message per text, each to a fresh number; returns transid -> text."""
    return {send(server, [fresh_msisdn()], text)[0]: text for text in texts}


def wait_final(server: TidingsServer, transid: str, timeout: float = 10.0) -> dict[str, Any]:
    view = server.wait_message(transid, KEY_SMPP, lambda v: v["status"] in FINAL, timeout)
    assert view["status"] in FINAL, f"not final after {timeout}s: {view}"
    return view


def accepted_texts(smsc: RudeSmsc) -> Counter[str]:
    return Counter(s.text.decode("latin-1") for s in smsc.accepted())


@pytest.fixture
def rude() -> Iterator[RudeSmsc]:
    smsc = RudeSmsc().start()
    try:
        yield smsc
    finally:
        smsc.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RudeSmsc, TidingsServer]]:
    """One fake and one server for the tests that only change how the fake answers; no receipt within
    5 s makes a message Un-Delivered 7518, so a receipt that is not correlated shows."""
    smsc = RudeSmsc().start()
    server = None
    code = 0
    try:
        server = start_server(tmp_path_factory.mktemp("shared"), smsc, dlr_timeout_s=5)
        wait_until(lambda: len(smsc.binds()) == 1, 10, "the bind")
        yield smsc, server
    finally:
        if server is not None:
            code = stop_server(server)
        smsc.close()
    assert code == 0, server.output() if server else ""


@pytest.fixture
def fake(shared: tuple[RudeSmsc, TidingsServer]) -> Iterator[tuple[RudeSmsc, TidingsServer]]:
    smsc, server = shared
    try:
        yield smsc, server
    finally:
        smsc.policy = lambda s, n: ACCEPT
        smsc.style = ReceiptStyle()


# -- throttling, broken connections ------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.RTHROTTLED, Status.RMSGQFUL], ids=["RTHROTTLED", "RMSGQFUL"])
def test_throttled_submits_are_resent_and_every_message_is_delivered_once(
    fake: tuple[RudeSmsc, TidingsServer], status: Status
):
    smsc, server = fake
    throttled, prefix = 4, f"throttle-{status.name} "
    refusals = iter(range(throttled))
    smsc.policy = lambda s, n: (
        Reply("status", status)
        if s.text.startswith(prefix.encode()) and next(refusals, None) is not None
        else ACCEPT
    )
    messages = send_each(server, [f"{prefix}{i}" for i in range(8)])
    for transid in messages:
        view = wait_final(server, transid, timeout=15)
        assert (view["status"], view["code"]) == ("Delivered", "7500"), view
    mine = [s for s in smsc.all_submits() if s.text.startswith(prefix.encode())]
    assert len([s for s in mine if s.reply != "accepted"]) == throttled
    # Every message was accepted exactly once: a throttled submit is resent, an accepted one never.
    assert Counter(s.text.decode() for s in mine if s.reply == "accepted") == Counter(messages.values())


def test_the_health_page_shows_the_smsc_throttling_us(fake: tuple[RudeSmsc, TidingsServer]):
    smsc, server = fake
    prefix = b"throttle-health "
    smsc.policy = lambda s, n: Reply("status", Status.RTHROTTLED) if s.text.startswith(prefix) else ACCEPT
    (transid,) = send_each(server, [prefix.decode() + "1"])
    deadline = time.monotonic() + 10
    with sign_in(server.url, KEY_SMPP) as console:
        page, rows = health_saying(console, "carrier-a", "backing off", deadline)
    smsc.policy = lambda s, n: ACCEPT
    state, row = rows["carrier-a"]
    assert state == "up" and "carrier-a/tr1: bound, throttled" in row, row
    pause = r"backing off until \S+ \S+ \(in \d s\): the SMSC answered ESME_RTHROTTLED or ESME_RMSGQFUL"
    assert re.search(r"no tps limit, window \d+ per bind, 1 transmitting bind\(s\) " + pause, row), row
    assert wait_final(server, transid, timeout=15)["status"] == "Delivered"
    assert_no_smpp_secrets(page)


def test_transient_failures_are_sent_again_and_delivered(tmp_path: Path, rude: RudeSmsc):
    """Two transient failures, retried by the dispatcher after its retry interval (about 5 s), run side by
    side: the first connection reads two submit_sm, answers neither and hangs up mid-window; and a
    generic_nack with status 0 (which Tidings reads as ESME_RSYSERR) answers one submit."""
    transient = fresh_msisdn()
    nacked: list[Submit] = []

    def policy(s: Submit, n: int) -> Reply:
        if s.connection == 1:
            return Reply("drop")
        if s.destination == transient.removeprefix("+") and not nacked:
            nacked.append(s)
            return Reply("nack", Status.ROK)
        return ACCEPT

    rude.drop_after = 2
    rude.policy = policy
    server = start_server(tmp_path, rude)
    try:
        wait_until(lambda: len(rude.binds()) == 1, 10, "the first bind")
        messages = send_each(server, [f"dropped {i}" for i in range(5)])
        wait_until(lambda: len(rude.binds()) >= 2, 10, "a new bind after the drop")
        assert rude.binds()[1].connection != rude.binds()[0].connection
        (retried,) = send(server, [transient], "nacked once")
        for transid in [*messages, retried]:
            view = wait_final(server, transid, timeout=20)
            assert (view["status"], view["code"]) == ("Delivered", "7500"), view
        assert len([s for s in rude.all_submits() if s.reply == "unanswered"]) == 2
        assert accepted_texts(rude) == Counter([*messages.values(), "nacked once"])
        assert [s.reply for s in rude.all_submits() if s.text == b"nacked once"] == ["nack 0x00", "accepted"]
    finally:
        stop_server(server)


# -- receipts -----------------------------------------------------------------------------------------


def test_receipt_written_before_the_submit_sm_resp_is_not_lost(fake: tuple[RudeSmsc, TidingsServer]):
    smsc, server = fake
    smsc.style = ReceiptStyle(before_resp=True)
    started = time.monotonic()
    messages = send_each(server, [f"early {i}" for i in range(3)])
    for transid in messages:
        view = wait_final(server, transid, timeout=8)
        assert (view["status"], view["code"]) == ("Delivered", "7500"), view
        assert [h["status"] for h in view["history"]] == ["Queued", "Submitted", "Delivered"]
    # Well before dlr_timeout_s (5 s), after which the message would have been Un-Delivered 7518.
    assert time.monotonic() - started < 4


def test_multipart_receipts_written_before_their_submit_sm_resp(fake: tuple[RudeSmsc, TidingsServer]):
    smsc, server = fake
    smsc.style = ReceiptStyle(before_resp=True)
    (transid,) = send(server, [fresh_msisdn()], "r" * 400)
    view = wait_final(server, transid, timeout=4)
    assert (view["status"], view["code"], view["messageCount"]) == ("Delivered", "7500", 3)


# The forms of receipt ids, and receipt states as documented codes: tests/connectors/cases_smpp.py
# (ID_FORMS, RECEIPT_STATES), run by the connector runner.


def test_text_receipt_for_a_message_that_mentions_an_id(fake: tuple[RudeSmsc, TidingsServer]):
    smsc, server = fake
    smsc.style = ReceiptStyle(form="text")  # the receipt's text: field holds the message's first 20 chars
    (transid,) = send(server, [fresh_msisdn()], "Your id:4242 is ready")
    # Correlated, it is Delivered within a few hundred ms; not, it would wait for dlr_timeout_s (5 s).
    view = wait_final(server, transid, timeout=2)
    assert (view["status"], view["code"]) == ("Delivered", "7500"), view


def test_intermediate_and_repeated_receipts_notify_once(
    fake: tuple[RudeSmsc, TidingsServer], receiver: Receiver
):
    """ENROUTE first, then DELIVRD, then the same DELIVRD again (an SMSC resends a receipt whose
    deliver_sm_resp it missed): one Submitted and one Delivered notification."""
    smsc, server = fake
    smsc.policy = lambda s, n: Reply(
        receipts=(("ENROUTE", "000", 0.02), ("DELIVRD", "000", 0.2), ("DELIVRD", "000", 0.4))
    )
    path = unique_path("repeat")
    acked = len(smsc.receipts_acked)
    (transid,) = send(server, [fresh_msisdn()], notifyurl=receiver.url(path))
    wait_until(lambda: len(smsc.receipts_acked) >= acked + 3, 5, "three receipts acknowledged")
    assert wait_final(server, transid)["status"] == "Delivered"
    time.sleep(0.3)
    hits = receiver.at(path)
    assert [h.info["deliveryStatus"] for h in hits] == ["Submitted", "Delivered"]
    history = server.message(transid, KEY_SMPP)["history"]
    assert [h["status"] for h in history] == ["Queued", "Submitted", "Delivered"]


def _part(submit: Submit) -> int:
    return submit.text[5] if submit.pdu.number("esm_class") & 0x40 else 1


def test_multipart_waits_for_every_part_receipt(fake: tuple[RudeSmsc, TidingsServer]):
    smsc, server = fake
    # Part 3's receipt is kept back until the other two have been acknowledged.
    smsc.policy = lambda s, n: Reply(park_receipt=True) if _part(s) == 3 else ACCEPT
    acked, accepted = len(smsc.receipts_acked), len(smsc.accepted())
    (transid,) = send(server, [fresh_msisdn()], "p" * 400)
    wait_until(
        lambda: len(smsc.receipts_acked) >= acked + 2 and len(smsc.accepted()) >= accepted + 3,
        5,
        "two part receipts",
    )
    time.sleep(0.3)
    view = server.message(transid, KEY_SMPP)
    assert view["status"] == "Submitted", "Delivered before the last part's receipt"
    smsc.release_parked()
    view = wait_final(server, transid, timeout=5)
    assert (view["status"], view["code"], view["messageCount"]) == ("Delivered", "7500", 3)


def test_multipart_with_one_failed_part_is_undelivered(fake: tuple[RudeSmsc, TidingsServer]):
    smsc, server = fake
    smsc.policy = lambda s, n: Reply(stat="UNDELIV", err="7207") if _part(s) == 2 else ACCEPT
    (transid,) = send(server, [fresh_msisdn()], "q" * 400)
    view = wait_final(server, transid, timeout=8)
    assert (view["status"], view["code"], view["messageCount"]) == ("Un-Delivered", "7207", 3)


# -- refusals -------------------------------------------------------------------------------------------


def test_a_submit_refusal_is_failed_at_once_with_its_code(fake: tuple[RudeSmsc, TidingsServer]):
    """docs/sms.md, "Submit errors": a refusal is final at once, with its documented status and code.
    Each refusal's kind and code: tests/connectors/cases_smpp.py (REFUSALS); this is the path through
    the dispatcher for one of them."""
    smsc, server = fake
    msisdn = fresh_msisdn()
    smsc.policy = lambda s, n: Reply("status", Status.RINVDSTADR) if s.destination == msisdn[1:] else ACCEPT
    (transid,) = send(server, [msisdn])
    view = wait_final(server, transid)
    assert [s.destination for s in smsc.all_submits()].count(msisdn[1:]) == 1, "a refusal is not retried"
    assert (view["status"], view["code"]) == ("Failed", "7102")


def test_refused_middle_part_fails_the_message_with_7209(fake: tuple[RudeSmsc, TidingsServer]):
    smsc, server = fake
    msisdn = fresh_msisdn()
    smsc.policy = lambda s, n: Reply("status", Status.RSUBMITFAIL) if _part(s) == 2 else ACCEPT
    (transid,) = send(server, [msisdn], "m" * 400)
    view = wait_final(server, transid)
    assert (view["status"], view["code"]) == ("Failed", "7209"), view
    time.sleep(0.3)
    parts = [_part(s) for s in smsc.all_submits() if s.destination == msisdn.removeprefix("+")]
    assert parts == [1, 2], "nothing is sent after the refused part, and the sent part is not repeated"


def test_no_receipt_within_dlr_timeout_is_undelivered_7518(tmp_path: Path, rude: RudeSmsc):
    rude.policy = lambda s, n: Reply(receipt_delay_s=3600)  # the receipt never comes
    server = start_server(tmp_path, rude, dlr_timeout_s=0.5)
    try:
        (transid,) = send(server, [fresh_msisdn()])
        view = wait_final(server, transid, timeout=6)
        assert (view["status"], view["code"]) == ("Un-Delivered", "7518"), view
        assert [h["status"] for h in view["history"]] == ["Queued", "Submitted", "Un-Delivered"]
    finally:
        stop_server(server)


def test_generic_nack_to_a_submit(fake: tuple[RudeSmsc, TidingsServer]):
    """Observed: a generic_nack with an error status (here ESME_RINVCMDID) is a final refusal, code 7201,
    at once and without another submit (status Un-Delivered today; docs/sms.md says Failed, see
    tests/connectors/cases_smpp.py REFUSALS). A generic_nack with status 0 is read as
    ESME_RSYSERR, a transient failure, and sent again: see test_transient_failures_are_sent_again_...)"""
    smsc, server = fake
    msisdn = fresh_msisdn()
    smsc.policy = lambda s, n: Reply("nack", Status.RINVCMDID) if s.destination == msisdn[1:] else ACCEPT
    (refused,) = send(server, [msisdn])
    view = wait_final(server, refused, timeout=8)
    assert view["code"] == "7201" and view["status"] in ("Failed", "Un-Delivered"), view
    time.sleep(0.3)
    assert [s.reply for s in smsc.all_submits() if s.destination == msisdn[1:]] == ["nack 0x03"]


# -- the bind's life ------------------------------------------------------------------------------------


def test_enquire_link_while_idle_and_reconnect_when_unanswered(tmp_path: Path, rude: RudeSmsc):
    server = start_server(tmp_path, rude, enquire_link_s=0.3, response_timeout_s=1)
    try:
        wait_until(lambda: len(rude.binds()) == 1, 10, "the bind")
        wait_until(lambda: len(rude.seen("enquire_link")) >= 2, 5, "enquire_link while idle")
        assert len(rude.binds()) == 1, "answered enquire_links must not cause a reconnect"
        rude.answer_enquire_link = False
        wait_until(lambda: len(rude.binds()) >= 2, 8, "a new bind after unanswered enquire_link")
        rude.answer_enquire_link = True
        first, second = rude.binds()[:2]
        assert second.connection != first.connection
        (transid,) = send(server, [fresh_msisdn()])
        assert wait_final(server, transid)["status"] == "Delivered"
    finally:
        stop_server(server)


def test_refused_bind_keeps_messages_until_the_smsc_accepts(tmp_path: Path, rude: RudeSmsc):
    """The SMSC refuses binds (ESME_RINVPASWD): messages wait, neither lost nor failed. SIGTERM meanwhile
    ends Tidings at once and cleanly; after the restart, once the SMSC accepts binds, every message is
    delivered, each submitted once and on its first attempt."""
    rude.refuse_binds = True
    server = start_server(tmp_path, rude)
    try:
        messages = send_each(server, [f"refused {i}" for i in range(3)])
        wait_until(lambda: len(rude.seen("bind")) >= 2, 8, "refused bind attempts")
        assert rude.binds() == []
        assert all(server.message(t, KEY_SMPP)["status"] not in FINAL for t in messages)

        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        try:
            code = server.proc.wait(3)
        except subprocess.TimeoutExpired:
            server.kill()
            raise AssertionError("tidings did not exit within 3 s of SIGTERM while unbound") from None
        assert code == 0, server.output()
        assert rude.all_submits() == []

        server.start()
        refused = len(rude.seen("bind"))
        wait_until(lambda: len(rude.seen("bind")) > refused, 8, "a refused bind after the restart")
        assert all(server.message(t, KEY_SMPP)["status"] not in FINAL for t in messages)
        rude.refuse_binds = False
        for transid in messages:
            view = wait_final(server, transid, timeout=15)
            assert (view["status"], view["code"], view["attempts"]) == ("Delivered", "7500", 1), view
        assert accepted_texts(rude) == Counter(messages.values())
        assert server.client.get("/healthz").status_code == 200
    finally:
        stop_server(server)


def test_window_caps_submits_awaiting_a_response(tmp_path: Path, rude: RudeSmsc):
    rude.policy = lambda s, n: Reply(resp_delay_s=0.25)
    server = start_server(tmp_path, rude, window=3)
    try:
        messages = send(server, [fresh_msisdn() for _ in range(9)], "window")  # one batch
        for transid in messages:
            assert wait_final(server, transid)["status"] == "Delivered"
    finally:
        stop_server(server)
    submits = rude.all_submits()
    assert len(submits) == 9
    in_flight = [
        sum(1 for o in submits if o.received_at <= s.received_at and (o.answered_at or 1e18) > s.received_at)
        for s in submits
    ]
    assert max(in_flight) == 3, in_flight


def test_tps_paces_submits(tmp_path: Path, rude: RudeSmsc):
    server = start_server(tmp_path, rude, tps=20)
    try:
        messages = send(server, [fresh_msisdn() for _ in range(8)], "tps")
        for transid in messages:
            assert wait_final(server, transid)["status"] == "Delivered"
    finally:
        stop_server(server)
    times = sorted(s.received_at for s in rude.all_submits())
    assert len(times) == 8
    # 20 per second: 8 submits span at least 7 intervals of 0.05 s (a little slack for timer granularity).
    assert times[-1] - times[0] >= 0.3, times


def test_unbind_both_ways(tmp_path: Path, rude: RudeSmsc):
    """The SMSC's enquire_link and unbind are answered (and Tidings binds again); SIGTERM to Tidings sends
    an unbind before it exits."""
    server = start_server(tmp_path, rude)
    try:
        wait_until(lambda: len(rude.binds()) == 1, 10, "the bind")
        resp = rude.request(Pdu(Cmd.ENQUIRE_LINK))
        assert (resp.command_id, resp.status) == (Cmd.ENQUIRE_LINK_RESP, 0)
        resp = rude.request(Pdu(Cmd.UNBIND))
        assert (resp.command_id, resp.status) == (Cmd.UNBIND_RESP, 0)
        wait_until(lambda: len(rude.binds()) >= 2, 8, "a new bind after the SMSC's unbind")
        (transid,) = send(server, [fresh_msisdn()])
        assert wait_final(server, transid)["status"] == "Delivered"
        assert rude.seen("unbind") == []
    finally:
        code = stop_server(server)
    assert code == 0, server.output()
    assert [u.connection for u in rude.seen("unbind")] == [rude.binds()[1].connection]


def test_garbage_from_the_peer_gets_generic_nack_and_a_hang_up(rude: RudeSmsc):
    """The Session Tidings uses (here in the fake's seat): a command_length below 16 cannot be framed."""
    with socket.create_connection(("127.0.0.1", rude.port), timeout=5) as sock:
        sock.sendall(struct.pack(">IIII", 8, Cmd.ENQUIRE_LINK, 0, 1))
        data = b""
        while len(data) < 16:
            chunk = sock.recv(64)
            if not chunk:
                break
            data += chunk
        length, command, status, _ = struct.unpack(">IIII", data[:16])
        assert (length, command, status) == (16, Cmd.GENERIC_NACK, Status.RINVCMDLEN)
        assert sock.recv(64) == b"", "the connection must be closed"


# -- codec (no processes) ---------------------------------------------------------------------------------

ROUND_TRIPS = {
    "bind_transceiver": Pdu(
        Cmd.BIND_TRANSCEIVER,
        sequence=1,
        params={
            "system_id": "tidings",
            "password": "pw",
            "system_type": "",
            "interface_version": 0x34,
            "addr_ton": 0,
            "addr_npi": 0,
            "address_range": "",
        },
    ),
    "bind_transceiver_resp": Pdu(Cmd.BIND_TRANSCEIVER_RESP, sequence=1, params={"system_id": "smsc"}),
    "submit_sm_with_tlvs": Pdu(
        Cmd.SUBMIT_SM,
        sequence=0x7FFFFFFE,
        params={
            "service_type": "",
            "source_addr_ton": 5,
            "source_addr_npi": 0,
            "source_addr": "CONNCT",
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
            "destination_addr": "447700900123",
            "esm_class": 0x40,
            "protocol_id": 0,
            "priority_flag": 0,
            "schedule_delivery_time": "",
            "validity_period": "990102030405000+",
            "registered_delivery": 1,
            "replace_if_present_flag": 0,
            "data_coding": 8,
            "sm_default_msg_id": 0,
            "short_message": bytes.fromhex("0500030a0201") + "Ж".encode("utf-16-be"),
        },
        tlvs={0x1400: b"1107161234567890123", Tag.SAR_MSG_REF_NUM: b"\x00\x07", Tag.MESSAGE_PAYLOAD: b""},
    ),
    "submit_sm_resp": Pdu(Cmd.SUBMIT_SM_RESP, sequence=9, params={"message_id": "00A1B2"}),
    "submit_sm_resp_error_no_body": Pdu(Cmd.SUBMIT_SM_RESP, status=Status.RTHROTTLED, sequence=9),
    "deliver_sm_receipt": Pdu(
        Cmd.DELIVER_SM,
        sequence=3,
        params={
            "service_type": "",
            "source_addr_ton": 1,
            "source_addr_npi": 1,
            "source_addr": "447700900123",
            "dest_addr_ton": 5,
            "dest_addr_npi": 0,
            "destination_addr": "CONNCT",
            "esm_class": 0x04,
            "protocol_id": 0,
            "priority_flag": 0,
            "schedule_delivery_time": "",
            "validity_period": "",
            "registered_delivery": 0,
            "replace_if_present_flag": 0,
            "data_coding": 0,
            "sm_default_msg_id": 0,
            "short_message": b"id:A1B2 sub:001 dlvrd:001 submit date:2601011200 done date:2601011201 "
            b"stat:DELIVRD err:000 text:",
        },
        tlvs={Tag.RECEIPTED_MESSAGE_ID: b"A1B2\x00", Tag.MESSAGE_STATE: b"\x02"},
    ),
    "enquire_link": Pdu(Cmd.ENQUIRE_LINK, sequence=5),
    "unbind_resp": Pdu(Cmd.UNBIND_RESP, sequence=6),
    "generic_nack": Pdu(Cmd.GENERIC_NACK, status=Status.RINVCMDID, sequence=6),
}


@pytest.mark.parametrize("name", list(ROUND_TRIPS))
def test_encode_decode_round_trip(name: str):
    pdu = ROUND_TRIPS[name]
    wire = encode(pdu)
    assert struct.unpack_from(">I", wire)[0] == len(wire)
    back = decode(wire)
    assert back == pdu


def _header(length: int, command: int, status: int = 0, seq: int = 1) -> bytes:
    return struct.pack(">IIII", length, command, status, seq)


def _frame(command: int, body: bytes) -> bytes:
    return _header(16 + len(body), command) + body


GARBAGE = {
    "unknown command id": (_frame(0x00000077, b""), Status.RINVCMDID),
    "unterminated C-string": (_frame(Cmd.SUBMIT_SM_RESP, b"A1B2"), Status.RINVMSGLEN),
    "C-string longer than its field": (
        _frame(Cmd.BIND_TRANSCEIVER_RESP, b"x" * 20 + b"\x00"),
        Status.RINVMSGLEN,
    ),
    "body ends before a mandatory field": (_frame(Cmd.BIND_TRANSCEIVER, b"sys\x00pw\x00"), Status.RINVMSGLEN),
    "sm_length past the end": (
        _frame(
            Cmd.SUBMIT_SM,
            b"\x00\x05\x00SRC\x00\x01\x01447700900123\x00" + bytes(3) + b"\x00\x00" + bytes(4) + b"\xffabc",
        ),
        Status.RINVMSGLEN,
    ),
    "truncated TLV header": (_frame(Cmd.SUBMIT_SM_RESP, b"A1\x00\x00\x1e"), Status.RINVOPTPARSTREAM),
    "TLV value past the end": (
        _frame(Cmd.SUBMIT_SM_RESP, b"A1\x00\x00\x1e\x00\x09AB"),
        Status.RINVOPTPARSTREAM,
    ),
}


@pytest.mark.parametrize("case", list(GARBAGE))
def test_decoding_garbage_raises_pdu_error_with_the_right_status(case: str):
    frame, status = GARBAGE[case]
    with pytest.raises(PduError) as info:
        decode(frame)
    assert info.value.status == status


@pytest.mark.parametrize(
    ("length", "status"),
    [(0, Status.RINVCMDLEN), (15, Status.RINVCMDLEN), (MAX_PDU_LEN + 1, Status.RINVCMDLEN)],
)
def test_framer_refuses_impossible_command_lengths(length: int, status: Status):
    with pytest.raises(PduError) as info:
        Framer().feed(_header(length, Cmd.ENQUIRE_LINK))
    assert info.value.status == status


def test_encoding_an_overlong_field_raises():
    with pytest.raises(PduError) as info:
        encode(Pdu(Cmd.SUBMIT_SM_RESP, params={"message_id": "x" * 65}))
    assert info.value.status == Status.RINVPARLEN
    with pytest.raises(PduError):
        encode(Pdu(Cmd.SUBMIT_SM, params={"short_message": b"x" * 255}))


def test_framer_splits_a_stream_fed_byte_by_byte():
    pdus = list(ROUND_TRIPS.values())
    stream = b"".join(encode(p) for p in pdus)
    framer = Framer()
    frames: list[bytes] = []
    for i in range(len(stream)):
        frames += framer.feed(stream[i : i + 1])
    assert [decode(f) for f in frames] == pdus
    # And all at once, and in uneven chunks.
    assert [decode(f) for f in Framer().feed(stream)] == pdus
    framer = Framer()
    chunked: list[bytes] = []
    for start in range(0, len(stream), 37):
        chunked += framer.feed(stream[start : start + 37])
    assert [decode(f) for f in chunked] == pdus


def _deliver(text: str, esm_class: int = 0x04, tlvs: dict[int, bytes] | None = None) -> tuple[Pdu, str]:
    pdu = Pdu(
        Cmd.DELIVER_SM, params={"esm_class": esm_class, "short_message": text.encode()}, tlvs=tlvs or {}
    )
    return pdu, text


RECEIPTS: dict[str, tuple[tuple[Pdu, str], tuple[str, str, str] | None]] = {
    "appendix B, lower case": (
        _deliver(
            "id:0123456789 sub:001 dlvrd:001 submit date:2601011200 done date:2601011201 "
            "stat:DELIVRD err:000 text:Hello there"
        ),
        ("0123456789", "DELIVRD", "000"),
    ),
    "upper-case keys": (
        _deliver(
            "ID:7F3A9C SUB:001 DLVRD:000 SUBMIT DATE:2601011200 DONE DATE:2601011205 STAT:UNDELIV ERR:001"
        ),
        ("7F3A9C", "UNDELIV", "001"),
    ),
    "mixed case keys and value": (
        _deliver("Id:ab12 Sub:001 Dlvrd:001 Submit date:2601011200 Done date:2601011201 Stat:delivrd Err:0"),
        ("ab12", "DELIVRD", "0"),
    ),
    "spaces after colons": (
        _deliver(
            "id: 4242 sub: 001 dlvrd: 001 submit date: 2601011200 done date: 2601011201 stat: EXPIRED err: 0"
        ),
        ("4242", "EXPIRED", "0"),
    ),
    "seconds in the dates": (
        _deliver(
            "id:55 sub:001 dlvrd:001 submit date:260101120001 done date:260101120159 stat:REJECTD err:0b"
        ),
        ("55", "REJECTD", "0b"),
    ),
    "TLV only": (
        _deliver(
            "",
            tlvs={
                Tag.RECEIPTED_MESSAGE_ID: cstring_tlv("00A1B2"),
                Tag.MESSAGE_STATE: b"\x05",
                Tag.NETWORK_ERROR_CODE: b"\x03\x00\x0d",
            },
        ),
        ("00A1B2", "UNDELIV", "13"),
    ),
    "TLV id wins over the text id": (
        _deliver("id:999 stat:DELIVRD err:000", tlvs={Tag.RECEIPTED_MESSAGE_ID: cstring_tlv("3E7")}),
        ("3E7", "DELIVRD", "000"),
    ),
    "text receipt without the receipt esm_class": (
        _deliver("id:77 sub:001 dlvrd:001 submit date:2601011200 done date:2601011201 stat:DELIVRD err:0", 0),
        ("77", "DELIVRD", "0"),
    ),
    "an MO message is no receipt": (_deliver("see you at 5", 0), None),
    "an MO mentioning an id is no receipt": (_deliver("my id: 12 is new", 0), None),
}


@pytest.mark.parametrize("case", list(RECEIPTS))
def test_read_receipt_on_samples(case: str):
    (pdu, text), expected = RECEIPTS[case]
    receipt = read_receipt(pdu, text)
    if expected is None:
        assert receipt is None
    else:
        assert receipt is not None
        assert (receipt.message_id, receipt.stat, receipt.err) == expected
        assert receipt.final


@pytest.mark.parametrize("message", ["Your id:4242 is", "Order stat:shipped"])
def test_read_receipt_ignores_keys_inside_the_text_field(message: str):
    pdu, text = _deliver(
        "id:A1B2 sub:001 dlvrd:001 submit date:2601011200 done date:2601011201 stat:DELIVRD err:000 "
        f"text:{message}"
    )
    receipt = read_receipt(pdu, text)
    assert receipt is not None
    assert (receipt.message_id, receipt.stat, receipt.err) == ("A1B2", "DELIVRD", "000")


def test_intermediate_receipt_is_not_final():
    pdu, text = _deliver(
        "id:12 sub:001 dlvrd:000 submit date:2601011200 done date:2601011200 stat:ENROUTE err:0"
    )
    receipt = read_receipt(pdu, text)
    assert receipt is not None and not receipt.final
    pdu, text = _deliver("", tlvs={Tag.RECEIPTED_MESSAGE_ID: cstring_tlv("12"), Tag.MESSAGE_STATE: b"\x06"})
    receipt = read_receipt(pdu, text)
    assert receipt is not None and (receipt.stat, receipt.final) == ("ACCEPTD", False)


@pytest.mark.parametrize(
    ("submitted", "reported"),
    [
        ("00A1B2", "41394"),  # hex in the response, decimal in the receipt
        ("41394", "A1B2"),  # and the reverse
        ("a1b2", "0000A1B2"),  # leading zeros, case
        ("41394", "00041394"),
        ("0a1b-2c3d", "0A1B2C3D"),  # dashes
        ("6f1c1d2e-0b4a-4c7e-9d10-1a2b3c4d5e6f", "6F1C1D2E0B4A4C7E9D101A2B3C4D5E6F"),  # a UUID
        ("1234", "4d2"),  # digits only: could be either base
        ("4660", "1234"),
    ],
)
def test_id_keys_correlate_the_forms_smscs_use(submitted: str, reported: str):
    # What Tidings stores for the submit is the canonical form: id_keys(...)[0].
    stored = id_keys(submitted)[0]
    assert stored in id_keys(reported)


def test_id_keys_do_not_convert_long_ids_or_mix_unrelated_numbers():
    assert id_keys("6f1c1d2e-0b4a-4c7e-9d10-1a2b3c4d5e6f") == ["6f1c1d2e0b4a4c7e9d101a2b3c4d5e6f"]
    assert id_keys(" 00A1B2\x00") == ["a1b2", "41394"]
    assert id_keys("000") == ["0"]
    assert "a1b3" not in id_keys("41394")
