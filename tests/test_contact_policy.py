"""Contact policy as a user meets it: an opt-in group refuses an address without consent (9002) until
consent is posted, an expired consent is 9010, a cap of 3 a day refuses the 4th message (9006) even
when all four are dispatched together, and the consent API records, shows and deletes consent."""

import time
import uuid
from typing import Any

from tests.conftest import KEY_A, KEY_B, sms, unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer
from tidings.specs.sms import SMS_FAILURES

FINAL = ("Delivered", "Failed", "Un-Delivered", "Expired")


def fresh() -> str:
    """A number no other test uses (the caps count per address) that the sandbox delivers."""
    while True:
        number = f"+4477009{uuid.uuid4().int % 100_000:05d}"
        if number[-4:] not in SMS_FAILURES:
            return number


def send(server: TidingsServer, msisdns: list[str], group: str, **checks: bool) -> list[str]:
    policy = {"contactPolicyGroup": group, **checks}
    answer = server.send(sms(msisdns, contactPolicy=policy), KEY_A).json()["response"]
    assert isinstance(answer, list), answer
    return [item["transid"] for item in answer]


def final(server: TidingsServer, transid: str) -> tuple[str, str]:
    view = server.wait_message(transid, KEY_A, lambda v: v["status"] in FINAL, 10.0)
    return view["status"], view["code"]


def consent(server: TidingsServer, group: str, body: dict[str, Any], key: str = KEY_A) -> int:
    r = server.client.post(f"/v1/groups/{group}/members", json=body, headers={"key": key})
    return r.status_code


def test_opt_in_group_needs_consent_and_accepts_it_once_posted(server: TidingsServer, receiver: Receiver):
    address = fresh()
    path = unique_path()
    policy = {"contactPolicyGroup": "marketing", "channelCheckConsent": True}
    body = sms([address], contactPolicy=policy, notifyurl=receiver.url(path))
    (refused,) = [i["transid"] for i in server.send(body, KEY_A).json()["response"]]
    assert final(server, refused) == ("Failed", "9002")
    (hit,) = receiver.wait_count(path, 1)
    assert (hit.info["deliveryStatus"], hit.info["code"]) == ("Failed", "9002"), "refusals are notified"
    assert consent(server, "marketing", {"address": address, "channel": "text", "consent": True}) == 204
    (allowed,) = send(server, [address], "marketing", channelCheckConsent=True)
    assert final(server, allowed) == ("Delivered", "7500")
    assert consent(server, "marketing", {"address": address, "channel": "text", "consent": False}) == 204
    (withdrawn,) = send(server, [address], "marketing", channelCheckConsent=True)
    assert final(server, withdrawn) == ("Failed", "9002")


def test_expired_consent_is_9010(server: TidingsServer):
    address = fresh()
    record = {"address": address, "channel": "text", "consent": True, "expires": int(time.time()) - 60}
    assert consent(server, "marketing", record) == 204
    (transid,) = send(server, [address], "marketing", channelCheckConsent=True)
    assert final(server, transid) == ("Failed", "9010")


def test_a_cap_of_3_a_day_refuses_the_4th_even_in_one_batch(server: TidingsServer):
    address = fresh()
    transids = send(server, [address] * 4, "capped", channelApplyFrequencyCap=True)
    outcomes = sorted(final(server, t) for t in transids)
    assert outcomes == [("Delivered", "7500")] * 3 + [("Failed", "9006")]
    (later,) = send(server, [address], "capped", channelApplyFrequencyCap=True)
    assert final(server, later) == ("Failed", "9006")
    (other,) = send(server, [fresh()], "capped", channelApplyFrequencyCap=True)
    assert final(server, other) == ("Delivered", "7500"), "caps count per address"
    (unchecked,) = send(server, [address], "capped", channelCheckConsent=True)
    assert final(server, unchecked) == ("Delivered", "7500"), "only a capped check counts against the cap"


def test_opt_out_group_allows_until_opted_out(server: TidingsServer):
    address = fresh()
    (before,) = send(server, [address], "capped", channelCheckConsent=True)
    assert final(server, before) == ("Delivered", "7500")
    assert consent(server, "capped", {"address": address, "channel": "text", "consent": False}) == 204
    (after,) = send(server, [address], "capped", channelCheckConsent=True)
    assert final(server, after) == ("Failed", "9002")


def test_consent_api_records_shows_and_deletes(server: TidingsServer):
    address = fresh()
    url = "/v1/groups/marketing/members"
    body = {"address": address, "channel": "text", "consent": True, "reason": "web form"}
    assert consent(server, "marketing", body) == 204
    got = server.client.get(url, params={"address": address}, headers={"key": KEY_A})
    assert got.status_code == 200
    assert {k: got.json()[k] for k in ("groupId", "address", "channel", "consent", "reason")} == {
        "groupId": "marketing",
        "address": address,
        "channel": "text",
        "consent": True,
        "reason": "web form",
    }
    assert server.client.delete(url, params={"address": address}, headers={"key": KEY_A}).status_code == 204
    assert server.client.get(url, params={"address": address}, headers={"key": KEY_A}).status_code == 404
    # Another service has no such group; bad input is a 400 naming the field; no credentials is 401.
    assert consent(server, "marketing", body, key=KEY_B) == 404
    bad = server.client.post(url, json={**body, "channel": "fax"}, headers={"key": KEY_A})
    assert (bad.status_code, bad.json()["message"]) == (400, "Invalid parameter - channel")
    missing = server.client.post(url, json={"address": address, "channel": "text"}, headers={"key": KEY_A})
    assert (missing.status_code, missing.json()["code"]) == (400, "7003")
    assert server.client.post(url, json=body).status_code == 401
