"""The sandbox provider kind: `[sandbox]`, one connector named "sandbox" that simulates every channel."""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from tidings.channels.kind import AddProblem, KeyPath, ProviderKind

if TYPE_CHECKING:
    from tidings.channels.sandbox.connector import SandboxConnector

__all__ = ["KIND", "NAME", "SandboxConfig"]

NAME = "sandbox"  # the one connector's name (SandboxConnector.name)


class SandboxConfig(msgspec.Struct, forbid_unknown_fields=True):
    delay_ms: int = 200


def check(entries: Sequence[tuple[KeyPath, SandboxConfig]], add: AddProblem) -> None:
    for where, entry in entries:
        if entry.delay_ms < 0:
            add((*where, "delay_ms"), "must be 0 or more")


# The connector is imported when it is built, not with the kind: reading a config needs only the
# settings, and the connector's imports (the connector reports among them) lead back to tidings.channels.
def build(settings: SandboxConfig) -> "SandboxConnector":
    from tidings.channels.sandbox.connector import SandboxConnector

    return SandboxConnector(settings.delay_ms)


def name(settings: SandboxConfig) -> str:
    return NAME


KIND = ProviderKind("sandbox", SandboxConfig, False, check, build, name)
