"""Connectors: one per remote protocol, behind `channels.base.Connector`, chosen by an explicit table."""

from collections.abc import Callable

from tidings.channels.base import Connector
from tidings.channels.sandbox import SandboxConnector
from tidings.config import Config

# connector name -> how to build it from the configuration
REGISTRY: dict[str, Callable[[Config], Connector]] = {
    "sandbox": lambda config: SandboxConnector(config.sandbox.delay_ms),
}


def build_routes(config: Config) -> dict[str, Connector]:
    """The connector serving each channel. Every channel goes to the sandbox until routes exist."""
    sandbox = REGISTRY["sandbox"](config)
    return {"sms": sandbox}
