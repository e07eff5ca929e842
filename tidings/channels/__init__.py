"""Connectors: one per remote protocol, behind `channels.base.Connector`, built by their provider kinds.

`KINDS` is the registry of provider kinds: each is one package (`sandbox/`, `smpp/`) declaring its
config table, its checks and its factory as a `ProviderKind` (`email/` is `[[smtp]]`).
"""

from typing import TYPE_CHECKING, Any

from tidings.channels import email, sandbox, smpp
from tidings.channels.base import Connector
from tidings.channels.kind import ProviderKind, configured
from tidings.specs import SPECS

if TYPE_CHECKING:  # the config's schema reads KINDS, so importing it here at run time would be a cycle
    from tidings.apps import AppRegistry
    from tidings.config import Config
    from tidings.store.base import Store

KINDS: tuple[ProviderKind[Any], ...] = (sandbox.KIND, smpp.KIND, email.KIND)

# The connector that serves a channel `[routes]` leaves out.
SANDBOX = sandbox.NAME


# Connectors that serve apps rather than a config table: each reaches its providers through the apps'
# blocks (`[[apps]]`); push also keeps its devices in the store.
APP_CONNECTORS = ("push", "whatsapp", "messenger", "rcs")


def build_connectors(
    config: "Config", apps: "AppRegistry | None" = None, store: "Store | None" = None
) -> dict[str, Connector]:
    """Every configured connector by its name: the sandbox, one per `[[smsc]]`, and (given the apps
    and the store) the app connectors."""
    built: dict[str, Connector] = {
        kind.name(entry): kind.connector(entry, config)
        for kind in KINDS
        for entry in configured(config, kind)
    }
    if apps is not None and store is not None:
        from tidings.channels.meta.connector import MessengerConnector, WhatsAppConnector
        from tidings.channels.push.connector import PushConnector
        from tidings.channels.rcs.connector import RcsConnector

        delay = config.sandbox.delay_ms
        built[PushConnector.name] = PushConnector(apps, store, delay)
        built[WhatsAppConnector.name] = WhatsAppConnector(apps, delay, store=store)
        built[MessengerConnector.name] = MessengerConnector(apps, delay, store=store)
        built[RcsConnector.name] = RcsConnector(apps, delay)
    return built


def connector_names(config: "Config") -> set[str]:
    """The names `[routes]` may give, without building anything."""
    return {kind.name(entry) for kind in KINDS for entry in configured(config, kind)} | set(APP_CONNECTORS)


def build_routes(config: "Config", connectors: dict[str, Connector]) -> dict[str, Connector]:
    """The connector serving each channel: the one `[routes]` names, else the channel's own (the
    sandbox when that one is not built)."""
    return {
        spec.name: connectors.get(config.routes.get(spec.name, spec.connector)) or connectors[SANDBOX]
        for spec in SPECS
    }
