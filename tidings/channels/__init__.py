"""Connectors: one per remote protocol, behind `channels.base.Connector`, chosen by an explicit table."""

from tidings.channels.base import Connector
from tidings.channels.sandbox import SandboxConnector
from tidings.channels.smpp import SmppConnector
from tidings.config import Config
from tidings.specs import names as channel_names

# The connector kinds, and how the configuration names their instances.
SANDBOX = "sandbox"


def build_connectors(config: Config) -> dict[str, Connector]:
    """Every configured connector by its name: the sandbox, and one per `[[smsc]]`."""
    connectors: dict[str, Connector] = {SANDBOX: SandboxConnector(config.sandbox.delay_ms)}
    for smsc in config.smsc:
        connectors[smsc.name] = SmppConnector(smsc)
    return connectors


def build_routes(config: Config, connectors: dict[str, Connector]) -> dict[str, Connector]:
    """The connector serving each channel: the one `[routes]` names, else the sandbox."""
    return {channel: connectors[config.routes.get(channel, SANDBOX)] for channel in channel_names()}
