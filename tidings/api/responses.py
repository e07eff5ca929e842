"""Response bodies: the v1 envelope and the plain JSON errors of everything else."""

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.responses import Response

from tidings import ids
from tidings.errors import ApiError
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
