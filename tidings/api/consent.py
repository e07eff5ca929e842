"""The consent API: `/v1/groups/{groupId}/members`, a service's consent records in its contact-policy groups.

POST `{address, channel, consent, reason?, expires?}` records consent (204); GET `?address=&channel=`
returns the record; DELETE `?address=` (and optionally `&channel=`) removes it (204). Authenticated
like the SMS API. A group the service does not have is 404 with code 9005.
"""

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from tidings import clock
from tidings.api.auth import authenticate_sms
from tidings.api.body import read_json
from tidings.api.responses import json_response, plain_error
from tidings.api.sms import sms_error
from tidings.clock import iso
from tidings.config import CATEGORIES
from tidings.errors import ApiError, InvalidJson, InvalidParameter, MandatoryMissing
from tidings.runtime import Runtime
from tidings.schema.api_wire import ConsentRecordView
from tidings.schema.common import msisdn, timestamp, typed_error
from tidings.services import Service
from tidings.store.base import ConsentChange

PHONE_CATEGORIES = frozenset({"text", "voice", "whatsapp"})


class ConsentBody(msgspec.Struct):
    address: str | None = None
    channel: str | None = None
    consent: bool | None = None
    reason: str | None = None
    expires: str | int | float | None = None


_decoder = msgspec.json.Decoder(ConsentBody)


async def members(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        service = authenticate_sms(request.headers, runtime.services)
        group_id = request.path_params["group_id"]
        if runtime.groups.find(service.id, group_id) is None:
            return plain_error(404, "9005", f"no group {group_id!r} for this service")
        if request.method == "POST":
            return await _post(request, runtime, service, group_id)
        address = _address(request.query_params.get("address"), request.query_params.get("channel") or "text")
        channel = request.query_params.get("channel")
        if request.method == "DELETE":
            await runtime.store.delete_consent(service.id, group_id, address, channel)
            return Response(status_code=204)
        record = await runtime.store.get_consent(service.id, group_id, channel or "text", address)
    except ApiError as exc:
        return sms_error(exc)
    if record is None:
        return plain_error(404, "404", f"no record for {address} in {group_id}")
    return json_response(
        ConsentRecordView(
            groupId=group_id,
            address=record.address,
            channel=record.channel,
            consent=record.consent,
            reason=record.reason,
            expires=iso(record.expires) if record.expires is not None else None,
            updatedAt=iso(record.at),
        )
    )


async def _post(request: Request, runtime: Runtime, service: Service, group_id: str) -> Response:
    raw = await read_json(request, runtime.config.server.max_body_bytes)
    try:
        body = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise typed_error(exc) from None
    except msgspec.DecodeError:
        raise InvalidJson("the body is not a JSON object") from None
    if body.consent is None:
        raise MandatoryMissing("consent is required", field="consent")
    channel = (body.channel or "").strip().lower()
    if channel not in CATEGORIES:
        raise InvalidParameter(f"must be one of {', '.join(CATEGORIES)}", field="channel")
    expires = None
    if body.expires not in (None, ""):
        assert body.expires is not None
        try:
            expires = timestamp(body.expires, "expires")
        except InvalidParameter as exc:
            raise InvalidParameter(exc.detail, field="expires") from None
    change = ConsentChange(
        service_id=service.id,
        group_id=group_id,
        channel=channel,
        address=_address(body.address, channel),
        consent=body.consent,
        reason=body.reason or "",
        source="consent API",
        expires=expires,
        at=clock.now(),
    )
    await runtime.store.save_consent(change)
    return Response(status_code=204)


def _address(value: str | None, channel: str) -> str:
    if not value:
        raise MandatoryMissing("address is required", field="address")
    if channel not in PHONE_CATEGORIES:
        return value.strip()
    try:
        return msisdn(value, "address")  # one spelling, as messages are stored: +E.164
    except InvalidParameter as exc:
        raise InvalidParameter(exc.detail, field="address") from None
