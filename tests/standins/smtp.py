"""A stand-in SMTP relay on loopback (aiosmtpd): STARTTLS (or implicit TLS) with a trustme CA the client
is told to trust, AUTH PLAIN/LOGIN against a table of users, and scripted answers.

It records what a relay receives: every accepted message as a `Received` (the envelope sender, the
accepted recipients, the raw DATA bytes, the user it authenticated as, whether TLS was on), and every
RCPT TO it was asked for (`rcpts`, accepted or not), so a test can tell that an address never reached
it. `script(address, stage, reply, times)` makes the relay answer `reply` ("451 4.3.0 Try later",
"550 5.1.1 No such user") at `rcpt` or `data` for that address, the next `times` times (`mail` scripts
the MAIL FROM of that sender). With `record=False` (a benchmark) only the counts are kept. It offers
PIPELINING (RFC 2920) unless told `pipelining=False`, and DSN (RFC 3461) when told `dsn=True`: then it
takes RET, ENVID, NOTIFY and ORCPT (aiosmtpd refuses any parameter it does not know with 555) and
records them (`Received.mail_options`, `Received.rcpt_options`).
"""

import asyncio
import itertools
import re
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.server import free_port

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# `<local@domain>`, then the parameters if any: what a client such as aiosmtplib sends
_PLAIN_PATH = re.compile(rf"<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(?: +(\S.*))?")


_DSN_PARAMS = frozenset({"RET", "ENVID", "NOTIFY", "ORCPT"})


class _RelaySMTP(SMTP):
    """aiosmtpd's SMTP server taking RFC 3461's parameters when its handler offers DSN."""

    def _getparams(self, params: list[str]) -> dict[str, str | bool] | None:
        parsed = super()._getparams(params)
        if parsed is None or not getattr(self.event_handler, "dsn", False):
            return parsed
        return {k: v for k, v in parsed.items() if k not in _DSN_PARAMS}


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _RelaySMTP(self.handler, **self.SMTP_kwargs)


class _LeanSMTP(_RelaySMTP):
    """aiosmtpd's SMTP server with a fast path for the commonest MAIL FROM / RCPT TO argument, a plain
    `<local@domain>`: aiosmtpd 1.4 parses every path with the stdlib's RFC 5322 header parser and
    defines a typing.Protocol class on each call, about a third of its CPU per email. Anything else
    goes to aiosmtpd's own parser, so what is accepted or refused does not change."""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        m = _PLAIN_PATH.fullmatch(arg)
        limit = self.local_part_limit
        if m is None or (limit and len(m.group(1).rpartition("@")[0]) > limit):
            return super()._getaddr(arg)
        return m.group(1), m.group(2) or ""


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    user: str | None
    tls: bool
    mail_options: list[str] = field(default_factory=list)  # as aiosmtpd gives them: upper case
    rcpt_options: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class _Handler:
    record: bool = True
    implicit_tls: bool = False  # aiosmtpd sets session.ssl only after STARTTLS
    pipelining: bool = True  # offered in the EHLO reply, as Postfix and most relays do
    dsn: bool = False  # RFC 3461 offered in the EHLO reply
    received: list[Received] = field(default_factory=list)
    rcpts: list[str] = field(default_factory=list)
    accepted: int = 0
    # the SMTP sessions that sent a MAIL FROM, by a number of their own (an id() is reused once a closed
    # session's object is freed, which made two sessions count as one)
    sessions: set[int] = field(default_factory=set)
    _numbers: "itertools.count[int]" = field(default_factory=itertools.count)
    scripts: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # (aiosmtpd leaves this to a handler that takes the EHLO reply)
        # aiosmtpd reads commands one after another from its stream, so it takes a pipelined envelope
        # as it is; it only does not say so.
        offered = ["250-PIPELINING"] if self.pipelining else []
        offered += ["250-DSN"] if self.dsn else []
        return [*responses[:-1], *offered, responses[-1]]

    def _scripted(self, address: str, stage: str) -> str | None:
        if not self.scripts:  # (read without the lock: a bench's relay has none, and takes no lock)
            return None
        with self.lock:
            replies = self.scripts.get((address.lower(), stage))
            return replies.pop(0) if replies else None

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        number = getattr(session, "standin_number", None)
        if number is None:
            number = session.standin_number = next(self._numbers)  # type: ignore[attr-defined]
        self.sessions.add(number)
        if (reply := self._scripted(address, "mail")) is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.record:
            self.rcpts.append(address)
        if (reply := self._scripted(address, "rcpt")) is not None:
            return reply
        envelope.rcpt_tos.append(address)
        if self.record and options:
            envelope.rcpt_options.extend(f"{address} {o}" for o in options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for address in envelope.rcpt_tos:
            if (reply := self._scripted(address, "data")) is not None:
                return reply
        self.accepted += 1
        if self.record:
            user = session.auth_data if isinstance(session.auth_data, str) else None
            data = envelope.original_content or b""
            tls = self.implicit_tls or session.ssl is not None
            rcpt_options: dict[str, list[str]] = {}
            for entry in envelope.rcpt_options:
                address, _, option = entry.partition(" ")
                rcpt_options.setdefault(address, []).append(option)
            rcpts, options = list(envelope.rcpt_tos), list(envelope.mail_options)
            got = Received(str(envelope.mail_from), rcpts, data, user, tls, options, rcpt_options)
            self.received.append(got)
        return "250 2.0.0 Ok: queued"


class SmtpStandIn:
    """`security`: "starttls" (STARTTLS offered and required before AUTH), "tls" (implicit TLS) or
    "none". `users`: login -> password; AUTH is required when given."""

    def __init__(
        self,
        workdir: Path,
        security: str = "starttls",
        users: dict[str, str] | None = None,
        record: bool = True,
        port: int = 0,
        pipelining: bool = True,
        dsn: bool = False,
    ) -> None:
        self.ca = trustme.CA()
        self.ca_file = workdir / "smtp-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.handler = _Handler(record=record, implicit_tls=security == "tls", pipelining=pipelining, dsn=dsn)
        self.users = users or {}
        self.port = port or free_port()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": self.port, "ready_timeout": 5}
        if security == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        elif security == "tls":
            kwargs.update(ssl_context=context)
            kwargs["server_hostname"] = "localhost"
        if self.users:
            kwargs.update(
                authenticator=self._authenticate, auth_required=True, auth_require_tls=security != "none"
            )
        self.controller = _Controller(self.handler, **kwargs)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode()
        ok = self.users.get(login) == auth_data.password.decode()
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

    def start(self) -> "SmtpStandIn":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    async def serve_here(self) -> asyncio.AbstractServer:
        """The same relay served on the running event loop instead of the controller's thread (a
        benchmark: no second thread contending for the GIL, and the caller's loop, e.g. uvloop), with
        `_LeanSMTP`'s cheaper address parsing."""
        kwargs = self.controller.SMTP_kwargs
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            lambda: _LeanSMTP(self.handler, **kwargs), "127.0.0.1", self.port, backlog=256
        )

    def script(self, address: str, stage: str, reply: str, times: int = 1) -> None:
        with self.handler.lock:
            self.handler.scripts.setdefault((address.lower(), stage), []).extend([reply] * times)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    @property
    def rcpts(self) -> list[str]:
        return self.handler.rcpts

    @property
    def accepted(self) -> int:
        return self.handler.accepted

    def for_address(self, address: str) -> list[Received]:
        return [r for r in self.handler.received if address in r.rcpt_tos]


def relayed_config(service_id: str, key: str, relay_port: int, bounce_domain: str, bounce_port: int) -> str:
    """A Tidings config with one service whose email goes to this stand-in on `relay_port` (no TLS), and
    the bounce listener on `bounce_port`; notifications retried quickly."""
    return f"""
[notify]
timeout_s = 2
retry_interval_s = 0.2

[[services]]
id = "{service_id}"
key = "{key}"
email_from = ["news@example.com"]

[[smtp]]
name = "relay"
host = "127.0.0.1"
port = {relay_port}
security = "none"

[email]
bounce_domain = "{bounce_domain}"
bounce_port = {bounce_port}

[routes]
email = "relay"
"""
