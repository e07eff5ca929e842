"""Webex Connect's documented push status codes (reference/webex-connect.md §2.3: 7503 expired, the
FCM/APNs range, the token errors). Providers raise them by name (`INVALID_TOKEN`, …) so that the numbers
live here only.
"""

from tidings.statuses import Outcome, Status

_F, _U, _E = Status.FAILED, Status.UNDELIVERED, Status.EXPIRED

# Names the providers and the push connector use; each is a key of PUSH_FAILURES.
EXPIRED = "7503"
INVALID_TOKEN = "7880"  # the token is malformed, or not one the service knows
TOKEN_UNREGISTERED = "7881"  # the app was uninstalled or the token expired: the device is removed
UNKNOWN_USER = "7882"  # no device registered for the user (or the device id is unknown)
TOKEN_NOT_FOR_APP = "7883"  # the token belongs to another project/topic
PAYLOAD_TOO_LARGE = "7504"
INVALID_PAYLOAD = "7505"
AUTH_ERROR = "7506"  # the push service refused our credentials (a configuration alarm)
QUOTA_EXCEEDED = "7507"
SERVICE_UNAVAILABLE = "7508"
PLATFORM_FAILURE = "7518"

PUSH_FAILURES: dict[str, Outcome] = {
    code: Outcome(status, code, text)
    for code, status, text in [
        (EXPIRED, _E, "Expired"),
        (INVALID_TOKEN, _F, "Invalid device token"),
        (TOKEN_UNREGISTERED, _F, "Device token unregistered"),
        (UNKNOWN_USER, _F, "No device registered for the user"),
        (TOKEN_NOT_FOR_APP, _F, "Device token does not belong to the app"),
        (PAYLOAD_TOO_LARGE, _F, "Payload too large"),
        (INVALID_PAYLOAD, _F, "Invalid payload"),
        (AUTH_ERROR, _F, "Push service authentication failed"),
        (QUOTA_EXCEEDED, _U, "Push service quota exceeded"),
        (SERVICE_UNAVAILABLE, _U, "Push service unavailable"),
        (PLATFORM_FAILURE, _U, "Unknown"),
    ]
}
