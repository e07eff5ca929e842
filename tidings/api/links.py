"""`GET /l/{code}`: a short link's redirect. Public (the person clicking has no credentials); the target
is always one the owning service configured."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tidings import clock
from tidings.api.responses import plain_error
from tidings.runtime import Runtime


async def follow(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    now = clock.now()
    click = await runtime.store.click(request.path_params["code"], now)
    link = None if click is None else runtime.smartlinks.find(click.service_id, click.linkid)
    if click is None or link is None:
        return plain_error(404, "404", "no such link")
    expired = click.expires_at is not None and click.expires_at <= now
    target = link.target(request.headers.get("user-agent", ""), expired)
    # No caching: every click must reach us to be counted, and the target changes when the link expires.
    return RedirectResponse(target, 302, headers={"Cache-Control": "no-store"})
