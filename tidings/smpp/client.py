"""An SMPP 3.4 ESME bind: connect, bind, keep alive, reconnect, and submit through a window.

`Bind` keeps one connection up for as long as it runs: it reconnects with backoff after any failure,
sends enquire_link when the line has been quiet, and unbinds cleanly on `stop`. `submit` waits for the
bind, takes a window slot (at most `window` requests awaiting responses), paces to `tps`, and backs off
and resends when the SMSC answers ESME_RTHROTTLED or ESME_RMSGQFUL.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from tidings.smpp.pdu import Cmd, Pdu, Status, status_name
from tidings.smpp.session import Session, SessionClosed
from tidings.tasks import cancel

log = logging.getLogger("tidings.smpp")

BIND_COMMANDS = {
    "transceiver": Cmd.BIND_TRANSCEIVER,
    "transmitter": Cmd.BIND_TRANSMITTER,
    "receiver": Cmd.BIND_RECEIVER,
}
THROTTLE_STATUSES = frozenset({Status.RTHROTTLED, Status.RMSGQFUL})
# Statuses after which binding again with the same credentials cannot succeed soon.
BIND_REFUSALS = frozenset({Status.RINVPASWD, Status.RINVSYSID, Status.RBINDFAIL, Status.RINVSERTYP})

DeliverHandler = Callable[[Pdu, Callable[[int], None]], None]


class NotBound(ConnectionError):
    """No bound connection within the time allowed."""


@dataclass(frozen=True, slots=True)
class BindSettings:
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    mode: str = "transceiver"
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""
    window: int = 64
    tps: float = 0.0
    enquire_link_s: float = 30.0
    response_timeout_s: float = 10.0
    connect_timeout_s: float = 10.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    throttle_min_s: float = 0.1
    throttle_max_s: float = 5.0


class Bind:
    def __init__(self, settings: BindSettings, on_deliver: DeliverHandler, name: str) -> None:
        self.settings = settings
        self.on_deliver = on_deliver
        self.name = name
        self.session: Session | None = None
        self.ready = asyncio.Event()
        self._window = asyncio.Semaphore(settings.window)
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._next_slot = 0.0  # tps pacing: the loop time the next submit may go
        self._throttled_until = 0.0
        self._throttle_s = 0.0
        self.binds = 0  # successful binds so far, for logs and tests
        self.last_error = ""  # why the last connection or bind failed ("" once bound again): the console
        self.last_failure: tuple[float, str] | None = None  # (epoch seconds, why), kept once bound again

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def throttled(self) -> bool:
        """The SMSC asked us to slow down and the pause is not over."""
        return self._throttled_until > asyncio.get_running_loop().time()

    def throttled_for(self) -> float:
        """Seconds left of the pause the SMSC asked for (0 when none)."""
        return max(0.0, self._throttled_until - asyncio.get_running_loop().time())

    @property
    def can_submit(self) -> bool:
        return self.settings.mode != "receiver"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"smpp-{self.name}")

    async def stop(self) -> None:
        """Take no new submits (they fail with NotBound: nothing was sent), let those in flight get
        their responses (up to the response timeout), then unbind and close."""
        self._stopping = True
        session = self.session
        if session is not None and session.is_open and self.ready.is_set():
            self.ready.clear()
            await session.settle(self.settings.response_timeout_s)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await session.request(Pdu(Cmd.UNBIND))
            session.close()
        await cancel(self._task)

    # -- the connection's life -------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.settings.reconnect_min_s
        while not self._stopping:
            try:
                await self._connect_and_serve()
                delay = self.settings.reconnect_min_s
            except asyncio.CancelledError:
                raise
            except BindRefused as exc:
                log.error("%s: bind refused: %s", self.name, exc)
                self.last_error = f"bind refused: {exc}"
                delay = self.settings.reconnect_max_s
            except (OSError, TimeoutError, SessionClosed) as exc:
                log.warning("%s: connection to %s:%d failed: %s", self.name, *self._where(), exc or type(exc))
                self.last_error = f"connection failed: {exc or type(exc).__name__}"
            except Exception as exc:
                log.exception("%s: SMPP session failed", self.name)
                self.last_error = f"session failed: {type(exc).__name__}"
            if self.last_error:
                self.last_failure = (time.time(), self.last_error)
            self.ready.clear()
            if self.stopping:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.reconnect_max_s)

    def _where(self) -> tuple[str, int]:
        return self.settings.host, self.settings.port

    async def _connect_and_serve(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(s.connect_timeout_s):
            _, session = await loop.create_connection(
                lambda: Session(self._on_request, self.name), s.host, s.port
            )
        self.session = session
        try:
            await self._bind(session)
            self.binds += 1
            self.last_error = ""
            log.info("%s: bound as %s to %s:%d", self.name, s.mode, s.host, s.port)
            self.ready.set()
            await self._keep_alive(session)
        finally:
            self.ready.clear()
            session.abort() if not self._stopping else session.close()

    async def _bind(self, session: Session) -> None:
        s = self.settings
        request = Pdu(
            BIND_COMMANDS[s.mode],
            params={
                "system_id": s.system_id,
                "password": s.password,
                "system_type": s.system_type,
                "interface_version": 0x34,
                "addr_ton": s.addr_ton,
                "addr_npi": s.addr_npi,
                "address_range": s.address_range,
            },
        )
        async with asyncio.timeout(s.response_timeout_s):
            resp = await session.request(request)
        if resp.status != Status.ROK:
            if resp.status in BIND_REFUSALS:
                raise BindRefused(status_name(resp.status))
            raise SessionClosed(f"bind answered {status_name(resp.status)}")

    async def _keep_alive(self, session: Session) -> None:
        """Until the connection ends: enquire_link after `enquire_link_s` of silence (0: never); no
        answer to it within the response timeout means the line is dead, however open the socket looks.
        Every pass also fails the requests that have waited longer than the response timeout."""
        s = self.settings
        loop = asyncio.get_running_loop()
        sweep_s = min(1.0, s.response_timeout_s / 4)
        while session.is_open:
            quiet = loop.time() - session.last_heard
            wait = sweep_s if s.enquire_link_s <= 0 else max(0.05, min(sweep_s, s.enquire_link_s - quiet))
            done, _ = await asyncio.wait([session.closed], timeout=wait)
            if done or not session.is_open:
                return
            session.expire(s.response_timeout_s)
            if s.enquire_link_s <= 0 or loop.time() - session.last_heard < s.enquire_link_s:
                continue
            probe = Pdu(Cmd.ENQUIRE_LINK)
            try:
                async with asyncio.timeout(s.response_timeout_s):
                    await session.request(probe)
            except TimeoutError:
                session.forget(probe)
                log.warning("%s: no enquire_link_resp in %gs; reconnecting", self.name, s.response_timeout_s)
                return

    def _on_request(self, session: Session, pdu: Pdu) -> None:
        if pdu.command_id in (Cmd.DELIVER_SM, Cmd.DATA_SM):
            self.on_deliver(pdu, lambda status: session.respond(pdu, status, message_id=""))
        elif pdu.command_id == Cmd.ENQUIRE_LINK:
            session.respond(pdu)
        elif pdu.command_id == Cmd.UNBIND:
            log.info("%s: the SMSC unbound", self.name)
            self.ready.clear()
            session.respond(pdu)
            session.close()
        else:
            session.send(Pdu(Cmd.GENERIC_NACK, Status.RINVCMDID, pdu.sequence))

    # -- submitting ----------------------------------------------------------------------------------

    async def submit(self, pdu: Pdu, deadline: float) -> Pdu:
        """Send `pdu` and return the SMSC's response. Throttling answers are retried after a backoff
        until `deadline` (loop time); the last response is then returned. Raises NotBound, SessionClosed
        (the connection broke with the request in flight) or ResponseTimeout (outcome unknown)."""
        loop = asyncio.get_running_loop()
        while True:
            resp = await self._submit_once(pdu, deadline)
            if resp.status not in THROTTLE_STATUSES:
                if resp.status == Status.ROK:
                    self._throttle_s = 0.0
                return resp
            s = self.settings
            self._throttle_s = min(max(self._throttle_s * 2, s.throttle_min_s), s.throttle_max_s)
            self._throttled_until = max(self._throttled_until, loop.time() + self._throttle_s)
            if self._throttled_until >= deadline:
                return resp

    async def _submit_once(self, pdu: Pdu, deadline: float) -> Pdu:
        loop = asyncio.get_running_loop()
        while not self.ready.is_set():
            # Polled, not awaited outright, so that a stop does not wait out the deadline.
            if self._stopping or loop.time() >= deadline:
                raise NotBound(f"{self.name}: not bound to {self.settings.host}:{self.settings.port}")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(0.1, deadline - loop.time())):
                    await self.ready.wait()
        async with self._window:
            now = loop.time()
            start = max(now, self._throttled_until, self._next_slot)
            if self.settings.tps > 0:
                self._next_slot = start + 1.0 / self.settings.tps
            if start > now:
                if start >= deadline:
                    return Pdu(pdu.command_id | 0x80000000, Status.RTHROTTLED, 0)
                await asyncio.sleep(start - now)
            session = self.session
            if session is None or not self.ready.is_set():
                raise NotBound(f"{self.name}: the bind was lost")
            # The keep-alive loop's sweep fails it with ResponseTimeout if no answer comes in time.
            resp = await session.request(pdu)
        if resp.command_id == Cmd.GENERIC_NACK and resp.status == Status.ROK:
            resp.status = Status.RSYSERR  # a nack that claims success is still a refusal
        return resp


class BindRefused(ConnectionError):
    """The SMSC refused our credentials; retried only slowly."""
