"""Reading request bodies with a size limit, whether sent with Content-Length or chunked."""

from starlette.requests import Request

from tidings.errors import BodyTooLarge
from tidings.schema import json_text


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> bytes:
    """The body, once it is known to be one strict JSON text (`tidings.schema.json_text`): every API
    reads its body through here, so every API refuses the same bytes (InvalidJson) the same way."""
    raw = await read_body(request, limit)
    json_text.check(raw)
    return raw
