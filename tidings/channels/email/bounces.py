"""The bounce listener: an SMTP server (aiosmtpd, on the process's own event loop) that takes the
reports mail systems send back to the envelope sender of our email, `bounces+<transid>@<bounce_domain>`
(VERP: the address itself names the message, so a report needs no parsing to be matched).

- Only those addresses are taken, and `unsubscribe+<code>@<bounce_domain>`, the mailto of a bulk
  email's List-Unsubscribe: a mail to it (whatever it says) unsubscribes as the one-click POST of that
  code does. RCPT for any other address is refused with 550 5.1.1, before any data.
- A report is read (`dsn.py`) and applied (`Store.report`) before the 250 that ends its DATA: once
  the reporting server has our 250 it forgets the report, so it must be committed by then. A store
  failure answers 451 and the server tries again later, as it would with any busy mail host.
- A report for a transid that is no email message here is taken and dropped: refusing it would make the
  reporting server send a bounce of the bounce to its postmaster, and answering known and unknown ids
  differently would let anyone who can reach the port find out which ids exist. (An unknown id is mail
  for another installation, a made-up one, or a message the retention purge has deleted.)
- A report for a message not yet recorded as sent (the relay bounced it before the dispatcher wrote
  Submitted) is answered 451 4.3.0: the reporting server sends it again a few minutes later, when it
  applies.
- A mail this cannot read as a report (an auto-reply, a mangled report) is answered 250 and logged once
  at warning: refusing it would start a bounce loop with the server that sent it.
- A soft report (delayed, 4.x.x) changes nothing: the relay that sent it still holds the message and
  keeps trying until its own queue lifetime ends, and then sends a failed report, which is a Bounce.

It faces the internet (it is the MX of the bounce domain), so it defends itself: at most `max_sessions`
connections at a time (`[email] bounce_max_sessions`; one more is answered `421 4.7.0` and closed, and
its server tries again later, as with any busy mail host), 10 MiB a mail, 60 s of silence a session.
With `[email] bounce_tls_cert_file` and `bounce_tls_key_file` it offers STARTTLS (RFC 3207), which mail
servers use when offered, so reports (they quote the original's headers) do not cross the internet in
clear; it is offered, not required, as an MX must still take mail from servers without TLS.

Only one process of a deployment listens (the port can be bound once per host): each process that
dispatches tries to bind it at start and, while another holds it, tries again every `RETRY_BIND_S`, so
a sibling takes over within that time when the holder stops.
"""

import asyncio
import contextlib
import errno
import logging
import os
import re
import ssl
from collections.abc import Callable
from typing import Any, cast

from aiosmtpd.smtp import SMTP, Envelope, Session

from tidings import clock
from tidings.channels.email import dsn
from tidings.dispatch.worker import notification_for
from tidings.errors import ListenFailed
from tidings.schema.email import UNSUBSCRIBE_LINKID
from tidings.services import ServiceRegistry
from tidings.specs.email import BOUNCE, EMAIL_FAILURES, UNSUBSCRIBED
from tidings.statuses import DELIVERED, Outcome, Status
from tidings.store.base import OutgoingNotification, ReceiptTarget, Report, Store
from tidings.tasks import cancel

log = logging.getLogger("tidings.email.bounces")

RETRY_BIND_S = 5.0
DATA_LIMIT = 10 * 1024 * 1024  # a report with the whole original message (RET=FULL) of a large mail
SESSION_TIMEOUT_S = 60.0
MAX_SESSIONS = 100
_OWN = re.compile(r"(bounces|unsubscribe)\+([A-Za-z0-9_-]{1,64})@([A-Za-z0-9.-]+?)\.?", re.IGNORECASE)

OK = "250 2.0.0 OK"
NOT_HERE = "550 5.1.1 No such mailbox: this host takes bounce reports only"
TRY_LATER = "451 4.3.0 Cannot take this report now; try again later"
BUSY = b"421 4.7.0 Too many connections; try again later\r\n"


def own_address(address: str, domain: str) -> tuple[str, str] | None:
    """What one of the listener's addresses names: ("bounces", transid) for a message's VERP bounce
    address, ("unsubscribe", code) for the mailto of a bulk email's List-Unsubscribe (the code of its
    one-click unsubscribe record); None for any other address."""
    m = _OWN.fullmatch(address.strip().strip("<>"))
    if m is None or m[3].lower() != domain.lower().rstrip("."):
        return None
    return m[1].lower(), m[2]


class BounceListener:
    def __init__(
        self,
        store: Store,
        services: ServiceRegistry,
        on_notifications: Callable[[], None],
        *,
        domain: str,
        host: str,
        port: int,
        tls: ssl.SSLContext | None = None,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self.store = store
        self.services = services
        self.on_notifications = on_notifications
        self.domain = domain
        self.host = host
        self.port = port
        self.tls = tls
        self.max_sessions = max_sessions
        self._server: asyncio.Server | None = None
        self._sessions: set[SMTP] = set()
        self._binding: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen now, or keep trying in the background while another process holds the port. Any
        other failure to bind (an address not of this host, a port below 1024 without the right) is
        ListenFailed: the configuration is wrong."""
        # aiosmtpd logs every command of every session, flufl.bounce every detector it tries, at info:
        # a line per report is ours to write.
        for noisy in ("mail.log", "flufl.bounce"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        if not await self._bind():
            log.info(
                "bounce listener: %s:%d is taken; trying again every %g s", self.host, self.port, RETRY_BIND_S
            )
            self._binding = asyncio.create_task(self._keep_binding(), name="bounce listener bind")

    async def stop(self) -> None:
        await cancel(self._binding)
        self._binding = None
        if self._server is not None:
            self._server.close()
            # A session in the middle of a report ends unanswered: its server sends the report again.
            for session in list(self._sessions):
                if session.transport is not None:
                    session.transport.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._server.wait_closed()
            self._server = None

    async def _bind(self) -> bool:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(self._session, self.host, self.port)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            where = f"{self.host}:{self.port}"
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ListenFailed(f"[email] bounce listener: cannot listen on {where}: {why}") from None
        sockets = self._server.sockets
        if sockets and self.port == 0:
            self.port = sockets[0].getsockname()[1]
        log.info("bounce listener on %s:%d for bounces+<id>@%s", self.host, self.port, self.domain)
        return True

    async def _keep_binding(self) -> None:
        # Polling: nothing tells a process when another one lets the port go.
        while not await self._bind():  # noqa: ASYNC110
            await asyncio.sleep(RETRY_BIND_S)

    def _session(self) -> asyncio.Protocol:
        if len(self._sessions) >= self.max_sessions:
            return _Busy()
        return _Session(
            self, _Handler(self), hostname=self.domain, ident="Tidings bounces", data_size_limit=DATA_LIMIT,
            timeout=SESSION_TIMEOUT_S, tls_context=self.tls, require_starttls=False,
        )  # fmt: skip

    async def take(self, recipients: list[str], raw: bytes) -> str:
        """Apply one mail to what its recipients name (a bounce report to its messages, an unsubscribe
        to its record); the SMTP answer to its DATA."""
        named = [a for r in recipients if (a := own_address(r, self.domain)) is not None]
        transids = list(dict.fromkeys(value for kind, value in named if kind == "bounces"))
        codes = list(dict.fromkeys(value for kind, value in named if kind == "unsubscribe"))
        now = clock.now()
        try:
            reports = await self._unsubscribes(codes, now) + await self._bounces(transids, raw, now)
            moved = await self.store.report(reports, self._notice) if reports else []
        except _NotYet:
            return TRY_LATER
        except Exception:
            log.exception("bounce listener: a mail for %s could not be stored; it will come again", named)
            return TRY_LATER
        if any(moved):
            self.on_notifications()
        return OK

    async def _bounces(self, transids: list[str], raw: bytes, now: float) -> list[Report]:
        if not transids:
            return []
        report = dsn.read(raw)
        if report is None:
            log.warning(
                "bounce listener: a mail for %s is no bounce report this can read (%d bytes); dropped",
                ", ".join(transids), len(raw),
            )  # fmt: skip
            return []
        reports: list[Report] = []
        for transid in transids:
            found = await self.store.message_target(transid)
            if found is None or found[0].channel != "email":
                log.info("bounce listener: a report for %s, no email message here; dropped", transid)
                continue
            target, status = found
            if status is Status.QUEUED:
                raise _NotYet  # not recorded as sent yet: the report applies once it is
            if (change := _report(report, target, now)) is not None:
                reports.append(change)
        return reports

    async def _unsubscribes(self, codes: list[str], now: float) -> list[Report]:
        """A mail to `unsubscribe+<code>@<bounce_domain>` (whatever it says: sending it is the request)
        unsubscribes as the one-click POST of that code does; an unknown code is dropped."""
        reports: list[Report] = []
        for code in codes:
            link = await self.store.find_link(code)
            if link is None or link.linkid != UNSUBSCRIBE_LINKID:
                log.info("bounce listener: an unsubscribe mail for an unknown code; dropped")
                continue
            reports.append(Report(link.transid, now, None, gone=EMAIL_FAILURES[UNSUBSCRIBED]))
        return reports

    def _notice(self, target: ReceiptTarget, o: Outcome, at: float, info: str) -> OutgoingNotification | None:
        return notification_for(self.services, target, o, at, additional_info=info)


def _report(report: dsn.BounceReport, target: ReceiptTarget, now: float) -> Report | None:
    """What `report` says about the message `target` (None: nothing changes)."""
    about = dsn.for_address(report, target.address)
    if about is None:
        log.info(
            "bounce listener: a report on %s names %s, not its address; ignored",
            target.transid, ", ".join(r.recipient for r in report.recipients),
        )  # fmt: skip
        return None
    v = dsn.verdict(about)
    if v is None:
        log.info("bounce listener: %s %s (%s): no change", target.transid, about.action, about.status or "-")
        return None
    if v.status == "Delivered":
        return Report(target.transid, now, DELIVERED, additional_info=v.detail)
    bounce = Outcome(Status.BOUNCE, BOUNCE, v.description)
    return Report(target.transid, now, bounce, gone=bounce if v.suppress else None, additional_info=v.detail)


class _NotYet(Exception):
    """A report for a message not yet recorded as sent: its server is asked to send it again later."""


class _Session(SMTP):
    """One SMTP connection, known to its listener so that a stop can end it."""

    def __init__(self, listener: BounceListener, handler: "_Handler", **settings: Any) -> None:
        super().__init__(handler, **settings)
        self._listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._listener._sessions.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._listener._sessions.discard(self)
        super().connection_lost(error)


class _Busy(asyncio.Protocol):
    """A connection over the listener's limit: told so (a 421 greeting, RFC 5321 3.8) and closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        log.warning("bounce listener: %s refused: too many connections", transport.get_extra_info("peername"))
        cast(asyncio.WriteTransport, transport).write(BUSY)
        transport.close()


class _Handler:
    """aiosmtpd's handler hooks: RCPT takes VERP bounce addresses only, DATA applies the report."""

    def __init__(self, listener: BounceListener) -> None:
        self.listener = listener

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if own_address(address, self.listener.domain) is None:
            return NOT_HERE
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content
        if raw is None:
            raw = envelope.content if isinstance(envelope.content, bytes) else b""
        try:
            return await self.listener.take(list(envelope.rcpt_tos), raw)
        except Exception:  # never a traceback to the peer, nor a 5xx that would start a bounce loop
            log.exception("bounce listener: a report could not be handled; asking for it again later")
            return TRY_LATER
