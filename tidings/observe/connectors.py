"""What a connector says about itself: `describe()`, read by the console's health page and /metrics.

A connector may offer `describe() -> ConnectorReport` (optional, as `health()` is): whether it can send,
its last success and last failure, the credentials it holds with when each expires (or that it is a
static token, and whether the provider refused it), and its rate limit with whether the provider has it
backing off and until when. The `Connector` protocol does not name it: a connector without it still
works, and the console shows what `health()` says or that it reports nothing.

Most of a report comes from a `Ledger`, which a connector passes its send results through: a loop over
the batch's results (an isinstance per message, one clock read per batch), no lock, no I/O. A provider's
words are kept as it said them, less anything that looks like a secret (`redact`): bearer values, JWTs,
`password=`-style pairs, a URL's `user:password@`, and the secrets the connector names (its SMPP
password, its tokens).
"""

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from tidings import clock
from tidings.channels.base import FailureKind, SendError, SendResult
from tidings.observe.metrics import ConnectorHealth

TEXT_LIMIT = 300  # of a provider's words kept in a failure
REDACTED = "[redacted]"
STATIC_KINDS = frozenset({"static token", "password"})

_SECRET_SHAPES = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}"), r"\1 " + REDACTED),
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    (
        re.compile(
            r"(?i)\b(access_token|refresh_token|id_token|client_secret|password|passwd|secret|token"
            r"|api_key|apikey|key|assertion|auth|signature|sig)([\"']?\s*[=:]\s*[\"']?)[^\s&\"',;]+"
        ),
        r"\1\2" + REDACTED,
    ),
    (re.compile(r"(//)[^/\s@:]+:[^/\s@]+@"), r"\1" + REDACTED + "@"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the secrets named, nor anything shaped like one."""
    for secret in secrets:
        if secret and len(secret) >= 4:  # (a one-letter "secret" would blank out the words)
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _SECRET_SHAPES:
        text = pattern.sub(replacement, text)
    return text


@dataclass(frozen=True, slots=True)
class Failure:
    """One failure as the health page shows it: when, its kind (`FailureKind.word`), the channel's code
    when the connector named one, and the provider's words (redacted)."""

    at: float  # epoch seconds
    kind: str
    code: str | None
    text: str


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential a connector holds for a provider. `expires_at` is when the one in hand runs out
    (None for a static token, or before the first is fetched); `refused` is the provider's last refusal of
    it, "" once it was accepted again: a person has to act."""

    name: str  # what it is for, never the secret: "FCM app-x (svc@project.iam.gserviceaccount.com)"
    kind: str  # "OAuth access token", "provider JWT", "VAPID JWT", "static token", "password"
    expires_at: float | None = None
    refused: str = ""
    note: str = ""  # "renewed 20 min early", "not fetched yet", …

    @property
    def static(self) -> bool:
        """A credential that does not expire by itself (a static token, a password)."""
        return self.kind in STATIC_KINDS


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The rate a connector is held to (`configured`, "" when none is set) and the provider's own
    brake: when it last asked us to slow down, and until when the messages it refused wait."""

    configured: str = ""
    backoff_until: float | None = None  # epoch seconds; None when it never asked
    why: str = ""

    def backing_off(self, now: float) -> bool:
        return self.backoff_until is not None and self.backoff_until > now


@dataclass(frozen=True, slots=True)
class ConnectorReport:
    up: bool  # can send now (an SMPP connector while a transmitting bind is bound)
    health: ConnectorHealth | None = None  # in flight of the window, for connectors that have one
    detail: tuple[str, ...] = ()  # more of its state in words (each SMPP bind)
    last_success: float | None = None
    last_error: Failure | None = None
    credentials: tuple[Credential, ...] = ()
    rate: RateLimit = RateLimit()

    @property
    def attention(self) -> str:
        """Why a person should look, "" when nothing needs them: a refused credential, or a
        configuration failure newer than the last success."""
        refused = [c.name for c in self.credentials if c.refused]
        if refused:
            return f"credentials refused: {', '.join(refused)}"
        error = self.last_error
        if error is None or error.kind != FailureKind.CONFIG.word:
            return ""
        if self.last_success is None or error.at > self.last_success:
            return "the last send failed on the configuration or credentials"
        return ""

    @property
    def state(self) -> str:
        if not self.up:
            return "down"
        return "needs attention" if self.attention else "up"


class Describes(Protocol):
    def describe(self) -> ConnectorReport: ...


def report_of(connector: object) -> ConnectorReport | None:
    """The connector's own report, if it offers one."""
    describe = getattr(connector, "describe", None)
    report = describe() if callable(describe) else None
    return report if isinstance(report, ConnectorReport) else None


R = TypeVar("R", bound=Sequence[SendResult | SendError])


class Ledger:
    """A connector's recent record: its last success, its last failure, and the provider's last
    request to slow down (a THROTTLED failure with the wait it asked for)."""

    __slots__ = ("backoff_until", "backoff_why", "last_error", "last_success", "secrets")

    def __init__(self, secrets: Callable[[], Iterable[str]] = tuple) -> None:
        self.secrets = secrets  # read when a failure is kept: settings may change while running
        self.last_success: float | None = None
        self.last_error: Failure | None = None
        self.backoff_until: float | None = None
        self.backoff_why = ""

    def record(self, results: R) -> R:
        """Note a batch's results; returns them, so a connector's `send` can end with
        `return self.ledger.record(results)`."""
        succeeded = False
        failure: SendError | None = None
        for r in results:
            if isinstance(r, SendError):
                # A fallback (RCS to SMS) is the message going another way, not a failure.
                if r.fallback is None:
                    failure = r
            else:
                succeeded = True
        if succeeded or failure is not None:
            now = clock.now()
            if succeeded:
                self.last_success = now
            if failure is not None:
                self.failed(failure, now)
        return results

    def failed(self, error: SendError, at: float | None = None) -> None:
        now = clock.now() if at is None else at
        text = redact(error.description, self.secrets())[:TEXT_LIMIT]
        self.last_error = Failure(now, error.kind.word, error.code, text)
        if error.kind is FailureKind.THROTTLED and error.retry_after:
            until = now + error.retry_after
            if self.backoff_until is None or until > self.backoff_until or self.backoff_until <= now:
                self.backoff_until = until
                self.backoff_why = text

    def report(
        self,
        *,
        up: bool = True,
        health: ConnectorHealth | None = None,
        detail: Iterable[str] = (),
        credentials: Iterable[Credential] = (),
        configured: str = "",
        backoff: tuple[float, str] | None = None,
        failures: Iterable[Failure] = (),
    ) -> ConnectorReport:
        """The report, with what the connector knows beyond its sends: a backoff of its own (SMPP's
        throttling: until, why) and failures outside a send (a bind that could not connect). Every
        word a provider or the network may have put in it (the details, a credential's refusal and
        note, the backoff's why) is redacted like a failure's: the report is shown on the health page
        and published to the store for the other processes' pages."""
        secrets = tuple(self.secrets())
        last = self.last_error
        for f in failures:
            if last is None or f.at > last.at:
                last = Failure(f.at, f.kind, f.code, redact(f.text, secrets)[:TEXT_LIMIT])
        until, why = self.backoff_until, self.backoff_why
        if backoff is not None and (until is None or backoff[0] > until):
            until, why = backoff[0], redact(backoff[1], secrets)
        return ConnectorReport(
            up=up,
            health=health,
            detail=tuple(redact(d, secrets) for d in detail),
            last_success=self.last_success,
            last_error=last,
            credentials=tuple(_redacted(c, secrets) for c in credentials),
            rate=RateLimit(configured, until, why),
        )


def _redacted(c: Credential, secrets: tuple[str, ...]) -> Credential:
    """A credential with the provider's words in its refusal and note redacted (its name is Tidings's
    own: an app id, a project, a login; never the secret)."""
    refused, note = redact(c.refused, secrets), redact(c.note, secrets)
    if refused == c.refused and note == c.note:
        return c
    return Credential(c.name, c.kind, c.expires_at, refused, note)
