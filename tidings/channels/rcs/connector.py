"""The RCS connector: each message goes to RBM through its app's `[apps.rcs]` block.

One message is one `agentMessages` call (tidings.channels.rcs.rbm) under the message's transid, so
RBM's own dedupe makes a retried send harmless and its webhooks name the message by the transid. A
real send schedules no receipt: Delivered and Read come from RBM's webhooks.

Not RCS-reachable (RBM's 404, or the capability lookup's when `check_capabilities` is on): with
`options.smsFallback` the message is handed back to the dispatcher as SMS (`SendError.fallback`: same
transid, its channel and content changed in the store, sent through the SMS route), else it fails
REJECTED 7319. With `check_capabilities`, a message whose card, carousel or action the device cannot
show takes the fallback too, else fails 7324.

An app without an `[apps.rcs]` block is served by the sandbox: the outcome the address's last four
digits name, `[sandbox] delay_ms` later, except 7319 (not RCS-reachable), which takes the SMS fallback
at once when the message has one, as a real agent's 404 does.

One RBM client per app block, kept while the block's settings stay as they were (the admin API may
change them: the next send gets a new client and the old one is closed), all closed on stop.
"""

import asyncio
import dataclasses
import logging
import ssl
from collections.abc import Sequence
from typing import ClassVar

import msgspec

from tidings.apps import App, AppRegistry
from tidings.channels.base import Exchange, FailureKind, Fallback, Inbox, Outbound, SendError, SendResult
from tidings.channels.exchange import merged
from tidings.channels.push.http import tls_context
from tidings.channels.rcs.rbm import CONNECTIONS, RbmClient, Reach
from tidings.channels.sandbox.connector import simulated
from tidings.observe.connectors import ConnectorReport, Ledger
from tidings.schema.rcs import RcsContent, RcsMessage, agent_message
from tidings.smpp.encoding import segments
from tidings.specs import rcs_codes as codes
from tidings.specs.rcs import RCS

log = logging.getLogger("tidings.rcs")

IN_FLIGHT = 1000  # messages in flight at once per connector; each client bounds its connections too

# The RBM features a message needs, by what it holds (capability names as RBM reports them).
_ACTION_FEATURES = {
    "openUrl": "ACTION_OPEN_URL",
    "dialPhone": "ACTION_DIAL",
    "viewLocation": "ACTION_VIEW_LOCATION",
    "shareLocation": "ACTION_SHARE_LOCATION",
    "calendarEvent": "ACTION_CREATE_CALENDAR_EVENT",
}


def needed_features(content: RcsContent) -> set[str]:
    needed = set()
    if content.type == "standalone":
        needed.add("RICHCARD_STANDALONE")
    elif content.type == "carousel":
        needed.add("RICHCARD_CAROUSEL")
    cards = [content.card] if content.card is not None else content.cards
    chips = [*content.suggestions, *(s for c in cards for s in c.suggestions)]
    return needed | {_ACTION_FEATURES[s.type] for s in chips if s.type in _ACTION_FEATURES}


def rbm_client(app: App) -> RbmClient:
    settings = app.rcs
    if settings is None:
        raise ValueError(f"app {app.id} has no rcs block")
    context = tls_context(app.base_dir / settings.ca_file) if settings.ca_file else None
    return RbmClient(settings, base_dir=app.base_dir, context=context)


class RcsConnector:
    name: ClassVar[str] = "rcs"

    def __init__(self, apps: AppRegistry, delay_ms: int) -> None:
        self.apps = apps
        self.delay_s = delay_ms / 1000
        self.label = self.name
        # app id -> (the block object the client was made from, its encoding, the client)
        self._clients: dict[str, tuple[object, bytes, RbmClient]] = {}
        self._limit = asyncio.Semaphore(IN_FLIGHT)
        self.ledger = Ledger()

    def describe(self) -> ConnectorReport:
        """Each agent's access token (made on its app's first send), the last failure (a fallback to SMS
        is not one), and RBM's backoff (429 RESOURCE_EXHAUSTED with Retry-After)."""
        credentials = []
        for app_id, (_, _, client) in sorted(self._clients.items()):
            held = client.credential()
            credentials.append(dataclasses.replace(held, name=f"app {app_id} {held.name}"))
        limits = f"none set (at most {IN_FLIGHT} in flight, {CONNECTIONS} connections per agent)"
        return self.ledger.report(credentials=credentials, configured=limits)

    async def start(self, inbox: Inbox) -> None:
        return None

    async def stop(self) -> None:
        clients, self._clients = self._clients, {}
        for _, _, client in clients.values():
            try:
                await client.close()
            except Exception:
                log.warning("closing an RBM client failed", exc_info=True)

    async def send(self, batch: Sequence[Outbound]) -> list[SendResult | SendError]:
        if len(batch) == 1:  # the usual case at low rates: no task of its own
            return self.ledger.record([await self._one(batch[0])])
        return self.ledger.record(list(await asyncio.gather(*(self._one(m) for m in batch))))

    async def _one(self, m: Outbound) -> SendResult | SendError:
        content = m.content
        if not isinstance(content, RcsMessage):
            return SendError(FailureKind.INVALID, f"not an RCS message: {type(content).__name__}")
        app = self.apps.find(content.appid)
        if app is None:
            return SendError(FailureKind.CONFIG, f"app {content.appid!r} no longer exists")
        if app.rcs is None:
            return self._sandbox(m, content)
        calls: list[tuple[str, Exchange]] = []  # the capability lookup's, then the send's
        try:
            client = self._client(app)
            async with self._limit:
                if app.rcs.check_capabilities:
                    reach, looked = await client.capabilities_traced(m.address)
                    calls.append(("capabilities", looked))
                    problem = self._unfit(reach, content.rcs)
                    if problem is not None:
                        problem.exchange = looked
                        return _instead(problem, content)
                sent = await client.send_traced(m.address, m.transid, agent_message(content.rcs))
                calls.append(("agentMessages", sent))
        except SendError as exc:
            if calls and exc.exchange is not None:
                exc.exchange = merged([*calls, ("agentMessages", exc.exchange)])
            return _instead(exc, content) if exc.code == codes.NOT_RCS_USER else exc
        except Exception as exc:  # a client's bug must not lose the batch
            log.exception("RCS send failed unexpectedly")
            return SendError(FailureKind.CONNECTION, f"unexpected error: {type(exc).__name__}")
        return SendResult(exchange=merged(calls))

    def _sandbox(self, m: Outbound, content: RcsMessage) -> SendResult | SendError:
        outcome = RCS.sandbox_outcome(m.address)
        decided = simulated(
            m, f"app {content.appid} has no rcs block: the sandbox; {outcome.status.word} {outcome.code}"
        )
        if outcome.code == codes.NOT_RCS_USER:
            refused = SendError(
                FailureKind.REJECTED, "sandbox: not RCS-reachable", outcome.code, exchange=decided
            )
            return _instead(refused, content)
        return SendResult(None, outcome, self.delay_s, exchange=decided)

    @staticmethod
    def _unfit(reach: Reach, content: RcsContent) -> SendError | None:
        if not reach.reachable:
            return SendError(FailureKind.REJECTED, "RBM capabilities: not RCS-reachable", codes.NOT_RCS_USER)
        missing = sorted(needed_features(content) - reach.features)
        if missing:
            text = f"RBM capabilities: the device lacks {', '.join(missing)}"
            return SendError(FailureKind.REJECTED, text, codes.UNSUPPORTED_FEATURE)
        return None

    def _client(self, app: App) -> RbmClient:
        block = app.rcs
        held = self._clients.get(app.id)
        if held is not None and held[0] is block:
            return held[2]
        settings = msgspec.json.encode(block)
        if held is not None and held[1] == settings:
            self._clients[app.id] = (block, settings, held[2])
            return held[2]
        try:
            client = rbm_client(app)
        except (OSError, ssl.SSLError) as exc:  # the block's ca_file went missing or bad since the check
            raise SendError(
                FailureKind.CONFIG, f"app {app.id}'s rcs ca_file: {exc}", codes.AUTH_FAILURE
            ) from None
        self._clients[app.id] = (block, settings, client)
        if held is not None:
            asyncio.get_running_loop().create_task(held[2].close())
        return client


def _instead(error: SendError, content: RcsMessage) -> SendError:
    """`error` with the SMS to send instead attached, when the message asked for one."""
    sms = content.sms
    if sms is not None and sms.text:
        error.fallback = Fallback(
            "sms", msgspec.json.encode(sms), segments(sms.text, unicode=sms.type == "4")
        )
    return error
