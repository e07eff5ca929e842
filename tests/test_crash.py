"""kill -9 right after accepting 200 messages, restart: every one still reaches a final status and is
notified. Accepted means committed."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import KEY_A, assert_no_secrets, config_text, sms, unique_path
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer


@pytest.fixture
def slow_server(tmp_path, receiver: Receiver):
    # A 1.5 s sandbox delay keeps most receipts pending at the moment of the kill.
    s = TidingsServer(tmp_path, config_text(receiver, sandbox_delay_ms=1500)).start()
    yield s
    s.close()
    assert_no_secrets(s)


def test_kill_9_after_accepting_200_then_restart(slow_server: TidingsServer, receiver: Receiver):
    path = unique_path("crash")
    body = sms(["+447700900123"], notifyurl=receiver.url(path))

    def send_batch(n: int) -> list[str]:
        transids = []
        with httpx.Client(base_url=slow_server.url, timeout=30) as client:
            for _ in range(n):
                answer = client.post("/resources/v1/messaging", json=body, headers={"key": KEY_A}).json()
                assert isinstance(answer["response"], list), answer
                transids.append(answer["response"][0]["transid"])
        return transids

    with ThreadPoolExecutor(4) as pool:
        transids = [t for chunk in pool.map(send_batch, [50] * 4) for t in chunk]
    slow_server.kill()
    assert len(set(transids)) == 200
    finals_before = {h.transid for h in receiver.at(path) if h.info["deliveryStatus"] == "Delivered"}
    assert len(finals_before) < 200, "the kill should land while receipts are still pending"

    slow_server.start()
    receiver.wait_for(
        lambda: (
            {h.transid for h in receiver.at(path) if h.info["deliveryStatus"] == "Delivered"} >= set(transids)
        ),
        timeout=60,
    )
    for transid in transids[::20]:
        view = slow_server.client.get(f"/v1/messages/{transid}", headers={"key": KEY_A}).json()
        assert view["status"] == "Delivered"
