"""The health page's connector rows: what each connector of each process says about itself, as HTML.

Rows come as `ConnectorEntry` (tidings.observe.cluster), the answering process's from memory and the
others' as they published them, grouped by process. An entry with a report (`describe()`) gets its
state, last success, last error, credentials and rate limit; one without gets what `health()` /
`bind_states()` said in the state cell, or "started".
"""

from tidings.console.html import e, time_tag
from tidings.observe.cluster import PUBLISH_S, STALE_AFTER_S, ConnectorEntry, ProcessView
from tidings.observe.connectors import ConnectorReport, Credential

COLUMNS = (
    "Connector",
    "Kind",
    "Channels",
    "State",
    "Last success",
    "Last error",
    "Credentials",
    "Rate limit",
)
_BADGE = {"up": "delivered", "down": "failed", "needs attention": "failed"}


def header() -> str:
    cells = "".join(f'<th scope="col">{e(c)}</th>' for c in COLUMNS)
    return f"<thead><tr>{cells}</tr></thead>"


def process_rows(view: ProcessView, now: float) -> str:
    """A process's connectors: a heading row naming it (host:pid, role, when it started, how fresh
    its rows are), then a row per connector."""
    p = view.process
    if view.own:
        fresh = "this process (as of now)"
    elif view.stale:
        fresh = (
            f"<strong>stale (process gone?)</strong>: last reported {_ago(view.age)} ago, "
            f"expected every {PUBLISH_S:g} s"
        )
    else:
        fresh = f"reported {_ago(view.age)} ago"
    heading = (
        f"<tr class='process'><th scope='rowgroup' colspan='{len(COLUMNS)}'>{e(view.label)} "
        f"({e(p.role)}), started {_at(p.started_at, now)}; {fresh}</th></tr>"
    )
    rows = "".join(connector_row(entry, now) for entry in view.connectors)
    stale = " data-stale='yes'" if view.stale else ""
    return f"<tbody data-process='{e(view.label)}' data-role='{e(p.role)}'{stale}>{heading}{rows}</tbody>"


def connector_row(entry: ConnectorEntry, now: float) -> str:
    channels = ", ".join(entry.channels) or "none"
    first = f"<td>{e(entry.name)}</td><td>{e(entry.kind)}</td><td>{e(channels)}</td>"
    report = entry.report
    if report is None:
        return f"<tr>{first}<td>{e(entry.state)}</td>{'<td></td>' * 4}</tr>"
    opening = f"<tr data-connector='{e(entry.name)}' data-state='{e(report.state)}'>"
    return (
        f"{opening}{first}<td>{_state(report)}</td>"
        f"<td>{_at(report.last_success, now) or 'none yet'}</td><td>{_error(report, now)}</td>"
        f"<td>{_credentials(report.credentials, now)}</td><td>{_rate(report, now)}</td></tr>"
    )


def not_run_row(where: str) -> str:
    rest = len(COLUMNS) - 3
    return f"<tr><td colspan='3'>{e(where)}</td><td colspan='{rest}'>not run by any process</td></tr>"


def freshness() -> str:
    """What the page says about where its rows come from."""
    return (
        f"Every process that runs connectors reports them every {PUBLISH_S:g} s; this process's rows are "
        f"as of now, the others' as last reported. A process not heard from for {STALE_AFTER_S:g} s is "
        "shown as stale: it may have stopped without saying so."
    )


def _state(r: ConnectorReport) -> str:
    state = r.state
    text = f'<span class="badge {_BADGE[state]}">{e("DOWN" if state == "down" else state)}</span>'
    lines = []
    if r.attention:
        lines.append(e(r.attention))
    if r.health is not None:
        lines.append(f"in flight {r.health.in_flight} of {r.health.window}")
    lines += [e(d) for d in r.detail]
    return text + "".join(f"<br>{line}" for line in lines)


def _error(r: ConnectorReport, now: float) -> str:
    f = r.last_error
    if f is None:
        return "none"
    code = f" code {e(f.code)}" if f.code else ""
    return f"{_at(f.at, now)}<br><strong>{e(f.kind)}</strong>{code}: <span class='said'>{e(f.text)}</span>"


def _credentials(credentials: tuple[Credential, ...], now: float) -> str:
    if not credentials:
        return "none"
    items = []
    for c in credentials:
        if c.expires_at is not None:
            expiry = f"expires {_at(c.expires_at, now)}"
        elif c.static:
            expiry = "does not expire"
        else:
            expiry = "none held yet"
        text = f"{e(c.name)}: {e(c.kind)}, {expiry}"
        if c.note:
            text += f" ({e(c.note)})"
        if c.refused:
            text += f"<br><strong>refused</strong>: {e(c.refused)}"
        items.append(f"<li>{text}</li>")
    return f"<ul style='list-style: none; margin: 0; padding: 0'>{''.join(items)}</ul>"


def _rate(r: ConnectorReport, now: float) -> str:
    rate = r.rate
    configured = e(rate.configured) if rate.configured else "no rate set"
    if rate.backing_off(now):
        said = f": {e(rate.why)}" if rate.why else ""
        return f"{configured}<br><strong>backing off</strong> until {_at(rate.backoff_until, now)}{said}"
    if rate.backoff_until is not None:
        return f"{configured}<br>not backing off (the last backoff ended {_at(rate.backoff_until, now)})"
    return f"{configured}<br>not backing off"


def _at(ts: float | None, now: float) -> str:
    """A time with how far it is from now."""
    if ts is None:
        return ""
    seconds = ts - now
    words = _ago(abs(seconds))
    return f"{time_tag(ts)} ({'in ' + words if seconds > 0 else words + ' ago'})"


def _ago(span: float | None) -> str:
    """A span of seconds in words."""
    span = span or 0.0
    if span < 90:
        return f"{span:.0f} s"
    if span < 5400:
        return f"{span / 60:.0f} min"
    if span < 172800:
        return f"{span / 3600:.1f} h"
    return f"{span / 86400:.0f} days"
