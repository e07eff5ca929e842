"""The four push providers' stand-ins (tests/standins) served by one background thread with its own
event loop, so that sync tests and benchmarks can aim a real `tidings serve` process at them.

    with PushStandIns(workdir) as providers:          # or .start() / .stop() from a fixture
        toml = providers.app_toml("app-x", "alpha", client_secret_b64)
        ...
        providers.wait_for(lambda: len(providers.fcm.sent()) >= 1)

Every file the server needs (service-account key, .p8 key, VAPID key, CA bundles) is written into
`workdir`, and `app_toml` names them relative to it: put the server's config file there too. The
stand-ins' state lives on their loop; read it through `call` (or `wait_for`) so a read never races
a request half-way through being recorded.
"""

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from tests.standins.apns import ApnsStandIn
from tests.standins.fcm import Answer, FcmStandIn
from tests.standins.webpush import WebPushService, write_vapid_key
from tests.standins.wns import WnsStandIn
from tests.support.loop_thread import LoopThread

T = TypeVar("T")

VAPID_SUBJECT = "mailto:ops@example.com"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class FirstAnswers(dict[str, Answer]):
    """FCM's scripted answers (token -> answer), where some hold for a token's first few sends only,
    and when FCM answered each token: the stand-in reads this once per send that passed its checks."""

    def __init__(self, base: dict[str, Answer]) -> None:
        super().__init__(base)
        self.left: dict[str, int] = {}
        self.asked: dict[str, list[float]] = {}  # token -> monotonic time of each answer

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.setdefault(key, []).append(time.monotonic())
        answer = super().get(key, default)
        if key in self.left:
            self.left[key] -= 1
            if self.left[key] <= 0:
                del self.left[key], self[key]
        return answer


class PushStandIns:
    """FCM (plain HTTP, as its stand-in serves), APNs (HTTP/2 + TLS), a web push service that also
    plays the browsers, and WNS (TLS), on 127.0.0.1 ephemeral ports."""

    def __init__(self, workdir: Path, *, record: bool = True) -> None:
        self.workdir = workdir
        self.record = record  # False for a benchmark: the FCM stand-in then keeps no request
        self._loop = LoopThread("push-standins")
        self._started = False
        self.vapid_public_key = ""
        self._auth_secrets: list[str] = []  # the browsers' (a subscription's keys.auth)

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> "PushStandIns":
        self._loop.start()
        self._started = True
        try:
            self.run(self._start(), START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            self.run(self._stop(), STOP_TIMEOUT_S)
        finally:
            self._loop.stop()

    def __enter__(self) -> "PushStandIns":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _start(self) -> None:
        # Made on the loop that serves them: their events and tasks belong to it.
        self.fcm = FcmStandIn(record=self.record)
        self.fcm_answers = FirstAnswers(self.fcm.answers)
        self.fcm.answers = self.fcm_answers
        self.apns = ApnsStandIn()
        self.webpush = WebPushService(self.workdir)
        self.wns = WnsStandIn(self.workdir)
        self.vapid_public_key = write_vapid_key(self.workdir / "vapid.pem")
        await asyncio.gather(self.fcm.start(), self.apns.start(), self.webpush.start(), self.wns.start())
        self.fcm.write_key_file(self.workdir / "fcm.json")  # its token_uri names the port just bound

    async def _stop(self) -> None:
        # Each stops on its own: one that fails to must not keep the others' ports open.
        results = await asyncio.gather(
            *(s.stop() for name in ("fcm", "apns", "webpush", "wns") if (s := getattr(self, name, None))),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    # -- reaching the loop -----------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the stand-ins' loop and wait for its result."""
        return self._loop.run(coro, timeout)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Call `fn` on the stand-ins' loop (between two requests) and return what it returns."""
        return self._loop.call(fn, timeout)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Until `predicate` (called on the loop) holds; AssertionError when `timeout` runs out."""
        deadline = time.monotonic() + timeout
        while not self.call(predicate):
            if time.monotonic() > deadline:
                raise AssertionError(f"the push stand-ins did not get there within {timeout:g}s")
            time.sleep(0.02)

    # -- what a test scripts and reads -----------------------------------------------------------------

    def script_fcm(self, token: str, answer: Answer, times: int | None = None) -> None:
        """FCM answers `token` with `answer`: for its next `times` sends, or always (None)."""

        def script() -> None:
            self.fcm_answers[token] = answer
            if times is None:
                self.fcm_answers.left.pop(token, None)
            else:
                self.fcm_answers.left[token] = times

        self.call(script)

    def fcm_answered_at(self, token: str) -> list[float]:
        """Monotonic times at which FCM answered a send to `token` (its checks passed)."""
        return self.call(lambda: list(self.fcm_answers.asked.get(token, [])))

    def fcm_sent(self, token: str) -> list[dict[str, Any]]:
        """The `message` of every send FCM received for `token`."""
        return self.call(
            lambda: [r.body["message"] for r in self.fcm.sent() if r.body["message"].get("token") == token]
        )

    def subscribe(self, sub_id: str) -> dict[str, Any]:
        """A browser's new subscription with the web push service, as PushSubscription.toJSON() gives it."""
        subscription = self.call(lambda: self.webpush.new_subscription(sub_id)[0])
        self._auth_secrets.append(subscription["keys"]["auth"])
        return subscription

    def secrets(self) -> list[str]:
        """What a server aimed at these stand-ins must never print: every private key (each line of its
        PEM body), the WNS client secret, every access and provider token issued or sent, and the VAPID
        JWTs and browsers' auth secrets."""

        def collect() -> list[str]:
            found = [self.wns.CLIENT_SECRET, *self.wns.issued, *self.fcm.issued, *self.apns.provider_tokens]
            for pem in (self.fcm.private_key_pem(), self.apns.key_pem().decode(), self._vapid_pem()):
                # Every full line of the key's body (a short last line could turn up by chance).
                found += [
                    line for line in pem.splitlines() if len(line) >= 16 and not line.startswith("-----")
                ]
            for pushed in self.webpush.received:
                params = pushed.headers["authorization"].partition(" ")[2].split(",")
                found += [p.strip()[2:] for p in params if p.strip().startswith("t=")]
            return found + self._auth_secrets

        return self.call(collect)

    def _vapid_pem(self) -> str:
        return (self.workdir / "vapid.pem").read_text()

    def app_toml(self, app_id: str, service: str, client_secret: str = "") -> str:
        """An `[[apps]]` entry with a provider block for each stand-in."""
        apns = self.call(lambda: self.apns.write_credentials(self.workdir))
        s = json.dumps
        secret = f"client_secret = {s(client_secret)}\n" if client_secret else ""
        return f"""
[[apps]]
id = {s(app_id)}
service = {s(service)}
{secret}
[apps.fcm]
project_id = {s(self.fcm.project_id)}
service_account_file = "fcm.json"
base_url = {s(self.fcm.base_url)}

[apps.apns]
team_id = {s(apns.team_id)}
key_id = {s(apns.key_id)}
key_file = {s(apns.key_file)}
topic = {s(apns.topic)}
base_url = {s(apns.base_url)}
ca_file = {s(apns.ca_file)}

[apps.webpush]
vapid_private_key_file = "vapid.pem"
subject = {s(VAPID_SUBJECT)}
allow_hosts = ["127.0.0.1"]
ca_file = {s(self.webpush.ca_file.name)}

[apps.wns]
client_id = {s(self.wns.CLIENT_ID)}
client_secret = {s(self.wns.CLIENT_SECRET)}
token_url = {s(self.wns.token_url)}
allow_hosts = ["127.0.0.1"]
ca_file = {s(self.wns.ca_file.name)}
"""
