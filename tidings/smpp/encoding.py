"""SMS alphabets and segmentation: GSM 03.38 (7-bit), UCS-2 and 8-bit binary.

GSM text is carried the way SMPP carries it: unpacked, one septet per octet, with data_coding 0
meaning "SMSC default alphabet". Payloads here never include a UDH; `with_udh` adds one.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

DC_DEFAULT = 0x00
DC_IA5 = 0x01
DC_OCTET = 0x02
DC_LATIN1 = 0x03
DC_BINARY = 0x04
DC_UCS2 = 0x08
DC_FLASH_GSM = 0x10
DC_FLASH_UCS2 = 0x18

# Index = septet value (3GPP TS 23.038 basic table); 0x1B is the escape to the extension table.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_ESCAPE = 0x1B
# TS 23.038 extension table: code that follows the escape septet.
GSM7_EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
GSM7_EXTENDED = "".join(GSM7_EXTENSION)

_ENCODE: dict[str, bytes] = {ch: bytes([i]) for i, ch in enumerate(GSM7_BASIC) if i != GSM7_ESCAPE}
_ENCODE.update({ch: bytes([GSM7_ESCAPE, code]) for ch, code in GSM7_EXTENSION.items()})
_DECODE_EXT = {code: ch for ch, code in GSM7_EXTENSION.items()}
_BASIC = frozenset(GSM7_BASIC) - {"\x1b"}
_EXTENDED = frozenset(GSM7_EXTENDED)

GSM_SINGLE, GSM_PART = 160, 153  # a 6-octet UDH takes 7 septets (48 bits + 1 fill bit)
OCTET_SINGLE, OCTET_PART = 140, 134
_MAX_PARTS = 255  # the 8-bit concatenation IE counts parts in one octet
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Encoded:
    data_coding: int
    payload: bytes


def gsm7_septets(text: str) -> int | None:
    """Septets `text` needs in the GSM 7-bit alphabet, or None when it needs UCS-2."""
    count = 0
    for ch in text:
        if ch in _BASIC:
            count += 1
        elif ch in _EXTENDED:
            count += 2
        else:
            return None
    return count


def ucs2_units(text: str) -> int:
    return len(text.encode("utf-16-be")) // 2


def _gsm7_encode(text: str) -> bytes | None:
    try:
        return b"".join(_ENCODE[ch] for ch in text)
    except KeyError:
        return None


def encode_text(text: str, *, unicode: bool = False, flash: bool = False) -> Encoded:
    """GSM 03.38 septets (unpacked) when every character fits, else UCS-2; `unicode` forces UCS-2."""
    septets = None if unicode else _gsm7_encode(text)
    if septets is not None:
        return Encoded(DC_FLASH_GSM if flash else DC_DEFAULT, septets)
    # utf-16-be rather than strict UCS-2 so astral characters survive as surrogate pairs,
    # which handsets reassemble.
    return Encoded(DC_FLASH_UCS2 if flash else DC_UCS2, text.encode("utf-16-be"))


def encode_binary(payload: bytes) -> Encoded:
    return Encoded(DC_BINARY, bytes(payload))


def _is_gsm(data_coding: int) -> bool:
    return data_coding in (DC_DEFAULT, DC_FLASH_GSM)


def _is_ucs2(data_coding: int) -> bool:
    return data_coding in (DC_UCS2, DC_FLASH_UCS2)


def _gsm_backoff(payload: bytes, start: int, cut: int) -> int:
    # Parts start on a septet boundary, so a run of 0x1B ending just before the cut pairs up
    # from its first octet: an odd run leaves an escape whose code would land in the next part.
    run = 0
    while cut - 1 - run >= start and payload[cut - 1 - run] == GSM7_ESCAPE:
        run += 1
    return run % 2


def _ucs2_backoff(payload: bytes, start: int, cut: int) -> int:
    high, low = payload[cut - 2], payload[cut]
    return 2 if 0xD8 <= high <= 0xDB and 0xDC <= low <= 0xDF else 0


def _no_backoff(payload: bytes, start: int, cut: int) -> int:
    return 0


_Backoff = Callable[[bytes, int, int], int]


def _limits(data_coding: int) -> tuple[int, int, _Backoff]:
    if _is_gsm(data_coding):
        return GSM_SINGLE, GSM_PART, _gsm_backoff
    if _is_ucs2(data_coding):
        return OCTET_SINGLE, OCTET_PART, _ucs2_backoff
    return OCTET_SINGLE, OCTET_PART, _no_backoff


def split(enc: Encoded, *, max_single: int | None = None) -> list[bytes]:
    """Cut `enc.payload` into SMS part payloads (no UDH), keeping escape and surrogate pairs whole.

    `max_single` overrides how many payload octets may still go as a single, header-less
    message (160 for GSM, 140 otherwise); it does not change the size of concatenated parts.
    """
    payload = enc.payload
    single, part, backoff = _limits(enc.data_coding)
    if len(payload) <= (single if max_single is None else max_single):
        return [payload]
    parts: list[bytes] = []
    start = 0
    while len(payload) - start > part:
        cut = start + part
        cut -= backoff(payload, start, cut)
        parts.append(payload[start:cut])
        start = cut
    parts.append(payload[start:])
    return parts


def with_udh(parts: list[bytes], ref: int) -> list[bytes]:
    """Prefix each part with an 8-bit-reference concatenation UDH; a lone part gets none."""
    total = len(parts)
    if total <= 1:
        return list(parts)
    if total > _MAX_PARTS:
        raise ValueError(f"{total} parts exceed the {_MAX_PARTS} a concatenation header can count")
    return [bytes([0x05, 0x00, 0x03, ref & 0xFF, total, seq]) + p for seq, p in enumerate(parts, 1)]


def segments(text: str, unicode: bool = False) -> int:
    """How many SMS parts a text message takes (concatenated parts carry a 6-byte UDH)."""
    return len(split(encode_text(text, unicode=unicode)))


def binary_segments(payload: bytes) -> int:
    return len(split(encode_binary(payload)))


def _gsm7_decode(payload: bytes) -> str:
    out: list[str] = []
    i = 0
    while i < len(payload):
        septet = payload[i]
        if septet != GSM7_ESCAPE:
            out.append(GSM7_BASIC[septet])
            i += 1
        elif i + 1 == len(payload):
            out.append(" ")  # 23.038: an escape with nothing to extend shows as a space
            i += 1
        else:
            code = payload[i + 1]
            # 23.038: 1B 1B is reserved (shown as a space); other unknown codes show the basic char.
            fallback = " " if code == GSM7_ESCAPE else GSM7_BASIC[code]
            out.append(_DECODE_EXT.get(code, fallback))
            i += 2
    return "".join(out)


def _utf16_decode(payload: bytes) -> str:
    even = len(payload) - len(payload) % 2
    text = payload[:even].decode("utf-16-be", errors="surrogatepass")
    text = _LONE_SURROGATE.sub("\ufffd", text)
    return text + "\ufffd" if even < len(payload) else text


def decode_text(data_coding: int, payload: bytes) -> str:
    """Text of an inbound (MO) short message, forgiving of what real SMSCs send."""
    if _is_gsm(data_coding):
        # Septets are < 0x80; higher octets mean the SMSC sent Latin-1 under data_coding 0.
        if any(b >= 0x80 for b in payload):
            return payload.decode("latin-1")
        return _gsm7_decode(payload)
    if data_coding == DC_IA5:
        return payload.decode("ascii", errors="replace")
    if data_coding == DC_LATIN1:
        return payload.decode("latin-1")
    if _is_ucs2(data_coding):
        return _utf16_decode(payload)
    if data_coding in (DC_BINARY, DC_OCTET):
        return payload.hex()
    if data_coding & 0x0C == 0x08:
        try:
            return payload.decode("utf-16-be")
        except UnicodeDecodeError:
            pass
    return payload.decode("latin-1")


def _concat_ie(iei: int, data: bytes) -> tuple[int, int, int] | None:
    if iei == 0x00 and len(data) == 3:
        ref, total, seq = data
    elif iei == 0x08 and len(data) == 4:
        ref, total, seq = int.from_bytes(data[:2], "big"), data[2], data[3]
    else:
        return None
    # 23.040 tells receivers to ignore an IE whose sequence number is 0 or past the total.
    return (ref, total, seq) if 1 <= seq <= total else None


def _find_concat(udh: bytes) -> tuple[int, int, int] | None:
    i = 0
    while i + 2 <= len(udh):
        iei, length = udh[i], udh[i + 1]
        data = udh[i + 2 : i + 2 + length]
        if len(data) < length:
            return None
        found = _concat_ie(iei, data)
        if found is not None:
            return found
        i += 2 + length
    return None


def strip_udh(payload: bytes) -> tuple[bytes, tuple[int, int, int] | None]:
    """Split a UDHI message into its body and (ref, total, seq) when the UDH concatenates."""
    if not payload or 1 + payload[0] > len(payload):
        return payload, None
    end = 1 + payload[0]
    return payload[end:], _find_concat(payload[1:end])
