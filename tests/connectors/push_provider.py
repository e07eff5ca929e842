"""The runner's `Provider` for a push provider: its stand-in served on the case's own event loop, and the
real push connector (`PushConnector`) in front of it, with a SQLite store in a temporary folder and one
app whose block for the provider points at the stand-in.

A push case file writes a `PushWire` (the stand-in and what the app needs to reach it) and an `open`
for it: an async context manager `serve(workdir, **config)` that starts the stand-in, yields the wire
and stops it; `config` is the case's `config` (which subscription or channel, which key, …). Then
`PROVIDER = push_provider(name, serve, OUTBOUND)`. Per case, this module opens the store, registers the
wire's devices, builds the app and the connector, and hands the runner a `PushStandIn`; the runner
sends the case's `Outbound` (made with `push(...)`) through the connector's real path: the app lookup,
the device lookup, the provider client the connector builds from the app's block.

A case's `state` is the ids of the app's devices still registered once the send is done (a dead token
removes its device).
"""

import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

from tests.connectors.runner import OutboundCase, Provider
from tidings.apps import App, AppRegistry
from tidings.channels.base import Outbound
from tidings.channels.push.connector import PushConnector
from tidings.schema.push import PushContent
from tidings.specs.push import PushMessage
from tidings.store.base import Device
from tidings.store.sqlite import SqliteStore

APP_ID = "app-runner"
SERVICE_ID = "svc-push"
TRANSID = "tid-1"
# A registered device's id, as the devices API makes them (the connector tells one from a token by it).
DEVICE_ID = "0f0e0d0c-0b0a-4908-8706-050403020100"


class PushWire(Protocol):
    """One push provider's stand-in, running, and what an app needs to reach it."""

    block: str  # the app's block for the provider: fcm | apns | webpush | wns
    settings: Any  # that block (FcmSettings, …), aimed at the stand-in

    def devices(self) -> list[Device]:
        """What to register in the store before the send (a web push subscription)."""

    def script(self, reply: Any) -> None: ...

    def golden(self) -> list[dict[str, Any]]:
        """What the stand-in received, normalised (placeholders for run-time values, secrets by name)."""

    def secrets(self) -> list[str]:
        """Every secret the provider holds or was issued: private key lines, client secrets, tokens."""

    def placeholders(self) -> dict[str, str]: ...


Serve = Callable[..., AbstractAsyncContextManager[PushWire]]


class PushStandIn:
    """The runner's `StandIn`: a push provider's wire behind the real push connector."""

    def __init__(self, wire: PushWire, connector: PushConnector, store: SqliteStore) -> None:
        self.wire = wire
        self.connector = connector
        self.store = store

    @property
    def secrets(self) -> list[str]:
        return self.wire.secrets()

    async def ready(self) -> None:
        return None  # the connector opens its provider client on the first send

    def script(self, reply: Any) -> None:
        self.wire.script(reply)

    def requests(self) -> list[dict[str, Any]]:
        return self.wire.golden()

    def placeholders(self) -> dict[str, str]:
        return self.wire.placeholders()

    async def state(self) -> list[str]:
        return [d.device_id for d in await self.store.list_devices(APP_ID)]

    async def callback(self, callback: Any) -> Any:
        raise AssertionError("push providers make no callbacks: receipts come from the app")


def push_provider(name: str, serve: Serve, outbound: Sequence[OutboundCase]) -> Provider:
    @contextlib.asynccontextmanager
    async def open_push(**config: Any) -> AsyncIterator[PushStandIn]:
        with tempfile.TemporaryDirectory(prefix=f"tidings-{name}-") as folder:
            workdir = Path(folder)
            async with serve(workdir, **config) as wire:
                store = SqliteStore(str(workdir / "tidings.db"))
                await store.open()
                try:
                    for device in wire.devices():
                        await store.save_device(device)
                    app = App(APP_ID, SERVICE_ID, base_dir=workdir, **{wire.block: wire.settings})
                    yield PushStandIn(wire, PushConnector(AppRegistry([app]), store, 0), store)
                finally:
                    await store.close()

    return Provider(name, open_push, outbound, [])


def push(
    address: str, address_type: str, content: PushContent, expiry: float | None = None, priority: int = 2
) -> Outbound:
    """The `Outbound` the dispatcher hands the push connector for one v1 push request."""
    message = PushMessage(appid=APP_ID, push=content)
    return Outbound(TRANSID, SERVICE_ID, "push", address, message, 1, expiry, address_type, priority)


def device(platform: str, provider: str, token: str, p256dh: str = "", auth: str = "") -> Device:
    """The one device a case registers, under DEVICE_ID."""
    return Device(DEVICE_ID, APP_ID, SERVICE_ID, "user-1", "", platform, provider, token, p256dh, auth)


def key_lines(pem: str) -> list[str]:
    """A PEM private key's body lines: each is a secret (a short last line could turn up by chance)."""
    return [line for line in pem.splitlines() if len(line) >= 16 and not line.startswith("-----")]
