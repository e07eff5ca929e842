"""Prometheus metrics: what every process counts, and how `/metrics` reads them.

The hot paths (accept, the dispatcher's status changes, notification results) add to plain dicts
(`Metrics.accepted`, `status`, `notified`): a dict increment per message, no lock. A flush moves those
sums into the Prometheus counters, once a second and before every scrape, so a scrape always sees every
count made before it. Request and commit latencies are observed directly (once per request, once per
commit). Gauges of a process's own state (connectors, notifications in flight) are sampled at the flush;
store-wide ones (queue depth per lane, notifications waiting per receiver) are read from the store at the
scrape.

Processes: one process (`tidings serve`, `tidings worker`) keeps its metrics in memory and its
`/metrics` shows them. `serve --workers N` shares one port between N processes, so a scrape reaches any
one of them: there the metrics live in prometheus-client's multiprocess mode (a directory of memory-mapped
files, `PROMETHEUS_MULTIPROC_DIR`, made by the parent when unset) and every process's `/metrics` shows the
sum of all of them. A process started with PROMETHEUS_MULTIPROC_DIR set uses that mode too, so a
`tidings worker` on the same host can add its counts to the API's `/metrics`. See docs/operations.md.
"""

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import values as prom_values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from tidings.statuses import Status
from tidings.tasks import cancel

if TYPE_CHECKING:
    from tidings.runtime import Runtime
    from tidings.store.base import NewMessage

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Receivers (scheme://host[:port] of notify URLs) named in labels, per process, first come first named;
# the rest are counted as "other", so a service that sends to many URLs cannot grow the label set.
MAX_RECEIVERS = 20
MAX_CREDENTIALS = 50  # per connector: credential expiry series (one per app and provider)
OTHER = "other"
FLUSH_S = 1.0
UNMATCHED = "(unmatched)"  # a request no route took: 404, 405

REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# The status a message moves to, as the counter that counts it ("" for those not counted).
_KIND = {
    Status.QUEUED: "",
    Status.SUBMITTED: "sent",
    Status.DELIVERED: "delivered",
    Status.READ: "read",
    Status.UNDELIVERED: "failed",
    Status.FAILED: "failed",
    Status.EXPIRED: "failed",
    Status.BOUNCE: "failed",
    Status.CLICKED: "",
}
_KIND_BY_WORD = {status.word: kind for status, kind in _KIND.items()}


@dataclass(frozen=True, slots=True)
class ConnectorHealth:
    """What a connector with a connection of its own says about it (`health()`): whether it can send
    now, how many requests await the provider's answer, and how many may."""

    up: bool
    in_flight: int
    window: int


class _Probed(Protocol):
    def health(self) -> ConnectorHealth: ...


class _Families:
    """The Prometheus metrics of one process, made once its mode is known (the value class of
    prometheus-client is chosen when a metric is made)."""

    def __init__(self, multiprocess: bool) -> None:
        own = None if multiprocess else CollectorRegistry(auto_describe=True)
        self.registry = CollectorRegistry(auto_describe=True) if multiprocess else own
        r = own
        labels = ["channel", "service"]
        self.messages = {
            "accepted": Counter(
                "tidings_messages_accepted", "Messages accepted (one per address).", labels, registry=r
            ),
            "sent": Counter(
                "tidings_messages_sent", "Messages handed to a provider (Submitted).", labels, registry=r
            ),
            "delivered": Counter(
                "tidings_messages_delivered", "Messages reported Delivered.", labels, registry=r
            ),
            "read": Counter("tidings_messages_read", "Messages reported Read.", labels, registry=r),
            "failed": Counter(
                "tidings_messages_failed",
                "Messages that ended in a failure (status: Failed, Un-Delivered, Expired, Bounce).",
                [*labels, "status"],
                registry=r,
            ),
        }
        self.requests = Counter(
            "tidings_http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "tidings_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, per route template.",
            ["method", "route"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.commit = Histogram(
            "tidings_store_commit_seconds",
            "Time of one store transaction, its commit included (SQLite: one group commit).",
            ["backend"],
            buckets=COMMIT_BUCKETS,
            registry=r,
        )
        self.notified = Counter(
            "tidings_notifications",
            "Notification posts by result: sent (2xx), retry (to be tried again), failed (given up).",
            ["receiver", "result"],
            registry=r,
        )
        self.notify_in_flight = Gauge(
            "tidings_notifications_in_flight",
            "Notifications this process holds for a receiver: being posted or waiting for a slot.",
            ["receiver"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.notify_pending = Gauge(
            "tidings_notifications_pending",
            "Notifications waiting in the store to be posted (due or retrying), per receiver.",
            ["receiver"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.queue = Gauge(
            "tidings_queue_depth",
            "Messages waiting in the store for work, per lane (0: receipts due; 1-3: priorities).",
            ["lane"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.connector_up = Gauge(
            "tidings_connector_up",
            "1 when the connector can send now (SMPP: a bind is up); with several processes, the lowest.",
            ["connector", "kind"],
            registry=r,
            multiprocess_mode="livemin",
        )
        self.connector_in_flight = Gauge(
            "tidings_connector_in_flight",
            "Requests awaiting the provider's answer (SMPP: the window in use).",
            ["connector"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.connector_window = Gauge(
            "tidings_connector_window",
            "The most requests that may await the provider's answer (SMPP: window x binds).",
            ["connector"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.credential_expiry = Gauge(
            "tidings_connector_credential_expiry_timestamp_seconds",
            "When the credential a connector holds runs out (OAuth token, JWT); none for static ones.",
            ["connector", "credential"],
            registry=r,
            multiprocess_mode="livemin",
        )
        self.backoff_until = Gauge(
            "tidings_connector_backoff_until_timestamp_seconds",
            "Until when the provider asked the connector to slow down (0: it never did).",
            ["connector"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.last_error = Gauge(
            "tidings_connector_last_error_timestamp_seconds",
            "When the connector's last send failed (0: none has).",
            ["connector"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.attention = Gauge(
            "tidings_connector_attention",
            "1 when a person has to act: a credential refused, or a config failure since the last success.",
            ["connector"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.started = Gauge(
            "tidings_process_start_time_seconds",
            "When this process started, in seconds since the epoch.",
            ["role"],
            registry=r,
            multiprocess_mode="liveall",
        )
        self.latency_of: dict[tuple[str, str], Histogram] = {}
        self.commit_of: dict[str, Histogram] = {}
        if multiprocess:
            assert self.registry is not None
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        else:
            ProcessCollector(registry=r)


class Metrics:
    """This process's metrics. The counting methods are safe to call before `start` (and in processes
    that never start it, such as tests that build a runtime themselves): the sums wait in dicts."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str, str], int] = {}
        self._requests: dict[tuple[str, str, int], int] = {}
        self._notified: dict[tuple[str, str], int] = {}
        self._receivers: dict[str, str] = {}
        self._pending_seen: set[str] = set()
        self._families: _Families | None = None
        self.multiprocess = False

    # -- the process ---------------------------------------------------------------------------------

    def start(self, role: str) -> None:
        """Make the metrics, in multiprocess mode when PROMETHEUS_MULTIPROC_DIR names a directory."""
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # prometheus-client picks its value class when imported; the variable may have been set since
        # (by `serve --workers N`, before it forked this process).
        prom_values.ValueClass = prom_values.get_value_class()  # type: ignore[no-untyped-call]
        # A `_created` series per counter would double a scrape, for little use.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self._families = _Families(self.multiprocess)
        self._families.started.labels(role).set(time.time())

    @property
    def started(self) -> bool:
        return self._families is not None

    # -- counting (hot paths) --------------------------------------------------------------------------

    def accepted(self, messages: "Sequence[NewMessage]") -> None:
        counts = self._counts
        for m in messages:
            key = ("accepted", m.channel, m.service_id, "")
            counts[key] = counts.get(key, 0) + 1

    def status(self, channel: str, service_id: str, status: Status) -> None:
        """A message moved to `status` (the dispatcher's changes and every store notice pass here)."""
        word = status.word  # (an Enum member hashes in Python: its word is a cheaper key)
        kind = _KIND_BY_WORD[word]
        if kind:
            key = (kind, channel, service_id, word if kind == "failed" else "")
            self._counts[key] = self._counts.get(key, 0) + 1

    def notified(self, receiver: str, result: str) -> None:
        """A notification post's result for `receiver` (`store.base.receiver_of`): sent, retry, failed."""
        key = (self._receiver(receiver), result)
        self._notified[key] = self._notified.get(key, 0) + 1

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        f = self._families
        if f is not None:
            # A labelled child is looked up (with its checks and lock) once, not per observation.
            child = f.latency_of.get((method, route))
            if child is None:
                child = f.latency_of[(method, route)] = f.latency.labels(method, route)
            child.observe(seconds)

    def commit(self, backend: str, seconds: float) -> None:
        f = self._families
        if f is not None:
            child = f.commit_of.get(backend)
            if child is None:
                child = f.commit_of[backend] = f.commit.labels(backend)
            child.observe(seconds)

    def _receiver(self, key: str) -> str:
        label = self._receivers.get(key)
        if label is None:
            label = key if len(self._receivers) < MAX_RECEIVERS else OTHER
            self._receivers[key] = label
        return label

    # -- flushing and sampling -------------------------------------------------------------------------

    def flush(self) -> None:
        """Move the sums counted since the last flush into the Prometheus counters."""
        f = self._families
        if f is None:
            return
        counts, self._counts = self._counts, {}
        for (kind, channel, service, status), n in counts.items():
            family = f.messages[kind]
            (family.labels(channel, service, status) if status else family.labels(channel, service)).inc(n)
        requests, self._requests = self._requests, {}
        for (method, route, code), n in requests.items():
            f.requests.labels(method, route, str(code)).inc(n)
        notified, self._notified = self._notified, {}
        for (receiver, result), n in notified.items():
            f.notified.labels(receiver, result).inc(n)

    def sample(self, runtime: "Runtime") -> None:
        """Set the gauges of this process's own state: its connectors and its notifications in hand."""
        from tidings.observe.connectors import report_of  # (it imports this module)

        f = self._families
        if f is None or not runtime.dispatch:
            return
        for connector in runtime.connectors.values():
            health = _health(connector)
            up = health is None or health.up  # a connector without a connection of its own is always up
            label = connector.label
            f.connector_up.labels(label, connector.name).set(1 if up else 0)
            if health is not None:
                f.connector_in_flight.labels(label).set(health.in_flight)
                f.connector_window.labels(label).set(health.window)
            report = report_of(connector)
            if report is None:
                continue
            for credential in report.credentials[:MAX_CREDENTIALS]:
                if credential.expires_at is not None:
                    f.credential_expiry.labels(label, credential.name).set(credential.expires_at)
            f.backoff_until.labels(label).set(report.rate.backoff_until or 0)
            f.last_error.labels(label).set(report.last_error.at if report.last_error else 0)
            f.attention.labels(label).set(1 if report.attention else 0)
        notifier = getattr(runtime, "notifier", None)
        if notifier is not None:
            held: dict[str, int] = dict.fromkeys(self._receivers.values(), 0)
            for key, n in notifier.held().items():
                label = self._receiver(key)
                held[label] = held.get(label, 0) + n
            for label, n in held.items():
                f.notify_in_flight.labels(label).set(n)

    def _store_wide(self, lanes: dict[int, int], pending: Iterable[tuple[str, int]]) -> None:
        from tidings.store.base import receiver_of  # (the store imports this module)

        f = self._families
        assert f is not None
        for lane in range(4):
            f.queue.labels(str(lane)).set(lanes.get(lane, 0))
        # Every receiver named so far is shown, at 0 when nothing waits for it.
        by_label: dict[str, int] = dict.fromkeys({*self._pending_seen, *self._receivers.values()}, 0)
        for url, n in pending:
            label = self._receiver(receiver_of(url))
            by_label[label] = by_label.get(label, 0) + n
        self._pending_seen.update(by_label)
        for label, n in by_label.items():
            f.notify_pending.labels(label).set(n)

    async def follow(self, runtime: "Runtime") -> None:
        """Flush and sample once a second, so other processes' scrapes (multiprocess mode) and gauges
        stay current."""
        while True:
            self.flush()
            self.sample(runtime)
            await asyncio.sleep(FLUSH_S)

    @contextlib.asynccontextmanager
    async def following(self, runtime: "Runtime") -> AsyncIterator[None]:
        """`follow` for as long as the block runs, and a last flush after it."""
        task = asyncio.create_task(self.follow(runtime), name="metrics")
        try:
            yield
        finally:
            await cancel(task)
            self.flush()

    async def scrape(self, runtime: "Runtime") -> bytes:
        """The text a scrape gets: every count so far, the gauges as they are now."""
        f = self._families
        if f is None:
            self.start("serve")
            f = self._families
            assert f is not None
        self.flush()
        self.sample(runtime)
        with contextlib.suppress(Exception):  # the store being away is /readyz's to say, not a scrape's
            async with asyncio.timeout(2.0):
                lanes, pending = await runtime.store.backlog()
                self._store_wide(lanes, pending)
        assert f.registry is not None
        return generate_latest(f.registry)


def prepare_multiprocess() -> str | None:
    """For `serve --workers N`, before it forks: the directory every process's metrics go to
    (PROMETHEUS_MULTIPROC_DIR, set to a new temporary directory when unset). Returns the directory made
    here, for `finish_multiprocess` to remove; None when the variable named one already."""
    if os.environ.get(MULTIPROC_ENV):
        return None
    made = tempfile.mkdtemp(prefix="tidings-metrics-")
    os.environ[MULTIPROC_ENV] = made
    return made


def process_ended(pid: int) -> None:
    """A process of `serve --workers N` ended: its gauges leave the sums (counters stay counted)."""
    if os.environ.get(MULTIPROC_ENV):
        mark_process_dead(pid)  # type: ignore[no-untyped-call]


def finish_multiprocess(made: str | None) -> None:
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)


def _health(connector: object) -> ConnectorHealth | None:
    probe = getattr(connector, "health", None)
    return probe() if callable(probe) else None


METRICS = Metrics()
