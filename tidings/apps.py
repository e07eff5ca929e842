"""Apps (CONTRACT.md "Apps"): what Webex Connect calls an app asset — a mobile or web app, later a
Facebook page, a WhatsApp number. Requests of app channels name one by `appid`; each belongs to one
service and has one provider block per thing it can reach (a platform without one is served by the
sandbox)."""

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path

from tidings.channels.push.settings import ApnsSettings, FcmSettings, WebPushSettings, WnsSettings

# The channels an app serves through its provider blocks; an app with no block at all is a sandbox app
# and serves every app channel.
PUSH_BLOCKS = ("fcm", "apns", "webpush", "wns")


@dataclass(frozen=True)
class App:
    id: str
    service_id: str
    client_secret: bytes = b""  # decoded; signs user tokens (empty: no user tokens for this app)
    fcm: FcmSettings | None = None
    apns: ApnsSettings | None = None
    webpush: WebPushSettings | None = None
    wns: WnsSettings | None = None
    base_dir: Path = field(default=Path("."))  # relative key files are read from here (the config's folder)

    def has_blocks(self) -> bool:
        return any(getattr(self, b) is not None for b in PUSH_BLOCKS)

    def serves(self, channel: str) -> bool:
        """Whether a request of `channel` may name this app (else 7104)."""
        if channel == "push":
            return True  # a platform without a block is served by the sandbox
        return not self.has_blocks()


def decode_secret(text: str) -> bytes:
    """An app's Base64 client secret, decoded (empty when it is not valid Base64: the config checks say
    so)."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""


class AppRegistry:
    def __init__(self, apps: list[App] | None = None) -> None:
        self._by_id: dict[str, App] = {}
        self.replace(apps or [])

    def replace(self, apps: list[App]) -> None:
        self._by_id = {a.id: a for a in apps}

    def find(self, app_id: str) -> App | None:
        return self._by_id.get(app_id)

    def all(self) -> list[App]:
        return list(self._by_id.values())
