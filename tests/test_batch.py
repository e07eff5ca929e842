"""A 1000-address request: 1000 distinct transids, and every one reaches a final notification."""

from tests.conftest import KEY_A, sms, unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer


def test_thousand_addresses(server: TidingsServer, receiver: Receiver):
    path = unique_path("batch")
    addresses = [f"+447700{7000 + i:06d}" for i in range(1000)]  # last four digits 7000-7999
    r = server.send(sms(addresses, notifyurl=receiver.url(path)), KEY_A)
    items = r.json()["response"]
    assert len(items) == 1000 and all(i["code"] == "1001" for i in items)
    transids = [i["transid"] for i in items]
    assert len(set(transids)) == 1000
    # Delivery is at least once: a POST that outlives the 2 s notify timeout is sent again, with the
    # same X-Tidings-Event-Id, so count distinct events, as a receiver deduplicating by that id would.
    receiver.wait_for(lambda: len({h.headers["x-tidings-event-id"] for h in receiver.at(path)}) >= 2000, 60)
    hits = list({h.headers["x-tidings-event-id"]: h for h in receiver.at(path)}.values())
    finals = {h.transid: h.info for h in hits if h.info["deliveryStatus"] != "Submitted"}
    assert set(finals) == set(transids)
    assert {f["destination"] for f in finals.values()} == set(addresses)
    # The sandbox's failure codes apply inside batches too.
    assert (finals[transids[203]]["code"], finals[transids[203]]["deliveryStatus"]) == (
        "7203",
        "Un-Delivered",
    )
    assert sum(1 for f in finals.values() if f["code"] == "7500") > 900
    assert len(hits) == 2000, "exactly one Submitted and one final event per message"
