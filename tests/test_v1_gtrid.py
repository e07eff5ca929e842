"""v1 `gtrId`: one entry per destination object, carried by each of that object's messages into every one
of their notifications, as `"x-wx-gtrid"` in `deliveryInfoNotification` and as the `x-wx-gtrid` header."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import KEY_A, sms, unique_path
from tests.support.receiver import Hit, Receiver
from tests.support.server import TidingsServer
from tests.support.smsc import KEY_SMPP, RudeSmsc, fresh_msisdn, tidings_config, wait_until


def send(server: TidingsServer, body: dict[str, Any]) -> list[str]:
    answer = server.send(body, KEY_A).json()["response"]
    assert isinstance(answer, list), answer
    assert [item["code"] for item in answer] == ["1001"] * len(answer), answer
    return [item["transid"] for item in answer]


def by_transid(hits: list[Hit]) -> dict[str, list[Hit]]:
    found: dict[str, list[Hit]] = {}
    for hit in hits:
        found.setdefault(hit.transid, []).append(hit)
    return found


def test_each_destination_objects_gtrid_is_in_every_notification_of_its_messages(
    server: TidingsServer, receiver: Receiver
):
    path = unique_path("gtrid")
    body = sms([], notifyurl=receiver.url(path), gtrId=["gtr-one", "gtr-two:9f3c"])
    body["destination"] = [
        {"msisdn": ["+447700900301", "+447700900302"]},
        {"msisdn": ["+447700900303"], "correlationid": "own"},
    ]
    transids = send(server, body)
    expected = dict(zip(transids, ["gtr-one", "gtr-one", "gtr-two:9f3c"], strict=True))
    seen = by_transid(receiver.wait_count(path, 6))
    assert set(seen) == set(transids)
    for transid, hits in seen.items():
        assert [h.info["deliveryStatus"] for h in hits] == ["Submitted", "Delivered"]
        for hit in hits:
            assert hit.json["deliveryInfoNotification"]["x-wx-gtrid"] == expected[transid]
            assert hit.headers["x-wx-gtrid"] == expected[transid]


def test_a_message_without_gtrid_has_neither_key_nor_header(server: TidingsServer, receiver: Receiver):
    path = unique_path("no-gtrid")
    send(server, sms(["+447700900304"], notifyurl=receiver.url(path), gtrId=None))
    for hit in receiver.wait_count(path, 2):
        assert "x-wx-gtrid" not in hit.json["deliveryInfoNotification"]
        assert "x-wx-gtrid" not in hit.headers


REFUSED = {
    "fewer entries than destination objects": (["only-one"], "gtrId has 1 entries"),
    "more entries than destination objects": (["a", "b", "c"], "gtrId has 3 entries"),
    "an empty array": ([], "gtrId has 0 entries"),
    "not an array": ("gtr-one", "gtrId: expected `array | null`"),
    "an entry that is not a string": (["a", 7], "gtrId[1]: expected `str`"),
    "an empty entry": (["", "b"], "gtrId[0]"),
    "a space in an entry": (["a", "b c"], "gtrId[1]"),
    "a line break in an entry": (["a\r\nx-evil: 1", "b"], "gtrId[0]"),
    "an entry too long": (["a", "g" * 129], "gtrId[1]"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_a_bad_gtrid_is_7004_naming_it(server: TidingsServer, receiver: Receiver, name: str):
    gtrid, words = REFUSED[name]
    path = unique_path("gtrid-refused")
    body = sms([], notifyurl=receiver.url(path), gtrId=gtrid)
    body["destination"] = [{"msisdn": ["+447700900305"]}, {"msisdn": ["+447700900306"]}]
    r = server.send(body, KEY_A)
    assert r.status_code == 200
    response = r.json()["response"]
    assert isinstance(response, dict), response
    assert response["code"] == "7004", response
    assert words in response["description"]
    # Nothing of it was stored: a later message to the same URL is the only one notified there.
    (probe,) = send(server, sms(["+447700900308"], notifyurl=receiver.url(path)))
    assert {h.transid for h in receiver.wait_count(path, 2)} == {probe}


def test_the_longest_gtrid_is_taken(server: TidingsServer, receiver: Receiver):
    path = unique_path("gtrid-long")
    longest = "G" * 128
    send(server, sms(["+447700900307"], notifyurl=receiver.url(path), gtrId=[longest]))
    assert {h.headers["x-wx-gtrid"] for h in receiver.wait_count(path, 2)} == {longest}


# -- through an SMSC: the Delivered notification comes from the SMSC's receipt -----------------------


@pytest.fixture(scope="module")
def smpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TidingsServer]:
    smsc = RudeSmsc(receipt_delay_s=0.02).start()  # in-process: accepts every submit, then a receipt
    try:
        server = TidingsServer(tmp_path_factory.mktemp("serve"), tidings_config(smsc.port), []).start()
        try:
            wait_until(lambda: smsc.bound_connections() > 0, 10, "a bind at the SMSC")
            yield server
        finally:
            assert server.stop() == 0, server.output()
            server.close()
    finally:
        smsc.close()


def test_the_gtrid_is_in_the_notification_of_an_smsc_receipt(smpp_server: TidingsServer, receiver: Receiver):
    path = unique_path("gtrid-smpp")
    first, second = fresh_msisdn(), fresh_msisdn()
    body = sms([], notifyurl=receiver.url(path), gtrId=["smpp-a", "smpp-b"])
    body["destination"] = [{"msisdn": [first]}, {"msisdn": [second]}]
    answer = smpp_server.send(body, KEY_SMPP).json()["response"]
    assert [item["code"] for item in answer] == ["1001", "1001"], answer
    expected = {answer[0]["transid"]: "smpp-a", answer[1]["transid"]: "smpp-b"}
    seen = by_transid(receiver.wait_count(path, 4))
    assert set(seen) == set(expected)
    for transid, hits in seen.items():
        assert [h.info["deliveryStatus"] for h in hits] == ["Submitted", "Delivered"]
        for hit in hits:
            assert hit.json["deliveryInfoNotification"]["x-wx-gtrid"] == expected[transid]
            assert hit.headers["x-wx-gtrid"] == expected[transid]
