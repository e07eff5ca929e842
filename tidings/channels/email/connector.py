"""The SMTP connector: emails to the routed `[[smtp]]` relay with aiosmtplib.

One connector per relay keeps a pool of up to `connections` SMTP sessions (STARTTLS, implicit TLS or
none; AUTH when a username is set), reused from message to message: a session that failed a
transaction is reset (RSET, by aiosmtplib) before the next, and one that dropped is replaced. A batch's
messages go out concurrently over the pool; each message is one transaction (MAIL FROM the VERP sender,
RCPT TO its address then cc and bcc, DATA), through aiosmtplib's command layer rather than its
`sendmail`, whose RFC 5322 parsing of already-checked addresses cost a tenth of the CPU per email.
When the relay offers PIPELINING the envelope goes out in one write (`pipeline.py`: aiosmtplib 4
waits for each reply); otherwise command by command.

What the relay says, and what it means (`SendError` kinds in tidings/channels/base.py):
    250 after DATA                  Submitted 7501; ext_id `email:<transid>`, so a bounce finds it. No
                                    receipt is scheduled: Delivered needs evidence (a success DSN,
                                    asked for when the relay offers DSN: notify.py)
    5xx at RCPT (the address) or    Bounce 7520, GONE: final, and the address is suppressed for the
    at DATA                         service (later sends Failed 7240 without a relay call)
    5xx at MAIL FROM                REJECTED 7522 (the relay will not take our sender: not verified)
    other 5xx                       REJECTED 7554
    4xx anywhere                    THROTTLED, Retry-After half the message's age (5 s to 15 min)
    auth refused (535), TLS or      CONFIG: final, logged loudly (never with the password)
    certificate failure, no STARTTLS
    no connection (refused, DNS,    UNAVAILABLE: nothing was sent; waits and tries again until the
    connect timeout)                message expires
    connection lost mid-message     CONNECTION (retried with backoff, costs an attempt)
    no reply in time                TIMEOUT
A 4xx is THROTTLED, not CONNECTION, because it says "not now" about the relay or the mailbox and
nothing about the message: such a failure must not use up the dispatcher's five attempts (CONTRACT.md:
4xx is retried until expiry). THROTTLED waits max(5 s, Retry-After), so the connector makes the
backoff itself: the wait is half the message's age (its transid holds its accept time), 5 s, 10 s,
then growing by half each time up to 15 minutes, as MTAs space their queue runs. A message without an
expiry that still gets 4xx FREE_RETRY_FOR_S after its acceptance (72 hours, an MTA's usual queue
lifetime, after the 7 days a v2 sendAt may wait) is Expired.
"""

import asyncio
import contextlib
import dataclasses
import logging
import ssl
import time
from collections.abc import Sequence
from typing import ClassVar, cast

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol

from tidings.channels.base import FREE_RETRY_FOR_S, FailureKind, Inbox, Outbound, SendError, SendResult
from tidings.channels.email import mime
from tidings.channels.email.dkim import Key, Signer, ed25519_key, rsa_key
from tidings.channels.email.notify import Dsn
from tidings.channels.email.pipeline import Rcpts, pipelined
from tidings.channels.email.settings import EmailConfig, SmtpConfig, resolve
from tidings.channels.exchange import exchange, no_answer
from tidings.ids import age_s
from tidings.observe.connectors import ConnectorReport, Credential, Ledger
from tidings.schema.email import EmailContent
from tidings.specs.email import BOUNCE, EXPIRED, NOT_VERIFIED

log = logging.getLogger("tidings.email")

BACKOFF_MIN_S = 5.0
# A message of a batch that has not got a session this long after the batch came is handed back
# unsent (UNAVAILABLE), so a slow relay cannot hold a batch past the dispatcher's 30 s safety net, which
# would count messages as timed out that were in fact sent.
SLOT_WAIT_S = 15.0
BACKOFF_MAX_S = 900.0
UNAVAILABLE_WAIT_S = 10.0
CLOSE_WAIT_S = 2.0  # stop(): how long closing sessions may take to end before they are aborted
LOUD_EVERY_S = 60.0  # a configuration problem is logged at most this often per relay


class SmtpConnector:
    name: ClassVar[str] = "smtp"

    def __init__(self, settings: SmtpConfig, email: EmailConfig | None = None) -> None:
        self.settings = settings
        self.email = email or EmailConfig()
        self.label = settings.name
        self._slots = asyncio.Semaphore(settings.connections)
        self._idle: list[aiosmtplib.SMTP] = []
        # sessions closed but whose TLS shutdown may still be under way: stop() waits for them
        self._closing: set[SMTPProtocol] = set()
        self._tls: ssl.SSLContext | None = None
        self._signer: Signer | None = None
        self._loud_at = 0.0
        self._auth_refused: tuple[float, str] | None = None  # (when, the relay's words): the health page
        self.ledger = Ledger(lambda: (self.settings.password,))
        if self.email.signs:
            self._signer = Signer(self.email.dkim_domain, dkim_keys(self.email))

    async def start(self, inbox: Inbox) -> None:
        if self.settings.security != "none":
            ca = resolve(self.settings.base_dir, self.settings.ca_file) if self.settings.ca_file else None
            self._tls = ssl.create_default_context(cafile=str(ca) if ca else None)

    async def stop(self) -> None:
        idle, self._idle = self._idle, []
        for smtp in idle:
            protocol = smtp.protocol
            try:
                async with asyncio.timeout(2):
                    await smtp.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                pass
            self._close(smtp, protocol)
        await self._closed(CLOSE_WAIT_S)

    def _close(self, smtp: aiosmtplib.SMTP, protocol: SMTPProtocol | None = None) -> None:
        """Close a session; until its connection is gone (a TLS one says goodbye to the relay first),
        it is remembered so that stop() can wait for it."""
        protocol = protocol or smtp.protocol
        smtp.close()
        self._closing = {p for p in self._closing if p.transport is not None}
        if protocol is not None and protocol.transport is not None:
            self._closing.add(protocol)

    async def _closed(self, within_s: float) -> None:
        """Wait for the closed sessions' connections to end (TLS close_notify), aborting those still
        open after `within_s`: a stopped connector leaves no socket behind for the event loop's end."""
        for _ in range(int(within_s / 0.01)):  # (aiosmtplib tells no one when a connection ends: poll)
            if all(p.transport is None for p in self._closing):
                break
            await asyncio.sleep(0.01)
        for protocol in self._closing:
            if protocol.transport is not None:  # (uvloop's transports are not asyncio's subclasses)
                cast(asyncio.WriteTransport, protocol.transport).abort()
        self._closing.clear()
        await asyncio.sleep(0)  # the aborted transports close their sockets on the loop's next turn

    async def send(self, batch: Sequence[Outbound]) -> list[SendResult | SendError]:
        deadline = asyncio.get_running_loop().time() + SLOT_WAIT_S
        return self.ledger.record(list(await asyncio.gather(*(self._send_one(m, deadline) for m in batch))))

    def describe(self) -> ConnectorReport:
        """The pool, the login (refused while the relay's last answer to AUTH was a refusal), the last
        failure, and the relay's "not now" (a 4xx: its messages wait, 5 s to 15 min by their age)."""
        s = self.settings
        credentials = []
        if s.username:
            refused = self._auth_refused
            later = refused is not None and (self.ledger.last_success or 0.0) < refused[0]
            words = refused[1] if refused is not None and later else ""
            credentials.append(
                Credential(f"AUTH {s.username} at {s.host}:{s.port}", "password", refused=words)
            )
        return self.ledger.report(
            detail=[f"{len(self._idle)} idle session(s), at most {s.connections}; {s.security}"],
            credentials=credentials,
            configured=f"none set ({s.connections} sessions)",
        )

    async def _send_one(self, m: Outbound, deadline: float) -> SendResult | SendError:
        content = m.content
        if not isinstance(content, EmailContent):
            return SendError(FailureKind.INVALID, "not an email's content")
        now = time.time()
        data = mime.build(m, self.email.bounce_domain, now)
        if self._signer is not None:
            data = self._signer.sign(data)
        sender = mime.envelope_sender(m.transid, content, self.email.bounce_domain)
        recipients = mime.envelope_recipients(m)
        dsn = self._dsn(m)
        result, said = await self._send_slotted(m, sender, recipients, data, dsn, deadline)
        wire = exchange(envelope(sender, recipients, data, dsn), said, (self.settings.password,))
        if isinstance(result, SendError):
            result.exchange = wire
            return result
        return dataclasses.replace(result, exchange=wire)

    def _dsn(self, m: Outbound) -> Dsn | None:
        """The DSN parameters to ask for when the relay offers DSN (notify.py says when: never without a
        bounce domain, whose VERP address is where reports come back)."""
        notify = self.settings.dsn_notify
        if not notify or not self.email.bounce_domain:
            return None
        return Dsn(m.transid, m.address, tuple(notify))

    async def _send_slotted(
        self, m: Outbound, sender: str, recipients: list[str], data: bytes, dsn: Dsn | None, deadline: float
    ) -> tuple[SendResult | SendError, str]:
        """The message through a pooled session, and what the relay answered (in words)."""
        try:
            if self._slots.locked():  # (a timer only when it may wait: 500 of them a batch cost 3 %)
                async with asyncio.timeout_at(deadline):
                    await self._slots.acquire()
            else:
                await self._slots.acquire()
        except TimeoutError:
            busy = SendError(
                FailureKind.UNAVAILABLE, f"{self.label}: every session busy; not sent yet", retry_after=1.0
            )
            return busy, "not sent: every session busy"
        try:
            try:
                smtp, reused = await self._session()
                try:
                    return await self._transaction(smtp, m, sender, recipients, data, dsn)
                except aiosmtplib.SMTPServerDisconnected:
                    if not reused:
                        raise
                # An idle session the relay had closed: nothing was sent; once more on a new one.
                smtp, _ = await self._session(fresh=True)
                return await self._transaction(smtp, m, sender, recipients, data, dsn)
            except SendError as exc:  # no session: nothing of the message was sent
                return exc, f"not sent: {exc.description}"
            except aiosmtplib.SMTPServerDisconnected as exc:
                lost = SendError(FailureKind.CONNECTION, f"{self.label}: connection lost: {exc}")
                return lost, no_answer(f"connection lost: {exc}")
        finally:
            self._slots.release()

    async def _transaction(
        self,
        smtp: aiosmtplib.SMTP,
        m: Outbound,
        sender: str,
        recipients: list[str],
        data: bytes,
        dsn: Dsn | None,
    ) -> tuple[SendResult | SendError, str]:
        """One message on one session, and the relay's replies that decided it (in words); the session
        goes back to the pool unless it broke."""
        try:
            errors, done = await _sendmail(smtp, sender, recipients, data, dsn, self.settings.timeout_s)
        except aiosmtplib.SMTPServerDisconnected:
            self._close(smtp)
            raise
        except aiosmtplib.SMTPRecipientsRefused as exc:
            self._keep(smtp)
            refused = {e.recipient: (e.code, e.message) for e in exc.recipients}
            first = exc.recipients[0]
            said = "\n".join(f"RCPT TO:<{e.recipient}>: {e.code} {e.message}" for e in exc.recipients)
            return self._refused(m, *refused.get(m.address, (first.code, first.message))), said
        except aiosmtplib.SMTPSenderRefused as exc:
            self._keep(smtp)
            return self._sender_refused(m, exc.code, exc.message), f"MAIL FROM: {exc.code} {exc.message}"
        except aiosmtplib.SMTPDataError as exc:
            self._keep(smtp)
            return self._data_refused(m, exc.code, exc.message), f"DATA: {exc.code} {exc.message}"
        except aiosmtplib.SMTPResponseException as exc:
            self._close(smtp)
            return self._other(m, exc.code, exc.message), f"{exc.code} {exc.message}"
        except (aiosmtplib.SMTPTimeoutError, TimeoutError) as exc:
            self._close(smtp)
            late = SendError(FailureKind.TIMEOUT, f"{self.label}: no answer in time: {exc}")
            return late, no_answer(f"none in time: {exc}")
        except (aiosmtplib.SMTPException, OSError) as exc:
            self._close(smtp)
            return SendError(FailureKind.CONNECTION, f"{self.label}: {exc}"), no_answer(str(exc))
        self._keep(smtp)
        said = "\n".join(
            [
                *(f"RCPT TO:<{a}>: {code} {text}" for a, (code, text) in errors.items()),
                f"{done.code} {done.message}",
            ]
        )
        if m.address in errors:
            code, text = errors[m.address]
            return self._refused(m, code, text), said
        for address, (code, text) in errors.items():
            log.info("%s refused the copy to %s of %s: %s %s", self.label, address, m.transid, code, text)
        return SendResult(ext_id=f"email:{m.transid}"), said

    def _keep(self, smtp: aiosmtplib.SMTP) -> None:
        if smtp.is_connected:
            self._idle.append(smtp)

    async def _session(self, fresh: bool = False) -> tuple[aiosmtplib.SMTP, bool]:
        """An idle pooled session (True: reused), else a new one, connected, TLS and AUTH done."""
        while self._idle and not fresh:
            smtp = self._idle.pop()
            if smtp.is_connected:
                return smtp, True
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",
            tls_context=self._tls,
            timeout=s.timeout_s,
        )
        try:
            await smtp.connect()
            # AUTH here rather than in connect(), which on a refusal closes the session out of reach
            if s.username:
                await smtp.login(s.username, s.password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            self._close(smtp)
            if 400 <= exc.code < 500:
                raise SendError(FailureKind.THROTTLED, self._said("AUTH", exc), retry_after=30.0) from None
            problem = f"authentication as {s.username!r} refused: {exc.code} {exc.message}"
            self._auth_refused = (time.time(), f"{exc.code} {exc.message}")
            raise self._config(problem) from None
        except ssl.SSLError as exc:
            self._close(smtp)
            raise self._config(f"TLS failed: {exc}") from None
        except aiosmtplib.SMTPConnectResponseError as exc:
            self._close(smtp)
            if 400 <= exc.code < 500:
                said = self._said("greeting", exc)
                raise SendError(FailureKind.THROTTLED, said, retry_after=30.0) from None
            raise self._config(self._said("greeting", exc)) from None
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, OSError, TimeoutError) as exc:
            self._close(smtp)
            if isinstance(exc.__cause__, ssl.SSLError):  # implicit TLS: the handshake failed
                raise self._config(f"TLS failed: {exc.__cause__}") from None
            raise SendError(
                FailureKind.UNAVAILABLE,
                f"{self.label}: cannot connect to {s.host}:{s.port}: {exc}",
                retry_after=UNAVAILABLE_WAIT_S,
            ) from None
        except aiosmtplib.SMTPException as exc:
            self._close(smtp)
            # e.g. STARTTLS not offered, AUTH not offered: the relay is not what the config says
            raise self._config(f"{exc}") from None
        return smtp, False

    def _config(self, problem: str) -> SendError:
        text = f"{self.label} ({self.settings.host}:{self.settings.port}): {problem}"
        now = time.monotonic()
        if now - self._loud_at >= LOUD_EVERY_S:
            self._loud_at = now
            log.error("smtp relay %s", text)
        return SendError(FailureKind.CONFIG, text)

    def _said(self, stage: str, exc: aiosmtplib.SMTPResponseException) -> str:
        return f"{self.label}: {exc.code} {exc.message} (at {stage})"

    def _temporary(self, m: Outbound, what: str) -> SendError:
        age = age_s(m.transid, time.time())
        if m.expiry is None and age > FREE_RETRY_FOR_S:
            days = FREE_RETRY_FOR_S / 86400
            return SendError(FailureKind.REJECTED, f"{what}; still refused {days:g} days on", code=EXPIRED)
        wait = min(BACKOFF_MAX_S, max(BACKOFF_MIN_S, age / 2))
        return SendError(FailureKind.THROTTLED, what, retry_after=wait)

    def _refused(self, m: Outbound, code: int, text: str) -> SendError:
        what = f"{self.label}: {code} {text} (at RCPT TO {m.address})"
        if 400 <= code < 500:
            return self._temporary(m, what)
        return SendError(FailureKind.GONE, what, code=BOUNCE)

    def _sender_refused(self, m: Outbound, code: int, text: str) -> SendError:
        what = f"{self.label}: {code} {text} (at MAIL FROM)"
        if 400 <= code < 500:
            return self._temporary(m, what)
        return SendError(FailureKind.REJECTED, what, code=NOT_VERIFIED)

    def _data_refused(self, m: Outbound, code: int, text: str) -> SendError:
        what = f"{self.label}: {code} {text} (at DATA)"
        if 400 <= code < 500:
            return self._temporary(m, what)
        return SendError(FailureKind.GONE, what, code=BOUNCE)

    def _other(self, m: Outbound, code: int, text: str) -> SendError:
        what = f"{self.label}: {code} {text}"
        if 400 <= code < 500:
            return self._temporary(m, what)
        return SendError(FailureKind.REJECTED, what, code="7554")


async def _sendmail(
    smtp: aiosmtplib.SMTP,
    sender: str,
    recipients: list[str],
    data: bytes,
    dsn: Dsn | None,
    reply_wait_s: float,
) -> tuple[dict[str, aiosmtplib.SMTPResponse], aiosmtplib.SMTPResponse]:
    """aiosmtplib's `sendmail` for addresses Tidings has already checked (ASCII `local@domain`): the
    same commands, errors and RSET after a refusal, without its per-address RFC 5322 parsing (a tenth
    of the connector's CPU per email on the bench), and pipelined when the relay offers it. The refused
    recipients by address, and the relay's reply to the message."""
    if smtp.is_ehlo_or_helo_needed:
        try:
            await smtp.ehlo()
        except aiosmtplib.SMTPHeloError:
            if not smtp.is_connected:
                raise
            await smtp.helo()
    options = [b"SIZE=%d" % len(data)] if smtp.supports_extension("size") else []
    rcpts: Rcpts = [(address, []) for address in recipients]
    if dsn is not None and smtp.supports_extension("dsn"):
        dsn.asked = True
        options += dsn.mail_options()
        rcpts = [(address, dsn.rcpt_options(address)) for address in recipients]
    try:
        if smtp.supports_extension("pipelining"):
            refused, done = await pipelined(smtp, sender, rcpts, data, options, reply_wait_s)
        else:
            refused, done = await _lockstep(smtp, sender, rcpts, data, options)
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
        # the envelope reset for the session's next message, as sendmail does
        with contextlib.suppress(ConnectionError, aiosmtplib.SMTPResponseException):
            await smtp.rset()
        raise
    return {e.recipient: aiosmtplib.SMTPResponse(e.code, e.message) for e in refused}, done


async def _lockstep(
    smtp: aiosmtplib.SMTP, sender: str, recipients: Rcpts, data: bytes, options: list[bytes]
) -> tuple[list[aiosmtplib.SMTPRecipientRefused], aiosmtplib.SMTPResponse]:
    """The transaction a command at a time, for a relay that does not offer PIPELINING."""
    reply = await smtp.execute_command(b"MAIL", b"FROM:<%s>" % sender.encode("ascii"), *options)
    if reply.code != 250:
        raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender)
    refused: list[aiosmtplib.SMTPRecipientRefused] = []
    for address, params in recipients:
        reply = await smtp.execute_command(b"RCPT", b"TO:<%s>" % address.encode("ascii"), *params)
        if reply.code not in (250, 251):
            refused.append(aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, address))
    if len(refused) == len(recipients):
        raise aiosmtplib.SMTPRecipientsRefused(refused)
    return refused, await smtp.data(data)


def dkim_keys(email: EmailConfig) -> list[Key]:
    """The configured DKIM keys, RSA first: its signature is the topmost header, the one a verifier that
    reads only the first signature (dkimpy's `verify()` does by default) can check whatever it knows."""
    keys = []
    if email.signs_rsa:
        keys.append(rsa_key(email.dkim_selector, resolve(email.base_dir, email.dkim_key_file)))
    if email.signs_ed25519:
        path = resolve(email.base_dir, email.dkim_ed25519_key_file)
        keys.append(ed25519_key(email.dkim_ed25519_selector, path))
    return keys


def envelope(sender: str, recipients: list[str], data: bytes, dsn: Dsn | None = None) -> str:
    """What a message's provider attempt shows of what went to the relay: the envelope (with the DSN
    parameters when the relay took them), the message's size and its headers (not its body)."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    asked = dsn if dsn is not None and dsn.asked else None
    mail = "".join(f" {o.decode()}" for o in asked.mail_options()) if asked else ""
    rcpts = "".join(
        f"RCPT TO:<{a}>{''.join(f' {o.decode()}' for o in asked.rcpt_options(a)) if asked else ''}\n"
        for a in recipients
    )
    return f"MAIL FROM:<{sender}>{mail}\n{rcpts}DATA ({len(data):,} bytes), its headers:\n{head}"
