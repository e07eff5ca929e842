"""A message's provider attempts as the console's message page shows them, read back by a test."""

import html
import re
from dataclasses import dataclass

from tests.support.console import sign_in

_ITEM = re.compile(r'<li data-attempt="(\d+)" data-outcome="([^"]+)">(.*?)</li>', re.DOTALL)
_FACT = re.compile(r"<dt>([^<]+)</dt><dd>(.*?)</dd>", re.DOTALL)
_WIRE = re.compile(r'<summary>([^<]+)</summary><pre class="wire">(.*?)</pre>', re.DOTALL)


@dataclass(frozen=True)
class ShownAttempt:
    outcome: str
    connector: str  # "label (kind)"
    code: str
    detail: str
    request: str  # as the page shows it, unescaped
    answer: str


def _words(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def shown_attempts(page: str) -> list[ShownAttempt]:
    found = []
    for _, outcome, body in _ITEM.findall(page):
        facts = {name: value for name, value in _FACT.findall(body)}
        wire = {title: html.unescape(text) for title, text in _WIRE.findall(body)}
        code = re.search(r'<span class="code">([^<]*)</span>', facts.get("Outcome", ""))
        found.append(
            ShownAttempt(
                outcome,
                _words(facts.get("Connector", "")),
                html.unescape(code.group(1)) if code else "",
                _words(facts.get("Detail", "")),
                wire.get("Request sent", ""),
                wire.get("Provider&#x27;s answer", wire.get("Provider's answer", "")),
            )
        )
    return found


def message_page(url: str, key: str, transid: str) -> tuple[str, list[ShownAttempt]]:
    """The console's page of a message (signed in with the service's key) and its provider attempts."""
    with sign_in(url, key) as client:
        answer = client.get(f"/console/messages/{transid}")
        assert answer.status_code == 200, answer.text
    return answer.text, shown_attempts(answer.text)
