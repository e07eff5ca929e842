"""`<public_url>/t/`: what email's tracking records answer (rows of the links table written with the
message at accept: the open pixel is linkid -1, a tracked link -2 with its URL, the unsubscribe -3; each
with an unguessable code). Public: the person reading the mail has no credentials.

- `GET /t/o/{code}.gif`: a 1x1 transparent GIF that no cache keeps; the first counted fetch moves the
  message to Read 7502 (forward only: never out of Bounce or another failure, never back, once).
- `GET /t/c/{code}`: 302 to the URL recorded for that code at accept, and nothing else (no URL ever comes
  from the request); each counted fetch is one Clicked 7528 notification, `Description` the URL and
  `additionalInfo` the user agent.
- `/t/u/{code}`: RFC 8058 one-click unsubscribe. `POST` with `List-Unsubscribe=One-Click` in its form body
  (urlencoded or multipart) suppresses the address for the message's service (a later email to it is
  Failed 7241 without reaching the relay, until removed through `/admin/v1/gone-addresses`) and answers
  200; the message's own status stays. `GET` only shows a page whose button makes that POST: link
  scanners fetch every URL in a mail, so a GET never unsubscribes.
- Every code of another kind, or none, is 404.

Not counted, though answered the same (the pixel, the redirect): `HEAD`, and fetches whose user agent names
a link scanner or previewer (`SCANNER_MARKERS`): they are machines reading the mail, not its reader.
Image proxies that fetch when the reader opens the mail (Gmail's GoogleImageProxy, Yahoo's) do count.
Apple Mail Privacy Protection fetches every image on delivery with an ordinary browser's user agent:
those opens cannot be told apart and count.
"""

import email.parser
import email.policy
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tidings import clock
from tidings.api.links import notify_click
from tidings.api.responses import plain_error
from tidings.dispatch.worker import notification_for
from tidings.runtime import Runtime
from tidings.schema.email import CLICK_LINKID, OPEN_LINKID, UNSUBSCRIBE_LINKID
from tidings.specs.email import EMAIL_FAILURES, UNSUBSCRIBED
from tidings.statuses import READ
from tidings.store.base import Advance, Click, Report

FORM_LIMIT = 8192  # a one-click body is 26 bytes; a browser's form a little more

# Lowercased fragments of user agents that fetch links without a person: security scanners that check
# every link of an incoming mail, Office's own probes before it hands a link to the browser (the
# browser's fetch that follows is the click), and chat and social previewers a forwarded link meets.
SCANNER_MARKERS = (
    "safelinks",  # Microsoft Defender for Office 365 Safe Links
    "bingpreview",  # Outlook.com and Safe Links snapshots
    "ms-office",  # Outlook desktop's probes: "Microsoft Office Existence / Protocol Discovery"
    "microsoft office",
    "skypeuripreview",  # Teams and Skype link previews
    "proofpoint",
    "mimecast",
    "barracuda",
    "google-safety",  # Gmail's link checks
    "googlebot",
    "facebookexternalhit",
    "slackbot",
    "twitterbot",
    "linkedinbot",
    "discordbot",
    "telegrambot",
    "whatsapp/",
)

# A 1x1 transparent GIF89a: header, logical screen 1x1 with a two-colour global table (black, white),
# a graphic control extension marking colour 0 transparent, one image descriptor, its LZW data, trailer.
PIXEL = (
    b"GIF89a" + b"\x01\x00\x01\x00" + b"\x80\x00\x00" + b"\x00\x00\x00" + b"\xff\xff\xff"
    + b"\x21\xf9\x04\x01\x00\x00\x00\x00"
    + b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00"
    + b"\x02\x02\x44\x01\x00"
    + b"\x3b"
)  # fmt: skip
NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}


def is_scanner(agent: str) -> bool:
    lowered = agent.lower()
    return any(marker in lowered for marker in SCANNER_MARKERS)


def _counted(request: Request) -> bool:
    return request.method != "HEAD" and not is_scanner(request.headers.get("user-agent", ""))


async def _record(request: Request, linkid: int) -> Click | None:
    runtime: Runtime = request.app.state.runtime
    link = await runtime.store.find_link(request.path_params["code"])
    return link if link is not None and link.linkid == linkid else None


async def open_pixel(request: Request) -> Response:
    link = await _record(request, OPEN_LINKID)
    if link is None:
        return plain_error(404, "404", "no such link")
    if _counted(request):
        runtime: Runtime = request.app.state.runtime
        change = Advance(link.service_id, link.transid, READ, clock.now())
        moved = await runtime.store.advance(
            [change], lambda t, o, at: notification_for(runtime.services, t, o, at)
        )
        if any(moved):
            runtime.wake_notifier()
    return Response(PIXEL, 200, NO_CACHE, media_type="image/gif")


async def click(request: Request) -> Response:
    link = await _record(request, CLICK_LINKID)
    if link is None or link.target is None:
        return plain_error(404, "404", "no such link")
    if _counted(request):
        runtime: Runtime = request.app.state.runtime
        now = clock.now()
        await runtime.store.click(request.path_params["code"], now)
        if link.track:
            agent = request.headers.get("user-agent", "")
            await notify_click(runtime, link.service_id, link.transid, link.target, agent, now)
    # No caching: every click must reach us to be counted.
    return RedirectResponse(link.target, 302, headers={"Cache-Control": "no-store"})


async def unsubscribe(request: Request) -> Response:
    link = await _record(request, UNSUBSCRIBE_LINKID)
    if link is None:
        return plain_error(404, "404", "no such link")
    if request.method == "GET":
        return HTMLResponse(_CONFIRM, headers=NO_CACHE)
    body = await _limited_body(request)
    if (
        body is None
        or _form(request.headers.get("content-type", ""), body).get("List-Unsubscribe") != "One-Click"
    ):
        return plain_error(400, "7003", "Missing parameter - List-Unsubscribe=One-Click")
    runtime: Runtime = request.app.state.runtime
    report = Report(link.transid, clock.now(), None, gone=EMAIL_FAILURES[UNSUBSCRIBED])
    await runtime.store.report([report], lambda t, o, at, info: None)
    return HTMLResponse(_DONE, headers=NO_CACHE)


async def _limited_body(request: Request) -> bytes | None:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            return None
    return body


def _form(content_type: str, body: bytes) -> dict[str, str]:
    """The fields of a small form body, urlencoded or multipart/form-data (RFC 8058 allows both); the
    first value of each name."""
    if content_type.lower().startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        fields: dict[str, str] = {}
        for part in msg.iter_parts() if msg.is_multipart() else ():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields.setdefault(name, payload.decode("utf-8", "replace").strip())
        return fields
    text = body.decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 4em auto; padding: 0 1em">
{body}
</body></html>
"""
_CONFIRM = _PAGE.format(
    title="Unsubscribe",
    body="""<h1>Unsubscribe</h1>
<p>Stop receiving these emails at this address?</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button></form>""",
)
_DONE = _PAGE.format(
    title="Unsubscribed",
    body="<h1>Unsubscribed</h1>\n<p>This address will not receive these emails any more.</p>",
)
