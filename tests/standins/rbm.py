"""A stand-in for Google's RCS Business Messaging API (and its OAuth2 token endpoint) on 127.0.0.1, and
a simulator of RBM's signed webhooks.

It checks what it receives as RBM does: the JWT-bearer grant (RS256 assertion verified with the service
account's key, `kid`, `iss`, `aud` = this token URL, the rcsbusinessmessaging scope); the Bearer token on
every call (one it issued, not expired); the query (`messageId`, `agentId` = its agent); the body (an
AgentMessage whose `contentMessage` holds exactly one of text, contentInfo, richCard, uploadedRbmFile;
text ≤ 3072; at most 11 suggestions, each a reply or an action with exactly one kind of action, text ≤
25, postbackData ≤ 2048; a standalone card's orientation and content, a carousel of 2 to 10 cards with a
width). A problem is a 400 INVALID_ARGUMENT naming it, in Google's RPC error shape.

`reachable` maps the RCS-reachable numbers to their devices' features (others answer 404 NOT_FOUND, to
sends and to capability lookups); a messageId seen before answers 409 ALREADY_EXISTS; `answers` scripts
a number's answer (status, body); `unauthorized_next = N` answers the next N calls 401.
"""

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from tests.standins.fcm import _test_key

SCOPE = "https://www.googleapis.com/auth/rcsbusinessmessaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ALL_FEATURES = frozenset(
    {
        "RICHCARD_STANDALONE",
        "RICHCARD_CAROUSEL",
        "ACTION_CREATE_CALENDAR_EVENT",
        "ACTION_DIAL",
        "ACTION_OPEN_URL",
        "ACTION_SHARE_LOCATION",
        "ACTION_VIEW_LOCATION",
    }
)
_ACTIONS = (
    "openUrlAction",
    "dialAction",
    "viewLocationAction",
    "shareLocationAction",
    "createCalendarEventAction",
)


def rpc_error(status: int, word: str, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": word}}


@dataclass
class Call:
    method: str
    phone: str
    query: dict[str, str]
    body: dict[str, Any] | None
    authorization: str


@dataclass
class RbmStandIn:
    agent_id: str = "tidings-test-agent"
    expires_in: int = 3599
    record: bool = True  # keep every call in `calls` (a benchmark turns it off)
    reachable: dict[str, frozenset[str]] = field(default_factory=dict)
    # phone -> (status, body[, headers]): the answer to a send to it, instead of taking it
    answers: dict[str, tuple[int, dict[str, Any]] | tuple[int, dict[str, Any], dict[str, str]]] = field(
        default_factory=dict
    )
    unauthorized_next: int = 0
    calls: list[Call] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # messageIds taken
    token_requests: int = 0
    sends: int = 0

    def __post_init__(self) -> None:
        self.key = _test_key()
        self.key_id = secrets.token_hex(20)
        self.client_email = "tidings-rbm@demo-project.iam.gserviceaccount.com"
        self._expiry: dict[str, float] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    def write_key_file(self, path: Path) -> Path:
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        info = {
            "type": "service_account",
            "project_id": "demo-project",
            "private_key_id": self.key_id,
            "private_key": pem,
            "client_email": self.client_email,
            "token_uri": self.token_url,
        }
        path.write_text(json.dumps(info))
        return path

    def sent(self, phone: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == "POST" and (phone is None or c.phone == phone)]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/v1/phones/{phone}/agentMessages", self._send)
        app.router.add_get("/v1/phones/{phone}/capabilities", self._capabilities)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "RbmStandIn":
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # -- the token endpoint ----------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = dict(parse_qsl((await request.read()).decode(errors="replace")))
        if form.get("grant_type") != GRANT_TYPE:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            header = jwt.get_unverified_header(form.get("assertion", ""))
            claims = jwt.decode(
                form.get("assertion", ""),
                self.key.public_key(),
                algorithms=["RS256"],
                audience=self.token_url,
                issuer=self.client_email,
                options={"require": ["iss", "aud", "iat", "exp", "scope"]},
            )
        except jwt.PyJWTError as exc:
            return web.json_response({"error": "invalid_grant", "error_description": str(exc)}, status=400)
        if header.get("kid") != self.key_id or SCOPE not in str(claims["scope"]).split():
            return web.json_response(
                {"error": "invalid_grant", "error_description": "kid or scope"}, status=400
            )
        token = "ya29.rbm-" + secrets.token_urlsafe(24)
        self._expiry[token] = time.monotonic() + self.expires_in
        return web.json_response(
            {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        )

    # -- the API ---------------------------------------------------------------------------------------

    def _refusal(self, request: web.Request, query: dict[str, str], id_key: str) -> web.Response | None:
        if self.unauthorized_next > 0:
            self.unauthorized_next -= 1
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer ") or self._expiry.get(token, 0) < time.monotonic():
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if query.get("agentId") != self.agent_id:
            return _error(403, "PERMISSION_DENIED", f"agentId {query.get('agentId')!r} is not this agent")
        if not query.get(id_key):
            return _error(400, "INVALID_ARGUMENT", f"{id_key} is required")
        return None

    async def _send(self, request: web.Request) -> web.Response:
        self.sends += 1
        phone = request.match_info["phone"]
        query = dict(request.query)
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if self.record:
            self.calls.append(Call("POST", phone, query, body, request.headers.get("authorization", "")))
        refused = self._refusal(request, query, "messageId")
        if refused is not None:
            return refused
        if phone in self.answers:
            scripted = self.answers[phone]
            headers = scripted[2] if len(scripted) == 3 else None
            return web.json_response(scripted[1], status=scripted[0], headers=headers)
        problem = agent_message_problem(body)
        if problem:
            return _error(400, "INVALID_ARGUMENT", problem)
        if phone not in self.reachable:
            return _error(404, "NOT_FOUND", "Requested entity was not found.")
        if query["messageId"] in self.seen:
            return _error(409, "ALREADY_EXISTS", "Requested entity already exists")
        self.seen.add(query["messageId"])
        return web.json_response({"name": f"phones/{phone}/agentMessages/{query['messageId']}", **body})

    async def _capabilities(self, request: web.Request) -> web.Response:
        phone = request.match_info["phone"]
        query = dict(request.query)
        if self.record:
            self.calls.append(Call("GET", phone, query, None, request.headers.get("authorization", "")))
        refused = self._refusal(request, query, "requestId")
        if refused is not None:
            return refused
        if phone not in self.reachable:
            return _error(404, "NOT_FOUND", "Requested entity was not found.")
        return web.json_response({"features": sorted(self.reachable[phone])})


def _error(status: int, word: str, message: str) -> web.Response:
    return web.json_response(rpc_error(status, word, message), status=status)


def agent_message_problem(body: Any) -> str | None:
    """What RBM would refuse in an AgentMessage body, or None."""
    if not isinstance(body, dict) or not isinstance(body.get("contentMessage"), dict):
        return "contentMessage is required"
    m = body["contentMessage"]
    kinds = [k for k in ("text", "contentInfo", "richCard", "uploadedRbmFile") if k in m]
    if len(kinds) != 1:
        return f"contentMessage must hold exactly one content, not {kinds}"
    if "text" in m and not (isinstance(m["text"], str) and 0 < len(m["text"]) <= 3072):
        return "contentMessage.text must be 1 to 3072 characters"
    if "contentInfo" in m and (
        problem := _content_info_problem(m["contentInfo"], "contentMessage.contentInfo")
    ):
        return problem
    if "richCard" in m and (problem := _rich_card_problem(m["richCard"])):
        return problem
    return _suggestions_problem(m.get("suggestions", []), 11, "contentMessage.suggestions")


def _content_info_problem(info: Any, where: str) -> str | None:
    if not isinstance(info, dict) or not str(info.get("fileUrl", "")).startswith(("http://", "https://")):
        return f"{where}.fileUrl must be a URL"
    return None


def _rich_card_problem(card: Any) -> str | None:
    if not isinstance(card, dict) or len(card) != 1:
        return "richCard must hold standaloneCard or carouselCard"
    if "standaloneCard" in card:
        s = card["standaloneCard"]
        if s.get("cardOrientation") not in ("VERTICAL", "HORIZONTAL"):
            return "standaloneCard.cardOrientation"
        if s["cardOrientation"] == "HORIZONTAL" and s.get("thumbnailImageAlignment") not in ("LEFT", "RIGHT"):
            return "standaloneCard.thumbnailImageAlignment is required for a horizontal card"
        return _card_content_problem(s.get("cardContent"), "standaloneCard.cardContent")
    c = card.get("carouselCard")
    if not isinstance(c, dict) or c.get("cardWidth") not in ("SMALL", "MEDIUM"):
        return "carouselCard.cardWidth"
    contents = c.get("cardContents")
    if not isinstance(contents, list) or not 2 <= len(contents) <= 10:
        return "carouselCard.cardContents must hold 2 to 10 cards"
    for i, content in enumerate(contents):
        if problem := _card_content_problem(content, f"carouselCard.cardContents[{i}]"):
            return problem
    return None


def _card_content_problem(content: Any, where: str) -> str | None:
    if not isinstance(content, dict) or not any(k in content for k in ("title", "description", "media")):
        return f"{where} needs a title, a description or media"
    if len(content.get("title", "")) > 200 or len(content.get("description", "")) > 2000:
        return f"{where}: title or description too long"
    media = content.get("media")
    if media is not None:
        if media.get("height") not in ("SHORT", "MEDIUM", "TALL"):
            return f"{where}.media.height"
        if problem := _content_info_problem(media.get("contentInfo"), f"{where}.media.contentInfo"):
            return problem
    return _suggestions_problem(content.get("suggestions", []), 4, f"{where}.suggestions")


def _suggestions_problem(items: Any, limit: int, where: str) -> str | None:
    if not isinstance(items, list) or len(items) > limit:
        return f"{where}: at most {limit}"
    for i, s in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(s, dict) or len(s) != 1 or next(iter(s)) not in ("reply", "action"):
            return f"{at} must be a reply or an action"
        inner = s.get("reply") or s.get("action")
        if not isinstance(inner, dict) or not 0 < len(inner.get("text", "")) <= 25:
            return f"{at}.text must be 1 to 25 characters"
        if not 0 < len(inner.get("postbackData", "")) <= 2048:
            return f"{at}.postbackData must be 1 to 2048 characters"
        if "action" in s and sum(k in inner for k in _ACTIONS) != 1:
            return f"{at} must hold exactly one action"
    return None


# -- the webhook simulator -----------------------------------------------------------------------------


def handshake_body(client_token: str, secret: str) -> bytes:
    return json.dumps({"clientToken": client_token, "secret": secret}).encode()


def signed_event(client_token: str, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """A Pub/Sub push as RBM sends it, and its X-Goog-Signature header."""
    data = json.dumps(event).encode()
    body = {
        "message": {
            "data": base64.b64encode(data).decode(),
            "messageId": secrets.token_hex(8),
            "publishTime": "2026-11-27T12:00:00Z",
        },
        "subscription": "projects/rbm-agent/subscriptions/rbm-agent-sub",
    }
    signature = base64.b64encode(hmac.new(client_token.encode(), data, hashlib.sha512).digest()).decode()
    return json.dumps(body).encode(), {"X-Goog-Signature": signature, "content-type": "application/json"}


def status_event(
    kind: str, message_id: str, phone: str, agent_id: str = "tidings-test-agent"
) -> dict[str, Any]:
    return {
        "agentId": agent_id,
        "senderPhoneNumber": phone,
        "eventType": kind,
        "eventId": secrets.token_hex(8),
        "messageId": message_id,
        "sendTime": "2026-11-27T12:00:01.000Z",
    }


def user_message(phone: str, **content: Any) -> dict[str, Any]:
    return {
        "agentId": "tidings-test-agent",
        "senderPhoneNumber": phone,
        "messageId": "MsUser" + secrets.token_hex(6),
        "sendTime": "2026-11-27T12:00:02.000Z",
        **content,
    }
