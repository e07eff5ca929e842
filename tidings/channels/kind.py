"""What a provider kind (the sandbox, SMPP, …) tells the rest of Tidings about itself.

A kind's package declares one `ProviderKind`, and `tidings.channels.KINDS` lists it: the config file
reads its table with the kind's settings Struct, `check-config` runs its checks, and the composition
root builds its connectors with its factory. Nothing else names a kind.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from tidings.channels.base import Connector

KeyPath = tuple[str | int, ...]
AddProblem = Callable[[KeyPath, str], None]  # report a problem at a key path (the file adds the line)
S = TypeVar("S", bound=msgspec.Struct)


@dataclass(frozen=True)
class ProviderKind(Generic[S]):
    key: str  # its key in the config file: `[key]` when one, `[[key]]` when many
    settings: type[S]
    many: bool  # an array of tables, one connector per entry; else one table, one connector
    check: Callable[[Sequence[tuple[KeyPath, S]], AddProblem], None]  # every entry, with its key path
    build: Callable[[S], Connector]
    name: Callable[[S], str]  # the connector's name, as `[routes]` says it
    # The factory given the whole config too, for a kind whose connectors read another table as well
    # (`[[smtp]]` reads `[email]`); `build` when None.
    build_in: Callable[[S, Any], Connector] | None = None

    def connector(self, settings: S, config: Any) -> Connector:
        return self.build(settings) if self.build_in is None else self.build_in(settings, config)


def configured(config: Any, kind: ProviderKind[Any]) -> list[Any]:
    """The kind's entries in a config (its field is named by the kind's key)."""
    value = getattr(config, kind.key)
    return list(value) if kind.many else [value]
