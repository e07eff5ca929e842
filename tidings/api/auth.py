"""Who is calling: a service key (`key:` header) or an HS256 JWT (`Authorization: Bearer`).

When both are sent the JWT decides and the key is ignored, as the documents say.
"""

import time
import warnings

import jwt
from starlette.datastructures import Headers

from tidings.errors import AuthFailed, CredentialsMissing, ServiceInactive
from tidings.services import Service, ServiceRegistry

# Service secrets are issued by the tenant's platform (the documents' sample is 13 bytes); their length
# is not the caller's to fix, so PyJWT's short-key warning would only fill the log.
warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)

JWT_MAX_AGE_S = 3600
CLOCK_SKEW_S = 60


def authenticate(headers: Headers, services: ServiceRegistry) -> Service:
    token = bearer(headers)
    service: Service | None
    if token is not None:
        service = _from_jwt(token, services)
    else:
        key = headers.get("key", "").strip()
        if not key:
            raise CredentialsMissing()
        service = services.by_key(key)
        if service is None:
            raise AuthFailed("unknown service key")
    if not service.active:
        raise ServiceInactive()
    return service


def authenticate_sms(headers: Headers, services: ServiceRegistry) -> Service:
    """The SMS API's forms: `key: <key>`, `Authorization: <key>`, or `Authorization: Bearer <key or
    JWT>` (the Cisco SDKs send the service key as a bearer token). A JWT decides over a key."""
    value = headers.get("authorization", "").strip()
    scheme, _, rest = value.partition(" ")
    token = rest.strip() if scheme.lower() == "bearer" else value
    service: Service | None
    if token and token.count(".") == 2:
        service = _from_jwt(token, services)
    else:
        key = token or headers.get("key", "").strip()
        if not key:
            raise CredentialsMissing()
        service = services.by_key(key)
        if service is None and token and headers.get("key"):
            service = services.by_key(headers.get("key", "").strip())
        if service is None:
            raise AuthFailed("unknown service key")
    if not service.active:
        raise ServiceInactive()
    return service


def bearer(headers: Headers) -> str | None:
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _from_jwt(token: str, services: ServiceRegistry) -> Service:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AuthFailed("the JWT is malformed") from None
    issuer = claims.get("iss")
    service = None
    if isinstance(issuer, str):
        service = services.by_id(issuer) or services.by_key(issuer)
    if service is None:
        raise AuthFailed("the JWT's iss is not a known service id or key")
    if not service.secret_bytes:
        raise AuthFailed("this service has no secret, so it cannot use JWTs")
    try:
        verified = jwt.decode(
            token,
            service.secret_bytes,
            algorithms=["HS256"],
            options={"require": ["iat"]},
            leeway=CLOCK_SKEW_S,
        )
    except jwt.ExpiredSignatureError:
        raise AuthFailed("the JWT has expired") from None
    except jwt.PyJWTError as exc:
        raise AuthFailed(f"the JWT is invalid ({exc})") from None
    iat = verified["iat"]
    if not isinstance(iat, int | float) or iat < time.time() - JWT_MAX_AGE_S - CLOCK_SKEW_S:
        raise AuthFailed("the JWT was issued more than 60 minutes ago")
    return service
