"""Who is signed in to the console: the session cookie, its signature, and the CSRF token.

The cookie holds the session's subject (a service id, or `*` for the admin), a fingerprint of the
credential it was opened with (an HMAC of the key or token, never the credential), the CSRF token, and
its expiry, signed with HMAC-SHA256 under the console's secret: `TIDINGS_CONSOLE_SECRET` when set (the
same in every process of `serve --workers N`, and sessions survive a restart), else random per process.
A session ends when it expires, when its service is made inactive, or when the key or admin token it was
opened with changes. Flags: HttpOnly, SameSite=Strict, Path=/console, and Secure when the console is
served over https (the request's scheme, as uvicorn sees it: behind a TLS proxy run uvicorn with
`--proxy-headers` or set TIDINGS_CONSOLE_SECURE_COOKIE=1).
"""

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from tidings.services import Service, ServiceRegistry

COOKIE = "tidings_console"
PRE_COOKIE = "tidings_console_login"  # the sign-in form's CSRF token, before there is a session
PATH = "/console"
MAX_AGE_S = 12 * 3600
ADMIN = "*"

_SECRET = os.environ.get("TIDINGS_CONSOLE_SECRET", "").encode() or secrets.token_bytes(32)


class _Payload(msgspec.Struct, array_like=True):
    subject: str
    fingerprint: str
    csrf: str
    expires: float


@dataclass(frozen=True, slots=True)
class Session:
    subject: str  # a service id, or ADMIN
    csrf: str

    @property
    def admin(self) -> bool:
        return self.subject == ADMIN


def fingerprint(credential: str) -> str:
    return hmac.new(_SECRET, b"credential\0" + credential.encode(), hashlib.sha256).hexdigest()[:32]


def _sign(data: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(_SECRET, data, hashlib.sha256).digest()).decode().rstrip("=")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(subject: str, credential: str, now: float | None = None) -> tuple[str, Session]:
    """A new session's cookie value and the session."""
    csrf = secrets.token_urlsafe(24)
    expires = (now or time.time()) + MAX_AGE_S
    body = msgspec.msgpack.encode(_Payload(subject, fingerprint(credential), csrf, expires))
    return f"{_b64(body)}.{_sign(body)}", Session(subject, csrf)


def read(request: Request, services: ServiceRegistry, admin_token: str) -> Session | None:
    """The request's session, or None when it has none that is still good."""
    value = request.cookies.get(COOKIE, "")
    body_text, _, signature = value.partition(".")
    if not body_text or not signature:
        return None
    try:
        body = _unb64(body_text)
        if not hmac.compare_digest(_sign(body), signature):
            return None
        p = msgspec.msgpack.decode(body, type=_Payload)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
    if p.expires < time.time():
        return None
    if p.subject == ADMIN:
        if not admin_token or not hmac.compare_digest(p.fingerprint, fingerprint(admin_token)):
            return None
    else:
        service = services.by_id(p.subject)
        if service is None or not service.active:
            return None
        if not hmac.compare_digest(p.fingerprint, fingerprint(service.key)):
            return None
    return Session(p.subject, p.csrf)


def sign_in(
    credential: str, services: ServiceRegistry, admin_token: str
) -> tuple[str, Service | None] | None:
    """(subject, service) for a service key or the admin token; None for anything else."""
    if admin_token and hmac.compare_digest(credential.encode(), admin_token.encode()):
        return ADMIN, None
    service = services.by_key(credential)
    if service is None or not service.active:
        return None
    return service.id, service


def secure(request: Request) -> bool:
    return request.url.scheme == "https" or os.environ.get("TIDINGS_CONSOLE_SECURE_COOKIE") == "1"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=PATH, secure=secure(request), httponly=True, samesite="strict"
    )


def csrf_ok(expected: str, given: object) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())
