"""Every process's connectors in one place: what each process that runs connectors publishes into the
store, and how the console's health page reads it back.

A process with connectors (`tidings serve`, `tidings worker`) writes one row per connector every
PUBLISH_S: its `ConnectorReport` (`describe()`, built to be shown: provider words redacted, credentials
named, never their values) with the channels routed to it, as JSON (msgspec), under its identity (host,
pid, role, start time) and stamped by the store's clock. Its rows go when it stops cleanly; a process
that ended otherwise stops refreshing them, is shown as stale once STALE_AFTER_S passes (three missed
publications) and its rows are deleted FORGET_AFTER_S after the last (by whichever process publishes
next). An API-only process publishes nothing: it runs no connector.

The health page shows the answering process's own connectors from memory (what they say now, even when
the store is away) and every other process's from the store.
"""

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import msgspec

from tidings.observe.connectors import ConnectorReport, redact, report_of
from tidings.store.base import ProcessRecord, PublishedReport, Store
from tidings.tasks import cancel

log = logging.getLogger("tidings.observe")

PUBLISH_S = 5.0  # how often a process rewrites its rows
STALE_AFTER_S = 3 * PUBLISH_S  # rows older than this are a process that may be gone
FORGET_AFTER_S = 600.0  # rows older than this are deleted
UNPUBLISH_S = 2.0  # the most a stop waits to delete its rows
READ_S = 2.0  # the most the health page waits for the other processes' rows
UNREADABLE = "report unreadable (published by another version of Tidings?)"


class ConnectorEntry(msgspec.Struct, frozen=True):
    """One connector of one process, as published and as the health page shows it: its name (what
    `[routes]` calls it), its kind, the channels routed to it, and its report; a connector without
    `describe()` has `state` instead (what `health()` and `bind_states()` say)."""

    name: str
    kind: str
    channels: tuple[str, ...] = ()
    report: ConnectorReport | None = None
    state: str = ""


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(ConnectorEntry).decode


def identity(role: str, started_at: float) -> ProcessRecord:
    """This run of this process: the id is new each run, so a pid the system reuses is another process."""
    host, pid = socket.gethostname(), os.getpid()
    return ProcessRecord(f"{host}:{pid}:{uuid.uuid4().hex[:8]}", host, pid, role, started_at)


def connector_state(c: object) -> str:
    """What a connector without `describe()` says about itself: `health()` (up, requests in flight of
    its window, as /metrics reads it) and `bind_states()` when it has them."""
    parts: list[str] = []
    health = getattr(c, "health", None)
    if callable(health):
        h = health()
        parts.append(f"{'up' if getattr(h, 'up', False) else 'DOWN'}, in flight {getattr(h, 'in_flight', 0)}"
                     f" of {getattr(h, 'window', 0)}")  # fmt: skip
    binds = getattr(c, "bind_states", None)
    if callable(binds):
        parts += [f"{name}: {state}" for name, state in binds().items()]
    return "; ".join(parts) or "started (reports no state of its own)"


def entries(connectors: Mapping[str, object], routes: Mapping[str, object]) -> list[ConnectorEntry]:
    """What this process's connectors say now, by name."""
    found = []
    for name, c in sorted(connectors.items()):
        channels = tuple(ch for ch, routed in sorted(routes.items()) if routed is c)
        kind = str(getattr(c, "name", type(c).__name__))
        report = report_of(c)
        # (a connector without describe() has no redaction of its own: its words get the shapes')
        state = "" if report is not None else redact(connector_state(c))
        found.append(ConnectorEntry(name, kind, channels, report, state))
    return found


class Publisher:
    """Writes a process's entries into the store every `interval_s`, and deletes them on `stop`."""

    def __init__(
        self,
        store: Store,
        process: ProcessRecord,
        current: Callable[[], Sequence[ConnectorEntry]],
        interval_s: float = PUBLISH_S,
    ) -> None:
        self.store = store
        self.process = process
        self.current = current
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def start(self) -> None:
        """Publish once now (so the page is complete from the start), then every `interval_s`."""
        await self.publish()
        self._task = asyncio.create_task(self._run(), name="connector-reports")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        try:
            async with asyncio.timeout(UNPUBLISH_S):
                await self.store.unpublish_reports(self.process.id)
        except Exception as exc:  # stopping goes on; the rows go stale, then away
            log.warning(
                "could not delete this process's connector reports (%s): stale in %g s, deleted in %g s",
                exc,
                STALE_AFTER_S,
                FORGET_AFTER_S,
            )

    async def publish(self) -> bool:
        """One publication; False when the store refused it (logged once until it works again)."""
        rows = [(entry.name, _encode(entry).decode()) for entry in self.current()]
        try:
            await self.store.publish_reports(self.process, rows, FORGET_AFTER_S)
        except Exception as exc:  # the store may be away for a while; /readyz says so
            if not self._failing:
                log.warning("publishing the connector reports failed: %s", exc)
            self._failing = True
            return False
        if self._failing:
            log.info("publishing the connector reports works again")
        self._failing = False
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.publish()


@dataclass(frozen=True, slots=True)
class ProcessView:
    """One process's connectors on the health page. `age` is how long ago it published them (None:
    the answering process, read from memory)."""

    process: ProcessRecord
    connectors: tuple[ConnectorEntry, ...]
    age: float | None = None

    @property
    def own(self) -> bool:
        return self.age is None

    @property
    def stale(self) -> bool:
        return self.age is not None and self.age > STALE_AFTER_S

    @property
    def label(self) -> str:
        return f"{self.process.host}:{self.process.pid}"


def decode(row: PublishedReport) -> ConnectorEntry:
    """A published row's entry; one this version cannot read says so rather than hiding the process."""
    try:
        return _decode(row.body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ConnectorEntry(row.connector, "?", state=UNREADABLE)


def group(rows: Sequence[PublishedReport], mine: str | None = None) -> list[ProcessView]:
    """The rows by process (leaving out `mine`, this process's id), live ones first, then by role, host
    and pid."""
    by_process: dict[str, list[PublishedReport]] = {}
    for row in rows:
        if row.process.id != mine:
            by_process.setdefault(row.process.id, []).append(row)
    views = [
        ProcessView(found[0].process, tuple(decode(r) for r in found), min(r.age for r in found))
        for found in by_process.values()
    ]
    return sorted(views, key=lambda v: (v.stale, v.process.role, v.process.host, v.process.pid))


async def cluster(
    store: Store, process: ProcessRecord, own: Sequence[ConnectorEntry]
) -> tuple[list[ProcessView], str]:
    """Every process's connectors: this process's first (from memory, when it runs any), then the
    others' from the store; and why the others' are missing, "" when they are not."""
    views = [ProcessView(process, tuple(own))] if own else []
    try:
        async with asyncio.timeout(READ_S):
            rows = await store.published_reports()
    except Exception as exc:  # the store being away is /readyz's to say; show what this process knows
        return views, f"the other processes' reports could not be read: {str(exc) or type(exc).__name__}"
    return views + group(rows, process.id), ""


def channels_run(views: Sequence[ProcessView]) -> set[str]:
    """The channels some live process routes to a connector it runs."""
    return {ch for v in views if not v.stale for entry in v.connectors for ch in entry.channels}
