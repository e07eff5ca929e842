"""One SMTP transaction with its envelope pipelined (RFC 2920), on a session aiosmtplib set up.

aiosmtplib 4 connects, does TLS, EHLO and AUTH well, but waits for each reply before the next command,
and its reader cannot take several replies arriving in one read (it parses one and leaves the rest
until more bytes come, which never happens after the last). When the relay offers PIPELINING, the
envelope (MAIL FROM, every RCPT TO, DATA) goes out in one write and its replies are read in order as
they come, so a message costs two round trips whatever its number of recipients, instead of two plus
one per recipient. For that transaction the session's transport is handed to `_Replies` (asyncio's
`set_protocol`) and then back to aiosmtplib's protocol, which meanwhile sees only a lost connection.

Outcomes are aiosmtplib's own exceptions, as its command-by-command path raises them, so the connector
maps both paths alike:
    MAIL FROM refused                   SMTPSenderRefused
    every RCPT TO refused               SMTPRecipientsRefused
    DATA or the message refused         SMTPDataError
    no reply within the timeout         SMTPReadTimeoutError (the session is unusable: close it)
    connection lost                     SMTPServerDisconnected
A relay that answers DATA with 354 although nothing before it was accepted gets a lone "." (an empty
message it must not deliver, RFC 2920 section 3.1) before the refusal is raised.
"""

import asyncio
import re
from collections import deque
from typing import cast

import aiosmtplib

# RFC 5321 4.5.3.1.5: a reply line is at most 512 octets; a relay's can be longer, but not unbounded.
MAX_REPLY_BYTES = 64 * 1024
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


class _Replies(asyncio.Protocol):
    """SMTP replies as they come, several per read or one across several reads, in order."""

    def __init__(self, previous: asyncio.BaseProtocol) -> None:
        self._previous = previous
        self._buffer = bytearray()
        self._lines: list[str] = []
        self._ready: deque[aiosmtplib.SMTPResponse] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[: end + 1])
            del self._buffer[: end + 1]
            self._line(line)
        if len(self._buffer) > MAX_REPLY_BYTES:
            self._fail(aiosmtplib.SMTPResponseException(500, "reply too long"))
        self._wake()

    def _line(self, line: bytes) -> None:
        try:
            code = int(line[:3])
        except ValueError:
            text = line.decode("utf-8", "replace").strip()
            self._fail(aiosmtplib.SMTPResponseException(-1, f"malformed SMTP reply line: {text}"))
            return
        self._lines.append(line[4:].strip(b" \t\r\n").decode("utf-8", "surrogateescape"))
        if line[3:4] != b"-":  # the last line of a reply
            self._ready.append(aiosmtplib.SMTPResponse(code, "\n".join(self._lines)))
            self._lines = []

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(aiosmtplib.SMTPServerDisconnected(f"connection lost: {exc}" if exc else "connection lost"))
        self._wake()
        self._previous.connection_lost(exc)  # aiosmtplib's session learns it is closed

    def eof_received(self) -> bool | None:
        return None  # close the transport: the relay hung up

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self, reply_wait_s: float) -> aiosmtplib.SMTPResponse:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + reply_wait_s
        while not self._ready:
            if self._error is not None:
                raise self._error
            self._waiter = loop.create_future()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._waiter
            except TimeoutError:
                raise aiosmtplib.SMTPReadTimeoutError("no reply in time") from None
        return self._ready.popleft()


def dot_stuffed(data: bytes) -> bytes:
    """The message as DATA carries it: CRLF line ends, a leading dot doubled, then the lone dot."""
    data = _LEADING_DOT.sub(b"..", _LINE_ENDS.sub(b"\r\n", data))
    return data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n")


# each recipient with its RCPT TO parameters (DSN's NOTIFY and ORCPT, notify.py), in the order sent
Rcpts = list[tuple[str, list[bytes]]]


async def pipelined(
    smtp: aiosmtplib.SMTP,
    sender: str,
    recipients: Rcpts,
    data: bytes,
    options: list[bytes],
    reply_wait_s: float,
) -> tuple[list[aiosmtplib.SMTPRecipientRefused], aiosmtplib.SMTPResponse]:
    """Send one message over `smtp` (EHLO done, PIPELINING offered): the refused recipients, when some
    but not all were refused, and the relay's reply to the message. Raises as the module says; the
    caller resets the envelope after a refusal."""
    # (any stream transport: asyncio's own or uvloop's, which are not asyncio.Transport subclasses)
    transport = cast(asyncio.Transport | None, smtp.transport)
    if transport is None or transport.is_closing():
        raise aiosmtplib.SMTPServerDisconnected("connection lost")
    previous = transport.get_protocol()
    replies = _Replies(previous)
    transport.set_protocol(replies)
    try:
        mail = b" ".join([b"MAIL FROM:<%s>" % sender.encode("ascii"), *options])
        rcpts = [
            b" ".join([b"RCPT TO:<%s>" % address.encode("ascii"), *params]) + b"\r\n"
            for address, params in recipients
        ]
        transport.write(b"".join([mail, b"\r\n", *rcpts, b"DATA\r\n"]))
        mail_reply = await replies.next(reply_wait_s)
        refused: list[aiosmtplib.SMTPRecipientRefused] = []
        for address, _ in recipients:
            reply = await replies.next(reply_wait_s)
            if reply.code not in (250, 251):
                refused.append(aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, address))
        go_ahead = await replies.next(reply_wait_s)
        nothing_accepted = mail_reply.code != 250 or len(refused) == len(recipients)
        if nothing_accepted and go_ahead.code == 354:
            transport.write(b".\r\n")
            await replies.next(reply_wait_s)
        if mail_reply.code != 250:
            raise aiosmtplib.SMTPSenderRefused(mail_reply.code, mail_reply.message, sender)
        if nothing_accepted:
            raise aiosmtplib.SMTPRecipientsRefused(refused)
        if go_ahead.code != 354:
            raise aiosmtplib.SMTPDataError(go_ahead.code, go_ahead.message)
        transport.write(dot_stuffed(data))
        done = await replies.next(reply_wait_s)
        if done.code != 250:
            raise aiosmtplib.SMTPDataError(done.code, done.message)
        return refused, done
    finally:
        if not transport.is_closing():
            transport.set_protocol(previous)
