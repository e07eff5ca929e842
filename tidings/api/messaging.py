"""`POST /resources/v1/messaging`: the Messaging API v1 send endpoint."""

import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from tidings.api.auth import authenticate
from tidings.api.body import read_json
from tidings.api.responses import json_response, v1_error
from tidings.errors import ApiError, InternalError, InvalidJson
from tidings.runtime import Runtime
from tidings.schema import v1
from tidings.schema.api_wire import V1Accepted, V1AcceptedItem
from tidings.statuses import QUEUED_CODE, Status

log = logging.getLogger("tidings.api")


async def send_v1(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        service = authenticate(request.headers, runtime.services)
        body = await read_json(request, runtime.config.server.max_body_bytes)
        req = v1.decode(body)
        accepted = await runtime.intake.accept_v1(service, req)
    except ApiError as exc:
        return v1_error(exc)
    except ClientDisconnect:
        log.info("client disconnected before sending its whole body")
        return v1_error(InvalidJson("the body ended early"))
    except Exception:
        log.exception("v1 send failed")
        return v1_error(InternalError())
    queued = Status.QUEUED.word
    items = [V1AcceptedItem(QUEUED_CODE, a.transid, queued, a.correlationid) for a in accepted]
    return json_response(V1Accepted(items))
