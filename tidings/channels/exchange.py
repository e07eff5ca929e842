"""What a connector reports of one send (`Exchange`, on `SendResult` and `SendError`): the request it
put on the wire and the provider's answer, in a readable form, secrets removed, each cut to LIMIT.

The dispatcher stores it as one of the message's provider attempts (the `attempts` table) and the
console's message page shows it. Readable, not raw: an HTTP request is its method, URL and body (never
its headers: they carry the credentials); an SMPP submit_sm the fields that matter; an email its
envelope and headers, not its body.

Secrets: a connector passes the credentials it holds (`secrets`: a token, a password) and every
occurrence is replaced; what looks like a credential anyway (a bearer token, a JWT, a PEM private key,
the value of a JSON key named like a secret) is replaced too, so that an answer quoting one, or a user's
text holding one, never reaches the table.
"""

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from tidings.channels.base import Exchange, SendError

LIMIT = 4096  # characters kept of a request and of an answer: the attempts table stays small
MARK = "[redacted]"
_MIN_SECRET = 4  # shorter "secrets" would blank out ordinary text

# Cheap tests first: the pattern below runs only on a text holding one of these (most texts hold none).
_HINTS = (
    "eyJ",
    "earer",
    "EARER",
    "PRIVATE KEY",
    "ecret",
    "assword",
    "oken",
    "pi_key",
    "pikey",
    "uthoriz",
    "@",
)
_SECRET_KEYS = (
    "access_token|refresh_token|id_token|client_secret|secret|password|passwd|api_key|apikey|private_key"
    "|authorization|auth_token"
)
_PATTERN = re.compile(
    r"(?P<bearer>(?i:bearer)\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"
    rf"|(?P<key>\"(?i:{_SECRET_KEYS})\"\s*:\s*)\"(?:[^\"\\]|\\.)*\""
    rf"|(?P<param>[?&](?i:{_SECRET_KEYS})=)[^&\s]*"
    r"|(?P<userinfo>//)[^/\s@:]+:[^/\s@]+@",
    re.DOTALL,
)


def _replace(m: re.Match[str]) -> str:
    for group, shown in (
        ("bearer", "{}" + MARK),
        ("key", '{}"' + MARK + '"'),
        ("param", "{}" + MARK),
        ("userinfo", "{}" + MARK + "@"),
    ):
        prefix = m.group(group)
        if prefix is not None:
            return shown.format(prefix)
    return MARK


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with each of `secrets` and anything shaped like a credential replaced by MARK."""
    for secret in secrets:
        if len(secret) >= _MIN_SECRET and secret in text:
            text = text.replace(secret, MARK)
    for hint in _HINTS:  # (a plain loop: twice as fast as any() over a generator, on the hot path)
        if hint in text:
            return _PATTERN.sub(_replace, text)
    return text


def clip(text: str, limit: int = LIMIT) -> str:
    """At most `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    kept = limit - 60  # room for the note, whose length is under 60
    return text[:kept] + f"\n… ({len(text) - kept:,} more characters not kept)"


def _text(body: bytes | str | None) -> str:
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    # Cut before decoding: a large body costs no more than LIMIT to show.
    return body[: LIMIT * 2].decode("utf-8", "replace")


def shown_url(url: str) -> str:
    """A URL without its user:password@."""
    if "@" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()


def http_request(
    method: str,
    url: str,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """An HTTP request as the console shows it: the request line, the `headers` worth showing (the
    caller picks them: never Authorization), a blank line and the body."""
    lines = [f"{method} {shown_url(url)}"]
    if headers:
        lines.extend(f"{name}: {value}" for name, value in headers.items())
    text = _text(body)
    return "\n".join(lines) + ("\n\n" + text if text else "")


def http_answer(
    status: int, body: bytes | str | None = None, headers: Mapping[str, str] | None = None
) -> str:
    """An HTTP answer: its status, the `headers` worth showing, a blank line and the body."""
    lines = [f"HTTP {status}"]
    if headers:
        lines.extend(f"{name}: {value}" for name, value in headers.items() if value)
    text = _text(body)
    return "\n".join(lines) + ("\n\n" + text if text else "")


def no_answer(why: str) -> str:
    """The answer of a request that got none (refused, reset, timed out)."""
    return f"no answer: {why}"


def unanswered(error: SendError, request: str, secrets: Iterable[str] = ()) -> SendError:
    """`error` (a request that got no answer: refused, reset, timed out) carrying its exchange."""
    error.exchange = exchange(request, no_answer(error.description), secrets)
    return error


def exchange(request: str, answer: str, secrets: Iterable[str] = ()) -> Exchange:
    """The `Exchange` of a request and its answer, both redacted and clipped."""
    held = tuple(secrets)
    return Exchange(clip(redact(request, held)), clip(redact(answer, held)))


def merged(parts: Iterable[tuple[str, Exchange]]) -> Exchange | None:
    """One message's exchanges with several providers (a push to each of a user's devices), each headed
    by its name; None when there were none."""
    items = list(parts)
    if not items:
        return None
    if len(items) == 1:
        return items[0][1]
    request = "\n\n".join(f"── {name} ──\n{x.request}" for name, x in items)
    answer = "\n\n".join(f"── {name} ──\n{x.answer}" for name, x in items)
    return Exchange(clip(request), clip(answer))


def headed(name: str, value: Exchange | None) -> Iterable[tuple[str, Exchange]]:
    """(name, value) when there is a value: for `merged`."""
    return () if value is None else ((name, value),)
