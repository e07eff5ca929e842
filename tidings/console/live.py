"""The message log's live updates: `GET /console/events`, Server-Sent Events.

Each connection polls the store once a second with two cheap queries, both index range reads: messages
newer than the newest it has seen (with the page's filters), and the rows it has sent (at most 200, by
transid) to see which changed. New and changed rows go out as `row` events (JSON); the browser inserts or
updates them without reloading. A connection ends after 10 minutes; EventSource reconnects by itself.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tidings.api.listing import parse_query
from tidings.console.html import HEADERS
from tidings.console.pages import current, owner_filter, runtime_of, summary_json
from tidings.errors import ApiError
from tidings.store.listing import MessageQuery

POLL_S = 1.0
LIFETIME_S = 600.0
WATCHED = 200


async def events(request: Request) -> Response:
    s = current(request)
    if s is None:
        return Response(status_code=401, headers=HEADERS)
    try:
        query = parse_query(request.query_params, owner_filter(request, s))
    except ApiError:
        return Response(status_code=400, headers=HEADERS)
    query = replace(query, before=None, limit=WATCHED)
    headers = {**HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(_stream(request, query), media_type="text/event-stream", headers=headers)


async def _stream(request: Request, query: MessageQuery) -> AsyncIterator[str]:
    store = runtime_of(request).store
    first = await store.list_messages(query)
    seen = {m.transid: m.updated_at for m in first}
    newest = first[0].cursor if first else (time.time() - 1, 0)
    owner = query.service_id
    yield "retry: 1000\n\n"
    deadline = time.monotonic() + LIFETIME_S
    while time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
        if await request.is_disconnected():
            return
        fresh = await store.list_messages(replace(query, after=newest))
        changed = []
        if seen:
            changed = await store.list_messages(MessageQuery(owner, transids=list(seen), limit=WATCHED))
        out = []
        for m in reversed(fresh):  # oldest first, so the browser ends with the newest on top
            out.append(m)
            newest = max(newest, m.cursor)
        for m in changed:
            if m.transid not in {f.transid for f in fresh} and seen.get(m.transid) != m.updated_at:
                out.append(m)
        for m in out:
            seen[m.transid] = m.updated_at
            yield f"event: row\ndata: {json.dumps(summary_json(m))}\n\n"
        while len(seen) > WATCHED:  # the oldest rows (inserted first) stop being watched
            seen.pop(next(iter(seen)))
        if not out:
            yield ": tick\n\n"  # a comment: finds a closed connection
