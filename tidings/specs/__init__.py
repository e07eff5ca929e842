"""The channel registry: one `ChannelSpec` per channel, and the only list of channels there is.

Adding a channel: write its request object (`tidings/schema/<channel>.py`, an `Addressing`), declare its
spec in `tidings/specs/<channel>.py` (codes, category, request), and add it to `SPECS` below. Routes,
config checks, the v1 decoder, the dispatcher, the sandbox and the contact policy all read it from here.
"""

from tidings.specs.base import ChannelSpec
from tidings.specs.email import EMAIL
from tidings.specs.messenger import MESSENGER
from tidings.specs.push import PUSH
from tidings.specs.rcs import RCS
from tidings.specs.sms import SMS
from tidings.specs.whatsapp import WHATSAPP

SPECS: tuple[ChannelSpec, ...] = (SMS, PUSH, WHATSAPP, MESSENGER, RCS, EMAIL)

_BY_NAME = {s.name: s for s in SPECS}
_BY_SPELLING = {n: s for s in SPECS for n in (s.name, *s.aliases)}


def names() -> tuple[str, ...]:
    """Every channel's name, in declaration order."""
    return tuple(_BY_NAME)


def spec(name: str) -> ChannelSpec:
    """The spec of a channel as stored with a message (KeyError for one no spec declares)."""
    return _BY_NAME[name]


def find(name: str) -> ChannelSpec | None:
    """The spec of a channel as stored with a message, or None."""
    return _BY_NAME.get(name)


def by_delivery_channel(value: str) -> ChannelSpec | None:
    """The spec a request's `deliverychannel` names (its name or an alias, any case), or None."""
    return _BY_SPELLING.get(value.strip().lower())


__all__ = ["SPECS", "ChannelSpec", "by_delivery_channel", "find", "names", "spec"]
