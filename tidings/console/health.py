"""The health page's connector rows: what each connector says about itself, as HTML.

A connector with `describe()` (tidings.observe.connectors) gets its state, last success, last error,
credentials and rate limit; one with only `health()` / `bind_states()` gets those in the state cell; one
with neither shows "started".
"""

from tidings.console.html import e, time_tag
from tidings.observe.connectors import ConnectorReport, Credential, report_of

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


def connector_row(name: str, connector: object, channels: str, now: float) -> str:
    kind = getattr(connector, "name", type(connector).__name__)
    first = f"<td>{e(name)}</td><td>{e(kind)}</td><td>{e(channels)}</td>"
    report = report_of(connector)
    if report is None:
        return f"<tr>{first}<td>{e(connector_state(connector))}</td>{'<td></td>' * 4}</tr>"
    return (
        f"<tr data-connector='{e(name)}' data-state='{e(report.state)}'>{first}<td>{_state(report)}</td>"
        f"<td>{_at(report.last_success, now) or 'none yet'}</td><td>{_error(report, now)}</td>"
        f"<td>{_credentials(report.credentials, now)}</td><td>{_rate(report, now)}</td></tr>"
    )


def not_run_row(where: str) -> str:
    rest = len(COLUMNS) - 3
    return f"<tr><td colspan='3'>{e(where)}</td><td colspan='{rest}'>not run by this process</td></tr>"


def connector_state(c: object) -> str:
    """What a connector without `describe()` says about itself: `health()` (up, requests in flight of
    its window, as /metrics reads it) and `bind_states()` when it has them."""
    parts: list[str] = []
    health = getattr(c, "health", None)
    if callable(health):
        h = health()
        parts.append(f"{'up' if getattr(h, 'up', False) else 'DOWN'}, in flight {getattr(h, 'in_flight', 0)}"
                     f" of {getattr(h, 'window', 0)}")  # fmt: skip
    binds = getattr(c, "bind_states", None)
    if callable(binds):
        parts += [f"{name}: {state}" for name, state in binds().items()]
    return "; ".join(parts) or "started (reports no state of its own)"


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
    span = abs(seconds)
    if span < 90:
        words = f"{span:.0f} s"
    elif span < 5400:
        words = f"{span / 60:.0f} min"
    elif span < 172800:
        words = f"{span / 3600:.1f} h"
    else:
        words = f"{span / 86400:.0f} days"
    return f"{time_tag(ts)} ({'in ' + words if seconds > 0 else words + ' ago'})"
