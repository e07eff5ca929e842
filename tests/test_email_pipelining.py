"""The SMTP connector pipelines its envelope (RFC 2920) when the relay offers PIPELINING, and keeps to
one command at a time when it does not, against a strict relay on loopback that enforces each:

- offering PIPELINING, it answers nothing of an envelope until the DATA that ends it has arrived (a
  client that waits for the MAIL FROM reply before its RCPT TOs waits forever), then every reply in one
  write, as RFC 2920 servers buffer them: several replies in one read, which aiosmtplib alone cannot
  take;
- not offering it, it holds each reply 20 ms and records any command that comes before the reply to
  the one before it.

Refusals inside a pipelined envelope (one recipient, every recipient, the sender) leave the session in
step: the relay sees RSET and the next message goes over the same connection."""

import asyncio
from dataclasses import dataclass, field

from tidings.channels.base import FailureKind, Outbound, SendError, SendResult
from tidings.channels.email.connector import SmtpConnector
from tidings.channels.email.settings import EmailConfig, SmtpConfig
from tidings.ids import new_id
from tidings.schema.email import EmailContent

BOUNCES = "bounces.example.com"
HOLD_S = 0.02


@dataclass
class Relay:
    pipelining: bool
    split: bool = False  # each reply written in two pieces, a little apart
    refuse_sender: bool = False
    commands: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    connections: int = 0
    out_of_turn: list[str] = field(default_factory=list)  # commands that came before their turn


class _Session(asyncio.Protocol):
    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.buffer = b""
        self.body: bytes | None = None  # collecting DATA when not None
        self.envelope: list[str] = []  # pipelined commands held until DATA
        self.accepted_rcpts = 0
        self.busy = False  # a reply is held (lock-step relay)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.relay.connections += 1
        transport.write(b"220 strict.example ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            if self.body is not None:
                self._body_line(line)
            else:
                self._command(line.decode())

    def _body_line(self, line: bytes) -> None:
        assert self.body is not None
        if line == b".":
            self.relay.bodies.append(self.body)
            self.body = None
            self._reply(["250 2.0.0 queued"] if self.accepted_rcpts else ["554 5.5.1 no valid recipients"])
            return
        self.body += (line[1:] if line.startswith(b".") else line) + b"\r\n"

    def _command(self, line: str) -> None:
        self.relay.commands.append(line)
        verb = line[:4].upper()
        if self.busy:
            self.relay.out_of_turn.append(line)
        if verb == "EHLO":
            extensions = ["SIZE 10000000", *(["PIPELINING"] if self.relay.pipelining else []), "8BITMIME"]
            self._reply(
                ["250-strict.example", *[f"250-{x}" for x in extensions[:-1]], f"250 {extensions[-1]}"]
            )
        elif verb in ("MAIL", "RCPT", "DATA") and self.relay.pipelining:
            self.envelope.append(line)
            if verb == "DATA":
                replies = [self._answer(c) for c in self.envelope]
                self.envelope = []
                self._reply([r for reply in replies for r in reply])
        elif verb in ("MAIL", "RCPT", "DATA"):
            self._reply(self._answer(line))
        elif verb == "RSET":
            self.accepted_rcpts = 0
            self._reply(["250 2.0.0 reset"])
        elif verb == "QUIT":
            self._reply(["221 bye"])
            self.transport.close()
        else:
            self._reply(["502 5.5.2 what"])

    def _answer(self, line: str) -> list[str]:
        verb = line[:4].upper()
        if verb == "MAIL":
            self.accepted_rcpts = 0
            self.mail_ok = not self.relay.refuse_sender
            return ["250 2.1.0 ok"] if self.mail_ok else ["553 5.7.1 sender not allowed"]
        if verb == "RCPT":
            if not self.mail_ok:
                return ["503 5.5.1 MAIL first"]
            if "nobody" in line:
                return ["550-5.1.1 no such user", "550 5.1.1 really"]
            self.accepted_rcpts += 1
            return ["250-2.1.5 fine", "250 2.1.5 ok"]  # a multi-line reply
        if not self.accepted_rcpts:
            return ["554 5.5.1 no valid recipients"]
        self.body = b""
        return ["354 go ahead"]

    def _reply(self, lines: list[str]) -> None:
        data = "".join(f"{line}\r\n" for line in lines).encode()
        loop = asyncio.get_running_loop()
        if self.relay.split:
            half = len(data) // 2 + 1
            self.transport.write(data[:half])
            loop.call_later(HOLD_S, self.transport.write, data[half:])
        elif not self.relay.pipelining:
            self.busy = True
            loop.call_later(HOLD_S, self._release, data)
        else:
            self.transport.write(data)

    def _release(self, data: bytes) -> None:
        self.busy = False
        if not self.transport.is_closing():
            self.transport.write(data)


def message(address: str, text: str = "Hello", cc: list[str] | None = None) -> Outbound:
    content = EmailContent(sender="news@example.com", subject="Hi", type="text", text=text, cc=cc or [])
    return Outbound(new_id(), "svc", "email", address, content, 1, None, "email")


def run(relay: Relay, *batches: list[Outbound]) -> list[list[SendResult | SendError]]:
    """Each batch sent in turn by one connector (one session: connections=1) to the strict relay."""

    async def go() -> list[list[SendResult | SendError]]:
        server = await asyncio.get_running_loop().create_server(lambda: _Session(relay), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        settings = SmtpConfig(name="strict", port=port, security="none", connections=1, timeout_s=2.0)
        connector = SmtpConnector(settings, EmailConfig(bounce_domain=BOUNCES))
        await connector.start(None)  # type: ignore[arg-type]  # it takes nothing from the inbox
        try:
            return [await connector.send(batch) for batch in batches]
        finally:
            await connector.stop()
            server.close()

    return asyncio.run(go())


def envelopes(relay: Relay) -> list[str]:
    return [
        c.split(":")[0].split(" ")[0] for c in relay.commands if c[:4] in ("MAIL", "RCPT", "DATA", "RSET")
    ]


def test_the_envelope_goes_out_in_one_write_and_its_replies_come_back_in_one_read():
    relay = Relay(pipelining=True)
    first = message("a@example.net", "Hello\n.a line that starts with a dot\n..and two", cc=["c@example.net"])
    second = message("b@example.net")
    [[one], [two]] = run(relay, [first], [second])
    assert isinstance(one, SendResult) and isinstance(two, SendResult)
    assert (one.ext_id, two.ext_id) == (f"email:{first.transid}", f"email:{second.transid}")
    # The relay's reply to the message is what the provider attempt shows as its answer.
    assert one.exchange is not None and one.exchange.answer.startswith("250 ")
    assert relay.connections == 1
    assert envelopes(relay) == ["MAIL", "RCPT", "RCPT", "DATA", "MAIL", "RCPT", "DATA"]
    assert relay.commands[1].startswith(f"MAIL FROM:<bounces+{first.transid}@{BOUNCES}> SIZE=")
    assert relay.commands[2:4] == ["RCPT TO:<a@example.net>", "RCPT TO:<c@example.net>"]
    body = relay.bodies[0].decode()
    assert "\r\n.a line that starts with a dot\r\n..and two" in body  # dot-stuffing undone by the relay
    assert not relay.out_of_turn


def test_refusals_inside_a_pipelined_envelope_keep_the_session_in_step():
    relay = Relay(pipelining=True)
    cc_refused = message("a@example.net", cc=["nobody@example.net"])
    address_refused = message("nobody@example.org", cc=["c@example.net"])
    all_refused = message("nobody@example.com")
    after = message("b@example.net")
    results = run(relay, [cc_refused], [address_refused], [all_refused], [after])
    [[cc], [addressed], [every], [fine]] = results
    assert isinstance(cc, SendResult)  # the copy refused, the message itself delivered
    for refused in (addressed, every):
        assert isinstance(refused, SendError) and refused.kind is FailureKind.GONE and refused.code == "7520"
        assert "550 5.1.1 no such user\n5.1.1 really" in refused.description
    assert isinstance(fine, SendResult)
    assert relay.connections == 1  # one session throughout
    # the envelope of every refused recipient ends with RSET; DATA was refused (554), never a body
    assert envelopes(relay) == [
        *["MAIL", "RCPT", "RCPT", "DATA"],
        *["MAIL", "RCPT", "RCPT", "DATA"],
        *["MAIL", "RCPT", "DATA", "RSET"],
        *["MAIL", "RCPT", "DATA"],
    ]
    assert len(relay.bodies) == 3


def test_a_refused_sender_is_reset_and_reported():
    relay = Relay(pipelining=True, refuse_sender=True)
    [[result]] = run(relay, [message("a@example.net")])
    assert isinstance(result, SendError) and result.kind is FailureKind.REJECTED and result.code == "7522"
    assert "553 5.7.1 sender not allowed (at MAIL FROM)" in result.description
    assert envelopes(relay) == ["MAIL", "RCPT", "DATA", "RSET"]
    assert relay.bodies == []


def test_replies_split_across_reads_are_put_together():
    relay = Relay(pipelining=True, split=True)
    [[one, two]] = run(relay, [message("a@example.net", cc=["c@example.net"]), message("b@example.net")])
    assert isinstance(one, SendResult) and isinstance(two, SendResult)
    assert len(relay.bodies) == 2


def test_without_pipelining_offered_each_command_waits_for_its_reply():
    relay = Relay(pipelining=False)
    [[result]] = run(relay, [message("a@example.net", cc=["nobody@example.net", "c@example.net"])])
    assert isinstance(result, SendResult)
    assert envelopes(relay) == ["MAIL", "RCPT", "RCPT", "RCPT", "DATA"]
    assert relay.out_of_turn == []
    assert len(relay.bodies) == 1


def test_a_relay_that_never_answers_the_envelope_times_out_and_the_session_is_dropped():
    unanswered = Relay(pipelining=True)

    async def go() -> tuple[SendResult | SendError, SendResult | SendError]:
        class Mute(_Session):
            def _command(self, line: str) -> None:
                if line.startswith("DATA"):
                    return  # swallows the envelope: no reply at all
                super()._command(line)

        loop = asyncio.get_running_loop()
        mute = await loop.create_server(lambda: Mute(unanswered), "127.0.0.1", 0)
        port = mute.sockets[0].getsockname()[1]
        settings = SmtpConfig(name="mute", port=port, security="none", connections=1, timeout_s=0.5)
        connector = SmtpConnector(settings, EmailConfig(bounce_domain=BOUNCES))
        await connector.start(None)  # type: ignore[arg-type]
        try:
            [first] = await connector.send([message("a@example.net")])
            unanswered.commands.clear()
            [second] = await connector.send([message("b@example.net")])
            return first, second
        finally:
            await connector.stop()
            mute.close()

    first, second = asyncio.run(go())
    assert isinstance(first, SendError) and first.kind is FailureKind.TIMEOUT
    assert isinstance(second, SendError) and second.kind is FailureKind.TIMEOUT
    assert unanswered.connections == 2  # the timed-out session was not reused
