"""The dispatcher against a real SQLite store and a scripted connector standing in for a provider:
retryable failures are retried with backoff, final ones fail with the provider's code."""

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from tidings import ids
from tidings.channels.base import Exchange, FailureKind, Outbound, SendError, SendResult
from tidings.dispatch.worker import FREE_RETRY_FOR_S, Dispatcher
from tidings.services import Service, ServiceRegistry
from tidings.statuses import DELIVERED
from tidings.store.base import NewMessage, ProviderAttempt
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
            wire = Exchange(f"try {self.tries[m.transid]} of {m.transid}", "the answer")
            if script:
                error = script.pop(0)
                out.append(
                    SendError(
                        error.kind, error.description, error.code, error.retry_after, error.fallback, wire
                    )
                )
            else:
                out.append(SendResult("ext-" + m.transid, DELIVERED, 0.0, exchange=wire))
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


async def run_until_final(
    tmp_path: Path,
    scripts: dict[str, list[SendError]],
    attempts: dict[str, list[ProviderAttempt]] | None = None,
) -> dict[str, tuple]:
    """Each message's (status, code, attempts, tries, history) once final; `attempts`, when given, gets
    each message's provider attempts."""
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
        if attempts is not None:
            attempts.update({t: await store.attempts_of("svc", t) for t in scripts})
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
    attempts: dict[str, list[ProviderAttempt]] = {}
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
            attempts,
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
    # Every try at the provider is kept, with what the connector said it sent and was answered.
    assert [(a.attempt, a.outcome, a.code, a.detail, a.request) for a in attempts["recovers"]] == [
        (1, "retry", "", "connection: connection refused", "try 1 of recovers"),
        (2, "retry", "", "throttled: slow down", "try 2 of recovers"),  # costs no attempt
        (2, "accepted", "7501", "ext-recovers", "try 3 of recovers"),
    ]
    assert [(a.connector, a.kind, a.answer) for a in attempts["recovers"]] == [
        ("ScriptedProvider", "scripted", "the answer")
    ] * 3
    assert [(a.outcome, a.code) for a in attempts["exhausted"]] == [
        ("retry", ""),
        ("retry", ""),
        ("failed", "7202"),
    ]
    assert [(a.outcome, a.code) for a in attempts["too-late"]] == [("failed", "7208")]


def test_a_message_without_expiry_stops_waiting_for_its_provider_in_the_end(tmp_path: Path):
    """Failures that cost no attempt (nothing sent, throttled) retry a message for as long as its
    expiry allows; one without an expiry is Expired once it is older than FREE_RETRY_FOR_S, instead of
    waiting for ever for a provider that does not come back. A younger one keeps waiting."""
    old = ids.new_ids(1, at=time.time() - FREE_RETRY_FOR_S - 60)[0]
    young = ids.new_id()
    down = SendError(FailureKind.UNAVAILABLE, "no connection to the SMSC")

    async def run() -> tuple[tuple, tuple]:
        store = SqliteStore(str(tmp_path / "t.db"))
        await store.open()
        provider = ScriptedProvider({old: [down] * 50, young: [down] * 50})
        services = ServiceRegistry([Service(id="svc", key="k")])
        dispatcher = Dispatcher(store, services, {"sms": provider}, lambda: None, retry_interval_s=0.1)
        await store.accept([message(old, 0.0), message(young, 0.0)])
        await dispatcher.start()
        try:
            for _ in range(100):
                view = await store.get_message("svc", old)
                if view is not None and view.status in FINAL and provider.tries.get(young, 0) >= 3:
                    break
                await asyncio.sleep(0.05)
            views = [await store.get_message("svc", t) for t in (old, young)]
            return tuple(
                (v.status, v.code, v.attempts, provider.tries[v.transid], [h.status for h in v.history])
                for v in views
                if v is not None
            )
        finally:
            await dispatcher.stop()
            await store.close()

    gone, waiting = asyncio.run(run())
    assert gone == ("Expired", "7208", 0, 1, ["Expired"])
    assert waiting[0] == "Queued" and waiting[2] == 0 and waiting[3] >= 3, waiting
