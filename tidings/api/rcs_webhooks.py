"""RBM's webhooks at `/webhooks/{appid}` for an app with an `[apps.rcs]` block (CONTRACT.md "Provider
webhooks"; the wire format is tidings.channels.rcs.webhooks).

The setup handshake (`{"clientToken", "secret"}`) is answered with the secret as text/plain when the
client token is the app's, else 403. Every other POST must carry `X-Goog-Signature` over its decoded
`message.data` under the app's `client_token`: a bad or missing one is 403 and changes nothing. A signed
body that cannot be read is 400 (RBM sends it again; a fixed Tidings can take it). Everything is stored
before the 200, and every change is idempotent, so RBM's repeats change nothing.

DELIVERED → Delivered 7500, READ → Delivered (if not yet) then Read 7502, for the message whose transid
is the event's `messageId`, within the app's service (`Store.advance`: forward only, a repeat or a
late DELIVERED after READ changes nothing). RBM may call before the send's record is committed: while
the message is still Queued the event waits for it, up to WAIT_FOR_SEND_S. IS_TYPING is ignored.

A user's message (text, a suggestion tap, a location, a file) is kept once per RBM messageId
(`Store.record_inbound`) and posted to the service's `inbound_url` in the SMS MO shape plus RCS's own
fields; a STOP / START text records an opt-out / opt-in as SMS keywords do:

    {"userId": "", "Channel": "RCS", "da": "<agent_id>", "oa": "+<E.164>", "message": "<text or the
     suggestion's text>", "messageCount": "1", "tid": "rcs:<messageId>", "datetime": "<ISO 8601, ms>",
     "appId": "<appid>", "messageId": "<RBM messageId>",
     "messageType": "text|suggestionResponse|location|userFile",
     "rcs": {"type": "…", "text": "…", "suggestionResponse": {"postbackData", "text", "type"},
             "location": {"latitude", "longitude"},
             "userFile": {"payload": {"mimeType", "fileSizeBytes", "fileUri", "fileName"},
                          "thumbnail": {…}}}}
"""

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from tidings import clock
from tidings.api.body import read_body
from tidings.api.responses import plain_error
from tidings.apps import App
from tidings.channels.rcs.settings import RcsSettings
from tidings.channels.rcs.webhooks import (
    SIGNATURE_HEADER,
    StatusEvent,
    UserMessage,
    event_data,
    handshake,
    read_event,
    verify,
)
from tidings.dispatch.inbox import inbound_records
from tidings.dispatch.worker import notification_for
from tidings.errors import BodyTooLarge
from tidings.runtime import Runtime
from tidings.statuses import DELIVERED, READ, Outcome, Status
from tidings.store.base import Advance, OutgoingNotification, ReceiptTarget
from tidings.store.base import InboundMessage as Inbound

log = logging.getLogger("tidings.webhooks")

WAIT_FOR_SEND_S = 1.0
_FIRST_RETRY_S = 0.01


async def rcs_webhook(request: Request, runtime: Runtime, app: App, block: RcsSettings) -> Response:
    if request.method != "POST":
        return plain_error(405, "405", "RBM webhooks are POSTs")
    try:
        raw = await read_body(request, runtime.config.server.max_body_bytes)
    except BodyTooLarge as exc:
        return plain_error(413, exc.code, str(exc))
    secret = handshake(raw, block.client_token)
    if secret is not None:
        if not secret:
            log.warning("RBM webhook setup for app %s refused: not its client token", app.id)
            return plain_error(403, "403", "not this agent's client token")
        return PlainTextResponse(secret)
    try:
        data = event_data(raw)
    except ValueError:
        data = b""
    if not verify(block.client_token, data, request.headers.get(SIGNATURE_HEADER)):
        log.warning("webhook for app %s refused: bad or missing %s", app.id, SIGNATURE_HEADER)
        return plain_error(403, "403", f"bad or missing {SIGNATURE_HEADER}")
    try:
        event = read_event(data)
    except ValueError as exc:
        return plain_error(400, "400", str(exc))
    if isinstance(event, StatusEvent):
        await _status(runtime, app, event)
    elif isinstance(event, UserMessage):
        await _inbound(runtime, app, block, event)
    runtime.wake_notifier()
    return PlainTextResponse("")


async def _status(runtime: Runtime, app: App, e: StatusEvent) -> None:
    def notice(target: ReceiptTarget, o: Outcome, at: float) -> OutgoingNotification | None:
        return notification_for(runtime.services, target, o, at)

    now = clock.now()
    steps = [DELIVERED] if e.kind == "DELIVERED" else [DELIVERED, READ]
    changes = [Advance(app.service_id, e.message_id, o, now) for o in steps]
    waited, pause = 0.0, _FIRST_RETRY_S
    while True:
        moved = await runtime.store.advance(changes, notice)
        if any(moved) or waited >= WAIT_FOR_SEND_S:
            return
        record = await runtime.store.get_message(app.service_id, e.message_id)
        if record is None or record.channel != "rcs" or record.status != Status.QUEUED.word:
            return  # a repeat, a late DELIVERED, or not a message of ours: nothing to change
        await asyncio.sleep(pause)  # the send's record is still landing
        waited, pause = waited + pause, min(pause * 2, WAIT_FOR_SEND_S - waited)


async def _inbound(runtime: Runtime, app: App, block: RcsSettings, e: UserMessage) -> None:
    sender = e.sender if e.sender.startswith("+") else f"+{e.sender}"
    message = Inbound(
        f"rcs:{e.message_id}", app.service_id, "rcs", sender, block.agent_id, e.text, 1, clock.now()
    )
    fields = {"appId": app.id, "messageId": e.message_id, "messageType": e.kind, "rcs": e.detail}
    service = runtime.services.by_id(app.service_id)
    notification, consent = inbound_records(service, message, fields, keywords=e.kind == "text")
    if not await runtime.store.record_inbound(message, notification, consent):
        log.debug("inbound %s repeated: kept already", message.tid)
