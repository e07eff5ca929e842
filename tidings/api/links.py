"""`GET /l/{code}`: a short link's redirect. Public (the person clicking has no credentials); the target
is always one the owning service configured. HEAD answers the same status and Location but is not a
click: link previewers and `curl -I` send it, and nobody followed the link."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tidings import clock
from tidings.api.responses import plain_error
from tidings.dispatch.worker import notification_for
from tidings.runtime import Runtime
from tidings.statuses import CLICKED_CODE, Outcome, Status
from tidings.store.base import ReceiptTarget


async def follow(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    now = clock.now()
    code = request.path_params["code"]
    counted = request.method != "HEAD"
    click = await runtime.store.find_link(code)
    # Negative linkids are email's tracking records (the open pixel, tracked clicks, unsubscribe): they
    # are served under /t/ only, never redirected nor counted here.
    if click is None or click.linkid < 0:
        return plain_error(404, "404", "no such link")
    if counted:
        await runtime.store.click(code, now)
    expired = click.expires_at is not None and click.expires_at <= now
    agent = request.headers.get("user-agent", "")
    if click.target is not None:  # a shortened URL
        if expired:
            return plain_error(410, "410", "this link has expired")
        target = click.target
        if click.track and counted:
            ip = request.client.host if request.client else ""
            await notify_click(runtime, click.service_id, click.transid, f"{target}|{ip}", agent, now)
    else:
        link = runtime.smartlinks.find(click.service_id, click.linkid)
        if link is None:
            return plain_error(404, "404", "no such link")
        target = link.target(agent, expired)
    # No caching: every click must reach us to be counted, and the target changes when the link expires.
    return RedirectResponse(target, 302, headers={"Cache-Control": "no-store"})


async def notify_click(
    runtime: Runtime, service_id: str, transid: str, description: str, agent: str, now: float
) -> None:
    """A Clicked notification (7528) on a message: `Description` as the channel has it (the SMS API's
    "<url>|<ip>", email's URL), `additionalInfo` the user agent."""
    m = await runtime.store.get_message(service_id, transid)
    if m is None:
        return
    target = ReceiptTarget(
        m.transid, m.service_id, m.channel, m.address, m.address_type, m.parts,
        m.correlationid, m.callback_data, m.notify_url, m.receipts,
    )  # fmt: skip
    outcome = Outcome(Status.CLICKED, CLICKED_CODE, description)
    note = notification_for(runtime.services, target, outcome, now, additional_info=agent)
    if note is not None:
        await runtime.store.add_notification(transid, service_id, note)
        runtime.wake_notifier()
