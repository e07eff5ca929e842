"""Connectors: one per remote protocol, behind `channels.base.Connector`, built by their provider kinds.

`KINDS` is the registry of provider kinds: each is one package (`sandbox/`, `smpp/`) declaring its
config table, its checks and its factory as a `ProviderKind`.
"""

from typing import TYPE_CHECKING, Any

from tidings.channels import sandbox, smpp
from tidings.channels.base import Connector
from tidings.channels.kind import ProviderKind, configured
from tidings.specs import names as channel_names

if TYPE_CHECKING:  # the config's schema reads KINDS, so importing it here at run time would be a cycle
    from tidings.config import Config

KINDS: tuple[ProviderKind[Any], ...] = (sandbox.KIND, smpp.KIND)

# The connector that serves a channel `[routes]` leaves out.
SANDBOX = sandbox.SandboxConnector.name


def build_connectors(config: "Config") -> dict[str, Connector]:
    """Every configured connector by its name: the sandbox, and one per `[[smsc]]`."""
    return {kind.name(entry): kind.build(entry) for kind in KINDS for entry in configured(config, kind)}


def connector_names(config: "Config") -> set[str]:
    """The names `[routes]` may give, without building anything."""
    return {kind.name(entry) for kind in KINDS for entry in configured(config, kind)}


def build_routes(config: "Config", connectors: dict[str, Connector]) -> dict[str, Connector]:
    """The connector serving each channel: the one `[routes]` names, else the sandbox."""
    return {channel: connectors[config.routes.get(channel, SANDBOX)] for channel in channel_names()}
