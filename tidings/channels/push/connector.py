"""The push connector: one message (one address) becomes one notification per device it reaches.

An address is a user (`userid`, `customerid`: every device of that user in the app), a registered
`deviceId`, or a provider token given directly (`android_pushid` an FCM token, `ios_pushid` an APNs hex
token, `windows_pushid` a WNS channel URI; web push always goes through a registered subscription).
Each device goes to its provider through the app's block for it (`[apps.fcm]`, …); a provider the app
has no block for is served by the sandbox, which reports Delivered (or the failure the token's last four
digits name) `[sandbox] delay_ms` later.

The message is Submitted once any device's provider took it; it fails only when every device failed,
with the most telling failure: one worth retrying first (the whole message is retried), else the
first. A dead token removes its device; for a token given directly it is a GONE failure, so the
dispatcher remembers the address and later messages to it fail without a provider call.

A batch's registered devices are read before anything is sent, in one store query per app and key
(`Store.devices_for`): a batch of 1000 userids costs one round trip, not 1000.
"""

import asyncio
import dataclasses
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import msgspec

from tidings.apps import App, AppRegistry
from tidings.channels.base import Exchange, FailureKind, Inbox, Outbound, SendError, SendResult
from tidings.channels.exchange import merged
from tidings.channels.push.provider import PushProvider, PushSend, WebPushKeys
from tidings.observe.connectors import ConnectorReport, Credential, Ledger
from tidings.schema.push import PushContent
from tidings.specs import push_codes
from tidings.specs.push import DESTINATION_KEYS, PUSH, PushMessage
from tidings.store.base import Device, Store

log = logging.getLogger("tidings.push")

# Devices one message may reach at once, and messages in flight per batch.
IN_FLIGHT = 1000
USER_KEYS = {"userid": "user_id", "customerid": "customer_id"}
# A sandbox app's user with no device: the sandbox stands in for whichever platform the message has.
SANDBOX_USER = "any"
# A deviceId, as `ids.new_id` makes them; anything else given as a *_pushid is a provider token.
_DEVICE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX = re.compile(r"[0-9a-fA-F]{32,200}")

ProviderFactory = Callable[[App, str], PushProvider]
# A batch's registered devices: by (app id, store key), then by the key's value (Store.devices_for).
Found = dict[tuple[str, str], dict[str, list[Device]]]


def build_provider(app: App, provider: str) -> PushProvider:
    """The provider client for one of an app's blocks (imported here: each pulls in its own libraries)."""
    if provider == "fcm" and app.fcm is not None:
        from tidings.channels.push.fcm import FcmProvider

        return FcmProvider(app.fcm, base_dir=app.base_dir)
    if provider == "apns" and app.apns is not None:
        from tidings.channels.push.apns import ApnsProvider

        return ApnsProvider(app.apns, base_dir=app.base_dir)
    if provider == "webpush" and app.webpush is not None:
        from tidings.channels.push.webpush import WebPushProvider

        return WebPushProvider(app.webpush, base_dir=app.base_dir)
    if provider == "wns" and app.wns is not None:
        from tidings.channels.push.wns import WnsProvider

        return WnsProvider(app.wns, base_dir=app.base_dir)
    raise ValueError(f"app {app.id} has no {provider} block")


@dataclass(frozen=True, slots=True)
class Target:
    platform: str
    provider: str
    token: str
    device: Device | None = None  # None: a token given directly


class PushConnector:
    name: ClassVar[str] = "push"

    def __init__(
        self, apps: AppRegistry, store: Store, delay_ms: int, factory: ProviderFactory = build_provider
    ) -> None:
        self.apps = apps
        self.store = store
        self.delay_s = delay_ms / 1000
        self.factory = factory
        self.label = "push"
        # One client per app block, kept while its settings stay as they were (the admin API may change
        # them: the next send then gets a new client and the old one is closed). Held with the settings
        # object it was made from, so the usual send compares identities and encodes nothing.
        self._providers: dict[tuple[str, str], tuple[object, bytes, PushProvider]] = {}
        self._limit = asyncio.Semaphore(IN_FLIGHT)
        self.ledger = Ledger()

    def describe(self) -> ConnectorReport:
        """Each provider client's credential (made on an app's first send to that provider), the last
        failure, and the backoff a provider asked for (429 with Retry-After)."""
        credentials = []
        for (app_id, _), (_, _, provider) in sorted(self._providers.items()):
            describe = getattr(provider, "credential", None)
            held = describe() if callable(describe) else None
            if isinstance(held, Credential):
                credentials.append(dataclasses.replace(held, name=f"app {app_id} {held.name}"))
        return self.ledger.report(
            credentials=credentials, configured=f"none set (at most {IN_FLIGHT} devices in flight)"
        )

    async def start(self, inbox: Inbox) -> None:
        return None

    async def stop(self) -> None:
        providers, self._providers = self._providers, {}
        for _, _, provider in providers.values():
            await _close(provider)

    async def send(self, batch: Sequence[Outbound]) -> list[SendResult | SendError]:
        found = await self._lookup(batch)
        return self.ledger.record(list(await asyncio.gather(*(self._one(m, found) for m in batch))))

    async def _lookup(self, batch: Sequence[Outbound]) -> Found:
        """Every registered device the batch names, in one store query per app and key."""
        wanted: dict[tuple[str, str], dict[str, None]] = {}
        for m in batch:
            app = self.apps.find(m.content.appid) if isinstance(m.content, PushMessage) else None
            if app is not None and (lookup := _lookup_key(m)) is not None:
                wanted.setdefault((app.id, lookup[0]), {})[lookup[1]] = None
        return {g: await self.store.devices_for(*g, list(values)) for g, values in wanted.items()}

    async def _one(self, m: Outbound, found: Found) -> SendResult | SendError:
        try:
            content = m.content
            if not isinstance(content, PushMessage):
                return SendError(FailureKind.INVALID, f"not a push message: {type(content).__name__}")
            app = self.apps.find(content.appid)
            if app is None:
                return SendError(FailureKind.CONFIG, f"app {content.appid!r} no longer exists")
            push = content.push
            targets = self._targets(app, m, found)
            if isinstance(targets, SendError):
                return targets
            return await self._deliver(app, m, push, targets)
        except SendError as exc:
            return exc

    def _targets(self, app: App, m: Outbound, found: Found) -> list[Target] | SendError:
        key, lookup = m.address_type or "userid", _lookup_key(m)
        devices = found.get((app.id, lookup[0]), {}).get(lookup[1], []) if lookup else []
        if key in USER_KEYS:
            if devices:
                return [Target(d.platform, d.provider, d.token, d) for d in devices]
            if not app.has_blocks():
                # A sandbox app reaches its users without devices, so a first try needs no set-up.
                return [Target(SANDBOX_USER, "sandbox", m.address)]
            return _unknown(f"no device registered for {key} {m.address}")
        platform = DESTINATION_KEYS.get(key) or "android"
        if lookup is not None:  # a deviceId
            if not devices:
                return _unknown(f"no device {m.address} in app {app.id}")
            d = devices[0]
            return [Target(d.platform, d.provider, d.token, d)]
        if platform == "web":
            return _unknown("web push goes to a registered subscription: give its deviceId")
        return [Target(platform, _provider_for(app, platform, m.address), m.address)]

    async def _deliver(
        self, app: App, m: Outbound, push: PushContent, targets: list[Target]
    ) -> SendResult | SendError:
        usable = [t for t in targets if t.platform == SANDBOX_USER or getattr(push, t.platform) is not None]
        if not usable:
            platforms = ", ".join(sorted({t.platform for t in targets}))
            return SendError(
                FailureKind.INVALID,
                f"the message has no block for the address's platform ({platforms})",
                push_codes.INVALID_PAYLOAD,
            )
        if len(usable) == 1:  # the usual case: no task of its own for the one device
            results = [await self._send_to(app, m, push, usable[0])]
        else:
            results = await asyncio.gather(*(self._send_to(app, m, push, t) for t in usable))
        accepted = [r for r in results if isinstance(r, SendResult)]
        dead = [t.device.device_id for t, r in zip(usable, results, strict=True) if _dead(r) and t.device]
        if dead:
            await self.store.delete_devices(app.id, dead)
            log.info("push: removed %d device(s) of app %s whose tokens are dead", len(dead), app.id)
        # The message's provider attempt holds every device's request and answer.
        wire = merged(
            (_named(t), r.exchange) for t, r in zip(usable, results, strict=True) if r.exchange is not None
        )
        if accepted:
            real = [r for r in accepted if r.receipt is None]
            # Only the sandbox knows a final status; a real provider's comes from the app's receipt.
            return dataclasses.replace(real[0] if real else accepted[0], exchange=wire)
        errors = [r for r in results if isinstance(r, SendError)]
        worst = _worst(errors, direct=targets[0].device is None)
        worst.exchange = wire
        return worst

    async def _send_to(self, app: App, m: Outbound, push: PushContent, t: Target) -> SendResult | SendError:
        if t.provider == "sandbox" or getattr(app, t.provider) is None:
            outcome = PUSH.sandbox_outcome(t.token)
            decided = Exchange(
                f"sandbox: push to {t.token} (app {app.id} has no {t.provider} block: nothing left Tidings)",
                f"accepted: {outcome.status.word} {outcome.code} in {self.delay_s:g} s",
            )
            return SendResult(f"push:{m.transid}", outcome, self.delay_s, exchange=decided)
        item = PushSend(
            transid=m.transid,
            platform=t.platform,
            token=t.token,
            content=push,
            expiry=m.expiry,
            priority=m.priority,
            keys=WebPushKeys(t.device.p256dh, t.device.auth) if t.device and t.device.p256dh else None,
        )
        provider = await self._provider(app, t.provider)
        async with self._limit:
            try:
                ext_id, wire = await provider.send_traced(item)
            except SendError as exc:
                return exc
            except Exception as exc:  # a provider's bug must not lose the batch
                log.exception("push provider %s failed unexpectedly", t.provider)
                return SendError(FailureKind.CONNECTION, f"unexpected error: {type(exc).__name__}")
        return SendResult(f"push:{ext_id}", exchange=wire)

    async def _provider(self, app: App, name: str) -> PushProvider:
        block = getattr(app, name)
        held = self._providers.get((app.id, name))
        if held is not None and held[0] is block:
            return held[2]
        settings = msgspec.json.encode(block)
        if held is not None and held[1] == settings:  # the same settings, reloaded
            self._providers[(app.id, name)] = (block, settings, held[2])
            return held[2]
        provider = self.factory(app, name)
        self._providers[(app.id, name)] = (block, settings, provider)
        if held is not None:
            await _close(held[2])
        return provider


def _lookup_key(m: Outbound) -> tuple[str, str] | None:
    """The store key and value that find an address's registered devices; None for a token given
    directly."""
    key = m.address_type or "userid"
    if key in USER_KEYS:
        return USER_KEYS[key], m.address
    return ("device_id", m.address) if _DEVICE_ID.fullmatch(m.address) else None


def _provider_for(app: App, platform: str, token: str) -> str:
    """Which provider a token given directly goes to: APNs for an iOS hex token when the app has APNs,
    else FCM (FCM tokens serve iOS too); WNS for Windows."""
    if platform == "windows":
        return "wns"
    if platform == "ios" and (app.apns is not None or app.fcm is None) and _HEX.fullmatch(token):
        return "apns"
    return "fcm"


def _named(t: Target) -> str:
    """A device as a message's provider attempt heads its part."""
    which = f"device {t.device.device_id}" if t.device is not None else "the token given"
    return f"{t.provider} ({t.platform}), {which}"


def _dead(r: SendResult | SendError) -> bool:
    return isinstance(r, SendError) and r.kind is FailureKind.GONE


def _unknown(why: str) -> SendError:
    return SendError(FailureKind.INVALID, why, push_codes.UNKNOWN_USER)


def _worst(errors: list[SendError], direct: bool) -> SendError:
    """The failure that speaks for the message when every device failed: one worth retrying first (so
    the message is tried again), else the first. A user whose devices are all dead is not gone (a new
    device may register); a registered device that died is removed, so its deviceId is unknown from
    then on (UNKNOWN_USER) and needs no remembering. Only a token given directly is GONE."""
    retry = next((e for e in errors if e.retryable), None)
    chosen = retry or errors[0]
    if chosen.kind is FailureKind.GONE and not direct:
        return SendError(FailureKind.REJECTED, chosen.description, chosen.code)
    return chosen


async def _close(provider: PushProvider) -> None:
    try:
        await provider.close()
    except Exception:
        log.warning("closing a push provider failed", exc_info=True)
