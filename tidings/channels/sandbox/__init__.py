"""The sandbox provider kind: `[sandbox]`, one connector named "sandbox" that simulates every channel."""

from collections.abc import Sequence

import msgspec

from tidings.channels.kind import AddProblem, KeyPath, ProviderKind
from tidings.channels.sandbox.connector import SandboxConnector, outcome_for

__all__ = ["KIND", "SandboxConfig", "SandboxConnector", "outcome_for"]


class SandboxConfig(msgspec.Struct, forbid_unknown_fields=True):
    delay_ms: int = 200


def check(entries: Sequence[tuple[KeyPath, SandboxConfig]], add: AddProblem) -> None:
    for where, entry in entries:
        if entry.delay_ms < 0:
            add((*where, "delay_ms"), "must be 0 or more")


def build(settings: SandboxConfig) -> SandboxConnector:
    return SandboxConnector(settings.delay_ms)


def name(settings: SandboxConfig) -> str:
    return SandboxConnector.name


KIND = ProviderKind("sandbox", SandboxConfig, False, check, build, name)
