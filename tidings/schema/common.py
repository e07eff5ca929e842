"""Field types and checks shared by every channel object: addresses, times, lengths."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Protocol

import msgspec
import phonenumbers

from tidings.errors import ApiError, InvalidJson, InvalidParameter, MandatoryMissing

CORRELATION_MAX_BYTES = 50
CALLBACK_DATA_MAX_CHARS = 2000
# What a handset shows as the sender: an alphanumeric id of at most 11 characters (the GSM address field
# holds 11 packed characters), or a number of at most 16 digits (a leading '+' is not a digit).
SENDER_ALPHA_MAX_CHARS = 11
SENDER_MAX_DIGITS = 16

_E164 = re.compile(r"\+?([1-9][0-9]{6,14})")


def msisdn(value: object, field: str) -> str:
    """Check an address is E.164 (leading '+' optional, digits only); return it with the '+'."""
    if not isinstance(value, str):
        raise InvalidParameter(f"{field} must be a string")
    m = _E164.fullmatch(value.strip())
    if m is None or not _possible(m.group(1)):
        raise InvalidParameter(f"{field} {value!r} is not an E.164 phone number")
    return "+" + m.group(1)


def _possible(digits: str) -> bool:
    for size in (1, 2, 3):
        cc = int(digits[:size])
        if cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return _possible_for(cc, digits[size:])
    return False


_LENGTHS: dict[tuple[int, int], bool] = {}


def _possible_for(cc: int, national: str) -> bool:
    # "Possible" depends only on the country code and the length of a national number that parsing leaves
    # as it is, so one parse serves every later address of that shape (~1 µs instead of ~11 µs). A number
    # that parsing rewrites (a trunk prefix, as in +44 07700…) is not in E.164 form and is refused.
    key = (cc, len(national))
    cacheable = not national.startswith("0")  # a leading 0 is a trunk prefix in some countries only
    if cacheable and (hit := _LENGTHS.get(key)) is not None:
        return hit
    parsed = phonenumbers.parse(f"+{cc}{national}")
    if phonenumbers.national_significant_number(parsed) != national:
        return False
    possible = bool(phonenumbers.is_possible_number(parsed))
    if cacheable:
        _LENGTHS[key] = possible
    return possible


def sender_id_problem(sender: str) -> str | None:
    """Why a sender id is too long for a handset to show, or None. Digits only (after an optional
    leading '+') make a numeric one; anything else is alphanumeric."""
    digits = sender.removeprefix("+")
    if digits.isascii() and digits.isdigit():
        if len(digits) > SENDER_MAX_DIGITS:
            return f"a numeric sender id has at most {SENDER_MAX_DIGITS} digits ({len(digits)} given)"
        return None
    if len(sender) > SENDER_ALPHA_MAX_CHARS:
        return (
            f"an alphanumeric sender id has at most {SENDER_ALPHA_MAX_CHARS} characters ({len(sender)} given)"
        )
    return None


def max_bytes(value: str | None, limit: int, field: str) -> str | None:
    if value is not None and len(value.encode("utf-8")) > limit:
        raise InvalidParameter(f"{field} is longer than {limit} bytes")
    return value


def max_chars(value: str | None, limit: int, field: str) -> str | None:
    if value is not None and len(value) > limit:
        raise InvalidParameter(f"{field} is longer than {limit} characters")
    return value


def required(value: object, field: str) -> None:
    if value is None or value == "" or value == []:
        raise MandatoryMissing(field)


_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"\s*(Z|z|[+-]\d{1,2}(?::?\d{2})?)?"
)


# Times from year 1 to 9999 only: anything else cannot be shown back as ISO 8601.
_EARLIEST, _LATEST = -62135596800.0, 253402300799.0


def timestamp(value: str | int | float, field: str) -> float:
    """Parse a time: ISO 8601 with or without an offset (none means UTC), including the documents'
    one-digit-hour offsets such as `+5:30`, or epoch seconds (epoch milliseconds are recognised by their
    size). Return epoch seconds."""
    if isinstance(value, bool):
        raise InvalidParameter(f"{field} must be an ISO 8601 time")
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int | float):
        seconds = float(value) / 1000 if value >= 1e11 else float(value)
        if not 0 <= seconds <= _LATEST:
            raise InvalidParameter(f"{field} {value!r} is out of range")
        return seconds
    m = _ISO.fullmatch(value.strip())
    if m is None:
        raise InvalidParameter(f"{field} {value!r} is not an ISO 8601 time such as 2026-04-12T13:00:19.456Z")
    year, month, day, hour, minute, second, frac, offset = m.groups()
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((frac or "0").ljust(6, "0")[:6]),
            tzinfo=_offset(offset),
        ).timestamp()
    except (ValueError, OverflowError) as exc:
        raise InvalidParameter(f"{field} {value!r} is not a valid time ({exc})") from None
    if not _EARLIEST <= moment <= _LATEST:
        raise InvalidParameter(f"{field} {value!r} is out of range")
    return moment


def _offset(text: str | None) -> timezone:
    if text is None or text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    body = text[1:].replace(":", "")
    hours, minutes = (int(body), 0) if len(body) <= 2 else (int(body[:-2]), int(body[-2:]))
    if hours > 23 or minutes > 59:
        raise ValueError(f"offset {text} out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def decode_error_detail(exc: Exception, prefix: str = "") -> str:
    """Turn msgspec's "Expected `str`, got `int` - at `$.a[0].b`" into "a[0].b: expected `str`, got `int`"."""
    message, _, where = str(exc).partition(" - at `")
    message = message[:1].lower() + message[1:]
    path = where.rstrip("`").removeprefix("$").removeprefix(".")
    full = ".".join(p for p in (prefix, path) if p).replace(".[", "[")
    return f"{full}: {message}" if full else message


def typed_error(exc: Exception) -> ApiError:
    """A msgspec type error as the SMS and consent APIs report it: 7004 naming the field the way the API
    does (`$.to[0].substitutions` is `to[0].substitutions`); with no field, the body itself is not an
    object (7000)."""
    message, _, where = str(exc).partition(" - at `")
    field = where.rstrip("`").removeprefix("$").removeprefix(".").replace(".[", "[")
    if not field:
        return InvalidJson("the body is not a JSON object")
    return InvalidParameter(message, field=field)


class Addressing(Protocol):
    """What intake needs to know about one channel of the v1 API."""

    name: str
    path: tuple[str, ...]
    address_keys: tuple[str, ...]  # the destination keys of this channel, its main one first

    def address(self, value: object, field: str) -> str: ...

    def content(self, raw: bytes, field: str, senders: Sequence[str]) -> "ChannelContent": ...

    def fill_text(self, given: dict[str, Any], text: str) -> dict[str, Any]:
        """The channel object with a template's text wherever the request gave none."""


@dataclass(frozen=True, slots=True)
class ChannelContent:
    """A validated channel object: what is stored and sent (its channel's content Struct, the type its
    spec names), and how many parts it takes."""

    data: msgspec.Struct
    parts: int = 1
