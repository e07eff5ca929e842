"""Web Push's cases for the connector runner: the push connector sends to a registered subscription (a
deviceId) through the app's `[apps.webpush]` block, to the web push service stand-in of
tests/standins/webpush.py (TLS, HTTP/1.1), which checks the VAPID JWT and the RFC 8030 headers and
decrypts the record as the browser would.

The golden form of a request is what the service got: the HTTP version, the path (which subscription),
every header (run-time values by name: `<host>`, `<vapid jwt 1>`, `<vapid key>`), the JWT's audience,
subject and lifetime, and the notification the browser decrypted (None when the service did not take
the record far enough to decrypt it). `request(...)` writes the one a default case sends.
"""

import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from tests.connectors.push_provider import DEVICE_ID, TRANSID, device, key_lines, push, push_provider
from tests.connectors.runner import Accepted, Failure, OutboundCase, named
from tests.standins.webpush import Incoming, WebPushService, write_vapid_key
from tidings.channels.base import FailureKind, Outbound
from tidings.channels.push.settings import WebPushSettings
from tidings.channels.push.webpush import MAX_PLAINTEXT
from tidings.schema.push import PushContent, WebExtras, WebPushMessage
from tidings.specs.push_codes import (
    AUTH_ERROR,
    INVALID_PAYLOAD,
    INVALID_TOKEN,
    PAYLOAD_TOO_LARGE,
    PLATFORM_FAILURE,
    QUOTA_EXCEEDED,
    SERVICE_UNAVAILABLE,
    TOKEN_UNREGISTERED,
)
from tidings.store.base import Device

SUBJECT = "mailto:ops@example.com"
FOUR_WEEKS = 2419200
OTHER_KEY = "BOtherKeyThatIsNotOursAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
# Besides the stand-in's default script (gone, missing, toolarge, badreq, flood, boom, down, hang).
MORE_SCRIPT: dict[str, tuple[int, dict[str, str]]] = {
    "unauth": (401, {}),
    "teapot": (418, {}),
    "moved": (307, {"Location": "/push/a"}),  # followed, it would show as a second request
}


@dataclass
class Seen:
    """One request the service handled, whatever it answered."""

    sub_id: str
    headers: dict[str, str]
    body: bytes
    http_version: str


class RecordingService(WebPushService):
    """The stand-in, also keeping the requests it refused or answered as scripted (its `received` has
    only those it took), so every case's golden shows what went on the wire."""

    seen: list[Seen]

    def _handle(self, request: Incoming) -> tuple[int, dict[str, str]]:
        self.seen.append(Seen(request.sub_id, request.headers, request.body, request.http_version))
        return super()._handle(request)

    def plaintext(self, seen: Seen) -> str | None:
        """The notification as the subscription's browser decrypts it (None: it cannot)."""
        browser = self._browsers.get(seen.sub_id)  # the stand-in keeps each browser's private key here
        if browser is None:
            return None
        try:
            return self._decrypt(browser, seen.body).decode()
        except Exception:
            return None


@dataclass
class WebPushWire:
    service: RecordingService
    settings: WebPushSettings
    vapid_public_key: str
    vapid_pem: str
    subscription: Device | None
    block: str = "webpush"
    auth_secrets: list[str] = field(default_factory=list)

    def devices(self) -> list[Device]:
        return [self.subscription] if self.subscription is not None else []

    def script(self, reply: Any) -> None:
        assert reply is None, "a web push case picks its answer by the subscription it sends to"

    def jwts(self) -> list[str]:
        found: list[str] = []
        for seen in self.service.seen:
            params = seen.headers.get("authorization", "").partition(" ")[2].split(",")
            for param in params:
                token = param.strip().removeprefix("t=")
                if param.strip().startswith("t=") and token not in found:
                    found.append(token)
        return found

    def placeholders(self) -> dict[str, str]:
        names = {
            "<origin>": self.service.origin,
            "<host>": f"127.0.0.1:{self.service.port}",
            "<vapid key>": self.vapid_public_key,
        }
        return names | {f"<vapid jwt {n}>": jwt for n, jwt in enumerate(self.jwts(), 1)}

    def secrets(self) -> list[str]:
        return [*key_lines(self.vapid_pem), *self.jwts(), *self.auth_secrets]

    def golden(self) -> list[dict[str, Any]]:
        names = self.placeholders()
        return [
            {
                "http": seen.http_version,
                "path": f"/push/{seen.sub_id}",
                "headers": {k: named(v, names) for k, v in seen.headers.items()},
                "jwt": self._claims(seen),
                "notification": self.service.plaintext(seen),
            }
            for seen in self.service.seen
        ]

    def _claims(self, seen: Seen) -> dict[str, Any] | None:
        """The VAPID JWT's claims (the stand-in verified its signature: a bad one is answered 401)."""
        params = seen.headers.get("authorization", "").partition(" ")[2].split(",")
        token = next((p.strip()[2:] for p in params if p.strip().startswith("t=")), "")
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        hours = round((claims["exp"] - time.time()) / 3600, 1)
        return {"aud": named(claims["aud"], self.placeholders()), "sub": claims["sub"], "hours": hours}


@contextlib.asynccontextmanager
async def serve(
    workdir: Path,
    subscription: str = "a",
    endpoint: str | None = None,
    keys: str = "browser",
    vapid_key: str | None = None,
    vapid_pem: str | None = None,
    ca_file: str | None = None,
) -> AsyncIterator[WebPushWire]:
    """The service with one subscription registered as DEVICE_ID: the browser `subscription` at the
    stand-in (or a foreign `endpoint`), with the browser's `keys` ("browser"), none ("none") or an auth
    secret too short ("short-auth"); the service expects `vapid_key` (default: ours); the app's key file
    holds `vapid_pem` (default: a good key) and trusts `ca_file` (default: the stand-in's CA)."""
    public = write_vapid_key(workdir / "vapid.pem")
    if vapid_pem is not None:
        (workdir / "vapid.pem").write_text(vapid_pem)
    service = RecordingService(workdir, expected_vapid_key=vapid_key or public)
    service.seen = []
    service.script |= MORE_SCRIPT
    async with service:
        _, browser = service.new_subscription(subscription)
        p256dh, auth = {
            "browser": (browser.p256dh, browser.auth),
            "none": ("", ""),
            "short-auth": (browser.p256dh, "c2hvcnQ"),
        }[keys]
        token = endpoint or service.endpoint(subscription)
        settings = WebPushSettings(
            vapid_private_key_file="vapid.pem",
            subject=SUBJECT,
            allow_hosts=["127.0.0.1"],
            ca_file=str(service.ca_file) if ca_file is None else ca_file,
        )
        pem = (workdir / "vapid.pem").read_text()
        sub = device("web", "webpush", token, p256dh, auth)
        yield WebPushWire(service, settings, public, pem, sub, auth_secrets=[browser.auth])


# -- messages and golden requests ------------------------------------------------------------------------


def web(title: str = "Sale", text: str = "50% off", pushref: str | None = None, **kw: Any) -> PushContent:
    return PushContent(web=WebPushMessage(title=title, text=text, **kw), pushref=pushref)


def message(content: PushContent, expiry: float | None = None, priority: int = 2) -> Outbound:
    return push(DEVICE_ID, "chrome_pushid", content, expiry, priority)


def notification(title: str = "Sale", body: str = "50% off", **more: Any) -> str:
    """The JSON the browser decrypts, keys in the provider's order, `transid` last."""
    fields = {"title": title, "body": body, **more, "transid": TRANSID}
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


# The body length that makes the notification exactly MAX_PLAINTEXT bytes (a 4096-byte record).
AT_LIMIT = MAX_PLAINTEXT - len(notification("t", ""))


def at_limit(extra: int = 0) -> PushContent:
    return web("t", "x" * (AT_LIMIT + extra))


def request(
    text: str | None = None, sub: str = "a", decrypted: bool = True, length: int | None = None, **headers: str
) -> dict[str, Any]:
    """The golden request of a default case to subscription `sub` whose browser decrypts `text`
    (default: `notification()`), with `headers` changed (a None value: the header is absent)."""
    plaintext = notification() if text is None else text
    size = len(plaintext.encode()) + 103 if length is None else length  # RFC 8188 header, pad, tag
    base = {
        "host": "<host>",
        "user-agent": "tidings",
        "accept": "*/*",
        "accept-encoding": "gzip, deflate",
        "ttl": str(FOUR_WEEKS),
        "urgency": "normal",
        "content-encoding": "aes128gcm",
        "content-type": "application/octet-stream",
        "authorization": "vapid t=<vapid jwt 1>, k=<vapid key>",
        "content-length": str(size),
    }
    merged = {k: v for k, v in (base | headers).items() if v is not None}
    return {
        "http": "1.1",
        "path": f"/push/{sub}",
        "headers": merged,
        "jwt": {"aud": "<origin>", "sub": SUBJECT, "hours": 12.0},
        "notification": plaintext if decrypted else None,
    }


ACCEPTED = Accepted("push:<origin>/m/1")


def refused(label: str, content: PushContent, kind: FailureKind, code: str, **config: Any) -> OutboundCase:
    """A case the provider (or the connector) refuses before anything reaches the service."""
    return OutboundCase(label, message(content), expect=Failure(kind, code), config=config)


def scripted(
    label: str, sub: str, kind: FailureKind, code: str, retry_after: float | None = None
) -> OutboundCase:
    """The service answers the subscription `sub` as its script says."""
    return OutboundCase(
        label,
        message(web()),
        requests=[request(sub=sub)],
        expect=Failure(kind, code, retry_after),
        config={"subscription": sub},
        state=[DEVICE_ID],  # the device stays: only a dead subscription is removed
    )


# -- outbound -------------------------------------------------------------------------------------------

# From tests/test_push_webpush.py (test_cases): what the browser decrypts and the headers the service
# gets. The v1 priority (1 high, 3 low) is the Urgency.
MAPPING = [
    OutboundCase(
        "priority-1-is-urgent",
        message(web(), priority=1),
        requests=[request(urgency="high")],
        expect=ACCEPTED,
    ),
    OutboundCase(
        "priority-3-is-low", message(web(), priority=3), requests=[request(urgency="low")], expect=ACCEPTED
    ),
    OutboundCase(
        "everything",
        message(
            web(
                "Sale",
                "50% off, été",
                pushref="ref-1",
                url="https://shop.example.com/sale",
                actiontext="Open",
                platform_types=["chrome", "firefox"],
                extras=WebExtras(collapse_key="sale", time_to_live=600, customtags={"k": "v", "n": 2}),
            )
        ),
        requests=[
            request(
                '{"title":"Sale","body":"50% off, été","url":"https://shop.example.com/sale","actiontext":'
                '"Open","platform_types":["chrome","firefox"],"customtags":{"k":"v","n":2},"pushref":"ref-1",'
                '"transid":"tid-1"}',
                ttl="600",
                topic="sale",
            )
        ],
        expect=ACCEPTED,
        state=[DEVICE_ID],
    ),
    OutboundCase("minimal", message(web()), requests=[request()], expect=ACCEPTED),
    OutboundCase(
        "long-collapse-key-hashed-to-a-topic-expiry-passed-ttl-0",
        message(web(extras=WebExtras(collapse_key="order status #42 for user")), expiry=time.time() - 30),
        requests=[request(ttl="0", topic="8d0_TuLeMzqvN7F6tBzYwf_gNUeJVwXs")],
        expect=ACCEPTED,
    ),
    OutboundCase(
        "record-at-the-4096-byte-limit",
        message(at_limit()),
        requests=[request(notification("t", "x" * AT_LIMIT), length=4096)],
        expect=ACCEPTED,
    ),
    refused("one-byte-over-the-limit-unsent", at_limit(1), FailureKind.INVALID, PAYLOAD_TOO_LARGE),
    refused("no-web-block-unsent", PushContent(), FailureKind.INVALID, INVALID_PAYLOAD),
]

# From tests/test_push_webpush.py (test_cases): the service's answers as the catalogue's kinds and codes.
ANSWERS = [
    # A dead subscription (410, and 404 as services also answer): the provider's GONE removes the
    # device. A deviceId names a device, not an address the dispatcher should remember, so the push
    # connector reports the message REJECTED with the code (web push is only reached through a deviceId).
    OutboundCase(
        "dead-token-410-removes-the-device",
        message(web()),
        requests=[request(sub="gone")],
        expect=Failure(FailureKind.REJECTED, TOKEN_UNREGISTERED),
        config={"subscription": "gone"},
        state=[],
    ),
    OutboundCase(
        "404-removes-the-device",
        message(web()),
        requests=[request(sub="missing")],
        expect=Failure(FailureKind.REJECTED, TOKEN_UNREGISTERED),
        config={"subscription": "missing"},
        state=[],
    ),
    scripted("413", "toolarge", FailureKind.INVALID, PAYLOAD_TOO_LARGE),
    scripted("400", "badreq", FailureKind.INVALID, INVALID_PAYLOAD),
    scripted("429-with-retry-after", "flood", FailureKind.THROTTLED, QUOTA_EXCEEDED, 7),
    scripted("503-with-retry-after", "boom", FailureKind.UNAVAILABLE, SERVICE_UNAVAILABLE, 3),
    scripted("502-without-retry-after", "down", FailureKind.UNAVAILABLE, SERVICE_UNAVAILABLE),
    scripted("401", "unauth", FailureKind.CONFIG, AUTH_ERROR),
    scripted("418-unknown-answer", "teapot", FailureKind.REJECTED, PLATFORM_FAILURE),
    # A redirect is not followed: the endpoint rule vetted only the URL the browser gave.
    scripted("307-redirect-is-not-followed", "moved", FailureKind.REJECTED, PLATFORM_FAILURE),
    OutboundCase(
        "403-the-subscription-was-made-with-another-key",
        message(web()),
        requests=[request()],
        expect=Failure(FailureKind.CONFIG, AUTH_ERROR),
        config={"vapid_key": OTHER_KEY},
    ),
]

# From tests/test_push_webpush.py (test_cases, test_unusable_credentials_fail_as_config): what is refused
# before any request: the subscription's keys, its endpoint (only https to a known push service or an
# allowed host: the URL came from a browser), our own key; and a service whose certificate we do not trust.
REFUSED = [
    refused("no-keys-unsent", web(), FailureKind.INVALID, INVALID_TOKEN, keys="none"),
    refused("auth-secret-too-short-unsent", web(), FailureKind.INVALID, INVALID_TOKEN, keys="short-auth"),
    *[
        refused(f"endpoint-{name}-unsent", web(), FailureKind.INVALID, INVALID_TOKEN, endpoint=url)
        for name, url in [
            ("plain-http", "http://fcm.googleapis.com/fcm/send/x"),
            ("private-address", "https://10.0.0.1/push/x"),
            ("with-credentials", "https://user:pw@fcm.googleapis.com/fcm/send/x"),
            ("other-port", "https://fcm.googleapis.com:8443/fcm/send/x"),
            ("unknown-host", "https://push.example.net/x"),
            ("lookalike-host", "https://fcm.googleapis.com.example.net/x"),
        ]
    ],
    refused("vapid-key-file-unusable", web(), FailureKind.CONFIG, AUTH_ERROR, vapid_pem="not a key"),
    OutboundCase(
        "untrusted-certificate",
        message(web()),
        expect=Failure(FailureKind.CONNECTION),
        config={"ca_file": ""},
    ),
]

OUTBOUND = [*MAPPING, *ANSWERS, *REFUSED]
PROVIDER = push_provider("webpush", serve, OUTBOUND)
