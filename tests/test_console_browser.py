"""The console in a real headless Chromium (Debian's `chromium`, driven by Playwright for Python through
its executable path): sign in; a message sent from the form appears in the open log by itself (SSE, the
page is not reloaded) and reaches Delivered; its page shows the timeline, the notifications and the
provider attempt (request and answer opened); a notification sent again reaches the receiver with the
same X-Tidings-Event-Id; another service's key never shows it. Every page is screenshotted under the
test's tmp_path (and, with TIDINGS_UPDATE_SCREENSHOTS=1, copied into docs/console/ for docs/console.md).

Skipped when chromium or Playwright is missing, unless TIDINGS_REQUIRE_SERVICES=1 (CI): then it fails.
"""

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KEY_A, KEY_B, assert_no_secrets
from tests.support.backends import unavailable
from tests.support.receiver import Receiver
from tests.support.server import BACKEND, TidingsServer
from tests.test_console import console_config

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "console"
WAIT_MS = 15_000


def chromium_path() -> str | None:
    configured = os.environ.get("TIDINGS_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    return next((p for p in CHROMIUM_PATHS if Path(p).exists()), shutil.which("chromium"))


@pytest.fixture(scope="module")
def browser(server: TidingsServer) -> Iterator[Any]:
    """Started after the server and stopped before it: Playwright's sync API keeps an event loop
    running meanwhile, and the server's teardown (PostgreSQL: dropping its schema) runs one of its own."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed (pip install 'playwright>=1.45,<2')")
    path = chromium_path()
    if path is None:
        unavailable("chromium is not installed (apt-get install chromium), nor named by TIDINGS_CHROMIUM")
    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's own sandbox cannot start.
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[TidingsServer]:
    s = TidingsServer(tmp_path_factory.mktemp("console-browser"), console_config(receiver)).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()
    assert_no_secrets(s)


class Shots:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.taken: list[Path] = []

    def take(self, page: Any, name: str, full: bool = True) -> None:
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=full)
        assert path.stat().st_size > 1000
        self.taken.append(path)

    def publish(self) -> None:
        """Into docs/console/, when asked (a test run must not change the checkout by itself)."""
        if os.environ.get("TIDINGS_UPDATE_SCREENSHOTS") != "1" or BACKEND != "sqlite":
            return
        DOCS.mkdir(exist_ok=True)
        for path in self.taken:
            shutil.copy(path, DOCS / path.name)


def sign_in(context: Any, server: TidingsServer, credential: str, shots: Shots | None = None) -> Any:
    page = context.new_page()
    page.goto(f"{server.url}/console/login")
    page.get_by_label("Service key or admin token").fill(credential)
    if shots is not None:
        shots.take(page, "sign-in")
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{server.url}/console/messages")
    return page


def test_the_console_in_chromium(
    browser: Any, server: TidingsServer, receiver: Receiver, tmp_path: Path
) -> None:
    shots = Shots(tmp_path)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    log = sign_in(context, server, KEY_A, shots)
    log.wait_for_selector("[data-live-state]:has-text('Live')")
    log.evaluate("window.__notReloaded = true")

    # Send from the form, in another tab of the same session.
    path = f"/browser/{time.monotonic_ns()}"
    body = {
        "deliverychannel": "sms",
        "channels": {"sms": {"text": "Hello from Chromium", "senderid": "CONNCT"}},
        "destination": [{"msisdn": ["447700900777"]}],
        "notifyurl": receiver.url(path),
        "correlationid": "browser-1",
    }
    form = context.new_page()
    form.goto(f"{server.url}/console/send")
    form.locator("select[data-channel]").select_option("sms")
    form.locator("textarea").fill(json.dumps(body, indent=2))
    shots.take(form, "send")
    form.get_by_role("button", name="Send", exact=True).click()
    form.wait_for_selector("text=Answer: HTTP 200")
    transid = form.locator(".result a").first.inner_text()
    shots.take(form, "send-answer")
    form.close()

    # The open log shows it by itself, then its Delivered badge.
    row = log.locator(f'tr[data-transid="{transid}"]')
    row.wait_for(timeout=WAIT_MS)
    row.locator(".badge:has-text('Delivered')").wait_for(timeout=WAIT_MS)
    assert log.evaluate("window.__notReloaded") is True
    assert "browser-1" in row.inner_text() and "447700900777" in row.inner_text()
    shots.take(log, "messages")

    # The message's page: timeline and notifications (once the receiver's answers are recorded).
    hits = receiver.wait_count(path, 2)
    delivered = next(h for h in hits if h.info["deliveryStatus"] == "Delivered")
    event_id = delivered.headers["x-tidings-event-id"]
    row.locator("a").click()
    log.wait_for_url(f"{server.url}/console/messages/{transid}")
    deadline = time.monotonic() + 10
    while log.locator("button:has-text('Send again')").count() < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        log.reload()
    timeline = log.locator("[data-timeline]").inner_text()
    assert [s for s in ("Queued", "Submitted", "Delivered") if s in timeline] == [
        "Queued",
        "Submitted",
        "Delivered",
    ]
    assert "7500" in timeline
    notes = log.locator("table.notes").inner_text()
    assert event_id in notes and "200" in notes
    assert log.locator(".preview.sms").inner_text().count("Part 1") == 1
    # The provider attempt (the sandbox's): its request and answer open from their summaries.
    tried = log.locator('[data-attempt="1"]')
    assert "sandbox (sandbox)" in tried.inner_text() and "accepted" in tried.inner_text()
    tried.locator("summary", has_text="Request sent").click()
    tried.locator("summary", has_text="Provider's answer").click()
    assert "sandbox: sms to +447700900777" in tried.locator("pre.wire").first.inner_text()
    assert "Delivered 7500" in tried.locator("pre.wire").nth(1).inner_text()
    shots.take(log, "message")

    # Send the Delivered notification again: the receiver gets the same event id.
    log.locator(f'tr[data-event="{event_id}"] button').click()
    log.wait_for_selector("text=is due again")
    again = receiver.wait_count(path, 3)
    assert again[2].headers["x-tidings-event-id"] == event_id
    assert again[2].body == delivered.body
    shots.take(log, "message-resent")

    log.goto(f"{server.url}/console/stats")
    assert log.locator("svg[role='img']").count() >= 1  # the per-channel chart
    shots.take(log, "stats")
    log.goto(f"{server.url}/console/health")
    assert "Connectors" in log.locator("main").inner_text()
    assert "this process (as of now)" in log.locator("tbody[data-role='serve'] th").inner_text()
    shots.take(log, "health")

    # Phone-sized: the log still works and fits.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    small = sign_in(phone, server, KEY_A)
    small.locator(f'tr[data-transid="{transid}"]').wait_for(timeout=WAIT_MS)
    shots.take(small, "messages-phone", full=False)
    phone.close()

    # Another service's key never shows the message.
    other_context = browser.new_context()
    other = sign_in(other_context, server, KEY_B)
    other.wait_for_selector("[data-live-state]:has-text('Live')")
    assert transid not in other.content()
    response = other.goto(f"{server.url}/console/messages/{transid}")
    assert response is not None and response.status == 404
    other.goto(f"{server.url}/console/messages?correlationid=browser-1")
    assert transid not in other.content()
    shots.take(other, "other-service")
    other_context.close()
    context.close()
    shots.publish()
