"""The SMS API: `POST /v1/sms/messages` and `GET /v1/sms/messages/{messageId}`.

Unlike v1 it answers with HTTP statuses: 202 accepted, 400 for a bad request (naming the field),
401 without credentials, 403 for wrong ones or an inactive service, 413 for an oversized body, 429
with Retry-After when the service's rate is spent.
"""

import logging
from collections.abc import Sequence
from typing import Any

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from tidings.api.auth import authenticate_sms
from tidings.api.body import read_json
from tidings.api.responses import coded_error, json_response, plain_error
from tidings.clock import iso
from tidings.errors import (
    ApiError,
    InternalError,
    InvalidJson,
    InvalidParameter,
)
from tidings.runtime import Runtime
from tidings.schema import sms_api
from tidings.schema.api_wire import BatchItem, ErrorInfo, SmsAccepted, SmsView
from tidings.specs.sms import SMS
from tidings.store.base import MessageRecord

log = logging.getLogger("tidings.api")

_STATUS = {
    "Queued": "QUEUED",
    "Submitted": "SENT",
    "Delivered": "DELIVERED",
}


async def send_sms(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        service = authenticate_sms(request.headers, runtime.services)
        key = idempotency_key(request)
        body = await read_json(request, runtime.config.server.max_body_bytes)
        req = sms_api.decode(body, service.senderids)

        def answer(transids: Sequence[str], at: float) -> bytes:
            return msgspec.json.encode(_accepted(req, transids, at))

        text, replayed = await runtime.intake.accept_sms(service, req, key, answer)
    except ApiError as exc:
        return sms_error(exc)
    except ClientDisconnect:
        return sms_error(InvalidJson("the body ended early"))
    except Exception:
        log.exception("SMS API send failed")
        return sms_error(InternalError())
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return Response(text, 202, headers, media_type="application/json")


def idempotency_key(request: Request) -> str | None:
    """The request's `Idempotency-Key` (the SMS and WhatsApp APIs share the rule and the keys)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > sms_api.IDEMPOTENCY_KEY_MAX:
        raise InvalidParameter(
            f"must be 1 to {sms_api.IDEMPOTENCY_KEY_MAX} characters", field="Idempotency-Key"
        )
    return key


def _accepted(req: sms_api.SmsRequest, transids: Sequence[str], at: float) -> SmsAccepted:
    accepted = iso(at)
    if not req.batch:
        item = req.items[0]
        return SmsAccepted(accepted, messageId=transids[0], correlationId=item.correlationid or "")
    return SmsAccepted(
        accepted,
        messages=[
            BatchItem(t, item.address, item.correlationid or "")
            for t, item in zip(transids, req.items, strict=True)
        ],
    )


def sms_error(exc: ApiError) -> Response:
    return coded_error(exc)


async def get_sms(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        service = authenticate_sms(request.headers, runtime.services)
    except ApiError as exc:
        return sms_error(exc)
    message_id = request.path_params["message_id"]
    record = await runtime.store.get_message(service.id, message_id)
    if record is None or record.channel != SMS.name:
        return plain_error(404, "404", f"no message {message_id} for this service")
    return json_response(render_sms(record))


def render_sms(m: MessageRecord) -> SmsView:
    content = m.content
    status = _STATUS.get(m.status, "FAILED")
    return SmsView(
        acceptedTime=iso(m.created_at),
        statusTime=iso(m.updated_at),
        messageId=m.transid,
        correlationId=m.correlationid or "",
        from_=content.get("senderid", ""),
        to=m.address,
        contentType=(content.get("contentType") or _content_type(content)).upper(),
        content=content.get("body") if content.get("type") == "3" else content.get("text", ""),
        status=status,
        dltTemplateId=content.get("dlt_templateid"),
        error=ErrorInfo(m.code, m.description) if status == "FAILED" else None,
    )


def _content_type(content: dict[str, Any]) -> str:
    """What an SMS sent with v1 (which names a type number, not a content type) reads as here."""
    return {"3": "binary", "4": "unicode"}.get(str(content.get("type")), "text")
