"""`tidings smsc`: an SMSC simulator for demos, tests and benchmarks.

It accepts binds (any credentials unless told which), answers submit_sm with message ids (numbered on
from the clock, so a restarted simulator never repeats one), and sends a delivery receipt (deliver_sm,
esm_class 0x04) `dlr_delay_ms` later: `stat:DELIVRD`, or, for a destination whose last four digits are
one of `failure_codes`, `stat:UNDELIV err:<code>` (`stat:EXPIRED` for 7208).
Receipts carry both forms an SMSC may use: the text and the receipted_message_id / message_state TLVs.
A small HTTP control port injects MO messages (`POST /mo`) and reports what it saw (`GET /stats`,
`GET /submits`).
"""

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tidings.smpp.encoding import encode_text, split, with_udh
from tidings.smpp.pdu import Cmd, Pdu, Status, Tag, cstring_tlv
from tidings.smpp.session import Session

log = logging.getLogger("tidings.smsc")

RECEIVING_BINDS = {Cmd.BIND_RECEIVER: "receiver", Cmd.BIND_TRANSCEIVER: "transceiver"}
BIND_MODES = {
    Cmd.BIND_TRANSMITTER: "transmitter",
    Cmd.BIND_RECEIVER: "receiver",
    Cmd.BIND_TRANSCEIVER: "transceiver",
}
SUBMITS_KEPT = 10_000


@dataclass
class Peer:
    session: Session
    system_id: str = ""
    mode: str = ""  # "" until bound

    @property
    def receives(self) -> bool:
        return self.mode in ("receiver", "transceiver")

    @property
    def transmits(self) -> bool:
        return self.mode in ("transmitter", "transceiver")


@dataclass
class Stats:
    binds: int = 0
    submitted: int = 0
    receipts_sent: int = 0
    receipts_acked: int = 0
    mo_sent: int = 0
    counts: dict[str, int] = field(default_factory=dict)


class Simulator:
    def __init__(
        self,
        *,
        dlr_delay_ms: int = 200,
        failure_codes: Iterable[str] = (),
        system_id: str | None = None,
        password: str | None = None,
        id_format: str = "hex",
        first_id: int | None = None,
    ) -> None:
        self.dlr_delay_s = dlr_delay_ms / 1000
        self.failure_codes = frozenset(failure_codes)
        self.system_id = system_id
        self.password = password
        self.id_format = id_format
        self.peers: list[Peer] = []
        self.stats = Stats()
        self.submits: deque[dict[str, Any]] = deque(maxlen=SUBMITS_KEPT)
        self._ids = itertools.count(first_id_now() if first_id is None else first_id)
        self._mo_ref = itertools.count(1)
        # Receipts waiting for a receiving bind of their system id (SMSCs hold them, they do not drop).
        self._held: dict[str, list[Pdu]] = {}
        self._servers: list[asyncio.AbstractServer | web.AppRunner] = []

    async def start(self, host: str, port: int, control_port: int | None = None) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(self._new_session, host, port)
        self._servers.append(server)
        if control_port is not None:
            runner = web.AppRunner(self._control_app(), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, host, control_port).start()
            self._servers.append(runner)

    async def stop(self) -> None:
        for peer in list(self.peers):
            peer.session.close()
        for server in self._servers:
            if isinstance(server, web.AppRunner):
                await server.cleanup()
            else:
                server.close()
                with contextlib.suppress(Exception):
                    await server.wait_closed()
        self._servers = []

    # -- SMPP ----------------------------------------------------------------------------------------

    def _new_session(self) -> Session:
        session = Session(self._on_request, "smsc")
        peer = Peer(session)
        self.peers.append(peer)
        session.closed.add_done_callback(lambda _: self.peers.remove(peer) if peer in self.peers else None)
        return session

    def _peer(self, session: Session) -> Peer:
        return next(p for p in self.peers if p.session is session)

    def _on_request(self, session: Session, pdu: Pdu) -> None:
        peer = self._peer(session)
        cmd = pdu.command_id
        if cmd in BIND_MODES:
            self._bind(peer, pdu)
        elif cmd == Cmd.ENQUIRE_LINK:
            session.respond(pdu)
        elif cmd == Cmd.UNBIND:
            session.respond(pdu)
            session.close()
        elif not peer.mode:
            session.respond(pdu, Status.RINVBNDSTS)
        elif cmd == Cmd.SUBMIT_SM:
            self._submit(peer, pdu)
        else:
            session.send(Pdu(Cmd.GENERIC_NACK, Status.RINVCMDID, pdu.sequence))

    def _bind(self, peer: Peer, pdu: Pdu) -> None:
        if peer.mode:
            peer.session.respond(pdu, Status.RALYBND)
            return
        system_id = pdu.text("system_id")
        if self.system_id is not None and system_id != self.system_id:
            peer.session.respond(pdu, Status.RINVSYSID)
            return
        if self.password is not None and pdu.text("password") != self.password:
            peer.session.respond(pdu, Status.RINVPASWD)
            return
        peer.system_id, peer.mode = system_id, BIND_MODES[Cmd(pdu.command_id)]
        self.stats.binds += 1
        peer.session.respond(pdu, system_id="tidings-smsc")
        if peer.receives:
            for receipt in self._held.pop(system_id, []):
                self._deliver(peer, receipt)

    def _submit(self, peer: Peer, pdu: Pdu) -> None:
        if not peer.transmits:
            peer.session.respond(pdu, Status.RINVBNDSTS)
            return
        number = next(self._ids)
        message_id = format(number, "X") if self.id_format == "hex" else str(number)
        self.stats.submitted += 1
        self.submits.append(_describe(pdu, message_id))
        peer.session.respond(pdu, message_id=message_id)
        if pdu.number("registered_delivery") & 0x03:
            asyncio.get_running_loop().call_later(
                self.dlr_delay_s, self._send_receipt, peer.system_id, pdu, message_id
            )

    def _send_receipt(self, system_id: str, submit: Pdu, message_id: str) -> None:
        destination = submit.text("destination_addr")
        code = destination[-4:]
        if code == "7208":
            stat, err, state = "EXPIRED", code, 3
        elif code in self.failure_codes:
            stat, err, state = "UNDELIV", code, 5
        else:
            stat, err, state = "DELIVRD", "000", 2
        self.stats.counts[stat] = self.stats.counts.get(stat, 0) + 1
        stamp = time.strftime("%y%m%d%H%M", time.gmtime())
        text = (
            f"id:{message_id} sub:001 dlvrd:{'001' if state == 2 else '000'} submit date:{stamp} "
            f"done date:{stamp} stat:{stat} err:{err} text:"
        )
        receipt = Pdu(
            Cmd.DELIVER_SM,
            params={
                "source_addr_ton": submit.number("dest_addr_ton"),
                "source_addr_npi": submit.number("dest_addr_npi"),
                "source_addr": destination,
                "dest_addr_ton": submit.number("source_addr_ton"),
                "dest_addr_npi": submit.number("source_addr_npi"),
                "destination_addr": submit.text("source_addr"),
                "esm_class": 0x04,
                "short_message": text.encode("ascii"),
            },
            tlvs={Tag.RECEIPTED_MESSAGE_ID: cstring_tlv(message_id), Tag.MESSAGE_STATE: bytes([state])},
        )
        peer = self._receiver(system_id)
        if peer is None:
            self._held.setdefault(system_id, []).append(receipt)
        else:
            self._deliver(peer, receipt)

    def _receiver(self, system_id: str) -> Peer | None:
        for peer in self.peers:
            if peer.receives and peer.system_id == system_id and peer.session.is_open:
                return peer
        return None

    def _deliver(self, peer: Peer, pdu: Pdu) -> None:
        fut = peer.session.request(pdu)
        is_receipt = pdu.number("esm_class") & 0x04 != 0
        if is_receipt:
            self.stats.receipts_sent += 1
        fut.add_done_callback(lambda f: self._delivered(f, peer.system_id, pdu, is_receipt))

    def _delivered(self, fut: "asyncio.Future[Pdu]", system_id: str, pdu: Pdu, is_receipt: bool) -> None:
        if not fut.cancelled() and fut.exception() is None and fut.result().status == Status.ROK:
            if is_receipt:
                self.stats.receipts_acked += 1
            return
        # Not acknowledged (refused, or the connection dropped): hold it for the next receiving bind.
        pdu.sequence = 0
        peer = self._receiver(system_id)
        if peer is None:
            self._held.setdefault(system_id, []).append(pdu)
        else:
            asyncio.get_running_loop().call_later(0.5, self._redeliver, system_id, pdu)

    def _redeliver(self, system_id: str, pdu: Pdu) -> None:
        peer = self._receiver(system_id)
        if peer is None:
            self._held.setdefault(system_id, []).append(pdu)
        else:
            self._deliver(peer, pdu)

    def inject_mo(self, source: str, destination: str, text: str, system_id: str | None = None) -> int:
        """Send an MO message to a receiving bind (long texts in concatenated parts); returns the parts
        sent, 0 when no receiving bind is up."""
        peers = [p for p in self.peers if p.receives and (system_id is None or p.system_id == system_id)]
        if not peers:
            return 0
        encoded = encode_text(text)
        parts = split(encoded)
        ref = next(self._mo_ref) & 0xFF
        payloads = with_udh(parts, ref)
        for payload in payloads:
            pdu = Pdu(
                Cmd.DELIVER_SM,
                params={
                    "source_addr_ton": 1,
                    "source_addr_npi": 1,
                    "source_addr": source.lstrip("+"),
                    "dest_addr_ton": 1,
                    "dest_addr_npi": 1,
                    "destination_addr": destination.lstrip("+"),
                    "esm_class": 0x40 if len(payloads) > 1 else 0,
                    "data_coding": encoded.data_coding,
                    "short_message": payload,
                },
            )
            self._deliver(peers[0], pdu)
        self.stats.mo_sent += 1
        return len(payloads)

    # -- HTTP control --------------------------------------------------------------------------------

    def _control_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/mo", self._http_mo)
        app.router.add_get("/stats", self._http_stats)
        app.router.add_get("/submits", self._http_submits)
        return app

    async def _http_mo(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            source, destination, text = str(body["from"]), str(body["to"]), str(body["text"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'send {"from": …, "to": …, "text": …}'}, status=400)
        parts = self.inject_mo(source, destination, text, body.get("system_id"))
        if parts == 0:
            return web.json_response({"error": "no receiving bind"}, status=409)
        return web.json_response({"parts": parts})

    async def _http_stats(self, request: web.Request) -> web.Response:
        s = self.stats
        return web.json_response(
            {
                "binds": s.binds,
                "bound": [{"system_id": p.system_id, "mode": p.mode} for p in self.peers if p.mode],
                "submitted": s.submitted,
                "receipts_sent": s.receipts_sent,
                "receipts_acked": s.receipts_acked,
                "receipts_held": sum(len(v) for v in self._held.values()),
                "mo_sent": s.mo_sent,
                "stats": s.counts,
            }
        )

    async def _http_submits(self, request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(list(self.submits)), content_type="application/json")


def first_id_now() -> int:
    """Where a new simulator starts numbering: the time in microseconds. A restarted simulator goes on
    past every id the last one gave out (it would have to have sent a million messages a second to
    catch up with the clock), as an SMSC must; the first versions started at 0x10000 every time, and
    each restart sent receipts for ids that earlier messages already carried."""
    return time.time_ns() // 1000


def _describe(pdu: Pdu, message_id: str) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "source_addr": pdu.text("source_addr"),
        "source_addr_ton": pdu.number("source_addr_ton"),
        "source_addr_npi": pdu.number("source_addr_npi"),
        "destination_addr": pdu.text("destination_addr"),
        "esm_class": pdu.number("esm_class"),
        "data_coding": pdu.number("data_coding"),
        "registered_delivery": pdu.number("registered_delivery"),
        "validity_period": pdu.text("validity_period"),
        "short_message": pdu.octets("short_message").hex(),
        "tlvs": {f"0x{tag:04X}": value.hex() for tag, value in pdu.tlvs.items()},
    }


async def serve(
    host: str, port: int, control_port: int | None, dlr_delay_ms: int, failure_codes: Iterable[str], **kw: Any
) -> None:
    sim = Simulator(dlr_delay_ms=dlr_delay_ms, failure_codes=failure_codes, **kw)
    await sim.start(host, port, control_port)
    control = f", control http://{host}:{control_port}" if control_port else ""
    print(f"tidings smsc listening on {host}:{port}{control} (receipts after {dlr_delay_ms} ms)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
