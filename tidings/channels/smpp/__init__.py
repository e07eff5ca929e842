"""The SMPP provider kind: `[[smsc]]`, one connector per entry, named by its `name`."""

from typing import TYPE_CHECKING

from tidings.channels.kind import ProviderKind
from tidings.channels.smpp.settings import SmscConfig, check

if TYPE_CHECKING:
    from tidings.channels.smpp.connector import SmppConnector

__all__ = ["KIND", "SmscConfig"]


def name(settings: SmscConfig) -> str:
    return settings.name


# The connector is imported when one is built (as the SMTP kind's): see tidings.channels.sandbox.
def build(settings: SmscConfig) -> "SmppConnector":
    from tidings.channels.smpp.connector import SmppConnector

    return SmppConnector(settings)


KIND = ProviderKind("smsc", SmscConfig, True, check, build, name)
