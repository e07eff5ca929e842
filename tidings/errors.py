"""The API's result codes, as exceptions that carry them.

    ApiError                 a request is refused; nothing of it is stored or sent
     ├── InvalidJson         7000  the body is not JSON (or not a JSON object)
     ├── AuthFailed          7001  wrong key, or an invalid or expired JWT
     ├── CredentialsMissing  7002  neither key nor JWT
     ├── MandatoryMissing    7003  a mandatory field is missing; the description names it
     ├── InvalidParameter    7004  a field has the wrong type, value, length or format; named
     ├── InternalError       7006  our fault; logged with a traceback, never shown to the caller
     ├── ServiceInactive     7007
     ├── TooManyDestinations 7009  more addresses than 1000 or than the service's tps
     ├── RateLimited         7020  the service's destinations-per-second budget is spent
     └── BodyTooLarge        7022  the body exceeds the server's limit (HTTP 413)

Connector failures are a different catalogue: `tidings.channels.base.SendError`. `ListenFailed` is
not the API's: a process cannot listen where its configuration says, and says so instead of starting.
"""

from typing import ClassVar


class ApiError(Exception):
    code: ClassVar[str]
    title: ClassVar[str]
    http_status: ClassVar[int] = 200

    def __init__(self, detail: str = "", *, field: str = "") -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.field = field  # the request field at fault, for APIs that name it apart (the SMS API)

    @property
    def description(self) -> str:
        return f"{self.title}: {self.detail}" if self.detail else self.title


class InvalidJson(ApiError):
    code, title = "7000", "Invalid JSON"


class AuthFailed(ApiError):
    code, title = "7001", "Authentication failed."

    @property
    def description(self) -> str:
        return f"Authentication failed: {self.detail}" if self.detail else self.title


class CredentialsMissing(ApiError):
    code, title = "7002", "Service key missing"


class MandatoryMissing(ApiError):
    code, title = "7003", "Mandatory parameter missing"


class InvalidParameter(ApiError):
    code, title = "7004", "Invalid parameter"


class InternalError(ApiError):
    code, title = "7006", "Internal error occurred"


class ServiceInactive(ApiError):
    code, title = "7007", "Service inactive"


class TooManyDestinations(ApiError):
    code, title = "7009", "Max number of destinations exceeded"


class InvalidAppId(ApiError):
    code, title = "7104", "Invalid app id"


class RateLimited(ApiError):
    code, title = "7020", "Maximum transaction limit reached"


class BodyTooLarge(ApiError):
    code, title = "7022", "JSON size exceeded"
    http_status = 413


class ListenFailed(Exception):
    """A listener could not bind its address (in use, not allowed, not this host's): the HTTP server's,
    or email's bounce listener. The message names the address and, for a configuration key, the key."""
