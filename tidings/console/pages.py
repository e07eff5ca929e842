"""The console's pages: sign-in, the message log, a message, sending a test, stats and health.

Every page needs a session (`session.read`), else it redirects to the sign-in page; every POST checks
the session's CSRF token. A service's session sees that service's data only (each store call names the
service); the admin's sees every service, with a service filter.
"""

import json
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tidings.api.listing import encode_cursor, logged, parse_query, sender_of
from tidings.console import health as health_rows
from tidings.console import session as sessions
from tidings.console.attempts import attempts_section
from tidings.console.html import HEADERS, badge, csrf_field, e, options, page, section, time_tag, when
from tidings.console.inprocess import call_api
from tidings.console.previews import json_view, preview
from tidings.console.session import Session
from tidings.console.stats import chart
from tidings.errors import ApiError
from tidings.observe.cluster import channels_run, cluster
from tidings.runtime import Runtime
from tidings.services import Service
from tidings.specs import SPECS
from tidings.statuses import QUEUED_CODE, Status
from tidings.store.listing import MessageQuery, MessageSummary

STATS_WINDOW_S = 3600


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def current(request: Request) -> Session | None:
    runtime = runtime_of(request)
    return sessions.read(request, runtime.services, runtime.config.server.admin_token)


def to_login() -> Response:
    return RedirectResponse("/console/login", 303, headers=HEADERS)


def who(request: Request, s: Session) -> str:
    if s.admin:
        return "admin (every service)"
    service = runtime_of(request).services.by_id(s.subject)
    return f"service {service.name or service.id}" if service else s.subject


MAX_FORM_BYTES = 256 * 1024


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form (what the console's forms send), at most MAX_FORM_BYTES; a larger one or
    another encoding reads as empty, so its CSRF check fails. Parsed here: python-multipart, which
    Starlette's own form parser needs, is not a dependency of Tidings."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return {}
        chunks.append(chunk)
    text = b"".join(chunks).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


async def checked_form(request: Request, s: Session) -> dict[str, str] | None:
    form = await read_form(request)
    return form if sessions.csrf_ok(s.csrf, form.get("csrf")) else None


def refused() -> Response:
    body = "<p>The form was not sent from this console session (its CSRF token is missing or wrong).</p>"
    return page("Refused", body, None, status=403)


def service_picker(request: Request, s: Session, action: str) -> str:
    """The admin's service filter on a page (nothing for a service's session)."""
    if not s.admin:
        return ""
    services = [("", "every service")] + [
        (sv.id, sv.name or sv.id) for sv in runtime_of(request).services.all()
    ]
    chosen = options(services, request.query_params.get("service", ""))
    return (
        f'<form method="get" action="{action}" class="filters" role="search">'
        f'<label>Service<select name="service">{chosen}</select></label>'
        '<div class="actions"><button type="submit">Show</button></div></form>'
    )


def owner_filter(request: Request, s: Session) -> str | None:
    """The service whose data a page shows: the session's own; for the admin, the `service` parameter
    (None: every service)."""
    if not s.admin:
        return s.subject
    chosen = request.query_params.get("service", "").strip()
    return chosen or None


# -- sign-in -----------------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    return RedirectResponse(
        "/console/messages" if current(request) else "/console/login", 303, headers=HEADERS
    )


def _login_page(request: Request, error: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    alert = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    body = (
        f'{alert}<form method="post" action="/console/login" class="card narrow">'
        f'<input type="hidden" name="csrf" value="{e(token)}">'
        '<label for="key">Service key or admin token</label>'
        '<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>'
        '<button type="submit">Sign in</button></form>'
        "<p class='hint'>A service key shows that service's messages; the admin token ([server] admin_token) "
        "shows every service's.</p>"
    )
    response = page("Sign in", body, None, status=status)
    sessions.set_cookie(response, request, sessions.PRE_COOKIE, token, 900)
    return response


async def login(request: Request) -> Response:
    if request.method == "GET":
        return _login_page(request)
    form = await read_form(request)
    if not sessions.csrf_ok(request.cookies.get(sessions.PRE_COOKIE, ""), form.get("csrf")):
        return _login_page(request, "The sign-in form expired; please sign in again.", 403)
    credential = str(form.get("key") or "").strip()
    runtime = runtime_of(request)
    found = sessions.sign_in(credential, runtime.services, runtime.config.server.admin_token)
    if found is None:
        return _login_page(request, "That is not an active service key nor the admin token.", 401)
    value, _ = sessions.issue(found[0], credential)
    response = RedirectResponse("/console/messages", 303, headers=HEADERS)
    sessions.set_cookie(response, request, sessions.COOKIE, value, sessions.MAX_AGE_S)
    response.delete_cookie(sessions.PRE_COOKIE, path=sessions.PATH)
    return response


async def logout(request: Request) -> Response:
    s = current(request)
    if s is None:
        return to_login()
    if await checked_form(request, s) is None:
        return refused()
    response = to_login()
    response.delete_cookie(sessions.COOKIE, path=sessions.PATH)
    return response


# -- the message log ---------------------------------------------------------------------------------

COLUMNS = ("Time", "Channel", "Destination", "Sender", "Status", "Code", "Correlation id")


def row_html(m: MessageSummary, admin: bool) -> str:
    link = f"/console/messages/{e(m.transid)}"
    service = f"<td>{e(m.service_id)}</td>" if admin else ""
    return (
        f'<tr data-transid="{e(m.transid)}" data-updated="{m.updated_at}">'
        f'<td><a href="{link}">{time_tag(m.created_at)}</a></td>{service}'
        f"<td>{e(m.channel)}</td><td>{e(m.address)}</td><td>{e(sender_of(m.content))}</td>"
        f"<td>{badge(m.status)}</td><td>{e(m.code)}</td><td>{e(m.correlationid or '')}</td></tr>"
    )


def _filters_form(request: Request, s: Session) -> str:
    q = request.query_params
    status_words = [("", "any")] + [(st.word, st.word) for st in Status if st is not Status.CLICKED]
    channels = [("", "any")] + [(spec.name, spec.name) for spec in SPECS]
    service = ""
    if s.admin:
        services = [("", "every service")] + [
            (sv.id, sv.name or sv.id) for sv in runtime_of(request).services.all()
        ]
        service = (
            f'<label>Service<select name="service">{options(services, q.get("service", ""))}</select></label>'
        )
    fields = [
        f'<label>Channel<select name="channel">{options(channels, q.get("channel", ""))}</select></label>',
        f'<label>Status<select name="status">{options(status_words, q.get("status", ""))}</select></label>',
    ]
    for name, label, kind in (
        ("destination", "Destination", "text"),
        ("correlationid", "Correlation id", "text"),
        ("q", "Text in content", "search"),
        ("from", "From (UTC)", "datetime-local"),
        ("to", "To (UTC)", "datetime-local"),
    ):
        fields.append(
            f'<label>{label}<input type="{kind}" name="{name}" value="{e(q.get(name, ""))}"></label>'
        )
    return (
        '<form method="get" action="/console/messages" class="filters" role="search">'
        f'{service}{"".join(fields)}<div class="actions"><button type="submit">Filter</button> '
        '<a href="/console/messages">Clear</a></div></form>'
    )


async def messages(request: Request) -> Response:
    s = current(request)
    if s is None:
        return to_login()
    try:
        query = parse_query(request.query_params, owner_filter(request, s))
    except ApiError as exc:
        return page(
            "Messages",
            f'<p class="error" role="alert">{e(exc.description)}</p>',
            s,
            "messages",
            who(request, s),
            400,
        )
    rows = await runtime_of(request).store.list_messages(query)
    head = "".join(f'<th scope="col">{c}</th>' for c in COLUMNS)
    if s.admin:
        head = head.replace(
            '<th scope="col">Channel', '<th scope="col">Service</th><th scope="col">Channel', 1
        )
    body_rows = "".join(row_html(m, s.admin) for m in rows)
    more = ""
    if len(rows) == query.limit:
        params = {k: v for k, v in request.query_params.items() if k != "cursor"}
        params["cursor"] = encode_cursor(rows[-1].cursor)
        more = f'<p><a class="button" href="/console/messages?{e(urlencode(params))}">Older messages</a></p>'
    live = "" if query.before else " data-live"
    empty = '<p class="empty" data-empty>No messages match.</p>' if not rows else ""
    body = (
        f"{_filters_form(request, s)}"
        '<p class="live-state" aria-live="polite" data-live-state>'
        f"{'Live' if live else 'Older page (not live)'}</p>"
        f'<div class="table-wrap"><table class="log"{live} data-admin="{int(s.admin)}">'
        f"<caption class='visually-hidden'>Messages, newest first</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body_rows}</tbody></table></div>{empty}{more}"
    )
    return page("Messages", body, s, "messages", who(request, s))


# -- one message ------------------------------------------------------------------------------------

_SECRET_KEY = re.compile(r"(?i)(secret|password|passwd|authorization|api[_-]?key|private)")
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@")


def redact(value: Any) -> Any:
    """What the console shows of a request: values under secret-like keys and the user:password of URLs
    are replaced."""
    if isinstance(value, Mapping):
        return {k: "(hidden)" if _SECRET_KEY.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_CREDENTIALS.sub(r"\1(hidden)@", value)
    return value


async def message(request: Request) -> Response:
    s = current(request)
    if s is None:
        return to_login()
    runtime = runtime_of(request)
    transid = request.path_params["transid"]
    service_id = s.subject
    if s.admin:
        found = await runtime.store.list_messages(MessageQuery(None, transids=[transid], limit=1))
        service_id = found[0].service_id if found else ""
    record = await runtime.store.get_message(service_id, transid) if service_id else None
    if record is None:
        return page(
            "Not found",
            f"<p>No message {e(transid)} for this session.</p>",
            s,
            "messages",
            who(request, s),
            404,
        )
    notes = await runtime.store.notifications_of(service_id, transid)
    tries = await runtime.store.attempts_of(service_id, transid)
    accepted = redact(
        {
            "transid": record.transid,
            "service": record.service_id,
            "channel": record.channel,
            "destination": record.address,
            "destinationType": record.address_type,
            "correlationid": record.correlationid,
            "callbackData": record.callback_data,
            "notifyurl": record.notify_url,
            "priority": record.priority,
            "expiry": when(record.expiry) if record.expiry else None,
            "parts": record.parts,
            "requestedReceipts": record.receipts,
            "acceptedAt": when(record.created_at),
        }
    )
    timeline = [(Status.QUEUED.word, QUEUED_CODE, Status.QUEUED.word, record.created_at)] + [
        (h.status, h.code, h.description, h.at) for h in record.history
    ]
    steps = "".join(
        f"<li>{badge(st)} <span class='code'>{e(code)}</span> {e(desc)} {time_tag(at)}</li>"
        for st, code, desc, at in timeline
    )
    note_rows = "".join(_note_row(n, transid, s) for n in notes) or (
        '<tr><td colspan="7">No notifications (the message has no notify URL, or none is due yet).</td></tr>'
    )
    flash = request.query_params.get("flash", "")
    alert = f'<p class="notice" role="status">{e(flash)}</p>' if flash else ""
    summary = (
        f'<dl class="facts"><dt>Status</dt><dd data-status>{badge(record.status)} {e(record.code)} '
        f"{e(record.description)}</dd><dt>Channel</dt><dd>{e(record.channel)}</dd>"
        f"<dt>Destination</dt><dd>{e(record.address)}</dd><dt>Sender</dt><dd>{e(sender_of(record.content))}</dd>"
        f"<dt>Attempts</dt><dd>{record.attempts}</dd><dt>Clicks</dt><dd>{record.clicks}</dd></dl>"
    )
    body = (
        f"{alert}{summary}"
        f'<section aria-labelledby="h-timeline"><h2 id="h-timeline">Status timeline</h2>'
        f'<ol class="timeline" data-timeline>{steps}</ol></section>'
        f'<section aria-labelledby="h-preview"><h2 id="h-preview">Preview</h2>'
        f"{preview(record.channel, record.content, record.address)}</section>"
        f'<section aria-labelledby="h-notes"><h2 id="h-notes">Notifications</h2><div class="table-wrap">'
        '<table class="notes"><thead><tr><th scope="col">Event id</th><th scope="col">URL</th>'
        '<th scope="col">State</th><th scope="col">HTTP status</th><th scope="col">Tries</th>'
        '<th scope="col">Next try</th><th scope="col">Send again</th></tr></thead>'
        f"<tbody>{note_rows}</tbody></table></div></section>"
        f"{attempts_section(tries)}"
        f"{section('request', 'The request as accepted', json_view(accepted))}"
        f"{section('content', 'Content as stored', json_view(record.content))}"
    )
    return page(f"Message {transid}", body, s, "messages", who(request, s))


def _note_row(n: Any, transid: str, s: Session) -> str:
    resend = ""
    if n.state in ("sent", "failed"):
        resend = (
            f'<form method="post" action="/console/messages/{e(transid)}/resend">{csrf_field(s)}'
            f'<input type="hidden" name="event_id" value="{e(n.event_id)}">'
            f'<button type="submit" aria-label="Send notification {e(n.event_id)} again">'
            "Send again</button></form>"
        )
    error = f"<br><small>{e(n.last_error)}</small>" if n.last_error else ""
    return (
        f'<tr data-event="{e(n.event_id)}"><td><code>{e(n.event_id)}</code></td><td>{e(redact(n.url))}</td>'
        f"<td>{e(n.state)}{error}</td><td>{e(n.http_status or '')}</td><td>{n.attempts}</td>"
        f"<td>{time_tag(n.next_at)}</td><td>{resend}</td></tr>"
    )


async def resend(request: Request) -> Response:
    s = current(request)
    if s is None:
        return to_login()
    form = await checked_form(request, s)
    if form is None:
        return refused()
    runtime = runtime_of(request)
    transid = request.path_params["transid"]
    event_id = str(form.get("event_id") or "")
    service_id = s.subject
    if s.admin:
        found = await runtime.store.list_messages(MessageQuery(None, transids=[transid], limit=1))
        service_id = found[0].service_id if found else ""
    notes = await runtime.store.notifications_of(service_id, transid) if service_id else []
    ok = any(n.event_id == event_id for n in notes) and await runtime.store.resend_notification(
        service_id, event_id, time.time()
    )
    if ok:
        runtime.wake_notifier()
        flash = f"Notification {event_id} is due again (same event id)."
    else:
        flash = "Not sent again: only a sent or failed notification, once the message's others are done."
    target = f"/console/messages/{transid}?{urlencode({'flash': flash})}"
    return RedirectResponse(target, 303, headers=HEADERS)


# -- send a test -------------------------------------------------------------------------------------


def _examples(service: Service | None) -> dict[str, tuple[str, dict[str, Any]]]:
    """(API path, body) per channel: every registered channel has one, so a new channel can be tried
    here as soon as it is in the registry (edit the body to what the channel needs)."""
    sender = service.senderids[0] if service and service.senderids else "CONNCT"
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for spec in SPECS:
        if spec.name == "sms":
            found["sms"] = (
                "/resources/v1/messaging",
                {
                    "deliverychannel": "sms",
                    "channels": {"sms": {"text": "Hello from the Tidings console", "senderid": sender}},
                    "destination": [{"msisdn": ["447700900123"]}],
                },
            )
        elif spec.name == "email":
            email_from = next(
                (a for a in (service.email_from if service else ()) if "@" in a[1:]), "test@example.com"
            )
            found["email"] = (
                "/v2/messages",
                {
                    "channel": "email",
                    "from": email_from,
                    "to": [{"email": ["ann@example.net"]}],
                    "content": {
                        "type": "html",
                        "subject": "Hello",
                        "html": "<p>Hello from the <b>console</b></p>",
                    },
                },
            )
        elif spec.request is not None:
            channel_object: dict[str, Any] = {}
            for part in reversed(spec.request.path):
                channel_object = {part: channel_object}
            body: dict[str, Any] = {
                "deliverychannel": spec.name,
                "channels": channel_object,
                "destination": [{spec.request.address_keys[0]: ["..."]}],
            }
            if spec.needs_app:
                body = {"appid": "...", **body}
            found[spec.name] = ("/resources/v1/messaging", body)
        elif spec.v2 is not None:
            found[spec.name] = (
                "/v2/messages",
                {
                    "channel": spec.name,
                    "from": "...",
                    "to": [{spec.v2.address_keys[0]: ["..."]}],
                    "content": {},
                },
            )
    return found


def serving(runtime: Runtime, channel: str) -> str:
    """The connector that serves a channel in this deployment (by its config when this process does
    not dispatch)."""
    connector = runtime.routes.get(channel)
    if connector is not None:
        return connector.name
    spec = next((sp for sp in SPECS if sp.name == channel), None)
    return runtime.config.routes.get(channel) or (spec.connector if spec else "sandbox")


def _send_form(
    request: Request, s: Session, service: Service | None, values: Mapping[str, str], result: str
) -> Response:
    runtime = runtime_of(request)
    examples = _examples(service)
    channel = values.get("channel") or "sms"
    path, body = examples.get(channel, examples["sms"])
    text = values.get("body") or json.dumps(body, indent=2)
    data = json.dumps({k: {"path": p, "body": json.dumps(b, indent=2)} for k, (p, b) in examples.items()})
    routes = json.dumps({k: serving(runtime, k) for k in examples})
    svc = ""
    if s.admin:
        choices = [(sv.id, sv.name or sv.id) for sv in runtime.services.all()]
        chosen = options(choices, values.get("service", ""))
        svc = f'<label>Service<select name="service">{chosen}</select></label>'
    channels = options([(k, k) for k in examples], channel)
    connector = serving(runtime, channel)
    form = (
        '<form method="post" action="/console/send" class="card send" '
        f'data-examples="{e(data)}" data-routes="{e(routes)}">'
        f"{csrf_field(s)}{svc}"
        f'<label>Channel<select name="channel" data-channel>{channels}</select></label>'
        f'<p class="hint" data-route>Served by <strong>{e(connector)}</strong>.</p>'
        f'<input type="hidden" name="path" value="{e(path)}" data-path>'
        f'<label for="body">Request body (JSON, posted to <code data-path-text>{e(path)}</code>)</label>'
        f'<textarea id="body" name="body" rows="14" spellcheck="false">{e(text)}</textarea>'
        '<label class="check"><input type="checkbox" name="real" value="1"> '
        "Send through a real provider when the channel is routed to one "
        "(unticked, only the sandbox sends)</label>"
        '<button type="submit">Send</button></form>'
    )
    return page("Send a test message", result + form, s, "send", who(request, s))


async def send(request: Request) -> Response:
    s = current(request)
    if s is None:
        return to_login()
    runtime = runtime_of(request)
    if request.method == "GET":
        everyone = runtime.services.all()
        service = runtime.services.by_id(s.subject) if not s.admin else (everyone[0] if everyone else None)
        return _send_form(request, s, service, dict(request.query_params), "")
    form = await checked_form(request, s)
    if form is None:
        return refused()
    values = form
    service = runtime.services.by_id(values.get("service", "") if s.admin else s.subject)
    if service is None:
        return _send_form(request, s, None, values, '<p class="error" role="alert">Choose a service.</p>')
    channel = values.get("channel", "sms")
    path = values.get("path", "")
    if path not in ("/resources/v1/messaging", "/v2/messages"):
        path = _examples(service).get(channel, ("/resources/v1/messaging", {}))[0]
    if serving(runtime, channel) != "sandbox" and values.get("real") != "1":
        msg = (
            f"Not sent: {channel} is served by {serving(runtime, channel)}, a real provider. Tick the box to "
            "send through it."
        )
        return _send_form(request, s, service, values, f'<p class="error" role="alert">{e(msg)}</p>')
    status, answer = await call_api(
        request.app, "POST", path, {"key": service.key}, values.get("body", "").encode()
    )
    transids = _transids(answer)
    links = "".join(f'<li><a href="/console/messages/{e(t)}">{e(t)}</a></li>' for t in transids)
    try:
        shown = json.dumps(json.loads(answer), indent=2)
    except ValueError:
        shown = answer.decode("utf-8", "replace")
    result = (
        f'<section class="card result" role="status"><h2>Answer: HTTP {status}</h2>'
        f'<pre class="json">{e(shown)}</pre>{f"<ul>{links}</ul>" if links else ""}</section>'
    )
    return _send_form(request, s, service, values, result)


def _transids(answer: bytes) -> list[str]:
    try:
        data = json.loads(answer)
    except ValueError:
        return []
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                if k in ("transid", "messageId") and isinstance(x, str):
                    found.append(x)
                else:
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(data)
    return found[:50]


# -- stats and health --------------------------------------------------------------------------------


async def stats(request: Request) -> Response:
    s = current(request)
    if s is None:
        return to_login()
    runtime = runtime_of(request)
    now = time.time()
    data = await runtime.store.message_stats(owner_filter(request, s), now - STATS_WINDOW_S)
    backlog = (
        "".join(
            f"<tr><td>{e(host)}</td><td>{n}</td></tr>"
            for host, n in sorted(data.backlog.items(), key=lambda x: -x[1])
        )
        or '<tr><td colspan="2">Nothing waiting.</td></tr>'
    )
    body = (
        f"{service_picker(request, s, '/console/stats')}"
        f'<p class="facts-line">Queue depth: <strong data-queue>{data.queue_depth}</strong> '
        "messages still to send or to finish.</p>"
        f"{chart(data.minutes, now, STATS_WINDOW_S)}"
        '<section aria-labelledby="h-backlog"><h2 id="h-backlog">Notification backlog per receiver</h2>'
        '<table><thead><tr><th scope="col">Receiver</th><th scope="col">Waiting</th></tr></thead>'
        f"<tbody>{backlog}</tbody></table></section>"
    )
    return page("Stats (last hour)", body, s, "stats", who(request, s))


async def health(request: Request) -> Response:
    s = current(request)
    if s is None:
        return to_login()
    runtime = runtime_of(request)
    now = time.time()
    # This process's connectors from memory (as they are now); every other process's as it published
    # them (serve --api-only runs none of its own; workers and siblings run them).
    views, unread = await cluster(runtime.store, runtime.process, runtime.connector_entries())
    groups = [health_rows.process_rows(v, now) for v in views]
    run = channels_run(views)
    missing = [
        health_rows.not_run_row(f"{spec.name} → {serving(runtime, spec.name)}")
        for spec in SPECS
        if spec.name not in run
    ]
    if missing:
        groups.append(f"<tbody data-process=''>{''.join(missing)}</tbody>")
    answered = (
        f'<p class="facts-line">Answered by {e(runtime.process.host)}:{runtime.process.pid} '
        f"({e(runtime.process.role)}). {e(health_rows.freshness())}</p>"
    )
    warning = f'<p class="notice" role="status">{e(unread.capitalize())}.</p>' if unread else ""
    gone = await runtime.store.list_gone(owner_filter(request, s))
    gone_rows = (
        "".join(
            f"<tr><td>{e(g.service_id)}</td><td>{e(g.channel)}</td><td>{e(g.address)}</td><td>{e(g.code)} "
            f"{e(g.description)}</td><td><form method='post' action='/console/health/forget'>{csrf_field(s)}"
            f"<input type='hidden' name='service' value='{e(g.service_id)}'>"
            f"<input type='hidden' name='channel' value='{e(g.channel)}'>"
            f"<input type='hidden' name='address' value='{e(g.address)}'>"
            f"<button type='submit' aria-label='Remove {e(g.address)}'>Remove</button></form></td></tr>"
            for g in gone[:500]
        )
        or '<tr><td colspan="5">No gone addresses.</td></tr>'
    )
    flash = request.query_params.get("flash", "")
    alert = f'<p class="notice" role="status">{e(flash)}</p>' if flash else ""
    body = (
        f"{alert}{service_picker(request, s, '/console/health')}"
        '<section aria-labelledby="h-conn"><h2 id="h-conn">Connectors</h2>'
        f"{answered}{warning}"
        '<div class="table-wrap"><table>'
        f"{health_rows.header()}{''.join(groups)}</table></div></section>"
        '<section aria-labelledby="h-gone"><h2 id="h-gone">Gone addresses (suppressed)</h2>'
        '<div class="table-wrap"><table><thead><tr><th scope="col">Service</th><th scope="col">Channel</th>'
        '<th scope="col">Address</th><th scope="col">Why</th><th scope="col">Remove</th></tr></thead>'
        f"<tbody>{gone_rows}</tbody></table></div></section>"
    )
    return page("Health", body, s, "health", who(request, s))


async def forget(request: Request) -> Response:
    s = current(request)
    if s is None:
        return to_login()
    form = await checked_form(request, s)
    if form is None:
        return refused()
    service_id = str(form.get("service") or "") if s.admin else s.subject
    address = str(form.get("address") or "")
    removed = await runtime_of(request).store.forget_gone(service_id, str(form.get("channel") or ""), address)
    flash = (
        f"{address} removed from the gone addresses." if removed else f"{address} was not remembered as gone."
    )
    return RedirectResponse(f"/console/health?{urlencode({'flash': flash})}", 303, headers=HEADERS)


def summary_json(m: MessageSummary) -> dict[str, Any]:
    """A row for the live log (the listing API's shape, plus the service)."""
    view = logged(m)
    return {
        "transid": view.transid,
        "service": m.service_id,
        "channel": view.channel,
        "destination": view.destination,
        "sender": view.sender,
        "status": view.status,
        "code": view.code,
        "correlationid": view.correlationid,
        "createdAt": view.createdAt,
        "time": when(m.created_at),
        "updated": m.updated_at,
    }
