"""Delivery receipts: telling them from MO messages, reading them, and the keys that correlate them.

SMSCs report a receipt in a deliver_sm (or data_sm) with esm_class message type 0x04, and put what
they know in two places: the SMPP 3.4 appendix B text (`id:… sub:… dlvrd:… submit date:… done date:…
stat:… err:… text:…`) and the TLVs receipted_message_id, message_state and network_error_code. Some
send only one of the two, and many write the message id in a different form than their submit_sm_resp
did (decimal there, hex here, or the reverse; with leading zeros; with dashes). `id_keys` turns any
form into the candidate keys to look up, the exact one first.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from tidings.smpp.pdu import Pdu, Tag, tlv_text

ESM_TYPE_MASK = 0x3C
RECEIPT_TYPES = frozenset({0x04, 0x08, 0x20, 0x24})  # SMSC receipt, SME ack, abort, intermediate
_FIELD = re.compile(
    r"(id|sub|dlvrd|submit date|done date|stat|err|text)\s*:\s*(.*?)(?=\s+(?:id|sub|dlvrd|submit date|"
    r"done date|stat|err|text)\s*:|$)",
    re.IGNORECASE | re.DOTALL,
)
# message_state TLV values (SMPP 3.4 5.3.2.35) as the text form's stat words.
MESSAGE_STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
FINAL_STATES = frozenset({"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "UNKNOWN", "REJECTD"})


@dataclass(frozen=True, slots=True)
class Receipt:
    message_id: str
    stat: str  # the text form's word, upper case: DELIVRD, UNDELIV, …
    err: str  # the error code as the SMSC gave it ("" when none)

    @property
    def final(self) -> bool:
        return self.stat in FINAL_STATES


_TEXT = re.compile(r"\btext\s*:", re.IGNORECASE)


def parse_fields(text: str) -> dict[str, str]:
    """The receipt's fields. `text:` comes last and holds the start of the user's own message, which
    may say anything ("Your id:4242 is ready"): no key is read from it, and the first of each key wins."""
    head, marker, tail = text, None, ""
    if (found := _TEXT.search(text)) is not None:
        head, marker, tail = text[: found.start()], found, text[found.end() :]
    fields: dict[str, str] = {}
    for m in _FIELD.finditer(head):
        fields.setdefault(m.group(1).lower(), m.group(2).strip())
    if marker is not None:
        fields["text"] = tail.strip()
    return fields


def read_receipt(pdu: Pdu, text: str | Callable[[], str]) -> Receipt | None:
    """The receipt `pdu` carries, or None for an MO message. `text` is its decoded short_message, or a
    function that decodes it: a receipt whose TLVs say everything is never decoded."""
    marked = (pdu.number("esm_class") & ESM_TYPE_MASK) in RECEIPT_TYPES
    tlv_id = pdu.tlvs.get(Tag.RECEIPTED_MESSAGE_ID)
    state = pdu.tlvs.get(Tag.MESSAGE_STATE)
    # The TLVs alone answer a delivered receipt; the text is read only when they leave something open.
    fields: dict[str, str] = {}
    if not (tlv_id and state and state[0] == 2):
        if callable(text):
            text = text()
        lowered = text.lower()
        if "id:" in lowered and "stat" in lowered:
            fields = parse_fields(text)
    if not marked and tlv_id is None and not ("id" in fields and "stat" in fields):
        return None
    message_id = tlv_text(tlv_id) if tlv_id else fields.get("id", "")
    stat = MESSAGE_STATES.get(state[0], "UNKNOWN") if state else fields.get("stat", "").upper()
    err = fields.get("err", "")
    nec = pdu.tlvs.get(Tag.NETWORK_ERROR_CODE)
    if not err and nec is not None and len(nec) == 3:
        err = str(int.from_bytes(nec[1:3], "big"))
    if not message_id:
        return None
    return Receipt(message_id.strip(), stat or "UNKNOWN", err)


def canonical_id(message_id: str) -> str:
    text = message_id.strip().strip("\x00").lower().replace("-", "")
    return text.lstrip("0") or "0"


_HEX = re.compile(r"^[0-9a-f]+$")


def id_keys(message_id: str) -> list[str]:
    """Candidate keys for a receipt's message id: its canonical form first, then the same number read
    as decimal-written-as-hex and hex-written-as-decimal. Only numbers of a sane length are converted:
    a 36-character UUID is not a number any SMSC writes in decimal."""
    key = canonical_id(message_id)
    keys = [key]
    if len(key) <= 20 and key.isdigit():
        keys.append(format(int(key), "x"))
    if len(key) <= 16 and _HEX.match(key):
        keys.append(str(int(key, 16)))
    return list(dict.fromkeys(keys))
