"""SMPP 3.4 PDUs: the commands we speak, their mandatory fields, TLVs, and the wire codec.

A `Pdu` is a command id, a status, a sequence number, its mandatory parameters by their spec names and
its optional TLVs by tag. The layouts below are the spec's tables (SMPP v3.4, section 4); a PDU whose
body does not match its layout raises `PduError`, which the session answers with generic_nack.
"""

import struct
from dataclasses import dataclass, field
from enum import IntEnum

HEADER = struct.Struct(">IIII")
HEADER_LEN = 16
# Larger than any legal PDU (a 64 KiB message_payload plus fields); anything longer is a broken peer.
MAX_PDU_LEN = 70_000


class Cmd(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103


class Status(IntEnum):
    ROK = 0x00
    RINVMSGLEN = 0x01
    RINVCMDLEN = 0x02
    RINVCMDID = 0x03
    RINVBNDSTS = 0x04
    RALYBND = 0x05
    RSYSERR = 0x08
    RINVSRCADR = 0x0A
    RINVDSTADR = 0x0B
    RINVMSGID = 0x0C
    RBINDFAIL = 0x0D
    RINVPASWD = 0x0E
    RINVSYSID = 0x0F
    RMSGQFUL = 0x14
    RINVSERTYP = 0x15
    RINVESMCLASS = 0x43
    RSUBMITFAIL = 0x45
    RINVSRCTON = 0x48
    RINVSRCNPI = 0x49
    RINVDSTTON = 0x50
    RINVDSTNPI = 0x51
    RTHROTTLED = 0x58
    RINVSCHED = 0x61
    RINVEXPIRY = 0x62
    RX_T_APPN = 0x64
    RX_P_APPN = 0x65
    RX_R_APPN = 0x66
    RINVOPTPARSTREAM = 0xC0
    ROPTPARNOTALLWD = 0xC1
    RINVPARLEN = 0xC2
    RMISSINGOPTPARAM = 0xC3
    RINVOPTPARAMVAL = 0xC4
    RDELIVERYFAILURE = 0xFE
    RUNKNOWNERR = 0xFF


def status_name(status: int) -> str:
    try:
        return "ESME_" + Status(status).name
    except ValueError:
        return f"0x{status:08X}"


class Tag(IntEnum):
    DEST_ADDR_SUBUNIT = 0x0005
    RECEIPTED_MESSAGE_ID = 0x001E
    USER_MESSAGE_REFERENCE = 0x0204
    SAR_MSG_REF_NUM = 0x020C
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    MORE_MESSAGES_TO_SEND = 0x0426
    MESSAGE_STATE = 0x0427


# Field kinds: "c" a NUL-terminated string (its maximum length with the NUL), "1" one octet,
# "sm" the sm_length octet followed by that many octets of short_message.
Layout = tuple[tuple[str, str, int], ...]

_BIND: Layout = (
    ("system_id", "c", 16),
    ("password", "c", 9),
    ("system_type", "c", 13),
    ("interface_version", "1", 0),
    ("addr_ton", "1", 0),
    ("addr_npi", "1", 0),
    ("address_range", "c", 41),
)
_SM: Layout = (
    ("service_type", "c", 6),
    ("source_addr_ton", "1", 0),
    ("source_addr_npi", "1", 0),
    ("source_addr", "c", 21),
    ("dest_addr_ton", "1", 0),
    ("dest_addr_npi", "1", 0),
    ("destination_addr", "c", 21),
    ("esm_class", "1", 0),
    ("protocol_id", "1", 0),
    ("priority_flag", "1", 0),
    ("schedule_delivery_time", "c", 17),
    ("validity_period", "c", 17),
    ("registered_delivery", "1", 0),
    ("replace_if_present_flag", "1", 0),
    ("data_coding", "1", 0),
    ("sm_default_msg_id", "1", 0),
    ("short_message", "sm", 254),
)
_DATA_SM: Layout = (
    ("service_type", "c", 6),
    ("source_addr_ton", "1", 0),
    ("source_addr_npi", "1", 0),
    ("source_addr", "c", 65),
    ("dest_addr_ton", "1", 0),
    ("dest_addr_npi", "1", 0),
    ("destination_addr", "c", 65),
    ("esm_class", "1", 0),
    ("registered_delivery", "1", 0),
    ("data_coding", "1", 0),
)
_SYSTEM_ID: Layout = (("system_id", "c", 16),)
_MESSAGE_ID: Layout = (("message_id", "c", 65),)

LAYOUTS: dict[int, Layout] = {
    Cmd.GENERIC_NACK: (),
    Cmd.BIND_RECEIVER: _BIND,
    Cmd.BIND_TRANSMITTER: _BIND,
    Cmd.BIND_TRANSCEIVER: _BIND,
    Cmd.BIND_RECEIVER_RESP: _SYSTEM_ID,
    Cmd.BIND_TRANSMITTER_RESP: _SYSTEM_ID,
    Cmd.BIND_TRANSCEIVER_RESP: _SYSTEM_ID,
    Cmd.SUBMIT_SM: _SM,
    Cmd.SUBMIT_SM_RESP: _MESSAGE_ID,
    Cmd.DELIVER_SM: _SM,
    Cmd.DELIVER_SM_RESP: _MESSAGE_ID,
    Cmd.DATA_SM: _DATA_SM,
    Cmd.DATA_SM_RESP: _MESSAGE_ID,
    Cmd.UNBIND: (),
    Cmd.UNBIND_RESP: (),
    Cmd.ENQUIRE_LINK: (),
    Cmd.ENQUIRE_LINK_RESP: (),
}

Value = int | str | bytes


class PduError(Exception):
    """The bytes are not a valid PDU; `status` is the SMPP error to answer with."""

    def __init__(self, message: str, status: int = Status.RINVMSGLEN) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class Pdu:
    command_id: int
    status: int = 0
    sequence: int = 0
    params: dict[str, Value] = field(default_factory=dict)
    tlvs: dict[int, bytes] = field(default_factory=dict)

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & 0x80000000)

    def text(self, name: str) -> str:
        value = self.params.get(name, "")
        return value if isinstance(value, str) else ""

    def number(self, name: str) -> int:
        value = self.params.get(name, 0)
        return value if isinstance(value, int) else 0

    def octets(self, name: str) -> bytes:
        value = self.params.get(name, b"")
        return value if isinstance(value, bytes) else b""

    def response(self, status: int = 0, **params: Value) -> "Pdu":
        """The response to this request, with the same sequence number."""
        return Pdu(self.command_id | 0x80000000, status, self.sequence, dict(params))


def encode(pdu: Pdu) -> bytes:
    body = bytearray()
    layout = LAYOUTS.get(pdu.command_id, ())
    # SMPP 3.4 5.1.1: a response with an error status may carry no body at all.
    if not (pdu.is_response and pdu.status != 0 and not pdu.params):
        for name, kind, size in layout:
            value = pdu.params.get(name)
            if kind == "1":
                body.append(value if isinstance(value, int) else 0)
            elif kind == "c":
                text = value.encode("latin-1") if isinstance(value, str) else (value or b"")
                if not isinstance(text, bytes) or len(text) >= size:
                    raise PduError(f"{name} is longer than {size - 1} characters", Status.RINVPARLEN)
                body += text
                body.append(0)
            else:
                octets = value if isinstance(value, bytes) else b""
                if len(octets) > size:
                    raise PduError(f"{name} is longer than {size} octets", Status.RINVMSGLEN)
                body.append(len(octets))
                body += octets
    for tag, value in pdu.tlvs.items():
        body += struct.pack(">HH", tag, len(value))
        body += value
    return HEADER.pack(HEADER_LEN + len(body), pdu.command_id, pdu.status, pdu.sequence) + body


def decode(frame: bytes | memoryview) -> Pdu:
    """Decode one whole PDU (its length already checked by the framer)."""
    _, command_id, status, sequence = HEADER.unpack_from(frame, 0)
    layout = LAYOUTS.get(command_id)
    if layout is None:
        raise PduError(f"unknown command id 0x{command_id:08X}", Status.RINVCMDID)
    pdu = Pdu(command_id, status, sequence)
    data = bytes(frame)
    pos = HEADER_LEN
    end = len(data)
    if pdu.is_response and status != 0 and pos == end:
        return pdu
    for name, kind, size in layout:
        if pos >= end:
            raise PduError(f"the PDU ends before {name}")
        if kind == "1":
            pdu.params[name] = data[pos]
            pos += 1
        elif kind == "c":
            nul = data.find(0, pos, min(end, pos + size))
            if nul < 0:
                raise PduError(f"{name} is not a NUL-terminated string of at most {size} octets")
            pdu.params[name] = data[pos:nul].decode("latin-1")
            pos = nul + 1
        else:
            length = data[pos]
            if pos + 1 + length > end:
                raise PduError(f"sm_length {length} runs past the end of the PDU")
            pdu.params[name] = data[pos + 1 : pos + 1 + length]
            pos += 1 + length
    while pos < end:
        if pos + 4 > end:
            raise PduError("a truncated TLV header", Status.RINVOPTPARSTREAM)
        tag, length = struct.unpack_from(">HH", data, pos)
        if pos + 4 + length > end:
            raise PduError(f"TLV 0x{tag:04X} runs past the end of the PDU", Status.RINVOPTPARSTREAM)
        pdu.tlvs[tag] = data[pos + 4 : pos + 4 + length]
        pos += 4 + length
    return pdu


class Framer:
    """Cuts a byte stream into PDUs. `feed` returns the whole frames received so far."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = 0
        while len(buf) - pos >= 4:
            (length,) = struct.unpack_from(">I", buf, pos)
            if length < HEADER_LEN or length > MAX_PDU_LEN:
                raise PduError(f"command_length {length} is not a valid PDU length", Status.RINVCMDLEN)
            if len(buf) - pos < length:
                break
            frames.append(bytes(buf[pos : pos + length]))
            pos += length
        if pos:
            del buf[:pos]
        return frames


def cstring_tlv(text: str) -> bytes:
    return text.encode("latin-1") + b"\x00"


def tlv_text(value: bytes) -> str:
    return value.rstrip(b"\x00").decode("latin-1")
