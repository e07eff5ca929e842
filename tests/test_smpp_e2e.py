"""`tidings serve` sending SMS through a real `tidings smsc` simulator: statuses and notifications as a
user sees them, and the SMPP traffic as the SMSC sees it."""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import unique_path
from tests.support.attempts import message_page
from tests.support.receiver import Hit, Receiver
from tests.support.server import TidingsServer
from tests.support.smsc import (
    KEY_SMPP,
    SMSC_PASSWORD,
    SimulatorProcess,
    assert_no_smpp_secrets,
    fresh_msisdn,
    tidings_config,
    wait_until,
)

FINAL = ("Delivered", "Un-Delivered", "Failed", "Expired")


def assert_password_not_leaked(server: TidingsServer) -> None:
    assert_no_smpp_secrets(server.output())


def start_server(workdir: Path, config: str, *args: str) -> TidingsServer:
    workdir.mkdir(parents=True, exist_ok=True)
    return TidingsServer(workdir, config, list(args)).start()


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    sim = SimulatorProcess(tmp_path_factory.mktemp("smsc"), "--password", SMSC_PASSWORD, dlr_delay_ms=50)
    sim.start()
    try:
        yield sim
    finally:
        sim.close()


@pytest.fixture(scope="module")
def smpp_server(
    tmp_path_factory: pytest.TempPathFactory, simulator: SimulatorProcess
) -> Iterator[TidingsServer]:
    # Debug logging: the strictest setting for the check that the SMSC password is never printed.
    config = tidings_config(simulator.port, dlt_tlv=0x1400)
    server = start_server(tmp_path_factory.mktemp("serve"), config, "--log-level", "debug")
    try:
        simulator.wait_bound()
        yield server
    finally:
        code = server.stop()
        server.close()
    assert code == 0, server.output()
    assert_password_not_leaked(server)


def send(server: TidingsServer, addresses: list[str], sms: dict[str, Any], **extra: Any) -> list[str]:
    body: dict[str, Any] = {
        "deliverychannel": "sms",
        "channels": {"sms": {"senderid": "CONNCT", **sms}},
        "destination": [{"msisdn": addresses}],
        **extra,
    }
    answer = server.send(body, KEY_SMPP).json()
    assert isinstance(answer["response"], list), answer
    assert [item["code"] for item in answer["response"]] == ["1001"] * len(addresses), answer
    return [item["transid"] for item in answer["response"]]


def wait_final(server: TidingsServer, transid: str, timeout: float = 10.0) -> dict[str, Any]:
    view = server.wait_message(transid, KEY_SMPP, lambda v: v["status"] in FINAL, timeout)
    assert view["status"] in FINAL, view
    return view


def submits_to(simulator: SimulatorProcess, msisdn: str) -> list[dict[str, Any]]:
    return [s for s in simulator.submits() if s["destination_addr"] == msisdn.removeprefix("+")]


def finals(hits: list[Hit]) -> dict[str, Hit]:
    return {h.transid: h for h in hits if h.info["deliveryStatus"] != "Submitted"}


# -- statuses, notifications, history --------------------------------------------------------------


def test_statuses_are_notified_and_message_counts_are_real_segments(
    smpp_server: TidingsServer, simulator: SimulatorProcess, receiver: Receiver
):
    path = unique_path("smpp")
    ok1, ok2 = fresh_msisdn(), fresh_msisdn()
    unknown = fresh_msisdn()[:-4] + "7203"
    expired = fresh_msisdn()[:-4] + "7208"
    plain = send(
        smpp_server, [ok1, unknown, expired], {"text": "hello over SMPP"}, notifyurl=receiver.url(path)
    )
    gsm_long = send(smpp_server, [ok2], {"text": "a" * 161}, notifyurl=receiver.url(path))
    ucs2 = fresh_msisdn()
    ucs2_long = send(smpp_server, [ucs2], {"text": "Ж" * 71, "type": "4"}, notifyurl=receiver.url(path))
    transids = plain + gsm_long + ucs2_long
    hits = receiver.wait_count(path, 2 * len(transids))
    assert {h.transid for h in hits} == set(transids)
    by_transid: dict[str, list[Hit]] = {}
    for hit in hits:
        by_transid.setdefault(hit.transid, []).append(hit)
    for transid, mine in by_transid.items():
        assert len(mine) == 2, [h.info for h in mine]
        assert (mine[0].info["deliveryStatus"], mine[0].info["code"]) == ("Submitted", "7501"), transid
    outcome = {
        h.info["destination"]: (h.info["deliveryStatus"], h.info["code"]) for h in finals(hits).values()
    }
    assert outcome == {
        ok1: ("Delivered", "7500"),
        unknown: ("Un-Delivered", "7203"),
        expired: ("Expired", "7208"),
        ok2: ("Delivered", "7500"),
        ucs2: ("Delivered", "7500"),
    }
    counts = {h.info["destination"]: h.info["messageCount"] for h in hits}
    assert counts == {ok1: "1", unknown: "1", expired: "1", ok2: "2", ucs2: "2"}
    # The counts are what actually went over the wire.
    assert len(submits_to(simulator, ok2)) == 2
    assert len(submits_to(simulator, ucs2)) == 2
    assert len(submits_to(simulator, ok1)) == 1

    view = smpp_server.message(plain[0], KEY_SMPP)
    assert [(h["status"], h["code"]) for h in view["history"]] == [
        ("Queued", "1001"),
        ("Submitted", "7501"),
        ("Delivered", "7500"),
    ]
    assert (view["status"], view["code"], view["messageCount"]) == ("Delivered", "7500", 1)


# -- what goes over the wire ---------------------------------------------------------------------------


# The data coding by SMS type, and the addresses' TON/NPI by the sender id's form, as golden submit_sm:
# tests/connectors/cases_smpp.py (DATA_CODINGS, ADDRESSES), run by the connector runner.


def test_long_message_parts_carry_one_concatenation_reference(
    smpp_server: TidingsServer, simulator: SimulatorProcess
):
    first, second = fresh_msisdn(), fresh_msisdn()
    text = "".join(str(i % 10) for i in range(400))  # 400 GSM characters: 3 parts of <= 153
    transids = send(smpp_server, [first, second], {"text": text})
    for transid in transids:
        view = wait_final(smpp_server, transid)
        assert (view["status"], view["messageCount"]) == ("Delivered", 3)
    refs = []
    for msisdn in (first, second):
        parts = submits_to(simulator, msisdn)
        assert len(parts) == 3
        udhs = [bytes.fromhex(p["short_message"])[:6] for p in parts]
        assert all(p["esm_class"] == 0x40 for p in parts)
        assert all(udh[:3] == b"\x05\x00\x03" for udh in udhs), udhs
        assert {udh[3] for udh in udhs} == {udhs[0][3]}, "every part must carry the same reference"
        assert sorted((udh[4], udh[5]) for udh in udhs) == [(3, 1), (3, 2), (3, 3)]
        body = b"".join(
            bytes.fromhex(p["short_message"])[6:]
            for p in sorted(parts, key=lambda p: p["short_message"][10:12])
        )
        assert body.decode("ascii") == text
        refs.append(udhs[0][3])
    assert refs[0] != refs[1], "two long messages must not share a concatenation reference"


@pytest.mark.parametrize("mode", ["sar", "payload"])
def test_long_messages_as_sar_tlvs_or_one_payload(tmp_path: Path, simulator: SimulatorProcess, mode: str):
    server = start_server(tmp_path, tidings_config(simulator.port, long_messages=mode, system_id=f"t-{mode}"))
    try:
        msisdn = fresh_msisdn()
        text = "b" * 300  # 2 parts
        (transid,) = send(server, [msisdn], {"text": text})
        view = wait_final(server, transid)
        assert view["status"] == "Delivered"
        submits = submits_to(simulator, msisdn)
        if mode == "payload":
            (submit,) = submits
            assert submit["short_message"] == ""
            assert submit["tlvs"]["0x0424"] == text.encode("ascii").hex()
            assert submit["esm_class"] == 0
        else:
            assert len(submits) == 2
            refs = {s["tlvs"]["0x020C"] for s in submits}
            assert len(refs) == 1 and len(refs.pop()) == 4  # one 16-bit reference for both parts
            assert sorted(s["tlvs"]["0x020F"] for s in submits) == ["01", "02"]
            assert {s["tlvs"]["0x020E"] for s in submits} == {"02"}
            assert all(s["esm_class"] & 0x40 == 0 for s in submits), "no UDH with SAR"
            whole = b"".join(
                bytes.fromhex(s["short_message"]) for s in sorted(submits, key=lambda s: s["tlvs"]["0x020F"])
            )
            assert whole.decode("ascii") == text
    finally:
        server.close()
    assert_password_not_leaked(server)


def test_dlt_template_id_travels_in_the_configured_tlv(
    smpp_server: TidingsServer, simulator: SimulatorProcess
):
    msisdn = fresh_msisdn()
    template = "1107161234567890123"
    (transid,) = send(smpp_server, [msisdn], {"text": "dlt", "extras": {"dlt_templateid": template}})
    wait_final(smpp_server, transid)
    (submit,) = submits_to(simulator, msisdn)
    assert submit["tlvs"] == {"0x1400": template.encode("ascii").hex()}
    _, (tried,) = message_page(smpp_server.url, KEY_SMPP, transid)
    assert f"segments 1\ntlv 0x1400 {template}\ntext dlt" in tried.request
    # Without a template id, no TLV.
    other = fresh_msisdn()
    (transid,) = send(smpp_server, [other], {"text": "no dlt"})
    wait_final(smpp_server, transid)
    (submit,) = submits_to(simulator, other)
    assert submit["tlvs"] == {}


def test_expiry_becomes_an_absolute_validity_period(smpp_server: TidingsServer, simulator: SimulatorProcess):
    msisdn = fresh_msisdn()
    (transid,) = send(smpp_server, [msisdn], {"text": "expires"}, expiry="2099-01-02T03:04:05Z")
    wait_final(smpp_server, transid)
    (submit,) = submits_to(simulator, msisdn)
    assert submit["validity_period"] == "990102030405000+"
    # With an offset: the absolute time is written in UTC.
    other = fresh_msisdn()
    (transid,) = send(smpp_server, [other], {"text": "expires"}, expiry="2099-01-02T08:34:05+05:30")
    wait_final(smpp_server, transid)
    (submit,) = submits_to(simulator, other)
    assert submit["validity_period"] == "990102030405000+"


def test_multipart_message_is_delivered_once_after_all_parts(
    smpp_server: TidingsServer, simulator: SimulatorProcess, receiver: Receiver
):
    path = unique_path("multipart")
    msisdn = fresh_msisdn()
    (transid,) = send(smpp_server, [msisdn], {"text": "c" * 459}, notifyurl=receiver.url(path))  # 3 x 153
    hits = receiver.wait_count(path, 2)
    view = wait_final(smpp_server, transid)
    assert (view["status"], view["code"], view["messageCount"]) == ("Delivered", "7500", 3)
    assert len(submits_to(simulator, msisdn)) == 3
    time.sleep(0.3)  # the other two parts' receipts have come by now: they must not notify again
    hits = receiver.at(path)
    assert [(h.info["deliveryStatus"], h.info["messageCount"]) for h in hits] == [
        ("Submitted", "3"),
        ("Delivered", "3"),
    ]
    assert [h["status"] for h in smpp_server.message(transid, KEY_SMPP)["history"]] == [
        "Queued",
        "Submitted",
        "Delivered",
    ]
    # One provider attempt: the submit_sm fields, the three parts, and the SMSC's three answers.
    page, (tried,) = message_page(smpp_server.url, KEY_SMPP, transid)
    assert (tried.outcome, tried.connector, tried.code) == ("accepted", "carrier-a (smpp)", "7501")
    assert tried.request.splitlines() == [
        "submit_sm x 3",
        "source_addr CONNCT (ton 5, npi 0)",
        f"destination_addr {msisdn.removeprefix('+')} (ton 1, npi 1)",
        "data_coding 0x00, esm_class 0x40, registered_delivery 1",
        "segments 3 (UDH)",
        "text " + "c" * 459,
    ]
    answers = tried.answer.splitlines()
    assert len(answers) == 3 and all(a.startswith("submit_sm_resp ESME_ROK message_id ") for a in answers)
    assert_no_smpp_secrets(page)


def test_smsc_password_is_never_printed(smpp_server: TidingsServer):
    assert "carrier-a" in smpp_server.output()  # the server did talk about its SMSC
    assert_password_not_leaked(smpp_server)


def test_transmitter_and_receiver_binds(tmp_path: Path, simulator: SimulatorProcess, receiver: Receiver):
    """bind = "transmitter+receiver": submits go on the transmitter, receipts come on the receiver. This
    config also overrides the source TON/NPI."""
    config = tidings_config(
        simulator.port, bind="transmitter+receiver", system_id="t-txrx", source_ton=3, source_npi=9
    )
    server = start_server(tmp_path, config)
    try:
        wait_until(
            lambda: (
                sorted(b["mode"] for b in simulator.stats()["bound"] if b["system_id"] == "t-txrx")
                == ["receiver", "transmitter"]
            ),
            10,
            "a transmitter and a receiver bind",
        )
        path = unique_path("txrx")
        addresses = [fresh_msisdn(), fresh_msisdn()[:-4] + "7203"]
        transids = send(server, addresses, {"text": "two binds"}, notifyurl=receiver.url(path))
        hits = receiver.wait_count(path, 4)
        assert {t: h.info["code"] for t, h in finals(hits).items()} == dict(
            zip(transids, ["7500", "7203"], strict=True)
        )
        submit = submits_to(simulator, addresses[0])[0]
        assert (submit["source_addr"], submit["source_addr_ton"], submit["source_addr_npi"]) == (
            "CONNCT",
            3,
            9,
        )
    finally:
        server.close()
    assert_password_not_leaked(server)


# -- id forms, crash recovery ------------------------------------------------------------------------------


def test_decimal_message_ids_are_correlated(tmp_path: Path, receiver: Receiver):
    sim = SimulatorProcess(tmp_path, "--id-format", "dec", dlr_delay_ms=30).start()
    server = None
    try:
        server = start_server(tmp_path / "serve", tidings_config(sim.port))
        path = unique_path("dec")
        addresses = [fresh_msisdn() for _ in range(3)]
        transids = send(server, addresses, {"text": "decimal ids"}, notifyurl=receiver.url(path))
        hits = receiver.wait_count(path, 6)
        assert {t: h.info["code"] for t, h in finals(hits).items()} == dict.fromkeys(transids, "7500")
        assert all(s["message_id"].isdigit() for s in sim.submits())
        assert sim.stats()["receipts_acked"] == 3
    finally:
        if server is not None:
            server.close()
        sim.close()


def test_kill_9_with_receipts_pending_then_restart(tmp_path: Path, receiver: Receiver):
    # Receipts come 0.8 s after each submit: most are still due when tidings dies, so the SMSC holds them
    # for the unbound system id and sends them once tidings binds again.
    sim = SimulatorProcess(tmp_path, dlr_delay_ms=800).start()
    path = unique_path("smpp-crash")
    try:
        server = start_server(tmp_path / "serve", tidings_config(sim.port, notify_url=receiver.url(path)))
    except BaseException:
        sim.close()
        raise
    try:
        sim.wait_bound()

        def send_batch(n: int) -> list[str]:
            out = []
            with httpx.Client(base_url=server.url, timeout=30) as client:
                for _ in range(n):
                    body = {
                        "deliverychannel": "sms",
                        "channels": {"sms": {"text": "crash test", "senderid": "CONNCT"}},
                        "destination": [{"msisdn": [fresh_msisdn()]}],
                    }
                    answer = client.post(
                        "/resources/v1/messaging", json=body, headers={"key": KEY_SMPP}
                    ).json()
                    assert isinstance(answer["response"], list), answer
                    out.append(answer["response"][0]["transid"])
            return out

        with ThreadPoolExecutor(5) as pool:
            transids = [t for chunk in pool.map(send_batch, [10] * 5) for t in chunk]
        server.kill()
        assert len(set(transids)) == 50
        done_before = set(finals(receiver.at(path)))
        assert len(done_before) < 50, "the kill should land while receipts are still pending"
        # The SMSC notices the dead connection and keeps the receipts that fall due meanwhile.
        wait_until(
            lambda: sim.stats()["bound"] == [] and sim.stats()["receipts_held"] > 0, 5, "held receipts"
        )

        server.start()
        receiver.wait_for(lambda: set(finals(receiver.at(path))) >= set(transids), timeout=40)
        outcomes = {t: h.info["deliveryStatus"] for t, h in finals(receiver.at(path)).items()}
        assert set(outcomes.values()) == {"Delivered"}
        for transid in transids[::7]:
            assert server.message(transid, KEY_SMPP)["status"] == "Delivered"
        assert sim.stats()["receipts_held"] == 0
    finally:
        server.close()
        sim.close()
    assert_password_not_leaked(server)


# -- the SMS API through SMPP ----------------------------------------------------------------------------


def test_sms_api_end_to_end_through_the_smsc(
    smpp_server: TidingsServer, simulator: SimulatorProcess, receiver: Receiver
):
    path = unique_path("sms-api")
    ok, unknown = fresh_msisdn(), fresh_msisdn()[:-4] + "7203"
    ids = []
    for to in (ok, unknown):
        r = smpp_server.client.post(
            "/v1/sms/messages",
            headers={"Authorization": f"Bearer {KEY_SMPP}"},
            json={
                "from": "CONNCT",
                "to": to,
                "content": "Hi {{name}}, ½ price today",  # ½ is not GSM 03.38: UCS-2
                "substitutions": {"name": "Ann"},
                "dltTemplateId": "1107000000000000001",
                "callbackUrl": receiver.url(path),
                "callbackData": "cb",
            },
        )
        assert r.status_code == 202, r.text
        ids.append(r.json()["messageId"])
    hits = receiver.wait_count(path, 4)
    final = {h.transid: (h.info["deliveryStatus"], h.info["code"]) for h in finals(hits).values()}
    assert final == {ids[0]: ("Delivered", "7500"), ids[1]: ("Un-Delivered", "7203")}
    assert all(h.json["deliveryInfoNotification"]["callbackData"] == "cb" for h in hits)
    (submit,) = submits_to(simulator, ok)
    assert submit["data_coding"] == 8
    assert bytes.fromhex(submit["short_message"]).decode("utf-16-be") == "Hi Ann, ½ price today"
    assert bytes.fromhex(submit["tlvs"]["0x1400"]) == b"1107000000000000001"
    views = [
        smpp_server.client.get(f"/v1/sms/messages/{i}", headers={"Authorization": KEY_SMPP}).json()
        for i in ids
    ]
    assert [v["status"] for v in views] == ["DELIVERED", "FAILED"]
    assert views[1]["error"] == {"code": "7203", "message": "Unknown subscriber"}
