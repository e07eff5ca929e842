"""One SMPP connection, either side: framing, sequence numbers, request/response matching.

Built on `asyncio.Protocol` rather than streams: a PDU costs one callback, not a task switch per read,
which matters at thousands of PDUs a second. Requests the peer sends are handed to `on_request`, which
answers them (now or later) with `respond`; responses to our own requests complete their futures.
"""

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import cast

from tidings.smpp.pdu import Cmd, Framer, Pdu, PduError, Status, decode, encode

log = logging.getLogger("tidings.smpp")

RequestHandler = Callable[["Session", Pdu], None]


class SessionClosed(ConnectionError):
    """The connection ended while a request waited for its response."""


class ResponseTimeout(TimeoutError):
    """The peer did not answer a request in time; whether it acted on it is unknown."""


class Session(asyncio.Protocol):
    def __init__(self, on_request: RequestHandler, name: str = "smpp") -> None:
        self.on_request = on_request
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.last_heard = 0.0
        self._framer = Framer()
        # Requests awaiting a response, oldest first, with the loop time each was sent.
        self._pending: dict[int, tuple[asyncio.Future[Pdu], float]] = {}
        # SMPP 3.4 5.1.4: sequence numbers run from 1 to 0x7FFFFFFF.
        self._seq = itertools.cycle(range(1, 0x7FFFFFFF))
        self._loop = asyncio.get_running_loop()

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.last_heard = self._loop.time()

    def data_received(self, data: bytes) -> None:
        self.last_heard = self._loop.time()
        try:
            frames = self._framer.feed(data)
        except PduError as exc:
            # The stream can no longer be cut into PDUs: say so once and hang up.
            log.warning("%s: %s; closing the connection", self.name, exc)
            self.send(Pdu(Cmd.GENERIC_NACK, exc.status, 0))
            self.close()
            return
        for frame in frames:
            self._dispatch(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        pending, self._pending = self._pending, {}
        for fut, _ in pending.values():
            if not fut.done():
                fut.set_exception(SessionClosed(f"{self.name}: the connection closed"))
        if not self.closed.done():
            self.closed.set_result(None)

    # -- use -----------------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, pdu: Pdu) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode(pdu))

    def request(self, pdu: Pdu) -> "asyncio.Future[Pdu]":
        """Send a request; the future completes with its response (or a generic_nack for it)."""
        fut: asyncio.Future[Pdu] = self._loop.create_future()
        if not self.is_open:
            fut.set_exception(SessionClosed(f"{self.name}: not connected"))
            return fut
        pdu.sequence = next(self._seq)
        data = encode(pdu)  # may raise PduError for a field too long: before anything is pending
        self._pending[pdu.sequence] = (fut, self._loop.time())
        assert self.transport is not None
        self.transport.write(data)
        return fut

    def forget(self, pdu: Pdu) -> None:
        """Stop waiting for the response to `pdu` (it timed out); a late one is then ignored."""
        self._pending.pop(pdu.sequence, None)

    async def settle(self, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) until every request sent so far has its response."""
        waiting = [fut for fut, _ in self._pending.values()]
        if waiting:
            await asyncio.wait(waiting, timeout=timeout_s)

    def expire(self, timeout_s: float) -> int:
        """Fail every request waiting longer than `timeout_s` with ResponseTimeout; return how many.
        One sweep instead of a timer per request: at thousands of requests a second, timers cost."""
        limit = self._loop.time() - timeout_s
        expired = []
        for seq, (fut, sent) in self._pending.items():
            if sent > limit:
                break  # the rest were sent later
            expired.append((seq, fut))
        for seq, fut in expired:
            del self._pending[seq]
            if not fut.done():
                fut.set_exception(ResponseTimeout(f"{self.name}: no response in {timeout_s:g}s"))
        return len(expired)

    def respond(self, request: Pdu, status: int = 0, **params: str | int | bytes) -> None:
        self.send(request.response(status, **params))

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- internals -----------------------------------------------------------------------------------

    def _dispatch(self, frame: bytes) -> None:
        try:
            pdu = decode(frame)
        except PduError as exc:
            seq = int.from_bytes(frame[12:16], "big")
            command_id = int.from_bytes(frame[4:8], "big")
            entry = self._pending.pop(seq, None) if command_id & 0x80000000 else None
            if entry is not None:
                # A response we cannot read still answers its request: as a failure.
                if not entry[0].done():
                    entry[0].set_result(Pdu(command_id, Status.RSYSERR, seq))
            else:
                log.warning("%s: %s (command 0x%08X, sequence %d)", self.name, exc, command_id, seq)
                self.send(Pdu(Cmd.GENERIC_NACK, exc.status, seq))
            return
        if pdu.is_response:
            entry = self._pending.pop(pdu.sequence, None)
            if entry is not None and not entry[0].done():
                entry[0].set_result(pdu)
            elif pdu.command_id != Cmd.GENERIC_NACK:
                log.debug("%s: response to unknown sequence %d ignored", self.name, pdu.sequence)
            return
        try:
            self.on_request(self, pdu)
        except Exception:
            log.exception("%s: handling %s failed", self.name, _cmd_name(pdu.command_id))
            self.respond(pdu, Status.RSYSERR)


def _cmd_name(command_id: int) -> str:
    try:
        return Cmd(command_id).name.lower()
    except ValueError:
        return f"0x{command_id:08X}"
