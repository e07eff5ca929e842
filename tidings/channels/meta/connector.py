"""The WhatsApp and Messenger connectors: each message goes to Meta's Graph API through its app's block.

WhatsAppConnector  `[apps.whatsapp]`: the Cloud API body (`cloud_message`) for the address's number
                   without its '+'; the wamid becomes `wa:<wamid>`. A free-form message (any type but
                   `template`) to a user with no inbound message kept in the last 24 hours fails
                   (REJECTED, OUTSIDE_WINDOW 7710) without a Graph call: one `Store.last_inbound` per
                   app and batch says when each recipient last wrote to the app's service.
MessengerConnector `[apps.messenger]`: the Send API body (`send_api_body`) for the PSID; the mid becomes
                   `fb:<mid>`. A deprecated airline template fails (INVALID, DEPRECATED_TEMPLATE)
                   without a Graph call; a sender action has no mid and no delivery, so it stays
                   Submitted. A RESPONSE or UPDATE message or a sender action to a PSID with nothing
                   kept from it in the last 24 hours fails (REJECTED, OUTSIDE_WINDOW 7313) without a
                   Graph call; MESSAGE_TAG is Meta's way past the window, so it is not checked.

An app with no block for the channel is served by the sandbox: the outcome the address's last four
digits name, `[sandbox] delay_ms` later. A real send schedules no receipt: Delivered and Read come from
Meta's webhooks, which name the message by those `ext_id` forms.

Both windows count from the user's last inbound event as kept by the webhook (`InboundMessage.at`;
for Messenger that includes postbacks, reactions, referrals and opt-ins). Tidings' record may be
incomplete (a message that reached another system, a webhook lost): Meta stays the authority, and its
own refusal (131047, 10/2018278) maps to the same code. An app whose block has `enforce_window = false`
leaves the check to Meta; so does a connector built without a store.

One Graph client per app block, kept while the block's settings stay as they were (the admin API may
change them: the next send gets a new client and the old one is closed), all closed on stop.
"""

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import msgspec

from tidings import clock
from tidings.apps import App, AppRegistry
from tidings.channels.base import Exchange, FailureKind, Inbox, Outbound, SendError, SendResult
from tidings.channels.meta.graph import CONNECTIONS, MessengerSend, WhatsAppCloud
from tidings.channels.meta.settings import MessengerSettings, WhatsAppSettings
from tidings.channels.push.http import tls_context
from tidings.channels.sandbox.connector import simulated
from tidings.observe.connectors import ConnectorReport, Credential, Ledger
from tidings.schema.messenger import send_api_body
from tidings.schema.whatsapp import cloud_message
from tidings.specs import messenger_codes, whatsapp_codes
from tidings.specs.base import ChannelSpec
from tidings.specs.messenger import MESSENGER, MessengerMessage
from tidings.specs.whatsapp import WHATSAPP, WhatsAppMessage

log = logging.getLogger("tidings.meta")

# Messages in flight at once per connector; each client also bounds its own connections.
IN_FLIGHT = 1000

# Meta's customer-service window: a business may send free-form messages for 24 hours after the user's
# last message; after that only a template reaches them. Meta's rule, not a setting.
WINDOW_S = 24 * 3600.0


class GraphClient(Protocol):
    refused: str  # Meta's last refusal of the token or account, "" after a success

    async def send_traced(self, body: dict[str, Any]) -> tuple[str, Exchange]: ...

    async def close(self) -> None: ...


C = TypeVar("C", bound=GraphClient)
ClientFactory = Callable[[App], C]


def _context(ca_file: str, app: App) -> ssl.SSLContext | None:
    """The system's CAs plus the block's extra bundle; None (the client's default) without one."""
    return tls_context(app.base_dir / ca_file) if ca_file else None


def whatsapp_client(app: App) -> WhatsAppCloud:
    settings = _block(app.whatsapp, "whatsapp", app)
    return WhatsAppCloud(settings, context=_context(settings.ca_file, app))


def messenger_client(app: App) -> MessengerSend:
    settings = _block(app.messenger, "messenger", app)
    return MessengerSend(settings, context=_context(settings.ca_file, app))


S = TypeVar("S", WhatsAppSettings, MessengerSettings)


def _block(settings: S | None, name: str, app: App) -> S:
    if settings is None:
        raise ValueError(f"app {app.id} has no {name} block")
    return settings


class InboundTimes(Protocol):
    """What the window needs of the store (`Store.last_inbound`)."""

    async def last_inbound(
        self, service_id: str, channel: str, sources: Sequence[str]
    ) -> dict[str, float]: ...


class _GraphConnector(Generic[C]):
    """What both channels share: the app lookup, the sandbox, the window, the client cache, the bound."""

    name: ClassVar[str]
    block: ClassVar[str]  # the app's block for this channel
    spec: ClassVar[ChannelSpec]
    prefix: ClassVar[str]  # of the ext_id, as the webhooks name the message
    window: ClassVar[str]  # the 24-hour window's name in Meta's words
    past_window: ClassVar[str]  # what still reaches a user outside it
    window_code: ClassVar[str]  # the channel's code for a message refused outside it

    def __init__(
        self, apps: AppRegistry, delay_ms: int, factory: ClientFactory[C], store: InboundTimes | None = None
    ) -> None:
        self.apps = apps
        self.store = store
        self.delay_s = delay_ms / 1000
        self.factory = factory
        self.label = self.name
        # app id -> (the block object the client was made from, its encoding, the client): the usual
        # send compares identities; a reloaded but equal block keeps the client.
        self._clients: dict[str, tuple[object, bytes, C]] = {}
        self._limit = asyncio.Semaphore(IN_FLIGHT)
        self.ledger = Ledger(self._tokens)

    def _tokens(self) -> list[str]:
        blocks = (getattr(app, self.block) for app in self.apps.all())
        return [b.access_token for b in blocks if b is not None]

    def describe(self) -> ConnectorReport:
        """Each app's token (static: Meta's system-user and page tokens do not expire by themselves),
        refused when Meta last refused it (190) or the account; the last failure and Meta's backoff."""
        credentials = []
        for app in self.apps.all():
            block = getattr(app, self.block)
            if block is None:
                continue
            held = self._clients.get(app.id)
            refused = held[2].refused if held is not None else ""
            account = getattr(block, "phone_number_id", "") or getattr(block, "page_id", "")
            note = "" if held is not None else "not used yet"
            credentials.append(
                Credential(f"app {app.id} ({account})", "static token", refused=refused, note=note)
            )
        limits = f"none set (at most {IN_FLIGHT} in flight, {CONNECTIONS} connections per account)"
        return self.ledger.report(credentials=credentials, configured=limits)

    async def start(self, inbox: Inbox) -> None:
        return None

    async def stop(self) -> None:
        clients, self._clients = self._clients, {}
        for _, _, client in clients.values():
            await _close(client)

    async def send(self, batch: Sequence[Outbound]) -> list[SendResult | SendError]:
        refused = await self._outside_window(batch)
        if not refused:
            return await self._send(batch)
        rest = [m for i, m in enumerate(batch) if i not in refused]
        sent = iter(await self._send(rest) if rest else [])
        return [refused[i] if i in refused else next(sent) for i in range(len(batch))]

    async def _send(self, batch: Sequence[Outbound]) -> list[SendResult | SendError]:
        if len(batch) == 1:  # the usual case at low rates: no task of its own
            return self.ledger.record([await self._one(batch[0])])
        return self.ledger.record(list(await asyncio.gather(*(self._one(m) for m in batch))))

    async def _one(self, m: Outbound) -> SendResult | SendError:
        appid = getattr(m.content, "appid", None)
        if appid is None:
            return SendError(FailureKind.INVALID, f"not a {self.name} message: {type(m.content).__name__}")
        app = self.apps.find(appid)
        if app is None:
            return SendError(FailureKind.CONFIG, f"app {appid!r} no longer exists")
        if getattr(app, self.block) is None:
            ext_id, outcome = f"{self.prefix}:{m.transid}", self.spec.sandbox_outcome(m.address)
            decided = (
                f"app {app.id} has no {self.block} block: the sandbox; {outcome.status.word} {outcome.code}"
            )
            return SendResult(ext_id, outcome, self.delay_s, exchange=simulated(m, decided))
        try:
            body = self._body(m)
            client = await self._client(app)
            async with self._limit:
                ident, wire = await client.send_traced(body)
        except SendError as exc:
            return exc
        except Exception as exc:  # a client's bug must not lose the batch
            log.exception("%s send failed unexpectedly", self.name)
            return SendError(FailureKind.CONNECTION, f"unexpected error: {type(exc).__name__}")
        return SendResult(f"{self.prefix}:{ident}" if ident else None, exchange=wire)

    async def _outside_window(self, batch: Sequence[Outbound]) -> dict[int, SendError]:
        """The batch's windowed messages whose recipient has not written within WINDOW_S, by index."""
        store = self.store
        if store is None:
            return {}
        by_app: dict[str, tuple[str, list[int]]] = {}
        for i, m in enumerate(batch):
            app = self._windowed_app(m)
            if app is not None:
                by_app.setdefault(app.id, (app.service_id, []))[1].append(i)
        refused: dict[int, SendError] = {}
        now = clock.now()
        for service_id, indexes in by_app.values():
            sources = sorted({self._sender(batch[i].address) for i in indexes})
            try:
                last = await store.last_inbound(service_id, self.spec.name, sources)
            except Exception as exc:  # nothing was sent: the dispatcher tries again, free
                log.warning("the %s window lookup failed: %s", self.name, type(exc).__name__)
                unknown = SendError(
                    FailureKind.UNAVAILABLE, "the store could not say when the user last wrote"
                )
                refused |= dict.fromkeys(indexes, unknown)
                continue
            for i in indexes:
                at = last.get(self._sender(batch[i].address))
                if at is None or now - at > WINDOW_S:
                    refused[i] = self._outside(at)
        return refused

    def _windowed_app(self, m: Outbound) -> App | None:
        """The message's app when the window applies to the message, else None."""
        raise NotImplementedError

    def _sender(self, address: str) -> str:
        """A recipient as the webhook keeps the same user's inbound events (`InboundMessage.source`)."""
        raise NotImplementedError

    def _enforcing(self, appid: str) -> App | None:
        """The app, when it is a real one whose block enforces the window (the sandbox keeps its own
        rule; an unknown app fails later as it would)."""
        app = self.apps.find(appid)
        block = getattr(app, self.block) if app is not None else None
        return app if block is not None and block.enforce_window else None

    def _outside(self, at: float | None) -> SendError:
        """The refusal of a message whose recipient last wrote at `at` (None: never)."""
        since = f"the user last wrote at {clock.iso(at)}" if at is not None else "the user never wrote"
        return SendError(
            FailureKind.REJECTED,
            f"outside the 24-hour {self.window} ({since}): only {self.past_window} can reach them",
            self.window_code,
        )

    def _body(self, m: Outbound) -> dict[str, Any]:
        """The Graph body for one message; SendError when it cannot be sent as it is."""
        raise NotImplementedError

    async def _client(self, app: App) -> C:
        block = getattr(app, self.block)
        held = self._clients.get(app.id)
        if held is not None and held[0] is block:
            return held[2]
        settings = msgspec.json.encode(block)
        if held is not None and held[1] == settings:
            self._clients[app.id] = (block, settings, held[2])
            return held[2]
        try:
            client = self.factory(app)
        except (OSError, ssl.SSLError) as exc:  # the block's ca_file went missing or bad since the check
            raise SendError(FailureKind.CONFIG, f"app {app.id}'s {self.block} ca_file: {exc}") from None
        self._clients[app.id] = (block, settings, client)
        if held is not None:
            await _close(held[2])
        return client


class WhatsAppConnector(_GraphConnector[WhatsAppCloud]):
    name: ClassVar[str] = "whatsapp"
    block: ClassVar[str] = "whatsapp"
    spec: ClassVar[ChannelSpec] = WHATSAPP
    prefix: ClassVar[str] = "wa"
    window: ClassVar[str] = "customer service window"
    past_window: ClassVar[str] = "a template message"
    window_code: ClassVar[str] = whatsapp_codes.OUTSIDE_WINDOW

    def __init__(
        self,
        apps: AppRegistry,
        delay_ms: int,
        factory: ClientFactory[WhatsAppCloud] = whatsapp_client,
        store: InboundTimes | None = None,
    ) -> None:
        super().__init__(apps, delay_ms, factory, store)

    def _windowed_app(self, m: Outbound) -> App | None:
        """The message's app when the window applies to it: a free-form message through a real app
        that enforces it (the sandbox keeps its own rule; anything else fails later as it would)."""
        content = m.content
        if not isinstance(content, WhatsAppMessage) or content.wa.type == "template":
            return None
        return self._enforcing(content.appid)

    def _sender(self, address: str) -> str:
        return "+" + address.removeprefix("+")  # the webhook keeps a sender as `+<wa_id>`

    def _body(self, m: Outbound) -> dict[str, Any]:
        content = m.content
        if not isinstance(content, WhatsAppMessage):
            raise SendError(FailureKind.INVALID, f"not a WhatsApp message: {type(content).__name__}")
        return cloud_message(content.wa, to=m.address.removeprefix("+"))


class MessengerConnector(_GraphConnector[MessengerSend]):
    name: ClassVar[str] = "messenger"
    block: ClassVar[str] = "messenger"
    spec: ClassVar[ChannelSpec] = MESSENGER
    prefix: ClassVar[str] = "fb"
    window: ClassVar[str] = "standard messaging window"
    past_window: ClassVar[str] = "a MESSAGE_TAG message"
    window_code: ClassVar[str] = messenger_codes.OUTSIDE_WINDOW

    def __init__(
        self,
        apps: AppRegistry,
        delay_ms: int,
        factory: ClientFactory[MessengerSend] = messenger_client,
        store: InboundTimes | None = None,
    ) -> None:
        super().__init__(apps, delay_ms, factory, store)

    def _windowed_app(self, m: Outbound) -> App | None:
        """The message's app when the standard messaging window applies to it: a RESPONSE or UPDATE
        message, or a sender action (Graph takes no tag with one), through a real page that enforces it.
        MESSAGE_TAG is Meta's way past the window; a deprecated template fails as it always does (7004),
        whatever the window; the sandbox keeps its own rule."""
        content = m.content
        if not isinstance(content, MessengerMessage) or content.fb.deprecated:
            return None
        if content.fb.sender_action is None and content.fb.messaging_type == "MESSAGE_TAG":
            return None
        return self._enforcing(content.appid)

    def _sender(self, address: str) -> str:
        return address  # the PSID, as the webhook keeps it

    def _body(self, m: Outbound) -> dict[str, Any]:
        content = m.content
        if not isinstance(content, MessengerMessage):
            raise SendError(FailureKind.INVALID, f"not a Messenger message: {type(content).__name__}")
        if content.fb.deprecated:
            # Webex Connect accepts the airline templates and fails them by notification: Graph
            # retired them, so asking it would only earn a refusal.
            template = content.fb.attachment.template_type if content.fb.attachment else ""
            raise SendError(
                FailureKind.INVALID,
                f"the {template} template is deprecated: Messenger no longer sends it",
                messenger_codes.DEPRECATED_TEMPLATE,
            )
        return send_api_body(content.fb, m.address)


async def _close(client: GraphClient) -> None:
    try:
        await client.close()
    except Exception:
        log.warning("closing a Graph client failed", exc_info=True)
