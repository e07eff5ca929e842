"""Everything one Tidings process runs, wired together: store, services, connectors, workers."""

import asyncio

from tidings.channels import build_connectors, build_routes
from tidings.channels.base import Connector
from tidings.config import Config
from tidings.dispatch.inbox import Inbox
from tidings.dispatch.worker import Dispatcher
from tidings.intake import Intake
from tidings.links.smart import Smartlink, SmartlinkRegistry
from tidings.notify.webhook import Notifier
from tidings.policy.contact import Group, GroupRegistry
from tidings.services import Service, ServiceRegistry, demo_service
from tidings.store import Store, open_store
from tidings.templates import Template, TemplateRegistry


class Runtime:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.services = ServiceRegistry()
        self.demo: Service | None = None
        self._store: Store | None = None
        self._started: list[Dispatcher | Notifier] = []
        self.connectors: dict[str, Connector] = {}
        self.inbox: Inbox | None = None

    @property
    def store(self) -> Store:
        assert self._store is not None, "the runtime is not started"
        return self._store

    async def start(self) -> None:
        config = self.config
        self._store = open_store(config.server.database)
        await self._store.open()
        if config.services:
            # Until the admin API exists the file is the whole truth: a service it no longer names
            # (the demo service included) stops authenticating.
            await self._store.save_services([Service.from_config(s) for s in config.services], replace=True)
        services = await self._store.load_services()
        if not services:
            services = [demo_service()]
            await self._store.save_services(services)
        if not config.services:
            self.demo = next((s for s in services if s.id == "svc-demo"), None)
        self.services.replace(services)
        self.connectors = build_connectors(config)
        self.routes = build_routes(config, self.connectors)
        self.notifier = Notifier(self._store, self.services, config.notify)
        await self.notifier.start()
        self._build_registries(services)
        self.dispatcher = Dispatcher(
            self._store, self.services, self.routes, self.notifier.wake, groups=self.groups
        )
        await self.dispatcher.start()
        self.inbox = Inbox(self._store, self.services, self.notifier.wake)
        for connector in self.connectors.values():
            await connector.start(self.inbox)
        self._started = [self.notifier, self.dispatcher]
        self.intake = Intake(
            self._store,
            self.dispatcher.wake,
            self.templates,
            self.groups,
            self.smartlinks,
            config.server.public_url or f"http://{config.server.host}:{config.server.port}",
        )

    async def stop(self) -> None:
        # Connectors stop with the dispatcher, not after it: a batch waiting for a connection that is
        # down must not hold the shutdown; what it had not sent goes back to the queue unspent.
        await asyncio.gather(
            *(part.stop() for part in self._started if isinstance(part, Dispatcher)),
            *(connector.stop() for connector in self.connectors.values()),
        )
        for part in reversed(self._started):
            if not isinstance(part, Dispatcher):
                await part.stop()
        self._started = []
        if self._store is not None:
            if self.inbox is not None:
                await self.inbox.stop()
            await self._store.close()
            self._store = None

    def _build_registries(self, services: list[Service]) -> None:
        """The configured templates, contact-policy groups and smart links, each under the service its
        `service` key names (by name or by id); entries for a service that does not exist are skipped."""
        owner = {s.name: s.id for s in services if s.name} | {s.id: s.id for s in services}
        c = self.config
        self.templates = TemplateRegistry(
            Template(t.id, owner[t.service], t.channel, t.text) for t in c.templates if t.service in owner
        )
        self.groups = GroupRegistry(
            Group(g.id, owner[g.service], g.kind, g.caps) for g in c.groups if g.service in owner
        )
        self.smartlinks = SmartlinkRegistry(
            Smartlink(k.linkid, owner[k.service], k.url, k.ios_url, k.android_url, k.expired_url)
            for k in c.smartlinks
            if k.service in owner
        )
