"""The dispatcher against a real SQLite store and a scripted connector standing in for a provider:
retryable failures are retried with backoff, final ones fail with the provider's code."""

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from tidings.channels.base import FailureKind, Outbound, SendError, SendResult
from tidings.dispatch.worker import Dispatcher
from tidings.services import Service, ServiceRegistry
from tidings.statuses import DELIVERED
from tidings.store.base import NewMessage
from tidings.store.sqlite import SqliteStore

CONTENT = b'{"type":"1","senderid":"CONNCT","text":"x"}'

FINAL = ("Delivered", "Failed", "Un-Delivered", "Expired")


class ScriptedProvider:
    """Answers each transid with its script, one entry per try, then accepts."""

    name: ClassVar[str] = "scripted"

    def __init__(self, scripts: dict[str, list[SendError]]) -> None:
        self.scripts = scripts
        self.tries: dict[str, int] = {}

    async def start(self, inbox: object) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, batch: Sequence[Outbound]) -> list[SendResult | SendError]:
        out: list[SendResult | SendError] = []
        for m in batch:
            self.tries[m.transid] = self.tries.get(m.transid, 0) + 1
            script = self.scripts.get(m.transid, [])
            out.append(script.pop(0) if script else SendResult("ext-" + m.transid, DELIVERED, 0.0))
        return out


EXPIRES_SOON = {"expires-while-retrying"}
FINAL = ("Delivered", "Failed", "Un-Delivered", "Expired")


def message(transid: str, now: float) -> NewMessage:
    expiry = time.time() + 0.1 if transid in EXPIRES_SOON else None
    return NewMessage(
        transid,
        "svc",
        "sms",
        "+447700900123",
        "msisdn",
        CONTENT,
        1,
        None,
        None,
        None,
        2,
        expiry,
        now,
    )


async def run_until_final(tmp_path: Path, scripts: dict[str, list[SendError]]) -> dict[str, tuple]:
    store = SqliteStore(str(tmp_path / "t.db"))
    await store.open()
    provider = ScriptedProvider(scripts)
    services = ServiceRegistry([Service(id="svc", key="k")])
    dispatcher = Dispatcher(
        store, services, {"sms": provider}, lambda: None, retry_interval_s=0.2, max_attempts=3
    )
    await store.accept([message(t, 0.0) for t in scripts])
    await dispatcher.start()
    try:
        for _ in range(100):
            views = {t: await store.get_message("svc", t) for t in scripts}
            if all(v is not None and v.status in FINAL for v in views.values()):
                break
            await asyncio.sleep(0.05)  # no wake-ups: the dispatcher must find due retries by itself
        return {
            t: (v.status, v.code, v.attempts, provider.tries[t], [h.status for h in v.history])
            for t, v in views.items()
            if v is not None
        }
    finally:
        await dispatcher.stop()
        await store.close()


def test_retryable_failures_are_retried_then_final_ones_fail(tmp_path: Path):
    refused = SendError(FailureKind.CONNECTION, "connection refused")
    result = asyncio.run(
        run_until_final(
            tmp_path,
            {
                "recovers": [refused, SendError(FailureKind.THROTTLED, "slow down")],
                # Throttling is the provider's state, not the message's fault: it costs no attempt.
                "throttled": [SendError(FailureKind.THROTTLED, "slow down")] * 4,
                "rejected": [SendError(FailureKind.INVALID, "bad address", code="7102")],
                "exhausted": [refused, refused, refused],
                "unknown-code": [SendError(FailureKind.REJECTED, "provider says no", code="9999")],
                "expires-while-retrying": [refused],  # expiry at +0.1 s; the retry would come at +0.2 s
                # The provider said the message's expiry had passed: Expired, not Failed.
                "too-late": [SendError(FailureKind.INVALID, "expired before sending", code="7208")],
            },
        )
    )
    assert result["recovers"] == ("Delivered", "7500", 2, 3, ["Submitted", "Delivered"])
    assert result["throttled"] == ("Delivered", "7500", 1, 5, ["Submitted", "Delivered"])
    assert result["rejected"] == ("Failed", "7102", 1, 1, ["Failed"])
    assert result["exhausted"] == ("Un-Delivered", "7202", 3, 3, ["Un-Delivered"])
    assert result["unknown-code"] == ("Failed", "9999", 1, 1, ["Failed"])
    assert result["too-late"] == ("Expired", "7208", 1, 1, ["Expired"])
    status, code, _, _, history = result["expires-while-retrying"]
    assert (status, code, history) == ("Expired", "7208", ["Expired"])
