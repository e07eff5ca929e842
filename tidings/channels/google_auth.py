"""Google service-account access tokens, shared by every Google API Tidings calls (FCM, RCS Business
Messaging).

Auth is the OAuth2 JWT-bearer grant (RFC 7523): an RS256 assertion, signed with the key file's private
key and posted to the key file's `token_uri` (used as it is, so tests and private deployments point it
elsewhere), buys an access token for about an hour. `GoogleTokens` caches it, starts the next fetch about
five minutes before it runs out with one request however many senders are waiting, and lets a caller
`forget` a token the API refused (401: Google may revoke one early) so the next call buys a new one.

The API's own codes for "the token endpoint is unavailable" and "the credentials are refused" are
given by the caller, so each channel reports its own documented code.
"""

import asyncio
import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
import msgspec
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tidings.channels.base import FailureKind, SendError
from tidings.channels.push.http import Answer, post

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_ASSERTION_LIFETIME = 3600  # the longest Google accepts
_REFRESH_MARGIN = 300.0  # fetch the next token this long before the current one runs out
_USABLE_MARGIN = 30.0  # stop sending with a token this long before it runs out (clock skew, transit)
_REFRESH_RETRY = 5.0  # after a failed early refresh, while the current token still works
_TEXT_LIMIT = 200  # of the token endpoint's own error text kept in a description


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """The parts of a Google service-account key file the grant needs."""

    client_email: str
    private_key_id: str
    token_uri: str
    key: RSAPrivateKey

    def __repr__(self) -> str:  # the key never reaches a log line through a repr
        return f"ServiceAccount(client_email={self.client_email!r}, token_uri={self.token_uri!r})"


def is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def is_base_url(url: str) -> bool:
    """Whether `url` is http(s)://host[:port] with no path, query or fragment (a `base_url` setting)."""
    parts = urlsplit(url)
    return is_http_url(url) and not parts.query and not parts.fragment and parts.path in ("", "/")


def load_service_account(path: Path) -> ServiceAccount:
    """Read and check a key file; raise ValueError saying what is wrong (never quoting the key)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"service_account_file {path}: cannot be read ({exc.strerror})") from None
    try:
        info = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise ValueError(f"service_account_file {path}: not JSON") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ValueError(
            f'service_account_file {path}: not a service-account key ("type" is not service_account)'
        )
    fields = {name: info.get(name) for name in ("client_email", "private_key_id", "private_key", "token_uri")}
    missing = [name for name, value in fields.items() if not isinstance(value, str) or not value]
    if missing:
        raise ValueError(f"service_account_file {path}: missing {', '.join(missing)}")
    token_uri = str(fields["token_uri"])
    if not is_http_url(token_uri):
        raise ValueError(f"service_account_file {path}: token_uri is not an http(s) URL")
    try:
        key = load_pem_private_key(str(fields["private_key"]).encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError(f"service_account_file {path}: private_key is not an unencrypted PEM key") from None
    if not isinstance(key, RSAPrivateKey):
        raise ValueError(f"service_account_file {path}: private_key is not an RSA key")
    return ServiceAccount(str(fields["client_email"]), str(fields["private_key_id"]), token_uri, key)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a Google answer asked us to wait (Retry-After in seconds or as a date), if it did."""
    value = headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def transport_error(exc: Exception, what: str, code: str) -> SendError:
    if isinstance(exc, TimeoutError):  # (aiohttp's timeouts are TimeoutErrors too)
        return SendError(FailureKind.TIMEOUT, f"{what}: no answer in time", code)
    return SendError(FailureKind.CONNECTION, f"{what}: {type(exc).__name__}", code)


@dataclass(frozen=True, slots=True)
class _AccessToken:
    value: str
    refresh_at: float  # monotonic: when to start fetching the next one (senders keep using this one)
    usable_until: float  # monotonic: after this, senders wait for the next one
    expires_at: float  # wall clock, as Google said: for the console's health page

    @classmethod
    def lasting(cls, value: str, seconds: float) -> "_AccessToken":
        # margins shrink for short-lived tokens so that one is always used for a while
        now = time.monotonic()
        refresh_at = now + seconds - min(_REFRESH_MARGIN, seconds / 2)
        return cls(value, refresh_at, now + seconds - min(_USABLE_MARGIN, seconds / 4), time.time() + seconds)


@dataclass(frozen=True, slots=True)
class TokenCodes:
    """What a token failure is called in the calling channel's words."""

    label: str  # names the API in descriptions ("FCM", "RBM")
    unavailable: str  # the token endpoint could not be reached or answered 429/5xx
    refused: str  # the key file or the grant was refused: a configuration fault


class GoogleTokens:
    """Access tokens for one key file and scope. One fetch at a time: while the current token still
    works, senders use it and the next one is fetched beside them; without one, every sender waits for
    the same fetch and shares its outcome."""

    def __init__(
        self,
        key_path: Path,
        scope: str,
        codes: TokenCodes,
        session: Callable[[], aiohttp.ClientSession],
        *,
        deadline: float,
        on_refused: Callable[[str], None],
        on_granted: Callable[[], None] = lambda: None,
    ) -> None:
        self._key_path = key_path
        self._scope = scope
        self._codes = codes
        self._session = session  # the caller's HTTP session (opened on first use)
        self._deadline = deadline
        self._on_refused = on_refused  # called with the description when the credentials are refused
        self._on_granted = on_granted
        self._account: ServiceAccount | None = None
        self._token: _AccessToken | None = None
        self._refresh: asyncio.Future[_AccessToken] | None = None

    @property
    def expires_at(self) -> float | None:
        """When the access token in hand runs out (epoch seconds); None before the first."""
        return None if self._token is None else self._token.expires_at

    @property
    def account(self) -> str:
        """The key file's service account (its client_email), once read; never a secret."""
        return self._account.client_email if self._account is not None else ""

    async def get(self) -> str:
        """A usable access token (SendError when none can be had)."""
        current, now = self._token, time.monotonic()
        if current is not None and now < current.refresh_at:
            return current.value
        refresh = self._refresh
        if refresh is None:
            refresh = self._refresh = asyncio.ensure_future(self._fetch())
            refresh.add_done_callback(self._refreshed)
        if current is not None and now < current.usable_until:
            return current.value
        try:
            # shield: one sender giving up must not cancel the fetch the others wait for
            token = await asyncio.shield(refresh)
        except SendError as exc:  # each waiter raises its own copy of the shared failure
            raise SendError(exc.kind, exc.description, exc.code, exc.retry_after) from None
        return token.value

    def forget(self, token: str) -> None:
        """The API refused `token`: the next `get` buys a new one."""
        if self._token is not None and self._token.value == token:
            self._token = None

    def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None

    def _refreshed(self, future: asyncio.Future[_AccessToken]) -> None:
        if self._refresh is future:
            self._refresh = None
        if future.cancelled():
            return
        if future.exception() is None:  # (also marks a failure nobody awaited as seen)
            self._token = future.result()
            self._on_granted()
        elif (current := self._token) is not None:
            # an early refresh failed: keep the working token, try again a little later
            retry_at = min(time.monotonic() + _REFRESH_RETRY, current.usable_until)
            self._token = _AccessToken(current.value, retry_at, current.usable_until, current.expires_at)

    async def _fetch(self) -> _AccessToken:
        account = self._service_account()
        now = int(time.time())
        claims: dict[str, Any] = {"iss": account.client_email, "scope": self._scope, "aud": account.token_uri}
        claims |= {"iat": now, "exp": now + _ASSERTION_LIFETIME}
        assertion = jwt.encode(
            claims, account.key, algorithm="RS256", headers={"kid": account.private_key_id}
        )
        form = {"grant_type": GRANT_TYPE, "assertion": assertion}
        try:
            async with asyncio.timeout(self._deadline):
                response = await post(self._session(), account.token_uri, data=form)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_error(
                exc, f"{self._codes.label} token endpoint", self._codes.unavailable
            ) from None
        return self._token_from(response)

    def _token_from(self, response: Answer) -> _AccessToken:
        label = self._codes.label
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            answer = {}
        if response.status_code >= 500 or response.status_code == 429:
            raise SendError(
                FailureKind.CONNECTION,
                f"{label} token endpoint answered {response.status_code}",
                self._codes.unavailable,
                retry_after(response.headers),
            )
        value, lifetime = answer.get("access_token"), answer.get("expires_in")
        if response.status_code != 200 or not isinstance(value, str) or not value:
            reason = " ".join(str(answer.get(k, ""))[:_TEXT_LIMIT] for k in ("error", "error_description"))
            text = f"{label} token endpoint refused the grant ({response.status_code}): {reason.strip()}"
            self._on_refused(text)
            raise SendError(FailureKind.CONFIG, text, self._codes.refused)
        seconds = float(lifetime) if isinstance(lifetime, int | float) else float(_ASSERTION_LIFETIME)
        return _AccessToken.lasting(value, seconds)

    def _service_account(self) -> ServiceAccount:
        if self._account is None:
            try:
                self._account = load_service_account(self._key_path)
            except ValueError as exc:
                self._on_refused(str(exc))
                raise SendError(FailureKind.CONFIG, str(exc), self._codes.refused) from None
        return self._account
