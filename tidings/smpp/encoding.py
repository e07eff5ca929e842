"""SMS alphabets and segmentation: GSM 03.38 (7-bit), UCS-2 and 8-bit binary."""

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = "^{}\\[~]|€\f"
_BASIC = frozenset(GSM7_BASIC) - {"\x1b"}
_EXTENDED = frozenset(GSM7_EXTENDED)


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


def _parts(size: int, single: int, multi: int) -> int:
    return 1 if size <= single else -(-size // multi)


def segments(text: str, unicode: bool = False) -> int:
    """How many SMS parts a text message takes (concatenated parts carry a 6-byte UDH)."""
    septets = None if unicode else gsm7_septets(text)
    if septets is not None:
        return _parts(septets, 160, 153)
    return _parts(ucs2_units(text), 70, 67)


def binary_segments(payload: bytes) -> int:
    return _parts(len(payload), 140, 134)
