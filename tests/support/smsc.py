"""SMSCs for the SMPP tests: the real `tidings smsc` simulator as a subprocess, and a deliberately rude
fake SMSC (an asyncio server in a background thread) whose every answer a test can script."""

import asyncio
import base64
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import free_port
from tidings.smpp.pdu import Cmd, Pdu, Status, Tag, cstring_tlv
from tidings.smpp.session import Session


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    """Poll `predicate` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


KEY_SMPP = "key-smpp-0101"
SECRET_SMPP = b"smpp-service-secret-0123456789"
SMSC_PASSWORD = "smpp-pw1"  # must never appear in Tidings' output
SERVICE_NUMBER = "+447700900000"
SENDER_NUMBER = "+447700900555"

# Everything of the SMPP tests' config that must never appear in Tidings' output.
SMPP_SECRETS = [SMSC_PASSWORD, KEY_SMPP, SECRET_SMPP.decode(), base64.b64encode(SECRET_SMPP).decode()]


def assert_no_smpp_secrets(output: str) -> None:
    leaked = [secret for secret in SMPP_SECRETS if secret in output]
    assert not leaked, f"secrets in tidings' output: {leaked}"


_numbers = itertools.count(10_000)


def fresh_msisdn() -> str:
    """A UK test-range number not used before in this process whose last four digits are no failure code."""
    while True:
        n = next(_numbers)
        if not f"{n % 10_000:04d}".startswith("7"):
            return f"+4477009{n % 100_000:05d}"


def tidings_config(
    smsc_port: int,
    *,
    notify_url: str = "",
    inbound_url: str = "",
    notify_retries: int = 3,
    **smsc_extra: Any,
) -> str:
    """A config with one service (KEY_SMPP) whose SMS go through an SMSC on `smsc_port`."""
    secret = base64.b64encode(SECRET_SMPP).decode()
    return f"""
[notify]
timeout_s = 2
retries = {notify_retries}
retry_interval_s = 0.2

[[services]]
id = "svc-smpp"
name = "smpp"
key = "{KEY_SMPP}"
secret = "{secret}"
senderids = ["CONNCT", "{SENDER_NUMBER}", "12345"]
notify_url = "{notify_url}"
inbound_url = "{inbound_url}"
numbers = ["{SERVICE_NUMBER}"]

""" + smsc_config("carrier-a", smsc_port, **smsc_extra)


def smsc_config(
    name: str,
    port: int,
    *,
    password: str = SMSC_PASSWORD,
    system_id: str = "tidings",
    **extra: Any,
) -> str:
    """A [[smsc]] table and the route that sends SMS through it; `extra` adds keys (strings quoted)."""
    lines = [
        "[[smsc]]",
        f'name = "{name}"',
        'host = "127.0.0.1"',
        f"port = {port}",
        f'system_id = "{system_id}"',
        f'password = "{password}"',
    ]
    defaults: dict[str, Any] = {"enquire_link_s": 5, "response_timeout_s": 2, "reconnect_max_s": 1}
    for key, value in {**defaults, **extra}.items():
        lines.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}")
    lines += ["", "[routes]", f'sms = "{name}"', ""]
    return "\n".join(lines)


# -- the real simulator ------------------------------------------------------------------------------


class SimulatorProcess:
    """`tidings smsc` on free loopback ports, with its HTTP control port."""

    def __init__(self, workdir: Path, *args: str, dlr_delay_ms: int = 50) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.control_port = free_port()
        while self.control_port == self.port:
            self.control_port = free_port()
        self.args = [
            sys.executable,
            "-m",
            "tidings",
            "smsc",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--control-port",
            str(self.control_port),
            "--dlr-delay-ms",
            str(dlr_delay_ms),
            *args,
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.control = httpx.Client(base_url=f"http://127.0.0.1:{self.control_port}", timeout=10)

    def start(self, timeout: float = 15.0) -> "SimulatorProcess":
        env = {k: v for k, v in os.environ.items() if k != "TIDINGS_CONFIG"}
        out = open(self.workdir / "smsc.out.txt", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.args, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, env=env
        )
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tidings smsc exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if self.control.get("/stats", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"tidings smsc did not answer within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        path = self.workdir / "smsc.out.txt"
        return path.read_text(errors="replace") if path.exists() else ""

    def stats(self) -> dict[str, Any]:
        return dict(self.control.get("/stats").json())

    def submits(self) -> list[dict[str, Any]]:
        return list(self.control.get("/submits").json())

    def mo(self, source: str, destination: str, text: str) -> httpx.Response:
        return self.control.post("/mo", json={"from": source, "to": destination, "text": text})

    def wait_bound(self, count: int = 1, timeout: float = 10.0) -> None:
        wait_until(lambda: len(self.stats()["bound"]) >= count, timeout, "a bind at the simulator")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def close(self) -> None:
        self.stop()
        self.control.close()


# -- the rude fake ----------------------------------------------------------------------------------


@dataclass
class Submit:
    """One submit_sm as the fake saw it, and what it answered."""

    connection: int
    destination: str
    text: bytes
    pdu: Pdu
    reply: str = ""  # "accepted", "status 0x..", "nack 0x..", "unanswered"
    message_id: str = ""
    received_at: float = 0.0  # time.monotonic()
    answered_at: float | None = None


@dataclass(frozen=True)
class Reply:
    """How the fake answers one submit_sm.

    kind: "accept" (submit_sm_resp with a message id, then a receipt), "status" (submit_sm_resp with
    `status`), "nack" (generic_nack with `status`), "ignore" (no answer), "drop" (no answer, and the
    connection is closed once `drop_after` unanswered submits have been read on it). For an accept,
    `stat`/`err`/`receipt_delay_s` override the fake's ReceiptStyle and delay for this one receipt."""

    kind: str = "accept"
    status: int = 0
    stat: str | None = None
    err: str | None = None
    receipt_delay_s: float | None = None
    resp_delay_s: float = 0.0  # accept: answer this much later
    # accept: send these receipts (stat, err, delay_s) instead of the one the style describes
    receipts: tuple[tuple[str, str, float], ...] = ()
    park_receipt: bool = False  # accept: keep the receipt until release_parked()


ACCEPT = Reply()


@dataclass
class ReceiptStyle:
    """How the fake writes message ids and receipts.

    resp_id(n) is the id in submit_sm_resp; receipt_id(n) the id the receipt names; form is "both"
    (text and TLVs), "text" (text only, esm_class 0x04), "tlv" (receipted_message_id and message_state
    TLVs, empty text); before_resp writes the receipt on the wire before the submit_sm_resp."""

    resp_id: Callable[[int], str] = lambda n: format(n, "X")
    receipt_id: Callable[[int], str] = lambda n: format(n, "X")
    form: str = "both"
    before_resp: bool = False
    stat: str = "DELIVRD"
    err: str = "000"


@dataclass
class Event:
    connection: int
    command: str
    at: float
    status: int = 0


@dataclass
class _Conn:
    number: int
    session: Session
    system_id: str = ""
    bound: bool = False
    unanswered: int = 0
    dropped: bool = False  # hung up on: PDUs that came in the same read are not looked at


class RudeSmsc:
    """A fake SMSC that misbehaves on purpose, scripted by attributes a test may change at any time:

    - `policy(submit, n)` -> Reply, n counting every submit_sm seen from 1;
    - `refuse_binds`: answer binds with ESME_RINVPASWD;
    - `answer_enquire_link`: when False, enquire_link gets no answer;
    - `drop_after`: with Reply("drop"), the connection closes after that many unanswered submits;
    - `style`: ReceiptStyle; `receipt_delay_s`: time from the accept to the receipt.

    Everything it sees is recorded: `events` (binds, enquire_links, unbinds, submits), `submits`,
    `receipts_acked`."""

    FIRST_ID = 0xA1B2

    def __init__(self, *, receipt_delay_s: float = 0.05) -> None:
        self.port = 0
        self.policy: Callable[[Submit, int], Reply] = lambda s, n: ACCEPT
        self.refuse_binds = False
        self.answer_enquire_link = True
        self.drop_after = 1
        self.style = ReceiptStyle()
        self.receipt_delay_s = receipt_delay_s
        self.events: list[Event] = []
        self.submits: list[Submit] = []
        self.receipts_acked: list[str] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(self.FIRST_ID)
        self._conn_numbers = itertools.count(1)
        self._conns: list[_Conn] = []
        self._held: list[tuple[str, Pdu]] = []
        self._parked: list[tuple[str, Pdu]] = []
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="rude-smsc", daemon=True)

    # -- life ----------------------------------------------------------------------------------------

    def start(self) -> "RudeSmsc":
        self._thread.start()
        self.port = self._call(self._start())
        return self

    async def _start(self) -> int:
        self._server = await self._loop.create_server(self._new_session, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _stop(self) -> None:
        for conn in list(self._conns):
            conn.session.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.sleep(0.05)  # let the aborted transports finish closing

    def restart(self) -> None:
        """What a restart of an SMSC that numbers its message ids from the start again looks like from
        outside: every connection drops, and the next accepted submit gets FIRST_ID again."""
        self._call(self._restart())

    async def _restart(self) -> None:
        self._ids = itertools.count(self.FIRST_ID)
        for conn in list(self._conns):
            conn.bound = False
            conn.session.abort()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # -- what it saw (thread-safe snapshots) -----------------------------------------------------------

    def seen(self, command: str) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.command == command]

    def accepted(self) -> list[Submit]:
        with self._lock:
            return [s for s in self.submits if s.reply == "accepted"]

    def all_submits(self) -> list[Submit]:
        with self._lock:
            return list(self.submits)

    def binds(self) -> list[Event]:
        return [e for e in self.seen("bind") if e.status == 0]

    def bound_connections(self) -> int:
        return self._call(self._bound_count())

    async def _bound_count(self) -> int:
        return sum(1 for c in self._conns if c.bound and c.session.is_open)

    def _record(self, conn: _Conn, command: str, status: int = 0) -> None:
        with self._lock:
            self.events.append(Event(conn.number, command, time.monotonic(), status))

    # -- SMPP ----------------------------------------------------------------------------------------

    def _new_session(self) -> Session:
        holder: list[_Conn] = []
        session = Session(lambda s, pdu: self._on_request(holder[0], pdu), "rude-smsc")
        conn = _Conn(next(self._conn_numbers), session)
        holder.append(conn)
        self._conns.append(conn)
        session.closed.add_done_callback(lambda _: self._conns.remove(conn) if conn in self._conns else None)
        return session

    def _on_request(self, conn: _Conn, pdu: Pdu) -> None:
        if conn.dropped:
            return
        cmd = pdu.command_id
        session = conn.session
        if cmd in (Cmd.BIND_TRANSCEIVER, Cmd.BIND_TRANSMITTER, Cmd.BIND_RECEIVER):
            if self.refuse_binds:
                self._record(conn, "bind", Status.RINVPASWD)
                session.respond(pdu, Status.RINVPASWD)
                return
            conn.bound, conn.system_id = True, pdu.text("system_id")
            self._record(conn, "bind")
            session.respond(pdu, system_id="rude")
            held, self._held = self._held, []
            for rid, receipt in held:
                self._deliver(rid, receipt)
        elif cmd == Cmd.ENQUIRE_LINK:
            self._record(conn, "enquire_link")
            if self.answer_enquire_link:
                session.respond(pdu)
        elif cmd == Cmd.UNBIND:
            self._record(conn, "unbind")
            session.respond(pdu)
            session.close()
        elif cmd == Cmd.SUBMIT_SM:
            self._submit(conn, pdu)
        else:
            self._record(conn, f"other 0x{cmd:08X}")
            session.send(Pdu(Cmd.GENERIC_NACK, Status.RINVCMDID, pdu.sequence))

    def _submit(self, conn: _Conn, pdu: Pdu) -> None:
        payload = pdu.tlvs.get(Tag.MESSAGE_PAYLOAD) or pdu.octets("short_message")
        submit = Submit(conn.number, pdu.text("destination_addr"), payload, pdu, received_at=time.monotonic())
        with self._lock:
            self.submits.append(submit)
            n = len(self.submits)
            self.events.append(Event(conn.number, "submit_sm", time.monotonic()))
        reply = self.policy(submit, n)
        session = conn.session
        if reply.kind == "status":
            submit.reply = f"status 0x{reply.status:02X}"
            submit.answered_at = time.monotonic()
            session.respond(pdu, reply.status)
        elif reply.kind == "nack":
            submit.reply = f"nack 0x{reply.status:02X}"
            submit.answered_at = time.monotonic()
            session.send(Pdu(Cmd.GENERIC_NACK, reply.status, pdu.sequence))
        elif reply.kind in ("ignore", "drop"):
            submit.reply = "unanswered"
            conn.unanswered += 1
            if reply.kind == "drop" and conn.unanswered >= self.drop_after:
                conn.bound, conn.dropped = False, True
                session.abort()
        else:
            number = next(self._ids)
            style = self.style
            submit.message_id = style.resp_id(number)
            submit.reply = "accepted"
            rid = style.receipt_id(number)
            receipt = self._receipt(rid, pdu, reply.stat or style.stat, reply.err or style.err, style.form)
            if style.before_resp:
                # The receipt overtakes its own submit_sm_resp: written just before it, in the same
                # callback, so both leave in one burst with the receipt first.
                self._deliver(rid, receipt, conn)
                self._answer(submit, session)
            elif reply.resp_delay_s > 0:
                self._loop.call_later(reply.resp_delay_s, self._answer, submit, session, receipt, rid, reply)
            else:
                self._answer(submit, session, receipt, rid, reply)

    def _answer(
        self,
        submit: Submit,
        session: Session,
        receipt: Pdu | None = None,
        rid: str = "",
        reply: Reply = ACCEPT,
    ) -> None:
        submit.answered_at = time.monotonic()
        session.respond(submit.pdu, message_id=submit.message_id)
        if receipt is None:
            return
        if reply.park_receipt:
            self._parked.append((rid, receipt))
            return
        if reply.receipts:
            for stat, err, delay in reply.receipts:
                extra = self._receipt(rid, submit.pdu, stat, err, self.style.form)
                self._loop.call_later(delay, self._deliver, rid, extra)
            return
        delay = self.receipt_delay_s if reply.receipt_delay_s is None else reply.receipt_delay_s
        self._loop.call_later(delay, self._deliver, rid, receipt)

    def release_parked(self) -> None:
        """Send the receipts kept back by Reply(park_receipt=True)."""
        self._call(self._release_parked())

    async def _release_parked(self) -> None:
        parked, self._parked = self._parked, []
        for rid, receipt in parked:
            self._deliver(rid, receipt)

    # -- requests from the SMSC's side -----------------------------------------------------------------

    def request(self, pdu: Pdu, timeout: float = 5.0) -> Pdu:
        """Send `pdu` on the newest bound connection; return Tidings' response to it."""
        return self._call(self._request(pdu, timeout))

    async def _request(self, pdu: Pdu, limit_s: float) -> Pdu:
        conn = next((c for c in reversed(self._conns) if c.bound and c.session.is_open), None)
        if conn is None:
            raise AssertionError("no bound connection to send on")
        if pdu.command_id == Cmd.UNBIND:
            conn.bound = False
        async with asyncio.timeout(limit_s):
            return await conn.session.request(pdu)

    def _receipt(self, receipt_id: str, submit: Pdu, stat: str, err: str, form: str) -> Pdu:
        states = {
            "ENROUTE": 1,
            "DELIVRD": 2,
            "EXPIRED": 3,
            "UNDELIV": 5,
            "ACCEPTD": 6,
            "UNKNOWN": 7,
            "REJECTD": 8,
        }
        stamp = time.strftime("%y%m%d%H%M", time.gmtime())
        text = b""
        tlvs: dict[int, bytes] = {}
        if form in ("both", "text"):
            # Appendix B: `text:` carries the first 20 characters of the message, as SMSCs do.
            sent = submit.octets("short_message") if submit.number("data_coding") == 0 else b""
            if sent and submit.number("esm_class") & 0x40:
                sent = sent[1 + sent[0] :]  # without the UDH
            sent = sent[:20]
            text = (
                f"id:{receipt_id} sub:001 dlvrd:001 submit date:{stamp} done date:{stamp} "
                f"stat:{stat} err:{err} text:"
            ).encode("ascii") + sent
        if form in ("both", "tlv"):
            tlvs = {
                Tag.RECEIPTED_MESSAGE_ID: cstring_tlv(receipt_id),
                Tag.MESSAGE_STATE: bytes([states.get(stat, 7)]),
            }
        return Pdu(
            Cmd.DELIVER_SM,
            params={
                "source_addr_ton": 1,
                "source_addr_npi": 1,
                "source_addr": submit.text("destination_addr"),
                "destination_addr": submit.text("source_addr"),
                "esm_class": 0x04,
                "short_message": text,
            },
            tlvs=tlvs,
        )

    def _deliver(self, rid: str, receipt: Pdu, conn: _Conn | None = None) -> None:
        if conn is None:
            conn = next((c for c in reversed(self._conns) if c.bound and c.session.is_open), None)
        if conn is None:
            self._held.append((rid, receipt))
            return
        receipt.sequence = 0
        fut = conn.session.request(receipt)

        def done(f: "asyncio.Future[Pdu]") -> None:
            if not f.cancelled() and f.exception() is None and f.result().status == 0:
                with self._lock:
                    self.receipts_acked.append(rid)
            else:
                self._loop.call_later(0.2, self._deliver, rid, receipt)

        fut.add_done_callback(done)
