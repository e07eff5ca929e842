"""`GET /v1/messages/{transid}`: a message, its status history and its notifications."""

from starlette.requests import Request
from starlette.responses import Response

from tidings.api.auth import authenticate
from tidings.api.responses import json_response, plain_error
from tidings.clock import iso
from tidings.errors import ApiError, AuthFailed, CredentialsMissing
from tidings.runtime import Runtime
from tidings.schema.api_wire import MessageView, NotificationView, StatusEntry
from tidings.statuses import QUEUED_CODE, Status
from tidings.store.base import MessageRecord


async def get_message(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        service = authenticate(request.headers, runtime.services)
    except ApiError as exc:
        status = 401 if isinstance(exc, AuthFailed | CredentialsMissing) else 403
        return plain_error(status, exc.code, exc.description)
    transid = request.path_params["transid"]
    record = await runtime.store.get_message(service.id, transid)
    if record is None:
        return plain_error(404, "404", f"no message {transid} for this service")
    return json_response(render(record))


def render(m: MessageRecord) -> MessageView:
    queued = Status.QUEUED.word
    return MessageView(
        transid=m.transid,
        channel=m.channel,
        destination=m.address,
        destinationType=m.address_type,
        content=m.content,
        messageCount=m.parts,
        correlationid=m.correlationid or "",
        callbackData=m.callback_data or "",
        notifyurl=m.notify_url or "",
        priority=str(m.priority),
        expiry=iso(m.expiry) if m.expiry is not None else None,
        status=m.status,
        code=m.code,
        description=m.description,
        createdAt=iso(m.created_at),
        updatedAt=iso(m.updated_at),
        attempts=m.attempts,
        clicks=m.clicks,
        history=[
            StatusEntry(queued, QUEUED_CODE, queued, iso(m.created_at)),
            *(StatusEntry(h.status, h.code, h.description, iso(h.at)) for h in m.history),
        ],
        notifications=[
            NotificationView(
                eventId=n.event_id,
                url=n.url,
                state=n.state,
                attempts=n.attempts,
                httpStatus=n.http_status,
                lastError=n.last_error,
                createdAt=iso(n.created_at),
                updatedAt=iso(n.updated_at),
            )
            for n in m.notifications
        ],
    )
