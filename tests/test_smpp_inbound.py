"""Inbound SMS: MO messages injected at a real `tidings smsc` reach the owning service's inbound_url, and
STOP / START keywords change the sender's consent."""

import hashlib
import hmac
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import unique_path
from tests.support.receiver import Hit, Receiver
from tests.support.server import TidingsServer
from tests.support.smsc import (
    KEY_SMPP,
    SECRET_SMPP,
    SERVICE_NUMBER,
    RudeSmsc,
    SimulatorProcess,
    assert_no_smpp_secrets,
    fresh_msisdn,
    tidings_config,
    wait_until,
)
from tidings.smpp.pdu import Cmd, Pdu, Tag


@pytest.fixture(scope="module")
def inbound_path() -> str:
    return unique_path("mo")


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    sim = SimulatorProcess(tmp_path_factory.mktemp("smsc"), dlr_delay_ms=30).start()
    try:
        yield sim
    finally:
        sim.close()


@pytest.fixture(scope="module")
def mo_server(
    tmp_path_factory: pytest.TempPathFactory,
    simulator: SimulatorProcess,
    receiver: Receiver,
    inbound_path: str,
) -> Iterator[TidingsServer]:
    config = tidings_config(simulator.port, inbound_url=receiver.url(inbound_path))
    server = TidingsServer(tmp_path_factory.mktemp("serve"), config).start()
    try:
        simulator.wait_bound()
        yield server
    finally:
        code = server.stop()
        server.close()
    assert code == 0, server.output()
    assert_no_smpp_secrets(server.output())


def inject(simulator: SimulatorProcess, source: str, text: str, to: str = SERVICE_NUMBER) -> int:
    r = simulator.mo(source, to, text)
    assert r.status_code == 200, r.text
    return int(r.json()["parts"])


def webhooks_from(receiver: Receiver, path: str, source: str) -> list[Hit]:
    return [h for h in receiver.at(path) if h.json.get("oa") == source]


def wait_webhooks(receiver: Receiver, path: str, source: str, count: int, timeout: float = 10) -> list[Hit]:
    receiver.wait_for(lambda: len(webhooks_from(receiver, path, source)) >= count, timeout)
    return webhooks_from(receiver, path, source)


def db_rows(server: TidingsServer, query: str, *args: Any) -> list[tuple[Any, ...]]:
    return server.rows(query, *args)


def consent_rows(server: TidingsServer, address: str) -> list[tuple[Any, ...]]:
    return db_rows(
        server,
        "SELECT service_id, group_id, channel, address, consent FROM consents WHERE address = ?",
        address,
    )


def test_mo_reaches_inbound_url_with_the_documented_body(
    mo_server: TidingsServer, simulator: SimulatorProcess, receiver: Receiver, inbound_path: str
):
    source = fresh_msisdn()
    before = datetime.now(UTC)
    # Sent to the number without its +: `da` is the number as the service configured it.
    assert inject(simulator, source.removeprefix("+"), "Hello from a phone", SERVICE_NUMBER[1:]) == 1
    (hit,) = wait_webhooks(receiver, inbound_path, source, 1)
    body = hit.json
    assert body == {
        "userId": "",
        "Channel": "SMS",
        "da": SERVICE_NUMBER,
        "oa": source,
        "message": "Hello from a phone",
        "messageCount": "1",
        "tid": body["tid"],
        "datetime": body["datetime"],
    }
    assert str(uuid.UUID(body["tid"])) == body["tid"]
    at = datetime.fromisoformat(body["datetime"])
    assert at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=2) <= at <= datetime.now(UTC) + timedelta(seconds=2)
    assert hit.headers["content-type"] == "application/json"
    expected = "sha256=" + hmac.new(SECRET_SMPP, hit.body, hashlib.sha256).hexdigest()
    assert hit.headers["x-hub-signature"] == expected


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("".join(chr(ord("a") + i % 26) for i in range(400)), 3),  # GSM: 153 + 153 + 94
        ("Привет 👋 " * 15, 3),  # UCS-2 with surrogate pairs: 150 units in parts of 67
    ],
    ids=["gsm-400", "ucs2-emoji"],
)
def test_long_mo_arrives_as_one_webhook_with_the_whole_text(
    mo_server: TidingsServer,
    simulator: SimulatorProcess,
    receiver: Receiver,
    inbound_path: str,
    text: str,
    parts: int,
):
    source = fresh_msisdn()
    assert inject(simulator, source, text) == parts
    (hit,) = wait_webhooks(receiver, inbound_path, source, 1)
    assert hit.json["message"] == text
    assert hit.json["messageCount"] == str(parts)
    assert hit.json["da"] == SERVICE_NUMBER
    time.sleep(0.3)
    assert len(webhooks_from(receiver, inbound_path, source)) == 1, "one webhook for the whole message"


def test_stop_then_start_keywords_record_consent(
    mo_server: TidingsServer, simulator: SimulatorProcess, receiver: Receiver, inbound_path: str
):
    source = fresh_msisdn()
    inject(simulator, source, "stop")
    wait_webhooks(receiver, inbound_path, source, 1)
    assert consent_rows(mo_server, source) == [("svc-smpp", "", "text", source, 0)]

    inject(simulator, source, "START")
    wait_webhooks(receiver, inbound_path, source, 2)
    assert consent_rows(mo_server, source) == [("svc-smpp", "", "text", source, 1)]

    # A keyword that is not alone changes nothing.
    inject(simulator, source, "please stop")
    wait_webhooks(receiver, inbound_path, source, 3)
    assert consent_rows(mo_server, source) == [("svc-smpp", "", "text", source, 1)]


@pytest.mark.parametrize("word", ["UNSUBSCRIBE", "end", "Quit", "cancel", " STOP "])
def test_every_opt_out_keyword_in_any_case(
    mo_server: TidingsServer, simulator: SimulatorProcess, receiver: Receiver, inbound_path: str, word: str
):
    source = fresh_msisdn()
    inject(simulator, source, word)
    wait_webhooks(receiver, inbound_path, source, 1)
    assert consent_rows(mo_server, source) == [("svc-smpp", "", "text", source, 0)]
    inject(simulator, source, "unstop")
    wait_webhooks(receiver, inbound_path, source, 2)
    assert consent_rows(mo_server, source) == [("svc-smpp", "", "text", source, 1)]


def test_mo_to_a_number_no_service_owns(
    mo_server: TidingsServer, simulator: SimulatorProcess, receiver: Receiver, inbound_path: str
):
    source = fresh_msisdn()
    stranger = "+447700900999"
    inject(simulator, source, "STOP", to=stranger)

    def kept() -> bool:
        rows = db_rows(mo_server, "SELECT service_id, text FROM inbound WHERE source = ?", source)
        return rows == [(None, "STOP")]

    wait_until(kept, 10, "the MO to be stored")
    time.sleep(0.3)
    assert webhooks_from(receiver, inbound_path, source) == []
    assert consent_rows(mo_server, source) == [], "no service owns the number: no consent change"
    assert mo_server.client.get("/healthz").status_code == 200
    # Still serving both ways.
    answer = mo_server.send(
        {
            "deliverychannel": "sms",
            "channels": {"sms": {"text": "still here", "senderid": "CONNCT"}},
            "destination": [{"msisdn": [fresh_msisdn()]}],
        },
        KEY_SMPP,
    ).json()
    transid = answer["response"][0]["transid"]
    view = mo_server.wait_message(transid, KEY_SMPP, lambda v: v["status"] == "Delivered")
    assert view["status"] == "Delivered"
    inject(simulator, source, "and to the right number")
    assert wait_webhooks(receiver, inbound_path, source, 1)[0].json["message"] == "and to the right number"


# -- MO forms the simulator does not send, from the rude fake ---------------------------------------------


@pytest.fixture(scope="module")
def fake_mo(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[tuple[RudeSmsc, str]]:
    smsc = RudeSmsc().start()
    path = unique_path("fake-mo")
    server = None
    try:
        config = tidings_config(smsc.port, inbound_url=receiver.url(path))
        server = TidingsServer(tmp_path_factory.mktemp("fake-mo"), config).start()
        wait_until(lambda: len(smsc.binds()) == 1, 10, "the bind")
        yield smsc, path
    finally:
        if server is not None:
            server.close()
        smsc.close()


def mo_pdu(
    source: str,
    text: bytes,
    esm_class: int = 0,
    tlvs: dict[int, bytes] | None = None,
    to: str = SERVICE_NUMBER.removeprefix("+"),
    to_ton: int = 1,
) -> Pdu:
    return Pdu(
        Cmd.DELIVER_SM,
        params={
            "source_addr_ton": 1,
            "source_addr_npi": 1,
            "source_addr": source.removeprefix("+"),
            "dest_addr_ton": to_ton,
            "dest_addr_npi": 1,
            "destination_addr": to,
            "esm_class": esm_class,
            "data_coding": 0,
            "short_message": text,
        },
        tlvs=tlvs or {},
    )


def test_mo_parts_out_of_order_with_sar_tlvs_or_udh(fake_mo: tuple[RudeSmsc, str], receiver: Receiver):
    smsc, path = fake_mo
    sar_source, udh_source = fresh_msisdn(), fresh_msisdn()
    parts = [b"first part, ", b"second part, ", b"third part"]
    for seq in (3, 1, 2):
        sar = {
            Tag.SAR_MSG_REF_NUM: b"\x01\x2c",
            Tag.SAR_TOTAL_SEGMENTS: b"\x03",
            Tag.SAR_SEGMENT_SEQNUM: bytes([seq]),
        }
        assert smsc.request(mo_pdu(sar_source, parts[seq - 1], tlvs=sar)).status == 0
        udh = bytes([5, 0, 3, 0x2C, 3, seq])
        assert smsc.request(mo_pdu(udh_source, udh + parts[seq - 1], esm_class=0x40)).status == 0
    for source in (sar_source, udh_source):
        (hit,) = wait_webhooks(receiver, path, source, 1)
        assert (hit.json["message"], hit.json["messageCount"]) == ("first part, second part, third part", "3")


def test_mo_in_message_payload_and_data_sm(fake_mo: tuple[RudeSmsc, str], receiver: Receiver):
    smsc, path = fake_mo
    source = fresh_msisdn()
    text = "x" * 300
    resp = smsc.request(mo_pdu(source, b"", tlvs={Tag.MESSAGE_PAYLOAD: text.encode()}))
    assert (resp.command_id, resp.status) == (Cmd.DELIVER_SM_RESP, 0)
    (hit,) = wait_webhooks(receiver, path, source, 1)
    assert hit.json["message"] == text
    other = fresh_msisdn()
    data_sm = Pdu(
        Cmd.DATA_SM,
        params={
            "source_addr_ton": 1,
            "source_addr_npi": 1,
            "source_addr": other.removeprefix("+"),
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
            "destination_addr": SERVICE_NUMBER.removeprefix("+"),
            "data_coding": 0,
        },
        tlvs={Tag.MESSAGE_PAYLOAD: b"via data sm"},
    )
    resp = smsc.request(data_sm)
    assert (resp.command_id, resp.status) == (Cmd.DATA_SM_RESP, 0)
    (hit,) = wait_webhooks(receiver, path, other, 1)
    assert hit.json["message"] == "via data sm"


def test_mo_from_an_alphanumeric_sender(fake_mo: tuple[RudeSmsc, str], receiver: Receiver):
    smsc, path = fake_mo
    pdu = mo_pdu("MYBANK", b"hi from a brand")
    pdu.params["source_addr_ton"], pdu.params["source_addr_npi"] = 5, 0
    assert smsc.request(pdu).status == 0
    (hit,) = wait_webhooks(receiver, path, "MYBANK", 1)
    assert (hit.json["oa"], hit.json["da"], hit.json["message"]) == (
        "MYBANK",
        SERVICE_NUMBER,
        "hi from a brand",
    )


@pytest.mark.parametrize(
    ("to", "ton"),
    [
        pytest.param("00447700900000", 0, id="00-prefix"),
        pytest.param("447700900000", 0, id="bare-ton-0"),
        pytest.param("447700900000", 1, id="international"),
    ],
)
def test_mo_destination_forms_find_the_service(
    fake_mo: tuple[RudeSmsc, str], receiver: Receiver, to: str, ton: int
):
    smsc, path = fake_mo
    source = fresh_msisdn()
    assert smsc.request(mo_pdu(source, b"which number", to=to, to_ton=ton)).status == 0
    (hit,) = wait_webhooks(receiver, path, source, 1)
    assert hit.json["da"] == SERVICE_NUMBER, "da is the number as the service configured it"
