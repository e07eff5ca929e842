"""Meta's Graph API as the WhatsApp and Messenger clients meet it (tests/standins/graph.py), and Meta's
webhooks as tidings.channels.meta.webhooks reads them.

Each send case is one row: the body handed to the client, the request the stand-in must have received
(path, headers, JSON), and the id or the SendError (kind, Webex Connect code) that comes back. Every test
that sees a secret (an access token, a page token, an app secret) checks that no log record under
"tidings" and no SendError description carries it.
"""

import asyncio
import hashlib
import hmac
import json
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from aiohttp import web

from tests.standins.graph import (
    GraphStandIn,
    Scripted,
    deliver,
    error_body,
    ms_delivery,
    ms_message,
    ms_optin,
    ms_postback,
    ms_reaction,
    ms_read,
    ms_referral,
    wa_failure,
    wa_inbound,
    wa_status,
    wa_statuses,
)
from tidings.channels.base import FailureKind, SendError
from tidings.channels.meta.graph import MessengerSend, WhatsAppCloud
from tidings.channels.meta.settings import MessengerSettings, WhatsAppSettings
from tidings.channels.meta.webhooks import (
    MsAttachment,
    MsDelivery,
    MsMessage,
    MsOpened,
    MsPostback,
    MsRead,
    WaContact,
    WaError,
    WaLocation,
    WaMedia,
    WaMessage,
    WaPhone,
    WaReply,
    WaStatus,
    handshake,
    messenger_events,
    verify_signature,
    whatsapp_events,
)
from tidings.specs import messenger_codes as ms
from tidings.specs import whatsapp_codes as wa

APP_SECRET = "d1b3c5e7f9a1b3c5e7f9a1b3c5e7f901"
VERIFY_TOKEN = "tidings-verify-7Qx"
WAMID = re.compile(r"wamid\.\d+")
MID = re.compile(r"m_\d+")
TO = "16505551234"
PSID = "6783451298762345"

Expect = re.Pattern[str] | str | tuple[FailureKind, str] | tuple[FailureKind, str, float]


def wa_body(kind: str, obj: Any, to: str = TO) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
        kind: obj,
    }


def ms_body(message: dict[str, Any], psid: str = PSID, **extra: Any) -> dict[str, Any]:
    return {"recipient": {"id": psid}, "messaging_type": "RESPONSE", **extra, "message": message}


def buttons(count: int) -> dict[str, Any]:
    return {
        "type": "button",
        "body": {"text": "Pick one"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": f"b{n}", "title": f"Choice {n}"}} for n in range(count)
            ]
        },
    }


LIST = {
    "type": "list",
    "header": {"type": "text", "text": "Menu"},
    "body": {"text": "What would you like?"},
    "footer": {"text": "Tidings"},
    "action": {
        "button": "See options",
        "sections": [
            {"title": "Drinks", "rows": [{"id": "tea", "title": "Tea", "description": "Hot, black"}]},
            {"title": "Food", "rows": [{"id": "cake", "title": "Cake"}]},
        ],
    },
}
CONTACT = {
    "name": {"formatted_name": "Ada Lovelace", "first_name": "Ada", "last_name": "Lovelace"},
    "phones": [{"phone": "+44 20 7946 0000", "type": "WORK", "wa_id": "442079460000"}],
    "emails": [{"email": "ada@example.com", "type": "WORK"}],
}

# (name, body, scripted answer for the recipient or None, expected)
WA_CASES: list[tuple[str, dict[str, Any], Scripted | None, Expect]] = [
    ("text", wa_body("text", {"body": "Hello", "preview_url": False}), None, WAMID),
    ("text preview", wa_body("text", {"body": "See https://example.com", "preview_url": True}), None, WAMID),
    ("image link", wa_body("image", {"link": "https://example.com/a.png", "caption": "A"}), None, WAMID),
    ("audio id", wa_body("audio", {"id": "1013859600285441"}), None, WAMID),
    ("video", wa_body("video", {"link": "https://example.com/v.mp4", "caption": "clip"}), None, WAMID),
    ("document", wa_body("document", {"id": "4490709327384033", "filename": "terms.pdf"}), None, WAMID),
    ("sticker", wa_body("sticker", {"link": "https://example.com/s.webp"}), None, WAMID),
    (
        "location",
        wa_body(
            "location", {"latitude": 51.5072, "longitude": -0.1276, "name": "Office", "address": "London"}
        ),
        None,
        WAMID,
    ),
    ("contacts", wa_body("contacts", [CONTACT]), None, WAMID),
    ("reply buttons", wa_body("interactive", buttons(3)), None, WAMID),
    ("list", wa_body("interactive", LIST), None, WAMID),
    (
        "reaction",
        wa_body("reaction", {"message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI", "emoji": "👍"}),
        None,
        WAMID,
    ),
    (
        "template",
        wa_body("template", {"name": "order_update", "language": {"code": "en_US"}, "components": []}),
        None,
        WAMID,
    ),
    # Meta's refusals of a body
    (
        "text too long",
        wa_body("text", {"body": "x" * 4097}),
        None,
        (FailureKind.INVALID, wa.NAMESPACE_MISMATCH),
    ),
    (
        "text missing",
        wa_body("text", {"preview_url": False}),
        None,
        (FailureKind.INVALID, wa.MISSING_PARAMETER),
    ),
    (
        "audio caption",
        wa_body("audio", {"id": "1", "caption": "no"}),
        None,
        (FailureKind.INVALID, wa.NAMESPACE_MISMATCH),
    ),
    ("four buttons", wa_body("interactive", buttons(4)), None, (FailureKind.INVALID, wa.NAMESPACE_MISMATCH)),
    (
        "no product",
        {"to": TO, "type": "text", "text": {"body": "hi"}},
        None,
        (FailureKind.INVALID, wa.MISSING_PARAMETER),
    ),
    # the scripted recipients of the stand-in
    (
        "re-engagement",
        wa_body("text", {"body": "late"}, "15550131047"),
        None,
        (FailureKind.REJECTED, wa.OUTSIDE_WINDOW),
    ),
    (
        "undeliverable",
        wa_body("text", {"body": "x"}, "15550131026"),
        None,
        (FailureKind.REJECTED, wa.UNDELIVERABLE),
    ),
    (
        "throughput",
        wa_body("text", {"body": "x"}, "15550130429"),
        None,
        (FailureKind.THROTTLED, wa.THROUGHPUT_LIMIT, 4.0),
    ),
    (
        "pair limit",
        wa_body("text", {"body": "x"}, "15550131056"),
        None,
        (FailureKind.THROTTLED, wa.PAIR_RATE_LIMITED, 60.0),
    ),
    (
        "went wrong",
        wa_body("text", {"body": "x"}, "15550131000"),
        None,
        (FailureKind.CONNECTION, wa.GENERIC_ERROR),
    ),
    (
        "waba limit",
        wa_body("text", {"body": "x"}, "15550080007"),
        (
            400,
            error_body(
                80007,
                "(#80007) Rate limit issues",
                details="The WhatsApp Business Account has reached its rate limit.",
            ),
            {
                "X-Business-Use-Case-Usage": json.dumps(
                    {"102290129340398": [{"type": "whatsapp", "estimated_time_to_regain_access": 2}]}
                )
            },
        ),
        (FailureKind.THROTTLED, wa.TOO_MANY_CALLS, 120.0),
    ),
    (
        "unavailable",
        wa_body("text", {"body": "x"}, "15550133004"),
        (503, error_body(133004, "Server temporarily unavailable"), {"Retry-After": "9"}),
        (FailureKind.UNAVAILABLE, wa.SERVICE_UNAVAILABLE, 9.0),
    ),
    (
        "blocked account",
        wa_body("text", {"body": "x"}, "15550000368"),
        (400, error_body(368, "Temporarily blocked for policies violations")),
        (FailureKind.CONFIG, wa.POLICY_BLOCKED),
    ),
    (
        "template missing",
        wa_body("template", {"name": "gone", "language": {"code": "fr"}}, "15550132001"),
        (404, error_body(132001, "Template name does not exist in the translation")),
        (FailureKind.INVALID, wa.TEMPLATE_NOT_FOUND),
    ),
    (
        "unknown code",
        wa_body("text", {"body": "x"}, "15550131049"),
        (400, error_body(131049, "This message was not delivered to maintain healthy ecosystem engagement.")),
        (FailureKind.REJECTED, wa.UNKNOWN_STATUS),
    ),
    (
        "bare 502",
        wa_body("text", {"body": "x"}, "15550000502"),
        (502, {"html": "Bad Gateway"}),
        (FailureKind.UNAVAILABLE, wa.PLATFORM_FAILURE),
    ),
]

QUICK = [
    {"content_type": "text", "title": "Red", "payload": "PICK_RED"},
    {"content_type": "text", "title": "", "payload": "PICK_GREEN", "image_url": "https://example.com/g.png"},
    {"content_type": "user_email"},
]
GENERIC = {
    "type": "template",
    "payload": {
        "template_type": "generic",
        "elements": [
            {
                "title": "Welcome",
                "subtitle": "We have the right hat",
                "image_url": "https://example.com/hat.png",
                "buttons": [{"type": "postback", "title": "Start", "payload": "START"}],
            }
        ],
    },
}

MS_CASES: list[tuple[str, dict[str, Any], Scripted | None, Expect]] = [
    ("text", ms_body({"text": "Hello"}), None, MID),
    ("quick replies", ms_body({"text": "Colour?", "quick_replies": QUICK}), None, MID),
    (
        "image",
        ms_body(
            {
                "attachment": {
                    "type": "image",
                    "payload": {"url": "https://example.com/a.png", "is_reusable": True},
                }
            }
        ),
        None,
        MID,
    ),
    ("generic template", ms_body({"attachment": GENERIC}), None, MID),
    (
        "tagged update",
        ms_body({"text": "Your order shipped"}, messaging_type="MESSAGE_TAG", tag="POST_PURCHASE_UPDATE"),
        None,
        MID,
    ),
    ("silent", ms_body({"text": "shh"}, notification_type="SILENT_PUSH"), None, MID),
    ("typing", {"recipient": {"id": PSID}, "sender_action": "typing_on"}, None, ""),
    ("mark seen", {"recipient": {"id": PSID}, "sender_action": "mark_seen"}, None, ""),
    # the Send API's refusals of a body
    (
        "action and message",
        {"recipient": {"id": PSID}, "sender_action": "typing_on", "message": {"text": "x"}},
        None,
        (FailureKind.INVALID, ms.PROVIDER_ERROR),
    ),
    (
        "tag missing",
        ms_body({"text": "x"}, messaging_type="MESSAGE_TAG"),
        None,
        (FailureKind.INVALID, ms.PROVIDER_ERROR),
    ),
    (
        "14 quick replies",
        ms_body(
            {
                "text": "x",
                "quick_replies": [
                    {"content_type": "text", "title": f"{n}", "payload": "p"} for n in range(14)
                ],
            }
        ),
        None,
        (FailureKind.INVALID, ms.PROVIDER_ERROR),
    ),
    ("text too long", ms_body({"text": "x" * 2001}), None, (FailureKind.INVALID, ms.PROVIDER_ERROR)),
    # scripted recipients
    ("temporary", ms_body({"text": "x"}, "psid-1200"), None, (FailureKind.CONNECTION, ms.PROVIDER_ERROR)),
    (
        "rate limit",
        ms_body({"text": "x"}, "psid-613"),
        None,
        (FailureKind.THROTTLED, ms.PROVIDER_ERROR, 60.0),
    ),
    ("unavailable person", ms_body({"text": "x"}, "psid-551"), None, (FailureKind.REJECTED, ms.UNREACHABLE)),
    ("no such user", ms_body({"text": "x"}, "psid-nouser"), None, (FailureKind.GONE, ms.UNREACHABLE)),
    (
        "outside window",
        ms_body({"text": "x"}, "psid-window"),
        None,
        (FailureKind.REJECTED, ms.OUTSIDE_WINDOW),
    ),
    (
        "privacy rules",
        ms_body({"text": "x"}, "psid-eu"),
        (400, error_body(10, "This message is not submitted under privacy rules", 2018336)),
        (FailureKind.REJECTED, ms.EU_PRIVACY),
    ),
    (
        "permission",
        ms_body({"text": "x"}, "psid-perm"),
        (403, error_body(200, "(#200) The page is not allowed to send messages", 2018027)),
        (FailureKind.CONFIG, ms.PROVIDER_ERROR),
    ),
]


# -- harness -------------------------------------------------------------------------------------------


@dataclass
class Seen:
    secrets: list[str] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)


Body = Callable[[GraphStandIn, WhatsAppCloud, MessengerSend], Awaitable[None]]


def run(body: Body, seen: Seen | None = None, deadline: float = 5.0, **stand: Any) -> Seen:
    seen = seen or Seen()

    async def main() -> None:
        async with GraphStandIn(**stand) as graph:
            seen.secrets += [graph.wa_token, graph.page_token, APP_SECRET]
            await _clients(graph, body, deadline)

    asyncio.run(asyncio.wait_for(main(), 30))
    return seen


async def _clients(graph: GraphStandIn, body: Body, deadline: float = 5.0) -> None:
    """Both clients, pointed at the stand-in, for the length of `body`."""
    wa_settings = WhatsAppSettings(
        phone_number_id=graph.phone_number_id,
        access_token=graph.wa_token,
        app_secret=APP_SECRET,
        verify_token=VERIFY_TOKEN,
        base_url=graph.base_url,
    )
    ms_settings = MessengerSettings(
        page_id=graph.page_id,
        access_token=graph.page_token,
        app_secret=APP_SECRET,
        verify_token=VERIFY_TOKEN,
        base_url=graph.base_url,
    )
    context = graph.client_context() if graph.tls else None
    whatsapp = WhatsAppCloud(wa_settings, deadline=deadline, context=context)
    messenger = MessengerSend(ms_settings, deadline=deadline, context=context)
    try:
        await body(graph, whatsapp, messenger)
    finally:
        await whatsapp.close()
        await messenger.close()


async def outcome(client: WhatsAppCloud | MessengerSend, body: dict[str, Any], seen: Seen) -> str | SendError:
    try:
        return await client.send(body)
    except SendError as exc:
        seen.descriptions.append(exc.description)
        return exc


def check(result: str | SendError, expected: Expect, name: str) -> None:
    if isinstance(expected, re.Pattern):
        assert isinstance(result, str) and expected.fullmatch(result), (name, result)
    elif isinstance(expected, str):
        assert result == expected, (name, result)
    else:
        assert isinstance(result, SendError), (name, result)
        assert (result.kind, result.code) == expected[:2], (
            name,
            result.kind,
            result.code,
            result.description,
        )
        if len(expected) == 3:
            assert result.retry_after == pytest.approx(expected[2], abs=1), name
        elif not result.kind.retryable:
            assert result.retry_after is None, name


def assert_no_secrets(seen: Seen, caplog: pytest.LogCaptureFixture) -> None:
    said = seen.descriptions + [r.getMessage() for r in caplog.records]
    assert seen.secrets
    for secret in seen.secrets:
        for text in said:
            assert secret not in text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- sends ---------------------------------------------------------------------------------------------


def test_whatsapp_cases(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tidings")
    scripted = {case[1]["to"]: case[2] for case in WA_CASES if case[2] is not None}

    async def body(graph: GraphStandIn, whatsapp: WhatsAppCloud, messenger: MessengerSend) -> None:
        graph.errors.update(scripted)
        for name, sent, _, expected in WA_CASES:
            result = await outcome(whatsapp, sent, seen)
            check(result, expected, name)
            got = graph.received[-1]
            assert got.path == f"/v21.0/{graph.phone_number_id}/messages", name
            assert got.body == sent, name  # the body goes as given, byte for byte in meaning
            assert got.headers["authorization"] == f"Bearer {graph.wa_token}", name
            assert got.headers["content-type"] == "application/json", name
            assert got.query == {}, name  # the token is never in the URL
            if isinstance(result, SendError) and got.api == "whatsapp" and sent["to"] in scripted:
                error = scripted[sent["to"]][1].get("error", {})
                assert str(error.get("message", "HTTP")) in result.description or "HTTP" in result.description
        assert len(graph.received) == len(WA_CASES)

    seen = Seen()
    run(body, seen)
    assert_no_secrets(seen, caplog)
    # the policy block is a configuration fault: one warning for it
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "106540352242922" in warnings[0].getMessage()


def test_messenger_cases(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tidings")
    scripted = {case[1]["recipient"]["id"]: case[2] for case in MS_CASES if case[2] is not None}

    async def body(graph: GraphStandIn, whatsapp: WhatsAppCloud, messenger: MessengerSend) -> None:
        graph.errors.update(scripted)
        for name, sent, _, expected in MS_CASES:
            result = await outcome(messenger, sent, seen)
            check(result, expected, name)
            got = graph.received[-1]
            assert (got.api, got.path, got.body, got.query) == (
                "messenger",
                "/v21.0/me/messages",
                sent,
                {},
            ), name
            assert got.headers["authorization"] == f"Bearer {graph.page_token}", name

    seen = Seen()
    run(body, seen)
    assert_no_secrets(seen, caplog)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "1234567890" in warnings[0].getMessage()


def test_meta_words_in_the_description() -> None:
    async def body(graph: GraphStandIn, whatsapp: WhatsAppCloud, messenger: MessengerSend) -> None:
        late = await outcome(whatsapp, wa_body("text", {"body": "late"}, "15550131047"), seen)
        assert isinstance(late, SendError)
        assert late.description.startswith("WhatsApp 400 error 131047: Re-engagement message (Message failed")
        assert late.description.endswith("[fbtrace_id AbCdEfGhIjK_trace]")
        gone = await outcome(messenger, ms_body({"text": "x"}, "psid-551"), seen)
        assert isinstance(gone, SendError)
        assert gone.description.startswith("Messenger 400 error 551/1545041: This person isn't available")

    seen = Seen()
    run(body, seen)


def test_bad_token_is_config_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tidings")

    async def body(graph: GraphStandIn, whatsapp: WhatsAppCloud, messenger: MessengerSend) -> None:
        graph.wa_token = graph.page_token = "EAA-the-real-one-changed"  # ours are now wrong
        for _ in range(3):
            for client, sent, code in (
                (whatsapp, wa_body("text", {"body": "x"}), wa.TOKEN_EXPIRED),
                (messenger, ms_body({"text": "x"}), ms.PROVIDER_ERROR),
            ):
                result = await outcome(client, sent, seen)
                assert isinstance(result, SendError)
                assert (result.kind, result.code) == (FailureKind.CONFIG, code)
                assert "190" in result.description

    seen = Seen()
    run(body, seen)
    assert_no_secrets(seen, caplog)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one per account, not one per message
    assert any("WhatsApp" in w for w in warnings) and any("Messenger" in w for w in warnings)


def test_a_quoted_token_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    """Should Meta ever quote the token in its words, the description still does not carry it."""
    caplog.set_level(logging.DEBUG, logger="tidings")

    async def body(graph: GraphStandIn, whatsapp: WhatsAppCloud, messenger: MessengerSend) -> None:
        graph.errors["15550000190"] = (401, error_body(190, f"Malformed access token {graph.wa_token}"))
        graph.errors["15550000502"] = (502, {"html": "Bad Gateway"})
        quoted = await outcome(whatsapp, wa_body("text", {"body": "x"}, "15550000190"), seen)
        assert isinstance(quoted, SendError) and quoted.kind is FailureKind.CONFIG
        assert quoted.description.endswith("Malformed access token [token] [fbtrace_id AbCdEfGhIjK_trace]")
        assert graph.wa_token not in str(quoted)
        bare = await outcome(whatsapp, wa_body("text", {"body": "x"}, "15550000502"), seen)
        assert (
            isinstance(bare, SendError)
            and bare.description == "WhatsApp: HTTP 502 without a Graph error body"
        )

    seen = Seen()
    run(body, seen)
    assert_no_secrets(seen, caplog)


def test_body_from_the_schema_modules_is_accepted() -> None:
    """The bodies tidings.schema.whatsapp / messenger build pass the stand-in's checks."""
    from tidings.schema.messenger import decode_messenger, send_api_body
    from tidings.schema.whatsapp import cloud_message, decode_whatsapp

    wa_objects = [
        {"type": "text", "text": {"body": "Hi"}},
        {
            "type": "image",
            "image": {"link": "https://example.com/a.png", "caption": "c", "mimeType": "image/png"},
        },
        {"type": "interactive", "interactive": buttons(2)},
    ]
    ms_objects: list[dict[str, Any]] = [
        {"text": "Hi", "messaging_type": "RESPONSE"},
        {"sender_action": "typing_off"},
    ]

    async def body(graph: GraphStandIn, whatsapp: WhatsAppCloud, messenger: MessengerSend) -> None:
        for obj in wa_objects:
            content = decode_whatsapp(json.dumps(obj).encode(), "wa")
            assert WAMID.fullmatch(await whatsapp.send(cloud_message(content, TO)))
        for obj in ms_objects:
            fb = decode_messenger(json.dumps(obj).encode(), "fb")
            result = await messenger.send(send_api_body(fb, PSID))
            assert (result == "") if "sender_action" in obj else bool(MID.fullmatch(result))

    run(body)


def test_transport_failures() -> None:
    async def body(graph: GraphStandIn, whatsapp: WhatsAppCloud, messenger: MessengerSend) -> None:
        graph.delays["15550000001"] = 2.0
        slow = await outcome(whatsapp, wa_body("text", {"body": "x"}, "15550000001"), seen)
        assert isinstance(slow, SendError)
        assert (slow.kind, slow.code) == (FailureKind.TIMEOUT, wa.PLATFORM_FAILURE)
        graph.drop_next = 1  # a keep-alive connection closed under us: sent once more, and it works
        assert MID.fullmatch(await messenger.send(ms_body({"text": "x"})))
        graph.drop_next = 2
        broken = await outcome(messenger, ms_body({"text": "x"}), seen)
        assert isinstance(broken, SendError)
        assert (broken.kind, broken.code) == (FailureKind.CONNECTION, ms.PLATFORM_FAILURE)

    seen = Seen()
    run(body, seen, deadline=0.5)


def test_over_tls() -> None:
    async def body(graph: GraphStandIn, whatsapp: WhatsAppCloud, messenger: MessengerSend) -> None:
        assert graph.base_url.startswith("https://")
        assert WAMID.fullmatch(await whatsapp.send(wa_body("text", {"body": "x"})))
        assert MID.fullmatch(await messenger.send(ms_body({"text": "x"})))
        # without the stand-in's CA the certificate is refused: a connection failure, nothing sent
        stranger = WhatsAppCloud(
            WhatsAppSettings(
                graph.phone_number_id, graph.wa_token, APP_SECRET, VERIFY_TOKEN, base_url=graph.base_url
            )
        )
        try:
            refused = await outcome(stranger, wa_body("text", {"body": "x"}), Seen())
        finally:
            await stranger.close()
        assert isinstance(refused, SendError) and refused.kind is FailureKind.CONNECTION
        assert len(graph.received) == 2

    run(body, tls=True)


def test_unreachable() -> None:
    settings = WhatsAppSettings(
        "1", "EAA-token", APP_SECRET, VERIFY_TOKEN, base_url=f"http://127.0.0.1:{free_port()}"
    )

    async def main() -> SendError:
        client = WhatsAppCloud(settings, deadline=2)
        try:
            await client.send(wa_body("text", {"body": "x"}))
        except SendError as exc:
            return exc
        finally:
            await client.close()
        raise AssertionError("sent to nowhere")

    error = asyncio.run(main())
    assert (error.kind, error.code) == (FailureKind.CONNECTION, wa.PLATFORM_FAILURE)
    assert "EAA-token" not in error.description


def test_query_token_accepted_by_the_stand_in() -> None:
    """The stand-in takes `?access_token=` as Meta does (the clients never send it so)."""

    async def body(graph: GraphStandIn, whatsapp: WhatsAppCloud, messenger: MessengerSend) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            url = f"{graph.base_url}/v21.0/me/messages?access_token={graph.page_token}"
            async with http.post(url, json=ms_body({"text": "x"})) as response:
                assert response.status == 200 and MID.fullmatch((await response.json())["message_id"])
            async with http.post(
                f"{graph.base_url}/v21.0/me/messages", json=ms_body({"text": "x"})
            ) as response:
                assert response.status == 401
                assert (await response.json())["error"]["code"] == 190

    run(body)


# -- the signature and the handshake -------------------------------------------------------------------

RAW = b'{"object":"page","entry":[]}'
GOOD = "sha256=" + hmac.new(APP_SECRET.encode(), RAW, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("header", "valid"),
    [
        (GOOD, True),
        (GOOD.upper().replace("SHA256=", "sha256="), True),  # hex digits in either case
        (None, False),
        ("", False),
        ("sha256=", False),
        (GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1"), False),
        (GOOD.replace("sha256=", "sha1="), False),
        (GOOD.removeprefix("sha256="), False),  # no prefix
        ("sha256=" + hmac.new(b"another secret", RAW, hashlib.sha256).hexdigest(), False),
        ("sha256=é" + GOOD[8:], False),
    ],
)
def test_verify_signature(header: str | None, valid: bool) -> None:
    assert verify_signature(APP_SECRET, RAW, header) is valid


def test_signature_is_over_the_raw_bytes() -> None:
    spaced = b'{"object": "page", "entry": []}'  # the same JSON, other bytes
    assert not verify_signature(APP_SECRET, spaced, GOOD)
    assert not verify_signature("", RAW, GOOD)


@pytest.mark.parametrize(
    ("query", "answer"),
    [
        (
            {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
            "1158201444",
        ),
        ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"}, None),
        ({"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"}, None),
        ({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN}, None),
        ({"hub.mode": "subscribe", "hub.challenge": "1"}, None),
        ({}, None),
    ],
)
def test_handshake(query: dict[str, str], answer: str | None) -> None:
    assert handshake(query, VERIFY_TOKEN) == answer


def test_handshake_needs_a_verify_token() -> None:
    assert handshake({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}, "") is None


# -- WhatsApp webhooks ---------------------------------------------------------------------------------


def raw(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def test_whatsapp_statuses() -> None:
    delivered = wa_status("wamid.HBgL1", "delivered", TO, when=1700000100)
    read = wa_status("wamid.HBgL1", "read", TO, when=1700000200)
    failure = wa_failure(
        131047, "Re-engagement message", "More than 24 hours since the customer last replied."
    )
    failed = wa_status("wamid.HBgL2", "failed", TO, when=1700000300, errors=[failure])
    assert whatsapp_events(raw(delivered)) == [
        WaStatus("wamid.HBgL1", "delivered", 1700000100, TO, "106540352242922")
    ]
    assert whatsapp_events(raw(read)) == [WaStatus("wamid.HBgL1", "read", 1700000200, TO, "106540352242922")]
    error = WaError(
        131047,
        "Re-engagement message",
        "Re-engagement message",
        "More than 24 hours since the customer last replied.",
    )
    assert whatsapp_events(raw(failed)) == [
        WaStatus("wamid.HBgL2", "failed", 1700000300, TO, "106540352242922", (error,))
    ]


def test_whatsapp_statuses_as_meta_batches_them() -> None:
    """Meta's own sample shape: several statuses in one value, several changes and entries; a field
    Tidings does not read (conversation, pricing, a new one) changes nothing."""
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": "106540352242922",
                            },
                            "statuses": [
                                {
                                    "id": "wamid.A",
                                    "status": "sent",
                                    "timestamp": "1750263773",
                                    "recipient_id": TO,
                                    "conversation": {
                                        "id": "6ceb9d929c1c7a8e8c5ad2e7e5a0f6d3",
                                        "expiration_timestamp": "1750349820",
                                        "origin": {"type": "utility"},
                                    },
                                    "pricing": {
                                        "billable": True,
                                        "pricing_model": "PMP",
                                        "category": "utility",
                                        "type": "regular",
                                    },
                                    "biz_opaque_callback_data": "tx-42",
                                    "something_new": {"a": 1},
                                },
                                {
                                    "id": "wamid.B",
                                    "status": "delivered",
                                    "timestamp": "1750263774",
                                    "recipient_id": TO,
                                },
                            ],
                        },
                    },
                    {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}},
                ],
            }
        ],
    }
    events = whatsapp_events(raw(payload))
    assert [(e.wamid, e.status) for e in events if isinstance(e, WaStatus)] == [
        ("wamid.A", "sent"),
        ("wamid.B", "delivered"),
    ]
    first = events[0]
    assert isinstance(first, WaStatus) and first.callback_data == "tx-42" and first.timestamp == 1750263773


INBOUND: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (
        {"type": "text", "text": {"body": "STOP"}},
        {"type": "text", "text": "STOP"},
    ),
    (
        {
            "type": "image",
            "image": {
                "caption": "receipt",
                "mime_type": "image/jpeg",
                "sha256": "Yf0=",
                "id": "1479537139650973",
            },
        },
        {
            "type": "image",
            "text": "receipt",
            "media": WaMedia("image", "1479537139650973", "image/jpeg", "Yf0=", "receipt"),
        },
    ),
    (
        {
            "type": "document",
            "document": {"filename": "a.pdf", "mime_type": "application/pdf", "sha256": "x", "id": "9"},
        },
        {"type": "document", "media": WaMedia("document", "9", "application/pdf", "x", "", "a.pdf")},
    ),
    (
        {
            "type": "sticker",
            "sticker": {"mime_type": "image/webp", "sha256": "s", "id": "7", "animated": False},
        },
        {"type": "sticker", "media": WaMedia("sticker", "7", "image/webp", "s")},
    ),
    (
        {
            "type": "location",
            "location": {
                "latitude": 37.4847,
                "longitude": -122.1477,
                "name": "HQ",
                "address": "1 Hacker Way",
            },
        },
        {"type": "location", "location": WaLocation(37.4847, -122.1477, "HQ", "1 Hacker Way")},
    ),
    (
        {"type": "contacts", "contacts": [CONTACT]},
        {
            "type": "contacts",
            "contacts": (
                WaContact(
                    "Ada Lovelace",
                    (WaPhone("+44 20 7946 0000", "442079460000", "WORK"),),
                    ("ada@example.com",),
                ),
            ),
        },
    ),
    (
        {
            "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": "b1", "title": "Yes"}},
            "context": {"from": "15550783881", "id": "wamid.out-1"},
        },
        {
            "type": "interactive",
            "text": "Yes",
            "reply": WaReply("button_reply", "b1", "Yes"),
            "context_id": "wamid.out-1",
        },
    ),
    (
        {
            "type": "interactive",
            "interactive": {
                "type": "list_reply",
                "list_reply": {"id": "tea", "title": "Tea", "description": "Hot, black"},
            },
        },
        {"type": "interactive", "text": "Tea", "reply": WaReply("list_reply", "tea", "Tea", "Hot, black")},
    ),
    (
        {
            "type": "button",
            "button": {"payload": "CONFIRM_ORDER", "text": "Confirm"},
            "context": {"id": "wamid.tpl"},
        },
        {
            "type": "button",
            "text": "Confirm",
            "reply": WaReply("button", "CONFIRM_ORDER", "Confirm"),
            "context_id": "wamid.tpl",
        },
    ),
    (
        {
            "type": "unsupported",
            "errors": [{"code": 131051, "title": "Message type unknown", "message": "Message type unknown"}],
        },
        {"type": "unsupported", "errors": (WaError(131051, "Message type unknown", "Message type unknown"),)},
    ),
    (
        {
            "type": "order",
            "order": {"catalog_id": "1", "product_items": []},
        },  # not read: still an event, empty
        {"type": "order"},
    ),
]


@pytest.mark.parametrize(("message", "expected"), INBOUND, ids=[str(i[0]["type"]) for i in INBOUND])
def test_whatsapp_inbound(message: dict[str, Any], expected: dict[str, Any]) -> None:
    payload = wa_inbound(message, TO, "Kerry Fisher")
    item = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    (event,) = whatsapp_events(raw(payload))
    want = WaMessage(
        wamid=item["id"],
        sender=TO,
        timestamp=int(item["timestamp"]),
        phone_number_id="106540352242922",
        profile_name="Kerry Fisher",
        **expected,
    )
    assert event == want


def test_whatsapp_bodies_that_are_not() -> None:
    with pytest.raises(ValueError):
        whatsapp_events(b"not json")
    with pytest.raises(ValueError):
        whatsapp_events(raw({"object": "page", "entry": []}))
    with pytest.raises(ValueError):
        whatsapp_events(raw({"object": "whatsapp_business_account", "entry": {"changes": []}}))  # not a list
    # an item without its ids names nothing: skipped, not a reason to refuse the batch
    nameless = {"statuses": [{"status": "sent"}], "messages": [{"id": "wamid.x", "type": "text"}]}
    assert whatsapp_events(raw({"entry": [{"changes": [{"value": nameless}]}]})) == []
    assert whatsapp_events(raw({"object": "whatsapp_business_account", "entry": []})) == []


# -- Messenger webhooks --------------------------------------------------------------------------------


def test_messenger_events() -> None:
    cases: list[tuple[dict[str, Any], Any]] = [
        (
            ms_delivery(PSID, 1458668856253, ["mid.1458668856218:ed81099e15d3f4f233"]),
            MsDelivery(PSID, "1234567890", 1458668856253, ("mid.1458668856218:ed81099e15d3f4f233",)),
        ),
        (ms_delivery(PSID, 1458668856253), MsDelivery(PSID, "1234567890", 1458668856253)),
        (ms_read(PSID, 1458668856253), MsRead(PSID, "1234567890", 1458668856253)),
        (
            ms_postback(PSID, "GET_STARTED", "Get Started"),
            MsPostback(PSID, "1234567890", "GET_STARTED", "Get Started", f"m_postback_{PSID}"),
        ),
        (
            ms_message(PSID, {"mid": "m_1", "text": "Red", "quick_reply": {"payload": "PICK_RED"}}),
            MsMessage(PSID, "1234567890", "m_1", 0, "Red", "PICK_RED"),
        ),
        (
            ms_message(PSID, {"mid": "m_2", "text": "hello", "reply_to": {"mid": "m_0"}}),
            MsMessage(PSID, "1234567890", "m_2", 0, "hello", reply_to="m_0"),
        ),
        (
            ms_message(
                PSID,
                {
                    "mid": "m_3",
                    "attachments": [{"type": "image", "payload": {"url": "https://cdn.example/i.jpg"}}],
                },
            ),
            MsMessage(
                PSID,
                "1234567890",
                "m_3",
                0,
                attachments=(MsAttachment("image", "https://cdn.example/i.jpg"),),
            ),
        ),
        (
            ms_message(
                PSID,
                {
                    "mid": "m_4",
                    "attachments": [
                        {
                            "type": "location",
                            "title": "Pin",
                            "payload": {"coordinates": {"lat": 1.5, "long": 2.5}},
                        }
                    ],
                },
            ),
            MsMessage(
                PSID, "1234567890", "m_4", 0, attachments=(MsAttachment("location", "", "Pin", 1.5, 2.5),)
            ),
        ),
        # read only as far as the standard messaging window needs them
        (ms_reaction(PSID, "m_5", "x"), MsOpened(PSID, "1234567890", "reaction", "react x m_5")),
        (
            ms_reaction(PSID, "m_5", "", "unreact"),
            MsOpened(PSID, "1234567890", "reaction", "unreact love m_5"),
        ),
        (ms_referral(PSID, "spring-sale"), MsOpened(PSID, "1234567890", "referral", "SHORTLINK spring-sale")),
        (ms_optin(PSID, "WEEKLY"), MsOpened(PSID, "1234567890", "optin", "notification_messages WEEKLY")),
    ]
    for payload, expected in cases:
        (event,) = messenger_events(raw(payload))
        item = payload["entry"][0]["messaging"][0]
        fields = {"timestamp": item["timestamp"]}
        assert event == type(expected)(
            **{**{f: getattr(expected, f) for f in expected.__slots__}, **fields}
        ), payload


def test_messenger_batches_and_echoes() -> None:
    """Meta batches events in one entry's `messaging` (and entries in one POST); an echo of the page's own
    message and a handover are not events Tidings reads; a reaction is read only for the window."""
    payload = ms_delivery(PSID, 1000, ["m_1", "m_2"])
    payload["entry"][0]["messaging"] += [
        {
            "sender": {"id": "1234567890"},
            "recipient": {"id": PSID},
            "timestamp": 1,
            "message": {"mid": "m_9", "is_echo": True, "text": "ours", "app_id": 1},
        },
        {
            "sender": {"id": PSID},
            "recipient": {"id": "1234567890"},
            "timestamp": 2,
            "reaction": {"mid": "m_1", "action": "react", "emoji": "x"},
        },
        {
            "sender": {"id": PSID},
            "recipient": {"id": "1234567890"},
            "timestamp": 3,
            "pass_thread_control": {"new_owner_app_id": "1", "metadata": "to a human"},
        },
    ]
    payload["entry"].append(ms_read("other", 2000)["entry"][0])
    events = messenger_events(raw(payload))
    assert [type(e) for e in events] == [MsDelivery, MsOpened, MsRead]
    assert events[0] == MsDelivery(PSID, "1234567890", 1000, ("m_1", "m_2"), events[0].timestamp)
    assert events[1] == MsOpened(PSID, "1234567890", "reaction", "react x m_1", 2)
    # a guest of the chat plugin is named by a user_ref, not a PSID: nothing to open a window for
    guest = ms_referral("", "plugin", "CUSTOMER_CHAT_PLUGIN")
    guest["entry"][0]["messaging"][0]["sender"] = {"user_ref": "guest-1"}
    assert messenger_events(raw(guest)) == []
    with pytest.raises(ValueError):
        messenger_events(raw({"object": "whatsapp_business_account"}))


# -- the webhook simulator -----------------------------------------------------------------------------


def test_deliver_signs_scrambles_and_duplicates() -> None:
    got: list[tuple[bool, bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        ok = verify_signature(APP_SECRET, body, request.headers.get("X-Hub-Signature-256"))
        got.append((ok, body))
        return web.Response(status=200 if ok else 403)

    async def main() -> tuple[list[int], list[int]]:
        app = web.Application()
        app.router.add_post("/webhooks/app-1", hook)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/app-1"
        try:
            payloads = wa_statuses(["wamid.1", "wamid.2"], ("sent", "delivered", "read"))
            payloads += [ms_delivery(PSID, 1000), ms_read(PSID, 2000)]
            good = await deliver(url, APP_SECRET, payloads, scramble=True, duplicate=True, concurrency=4)
            bad = await deliver(url, "not-the-secret", ms_read(PSID, 3000))
            return good, bad
        finally:
            await runner.cleanup()

    good, bad = asyncio.run(asyncio.wait_for(main(), 10))
    assert good == [200] * 16 and bad == [403]
    bodies = [b for ok, b in got if ok]
    assert len(bodies) == 16 and len(set(bodies)) == 8  # each payload twice
    statuses = [
        (e.wamid, e.status)
        for b in bodies
        if b"whatsapp" in b
        for e in whatsapp_events(b)
        if isinstance(e, WaStatus)
    ]
    in_order = [("wamid.1", "sent"), ("wamid.1", "delivered"), ("wamid.1", "read")]
    assert [s for s in statuses if s[0] == "wamid.1"] != in_order * 2  # shuffled (the seed is fixed)
    assert sorted(set(statuses)) == sorted(in_order + [("wamid.2", s) for s in ("sent", "delivered", "read")])
    assert msgspec.json.decode(got[-1][1])["object"] == "page" and not got[-1][0]


def test_stand_in_follows_sends_with_webhooks() -> None:
    """Given a webhook URL, the stand-in posts each accepted send's statuses there, signed and batched."""
    events: list[Any] = []
    posts: list[bool] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        posts.append(verify_signature(APP_SECRET, body, request.headers.get("X-Hub-Signature-256")))
        parse = messenger_events if b'"object":"page"' in body else whatsapp_events
        events.extend(parse(body))
        return web.Response()

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/webhooks/app-1", hook)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/app-1"
        seen = Seen()

        async def body(graph: GraphStandIn, whatsapp: WhatsAppCloud, messenger: MessengerSend) -> None:
            wamids = await asyncio.gather(
                *(whatsapp.send(wa_body("text", {"body": f"{n}"})) for n in range(5))
            )
            mids = [await messenger.send(ms_body({"text": "x"})) for _ in range(3)]
            await outcome(
                whatsapp, wa_body("text", {"body": "x"}, "15550131026"), seen
            )  # refused: no webhook
            async with asyncio.timeout(5):
                await graph.settle()
            statuses = sorted((e.wamid, e.status) for e in events if isinstance(e, WaStatus))
            assert statuses == sorted((w, s) for w in wamids for s in ("sent", "delivered"))
            assert sorted(m for e in events if isinstance(e, MsDelivery) for m in e.mids) == sorted(mids)
            assert graph.webhook_answers == {200: len(posts)}

        try:
            async with GraphStandIn(webhook_url=url, app_secret=APP_SECRET, batch=4) as graph:
                await _clients(graph, body)
        finally:
            await runner.cleanup()

    asyncio.run(asyncio.wait_for(main(), 20))
    assert posts and all(posts)
