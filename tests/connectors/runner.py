"""The connector runner: one table of cases per provider, run by one shared runner against a local
stand-in that speaks the provider's wire format over a real loopback socket.

A case file (`cases_<provider>.py`) holds two tables and one adapter:

- `OUTBOUND`: `OutboundCase`s. Each names a message (an `Outbound`), the provider's scripted reply
  (whatever the stand-in understands), the exact requests the provider must have received (golden
  payloads, as the adapter normalises them to plain dicts), the expected result (`Accepted`: the
  `SendResult`'s ids and fallback outcome) or `Failure` (kind and code from the catalogue in
  `tidings.channels.base`, and the wait the provider asked for), and the receipts the inbox must get
  afterwards, as (status word, code) (each must name the message's `ext_id`, or a part's id, among its
  keys: that is what correlates it).
- `INBOUND`: `InboundCase`s. Each names the callbacks the provider makes (PDUs, HTTP posts, …), what
  the inbox must record, and the provider-visible answers (e.g. the deliver_sm_resp status).
- `PROVIDER`: a `Provider` whose `open(**config)` is a context manager yielding a `StandIn`: the
  stand-in server, already listening on 127.0.0.1, plus the connector configured against it (`config`
  is the case's overrides of the connector's settings). A `StandIn` says when the connector is
  connected (`ready`), takes a case's script (`script`), reports what it received in the golden form
  (`requests`) and makes the provider's callbacks (`callback`), returning the answer it got.

The runner talks to the connector only through the `Connector` protocol (`start(inbox)`, `send(batch)`,
`stop()`) and hands it a `RecordingInbox`, our own interface; the provider side is always the real wire
stand-in, never a mock of Tidings' code. Every case, outbound or inbound, captures every log record
under `tidings` at DEBUG and asserts that none of the provider's secrets appears in a log line, an
error description, anything the inbox received or the result's `exchange` (the provider attempt the
console shows, which a send that reached the provider must carry).

`open` may also be an async context manager: it is then entered on the case's own event loop, so a
stand-in served by an asyncio server (hypercorn, aiohttp) and what the connector needs opened on that
loop (a store) live beside the connector; a plain context manager is entered around the loop (a
stand-in with its own threads, as the SMPP fake).

Two optional parts of a `StandIn`, for providers whose addresses and answers hold run-time values:
- `placeholders()`: {name: value} for values only known once the stand-in runs (its origin with the
  ephemeral port, issued tokens). The runner fills the names into the message's address before sending
  and names the values in the result's ids, so a case is written with the names; an adapter uses the
  same names in its golden requests (a secret then appears in a golden only as its name).
- `async state()`: what the stand-in's side looks like once the send is done (e.g. the devices still
  registered), compared with the case's `state` when the case gives one.

Adding a provider: write `tests/connectors/cases_<provider>.py` with a `PROVIDER`, its `OUTBOUND` and
`INBOUND` tables and a `StandIn` for its wire (an HTTP stand-in for an HTTP API; its secrets: keys,
tokens, passwords), then add that module to `CASE_FILES` in `tests/connectors/test_cases.py`. Nothing
in this runner changes. `cases_smpp.py` is the worked example of a connector with its own socket;
`cases_webpush.py` and `cases_wns.py` of providers behind a shared connector: a push provider's case
file writes only a `PushWire` (its stand-in, the app block aimed at it, its golden form, secrets and
placeholders) and `serve`, and `PROVIDER = push_provider(name, serve, OUTBOUND)`; push_provider.py
opens the store, the app and the push connector per case. Each case gets a fresh stand-in and connector
and must finish within CASE_BUDGET_S; keep a case's waits short (the SMPP cases take about 0.1 s each,
the push cases about 0.15 s with their TLS stand-in).
"""

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from tidings.channels.base import Ack, Connector, FailureKind, Inbox, Outbound, SendError, SendResult
from tidings.statuses import Outcome

CASE_BUDGET_S = 10.0  # one case, start to stop
T = TypeVar("T")


@dataclass(frozen=True)
class Failure:
    """The expected failure of one send: its catalogue kind, the documented code (None: no code) and
    the wait the provider asked for (`SendError.retry_after`)."""

    kind: FailureKind
    code: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class Accepted:
    """The expected `SendResult`: the provider's id for the message (and each part's), and the outcome
    applied if no receipt comes (status word, code) with its delay; None: not checked."""

    ext_id: str | None
    part_ids: tuple[str, ...] = ()
    fallback: tuple[str, str] | None = None
    fallback_after_s: float | None = None


@dataclass(frozen=True)
class Receipt:
    """What the inbox got from `Inbox.receipt`: the keys, and the outcome as (status word, code)."""

    keys: tuple[str, ...]
    status: str
    code: str


@dataclass(frozen=True)
class Inbound:
    """What the inbox got from `Inbox.inbound` (an MO message)."""

    channel: str
    source: str
    destination: str
    text: str
    parts: int


@dataclass(frozen=True)
class OutboundCase:
    label: str
    message: Outbound
    reply: Any = None  # the stand-in's script; None: its default (accept)
    requests: Sequence[dict[str, Any]] = ()  # golden: exactly what the provider received, in order
    expect: Accepted | Failure = Accepted(None)
    receipts: Sequence[tuple[str, str]] = ()  # (status word, code) of each receipt the inbox must get
    config: dict[str, Any] = field(default_factory=dict)  # connector config overrides
    state: Any = None  # what the stand-in's `state()` must give afterwards; None: not checked


@dataclass(frozen=True)
class InboundCase:
    label: str
    callbacks: Sequence[Any]  # what the provider sends, in order, as the stand-in understands it
    inbox: Sequence[Receipt | Inbound]  # what the inbox must have recorded, in order
    answers: Sequence[Any] = ()  # the provider-visible answer to each callback (empty: not checked)
    ack: bool = True  # what the inbox answers when it stores an item
    config: dict[str, Any] = field(default_factory=dict)


class StandIn(Protocol):
    """One provider stand-in, listening on loopback, and a connector configured to use it. It may also
    have `placeholders()` and `state()` (see the module's docstring)."""

    @property
    def connector(self) -> Connector: ...

    @property
    def secrets(self) -> Sequence[str]:
        """What must never reach a log (read once the case has run: tokens issued during it count)."""

    async def ready(self) -> None:
        """Return once the started connector is connected to the stand-in (bounded in time)."""

    def script(self, reply: Any) -> None:
        """Make the stand-in answer the next requests as `reply` says."""

    def requests(self) -> list[dict[str, Any]]:
        """What the provider received, normalised to plain dicts (the golden form)."""

    async def callback(self, callback: Any) -> Any:
        """Make the provider call us with `callback`; return its answer as the provider sees it."""


OpenStandIn = Callable[..., AbstractContextManager[StandIn] | AbstractAsyncContextManager[StandIn]]


@dataclass(frozen=True)
class Provider:
    name: str
    open: OpenStandIn
    outbound: Sequence[OutboundCase]
    inbound: Sequence[InboundCase]


class RecordingInbox:
    """An `Inbox` that records what it is handed and acknowledges each item with `ack_with`."""

    def __init__(self, ack_with: bool = True) -> None:
        self.ack_with = ack_with
        self.items: list[Receipt | Inbound] = []

    def receipt(self, keys: list[str], outcome: Outcome, ack: Ack) -> None:
        self.items.append(Receipt(tuple(keys), outcome.status.word, outcome.code))
        ack(self.ack_with)

    def inbound(self, channel: str, source: str, destination: str, text: str, parts: int, ack: Ack) -> None:
        self.items.append(Inbound(channel, source, destination, text, parts))
        ack(self.ack_with)

    def receipts(self) -> list[Receipt]:
        return [item for item in self.items if isinstance(item, Receipt)]


_inbox_type_check: type[Inbox] = RecordingInbox  # RecordingInbox satisfies the protocol


class LogCapture(logging.Handler):
    """Every record under `tidings`, formatted with its arguments and traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def captured_logs() -> Iterator[LogCapture]:
    logger = logging.getLogger("tidings")
    handler, level = LogCapture(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def assert_no_secrets(secrets: Sequence[str], *texts: str) -> None:
    leaked = [secret for secret in secrets if any(secret in text for text in texts)]
    assert not leaked, f"secrets reached a log or an error: {leaked}"


async def wait_for(predicate: Callable[[], bool], limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s}s waiting for {what}")
        await asyncio.sleep(0.01)


def placeholders(stand_in: StandIn) -> dict[str, str]:
    """The stand-in's {name: run-time value}, empty when it has none."""
    get: Callable[[], dict[str, str]] | None = getattr(stand_in, "placeholders", None)
    return get() if get is not None else {}


def fill(text: str, names: dict[str, str]) -> str:
    """`text` with each placeholder name replaced by its value."""
    for name, value in names.items():
        text = text.replace(name, value)
    return text


def named(text: str, names: dict[str, str]) -> str:
    """`text` with each run-time value replaced by its name (longest values first: one may hold another)."""
    for name, value in sorted(names.items(), key=lambda item: -len(item[1])):
        if value:
            text = text.replace(value, name)
    return text


def _with_stand_in(
    opened: AbstractContextManager[StandIn] | AbstractAsyncContextManager[StandIn],
    use: Callable[[StandIn], Coroutine[Any, Any, T]],
) -> T:
    """Run `use` on a fresh event loop with the stand-in open: one with its own threads is opened around
    the loop, an async one inside it (bounded with the case)."""
    if isinstance(opened, AbstractAsyncContextManager):
        served = opened

        async def inside() -> T:
            async with asyncio.timeout(2 * CASE_BUDGET_S), served as stand_in:
                return await use(stand_in)

        return asyncio.run(inside())
    with opened as stand_in:
        return asyncio.run(use(stand_in))


def _check_result(case: OutboundCase, result: SendResult | SendError, names: dict[str, str]) -> None:
    expect = case.expect
    if isinstance(expect, Failure):
        assert isinstance(result, SendError), f"{case.label}: expected {expect}, got {result}"
        got = (result.kind, result.code, result.retry_after)
        assert got == (expect.kind, expect.code, expect.retry_after), result.description
    else:
        assert isinstance(result, SendResult), f"{case.label}: expected a result, got {result!r}"
        ext_id = None if result.ext_id is None else named(result.ext_id, names)
        part_ids = tuple(named(part, names) for part in result.part_ids)
        assert (ext_id, part_ids) == (expect.ext_id, expect.part_ids)
        if expect.fallback is not None:
            assert result.receipt is not None
            assert (result.receipt.status.word, result.receipt.code) == expect.fallback
        if expect.fallback_after_s is not None:
            assert result.receipt_after_s == expect.fallback_after_s


@dataclass(frozen=True)
class _Sent:
    """What one outbound case gave, read before the stand-in closed."""

    results: list[SendResult | SendError]
    items: list[Receipt | Inbound]
    received: list[dict[str, Any]]
    secrets: list[str]
    names: dict[str, str]
    state: Any


def run_outbound(provider: Provider, case: OutboundCase) -> None:
    """Send the case's message through a fresh connector and stand-in; check what the provider got,
    what the connector answered, the receipts that followed and the logs."""
    with captured_logs() as logs:
        sent = _with_stand_in(provider.open(**case.config), lambda stand_in: _outbound(stand_in, case))
    results, items = sent.results, sent.items
    assert sent.received == list(case.requests), f"{case.label}: the provider received {sent.received}"
    _check_result(case, results[0], sent.names)
    if case.state is not None:
        assert sent.state == case.state, f"{case.label}: afterwards the stand-in holds {sent.state}"
    outcomes = [(r.status, r.code) for r in items if isinstance(r, Receipt)]
    assert outcomes == list(case.receipts), f"{case.label}: the inbox got {items}"
    if isinstance(results[0], SendResult) and case.receipts:
        ext_id = results[0].ext_id
        for receipt in (r for r in items if isinstance(r, Receipt)):
            assert ext_id in receipt.keys or set(results[0].part_ids) & set(receipt.keys), (
                f"{case.label}: receipt keys {receipt.keys} do not name {ext_id}"
            )
    described = [r.description for r in results if isinstance(r, SendError)]
    # What reached the provider is the message's provider attempt (the console shows it): the result
    # carries it, and it holds no secret either.
    wire = [
        text for r in results if r.exchange is not None for text in (r.exchange.request, r.exchange.answer)
    ]
    if sent.received:
        assert wire, f"{case.label}: the provider got {len(sent.received)} request(s); the result says none"
    assert_no_secrets(sent.secrets, *logs.lines, *described, repr(items), *wire)


async def _outbound(stand_in: StandIn, case: OutboundCase) -> _Sent:
    stand_in.script(case.reply)
    inbox = RecordingInbox()
    connector = stand_in.connector
    names = placeholders(stand_in)
    message = dataclasses.replace(case.message, address=fill(case.message.address, names))
    async with asyncio.timeout(CASE_BUDGET_S):
        await connector.start(inbox)
        try:
            await stand_in.ready()
            results = await connector.send([message])
            assert len(results) == 1
            await wait_for(lambda: len(inbox.receipts()) >= len(case.receipts), 5, "the receipts")
        finally:
            await connector.stop()
    get_state: Callable[[], Awaitable[Any]] | None = getattr(stand_in, "state", None)
    state = await get_state() if case.state is not None and get_state is not None else None
    names = placeholders(stand_in)  # tokens issued during the send have their names now
    return _Sent(results, list(inbox.items), stand_in.requests(), list(stand_in.secrets), names, state)


def run_inbound(provider: Provider, case: InboundCase) -> None:
    """Make the stand-in call a fresh connector with the case's callbacks; check what the inbox got,
    what the provider was answered and the logs."""
    inbox = RecordingInbox(case.ack)
    with captured_logs() as logs:
        answers, secrets = _with_stand_in(
            provider.open(**case.config), lambda stand_in: _inbound(stand_in, inbox, case)
        )
    assert inbox.items == list(case.inbox), f"{case.label}: the inbox got {inbox.items}"
    if case.answers:
        assert answers == list(case.answers)
    assert_no_secrets(secrets, *logs.lines, repr(inbox.items))


async def _inbound(
    stand_in: StandIn, inbox: RecordingInbox, case: InboundCase
) -> tuple[list[Any], list[str]]:
    connector = stand_in.connector
    async with asyncio.timeout(CASE_BUDGET_S):
        await connector.start(inbox)
        try:
            await stand_in.ready()
            answers = [await stand_in.callback(callback) for callback in case.callbacks]
        finally:
            await connector.stop()
    return answers, list(stand_in.secrets)
