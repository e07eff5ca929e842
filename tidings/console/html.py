"""The console's HTML: the page frame, escaping, and small pieces every page uses.

Jinja2 is not a dependency of Tidings, so pages are Python string building where every value from
outside passes through `e()` (html.escape with quotes). Nothing here loads anything from the internet:
the page's CSS and JS come from /console/static, and the Content-Security-Policy says so to the browser.
"""

import html
from collections.abc import Iterable
from datetime import UTC, datetime

from starlette.responses import HTMLResponse

from tidings.console.session import Session

# Only our own files; email previews are srcdoc iframes with an empty sandbox (no scripts, no forms, an
# opaque origin) and may not load remote images either. Inline styles are allowed for those emails.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

NAV = (("messages", "Messages"), ("send", "Send a test"), ("stats", "Stats"), ("health", "Health"))

STATUS_CLASS = {
    "Queued": "queued",
    "Submitted": "submitted",
    "Delivered": "delivered",
    "Read": "delivered",
    "Un-Delivered": "failed",
    "Failed": "failed",
    "Expired": "failed",
    "Bounce": "failed",
}


def e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def time_tag(ts: float | None) -> str:
    if ts is None:
        return ""
    iso = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    return f'<time datetime="{e(iso)}">{e(when(ts))}</time>'


def badge(status: str) -> str:
    return f'<span class="badge {STATUS_CLASS.get(status, "other")}">{e(status)}</span>'


def section(key: str, title: str, body: str) -> str:
    return f'<section aria-labelledby="h-{key}"><h2 id="h-{key}">{e(title)}</h2>{body}</section>'


def csrf_field(session: Session) -> str:
    return f'<input type="hidden" name="csrf" value="{e(session.csrf)}">'


def options(values: Iterable[tuple[str, str]], selected: str) -> str:
    return "".join(
        f'<option value="{e(v)}"{" selected" if v == selected else ""}>{e(label)}</option>'
        for v, label in values
    )


def page(
    title: str, body: str, session: Session | None, active: str = "", who: str = "", status: int = 200
) -> HTMLResponse:
    nav = ""
    if session is not None:
        current = ' aria-current="page"'
        links = "".join(
            f'<a href="/console/{key}"{current if key == active else ""}>{label}</a>' for key, label in NAV
        )
        nav = (
            f'<nav aria-label="Console">{links}</nav>'
            f'<form method="post" action="/console/logout" class="signout">{csrf_field(session)}'
            f'<span class="who">{e(who)}</span><button type="submit">Sign out</button></form>'
        )
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · Tidings console</title>"
        '<link rel="stylesheet" href="/console/static/console.css">'
        '<script src="/console/static/console.js" defer></script></head><body>'
        '<a class="skip" href="#main">Skip to content</a>'
        f'<header><a class="brand" href="/console/messages">Tidings</a>{nav}</header>'
        f'<main id="main" tabindex="-1"><h1>{e(title)}</h1>{body}</main></body></html>'
    )
    return HTMLResponse(text, status, headers=HEADERS)
