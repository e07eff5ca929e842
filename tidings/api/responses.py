"""Response bodies: the v1 envelope and the plain JSON errors of everything else."""

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.responses import Response

from tidings import ids
from tidings.errors import (
    ApiError,
    AuthFailed,
    BodyTooLarge,
    CredentialsMissing,
    InternalError,
    RateLimited,
    ServiceInactive,
)
from tidings.schema.api_wire import ApiErrorBody, V1Refusal, V1RefusalBody

_encoder = msgspec.json.Encoder()


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(_encoder.encode(body), status, headers, media_type="application/json")


def v1_error(error: ApiError) -> Response:
    """A refused v1 request: one object, not an array, with a fresh transid (HTTP 200 unless 413)."""
    body = V1Refusal(V1RefusalBody(error.code, error.description, ids.new_id()))
    return json_response(body, error.http_status)


def plain_error(
    status: int, code: str, description: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An error outside the v1 envelope. The SDKs show `message` and the documents say `description`;
    both carry the same text."""
    return json_response(ApiErrorBody(code, description, description), status, headers)


def coded_error(exc: ApiError, message: str | None = None) -> Response:
    """A refusal as the SMS, WhatsApp and v2 APIs answer it: `{code, message, description?}` (the message
    "<title> - <field>" unless given), 401 without credentials, 403 for wrong ones or an inactive
    service, 429 with Retry-After, 413, 500, else 400."""
    if isinstance(exc, CredentialsMissing):
        status = 401
    elif isinstance(exc, AuthFailed | ServiceInactive):
        status = 403
    elif isinstance(exc, RateLimited):
        status = 429
    elif isinstance(exc, BodyTooLarge):
        status = 413
    elif isinstance(exc, InternalError):
        status = 500
    else:
        status = 400
    if message is None:
        message = f"{exc.title} - {exc.field}" if exc.field else exc.title
    body = ApiErrorBody(exc.code, message)
    if exc.detail:
        body.description = f"{exc.field}: {exc.detail}" if exc.field else exc.detail
    headers = {"Retry-After": "1"} if status == 429 else None
    return json_response(body, status, headers)
