"""Services: the tenants of the API. Each has a key, a secret, sender ids and limits.

The registry is an in-memory index over the services table, rebuilt whenever the table changes, so
that authentication on the hot path is a dict lookup.
"""

import base64
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from tidings.config import ServiceConfig, decode_secret


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    key: str
    name: str = ""
    secret: str = ""
    active: bool = True
    notify_url: str = ""
    tps: int = 1000
    senderids: tuple[str, ...] = ()
    inbound_url: str = ""
    numbers: tuple[str, ...] = ()  # its long and short codes, as configured (with or without +)
    email_from: tuple[str, ...] = ()  # addresses and "@domain"s it may send email from
    secret_bytes: bytes = field(default=b"", repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "secret_bytes", decode_secret(self.secret) or b"")

    def __repr__(self) -> str:  # keys and secrets never reach a log line
        return f"Service(id={self.id!r}, name={self.name!r}, active={self.active})"

    @classmethod
    def from_config(cls, c: ServiceConfig) -> "Service":
        return cls(
            id=c.id,
            key=c.key,
            name=c.name,
            secret=c.secret,
            active=c.active,
            notify_url=c.notify_url,
            tps=c.tps,
            senderids=tuple(c.senderids),
            inbound_url=c.inbound_url,
            numbers=tuple(c.numbers),
            email_from=tuple(c.email_from),
        )


def demo_service() -> Service:
    """The service `tidings serve` creates on a first start without configured services."""
    return Service(
        id="svc-demo",
        key=secrets.token_hex(16),
        name="demo",
        secret=base64.b64encode(secrets.token_bytes(32)).decode(),
        senderids=("CONNCT",),
    )


class ServiceRegistry:
    def __init__(self, services: Iterable[Service] = ()) -> None:
        self.replace(services)

    def replace(self, services: Iterable[Service]) -> None:
        items = list(services)
        self._by_id = {s.id: s for s in items}
        self._by_key = {s.key: s for s in items}
        self._by_number = {n.removeprefix("+"): s for s in items for n in s.numbers}

    def all(self) -> list[Service]:
        return sorted(self._by_id.values(), key=lambda s: s.id)

    def by_key(self, key: str) -> Service | None:
        return self._by_key.get(key)

    def by_id(self, service_id: str) -> Service | None:
        return self._by_id.get(service_id)

    def by_number(self, number: str) -> Service | None:
        """The service owning a long or short code, however the SMSC wrote it (+, 00 or bare)."""
        digits = number.removeprefix("+")
        found = self._by_number.get(digits)
        if found is None and digits.startswith("00"):
            found = self._by_number.get(digits[2:])
        return found
