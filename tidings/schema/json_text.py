"""What every request body must be before any API reads it: one JSON text, strictly.

The typed decoders (msgspec) read only the fields they know and skip the rest unchecked, and they raise
UnicodeDecodeError or RecursionError on some inputs instead of a DecodeError. So the whole body is
checked here first, once, for every API, and everything below refuses with `InvalidJson`:

- an empty body (or only whitespace);
- bytes that are not UTF-8 (anywhere, in a field Tidings reads or one it ignores), or a byte order mark;
- nesting deeper than `MAX_DEPTH` containers (the body's own object or array is the first);
- a key twice in one object: RFC 8259 says names SHOULD be unique and leaves duplicates to the parser;
  rejecting them means no reader of the same bytes (a proxy, an auditor, us) can see another request;
- NaN, Infinity and -Infinity, which are not JSON;
- a string holding a lone UTF-16 surrogate escape (`"\\ud800"`): it cannot be stored or sent as UTF-8;
- anything else that is not JSON (truncated, trailing garbage).
"""

import json
import re

from tidings.errors import InvalidJson

MAX_DEPTH = 64

# A JSON string (unrolled, so a body of quotes and backslashes cannot make it backtrack).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SQUARE = bytes.maketrans(b"{}", b"[]")


class _Refused(ValueError):
    """Raised from inside the stdlib parser's hooks: the reason the body is refused."""


def check(raw: bytes) -> None:
    """Refuse (InvalidJson, saying why) a body that is not one strict JSON text."""
    if not raw.strip():
        raise InvalidJson("the body is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJson(
            f"the body is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    if text.startswith("\ufeff"):
        raise InvalidJson("the body starts with a byte order mark")
    too_deep = f"the body is nested deeper than {MAX_DEPTH} levels"
    try:
        _DECODER.decode(text)
    except _Refused as exc:
        raise InvalidJson(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"JSON is malformed: {exc.msg} (byte {len(text[: exc.pos].encode())})") from None
    except RecursionError:  # the parser gives up at about 1,000 levels
        raise InvalidJson(too_deep) from None
    except ValueError:  # Python reads integers of at most 4300 digits
        raise InvalidJson("a number has too many digits") from None
    if _depth_over(raw, MAX_DEPTH):
        raise InvalidJson(too_deep)
    if _SURROGATE.search(raw) is not None:
        _check_surrogates(raw)


def _depth_over(raw: bytes, limit: int) -> bool:
    """Whether a body that parsed nests more than `limit` containers deep."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # fewer openers than the limit (brackets inside strings only overcount)
    # Outside the strings (with their escaped quotes gone, every quote opens or closes one), as one kind
    # of bracket: each pass removes every innermost pair, so the passes needed to empty it are the depth.
    outside = b"".join(raw.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')[::2])
    brackets = outside.translate(_SQUARE, _NOT_BRACKETS)
    for _ in range(limit):
        brackets = brackets.replace(b"[]", b"")
        if not brackets:
            return False
    return True


def _unique_keys(pairs: list[tuple[str, object]]) -> None:
    if len(pairs) > 1 and len(dict(pairs)) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"duplicate key {json.dumps(key, ensure_ascii=False)} in one object")
            seen.add(key)


def _not_a_number(name: str) -> None:
    raise _Refused(f"{name} is not a JSON number")


# The stdlib parser, for what msgspec cannot be asked about: duplicate keys and NaN. Its hooks keep
# nothing (every object becomes None), so checking costs about as much as parsing once more.
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_not_a_number)


def _check_surrogates(raw: bytes) -> None:
    """Rare path (a `\\uD8xx`-style escape is present): decode each string holding one and see whether
    it is a whole pair."""
    for m in _STRING.finditer(raw):
        if _SURROGATE.search(m.group()) is None:
            continue
        value: str = json.loads(m.group())
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidJson("a string holds a lone UTF-16 surrogate escape (\\ud800 to \\udfff)") from None
