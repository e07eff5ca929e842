"""The SMPP provider kind: `[[smsc]]`, one connector per entry, named by its `name`."""

from tidings.channels.kind import ProviderKind
from tidings.channels.smpp.connector import SmppConnector
from tidings.channels.smpp.settings import SmscConfig, check

__all__ = ["KIND", "SmppConnector", "SmscConfig"]


def name(settings: SmscConfig) -> str:
    return settings.name


KIND = ProviderKind("smsc", SmscConfig, True, check, SmppConnector, name)
