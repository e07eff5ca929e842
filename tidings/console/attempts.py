"""The message page's "Provider attempts": each try at handing the message to its provider (the store's
`attempts_of`), with what went out and what came back, each behind a <details> so the page stays short.

The texts were redacted and cut by the connector that sent them (tidings/channels/exchange.py); here they
are only escaped.
"""

from collections.abc import Sequence

from tidings.console.html import e, section, time_tag
from tidings.store.base import ProviderAttempt

# Badge colours of an attempt's outcome (console.css's status badges).
_BADGE = {"accepted": "submitted", "retry": "queued", "failed": "failed", "rerouted": "other"}


def attempts_section(attempts: Sequence[ProviderAttempt]) -> str:
    if not attempts:
        body = "<p>No provider attempts yet: the message has not been handed to a connector.</p>"
    else:
        items = "".join(_attempt(n, a) for n, a in enumerate(attempts, start=1))
        body = f'<ol class="attempts" data-attempts>{items}</ol>'
    return section("attempts", "Provider attempts", body)


def _attempt(n: int, a: ProviderAttempt) -> str:
    code = f' <span class="code">{e(a.code)}</span>' if a.code else ""
    outcome = f'<span class="badge {_BADGE.get(a.outcome, "other")}">{e(a.outcome)}</span>{code}'
    facts = (
        f'<dl class="facts"><dt>Time</dt><dd>{time_tag(a.at)}</dd>'
        f"<dt>Connector</dt><dd>{e(a.connector)} ({e(a.kind)})</dd>"
        f"<dt>Outcome</dt><dd>{outcome}</dd><dt>Attempt</dt><dd>{a.attempt}</dd>"
        + (f"<dt>Detail</dt><dd>{e(a.detail)}</dd>" if a.detail else "")
        + "</dl>"
    )
    if a.request or a.answer:
        wire = _details("Request sent", a.request) + _details("Provider's answer", a.answer)
    else:
        wire = '<p class="hint">Nothing reached the provider.</p>'
    return (
        f'<li data-attempt="{n}" data-outcome="{e(a.outcome)}"><h3 id="attempt-{n}">Try {n}</h3>'
        f"{facts}{wire}</li>"
    )


def _details(title: str, text: str) -> str:
    shown = text or "(nothing)"
    return f'<details><summary>{e(title)}</summary><pre class="wire">{e(shown)}</pre></details>'
