"""SMS over SMPP 3.4: the connector that turns messages into submit_sm and receipts into outcomes.

The protocol itself lives in `tidings.smpp`; this file holds what is Tidings' business: which data
coding a message type means, how a long message is cut (UDH, SAR TLVs or one message_payload), which
SMPP errors are worth a retry, and which documented status code a receipt's `stat` and `err` become.
"""

import asyncio
import binascii
import functools
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tidings.channels.base import FailureKind, Inbox, Outbound, SendError, SendResult
from tidings.channels.exchange import exchange, no_answer
from tidings.channels.smpp.settings import SmscConfig
from tidings.observe.connectors import ConnectorReport, Credential, Failure, Ledger
from tidings.observe.metrics import ConnectorHealth
from tidings.schema.sms import SmsContent
from tidings.smpp import encoding
from tidings.smpp.client import Bind, BindSettings, NotBound
from tidings.smpp.pdu import Cmd, Pdu, PduError, Status, Tag, status_name
from tidings.smpp.receipt import canonical_id, id_keys, read_receipt
from tidings.smpp.session import ResponseTimeout, SessionClosed
from tidings.specs.sms import SMS, SMS_FAILURES
from tidings.statuses import DELIVERED, Outcome
from tidings.statuses import Status as MsgStatus

log = logging.getLogger("tidings.smpp")

SEND_BUDGET_S = 20.0  # below the dispatcher's 30 s safety net, throttling backoff included
MO_ASSEMBLY_S = 60.0  # an MO message whose parts stop coming is delivered with what arrived
NO_RECEIPT = Outcome(MsgStatus.UNDELIVERED, "7518", "No delivery receipt from the SMSC")

# SMSC refusals of a submit_sm, as send failures: (kind, documented code or None).
_REFUSALS: dict[int, tuple[FailureKind, str | None]] = {
    Status.RINVSRCADR: (FailureKind.INVALID, "7101"),
    Status.RINVSRCTON: (FailureKind.INVALID, "7101"),
    Status.RINVSRCNPI: (FailureKind.INVALID, "7101"),
    Status.RINVDSTADR: (FailureKind.INVALID, "7102"),
    Status.RINVDSTTON: (FailureKind.INVALID, "7102"),
    Status.RINVDSTNPI: (FailureKind.INVALID, "7102"),
    Status.RINVMSGLEN: (FailureKind.INVALID, "7107"),
    Status.RINVESMCLASS: (FailureKind.INVALID, "7607"),
    Status.RINVEXPIRY: (FailureKind.INVALID, "7208"),
    Status.RSUBMITFAIL: (FailureKind.REJECTED, "7201"),
    Status.RX_P_APPN: (FailureKind.REJECTED, "7513"),
    Status.RX_R_APPN: (FailureKind.REJECTED, "7513"),
    # Transient on the SMSC's side: another try may well succeed.
    Status.RSYSERR: (FailureKind.CONNECTION, None),
    Status.RX_T_APPN: (FailureKind.CONNECTION, None),
    Status.RINVBNDSTS: (FailureKind.CONNECTION, None),
    Status.RTHROTTLED: (FailureKind.THROTTLED, None),
    Status.RMSGQFUL: (FailureKind.THROTTLED, None),
}


def receipt_outcome(stat: str, err: str) -> Outcome:
    """A receipt's `stat` and `err` as the documented SMS outcome. An `err` that is itself a documented
    code (the simulator, and SMSCs configured for Webex-style codes) is taken as is."""
    if stat == "DELIVRD":
        return DELIVERED
    code = err.lstrip("0")
    if code in SMS_FAILURES:
        return SMS_FAILURES[code]
    detail = f" (SMSC err {err})" if err else ""
    if stat == "EXPIRED":
        return SMS.expired
    if stat == "REJECTD":
        return Outcome(MsgStatus.UNDELIVERED, "7513", "Rejected by carrier" + detail)
    if stat == "UNKNOWN":
        return Outcome(MsgStatus.UNDELIVERED, "7518", "Unknown" + detail)
    if stat == "DELETED":
        return Outcome(MsgStatus.UNDELIVERED, "7201", "Deleted by the SMSC" + detail)
    return Outcome(MsgStatus.UNDELIVERED, "7201", "Operator failure" + detail)


def source_ton_npi(sender: str) -> tuple[int, int]:
    """TON/NPI for a sender id by its form: alphanumeric (5/0), international number (1/1), short code
    or national number (0/1)."""
    digits = sender.removeprefix("+")
    if not digits.isdigit():
        return 5, 0
    if sender.startswith("+") or len(digits) > 8:
        return 1, 1
    return 0, 1


def validity(expiry: float) -> str:
    """SMPP absolute time (YYMMDDhhmmsstnnp) in UTC."""
    return time.strftime("%y%m%d%H%M%S", time.gmtime(expiry)) + "000+"


@dataclass
class _Assembly:
    parts: dict[int, str] = field(default_factory=dict)
    total: int = 0
    started: float = 0.0


class SmppConnector:
    name: ClassVar[str] = "smpp"

    def __init__(self, config: SmscConfig) -> None:
        self.config = config
        self.label = config.name
        self._inbox: Inbox | None = None
        self._binds: list[Bind] = []
        self._tx: list[Bind] = []
        self._next_tx = itertools.cycle(range(1 << 30))
        self._refs = itertools.count(1)
        self._assembling: dict[tuple[str, str, int, int], _Assembly] = {}
        self.ledger = Ledger(lambda: (self.config.password,))
        kinds = ["transceiver"] if config.bind == "transceiver" else ["transmitter", "receiver"]
        for n in range(config.binds):
            for kind in kinds:
                bind = Bind(self._settings(kind), self._on_deliver, f"{self.label}/{kind[:2]}{n + 1}")
                self._binds.append(bind)
                if bind.can_submit:
                    self._tx.append(bind)

    def _settings(self, mode: str) -> BindSettings:
        c = self.config
        return BindSettings(
            host=c.host,
            port=c.port,
            system_id=c.system_id,
            password=c.password,
            system_type=c.system_type,
            mode=mode,
            window=c.window,
            tps=c.tps,
            enquire_link_s=c.enquire_link_s,
            response_timeout_s=c.response_timeout_s,
            reconnect_max_s=c.reconnect_max_s,
        )

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        for bind in self._binds:
            await bind.start()

    async def stop(self) -> None:
        await asyncio.gather(*(bind.stop() for bind in self._binds))

    def bind_states(self) -> dict[str, str]:
        """Each bind's state, for the console's health page: bound (and throttled) or down and why."""
        states: dict[str, str] = {}
        for bind in self._binds:
            if bind.ready.is_set():
                states[bind.name] = "bound, throttled" if bind.throttled else "bound"
            else:
                states[bind.name] = f"down ({bind.last_error})" if bind.last_error else "down"
        return states

    def health(self) -> ConnectorHealth:
        """For /metrics: up while a bind that submits is bound; the window in use over those binds."""
        tx = self._tx
        return ConnectorHealth(
            up=any(b.ready.is_set() for b in tx),
            in_flight=sum(b.session.in_flight for b in tx if b.session is not None and b.session.is_open),
            window=self.config.window * len(tx),
        )

    def describe(self) -> ConnectorReport:
        """For the console: the binds, the last failure (of a send or of a bind), the configured pace and
        whether the SMSC has us throttled."""
        c, health = self.config, self.health()
        pace = f"{c.tps:g} submit_sm/s per bind" if c.tps else "no tps limit"
        configured = f"{pace}, window {c.window} per bind, {len(self._tx)} transmitting bind(s)"
        wait = max((b.throttled_for() for b in self._tx), default=0.0)
        backoff = (time.time() + wait, "the SMSC answered ESME_RTHROTTLED or ESME_RMSGQFUL") if wait else None
        failures = [
            Failure(f[0], "connection", None, f[1]) for b in self._binds if (f := b.last_failure) is not None
        ]
        refused = next((b.last_error for b in self._binds if b.last_error.startswith("bind refused")), "")
        login = Credential(f"system_id {c.system_id} at {c.host}:{c.port}", "password", refused=refused)
        return self.ledger.report(
            up=health.up,
            health=health,
            detail=[f"{name}: {state}" for name, state in self.bind_states().items()],
            credentials=[login],
            configured=configured,
            backoff=backoff,
            failures=failures,
        )

    # -- sending ---------------------------------------------------------------------------------------

    async def send(self, batch: Sequence[Outbound]) -> list[SendResult | SendError]:
        deadline = asyncio.get_running_loop().time() + SEND_BUDGET_S
        return self.ledger.record(list(await asyncio.gather(*(self._send_one(m, deadline) for m in batch))))

    def _pick(self) -> Bind:
        ready = [b for b in self._tx if b.ready.is_set()] or self._tx
        return ready[next(self._next_tx) % len(ready)]

    async def _send_one(self, m: Outbound, deadline: float) -> SendResult | SendError:
        try:
            pdus = self._pdus(m)
        except SendError as exc:
            return exc
        answers: list[str] = []
        sent = await self._submit(pdus, deadline, answers)
        wire = exchange(submitted(m, pdus), "\n".join(answers), (self.config.password,))
        if isinstance(sent, SendError):
            sent.exchange = wire
            return sent
        return SendResult(
            ext_id=sent[0],
            receipt=NO_RECEIPT,
            receipt_after_s=self.config.dlr_timeout_s,
            part_ids=tuple(sent) if len(sent) > 1 else (),
            exchange=wire,
        )

    async def _submit(self, pdus: list[Pdu], deadline: float, answers: list[str]) -> list[str] | SendError:
        """Submit a message's PDUs in order on one bind: each part's id, or the failure. `answers` gets
        what the SMSC answered to each."""
        bind = self._pick()
        ids: list[str] = []
        for pdu in pdus:
            try:
                resp = await bind.submit(pdu, deadline)
            except NotBound as exc:
                answers.append(f"not sent: {exc}")
                return self._broken(ids, FailureKind.UNAVAILABLE, str(exc))
            except SessionClosed as exc:  # it broke with the submit in flight: the outcome is unknown
                answers.append(no_answer(str(exc)))
                return self._broken(ids, FailureKind.CONNECTION, str(exc))
            except ResponseTimeout as exc:
                answers.append(no_answer(str(exc)))
                return self._broken(ids, FailureKind.TIMEOUT, str(exc))
            except PduError as exc:
                answers.append(f"not sent: {exc}")
                return SendError(FailureKind.INVALID, f"cannot encode the message: {exc}", "7607")
            message_id = resp.text("message_id")
            answers.append(
                f"submit_sm_resp {status_name(resp.status)}"
                + (f" message_id {message_id}" * bool(message_id))
            )
            if resp.status != Status.ROK:
                kind, code = _REFUSALS.get(resp.status, (FailureKind.REJECTED, "7201"))
                return self._broken(ids, kind, f"the SMSC answered {status_name(resp.status)}", code)
            if not message_id:
                return self._broken(
                    ids, FailureKind.REJECTED, "the SMSC accepted without a message id", "7201"
                )
            ids.append(f"{self.label}:{canonical_id(message_id)}")
        return ids

    def _broken(self, sent: list[str], kind: FailureKind, why: str, code: str | None = None) -> SendError:
        if not sent:
            return SendError(kind, why, code)
        # Some parts are out: sending the whole message again would repeat them on the handset.
        return SendError(
            FailureKind.REJECTED, f"part {len(sent) + 1} failed after {len(sent)} sent: {why}", "7209"
        )

    def _pdus(self, m: Outbound) -> list[Pdu]:
        content = m.content
        if not isinstance(content, SmsContent):
            raise SendError(FailureKind.INVALID, f"not an SMS: {type(content).__name__}")
        kind = content.type
        if kind == "3":
            try:
                enc = encoding.encode_binary(binascii.unhexlify(content.body or ""))
            except (binascii.Error, ValueError):
                raise SendError(FailureKind.INVALID, "the binary body is not hexadecimal", "7205") from None
        else:
            text = content.text or ""
            try:
                enc = encoding.encode_text(text, unicode=kind == "4", flash=kind == "2")
            except UnicodeEncodeError:
                raise SendError(FailureKind.INVALID, "the text cannot be encoded", "7607") from None
        sender = content.senderid
        c = self.config
        auto_ton, auto_npi = source_ton_npi(sender)
        params: dict[str, Any] = {
            "source_addr_ton": auto_ton if c.source_ton is None else c.source_ton,
            "source_addr_npi": auto_npi if c.source_npi is None else c.source_npi,
            "source_addr": sender.removeprefix("+"),
            "dest_addr_ton": c.dest_ton,
            "dest_addr_npi": c.dest_npi,
            "destination_addr": m.address.removeprefix("+"),
            "registered_delivery": 1,
            "data_coding": enc.data_coding,
        }
        if m.expiry is not None:
            params["validity_period"] = validity(m.expiry)
        tlvs: dict[int, bytes] = {}
        dlt = content.dlt_templateid
        if dlt and c.dlt_tlv is not None:
            tlvs[c.dlt_tlv] = str(dlt).encode("utf-8")
        parts = encoding.split(enc)
        if len(parts) == 1:
            return [Pdu(Cmd.SUBMIT_SM, params={**params, "short_message": parts[0]}, tlvs=tlvs)]
        if c.long_messages == "payload":
            return [Pdu(Cmd.SUBMIT_SM, params=params, tlvs={**tlvs, Tag.MESSAGE_PAYLOAD: enc.payload})]
        ref = next(self._refs)
        if c.long_messages == "sar":
            return [
                Pdu(
                    Cmd.SUBMIT_SM,
                    params={**params, "short_message": part},
                    tlvs={
                        **tlvs,
                        Tag.SAR_MSG_REF_NUM: (ref & 0xFFFF).to_bytes(2, "big"),
                        Tag.SAR_TOTAL_SEGMENTS: bytes([len(parts)]),
                        Tag.SAR_SEGMENT_SEQNUM: bytes([seq]),
                    },
                )
                for seq, part in enumerate(parts, start=1)
            ]
        return [
            Pdu(Cmd.SUBMIT_SM, params={**params, "esm_class": 0x40, "short_message": part}, tlvs=tlvs)
            for part in encoding.with_udh(parts, ref)
        ]

    # -- receiving ---------------------------------------------------------------------------------------

    def _on_deliver(self, pdu: Pdu, respond: Callable[[int], None]) -> None:
        inbox = self._inbox
        if inbox is None:  # not started: the SMSC will send it again
            respond(Status.RX_T_APPN)
            return
        payload = pdu.tlvs.get(Tag.MESSAGE_PAYLOAD) or pdu.octets("short_message")
        concat = None
        if pdu.number("esm_class") & 0x40:
            payload, concat = encoding.strip_udh(payload)
        elif Tag.SAR_MSG_REF_NUM in pdu.tlvs and Tag.SAR_TOTAL_SEGMENTS in pdu.tlvs:
            concat = (
                int.from_bytes(pdu.tlvs[Tag.SAR_MSG_REF_NUM], "big"),
                pdu.tlvs[Tag.SAR_TOTAL_SEGMENTS][0],
                pdu.tlvs.get(Tag.SAR_SEGMENT_SEQNUM, b"\x01")[0],
            )

        def ack(ok: bool) -> None:
            respond(Status.ROK if ok else Status.RX_T_APPN)

        # Decoded once, and only if needed: a receipt whose TLVs say everything never is.
        decoded = functools.cache(lambda: encoding.decode_text(pdu.number("data_coding"), payload))
        receipt = read_receipt(pdu, decoded)
        if receipt is not None:
            if not receipt.final:  # ENROUTE, ACCEPTD: nothing to report yet
                respond(Status.ROK)
                return
            keys = [f"{self.label}:{key}" for key in id_keys(receipt.message_id)]
            inbox.receipt(keys, receipt_outcome(receipt.stat, receipt.err), ack)
            return
        text = decoded()
        source = _address(pdu.text("source_addr"), pdu.number("source_addr_ton"))
        destination = _address(pdu.text("destination_addr"), pdu.number("dest_addr_ton"))
        if concat is None or concat[1] <= 1:
            inbox.inbound(SMS.name, source, destination, text, 1, ack)
            return
        self._assemble(inbox, source, destination, concat, text)
        # Parts are acknowledged as they come: some SMSCs send the next part only after that.
        respond(Status.ROK)

    def _assemble(
        self, inbox: Inbox, source: str, destination: str, concat: tuple[int, int, int], text: str
    ) -> None:
        ref, total, seq = concat
        key = (source, destination, ref, total)
        loop = asyncio.get_running_loop()
        assembly = self._assembling.get(key)
        if assembly is None:
            assembly = self._assembling[key] = _Assembly(total=total, started=loop.time())
            loop.call_later(MO_ASSEMBLY_S, self._give_up_assembly, inbox, key, assembly)
        assembly.parts[seq] = text
        if len(assembly.parts) == total:
            del self._assembling[key]
            whole = "".join(assembly.parts[n] for n in sorted(assembly.parts))
            inbox.inbound(SMS.name, source, destination, whole, total, _ignore)

    def _give_up_assembly(self, inbox: Inbox, key: tuple[str, str, int, int], assembly: _Assembly) -> None:
        if self._assembling.get(key) is not assembly:
            return
        del self._assembling[key]
        log.warning(
            "%s: MO from %s: %d of %d parts came; delivering those",
            self.label,
            key[0],
            len(assembly.parts),
            assembly.total,
        )
        whole = "".join(assembly.parts[n] for n in sorted(assembly.parts))
        inbox.inbound(SMS.name, key[0], key[1], whole, assembly.total, _ignore)


_SEGMENTING = {Tag.MESSAGE_PAYLOAD, Tag.SAR_MSG_REF_NUM, Tag.SAR_TOTAL_SEGMENTS, Tag.SAR_SEGMENT_SEQNUM}


def submitted(m: Outbound, pdus: Sequence[Pdu]) -> str:
    """A message's submit_sm PDUs as a provider attempt shows them: the fields that decide how the SMSC
    treats it, how it was cut, and its text (a binary message's body in hex)."""
    first, tlvs = pdus[0], pdus[0].tlvs
    n, esm = first.number, first.number("esm_class")
    lines = [
        "submit_sm" if len(pdus) == 1 else f"submit_sm x {len(pdus)}",
        f"source_addr {first.text('source_addr')} (ton {n('source_addr_ton')}, npi {n('source_addr_npi')})",
        f"destination_addr {first.text('destination_addr')} "
        f"(ton {n('dest_addr_ton')}, npi {n('dest_addr_npi')})",
        f"data_coding 0x{n('data_coding'):02x}, esm_class 0x{esm:02x}, "
        f"registered_delivery {n('registered_delivery')}",
    ]
    if validity_period := first.text("validity_period"):
        lines.append(f"validity_period {validity_period}")
    if Tag.MESSAGE_PAYLOAD in tlvs:
        lines.append(f"segments 1 (message_payload TLV, {len(tlvs[Tag.MESSAGE_PAYLOAD])} octets)")
    else:
        how = " (SAR TLVs)" if Tag.SAR_MSG_REF_NUM in tlvs else " (UDH)" if esm & 0x40 else ""
        lines.append(f"segments {len(pdus)}{how}")
    lines.extend(
        f"tlv 0x{tag:04x} {value.decode('latin-1')}" for tag, value in tlvs.items() if tag not in _SEGMENTING
    )
    content = m.content
    if isinstance(content, SmsContent):
        lines.append(
            f"body (hex) {content.body or ''}" if content.type == "3" else f"text {content.text or ''}"
        )
    return "\n".join(lines)


def _address(addr: str, ton: int) -> str:
    """An address as the API writes it: international numbers with +."""
    if ton == 1 and addr.isdigit():
        return "+" + addr
    return addr


def _ignore(ok: bool) -> None:
    return None
