"""Everything one Tidings process runs, wired together: store, services, connectors, workers."""

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from tidings.apps import AppRegistry
from tidings.catalogue import Snapshot, config_entries, demo_entry
from tidings.channels import build_connectors, build_routes
from tidings.channels.base import Connector
from tidings.config import Config, check_catalogue, dotted
from tidings.dispatch.inbox import Inbox
from tidings.dispatch.worker import Dispatcher
from tidings.intake import Intake
from tidings.links.smart import SmartlinkRegistry
from tidings.notify.webhook import Notifier
from tidings.observe.cluster import ConnectorEntry, Publisher, entries, identity
from tidings.policy.contact import GroupRegistry
from tidings.policy.ratelimit import RedisRateLimiter
from tidings.retention import Purger
from tidings.services import Service, ServiceRegistry, demo_service
from tidings.store import Store, open_store
from tidings.templates import TemplateRegistry
from tidings.wake import Wakeups
from tidings.watchdog import ACTIVITY, STUCK_AFTER_S, Watchdog, describe_spans, describe_tasks

if TYPE_CHECKING:
    from tidings.channels.email.bounces import BounceListener

log = logging.getLogger("tidings")
CATALOGUE_POLL_S = 1.0
# A stop waits this long for the parts to finish what they are doing (a batch's record, the SMSC's last
# responses, the notifications in flight), and no longer; the process entry points end the process
# outright a little later (server.LEAVE_AFTER_S).
STOP_GRACE_S = 5.0
NOTIFY_GRACE_S = 3.5  # the notifier's posts in flight, within the stop's grace
# A stop cut short sooner: a store call stuck before the stop began will not be rescued by waiting.
STUCK_STOP_S = 1.0


class Runtime:
    """One process's share of the work: the store, the catalogue and the accept path always; with
    `dispatch`, also the connectors, the dispatcher and the notifier. The server module puts HTTP in
    front: `tidings serve` has both, `serve --api-only` HTTP without dispatch, `tidings worker` dispatch
    without HTTP; on PostgreSQL any number of each. `role` is how the console names the process
    beside its host and pid: serve, api (serve --api-only) or worker."""

    def __init__(self, config: Config, *, dispatch: bool = True, role: str = "") -> None:
        self.config = config
        self.dispatch = dispatch
        self.process = identity(role or ("serve" if dispatch else "api"), time.time())
        self.services = ServiceRegistry()
        self.demo: Service | None = None
        self._store: Store | None = None
        self._started: list[Dispatcher | Notifier] = []
        self.connectors: dict[str, Connector] = {}
        self.routes: dict[str, Connector] = {}
        self.inbox: Inbox | None = None
        self.bounces: BounceListener | None = None  # email's bounce listener, in a dispatching process
        self.templates = TemplateRegistry()
        self.groups = GroupRegistry()
        self.smartlinks = SmartlinkRegistry()
        self.apps = AppRegistry()
        self.catalogue = Snapshot.of(0, ())
        self.catalogue_lock = asyncio.Lock()  # admin changes here are checked and written one at a time
        self._follower: asyncio.Task[None] | None = None
        self.redis: Redis | None = None
        self.wakeups = Wakeups(None, config.redis.prefix)
        self.watchdog: Watchdog | None = None
        self.purger: Purger | None = None  # the retention pass, in a dispatching process
        self.publisher: Publisher | None = None  # its connectors' reports, for every console

    @property
    def store(self) -> Store:
        assert self._store is not None, "the runtime is not started"
        return self._store

    def wake_dispatcher(self) -> None:
        self.wakeups.wake("dispatch")

    def wake_notifier(self) -> None:
        self.wakeups.wake("notify")

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            # What did start must end: the notification sender, say, waits for its STOP, and a process
            # leaving with it still running would never exit.
            await self.stop()
            raise

    async def _start(self) -> None:
        config = self.config
        self._store = open_store(config.server.database)
        await self._store.open()
        if config.redis.url:
            self.redis = Redis.from_url(config.redis.url, socket_timeout=2, socket_connect_timeout=2)
            self.wakeups = Wakeups(self.redis, config.redis.prefix, config.redis.url)
        await self._seed()
        self._follower = asyncio.create_task(self._follow())
        if self.dispatch:
            await self._start_dispatch()
        limiter = RedisRateLimiter(self.redis, config.redis.prefix) if self.redis is not None else None
        self.intake = Intake(
            self._store,
            self.wake_dispatcher,
            self.templates,
            self.groups,
            self.smartlinks,
            config.server.public_url or f"http://{config.server.host}:{config.server.port}",
            limiter,
            self.apps,
        )
        await self.wakeups.start()
        self.watchdog = self._watchdog()
        await self.watchdog.start()

    def _watchdog(self) -> Watchdog:
        store = self.store
        if not self.dispatch:
            return Watchdog(db_waits=store.waits)
        dispatcher = self.dispatcher
        return Watchdog(db_waits=store.waits, due=store.next_due, progress=lambda: dispatcher.progress)

    async def _start_dispatch(self) -> None:
        config, store = self.config, self.store
        self.connectors = build_connectors(config, self.apps, store)
        self.routes = build_routes(config, self.connectors)
        self.notifier = Notifier(store, self.services, config.notify)
        await self.notifier.start()
        self._started = [self.notifier]
        self.dispatcher = Dispatcher(
            store, self.services, self.routes, self.wake_notifier, groups=self.groups
        )
        await self.dispatcher.start()
        self._started.append(self.dispatcher)
        self.wakeups.on("dispatch", self.dispatcher.wake)
        self.wakeups.on("notify", self.notifier.wake)
        self.inbox = Inbox(store, self.services, self.wake_notifier)
        for connector in self.connectors.values():
            await connector.start(self.inbox)
        email = config.email
        if email.bounce_port and email.bounce_domain:
            from tidings.channels.email.bounces import BounceListener  # aiosmtpd only when configured

            self.bounces = BounceListener(
                store, self.services, self.wake_notifier,
                domain=email.bounce_domain, host=email.bounce_host, port=email.bounce_port,
                tls=email.bounce_tls(), max_sessions=email.bounce_max_sessions,
            )  # fmt: skip
            await self.bounces.start()
        # Every sending process runs the pass; on PostgreSQL one of them at a time does the work.
        self.purger = Purger(store, config.store)
        await self.purger.start()
        self.publisher = Publisher(store, self.process, self.connector_entries)
        await self.publisher.start()

    def connector_entries(self) -> list[ConnectorEntry]:
        """What this process's connectors say about themselves now (tidings.observe.cluster)."""
        return entries(self.connectors, self.routes)

    async def stop(self) -> None:
        """Stop every part cleanly, within STOP_GRACE_S: what is still waited on then (a database that
        does not answer, say) is logged and cut short. What a cut-short batch claimed comes back when
        its lease ends; the store still hands back what it can, each step bounded."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):  # closing the Redis listener waits on Redis
                await self.wakeups.stop()
        if self._follower is not None:
            self._follower.cancel()
            self._follower = None
        await self._finish_or_cut(asyncio.create_task(self._stop_parts(), name="stopping"))
        self._started = []
        if self.watchdog is not None:
            await self.watchdog.stop()
            self.watchdog = None
        if self._store is not None:
            await self._store.close()
            self._store = None
        if self.redis is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self.redis.aclose()
            self.redis = None

    async def _stop_parts(self) -> None:
        # Connectors stop with the dispatcher, not after it: a batch waiting for a connection that is
        # down must not hold the shutdown; what it had not sent goes back to the queue unspent. The
        # notifier finishes its posts meanwhile.
        stops = [
            part.stop() if isinstance(part, Dispatcher) else part.stop(grace_s=NOTIFY_GRACE_S)
            for part in self._started
        ]
        stops += [connector.stop() for connector in self.connectors.values()]
        if self.bounces is not None:
            stops.append(self.bounces.stop())
        if self.purger is not None:
            stops.append(self.purger.stop())
        if self.publisher is not None:  # its rows leave the store before the store closes
            stops.append(self.publisher.stop())
        for result in await asyncio.gather(*stops, return_exceptions=True):
            if isinstance(result, Exception):
                log.error("stopping: %s", result, exc_info=result)
        if self.inbox is not None:
            await self.inbox.stop()

    async def _finish_or_cut(self, stopping: "asyncio.Task[None]") -> None:
        """Wait for `stopping`; cut it short after STOP_GRACE_S, or after STUCK_STOP_S when a store call
        it waits for has been stuck since before (waiting longer would not help), saying what it waits on."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not stopping.done():
            await asyncio.wait([stopping], timeout=0.25)
            waited = loop.time() - started
            stuck = ACTIVITY.stuck(STUCK_AFTER_S, prefix="store.")
            if stopping.done() or (waited < STOP_GRACE_S and not (stuck and waited >= STUCK_STOP_S)):
                continue
            why = "a store call is stuck" if stuck else f"the parts did not finish in {STOP_GRACE_S:g} s"
            log.warning(
                "stopping: %s; cutting the stop short after %.1f s. What it waits on:\n%s\n  the tasks:\n%s",
                why,
                waited,
                describe_spans(ACTIVITY.spans()) or "  (nothing the watchdog follows)",
                describe_tasks(),
            )
            stopping.cancel()
            await asyncio.wait([stopping], timeout=1.0)
            return
        if not stopping.cancelled() and (exc := stopping.exception()) is not None:
            log.error("stopping failed: %s", exc, exc_info=exc)

    async def refresh(self) -> None:
        """Take a new snapshot of the catalogue (after a change here, or when another process made one)."""
        revision, rows = await self.store.load_catalogue()
        self._use(Snapshot.of(revision, rows))

    def _use(self, snapshot: Snapshot) -> None:
        self.catalogue = snapshot
        self.services.replace(snapshot.services())
        self.templates.replace(snapshot.templates())
        self.groups.replace(snapshot.groups())
        self.smartlinks.replace(snapshot.smartlinks())
        self.apps.replace(snapshot.apps())

    async def _seed(self) -> None:
        """Write the config file's entries into the catalogue; create the demo service when there is
        no service at all."""
        store = self.store
        _, rows = await store.load_catalogue()
        entries = config_entries(self.config, Snapshot.of(0, rows))
        await store.seed_catalogue(entries, drop_demo=bool(self.config.services))
        await self.refresh()
        if not self.catalogue.config.services:
            await store.change_catalogue(demo_entry(demo_service()), "add")
            await self.refresh()
        if not self.config.services:
            self.demo = self.services.by_id("svc-demo")
        # The file was checked on its own; an entry added through the admin API may clash with it.
        for path, message in check_catalogue(self.catalogue.config):
            log.warning("catalogue: %s: %s", dotted(path), message)

    async def _follow(self) -> None:
        """Notice changes other processes make to the catalogue; a change made here is seen at once."""
        while True:
            await asyncio.sleep(CATALOGUE_POLL_S)
            try:
                if await self.store.catalogue_revision() != self.catalogue.revision:
                    await self.refresh()
            except Exception as exc:  # the store being away is reported by /healthz; try again later
                log.warning("reading the catalogue failed: %s", exc)
