"""The Messaging API v2: `POST /v2/messages` and `GET /v2/messages/{messageId}`.

Auth as v1 (`key:` or `Authorization: Bearer <JWT>`). 201 with `{requestTimestamp, messageId,
correlationId, status: "queued"}` (and `messages[]` when the request had several addresses); 400 with
`{"code", "message": "Invalid parameter - <field>"}` (7000, 7003, 7004, 7009, 7104 likewise); 401 with no
body for missing or wrong credentials; 403 `7007` for an inactive service; 413 `7022`; 429 `7020` with
Retry-After. `Idempotency-Key` as the SMS API.
"""

import logging
from collections.abc import Sequence

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from tidings import clock
from tidings.api.auth import authenticate
from tidings.api.body import read_json
from tidings.api.responses import coded_error, json_response, plain_error
from tidings.api.sms import idempotency_key
from tidings.clock import iso
from tidings.errors import (
    ApiError,
    AuthFailed,
    CredentialsMissing,
    InternalError,
    InvalidJson,
)
from tidings.intake_v2 import IntakeV2
from tidings.runtime import Runtime
from tidings.schema import v2
from tidings.schema.api_wire import BatchItem, ErrorInfo, StatusEntry, V2Accepted, V2View
from tidings.statuses import QUEUED_CODE, Status
from tidings.store.base import MessageRecord

log = logging.getLogger("tidings.api")

# Statuses a message ends in without reaching its address: GET shows their code as `error`.
_FAILURES = frozenset(("Failed", "Un-Delivered", "Expired", "Bounce"))
# Where a channel's stored content keeps the sender, for GET's `from`: an SMS sender id, an app id
# (RCS), an address (email).
_SENDER_KEYS = ("from", "senderid", "appid", "sender")


async def send_v2(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        service = authenticate(request.headers, runtime.services)
        key = idempotency_key(request)
        body = await read_json(request, runtime.config.server.max_body_bytes)
        req = v2.decode(body, clock.now())

        def answer(transids: Sequence[str], at: float) -> bytes:
            return msgspec.json.encode(_accepted(req, transids, at))

        text, replayed = await IntakeV2(runtime.intake).accept(service, req, key, answer)
    except ApiError as exc:
        return v2_error(exc)
    except ClientDisconnect:
        return v2_error(InvalidJson("the body ended early"))
    except Exception:
        log.exception("v2 send failed")
        return v2_error(InternalError())
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return Response(text, 201, headers, media_type="application/json")


def _accepted(req: v2.V2Request, transids: Sequence[str], at: float) -> V2Accepted:
    first = req.addresses[0]
    answer = V2Accepted(iso(at), transids[0], first.correlationid or "", "queued")
    if len(transids) > 1:
        answer.messages = [
            BatchItem(t, a.value, a.correlationid or "") for t, a in zip(transids, req.addresses, strict=True)
        ]
    return answer


def v2_error(exc: ApiError) -> Response:
    if isinstance(exc, CredentialsMissing | AuthFailed):
        return Response(status_code=401)  # the documents: 401 with no body
    # the documents: {"code":"7000","message":"Invalid JSON"}
    return coded_error(exc, exc.title if isinstance(exc, InvalidJson) else None)


async def get_v2(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        service = authenticate(request.headers, runtime.services)
    except ApiError as exc:
        return v2_error(exc)
    message_id = request.path_params["message_id"]
    record = await runtime.store.get_message(service.id, message_id)
    if record is None:
        return plain_error(404, "404", f"no message {message_id} for this service")
    return json_response(render_v2(record))


def render_v2(m: MessageRecord) -> V2View:
    """A message as GET shows it: the contract's fields, then its status history (oldest first)."""
    content = m.content
    sender = next((str(content[k]) for k in _SENDER_KEYS if content.get(k)), "")
    queued = Status.QUEUED.word
    return V2View(
        messageId=m.transid,
        channel=m.channel,
        from_=sender,
        to=m.address,
        status=m.status.lower(),
        statusTime=iso(m.updated_at),
        requestTimestamp=iso(m.created_at),
        correlationId=m.correlationid or "",
        error=ErrorInfo(m.code, m.description) if m.status in _FAILURES else None,
        history=[
            StatusEntry(queued.lower(), QUEUED_CODE, queued, iso(m.created_at)),
            *(StatusEntry(h.status.lower(), h.code, h.description, iso(h.at)) for h in m.history),
        ],
    )
