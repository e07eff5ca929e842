"""The `[[smsc]]` settings of an SMPP connection and their checks."""

from collections.abc import Sequence

import msgspec

from tidings.channels.kind import AddProblem, KeyPath

BINDS = ("transceiver", "transmitter+receiver")
LONG_MESSAGES = ("udh", "sar", "payload")


class SmscConfig(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    bind: str = "transceiver"  # or "transmitter+receiver"
    binds: int = 1  # connections of that kind, sharing the load
    window: int = 64
    tps: float = 0.0  # per connection; 0 = unlimited
    source_ton: int | None = None  # None: chosen by the sender id's form
    source_npi: int | None = None
    dest_ton: int = 1
    dest_npi: int = 1
    dlt_tlv: int | None = None
    long_messages: str = "udh"  # or "sar", or "payload" (one submit_sm with message_payload)
    enquire_link_s: float = 30.0  # 0: no keep-alive
    response_timeout_s: float = 10.0
    reconnect_max_s: float = 30.0
    dlr_timeout_s: float = 172_800.0  # no receipt by then: Un-Delivered 7518 (unknown)


def check(entries: Sequence[tuple[KeyPath, SmscConfig]], add: AddProblem) -> None:
    names: set[str] = set()
    for where, c in entries:
        if not c.name.strip() or c.name == "sandbox":
            add((*where, "name"), "must be a non-empty name other than 'sandbox'")
        elif c.name in names:
            add((*where, "name"), f"duplicate smsc name {c.name!r}")
        names.add(c.name)
        _check_entry(where, c, add)


def _check_entry(where: KeyPath, c: SmscConfig, add: AddProblem) -> None:
    if not 1 <= c.port <= 65535:
        add((*where, "port"), f"must be between 1 and 65535, got {c.port}")
    # SMPP 3.4 field sizes, NUL included: longer values cannot be sent at all.
    sized = [
        ("system_id", c.system_id, 16),
        ("password", c.password, 9),
        ("system_type", c.system_type, 13),
    ]
    for key, value, size in sized:
        if len(value.encode("latin-1", "replace")) >= size:
            add((*where, key), f"is longer than SMPP 3.4 allows ({size - 1} characters)")
    if c.bind not in BINDS:
        add((*where, "bind"), f"must be one of {', '.join(BINDS)}")
    if c.long_messages not in LONG_MESSAGES:
        add((*where, "long_messages"), f"must be one of {', '.join(LONG_MESSAGES)}")
    for key, count in (("binds", c.binds), ("window", c.window)):
        if count < 1:
            add((*where, key), "must be at least 1")
    for key, number in (("tps", c.tps), ("enquire_link_s", c.enquire_link_s)):
        if number < 0:
            add((*where, key), "must be 0 or more")
    timeouts = [
        ("response_timeout_s", c.response_timeout_s),
        ("reconnect_max_s", c.reconnect_max_s),
        ("dlr_timeout_s", c.dlr_timeout_s),
    ]
    for key, number in timeouts:
        if number <= 0:
            add((*where, key), "must be greater than 0")
    octets = [("source_ton", c.source_ton), ("source_npi", c.source_npi)]
    octets += [("dest_ton", c.dest_ton), ("dest_npi", c.dest_npi)]
    for key, octet in octets:
        if octet is not None and not 0 <= octet <= 255:
            add((*where, key), "must be between 0 and 255")
    if c.dlt_tlv is not None and not 0x1400 <= c.dlt_tlv <= 0x3FFF:
        add((*where, "dlt_tlv"), "must be a vendor-specific TLV tag, 0x1400 to 0x3FFF")
