"""`GET /v1/messages`: the calling service's messages, newest first, filtered, a page at a time.

Query parameters (all optional): `channel`, `status`, `destination`, `correlationid`, `from` and `to`
(ISO 8601, or seconds since the epoch; a time without a zone is UTC; `from` inclusive, `to` exclusive),
`q` (a piece of the content, case-insensitive for ASCII), `limit` (1 to 200, default 50) and `cursor`
(the `nextCursor` of the page before). The console reads the same parameters (`parse_query`).
"""

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from tidings.api.auth import authenticate
from tidings.api.responses import json_response, plain_error
from tidings.clock import iso
from tidings.errors import ApiError, AuthFailed, CredentialsMissing, InvalidParameter
from tidings.runtime import Runtime
from tidings.specs import SPECS
from tidings.statuses import Status
from tidings.store.listing import MAX_LIMIT, MessageQuery, MessageSummary

DEFAULT_LIMIT = 50
FILTERS = ("channel", "status", "destination", "correlationid", "from", "to", "q", "limit", "cursor")
STATUS_WORDS = tuple(s.word for s in Status if s is not Status.CLICKED)
MAX_FILTER_LENGTH = 512


class LoggedMessage(msgspec.Struct, kw_only=True):
    """One message of the log."""

    transid: str
    channel: str
    destination: str
    destinationType: str
    sender: str
    status: str
    code: str
    description: str
    correlationid: str
    createdAt: str
    updatedAt: str
    content: dict[str, object]


class MessagePage(msgspec.Struct, kw_only=True):
    """A page of the log; `nextCursor` fetches the next (older) page, null on the last."""

    messages: list[LoggedMessage]
    nextCursor: str | None


async def list_messages(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        service = authenticate(request.headers, runtime.services)
    except ApiError as exc:
        status = 401 if isinstance(exc, AuthFailed | CredentialsMissing) else 403
        return plain_error(status, exc.code, exc.description)
    try:
        query = parse_query(request.query_params, service.id)
    except ApiError as exc:
        return plain_error(400, exc.code, exc.description)
    rows = await runtime.store.list_messages(query)
    return json_response(page(rows, query.limit))


def page(rows: list[MessageSummary], limit: int) -> MessagePage:
    last = rows[-1] if len(rows) == limit else None
    return MessagePage(
        messages=[logged(r) for r in rows], nextCursor=encode_cursor(last.cursor) if last else None
    )


def logged(r: MessageSummary) -> LoggedMessage:
    return LoggedMessage(
        transid=r.transid,
        channel=r.channel,
        destination=r.address,
        destinationType=r.address_type,
        sender=sender_of(r.content),
        status=r.status,
        code=r.code,
        description=r.description,
        correlationid=r.correlationid or "",
        createdAt=iso(r.created_at),
        updatedAt=iso(r.updated_at),
        content=r.content,
    )


# Where each channel's stored content names who sends it: SMS's sender id, an email's address, an app.
_SENDER_KEYS = ("senderid", "from", "email_from", "appid", "agentId")


def sender_of(content: Mapping[str, object]) -> str:
    for key in _SENDER_KEYS:
        value = content.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict):  # an email's {"email": ..., "name": ...}
            inner = value.get("email") or value.get("address")
            if isinstance(inner, str):
                return inner
    return ""


def parse_query(params: Mapping[str, str], service_id: str | None) -> MessageQuery:
    """The listing's parameters, each checked (7004 naming it when wrong); empty values are absent."""
    p = {k: v.strip() for k, v in params.items() if k in FILTERS and v.strip()}
    for name, value in p.items():
        if len(value) > MAX_FILTER_LENGTH:
            raise InvalidParameter(f"{name} is longer than {MAX_FILTER_LENGTH} characters")
    channel = p.get("channel")
    if channel is not None and channel not in {s.name for s in SPECS}:
        raise InvalidParameter(f"channel must be one of {', '.join(s.name for s in SPECS)}")
    status = p.get("status")
    if status is not None:
        matched = [w for w in STATUS_WORDS if w.lower() == status.lower()]
        if not matched:
            raise InvalidParameter(f"status must be one of {', '.join(STATUS_WORDS)}")
        status = matched[0]
    limit = DEFAULT_LIMIT
    if "limit" in p:
        try:
            limit = int(p["limit"])
        except ValueError:
            raise InvalidParameter("limit must be a whole number") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidParameter(f"limit must be between 1 and {MAX_LIMIT}")
    since = parse_time(p["from"], "from") if "from" in p else None
    until = parse_time(p["to"], "to") if "to" in p else None
    return MessageQuery(
        service_id=service_id,
        channel=channel,
        status=status,
        address=p.get("destination"),
        correlationid=p.get("correlationid"),
        since=since,
        until=until,
        text=p.get("q"),
        before=decode_cursor(p["cursor"]) if "cursor" in p else None,
        limit=limit,
    )


def parse_time(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidParameter(f"{name} must be an ISO 8601 time or seconds since the epoch") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp()


def encode_cursor(cursor: tuple[float, int]) -> str:
    raw = msgspec.json.encode([cursor[0], cursor[1]])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[float, int]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        at, seq = msgspec.json.decode(raw, type=tuple[float, int])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidParameter("cursor is not a cursor this API gave") from None
    return at, seq
