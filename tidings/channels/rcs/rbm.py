"""The RCS Business Messaging REST API for one agent (`[apps.rcs]`).

Send        POST {base_url}/v1/phones/{E.164}/agentMessages?messageId=<transid>&agentId=<agent_id>
            with `{"contentMessage": …}` (tidings.schema.rcs.agent_message). RBM ignores a messageId
            it has seen, so a send retried after a lost answer cannot reach the user twice; a 409
            ALREADY_EXISTS for a repeated messageId is the earlier send's success.
Capability  GET {base_url}/v1/phones/{E.164}/capabilities?requestId=<uuid>&agentId=<agent_id>
            → `{"features": [...]}`, 404 when the number is not RCS-reachable.

Auth: `Authorization: Bearer` with an access token from the agent's service account (the JWT-bearer
grant, tidings.channels.google_auth, scope rcsbusinessmessaging): cached, refreshed early, and bought
again once when RBM answers 401.

Refusals are Google's RPC shape `{"error": {"code", "message", "status"}}`, mapped onto Webex Connect's
RCS codes (tidings.specs.rcs_codes) and the failure catalogue:

    answer                        kind                          code
    400 INVALID_ARGUMENT          INVALID                       7318 (7740 when it names the file)
    401 UNAUTHENTICATED (twice)   CONFIG (logged once)          7322
    403 PERMISSION_DENIED         CONFIG (logged once)          7322 (7323, REJECTED, for "not launched")
    404 NOT_FOUND                 REJECTED (the SMS fallback)   7319
    429 RESOURCE_EXHAUSTED        THROTTLED (Retry-After)       7320
    503 UNAVAILABLE               UNAVAILABLE                   7321
    500, 502, 504, unreadable     CONNECTION (retried)          7321

RBM's own error text goes into the description (and so into `additionalInfo`); never the token.
"""

import logging
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import msgspec

from tidings.channels.base import Exchange, FailureKind, SendError
from tidings.channels.exchange import exchange, http_answer, http_request, no_answer
from tidings.channels.google_auth import (
    GoogleTokens,
    TokenCodes,
    is_base_url,
    load_service_account,
    retry_after,
)
from tidings.channels.google_auth import transport_error as _transport_error
from tidings.channels.push.http import Answer, open_session, post
from tidings.channels.rcs.settings import RcsSettings
from tidings.observe.connectors import Credential
from tidings.specs import rcs_codes as codes

log = logging.getLogger("tidings.rcs")

SCOPE = "https://www.googleapis.com/auth/rcsbusinessmessaging"
_CONNECT_TIMEOUT = 5.0
_DEADLINE = 10.0  # a whole request, however slowly the answer trickles in
CONNECTIONS = 64  # requests in flight per agent, each on its own keep-alive connection
_TEXT_LIMIT = 300  # of RBM's error text kept in a description
_MEDIA_WORDS = ("file", "media", "contentinfo", "thumbnail")


def check(settings: RcsSettings, base_dir: Path) -> list[str]:
    """Configuration problems of an `[apps.rcs]` block, in words (empty when it looks usable)."""
    problems = []
    if not settings.agent_id.strip() or any(c in settings.agent_id for c in "/?#& "):
        problems.append(f"agent_id {settings.agent_id!r} is not an RBM agent id")
    if not settings.client_token:
        problems.append("client_token must not be empty (it verifies RBM's webhooks)")
    if not is_base_url(settings.base_url):
        problems.append(f"base_url {settings.base_url!r} is not http(s)://host[:port]")
    try:
        load_service_account(base_dir / settings.service_account_file)
    except ValueError as exc:
        problems.append(str(exc))
    return problems


class _RpcError(msgspec.Struct):
    code: int = 0
    message: str = ""
    status: str = ""


class _ErrorBody(msgspec.Struct):
    error: _RpcError | None = None


class _Capabilities(msgspec.Struct):
    features: list[str] = []


@dataclass(frozen=True, slots=True)
class Reach:
    """What RBM says about a number: whether it is RCS-reachable, and its device's features."""

    reachable: bool
    features: frozenset[str] = frozenset()


def send_error(answer: Answer) -> SendError:
    """The catalogue's reading of an RBM refusal (see the module docstring)."""
    try:
        error = msgspec.json.decode(answer.content, type=_ErrorBody).error or _RpcError()
    except msgspec.DecodeError:
        error = _RpcError()
    status = answer.status_code
    words = error.message[:_TEXT_LIMIT] or f"HTTP {status} without an RPC error body"
    text = f"RBM {status} {error.status or 'error'}: {words}"
    if status == 400:
        media = any(w in error.message.lower() for w in _MEDIA_WORDS)
        return SendError(FailureKind.INVALID, text, codes.INVALID_MEDIA if media else codes.BAD_REQUEST)
    if status == 401:
        return SendError(FailureKind.CONFIG, text, codes.AUTH_FAILURE)
    if status == 403:
        if "launch" in error.message.lower():
            return SendError(FailureKind.REJECTED, text, codes.AGENT_NOT_LAUNCHED)
        return SendError(FailureKind.CONFIG, text, codes.AUTH_FAILURE)
    if status == 404:
        return SendError(FailureKind.REJECTED, text, codes.NOT_RCS_USER)
    if status == 429:
        return SendError(FailureKind.THROTTLED, text, codes.TPS_EXCEEDED, retry_after(answer.headers))
    if status == 503:
        return SendError(FailureKind.UNAVAILABLE, text, codes.MAAP_FAILURE, retry_after(answer.headers))
    if status >= 500:
        return SendError(FailureKind.CONNECTION, text, codes.MAAP_FAILURE, retry_after(answer.headers))
    return SendError(FailureKind.REJECTED, text, codes.MAAP_FAILURE)


class RbmClient:
    """One agent's calls: the HTTP session, the access tokens, the refusal mapping."""

    def __init__(
        self,
        settings: RcsSettings,
        *,
        base_dir: Path = Path("."),
        deadline: float = _DEADLINE,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self._settings = settings
        self._deadline = deadline
        self._context = context  # None: the system's CAs
        self._phones = f"{settings.base_url.rstrip('/')}/v1/phones/"
        self._client: aiohttp.ClientSession | None = None
        self._auth_failing = False  # so a refused credential is logged once, not per message
        self._refused = ""  # the last refusal of the credentials, "" once RBM or Google took them again
        self._tokens = GoogleTokens(
            base_dir / settings.service_account_file,
            SCOPE,
            TokenCodes("RBM", codes.MAAP_FAILURE, codes.AUTH_FAILURE),
            self._http,
            deadline=deadline,
            on_refused=self._auth_failed,
            on_granted=self._auth_cured,
        )

    async def send(self, msisdn: str, message_id: str, body: dict[str, Any]) -> None:
        """Send one AgentMessage to `msisdn` (E.164) under `message_id`; SendError when RBM refuses."""
        await self.send_traced(msisdn, message_id, body)

    async def send_traced(self, msisdn: str, message_id: str, body: dict[str, Any]) -> Exchange:
        """`send`, returning what was sent and answered (a SendError carries it too)."""
        url = f"{self._phones}{msisdn}/agentMessages"
        params = {"messageId": message_id, "agentId": self._settings.agent_id}
        raw = msgspec.json.encode(body)
        answer, wire = await self._call("POST", url, params, raw)
        if answer.status_code in (200, 409):  # 409: this messageId was sent already
            return wire
        error = self._refusal(answer)
        error.exchange = wire
        raise error

    async def capabilities(self, msisdn: str) -> Reach:
        """Whether `msisdn` is RCS-reachable, and its device's features."""
        return (await self.capabilities_traced(msisdn))[0]

    async def capabilities_traced(self, msisdn: str) -> tuple[Reach, Exchange]:
        """`capabilities`, with what was sent and answered (a SendError carries it too)."""
        url = f"{self._phones}{msisdn}/capabilities"
        params = {"requestId": str(uuid.uuid4()), "agentId": self._settings.agent_id}
        answer, wire = await self._call("GET", url, params, None)
        if answer.status_code == 404:
            return Reach(False), wire
        if answer.status_code != 200:
            error = self._refusal(answer)
            error.exchange = wire
            raise error
        try:
            features = msgspec.json.decode(answer.content, type=_Capabilities).features
        except msgspec.DecodeError:
            raise SendError(
                FailureKind.CONNECTION, "RBM capabilities: not JSON", codes.MAAP_FAILURE, exchange=wire
            ) from None
        return Reach(True, frozenset(features)), wire

    async def close(self) -> None:
        self._tokens.close()
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _http(self) -> aiohttp.ClientSession:
        if self._client is None:
            self._client = open_session(
                connections=CONNECTIONS,
                deadline=self._deadline,
                connect=_CONNECT_TIMEOUT,
                context=self._context,
            )
        return self._client

    async def _call(
        self, method: str, url: str, params: dict[str, str], raw: bytes | None
    ) -> tuple[Answer, Exchange]:
        token = await self._tokens.get()
        request = http_request(method, f"{url}?{urlencode(params)}", raw)
        answer = await self._once(method, url, params, raw, token, request)
        if answer.status_code == 401:
            # Google can revoke a token before its time: buy a new one, once.
            self._tokens.forget(token)
            token = await self._tokens.get()
            answer = await self._once(method, url, params, raw, token, request)
        if answer.status_code in (200, 404, 409):
            self._auth_failing = False
            self._refused = ""
        shown = {"retry-after": answer.headers.get("retry-after", "")}
        return answer, exchange(request, http_answer(answer.status_code, answer.content, shown), (token,))

    async def _once(
        self, method: str, url: str, params: dict[str, str], raw: bytes | None, token: str, request: str
    ) -> Answer:
        headers = {"authorization": f"Bearer {token}"}
        what = "RBM agentMessages" if method == "POST" else "RBM capabilities"
        try:
            if method == "POST":
                headers["content-type"] = "application/json"
                return await post(self._http(), url, params=params, data=raw, headers=headers)
            async with self._http().get(url, params=params, headers=headers, allow_redirects=False) as r:
                return Answer(r.status, r.headers, await r.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            failed = _transport_error(exc, what, codes.MAAP_FAILURE)
            failed.exchange = exchange(request, no_answer(failed.description), (token,))
            raise failed from None

    def _refusal(self, answer: Answer) -> SendError:
        error = send_error(answer)
        if error.kind is FailureKind.CONFIG:
            self._auth_failed(error.description)
        return error

    def credential(self) -> Credential:
        """The access token in hand, for the console's health page."""
        account = self._tokens.account
        name = f"RBM agent {self._settings.agent_id}" + (f" ({account})" if account else "")
        return Credential(name, "OAuth access token", self._tokens.expires_at, refused=self._refused)

    def _auth_failed(self, description: str) -> None:
        self._refused = description
        if not self._auth_failing:
            self._auth_failing = True
            log.warning("RCS agent %s is misconfigured: %s", self._settings.agent_id, description)

    def _auth_cured(self) -> None:
        self._auth_failing = False
        self._refused = ""
