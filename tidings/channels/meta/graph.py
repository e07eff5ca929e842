"""Meta's Graph API clients: the WhatsApp Cloud API and the Messenger Send API.

WhatsAppCloud  POST {base_url}/{api_version}/{phone_number_id}/messages, `Authorization: Bearer`;
               the answer's `messages[0].id` (the wamid) is the message's id.
MessengerSend  POST {base_url}/{api_version}/me/messages; the page token goes in the Authorization
               header (Meta also takes it as `?access_token=`, but a URL can end up in a log line);
               the answer's `message_id` is the id (a sender action has none: "").

Both take a ready body (tidings.schema.whatsapp / messenger build it) and hold one pool of HTTP/1.1
keep-alive connections (tidings.http1, the lean client: every message is one of these requests),
opened on first use, closed by `close()`.

A refusal is Graph's `{"error": {message, type, code, error_subcode, fbtrace_id}}`. Its (code, subcode)
is looked up in the channel's table of Meta errors (tidings.specs.whatsapp_codes / messenger_codes),
which says whether it is retried and which Webex Connect code it is; the SendError's description
carries Meta's own words (they become `additionalInfo`). Code 190 (the token is invalid or expired)
is a configuration fault: CONFIG, logged once as a WARNING that names the account, never the token.
"""

import email.utils
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from tidings.channels.base import Exchange, FailureKind, SendError
from tidings.channels.exchange import exchange, http_answer, http_request, no_answer
from tidings.channels.meta.settings import MessengerSettings, WhatsAppSettings
from tidings.http1 import Answer, HttpClient, HttpError
from tidings.specs import messenger_codes as ms_codes
from tidings.specs import whatsapp_codes as wa_codes

log = logging.getLogger(__name__)

_CONNECT_TIMEOUT = 5.0
_DEADLINE = 10.0  # a whole request, however slowly the answer trickles in
# Requests in flight per account, each on its own keep-alive connection: the Cloud API's default
# throughput is 80 messages/s per number, so a few dozen connections keep it busy.
CONNECTIONS = 64
_TEXT_LIMIT = 300  # of Meta's error text kept in a description
_THROTTLE_BACKOFF = 60.0  # when Meta says "rate limit" but not for how long
TOKEN_INVALID = 190  # Graph's "invalid OAuth access token": no retry can cure it
# Of the headers of Meta's refusals, those a provider attempt shows (when present): how long to wait.
_SHOWN_HEADERS = ("retry-after", "x-business-use-case-usage")


# -- Meta's answers ------------------------------------------------------------------------------------


class GraphError(msgspec.Struct):
    """Graph's error object, as much as the mapping reads."""

    message: str = ""
    type: str = ""
    code: int | None = None  # absent only when the body was not Graph's
    error_subcode: int | None = None
    fbtrace_id: str = ""
    error_user_msg: str = ""
    error_data: dict[str, Any] | str | None = None  # WhatsApp: {messaging_product, details}

    @property
    def details(self) -> str:
        data = self.error_data
        if isinstance(data, dict) and isinstance(data.get("details"), str):
            return str(data["details"])
        return ""


class _ErrorBody(msgspec.Struct):
    error: GraphError | None = None


class _WaMessageId(msgspec.Struct):
    id: str = ""


class _WaAnswer(msgspec.Struct):
    messages: list[_WaMessageId] = []


class _MsAnswer(msgspec.Struct):
    recipient_id: str = ""
    message_id: str = ""


def graph_error(answer: Answer) -> GraphError:
    """The error in a refusal; one saying only the HTTP status when the body is not Graph's shape."""
    try:
        error = msgspec.json.decode(answer.content, type=_ErrorBody).error
    except msgspec.DecodeError:
        error = None
    return error or GraphError(message=f"HTTP {answer.status_code} without a Graph error body")


# -- the mapping ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one Meta error means here: the failure kind and Webex Connect's code."""

    kind: FailureKind
    code: str | None


Classifier = Callable[[GraphError, int], Verdict]  # (the error, the HTTP status) -> the verdict


def describe(api: str, error: GraphError, status: int) -> str:
    """The SendError description: Meta's code, subcode and words, and the trace id Meta support asks
    for. Never the token: Meta's messages name no token, and nothing of the request is added."""
    code = f"{error.code}/{error.error_subcode}" if error.error_subcode else str(error.code or "")
    words = error.message
    if error.details and error.details not in words:
        words = f"{words} ({error.details})" if words else error.details
    text = f"{api} {status} error {code}: {words[:_TEXT_LIMIT]}" if code else f"{api}: {words[:_TEXT_LIMIT]}"
    return f"{text} [fbtrace_id {error.fbtrace_id}]" if error.fbtrace_id else text


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds Meta asked us to wait: Retry-After (seconds or a date), else the longest
    `estimated_time_to_regain_access` (minutes) in X-Business-Use-Case-Usage."""
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            pass
    return _regain_access(headers.get("x-business-use-case-usage", ""))


def _regain_access(usage: str) -> float | None:
    if not usage:
        return None
    try:
        decoded = msgspec.json.decode(usage)
    except msgspec.DecodeError:
        return None
    minutes = [
        entry.get("estimated_time_to_regain_access")
        for entries in (decoded.values() if isinstance(decoded, dict) else ())
        for entry in (entries if isinstance(entries, list) else ())
        if isinstance(entry, dict)
    ]
    waits = [float(m) * 60 for m in minutes if isinstance(m, int | float) and m > 0]
    return max(waits) if waits else None


def send_error(api: str, answer: Answer, classify: Classifier) -> SendError:
    """The catalogue's reading of a refusal."""
    error = graph_error(answer)
    verdict = classify(error, answer.status_code)
    wait = retry_after(answer.headers) if verdict.kind.retryable else None
    if verdict.kind is FailureKind.THROTTLED and wait is None:
        wait = _THROTTLE_BACKOFF
    return SendError(verdict.kind, describe(api, error, answer.status_code), verdict.code, wait)


def _transport_error(exc: Exception, what: str, code: str) -> SendError:
    if isinstance(exc, TimeoutError):
        return SendError(FailureKind.TIMEOUT, f"{what}: no answer in time", code)
    return SendError(FailureKind.CONNECTION, f"{what}: {type(exc).__name__}", code)


# -- the clients ---------------------------------------------------------------------------------------


class _GraphClient:
    """One account's sends: the session, the fixed headers, the refusal mapping."""

    api = "Graph"
    failure_code = ""  # the channel's code for "the provider could not be reached or made no sense"

    def __init__(
        self,
        url: str,
        token: str,
        account: str,
        classify: Classifier,
        deadline: float,
        context: ssl.SSLContext | None,
    ) -> None:
        self._url = url
        self._headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        self._token = token
        self._account = account  # names the account in a warning (a number or page id, not a secret)
        self._classify = classify
        self._deadline = deadline
        self._context = context  # None: the system's CAs
        self._client: HttpClient | None = None
        self._auth_failing = False  # so a refused token is logged once, not once per message
        self.refused = ""  # Meta's last refusal of the token or account (code 190, …); "" after a success

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _post(self, body: dict[str, Any]) -> tuple[Answer, Exchange]:
        """Meta's 200 and the exchange; a SendError carrying the exchange otherwise."""
        if self._client is None:
            self._client = HttpClient(
                connections=CONNECTIONS,
                deadline=self._deadline,
                connect=_CONNECT_TIMEOUT,
                context=self._context,
            )
        raw = msgspec.json.encode(body)
        request = http_request("POST", self._url, raw)
        try:
            # (sent once more when Meta had closed an idle keep-alive connection under us)
            answer = await self._client.post(self._url, raw, self._headers)
        except (HttpError, TimeoutError) as exc:
            failed = _transport_error(exc, f"{self.api} send", self.failure_code)
            failed.exchange = exchange(request, no_answer(failed.description), (self._token,))
            raise failed from None
        ok = answer.status_code == 200
        shown = None if ok else {name: answer.headers.get(name, "") for name in _SHOWN_HEADERS}
        wire = exchange(request, http_answer(answer.status_code, answer.content, shown), (self._token,))
        if ok:
            self._auth_failing = False
            self.refused = ""
            return answer, wire
        error = send_error(self.api, answer, self._classify)
        error.exchange = wire
        if self._token and self._token in error.description:  # Meta's words never quote it; make sure of that
            error.description = error.description.replace(self._token, "[token]")
            error.args = (error.description,)
        if error.kind is FailureKind.CONFIG:
            self.refused = error.description
        if error.kind is FailureKind.CONFIG and not self._auth_failing:
            self._auth_failing = True
            log.warning("%s account %s is misconfigured: %s", self.api, self._account, error.description)
        raise error


class WhatsAppCloud(_GraphClient):
    """The Cloud API for one WhatsApp business number."""

    api = "WhatsApp"
    failure_code = wa_codes.PLATFORM_FAILURE

    def __init__(
        self,
        settings: WhatsAppSettings,
        *,
        classify: Classifier | None = None,
        deadline: float = _DEADLINE,
        context: ssl.SSLContext | None = None,
    ) -> None:
        base = settings.base_url.rstrip("/")
        url = f"{base}/{settings.api_version}/{settings.phone_number_id}/messages"
        super().__init__(
            url,
            settings.access_token,
            settings.phone_number_id,
            classify or whatsapp_verdict,
            deadline,
            context,
        )

    async def send(self, body: dict[str, Any]) -> str:
        """Send one Cloud API message body; its wamid. SendError when Meta refuses it."""
        return (await self.send_traced(body))[0]

    async def send_traced(self, body: dict[str, Any]) -> tuple[str, Exchange]:
        """`send`, with what was sent and answered (an error carries it too)."""
        answer, wire = await self._post(body)
        try:
            messages = msgspec.json.decode(answer.content, type=_WaAnswer).messages
        except msgspec.DecodeError:
            messages = []
        if not messages or not messages[0].id:
            raise SendError(
                FailureKind.CONNECTION, "WhatsApp 200 without a message id", self.failure_code, exchange=wire
            )
        return messages[0].id, wire


class MessengerSend(_GraphClient):
    """The Send API for one Facebook page."""

    api = "Messenger"
    failure_code = ms_codes.PLATFORM_FAILURE

    def __init__(
        self,
        settings: MessengerSettings,
        *,
        classify: Classifier | None = None,
        deadline: float = _DEADLINE,
        context: ssl.SSLContext | None = None,
    ) -> None:
        base = settings.base_url.rstrip("/")
        url = f"{base}/{settings.api_version}/me/messages"
        super().__init__(
            url, settings.access_token, settings.page_id, classify or messenger_verdict, deadline, context
        )

    async def send(self, body: dict[str, Any]) -> str:
        """Send one Send API body; its message_id ("" for a sender action, which has none)."""
        return (await self.send_traced(body))[0]

    async def send_traced(self, body: dict[str, Any]) -> tuple[str, Exchange]:
        """`send`, with what was sent and answered (an error carries it too)."""
        answer, wire = await self._post(body)
        try:
            return msgspec.json.decode(answer.content, type=_MsAnswer).message_id, wire
        except msgspec.DecodeError:
            raise SendError(
                FailureKind.CONNECTION, "Messenger 200 that is not JSON", self.failure_code, exchange=wire
            ) from None


# -- the verdicts: Meta's code through the channel's table -------------------------------------------

# WhatsApp codes that ask us to slow down (the app's, the account's, the number's, or one user's rate),
# and those that say the Cloud API itself is down for now: both retried without costing an attempt.
_WA_THROTTLING = frozenset({4, 80007, 130429, 131056})
_WA_UNAVAILABLE = frozenset({2, 131016, 133004})
# Refusals of the message as built (a parameter, a type, a template): INVALID, not the user's doing.
_WA_INVALID = frozenset({100, 131008, 131009, 131021, 131051, 132000, 132001, 132005, 132007, 132012})


def whatsapp_verdict(error: GraphError, status: int) -> Verdict:
    """A Cloud API error through tidings.specs.whatsapp_codes."""
    if error.code is None:
        return _bare_verdict(status, wa_codes.AUTH_ERROR, wa_codes.RATE_LIMITED, wa_codes.PLATFORM_FAILURE)
    code, retryable, _ = wa_codes.meta_error(error.code)
    if error.code == TOKEN_INVALID or wa_codes.is_configuration_error(error.code):
        return Verdict(FailureKind.CONFIG, code)
    if error.code in _WA_THROTTLING:
        return Verdict(FailureKind.THROTTLED, code)
    if error.code in _WA_UNAVAILABLE:
        return Verdict(FailureKind.UNAVAILABLE, code)
    if retryable:
        return Verdict(FailureKind.CONNECTION, code)
    return Verdict(FailureKind.INVALID if error.code in _WA_INVALID else FailureKind.REJECTED, code)


def messenger_verdict(error: GraphError, status: int) -> Verdict:
    """A Send API error through tidings.specs.messenger_codes."""
    if error.code is None:
        return _bare_verdict(
            status, ms_codes.PROVIDER_ERROR, ms_codes.PROVIDER_ERROR, ms_codes.PLATFORM_FAILURE
        )
    key, (code, retryable, _) = ms_codes.graph_error(error.code, error.error_subcode)
    if error.code == TOKEN_INVALID or key in ms_codes.CONFIGURATION:
        return Verdict(FailureKind.CONFIG, code)
    if key in ms_codes.THROTTLING:
        return Verdict(FailureKind.THROTTLED, code)
    if key in ms_codes.GONE:
        return Verdict(FailureKind.GONE, code)
    if retryable:
        return Verdict(FailureKind.CONNECTION, code)
    return Verdict(FailureKind.INVALID if error.code == 100 else FailureKind.REJECTED, code)


def _bare_verdict(status: int, auth: str, throttled: str, failure: str) -> Verdict:
    """An answer without Graph's error body (a proxy, a load balancer): the HTTP status alone."""
    if status in (401, 403):
        return Verdict(FailureKind.CONFIG, auth)
    if status == 429:
        return Verdict(FailureKind.THROTTLED, throttled)
    if status in (502, 503, 504):
        return Verdict(FailureKind.UNAVAILABLE, failure)
    if status >= 500:
        return Verdict(FailureKind.CONNECTION, failure)
    return Verdict(FailureKind.REJECTED, failure)
