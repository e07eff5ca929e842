"""Meta's Graph API as WhatsApp and Messenger senders see it, on loopback, plus Meta's webhook side.

GraphStandIn serves both send endpoints on one aiohttp server (HTTP/1.1, as graph.facebook.com takes it;
HTTPS with `tls=True`, trusted through `client_context()`):
  POST /{version}/{phone_number_id}/messages   the WhatsApp Cloud API: `{"messages":[{"id":"wamid.<n>"}]}`
  POST /{version}/me/messages                  the Messenger Send API: `{"recipient_id","message_id":"m_<n>"}`
It checks the token (a Bearer header, or `?access_token=`), checks each body the way Meta does (the
fields per message type, the documented limits) and answers a bad one with Graph's error shape; a
recipient listed in `errors` gets its scripted (status, error body[, headers]) instead. What it received
is kept in `received` unless `record` is off (a benchmark).

`deliver()` is Meta's webhook sender: it signs each payload with X-Hub-Signature-256 and POSTs it,
optionally shuffled and each one twice. The builders below make the payloads: WhatsApp statuses and
inbound messages, Messenger deliveries (with or without mids), reads, messages and postbacks. Given a
`webhook_url`, the stand-in itself follows each accepted send with its status webhooks (end to end runs),
or, for a recipient in `early_statuses`, posts them before it answers the send.
"""

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import random
import ssl
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import trustme
from aiohttp import web

WA_TYPES = frozenset(
    {"text", "image", "audio", "video", "document", "sticker", "location", "contacts", "interactive"}
    | {"reaction", "template"}
)
MEDIA = frozenset({"image", "audio", "video", "document", "sticker"})
CAPTIONED = frozenset({"image", "video", "document"})
TEXT_MAX = 4096  # WhatsApp text.body
MS_TEXT_MAX = 2000  # Messenger message.text
QUICK_REPLIES_MAX = 13
MESSAGE_TAGS = frozenset(
    {"ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "CUSTOMER_FEEDBACK", "HUMAN_AGENT", "POST_PURCHASE_UPDATE"}
)
SENDER_ACTIONS = frozenset({"typing_on", "typing_off", "mark_seen"})

Scripted = tuple[int, dict[str, Any]] | tuple[int, dict[str, Any], dict[str, str]]


def error_body(
    code: int,
    message: str,
    subcode: int | None = None,
    type: str = "OAuthException",
    details: str | None = None,
) -> dict[str, Any]:
    """Graph's error object; `details` adds WhatsApp's error_data."""
    error: dict[str, Any] = {"message": message, "type": type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = "AbCdEfGhIjK_trace"
    return {"error": error}


# Recipients with a scripted refusal, by what Meta's documentation says each code is.
WA_SCRIPTED: dict[str, Scripted] = {
    "15550131047": (
        400,
        error_body(
            131047,
            "Re-engagement message",
            details="Message failed to send because more than 24 hours have passed since the customer "
            "last replied to this number.",
        ),
    ),
    "15550131026": (400, error_body(131026, "Message undeliverable", details="Message Undeliverable.")),
    "15550130429": (
        400,
        error_body(130429, "Rate limit hit", details="Cloud API message throughput has been reached."),
        {"Retry-After": "4"},
    ),
    "15550131056": (
        400,
        error_body(
            131056,
            "(Business Account, Consumer Account) pair rate limit hit",
            details="Too many messages sent from the sender phone number to the same recipient phone "
            "number in a short period of time.",
        ),
    ),
    "15550131000": (500, error_body(131000, "Something went wrong", details="Something went wrong.")),
}
MS_SCRIPTED: dict[str, Scripted] = {
    "psid-1200": (500, error_body(1200, "Temporary send message failure. Please try again later.")),
    "psid-613": (400, error_body(613, "Calls to this api have exceeded the rate limit.")),
    "psid-551": (400, error_body(551, "This person isn't available right now.", 1545041)),
    "psid-nouser": (400, error_body(100, "No matching user found", 2018001)),
    "psid-window": (
        400,
        error_body(
            10,
            "This message is sent outside of allowed window.",
            2018278,
        ),
    ),
}


@dataclass
class Received:
    api: str  # whatsapp, messenger
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any


@dataclass
class GraphStandIn:
    phone_number_id: str = "106540352242922"
    page_id: str = "1234567890"
    wa_token: str = "EAAwa-test-token-not-real"
    page_token: str = "EAAms-page-token-not-real"
    record: bool = True
    tls: bool = False  # serve HTTPS with a certificate for 127.0.0.1 from a CA of its own
    errors: dict[str, Scripted] = field(default_factory=lambda: {**WA_SCRIPTED, **MS_SCRIPTED})
    delays: dict[str, float] = field(default_factory=dict)  # recipient -> seconds before answering
    drop_next: int = 0  # the next N sends: the connection is closed without an answer
    received: list[Received] = field(default_factory=list)
    sends: int = 0
    # Meta's side of an end-to-end run: when `webhook_url` is set, every accepted send is followed by
    # signed status webhooks to it (WhatsApp: each of `auto_statuses` per wamid; Messenger: a delivery
    # naming the mid), up to `batch` events in one POST as Meta batches them.
    webhook_url: str = ""
    app_secret: str = ""
    auto_statuses: tuple[str, ...] = ("sent", "delivered")
    batch: int = 100
    webhook_answers: Counter[int] = field(default_factory=Counter)  # HTTP status -> count
    # recipient -> WhatsApp statuses posted (signed, to `webhook_url`, and answered) before the answer to
    # its send: Meta reporting a message before the sender could record it. Nothing else follows them.
    early_statuses: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._ca: trustme.CA | None = trustme.CA() if self.tls else None
        self._pending: list[tuple[str, str, str]] = []  # (api, recipient, id) awaiting its webhook
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._pusher: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def client_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts this stand-in's CA (and the system's)."""
        context = ssl.create_default_context()
        if self._ca is not None:
            self._ca.configure_trust(context)
        return context

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{version}/{node}/messages", self._send)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        server_tls = None
        if self._ca is not None:
            server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._ca.issue_cert("127.0.0.1").configure_cert(server_tls)
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=server_tls).start()
        self.port = int(self._runner.addresses[0][1])
        if self.webhook_url:
            self._pusher = asyncio.create_task(self._push_webhooks())

    async def stop(self) -> None:
        if self._pusher is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await self.settle()
            self._pusher.cancel()
            await asyncio.gather(self._pusher, return_exceptions=True)
            self._pusher = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def settle(self) -> None:
        """Wait until every queued webhook has been posted (bound it with asyncio.timeout)."""
        await self._idle.wait()

    async def _push_webhooks(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._pending:
                    items, self._pending = self._pending[: self.batch], self._pending[self.batch :]
                    try:
                        for answer in await deliver(
                            self.webhook_url, self.app_secret, self._payloads(items), session=http
                        ):
                            self.webhook_answers[answer] += 1
                    except (aiohttp.ClientError, TimeoutError):
                        self.webhook_answers[0] += 1
                self._idle.set()

    def _payloads(self, items: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
        now = int(time.time())
        statuses = [
            {"id": ident, "status": status, "timestamp": str(now), "recipient_id": to}
            for status in self.auto_statuses
            for api, to, ident in items
            if api == "whatsapp"
        ]
        deliveries = [
            _ms_item(psid, self.page_id, {"delivery": {"mids": [mid], "watermark": now * 1000}})
            for api, psid, mid in items
            if api == "messenger"
        ]
        payloads = []
        if statuses:
            payloads.append(_wa_payload({"statuses": statuses}, self.phone_number_id, "102290129340398"))
        if deliveries:
            payloads.append(_ms_payload(self.page_id, deliveries))
        return payloads

    def _queue(self, api: str, recipient: str, ident: str) -> None:
        if self.webhook_url:
            self._pending.append((api, recipient, ident))
            self._idle.clear()
            self._wake.set()

    async def __aenter__(self) -> "GraphStandIn":
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # -- the send endpoints ----------------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.StreamResponse:
        self.sends += 1
        if self.drop_next > 0:
            self.drop_next -= 1
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        node = request.match_info["node"]
        api = "messenger" if node in ("me", self.page_id) else "whatsapp"
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if self.record:
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.received.append(Received(api, request.path, dict(request.query), headers, body))
        if not _version(request.match_info["version"]):
            return _error(400, 2500, f"Unknown path components: /{request.match_info['version']}")
        if api == "whatsapp" and node != self.phone_number_id:
            return _error(400, 100, f"Unsupported post request. Object with ID '{node}' does not exist", 33)
        expected = self.page_token if api == "messenger" else self.wa_token
        if _token(request) != expected:
            return _error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if request.content_type != "application/json" or not isinstance(body, dict):
            return _error(400, 100, "(#100) The parameter body must be a JSON object")
        if api == "whatsapp":
            return await self._whatsapp(body)
        return await self._messenger(body)

    async def _whatsapp(self, body: dict[str, Any]) -> web.Response:
        problem = wa_problem(body)
        if problem:
            return _error(400, problem[0], problem[1], details=problem[2])
        to = str(body["to"])
        scripted = await self._scripted(to)
        if scripted is not None:
            return scripted
        wamid = f"wamid.{next(self._ids)}"
        if to in self.early_statuses:
            await self._post_early(to, wamid, self.early_statuses[to])
        else:
            self._queue("whatsapp", to, wamid)
        answer: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
            "messages": [{"id": wamid}],
        }
        if body.get("type") == "template":
            answer["messages"][0]["message_status"] = "accepted"
        return web.json_response(answer)

    async def _messenger(self, body: dict[str, Any]) -> web.Response:
        problem = ms_problem(body)
        if problem:
            return _error(400, problem[0], problem[2], problem[1] or None)
        psid = str(body["recipient"]["id"])
        scripted = await self._scripted(psid)
        if scripted is not None:
            return scripted
        if "sender_action" in body:
            return web.json_response({"recipient_id": psid})
        mid = f"m_{next(self._ids)}"
        self._queue("messenger", psid, mid)
        return web.json_response({"recipient_id": psid, "message_id": mid})

    async def _post_early(self, to: str, wamid: str, statuses: Sequence[str]) -> None:
        now = str(int(time.time()))
        items = [{"id": wamid, "status": s, "timestamp": now, "recipient_id": to} for s in statuses]
        payload = _wa_payload({"statuses": items}, self.phone_number_id, "102290129340398")
        for answer in await deliver(self.webhook_url, self.app_secret, payload):
            self.webhook_answers[answer] += 1

    async def _scripted(self, recipient: str) -> web.Response | None:
        pause = self.delays.get(recipient)
        if pause:
            await asyncio.sleep(pause)
        scripted = self.errors.get(recipient)
        if scripted is None:
            return None
        headers = scripted[2] if len(scripted) == 3 else None
        return web.json_response(scripted[1], status=scripted[0], headers=headers)

    def sent(self, api: str) -> list[Received]:
        return [r for r in self.received if r.api == api]


def _version(value: str) -> bool:
    major, dot, minor = value.removeprefix("v").partition(".")
    return value.startswith("v") and major.isdigit() and dot == "." and minor.isdigit()


def _token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        return token
    return request.query.get("access_token", "")


def _error(
    status: int, code: int, message: str, subcode: int | None = None, details: str | None = None
) -> web.Response:
    return web.json_response(error_body(code, message, subcode, details=details), status=status)


# -- what Meta checks in a body ------------------------------------------------------------------------

Problem = tuple[int, str, str]  # (code, title, details)
MsProblem = tuple[int, int, str]  # (code, subcode or 0, message)


def _missing(what: str) -> Problem:
    return (131008, "Required parameter is missing", f"The parameter {what} is required.")


def _invalid(what: str) -> Problem:
    return (131009, "Parameter value is not valid", what)


def wa_problem(body: dict[str, Any]) -> Problem | None:
    """The first thing the Cloud API would refuse in a message body, else None."""
    if body.get("messaging_product") != "whatsapp":
        return (
            _missing("messaging_product")
            if "messaging_product" not in body
            else _invalid("messaging_product")
        )
    if body.get("recipient_type", "individual") != "individual":
        return _invalid("recipient_type must be individual")
    if not isinstance(body.get("to"), str) or not body["to"]:
        return _missing("to")
    kind = body.get("type", "text")
    if kind not in WA_TYPES:
        return (131051, "Unsupported message type", f"Message type {kind} is not supported.")
    obj = body.get(kind)
    if obj is None:
        return _missing(kind)
    return _WA_CHECKS.get(kind, _wa_any)(kind, obj)


def _wa_any(kind: str, obj: Any) -> Problem | None:
    return None if isinstance(obj, dict) else _invalid(f"{kind} must be an object")


def _wa_text(kind: str, obj: Any) -> Problem | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("body"), str) or not obj["body"]:
        return _missing("text.body")
    if len(obj["body"]) > TEXT_MAX:
        return _invalid(f"text.body is longer than {TEXT_MAX} characters")
    if not isinstance(obj.get("preview_url", False), bool):
        return _invalid("text.preview_url must be a boolean")
    return None


def _wa_media(kind: str, obj: Any) -> Problem | None:
    if not isinstance(obj, dict):
        return _invalid(f"{kind} must be an object")
    if ("id" in obj) == ("link" in obj):
        return _invalid(f"{kind} takes one of id or link")
    if "caption" in obj and kind not in CAPTIONED:
        return _invalid(f"{kind} takes no caption")
    if "filename" in obj and kind != "document":
        return _invalid(f"{kind} takes no filename")
    return None


def _wa_location(kind: str, obj: Any) -> Problem | None:
    if not isinstance(obj, dict):
        return _invalid("location must be an object")
    for axis in ("latitude", "longitude"):
        if not isinstance(obj.get(axis), int | float | str):
            return _missing(f"location.{axis}")
    return None


def _wa_contacts(kind: str, obj: Any) -> Problem | None:
    if not isinstance(obj, list) or not obj:
        return _missing("contacts")
    for contact in obj:
        name = contact.get("name") if isinstance(contact, dict) else None
        if not isinstance(name, dict) or not name.get("formatted_name"):
            return _missing("contacts.name.formatted_name")
    return None


def _wa_interactive(kind: str, obj: Any) -> Problem | None:
    if not isinstance(obj, dict):
        return _invalid("interactive must be an object")
    variety = obj.get("type")
    action = obj.get("action")
    if variety in ("button", "list"):
        text = (obj.get("body") or {}).get("text")
        if not isinstance(text, str) or not text:
            return _missing("interactive.body.text")
        if len(text) > 1024:
            return _invalid("interactive.body.text is longer than 1024 characters")
    if not isinstance(action, dict):
        return _missing("interactive.action")
    if variety == "button":
        return _wa_buttons(action.get("buttons"))
    if variety == "list":
        return _wa_list(action)
    return None


def _wa_buttons(buttons: Any) -> Problem | None:
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return _invalid("interactive.action.buttons takes 1 to 3 buttons")
    for button in buttons:
        reply = button.get("reply") if isinstance(button, dict) else None
        if button.get("type") != "reply" or not isinstance(reply, dict):
            return _invalid("a button is {type: reply, reply: {id, title}}")
        if not reply.get("id") or len(str(reply["id"])) > 256:
            return _invalid("button reply.id is 1 to 256 characters")
        if not reply.get("title") or len(str(reply["title"])) > 20:
            return _invalid("button reply.title is 1 to 20 characters")
    return None


def _wa_list(action: dict[str, Any]) -> Problem | None:
    if not action.get("button") or len(str(action["button"])) > 20:
        return _invalid("interactive.action.button is 1 to 20 characters")
    sections = action.get("sections")
    if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
        return _invalid("interactive.action.sections takes 1 to 10 sections")
    rows = [row for section in sections for row in (section.get("rows") or [])]
    if not 1 <= len(rows) <= 10:
        return _invalid("a list takes 1 to 10 rows in all")
    for row in rows:
        if not row.get("id") or len(str(row["id"])) > 200:
            return _invalid("row id is 1 to 200 characters")
        if not row.get("title") or len(str(row["title"])) > 24:
            return _invalid("row title is 1 to 24 characters")
        if len(str(row.get("description", ""))) > 72:
            return _invalid("row description is at most 72 characters")
    return None


def _wa_reaction(kind: str, obj: Any) -> Problem | None:
    if not isinstance(obj, dict) or not obj.get("message_id") or "emoji" not in obj:
        return _missing("reaction.message_id and reaction.emoji")
    return None


def _wa_template(kind: str, obj: Any) -> Problem | None:
    if not isinstance(obj, dict) or not obj.get("name"):
        return _missing("template.name")
    if not isinstance(obj.get("language"), dict) or not obj["language"].get("code"):
        return _missing("template.language.code")
    return None


_WA_CHECKS = {
    "text": _wa_text,
    **{kind: _wa_media for kind in MEDIA},
    "location": _wa_location,
    "contacts": _wa_contacts,
    "interactive": _wa_interactive,
    "reaction": _wa_reaction,
    "template": _wa_template,
}


def ms_problem(body: dict[str, Any]) -> MsProblem | None:
    """The first thing the Send API would refuse in a body, as (code, subcode or 0, message), else None."""
    recipient = body.get("recipient")
    if not isinstance(recipient, dict) or not recipient.get("id"):
        return (100, 0, "(#100) param recipient must be an object with an id")
    if "sender_action" in body:
        if body["sender_action"] not in SENDER_ACTIONS:
            return (100, 0, "(#100) param sender_action must be typing_on, typing_off or mark_seen")
        if set(body) - {"recipient", "sender_action"}:
            return (100, 2018034, "(#100) sender_action can be sent with recipient only")
        return None
    message = body.get("message")
    if not isinstance(message, dict):
        return (100, 0, "(#100) param message must be an object")
    kind = body.get("messaging_type")
    if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
        return (100, 0, "(#100) messaging_type must be RESPONSE, UPDATE or MESSAGE_TAG")
    if kind == "MESSAGE_TAG" and body.get("tag") not in MESSAGE_TAGS:
        return (100, 0, "(#100) a MESSAGE_TAG message needs a valid tag")
    if body.get("notification_type", "REGULAR") not in ("REGULAR", "SILENT_PUSH", "NO_PUSH"):
        return (100, 0, "(#100) param notification_type is not valid")
    return _ms_message(message)


def _ms_message(message: dict[str, Any]) -> MsProblem | None:
    if ("text" in message) == ("attachment" in message):
        return (100, 0, "(#100) message takes one of text or attachment")
    text = message.get("text")
    if "text" in message and (not isinstance(text, str) or not text or len(text) > MS_TEXT_MAX):
        return (100, 0, f"(#100) Length of param message[text] must be 1 to {MS_TEXT_MAX} characters")
    attachment = message.get("attachment")
    if attachment is not None:
        if not isinstance(attachment, dict) or not isinstance(attachment.get("payload"), dict):
            return (100, 0, "(#100) attachment needs a payload object")
        if attachment.get("type") not in ("image", "audio", "video", "file", "template"):
            return (100, 0, "(#100) attachment type is not valid")
    return _ms_quick_replies(message.get("quick_replies"))


def _ms_quick_replies(replies: Any) -> MsProblem | None:
    if replies is None:
        return None
    if not isinstance(replies, list) or not 1 <= len(replies) <= QUICK_REPLIES_MAX:
        return (100, 0, f"(#100) quick_replies takes 1 to {QUICK_REPLIES_MAX} replies")
    for reply in replies:
        kind = reply.get("content_type") if isinstance(reply, dict) else None
        if kind not in ("text", "user_phone_number", "user_email"):
            return (100, 0, "(#100) quick_replies[].content_type is not valid")
        if kind != "text":
            continue
        title, payload = reply.get("title"), reply.get("payload")
        if not isinstance(title, str) or len(title) > 20 or not (title or reply.get("image_url")):
            return (100, 0, "(#100) quick_replies[].title is at most 20 characters")
        if not isinstance(payload, str | int) or len(str(payload)) > 1000:
            return (100, 0, "(#100) quick_replies[].payload is at most 1000 characters")
    return None


# -- the webhook side ----------------------------------------------------------------------------------


def sign(app_secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()


async def deliver(
    url: str,
    app_secret: str,
    payload: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    scramble: bool = False,
    duplicate: bool = False,
    seed: int = 12,
    concurrency: int = 1,
    session: aiohttp.ClientSession | None = None,
) -> list[int]:
    """POST each payload to `url` signed as Meta signs it; the HTTP statuses, in sending order.
    `scramble` shuffles the order (seeded), `duplicate` sends each payload twice (the copy later);
    `concurrency` posts that many at once (a benchmark)."""
    items = [payload] if isinstance(payload, Mapping) else list(payload)
    raws = [json.dumps(item, separators=(",", ":")).encode() for item in items]
    if duplicate:
        raws = raws + raws
    if scramble:
        random.Random(seed).shuffle(raws)
    own = session is None
    http = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    statuses: list[int] = [0] * len(raws)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(index: int, raw: bytes) -> None:
        headers = {"content-type": "application/json", "x-hub-signature-256": sign(app_secret, raw)}
        async with gate, http.post(url, data=raw, headers=headers) as response:
            await response.read()
            statuses[index] = response.status

    try:
        if concurrency <= 1:
            for index, raw in enumerate(raws):
                await one(index, raw)
        else:
            await asyncio.gather(*(one(i, raw) for i, raw in enumerate(raws)))
    finally:
        if own:
            await http.close()
    return statuses


def _wa_payload(value: dict[str, Any], phone_number_id: str, waba_id: str) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
        **value,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"value": value, "field": "messages"}]}],
    }


def wa_status(
    wamid: str,
    status: str,
    recipient: str = "16505551234",
    *,
    when: int | None = None,
    errors: Sequence[Mapping[str, Any]] = (),
    phone_number_id: str = "106540352242922",
    waba_id: str = "102290129340398",
) -> dict[str, Any]:
    """One status webhook, shaped like Meta's samples (conversation and pricing on sent/delivered)."""
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time()) if when is None else when),
        "recipient_id": recipient,
    }
    if status in ("sent", "delivered"):
        item["conversation"] = {"id": "6ceb9d929c1c7a8e8c5ad2e7e5a0f6d3", "origin": {"type": "service"}}
        item["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "service"}
    if errors:
        item["errors"] = [dict(e) for e in errors]
    return _wa_payload({"statuses": [item]}, phone_number_id, waba_id)


def wa_failure(code: int, title: str, details: str) -> dict[str, Any]:
    """An `errors[]` item of a failed status."""
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details},
        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
    }


def wa_statuses(
    wamids: Iterable[str],
    statuses: Sequence[str] = ("sent", "delivered", "read"),
    recipient: str = "16505551234",
    **extra: Any,
) -> list[dict[str, Any]]:
    """For each wamid, one webhook per status, in the order given (timestamps rising)."""
    base = int(time.time())
    return [
        wa_status(wamid, status, recipient, when=base + step, **extra)
        for wamid in wamids
        for step, status in enumerate(statuses)
    ]


def wa_inbound(
    message: Mapping[str, Any],
    sender: str = "16505551234",
    name: str = "Kerry Fisher",
    *,
    phone_number_id: str = "106540352242922",
    waba_id: str = "102290129340398",
) -> dict[str, Any]:
    """A user's message webhook; `message` is the type and its object (`{"type": "text", "text": …}`)."""
    item = {"from": sender, "id": f"wamid.in-{sender}-{abs(hash(json.dumps(message, sort_keys=True)))}"}
    item |= {"timestamp": str(int(time.time())), **message}
    value = {"contacts": [{"profile": {"name": name}, "wa_id": sender}], "messages": [item]}
    return _wa_payload(value, phone_number_id, waba_id)


def _ms_payload(page_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {"object": "page", "entry": [{"id": page_id, "time": now, "messaging": items}]}


def _ms_item(psid: str, page_id: str, event: dict[str, Any]) -> dict[str, Any]:
    return {
        "sender": {"id": psid},
        "recipient": {"id": page_id},
        "timestamp": int(time.time() * 1000),
    } | event


def ms_delivery(
    psid: str, watermark: int, mids: Sequence[str] | None = None, page_id: str = "1234567890"
) -> dict[str, Any]:
    """A message_deliveries webhook; without `mids`, only the watermark says what arrived."""
    delivery: dict[str, Any] = {"watermark": watermark}
    if mids is not None:
        delivery["mids"] = list(mids)
    return _ms_payload(page_id, [_ms_item(psid, page_id, {"delivery": delivery})])


def ms_read(psid: str, watermark: int, page_id: str = "1234567890") -> dict[str, Any]:
    return _ms_payload(page_id, [_ms_item(psid, page_id, {"read": {"watermark": watermark}})])


def ms_message(psid: str, message: Mapping[str, Any], page_id: str = "1234567890") -> dict[str, Any]:
    return _ms_payload(page_id, [_ms_item(psid, page_id, {"message": dict(message)})])


def ms_postback(psid: str, payload: str, title: str, page_id: str = "1234567890") -> dict[str, Any]:
    event = {"postback": {"title": title, "payload": payload, "mid": f"m_postback_{psid}"}}
    return _ms_payload(page_id, [_ms_item(psid, page_id, event)])


def ms_reaction(
    psid: str, mid: str, emoji: str = "\u2764\ufe0f", action: str = "react", page_id: str = "1234567890"
) -> dict[str, Any]:
    """A message_reactions webhook: the user reacted to (or, `unreact`, un-reacted to) the page's `mid`."""
    event = {"reaction": {"reaction": "love", "emoji": emoji, "action": action, "mid": mid}}
    return _ms_payload(page_id, [_ms_item(psid, page_id, event)])


def ms_referral(
    psid: str, ref: str, source: str = "SHORTLINK", page_id: str = "1234567890"
) -> dict[str, Any]:
    """A messaging_referrals webhook: the user opened the existing thread through an m.me link (or an
    ad, or the chat plugin) carrying `ref`."""
    event = {"referral": {"ref": ref, "source": source, "type": "OPEN_THREAD"}}
    return _ms_payload(page_id, [_ms_item(psid, page_id, event)])


def ms_optin(psid: str, payload: str, page_id: str = "1234567890") -> dict[str, Any]:
    """A messaging_optins webhook: the user opted in to the page's marketing messages."""
    event = {"optin": {"type": "notification_messages", "payload": payload, "title": "Updates"}}
    return _ms_payload(page_id, [_ms_item(psid, page_id, event)])
