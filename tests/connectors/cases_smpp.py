"""SMPP's cases for the connector runner: `SmppConnector` against the rude fake SMSC of
tests/support/smsc.py over a real loopback socket.

The golden form of a request is the submit_sm as the fake decoded it: every mandatory field, the
short_message in hex, and the TLVs as {"0xTTTT": hex}. `submit_sm(...)` writes the one every default
case sends, so a case names only the fields it is about while the comparison stays exact.
"""

import asyncio
import calendar
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tests.connectors.runner import (
    Accepted,
    Failure,
    Inbound,
    InboundCase,
    OutboundCase,
    Provider,
    Receipt,
    wait_for,
)
from tests.support.smsc import ACCEPT, SENDER_NUMBER, SERVICE_NUMBER, ReceiptStyle, Reply, RudeSmsc
from tidings.channels.base import Connector, FailureKind, Outbound
from tidings.channels.smpp import SmscConfig
from tidings.channels.smpp.connector import SmppConnector
from tidings.schema.sms import SmsContent
from tidings.smpp.pdu import Cmd, Pdu, Status, Tag, cstring_tlv

LABEL = "carrier-a"
PASSWORD = "rnr-pw-7"  # the bind's password: must reach no log
DLR_TIMEOUT_S = 600.0
TO = "+447700900123"
FIRST = RudeSmsc.FIRST_ID  # the id the fake gives the first submit it accepts
ID = f"{LABEL}:{FIRST:x}"  # what the connector makes of it (canonical: lower-case hex, no zeros)
RETRYABLE, FINAL = FailureKind.CONNECTION, FailureKind.REJECTED


@dataclass(frozen=True)
class Script:
    """How the fake answers: the n-th submit_sm of the case gets `replies[n - 1]` (ACCEPT after the
    last); `style` says how it writes message ids and receipts."""

    replies: tuple[Reply, ...] = ()
    style: ReceiptStyle | None = None


class SmppStandIn:
    def __init__(self, smsc: RudeSmsc, connector: Connector) -> None:
        self.smsc = smsc
        self.connector = connector
        self.secrets: Sequence[str] = (PASSWORD,)

    async def ready(self) -> None:
        await wait_for(lambda: self.smsc.bound_connections() > 0, 5, "the bind")

    def script(self, reply: Any) -> None:
        if reply is None:
            return
        assert isinstance(reply, Script)
        replies = reply.replies
        self.smsc.policy = lambda s, n: replies[n - 1] if n <= len(replies) else ACCEPT
        if reply.style is not None:
            self.smsc.style = reply.style

    def requests(self) -> list[dict[str, Any]]:
        return [golden(s.pdu) for s in self.smsc.all_submits()]

    async def callback(self, callback: Any) -> Any:
        assert isinstance(callback, Pdu)
        resp = await asyncio.to_thread(self.smsc.request, callback)
        return resp.command_id, resp.status


@contextlib.contextmanager
def open_smpp(**config: Any) -> Iterator[SmppStandIn]:
    smsc = RudeSmsc(receipt_delay_s=0.01).start()
    try:
        settings = {
            "system_id": "tidings",
            "enquire_link_s": 5.0,
            "response_timeout_s": 2.0,
            "reconnect_max_s": 0.5,
            "dlr_timeout_s": DLR_TIMEOUT_S,
            **config,
        }
        smsc_config = SmscConfig(name=LABEL, host="127.0.0.1", port=smsc.port, password=PASSWORD, **settings)
        yield SmppStandIn(smsc, SmppConnector(smsc_config))
    finally:
        smsc.close()


def golden(pdu: Pdu) -> dict[str, Any]:
    params = {k: v.hex() if isinstance(v, bytes) else v for k, v in pdu.params.items()}
    return {**params, "tlvs": {f"0x{tag:04X}": value.hex() for tag, value in pdu.tlvs.items()}}


def submit_sm(text: str = "hello", **fields: Any) -> dict[str, Any]:
    """The golden submit_sm of `sms(text)`, with `fields` changed."""
    return {
        "service_type": "",
        "source_addr_ton": 5,
        "source_addr_npi": 0,
        "source_addr": "CONNCT",
        "dest_addr_ton": 1,
        "dest_addr_npi": 1,
        "destination_addr": TO.removeprefix("+"),
        "esm_class": 0,
        "protocol_id": 0,
        "priority_flag": 0,
        "schedule_delivery_time": "",
        "validity_period": "",
        "registered_delivery": 1,
        "replace_if_present_flag": 0,
        "data_coding": 0,
        "sm_default_msg_id": 0,
        "short_message": text.encode("ascii").hex(),
        "tlvs": {},
        **fields,
    }


def sms(text: str | None = "hello", expiry: float | None = None, **content: Any) -> Outbound:
    fields: dict[str, Any] = {"type": "1", "senderid": "CONNCT", "text": text, **content}
    body = SmsContent(**fields)
    return Outbound("transid-1", "svc-smpp", "sms", TO, body, 1, expiry)


def accepted(ext_id: str = ID, part_ids: tuple[str, ...] = ()) -> Accepted:
    """Taken by the SMSC: Un-Delivered 7518 unless a receipt comes within dlr_timeout_s."""
    return Accepted(ext_id, part_ids, ("Un-Delivered", "7518"), DLR_TIMEOUT_S)


DELIVERED = ("Delivered", "7500")

# -- outbound -------------------------------------------------------------------------------------------

# From tests/test_smpp_e2e.py (test_data_coding_by_sms_type): the data coding by SMS type.
DATA_CODINGS = [
    OutboundCase(
        "gsm", sms("plain GSM"), requests=[submit_sm("plain GSM")], expect=accepted(), receipts=[DELIVERED]
    ),
    OutboundCase(
        "unicode-type-4",
        sms("plain GSM", type="4"),
        requests=[submit_sm(data_coding=0x08, short_message="plain GSM".encode("utf-16-be").hex())],
        expect=accepted(),
        receipts=[DELIVERED],
    ),
    OutboundCase(
        "unicode-auto",
        sms("привет"),
        requests=[submit_sm(data_coding=0x08, short_message="привет".encode("utf-16-be").hex())],
        expect=accepted(),
        receipts=[DELIVERED],
    ),
    OutboundCase(
        "flash-type-2",
        sms("flash", type="2"),
        requests=[submit_sm("flash", data_coding=0x10)],
        expect=accepted(),
        receipts=[DELIVERED],
    ),
    OutboundCase(
        "binary-type-3",
        sms(None, type="3", body="0102ABCDEF00"),
        requests=[submit_sm(data_coding=0x04, short_message="0102abcdef00")],
        expect=accepted(),
        receipts=[DELIVERED],
    ),
]

# From tests/test_smpp_e2e.py (test_addresses_ton_npi_and_registered_delivery): the source TON/NPI by
# the sender id's form; the destination without its +; a receipt asked for; no validity period.
ADDRESSES = [
    OutboundCase(
        f"sender-{name}",
        sms("addresses", senderid=sender),
        requests=[submit_sm("addresses", source_addr=addr, source_addr_ton=ton, source_addr_npi=npi)],
        expect=accepted(),
        receipts=[DELIVERED],
    )
    for name, sender, addr, ton, npi in [
        ("alphanumeric", "CONNCT", "CONNCT", 5, 0),
        ("international", SENDER_NUMBER, SENDER_NUMBER.removeprefix("+"), 1, 1),
        ("short-code", "12345", "12345", 0, 1),
    ]
]

# From tests/test_smpp_protocol.py (test_submit_refusals_follow_the_documented_table, docs/sms.md
# "Submit errors"): each refusal is final (the dispatcher records Failed at once, sends no other
# submit_sm) with its documented code.
REFUSALS = [
    OutboundCase(
        f"refused-{name}",
        sms(),
        Script((reply,)),
        requests=[submit_sm()],
        expect=Failure(kind, code),
    )
    for name, reply, kind, code in [
        ("RINVSRCADR", Reply("status", Status.RINVSRCADR), FailureKind.INVALID, "7101"),
        ("RINVSRCTON", Reply("status", Status.RINVSRCTON), FailureKind.INVALID, "7101"),
        ("RINVDSTADR", Reply("status", Status.RINVDSTADR), FailureKind.INVALID, "7102"),
        ("RINVDSTNPI", Reply("status", Status.RINVDSTNPI), FailureKind.INVALID, "7102"),
        ("RINVMSGLEN", Reply("status", Status.RINVMSGLEN), FailureKind.INVALID, "7107"),
        ("RSUBMITFAIL", Reply("status", Status.RSUBMITFAIL), FailureKind.REJECTED, "7201"),
        ("other-refusal", Reply("status", Status.RINVSERTYP), FailureKind.REJECTED, "7201"),
        ("generic_nack", Reply("nack", Status.RINVCMDID), FailureKind.REJECTED, "7201"),
        ("RX_P_APPN", Reply("status", Status.RX_P_APPN), FailureKind.REJECTED, "7513"),
        ("RINVESMCLASS", Reply("status", Status.RINVESMCLASS), FailureKind.INVALID, "7607"),
    ]
]

# From tests/test_smpp_protocol.py (test_receipt_id_forms_are_correlated): however the SMSC writes the
# id in its submit_sm_resp and in the receipt, the receipt names the message's ext_id.
ID_FORMS = [
    OutboundCase(
        f"receipt-ids-{name}",
        sms(),
        Script(style=style),
        requests=[submit_sm()],
        expect=accepted(ext_id),
        receipts=[DELIVERED],
    )
    for name, style, ext_id in [
        (
            "resp-hex-zero-padded/receipt-decimal",
            ReceiptStyle(resp_id=lambda n: format(n, "06X"), receipt_id=lambda n: str(n)),
            ID,
        ),
        (
            "resp-decimal/receipt-hex",
            ReceiptStyle(resp_id=lambda n: str(n), receipt_id=lambda n: format(n, "X")),
            f"{LABEL}:{FIRST}",
        ),
        (
            "resp-hex/receipt-lower-hex-zero-padded",
            ReceiptStyle(resp_id=lambda n: format(n, "X"), receipt_id=lambda n: format(n, "010x")),
            ID,
        ),
        ("tlv-only-no-text", ReceiptStyle(form="tlv", receipt_id=lambda n: str(n)), ID),
        ("text-only", ReceiptStyle(form="text", receipt_id=lambda n: format(n, "08X")), ID),
    ]
]

# From tests/test_smpp_protocol.py (test_receipt_states_map_to_documented_codes): a receipt's stat and
# err as the documented status and code.
RECEIPT_STATES = [
    OutboundCase(
        f"receipt-{stat}-{err}",
        sms(),
        Script(style=ReceiptStyle(stat=stat, err=err)),
        requests=[submit_sm()],
        expect=accepted(),
        receipts=[(status, code)],
    )
    for stat, err, status, code in [
        ("UNDELIV", "7203", "Un-Delivered", "7203"),
        ("EXPIRED", "000", "Expired", "7208"),
        ("REJECTD", "000", "Un-Delivered", "7513"),
        ("UNKNOWN", "000", "Un-Delivered", "7518"),
        ("UNDELIV", "042", "Un-Delivered", "7201"),
    ]
]

# Written for the runner.
MORE_OUTBOUND = [
    OutboundCase(
        "throttled-then-accepted",
        sms(),
        Script((Reply("status", Status.RTHROTTLED),)),
        requests=[submit_sm(), submit_sm()],
        expect=accepted(),
        receipts=[DELIVERED],
    ),
    OutboundCase(
        "transient-RSYSERR-is-retryable",
        sms(),
        Script((Reply("status", Status.RSYSERR),)),
        requests=[submit_sm()],
        expect=Failure(RETRYABLE),
    ),
    OutboundCase(
        "generic_nack-status-0-is-retryable",
        sms(),
        Script((Reply("nack", Status.ROK),)),
        requests=[submit_sm()],
        expect=Failure(RETRYABLE),
    ),
    OutboundCase(
        "text-not-hex-binary-is-invalid-unsent",
        sms(None, type="3", body="not hex"),
        expect=Failure(FailureKind.INVALID, "7205"),
    ),
    OutboundCase(
        "expiry-as-absolute-validity-utc",
        sms(expiry=calendar.timegm((2099, 1, 2, 3, 4, 5))),
        requests=[submit_sm(validity_period="990102030405000+")],
        expect=accepted(),
        receipts=[DELIVERED],
    ),
    OutboundCase(
        "dlt-template-id-in-the-configured-tlv",
        sms(dlt_templateid="1107161234567890123"),
        requests=[submit_sm(tlvs={"0x1400": b"1107161234567890123".hex()})],
        expect=accepted(),
        receipts=[DELIVERED],
        config={"dlt_tlv": 0x1400},
    ),
    OutboundCase(
        "long-udh-two-parts-one-reference",
        sms("b" * 300),
        requests=[
            submit_sm(esm_class=0x40, short_message="0500030102" + "01" + ("b" * 153).encode().hex()),
            submit_sm(esm_class=0x40, short_message="0500030102" + "02" + ("b" * 147).encode().hex()),
        ],
        expect=accepted(ID, (ID, f"{LABEL}:{FIRST + 1:x}")),
        receipts=[DELIVERED, DELIVERED],
    ),
    OutboundCase(
        "long-sar-tlvs",
        sms("b" * 300),
        requests=[
            submit_sm(
                short_message=("b" * 153).encode().hex(),
                tlvs={"0x020C": "0001", "0x020E": "02", "0x020F": "01"},
            ),
            submit_sm(
                short_message=("b" * 147).encode().hex(),
                tlvs={"0x020C": "0001", "0x020E": "02", "0x020F": "02"},
            ),
        ],
        expect=accepted(ID, (ID, f"{LABEL}:{FIRST + 1:x}")),
        receipts=[DELIVERED, DELIVERED],
        config={"long_messages": "sar"},
    ),
    OutboundCase(
        "long-one-message-payload",
        sms("b" * 300),
        requests=[submit_sm(short_message="", tlvs={"0x0424": ("b" * 300).encode().hex()})],
        expect=accepted(),
        receipts=[DELIVERED],
        config={"long_messages": "payload"},
    ),
    OutboundCase(
        "middle-part-refused-is-final-7209",
        sms("m" * 400),
        Script((ACCEPT, Reply("status", Status.RSUBMITFAIL))),
        requests=[
            submit_sm(esm_class=0x40, short_message="0500030103" + "01" + ("m" * 153).encode().hex()),
            submit_sm(esm_class=0x40, short_message="0500030103" + "02" + ("m" * 153).encode().hex()),
        ],
        expect=Failure(FailureKind.REJECTED, "7209"),
        receipts=[DELIVERED],  # the part that went out is reported on; the dispatcher has failed the message
    ),
]

OUTBOUND = [*DATA_CODINGS, *ADDRESSES, *REFUSALS, *ID_FORMS, *RECEIPT_STATES, *MORE_OUTBOUND]

# -- inbound ----------------------------------------------------------------------------------------------

OURS = SERVICE_NUMBER.removeprefix("+")
PHONE = "+447700900321"
RESP_OK = (Cmd.DELIVER_SM_RESP, Status.ROK)


def deliver_sm(
    text: bytes,
    *,
    source: str = PHONE.removeprefix("+"),
    source_ton: int = 1,
    to: str = OURS,
    to_ton: int = 1,
    esm_class: int = 0,
    data_coding: int = 0,
    tlvs: dict[int, bytes] | None = None,
) -> Pdu:
    return Pdu(
        Cmd.DELIVER_SM,
        params={
            "source_addr_ton": source_ton,
            "source_addr_npi": 1 if source_ton == 1 else 0,
            "source_addr": source,
            "dest_addr_ton": to_ton,
            "dest_addr_npi": 1,
            "destination_addr": to,
            "esm_class": esm_class,
            "data_coding": data_coding,
            "short_message": text,
        },
        tlvs=tlvs or {},
    )


def mo(text: str, parts: int = 1, source: str = PHONE, destination: str = SERVICE_NUMBER) -> Inbound:
    return Inbound("sms", source, destination, text, parts)


PARTS = [b"first part, ", b"second part, ", b"third part"]
WHOLE = "first part, second part, third part"
RECEIPT_TEXT = (
    b"id:A1B2 sub:001 dlvrd:001 submit date:2601011200 done date:2601011201 stat:DELIVRD err:000 text:"
)

INBOUND = [
    InboundCase("mo-plain", [deliver_sm(b"Hello from a phone")], [mo("Hello from a phone")], [RESP_OK]),
    InboundCase(
        "mo-from-an-alphanumeric-sender",
        [deliver_sm(b"hi from a brand", source="MYBANK", source_ton=5)],
        [mo("hi from a brand", source="MYBANK")],
        [RESP_OK],
    ),
    InboundCase(
        "mo-to-a-national-form-is-passed-as-is",  # the inbox finds the service by the number's forms
        [deliver_sm(b"which number", to="00447700900000", to_ton=0)],
        [mo("which number", destination="00447700900000")],
        [RESP_OK],
    ),
    InboundCase(
        "mo-ucs2",
        [deliver_sm("привет 👋".encode("utf-16-be"), data_coding=8)],
        [mo("привет 👋")],
        [RESP_OK],
    ),
    InboundCase(
        "mo-udh-parts-out-of-order",
        [deliver_sm(bytes([5, 0, 3, 0x2C, 3, seq]) + PARTS[seq - 1], esm_class=0x40) for seq in (3, 1, 2)],
        [mo(WHOLE, 3)],
        [RESP_OK] * 3,
    ),
    InboundCase(
        "mo-sar-parts-out-of-order",
        [
            deliver_sm(
                PARTS[seq - 1],
                tlvs={
                    Tag.SAR_MSG_REF_NUM: b"\x01\x2c",
                    Tag.SAR_TOTAL_SEGMENTS: b"\x03",
                    Tag.SAR_SEGMENT_SEQNUM: bytes([seq]),
                },
            )
            for seq in (3, 1, 2)
        ],
        [mo(WHOLE, 3)],
        [RESP_OK] * 3,
    ),
    InboundCase(
        "mo-in-message_payload",
        [deliver_sm(b"", tlvs={Tag.MESSAGE_PAYLOAD: b"x" * 300})],
        [mo("x" * 300)],
        [RESP_OK],
    ),
    InboundCase(
        "mo-in-data_sm",
        [
            Pdu(
                Cmd.DATA_SM,
                params={
                    "source_addr_ton": 1,
                    "source_addr_npi": 1,
                    "source_addr": PHONE.removeprefix("+"),
                    "dest_addr_ton": 1,
                    "dest_addr_npi": 1,
                    "destination_addr": OURS,
                    "data_coding": 0,
                },
                tlvs={Tag.MESSAGE_PAYLOAD: b"via data sm"},
            )
        ],
        [mo("via data sm")],
        [(Cmd.DATA_SM_RESP, Status.ROK)],
    ),
    InboundCase(
        "mo-the-inbox-could-not-store-is-sent-again",
        [deliver_sm(b"retry me")],
        [mo("retry me")],
        [(Cmd.DELIVER_SM_RESP, Status.RX_T_APPN)],
        ack=False,
    ),
    InboundCase(
        "receipt-text",
        [deliver_sm(RECEIPT_TEXT, source=TO.removeprefix("+"), to="CONNCT", esm_class=0x04)],
        [Receipt((ID, f"{LABEL}:{FIRST}"), "Delivered", "7500")],
        [RESP_OK],
    ),
    InboundCase(
        "receipt-tlv-only-with-a-network-error",
        [
            deliver_sm(
                b"",
                esm_class=0x04,
                tlvs={
                    Tag.RECEIPTED_MESSAGE_ID: cstring_tlv("00A1B2"),
                    Tag.MESSAGE_STATE: b"\x05",
                    Tag.NETWORK_ERROR_CODE: b"\x03\x00\x0d",
                },
            )
        ],
        [Receipt((ID, f"{LABEL}:{FIRST}"), "Un-Delivered", "7201")],
        [RESP_OK],
    ),
    InboundCase(
        "receipt-intermediate-is-answered-not-reported",
        [deliver_sm(RECEIPT_TEXT.replace(b"DELIVRD", b"ENROUTE"), esm_class=0x04)],
        [],
        [RESP_OK],
    ),
    InboundCase(
        "receipt-the-inbox-could-not-store-is-sent-again",
        [deliver_sm(RECEIPT_TEXT, esm_class=0x04)],
        [Receipt((ID, f"{LABEL}:{FIRST}"), "Delivered", "7500")],
        [(Cmd.DELIVER_SM_RESP, Status.RX_T_APPN)],
        ack=False,
    ),
]

PROVIDER = Provider("smpp", open_smpp, OUTBOUND, INBOUND)
