"""The connector runner: one table of cases per provider, run by one shared runner against a local
stand-in that speaks the provider's wire format over a real loopback socket.

A case file (`cases_<provider>.py`) holds two tables and one adapter:

- `OUTBOUND`: `OutboundCase`s. Each names a message (an `Outbound`), the provider's scripted reply
  (whatever the stand-in understands), the exact requests the provider must have received (golden
  payloads, as the adapter normalises them to plain dicts), the expected result (`Accepted`: the
  `SendResult`'s ids and fallback outcome) or `Failure` (kind and code from the catalogue in
  `tidings.channels.base`), and the receipts the inbox must get afterwards, as (status word, code)
  (each must name the message's `ext_id`, or a part's id, among its keys: that is what correlates it).
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
error description or anything the inbox received.

Adding a provider: write `tests/connectors/cases_<provider>.py` with a `PROVIDER`, its `OUTBOUND` and
`INBOUND` tables and a `StandIn` for its wire (an HTTP stand-in for an HTTP API; its secrets: keys,
tokens, passwords), then add that module to `CASE_FILES` in `tests/connectors/test_cases.py`. Nothing
in this runner changes. `cases_smpp.py` is the worked example. Each case gets a fresh stand-in and
connector and must finish within CASE_BUDGET_S; keep a case's waits short (the SMPP cases take
about 0.1 s each).
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from tidings.channels.base import Ack, Connector, FailureKind, Inbox, Outbound, SendError, SendResult
from tidings.statuses import Outcome

CASE_BUDGET_S = 10.0  # one case, start to stop


@dataclass(frozen=True)
class Failure:
    """The expected failure of one send: its catalogue kind and the documented code (None: no code)."""

    kind: FailureKind
    code: str | None = None


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


@dataclass(frozen=True)
class InboundCase:
    label: str
    callbacks: Sequence[Any]  # what the provider sends, in order, as the stand-in understands it
    inbox: Sequence[Receipt | Inbound]  # what the inbox must have recorded, in order
    answers: Sequence[Any] = ()  # the provider-visible answer to each callback (empty: not checked)
    ack: bool = True  # what the inbox answers when it stores an item
    config: dict[str, Any] = field(default_factory=dict)


class StandIn(Protocol):
    """One provider stand-in, listening on loopback, and a connector configured to use it."""

    connector: Connector
    secrets: Sequence[str]  # what must never reach a log

    async def ready(self) -> None:
        """Return once the started connector is connected to the stand-in (bounded in time)."""

    def script(self, reply: Any) -> None:
        """Make the stand-in answer the next requests as `reply` says."""

    def requests(self) -> list[dict[str, Any]]:
        """What the provider received, normalised to plain dicts (the golden form)."""

    async def callback(self, callback: Any) -> Any:
        """Make the provider call us with `callback`; return its answer as the provider sees it."""


@dataclass(frozen=True)
class Provider:
    name: str
    open: Callable[..., AbstractContextManager[StandIn]]
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


def _check_result(case: OutboundCase, result: SendResult | SendError) -> None:
    expect = case.expect
    if isinstance(expect, Failure):
        assert isinstance(result, SendError), f"{case.label}: expected {expect}, got {result}"
        assert (result.kind, result.code) == (expect.kind, expect.code), result.description
    else:
        assert isinstance(result, SendResult), f"{case.label}: expected a result, got {result!r}"
        assert (result.ext_id, result.part_ids) == (expect.ext_id, expect.part_ids)
        if expect.fallback is not None:
            assert result.receipt is not None
            assert (result.receipt.status.word, result.receipt.code) == expect.fallback
        if expect.fallback_after_s is not None:
            assert result.receipt_after_s == expect.fallback_after_s


def run_outbound(provider: Provider, case: OutboundCase) -> None:
    """Send the case's message through a fresh connector and stand-in; check what the provider got,
    what the connector answered, the receipts that followed and the logs."""
    with provider.open(**case.config) as stand_in, captured_logs() as logs:
        stand_in.script(case.reply)
        inbox = RecordingInbox()
        results, items = asyncio.run(_outbound(stand_in, inbox, case))
        received = stand_in.requests()
    assert received == list(case.requests), f"{case.label}: the provider received {received}"
    _check_result(case, results[0])
    outcomes = [(r.status, r.code) for r in items if isinstance(r, Receipt)]
    assert outcomes == list(case.receipts), f"{case.label}: the inbox got {items}"
    if isinstance(results[0], SendResult) and case.receipts:
        ext_id = results[0].ext_id
        for receipt in (r for r in items if isinstance(r, Receipt)):
            assert ext_id in receipt.keys or set(results[0].part_ids) & set(receipt.keys), (
                f"{case.label}: receipt keys {receipt.keys} do not name {ext_id}"
            )
    described = [r.description for r in results if isinstance(r, SendError)]
    assert_no_secrets(stand_in.secrets, *logs.lines, *described, repr(items))


async def _outbound(
    stand_in: StandIn, inbox: RecordingInbox, case: OutboundCase
) -> tuple[list[SendResult | SendError], list[Receipt | Inbound]]:
    connector = stand_in.connector
    async with asyncio.timeout(CASE_BUDGET_S):
        await connector.start(inbox)
        try:
            await stand_in.ready()
            results = await connector.send([case.message])
            assert len(results) == 1
            await wait_for(lambda: len(inbox.receipts()) >= len(case.receipts), 5, "the receipts")
        finally:
            await connector.stop()
    return results, list(inbox.items)


def run_inbound(provider: Provider, case: InboundCase) -> None:
    """Make the stand-in call a fresh connector with the case's callbacks; check what the inbox got,
    what the provider was answered and the logs."""
    with provider.open(**case.config) as stand_in, captured_logs() as logs:
        inbox = RecordingInbox(case.ack)
        answers = asyncio.run(_inbound(stand_in, inbox, case))
    assert inbox.items == list(case.inbox), f"{case.label}: the inbox got {inbox.items}"
    if case.answers:
        assert answers == list(case.answers)
    assert_no_secrets(stand_in.secrets, *logs.lines, repr(inbox.items))


async def _inbound(stand_in: StandIn, inbox: RecordingInbox, case: InboundCase) -> list[Any]:
    connector = stand_in.connector
    async with asyncio.timeout(CASE_BUDGET_S):
        await connector.start(inbox)
        try:
            await stand_in.ready()
            return [await stand_in.callback(callback) for callback in case.callbacks]
        finally:
            await connector.stop()
