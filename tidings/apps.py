"""Apps (CONTRACT.md "Apps"): what Webex Connect calls an app asset — a mobile or web app, a Facebook
page, a WhatsApp number, an RCS agent. Requests of app channels name one by `appid`; each belongs to one
service and has one provider block per thing it can reach (a platform without one is served by the
sandbox).

Apps come from `[[apps]]` in the config file and from the admin API (`/admin/v1/apps`), through the
catalogue; the runtime keeps an AppRegistry of them (`runtime.apps.find(appid)`)."""

from dataclasses import dataclass, field
from pathlib import Path

from tidings.channels.meta.settings import MessengerSettings, WhatsAppSettings
from tidings.channels.push.settings import ApnsSettings, FcmSettings, WebPushSettings, WnsSettings
from tidings.channels.rcs.settings import RcsSettings
from tidings.config import decode_secret as decode_base64

# The channels an app serves through its provider blocks; an app with no block at all is a sandbox app
# and serves every app channel.
PUSH_BLOCKS = ("fcm", "apns", "webpush", "wns")
# The block that serves each other app channel (one each).
CHANNEL_BLOCKS = {"whatsapp": "whatsapp", "fb": "messenger", "rcs": "rcs"}
BLOCKS = (*PUSH_BLOCKS, *CHANNEL_BLOCKS.values())

# Keys whose values are secrets, at an app's top level or in any of its provider blocks: the admin API
# never shows them and keeps the stored value when a change leaves them out.
SECRET_KEYS = frozenset({"client_secret", "access_token", "app_secret", "verify_token", "client_token"})


@dataclass(frozen=True)
class App:
    id: str
    service_id: str
    client_secret: bytes = b""  # decoded; signs user tokens (empty: no user tokens for this app)
    fcm: FcmSettings | None = None
    apns: ApnsSettings | None = None
    webpush: WebPushSettings | None = None
    wns: WnsSettings | None = None
    whatsapp: WhatsAppSettings | None = None
    messenger: MessengerSettings | None = None
    rcs: RcsSettings | None = None
    # Relative key files are read from here: the config file's folder for apps from the file, the
    # process's working directory (".") for apps added through the admin API.
    base_dir: Path = field(default=Path("."))

    def __repr__(self) -> str:  # the client secret and the blocks' secrets never reach a log line
        blocks = ",".join(b for b in BLOCKS if getattr(self, b) is not None)
        return f"App(id={self.id!r}, service_id={self.service_id!r}, blocks={blocks!r})"

    def has_blocks(self) -> bool:
        return any(getattr(self, b) is not None for b in BLOCKS)

    def serves(self, channel: str) -> bool:
        """Whether a request of `channel` may name this app (else 7104): an app with no block at all is
        a sandbox app and serves every app channel; otherwise push when it has a push block (a platform
        without one is the sandbox's), and a Meta channel when it has that channel's block."""
        if not self.has_blocks():
            return True
        if channel == "push":
            return any(getattr(self, b) is not None for b in PUSH_BLOCKS)
        block = CHANNEL_BLOCKS.get(channel)
        return block is not None and getattr(self, block) is not None


def decode_secret(text: str) -> bytes:
    """An app's Base64 client secret (padded or not, as a service's secret), decoded; empty when there
    is none or it is not Base64 (the config checks and the admin API refuse that)."""
    return decode_base64(text) or b""


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
