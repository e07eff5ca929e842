"""Meta's webhooks at `/webhooks/{appid}` (CONTRACT.md "Provider webhooks", issue 12 items 4 and 7).

`GET` is Meta's subscription check: the challenge comes back as text/plain when `hub.verify_token` is
the app's WhatsApp or Messenger verify token, else 403. `POST` bodies are checked against the app's
`app_secret` (X-Hub-Signature-256, on the raw bytes) before anything is read or stored; an app with both
blocks takes a body either secret signs. A bad or missing signature is 403 and changes nothing; a signed
body that cannot be read is 400. Everything is stored before the 200 (Meta sends again on any other
answer), and every change is idempotent, so a repeat changes nothing.

Statuses (WhatsApp by `wa:<wamid>`, Messenger by `fb:<mid>`, within the app's service; CONTRACT.md's
forward rule, `Store.advance_by_ext`): `sent` changes nothing (a message known by its wamid is Submitted
already); `delivered` → Delivered 7500; `read` → Delivered then Read 7502 (a read that overtakes its
delivered reports both, in order, as push receipts do); `failed` → Failed with the code
`tidings.specs.whatsapp_codes.failure` maps Meta's error onto and Meta's error text in
`additionalInfo`, only from Submitted. A Messenger `delivery` moves its `mids` and, by its watermark, every
earlier Submitted message of the service to that PSID to Delivered; a `read` watermark moves every earlier
one to Read (Delivered first where it was still Submitted), a `Watermark` among the changes.

A body's statuses are applied in one store call (`Store.advance_by_ext`: one transaction, one commit),
in the order Meta put them, each seeing the ones before it: a Messenger read after its delivery in the
same body finds the message Delivered, and a delivery's watermark follows its own mids.

A status naming an id no message has yet is kept, in the same transaction, and acknowledged: Meta can
call before the send's record is committed (the Graph answer and the webhook race), and the transaction
that records the send under that id applies it then, in order, after the send's own Submitted
(`Store.record`). One still unclaimed after five minutes is forgotten: it named a message Tidings did
not send (another integration on the same number) or one whose send was never recorded (a crash; the
message is sent again under a new id).

Inbound messages are kept (`Store.record_inbound`, once per Meta message id) and posted to the
service's `inbound_url` in the SMS MO shape plus the channel's own fields; a WhatsApp STOP / START
keyword records an opt-out / opt-in for the sender as SMS keywords do. A WhatsApp sender is `+<wa_id>`,
the form v1 keeps WhatsApp addresses in (so the opt-out applies to later messages to that user):

    {"userId": "", "Channel": "WHATSAPP", "da": "<phone_number_id>", "oa": "+<wa_id>",
     "message": "<text, a reply's title or a media caption>", "messageCount": "1",
     "tid": "wa:<wamid>", "datetime": "<ISO 8601, ms>", "appId": "<appid>", "messageId": "<wamid>",
     "messageType": "text|image|audio|video|document|sticker|location|contacts|interactive|button|…",
     "profileName": "<the user's WhatsApp name>",
     "whatsapp": {"type": "…", "text": "…",
                  "media": {"type", "id", "mimeType", "sha256", "caption", "filename"},
                  "location": {"latitude", "longitude", "name", "address", "url"},
                  "contacts": [{"name", "phones": [{"phone", "waId", "type"}], "emails": […]}],
                  "reply": {"type": "button_reply|list_reply|button", "id", "title", "description"},
                  "context": {"id": "<the wamid answered>"}, "errors": [{"code", "title", "details"}]}}

    {"userId": "", "Channel": "FB", "da": "<page_id>", "oa": "<psid>", "message": "<text or the
     postback's title>", "messageCount": "1", "tid": "fb:<mid>", "datetime": "…", "appId": "<appid>",
     "messageId": "<mid>", "messageType": "text|quick_reply|attachment|postback",
     "messenger": {"type": "…", "text": "…", "quickReply": {"payload"},
                   "attachments": [{"type", "url", "title", "latitude", "longitude"}],
                   "postback": {"payload", "title"}, "replyTo": "<mid>"}}

Keys whose value would be empty are left out of the `whatsapp` / `messenger` objects.

A Messenger reaction, referral or opt-in is kept as an inbound record of its sender (named by a hash of
its sender, time and content, so Meta's repeat changes nothing) and posted nowhere: it only opens the
standard messaging window, as Meta counts it (`Store.last_inbound`, the Messenger connector).
"""

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from tidings import clock
from tidings.api.body import read_body
from tidings.api.rcs_webhooks import rcs_webhook
from tidings.api.responses import plain_error
from tidings.apps import App
from tidings.channels.meta.webhooks import (
    SIGNATURE_HEADER,
    MessengerEvent,
    MsDelivery,
    MsMessage,
    MsOpened,
    MsPostback,
    MsRead,
    WaError,
    WaMessage,
    WaStatus,
    handshake,
    messenger_events,
    verify_signature,
    whatsapp_events,
)
from tidings.dispatch.inbox import inbound_records
from tidings.dispatch.worker import notification_for
from tidings.errors import BodyTooLarge
from tidings.runtime import Runtime
from tidings.specs.whatsapp_codes import UNKNOWN_STATUS, WHATSAPP_FAILURES, failure
from tidings.statuses import DELIVERED, READ, Outcome
from tidings.store.base import ExtAdvance, InboundMessage, OutgoingNotification, ReceiptTarget, Watermark

log = logging.getLogger("tidings.webhooks")

WHATSAPP_OBJECT, MESSENGER_OBJECT = "whatsapp_business_account", "page"


class _Object(msgspec.Struct):
    object: str = ""


_OBJECT = msgspec.json.Decoder(_Object)


async def webhook(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    app_id = request.path_params["app_id"]
    app = runtime.apps.find(app_id)
    if app is not None and app.rcs is not None:
        return await rcs_webhook(request, runtime, app, app.rcs)
    if app is None or (app.whatsapp is None and app.messenger is None):
        return plain_error(404, "404", f"no WhatsApp or Messenger app {app_id}")
    if request.method == "GET":
        return _handshake(app, dict(request.query_params))
    try:
        raw = await read_body(request, runtime.config.server.max_body_bytes)
    except BodyTooLarge as exc:
        return plain_error(413, exc.code, str(exc))
    secrets = [block.app_secret for block in (app.whatsapp, app.messenger) if block is not None]
    if not any(verify_signature(secret, raw, request.headers.get(SIGNATURE_HEADER)) for secret in secrets):
        log.warning("webhook for app %s refused: bad or missing %s", app.id, SIGNATURE_HEADER)
        return plain_error(403, "403", f"bad or missing {SIGNATURE_HEADER}")
    try:
        kind = _OBJECT.decode(raw).object
        if kind == WHATSAPP_OBJECT and app.whatsapp is not None:
            await _whatsapp(runtime, app, whatsapp_events(raw))
        elif kind == MESSENGER_OBJECT and app.messenger is not None:
            await _messenger(runtime, app, messenger_events(raw))
        else:  # a subscription this app has no block for: nothing of it is Tidings' to keep
            log.warning("webhook for app %s: object %r ignored", app.id, kind)
    except (ValueError, msgspec.DecodeError) as exc:
        return plain_error(400, "400", f"unreadable webhook body: {exc}")
    runtime.wake_notifier()
    return PlainTextResponse("EVENT_RECEIVED")


def _handshake(app: App, query: dict[str, str]) -> Response:
    for block in (app.whatsapp, app.messenger):
        if block is not None and (challenge := handshake(query, block.verify_token)) is not None:
            return PlainTextResponse(challenge)
    return plain_error(403, "403", "not a subscription check with this app's verify token")


# -- statuses ------------------------------------------------------------------------------------------


async def _advance(runtime: Runtime, changes: Sequence[ExtAdvance | Watermark]) -> None:
    """Apply statuses by provider id (and Messenger watermarks), in order, in one store call: one
    transaction, one commit per webhook body. The store keeps those naming an id not recorded yet for
    the send (see the module docstring)."""

    def notice(target: ReceiptTarget, o: Outcome, at: float, info: str) -> OutgoingNotification | None:
        return notification_for(runtime.services, target, o, at, info)

    if not changes:
        return
    results = await runtime.store.advance_by_ext(changes, notice)
    early = [
        c.ext_id
        for c, moved in zip(changes, results, strict=True)
        if moved is None and isinstance(c, ExtAdvance)
    ]
    if early:
        log.debug(
            "%d statuses kept for ids no send is recorded yet with: %s", len(early), ", ".join(early[:5])
        )


def _wa_changes(service_id: str, s: WaStatus, at: float) -> list[ExtAdvance]:
    key = f"wa:{s.wamid}"
    if s.status == "delivered":
        return [ExtAdvance(service_id, key, DELIVERED, at)]
    if s.status == "read":
        return [ExtAdvance(service_id, key, DELIVERED, at), ExtAdvance(service_id, key, READ, at)]
    if s.status == "failed":
        outcome = failure(s.errors[0].code) if s.errors else WHATSAPP_FAILURES[UNKNOWN_STATUS]
        return [ExtAdvance(service_id, key, outcome, at, _error_text(s.errors))]
    return []  # sent: the message is Submitted already; others (deleted, warning) say nothing of it


def _error_text(errors: Sequence[WaError]) -> str:
    """Meta's error text for `additionalInfo`: code, title and details of each error."""
    parts = []
    for e in errors:
        text = f"{e.code} {e.title or e.message}".strip()
        if e.details and e.details not in text:
            text += f": {e.details}"
        parts.append(text)
    return "; ".join(parts)


# -- WhatsApp ------------------------------------------------------------------------------------------


async def _whatsapp(runtime: Runtime, app: App, events: Sequence[WaStatus | WaMessage]) -> None:
    now = clock.now()
    changes = [c for e in events if isinstance(e, WaStatus) for c in _wa_changes(app.service_id, e, now)]
    await _advance(runtime, changes)
    for e in events:
        if isinstance(e, WaMessage):
            sender = _e164(e.sender)
            message = InboundMessage(
                f"wa:{e.wamid}", app.service_id, "whatsapp", sender, e.phone_number_id, e.text, 1, now
            )
            await _keep(runtime, message, _wa_fields(app, e), keywords=True)


def _e164(wa_id: str) -> str:
    """A WhatsApp user's wa_id (digits) as v1 keeps WhatsApp addresses, `+` and the digits: so a STOP's
    opt-out names the address later messages to that user are checked under."""
    return f"+{wa_id}" if wa_id.isascii() and wa_id.isdigit() else wa_id


def _wa_fields(app: App, m: WaMessage) -> dict[str, Any]:
    detail: dict[str, Any] = {"type": m.type, "text": m.text}
    if m.media is not None:
        x = m.media
        detail["media"] = _some(
            type=x.kind,
            id=x.id,
            mimeType=x.mime_type,
            sha256=x.sha256,
            caption=x.caption,
            filename=x.filename,
        )
    if m.location is not None:
        where = m.location
        detail["location"] = {"latitude": where.latitude, "longitude": where.longitude}
        detail["location"] |= _some(name=where.name, address=where.address, url=where.url)
    detail["contacts"] = [
        _some(
            name=c.formatted_name,
            phones=[_some(phone=p.phone, waId=p.wa_id, type=p.type) for p in c.phones],
            emails=list(c.emails),
        )
        for c in m.contacts
    ]
    if m.reply is not None:
        r = m.reply
        detail["reply"] = _some(type=r.kind, id=r.id, title=r.title, description=r.description)
    if m.context_id:
        detail["context"] = {"id": m.context_id}
    detail["errors"] = [_some(code=e.code, title=e.title, details=e.details) for e in m.errors]
    return {
        "appId": app.id,
        "messageId": m.wamid,
        "messageType": m.type,
        "profileName": m.profile_name,
        "whatsapp": _some(**detail),
    }


# -- Messenger -----------------------------------------------------------------------------------------


async def _messenger(runtime: Runtime, app: App, events: Sequence[MessengerEvent]) -> None:
    now = clock.now()
    # The statuses first, in one store call (as WhatsApp's): no inbound event says anything of them.
    await _advance(runtime, _ms_changes(app.service_id, events, now))
    for e in events:
        if isinstance(e, MsOpened):
            # Kept for the standard messaging window only (Store.last_inbound): nothing is posted, as
            # the inbound webhook's messageType names messages and postbacks only.
            tid = f"fb:{e.kind}:{_digest(e.psid, e.timestamp, e.detail)}"
            opened = InboundMessage(tid, app.service_id, "fb", e.psid, e.page_id, e.detail, 1, now)
            if not await runtime.store.record_inbound(opened, None, None):
                log.debug("inbound %s repeated: kept already", tid)
        elif isinstance(e, MsMessage | MsPostback):
            tid, text = _ms_id(e), e.text if isinstance(e, MsMessage) else (e.title or e.payload)
            message = InboundMessage(tid, app.service_id, "fb", e.psid, e.page_id, text, 1, now)
            await _keep(runtime, message, _ms_fields(app, e, tid), keywords=False)


def _ms_changes(service_id: str, events: Sequence[MessengerEvent], at: float) -> list[ExtAdvance | Watermark]:
    """A body's deliveries and reads as one list of status changes, in Meta's order: a read after its
    delivery in the same body finds the message Delivered, and a delivery's watermark (every earlier
    message to that PSID) comes after its own mids."""
    changes: list[ExtAdvance | Watermark] = []
    for e in events:
        if isinstance(e, MsDelivery):
            changes += [ExtAdvance(service_id, f"fb:{mid}", DELIVERED, at) for mid in e.mids]
            if e.watermark:
                changes.append(Watermark(service_id, e.psid, e.watermark / 1000, (DELIVERED,), at))
        elif isinstance(e, MsRead) and e.watermark:
            changes.append(Watermark(service_id, e.psid, e.watermark / 1000, (DELIVERED, READ), at))
    return changes


def _ms_id(e: MsMessage | MsPostback) -> str:
    if e.mid:
        return f"fb:{e.mid}"
    # A postback without a mid (Get Started on older pages): its sender, time and payload name it, so
    # Meta's repeat of it is still recognised.
    payload = e.payload if isinstance(e, MsPostback) else e.text
    return f"fb:postback:{_digest(e.psid, e.timestamp, payload)}"


def _digest(psid: str, timestamp: int, detail: str) -> str:
    return hashlib.sha256(f"{psid}\n{timestamp}\n{detail}".encode()).hexdigest()[:32]


def _ms_fields(app: App, e: MsMessage | MsPostback, tid: str) -> dict[str, Any]:
    detail: dict[str, Any]
    if isinstance(e, MsPostback):
        kind = "postback"
        detail = {"type": kind, "postback": _some(payload=e.payload, title=e.title)}
    else:
        kind = "quick_reply" if e.quick_reply else "attachment" if e.attachments else "text"
        attachments = [
            _some(type=a.type, url=a.url, title=a.title, latitude=a.latitude, longitude=a.longitude)
            for a in e.attachments
        ]
        detail = {"type": kind, "text": e.text, "attachments": attachments, "replyTo": e.reply_to}
        if e.quick_reply:
            detail["quickReply"] = {"payload": e.quick_reply}
    return {"appId": app.id, "messageId": e.mid or tid, "messageType": kind, "messenger": _some(**detail)}


# -- both ----------------------------------------------------------------------------------------------


async def _keep(runtime: Runtime, message: InboundMessage, fields: dict[str, Any], keywords: bool) -> None:
    service = runtime.services.by_id(message.service_id or "")
    notification, consent = inbound_records(service, message, fields, keywords)
    if not await runtime.store.record_inbound(message, notification, consent):
        log.debug("inbound %s repeated: kept already", message.tid)


def _some(**values: Any) -> dict[str, Any]:
    """The values that say something: empty strings, lists and None are left out."""
    return {k: v for k, v in values.items() if v is not None and v != "" and v != []}
