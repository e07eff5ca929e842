"""The console as a test reads it: a signed-in session, and the health page's connector rows."""

import contextlib
import html
import re
import time
from collections.abc import Iterator

import httpx


@contextlib.contextmanager
def sign_in(url: str, credential: str) -> Iterator[httpx.Client]:
    """A client signed in to the console at `url` with a service key or the admin token."""
    with httpx.Client(base_url=url, timeout=10) as client:
        form = client.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf, form.text
        answer = client.post("/console/login", data={"csrf": csrf.group(1), "key": credential})
        assert answer.status_code == 303, answer.text
        yield client


def connector_rows(page: str) -> dict[str, tuple[str, str]]:
    """The health page's connectors that describe themselves: name -> (state, the row as text). A name
    several processes report is the first one's: the answering process's, which the page lists first."""
    found: dict[str, tuple[str, str]] = {}
    for name, state, row in re.findall(r"<tr data-connector='([^']+)' data-state='([^']+)'>(.*?)</tr>", page):
        found.setdefault(name, (state, _text(row)))
    return found


def health(client: httpx.Client) -> tuple[str, dict[str, tuple[str, str]]]:
    """The health page (its HTML) and its connector rows."""
    answer = client.get("/console/health")
    assert answer.status_code == 200, answer.text
    return answer.text, connector_rows(answer.text)


def health_saying(
    client: httpx.Client, connector: str, words: str, deadline: float
) -> tuple[str, dict[str, tuple[str, str]]]:
    """The health page once `connector`'s row says `words` (or at `deadline`, for the caller's asserts
    to show the row): a provider's answer reaches its stand-in's log a moment before the connector."""
    page, rows = health(client)
    while words not in rows.get(connector, ("", ""))[1] and time.monotonic() < deadline:
        time.sleep(0.05)
        page, rows = health(client)
    return page, rows


def _text(fragment: str) -> str:
    """A row's words: tags become spaces (none before a colon, a comma or a closing bracket), entities
    are decoded, runs of space are one."""
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())
    return re.sub(r" ([:,)])", r"\1", words)
