"""The RCS connector against the RBM stand-in (tests/standins/rbm.py): each content type arrives as the
AgentMessage RBM expects, under the transid as messageId; RBM's answers become the RCS codes and the
failure catalogue; a number RBM does not know takes the SMS fallback when the message has one. And the
fallback through the real dispatcher and store (both backends): one transid, its channel now SMS, its
notifications saying so."""

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.standins.rbm import ALL_FEATURES, RbmStandIn, rpc_error
from tests.support.backends import Backend, backend
from tidings.apps import App, AppRegistry
from tidings.channels.base import FailureKind, Outbound, SendError, SendResult
from tidings.channels.rcs.connector import RcsConnector
from tidings.channels.rcs.settings import RcsSettings
from tidings.channels.sandbox.connector import SandboxConnector
from tidings.dispatch.worker import Dispatcher
from tidings.schema.rcs import RcsMessage, fallback_sms, read_content, read_options
from tidings.schema.sms import SmsContent
from tidings.services import Service, ServiceRegistry
from tidings.specs import rcs_codes
from tidings.store.base import NewMessage, NotificationResult

__all__ = ["backend"]

REACHABLE = "+447700900001"
UNREACHABLE = "+447700900404"


def outbound(content: RcsMessage, to: str = REACHABLE, transid: str = "t-1") -> Outbound:
    return Outbound(transid, "svc", "rcs", to, content, 1, None, "msisdn")


def message(content: dict[str, Any], options: dict[str, Any] | None = None) -> RcsMessage:
    rcs = read_content(content)
    msg = RcsMessage(appid="rcs-app", rcs=rcs)
    fallback = read_options(options or {}, ("CONNCT",))
    if fallback is not None:
        msg.sms, _ = fallback_sms(fallback, rcs, {})
    return msg


class Rig:
    def __init__(self, rbm: RbmStandIn, connector: RcsConnector) -> None:
        self.rbm = rbm
        self.connector = connector

    async def send(self, *batch: Outbound) -> list[SendResult | SendError]:
        return await self.connector.send(list(batch))


def run(tmp_path: Path, scenario: Any, **settings: Any) -> Any:
    async def main() -> Any:
        async with RbmStandIn(reachable={REACHABLE: ALL_FEATURES}) as rbm:
            key = rbm.write_key_file(tmp_path / "rbm.json")
            block = RcsSettings(
                agent_id=rbm.agent_id,
                service_account_file=str(key),
                client_token="ct-secret",
                base_url=rbm.base_url,
                **settings,
            )
            apps = AppRegistry([App("rcs-app", "svc", rcs=block, base_dir=tmp_path)])
            connector = RcsConnector(apps, 0)
            try:
                return await scenario(Rig(rbm, connector))
            finally:
                await connector.stop()

    return asyncio.run(main())


TEXT = {
    "type": "text",
    "text": "Your parcel is on its way",
    "suggestions": [
        {"type": "reply", "displayText": "Track", "postbackData": "track"},
        {"type": "openUrl", "displayText": "Open", "url": "https://example.com/p/1"},
        {"type": "dialPhone", "displayText": "Call us", "phone": "+447700900999"},
        {
            "type": "viewLocation",
            "displayText": "Depot",
            "latitude": 51.5,
            "longitude": -0.12,
            "label": "Depot",
        },
        {"type": "shareLocation", "displayText": "Where are you?"},
        {
            "type": "calendarEvent",
            "displayText": "Add to calendar",
            "startTime": "2026-12-01T10:00:00Z",
            "endTime": "2026-12-01T11:00:00+00:00",
            "meetingTitle": "Delivery",
            "meetingDescription": "Between 10 and 11",
        },
    ],
}
CARD = {
    "title": "Boots",
    "description": "Size 42",
    "media": {"url": "https://example.com/b.png", "height": "TALL"},
}


def test_each_content_type_reaches_rbm_as_an_agent_message(tmp_path: Path) -> None:
    contents = {
        "text": TEXT,
        "media": {"type": "media", "mediaContentUrl": "https://example.com/v.mp4", "thumbnailUrl": "https://example.com/t.jpg"},
        "standalone": {
            "type": "STANDALONE",
            "richCard": {**CARD, "orientation": "HORIZONTAL", "thumbnailAlignment": "RIGHT",
                         "suggestions": [{"type": "reply", "displayText": "Buy", "postbackData": "buy-42"}]},
        },
        "carousel": {"type": "carousel",
                     "richCard": {"cardWidth": "SMALL", "cards": [CARD, {"title": "Hat"}]}},
    }  # fmt: skip

    async def scenario(rig: Rig) -> list[Any]:
        results = await rig.send(*(outbound(message(c), transid=f"t-{k}") for k, c in contents.items()))
        return [results, rig.rbm.sent()]

    results, sent = run(tmp_path, scenario)
    assert all(isinstance(r, SendResult) and r.receipt is None for r in results)
    bodies = {c.query["messageId"]: c.body["contentMessage"] for c in sent}
    assert {c.query["agentId"] for c in sent} == {"tidings-test-agent"}
    assert {c.phone for c in sent} == {REACHABLE}
    assert all(c.authorization.startswith("Bearer ya29.rbm-") for c in sent)
    text = bodies["t-text"]
    assert text["text"] == "Your parcel is on its way"
    assert text["suggestions"] == [
        {"reply": {"text": "Track", "postbackData": "track"}},
        {"action": {"text": "Open", "postbackData": "Open", "openUrlAction": {"url": "https://example.com/p/1"}}},
        {"action": {"text": "Call us", "postbackData": "Call us",
                    "dialAction": {"phoneNumber": "+447700900999"}}},
        {"action": {"text": "Depot", "postbackData": "Depot",
                    "viewLocationAction": {"latLong": {"latitude": 51.5, "longitude": -0.12},
                                           "label": "Depot"}}},
        {"action": {"text": "Where are you?", "postbackData": "Where are you?", "shareLocationAction": {}}},
        {"action": {"text": "Add to calendar", "postbackData": "Add to calendar",
                    "createCalendarEventAction": {"startTime": "2026-12-01T10:00:00Z",
                                                  "endTime": "2026-12-01T11:00:00Z",
                                                  "title": "Delivery", "description": "Between 10 and 11"}}},
    ]  # fmt: skip
    assert bodies["t-media"] == {
        "contentInfo": {"fileUrl": "https://example.com/v.mp4", "thumbnailUrl": "https://example.com/t.jpg"}
    }
    standalone = bodies["t-standalone"]["richCard"]["standaloneCard"]
    assert standalone["cardOrientation"] == "HORIZONTAL"
    assert standalone["thumbnailImageAlignment"] == "RIGHT"
    assert standalone["cardContent"] == {
        "title": "Boots",
        "description": "Size 42",
        "media": {"height": "TALL", "contentInfo": {"fileUrl": "https://example.com/b.png"}},
        "suggestions": [{"reply": {"text": "Buy", "postbackData": "buy-42"}}],
    }
    carousel = bodies["t-carousel"]["richCard"]["carouselCard"]
    assert carousel["cardWidth"] == "SMALL"
    assert [c.get("title") for c in carousel["cardContents"]] == ["Boots", "Hat"]


def test_rbm_answers_become_rcs_codes_and_failure_kinds(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> dict[str, Any]:
        rig.rbm.answers["+447700900429"] = (429, rpc_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded"))
        rig.rbm.answers["+447700900503"] = (503, rpc_error(503, "UNAVAILABLE", "The service is unavailable."))
        rig.rbm.answers["+447700900500"] = (500, rpc_error(500, "INTERNAL", "Internal error"))
        rig.rbm.answers["+447700900400"] = (400, rpc_error(400, "INVALID_ARGUMENT", "Invalid JSON payload"))
        rig.rbm.answers["+447700900401"] = (
            400,
            rpc_error(400, "INVALID_ARGUMENT", "fileUrl cannot be fetched"),
        )
        rig.rbm.answers["+447700900403"] = (
            403,
            rpc_error(403, "PERMISSION_DENIED", "Agent is not permitted"),
        )
        plain = message({"type": "text", "text": "hi"})
        numbers = ["+447700900429", "+447700900503", "+447700900500", "+447700900400", "+447700900401",
                   "+447700900403", UNREACHABLE]  # fmt: skip
        results = await rig.send(*(outbound(plain, n, f"t{i}") for i, n in enumerate(numbers)))
        # The same messageId twice: RBM's 409 is the first send's success.
        first = await rig.send(outbound(plain, REACHABLE, "again"))
        second = await rig.send(outbound(plain, REACHABLE, "again"))
        return {"results": dict(zip(numbers, results, strict=True)), "repeat": first + second}

    out = run(tmp_path, scenario)
    got = {n: (r.kind, r.code, r.fallback) for n, r in out["results"].items() if isinstance(r, SendError)}
    assert got == {
        "+447700900429": (FailureKind.THROTTLED, rcs_codes.TPS_EXCEEDED, None),
        "+447700900503": (FailureKind.UNAVAILABLE, rcs_codes.MAAP_FAILURE, None),
        "+447700900500": (FailureKind.CONNECTION, rcs_codes.MAAP_FAILURE, None),
        "+447700900400": (FailureKind.INVALID, rcs_codes.BAD_REQUEST, None),
        "+447700900401": (FailureKind.INVALID, rcs_codes.INVALID_MEDIA, None),
        "+447700900403": (FailureKind.CONFIG, rcs_codes.AUTH_FAILURE, None),
        UNREACHABLE: (FailureKind.REJECTED, rcs_codes.NOT_RCS_USER, None),
    }
    assert "Quota exceeded" in out["results"]["+447700900429"].description
    assert all(isinstance(r, SendResult) for r in out["repeat"])


def test_a_revoked_token_is_replaced_once_and_a_grant_is_cached(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> tuple[Any, int, int]:
        plain = message({"type": "text", "text": "hi"})
        await rig.send(outbound(plain, transid="a"))
        rig.rbm.unauthorized_next = 1
        again = await rig.send(outbound(plain, transid="b"), outbound(plain, transid="c"))
        rig.rbm.unauthorized_next = 2
        refused = await rig.send(outbound(plain, transid="d"))
        return again + refused, rig.rbm.token_requests, len(rig.rbm.sent())

    results, grants, _ = run(tmp_path, scenario)
    assert [type(r).__name__ for r in results[:2]] == ["SendResult", "SendResult"]
    refused = results[2]
    assert isinstance(refused, SendError) and refused.kind is FailureKind.CONFIG
    assert refused.code == rcs_codes.AUTH_FAILURE
    assert grants <= 4  # one at first, one after each 401 (the two concurrent sends share one)
    assert "ya29" not in refused.description


def test_unreachable_with_sms_fallback_hands_back_the_sms(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> list[Any]:
        options = {"smsFallback": True, "smsSenderId": "CONNCT", "text": "Your parcel: example.com/p/1"}
        card = message({"type": "standalone", "richCard": CARD}, options)
        own_text = message({"type": "text", "text": "Hello"}, {"smsFallback": True, "smsSenderId": "CONNCT"})
        return await rig.send(outbound(card, UNREACHABLE, "a"), outbound(own_text, UNREACHABLE, "b"))

    first, second = run(tmp_path, scenario)
    assert isinstance(first, SendError) and first.code == rcs_codes.NOT_RCS_USER
    assert first.fallback is not None and first.fallback.channel == "sms"
    assert msgspec.json.decode(first.fallback.content, type=SmsContent) == SmsContent(
        type="1", senderid="CONNCT", text="Your parcel: example.com/p/1"
    )
    assert isinstance(second, SendError) and second.fallback is not None
    assert json.loads(second.fallback.content)["text"] == "Hello"


def test_capability_lookup_spares_the_send_and_checks_features(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> tuple[list[Any], list[Any]]:
        rig.rbm.reachable["+447700900777"] = frozenset({"RICHCARD_STANDALONE"})  # no carousel, no actions
        carousel = message({"type": "carousel", "richCard": {"cards": [CARD, CARD]}})
        text = message({"type": "text", "text": "hi"}, {"smsFallback": True, "smsSenderId": "CONNCT"})
        results = await rig.send(
            outbound(carousel, "+447700900777", "a"),
            outbound(text, UNREACHABLE, "b"),
            outbound(carousel, REACHABLE, "c"),
        )
        return results, rig.rbm.calls

    (lacking, unreachable, sent), calls = run(tmp_path, scenario, check_capabilities=True)
    assert isinstance(lacking, SendError) and lacking.code == rcs_codes.UNSUPPORTED_FEATURE
    assert "RICHCARD_CAROUSEL" in lacking.description
    assert isinstance(unreachable, SendError) and unreachable.fallback is not None
    assert isinstance(sent, SendResult)
    assert sorted(f"{c.method} {c.phone}" for c in calls) == sorted(
        ["GET +447700900777", f"GET {UNREACHABLE}", f"GET {REACHABLE}", f"POST {REACHABLE}"]
    )
    lookups = [c.query for c in calls if c.method == "GET"]
    assert all(q["agentId"] == "tidings-test-agent" and q["requestId"] for q in lookups)
    assert len({q["requestId"] for q in lookups}) == 3


# -- the fallback through the dispatcher and the store ------------------------------------------------


def test_fallback_keeps_the_transid_and_notifies_as_sms(backend: Backend, tmp_path: Path) -> None:
    content = message({"type": "text", "text": "Hi there"}, {"smsFallback": True, "smsSenderId": "CONNCT"})
    no_fallback = message({"type": "text", "text": "Hi there"})

    async def scenario(store: Any) -> dict[str, Any]:
        async with RbmStandIn(reachable={REACHABLE: ALL_FEATURES}) as rbm:
            key = rbm.write_key_file(tmp_path / "rbm.json")
            block = RcsSettings(rbm.agent_id, str(key), "ct", base_url=rbm.base_url)
            apps = AppRegistry([App("rcs-app", "svc", rcs=block, base_dir=tmp_path)])
            rcs = RcsConnector(apps, 0)
            sms = SandboxConnector(delay_ms=10)
            services = ServiceRegistry([Service(id="svc", key="k", notify_url="http://127.0.0.1:9/n")])
            dispatcher = Dispatcher(
                store, services, {"rcs": rcs, "sms": sms}, lambda: None, retry_interval_s=0.1
            )
            rows = [
                new_message("fb-1", UNREACHABLE, content),
                new_message("no-fb", UNREACHABLE, no_fallback),
                new_message("rcs-1", REACHABLE, content),
            ]
            await store.accept(rows)
            await dispatcher.start()
            try:
                for _ in range(200):
                    found = {t: await store.get_message("svc", t) for t in ("fb-1", "no-fb", "rcs-1")}
                    if found["fb-1"].status == "Delivered" and found["no-fb"].status == "Failed":
                        break
                    await asyncio.sleep(0.02)
            finally:
                await dispatcher.stop()
                await rcs.stop()
            return {
                "found": found,
                "sent": [c.query["messageId"] for c in rbm.sent()],
                "notes": await bodies(store),
            }

    out = backend.run(scenario)
    fb = out["found"]["fb-1"]
    assert fb.channel == "sms" and fb.status == "Delivered"
    assert fb.content == {"type": "1", "senderid": "CONNCT", "text": "Hi there"}
    notified = [n["deliveryInfo"] for n in out["notes"] if n["transid"] == "fb-1"]
    assert [(i["deliveryChannel"], i["deliveryStatus"]) for i in notified] == [
        ("sms", "Submitted"),
        ("sms", "Delivered"),
    ]
    failed = out["found"]["no-fb"]
    assert (failed.channel, failed.status, failed.code) == ("rcs", "Failed", rcs_codes.NOT_RCS_USER)
    assert out["found"]["rcs-1"].status == "Submitted"  # RBM took it; Delivered comes by webhook
    assert sorted(out["sent"]) == ["fb-1", "no-fb", "rcs-1"]


async def bodies(store: Any) -> list[dict[str, Any]]:
    """Every notification written, in order per message (each claimed, then marked sent)."""
    out: list[dict[str, Any]] = []
    for _ in range(20):
        claimed = await store.claim_notifications(time.time() + 60, 100, 30.0)
        if not claimed:
            return out
        out += [json.loads(n.body)["deliveryInfoNotification"] for n in claimed]
        done = [NotificationResult(n.seq, "sent", time.time(), time.time()) for n in claimed]
        await store.finish_notifications(done)
    return out


def new_message(transid: str, to: str, content: RcsMessage) -> NewMessage:
    return NewMessage(
        transid, "svc", "rcs", to, "msisdn", msgspec.json.encode(content), 1, None, None, None, 2, None, 0.0
    )


# -- refusals naming the field --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "code", "field"),
    [
        ({}, "7003", "content.type"),
        ({"type": "video"}, "7004", "content.type"),
        ({"type": "text"}, "7003", "content.text"),
        ({"type": "media"}, "7003", "content.mediaContentUrl"),
        ({"type": "media", "mediaContentUrl": "ftp://x"}, "7004", "content.mediaContentUrl"),
        ({"type": "standalone"}, "7003", "content.richCard"),
        ({"type": "standalone", "richCard": {}}, "7003", "content.richCard.title"),
        ({"type": "standalone", "richCard": {"title": "x", "orientation": "DIAGONAL"}}, "7004",
         "content.richCard.orientation"),
        ({"type": "standalone", "richCard": {"media": {"url": "https://x/y", "height": "HUGE"}}}, "7004",
         "content.richCard.media.height"),
        ({"type": "carousel", "richCard": {"cards": [CARD]}}, "7004", "content.richCard.cards"),
        ({"type": "carousel", "richCard": {"cards": [CARD] * 11}}, "7004", "content.richCard.cards"),
        ({"type": "carousel", "richCard": {"cards": [CARD, {"title": "x" * 201}]}}, "7004",
         "content.richCard.cards[1].title"),
        ({"type": "carousel", "richCard": {"cardWidth": "WIDE", "cards": [CARD, CARD]}}, "7004",
         "content.richCard.cardWidth"),
        ({"type": "text", "text": "x", "suggestions": [{"type": "reply", "displayText": "y" * 26,
                                                         "postbackData": "p"}]}, "7004",
         "content.suggestions[0].displayText"),
        ({"type": "text", "text": "x", "suggestions": [{"type": "reply", "displayText": "y"}]}, "7003",
         "content.suggestions[0].postbackData"),
        ({"type": "text", "text": "x", "suggestions": [{"type": "reply", "displayText": "y",
                                                         "postbackData": "p" * 2049}]}, "7004",
         "content.suggestions[0].postbackData"),
        ({"type": "text", "text": "x", "suggestions": [{"type": "openUrl", "displayText": "y"}]}, "7003",
         "content.suggestions[0].url"),
        ({"type": "text", "text": "x", "suggestions": [{"type": "dialPhone", "displayText": "y",
                                                         "phone": "12"}]}, "7004",
         "content.suggestions[0].phone"),
        ({"type": "text", "text": "x", "suggestions": [{"type": "viewLocation", "displayText": "y",
                                                         "latitude": 91, "longitude": 0}]}, "7004",
         "content.suggestions[0].latitude"),
        ({"type": "text", "text": "x", "suggestions": [{"type": "calendarEvent", "displayText": "y",
                                                         "startTime": "2026-01-02T00:00:00Z",
                                                         "endTime": "2026-01-01T00:00:00Z",
                                                         "meetingTitle": "m"}]}, "7004",
         "content.suggestions[0].endTime"),
        ({"type": "text", "text": "x", "suggestions": [{"type": "wave", "displayText": "y"}]}, "7004",
         "content.suggestions[0].type"),
        ({"type": "text", "text": "x", "suggestions": [{"type": "shareLocation", "displayText": "s"}] * 12},
         "7004", "content.suggestions"),
        ({"type": "standalone", "richCard": {"title": "t", "suggestions": [
            {"type": "shareLocation", "displayText": "s"}] * 5}}, "7004", "content.richCard.suggestions"),
    ],
)  # fmt: skip
def test_content_refusals_name_the_field(content: dict[str, Any], code: str, field: str) -> None:
    from tidings.errors import ApiError

    with pytest.raises(ApiError) as caught:
        read_content(content)
    assert caught.value.code == code
    assert field in str(caught.value), str(caught.value)


@pytest.mark.parametrize(
    ("options", "code", "field"),
    [
        ({"smsFallback": "yes"}, "7004", "options.smsFallback"),
        ({"smsFallback": True}, "7003", "options.smsSenderId"),
        ({"smsFallback": True, "smsSenderId": "OTHER"}, "7004", "options.smsSenderId"),
        ({"smsFallback": True, "smsSenderId": "CONNCT", "text": 5}, "7004", "options.text"),
    ],
)
def test_option_refusals_name_the_field(options: dict[str, Any], code: str, field: str) -> None:
    from tidings.errors import ApiError

    with pytest.raises(ApiError) as caught:
        read_options(options, ("CONNCT",))
    assert caught.value.code == code
    assert field in str(caught.value)
