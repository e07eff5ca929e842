"""The seam between the push connector and one push service (FCM, APNs, Web Push, WNS).

The push connector decides which device gets what; a `PushProvider` only turns one `PushSend` into its
service's wire request and the answer into an id or a `SendError` from the catalogue
(`tidings.channels.base`): GONE when the service says the token is dead (the device is then removed),
THROTTLED/UNAVAILABLE with `retry_after` when it asks us to wait, CONFIG for credentials it refuses.
Each error carries the Webex Connect push code (`tidings.specs.push`).
"""

from dataclasses import dataclass
from typing import ClassVar, Protocol

from tidings.channels.base import Exchange
from tidings.schema.push import PushContent


@dataclass(frozen=True, slots=True)
class WebPushKeys:
    p256dh: str  # the browser's P-256 public key, base64url (uncompressed point)
    auth: str  # its 16-byte auth secret, base64url


@dataclass(frozen=True, slots=True)
class PushSend:
    transid: str  # our message id; providers that take an id of ours (apns-id) are given it
    platform: str  # android | ios | web | windows: which block of `content` applies
    token: str  # FCM registration token, APNs hex token, WNS channel URI or web push endpoint
    content: PushContent
    expiry: float | None = None  # epoch seconds: the service may drop the message after it
    priority: int = 2  # the v1 request's priority: 1 high, 2 normal, 3 low
    keys: WebPushKeys | None = None  # web push only


class PushProvider(Protocol):
    name: ClassVar[str]  # fcm | apns | webpush | wns

    async def send_traced(self, item: PushSend) -> tuple[str, Exchange]:
        """Deliver one notification to the push service; return the service's id for it (or ours when
        it gives none) and what was sent and answered (`Exchange`, secrets removed). Raise `SendError`
        on failure, carrying the exchange when a request went out. Return or raise within a bounded
        time."""

    async def close(self) -> None: ...
