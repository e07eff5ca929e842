"""Webex Connect's documented push status codes (docs/push-codes.md has the table and its sources).

Providers raise the named codes (`INVALID_TOKEN`, …) so the numbers live here only. Each name is one
meaning across FCM, APNs, web push and WNS, so it takes Webex Connect's provider-neutral code where the
push table has one (the 7503-7518 block, 7560/7562-7564 where that block has none), not the code Webex
Connect keeps for one provider (7571 "from the FCM", 7891 APNs topic, 7510 iOS payload): an APNs 410
reported as "unregistered from FCM" would mislead.

Status: every push failure in Webex Connect's push webhook samples is `Failed`, and the push table gives
no other, so all are Failed except 7503, which is Expired (reference/webex-connect.md §2.2).
"""

from tidings.statuses import Outcome, Status

_F, _E = Status.FAILED, Status.EXPIRED

# Names the providers and the push connector use; each is a key of PUSH_FAILURES.
EXPIRED = "7503"  # expired before any delivery attempt
AUTH_ERROR = "7504"  # the push service refused our credentials (a configuration alarm)
PAYLOAD_TOO_LARGE = "7505"  # documented for Android (7510 for iOS); one code for every platform here
INVALID_TOKEN = "7512"  # the token is malformed, or not one the service knows
TOKEN_UNREGISTERED = "7513"  # the app was uninstalled or the token expired: the device is removed
PLATFORM_FAILURE = "7518"  # retries ran out and no provider answer said more
INVALID_PAYLOAD = "7560"  # a field of the request was rejected
TOKEN_NOT_FOR_APP = "7562"  # the token belongs to another app (FCM sender, APNs topic)
QUOTA_EXCEEDED = "7563"  # sending limit for the app or the device; retried after the wait asked for
SERVICE_UNAVAILABLE = "7564"  # the push service is overloaded or failing; retried
UNKNOWN_USER = "7105"  # a userid/customerid with no profile or no device (push webhook sample, Failed)

# Every documented push failure, so that the sandbox (a token ending in the digits) and any provider that
# wants the finer code find it. HMS (7537-7551) is left out: Tidings has no HMS provider.
PUSH_FAILURES: dict[str, Outcome] = {
    code: Outcome(status, code, text)
    for code, status, text in [
        (EXPIRED, _E, "Message expired before delivery attempt"),
        (AUTH_ERROR, _F, "Authentication error"),
        (PAYLOAD_TOO_LARGE, _F, "Payload too large"),
        ("7506", _F, "Invalid time to live (Android)"),
        ("7507", _F, "Too many requests for the app"),
        ("7508", _F, "Push service (FCM) server error"),
        ("7509", _F, "Too many requests for the device (Android)"),
        ("7510", _F, "Payload too large (iOS)"),
        ("7511", _F, "Invalid time to live (iOS)"),
        (INVALID_TOKEN, _F, "Invalid push id"),
        (TOKEN_UNREGISTERED, _F, "Unregistered device"),
        ("7514", _F, "APNs certificate for the wrong gateway"),
        ("7515", _F, "Bad APNs certificate"),
        ("7516", _F, "Too many requests for the device (iOS)"),
        ("7517", _F, "APNs server error"),
        (PLATFORM_FAILURE, _F, "Unknown"),
        (INVALID_PAYLOAD, _F, "Invalid request parameters"),
        (TOKEN_NOT_FOR_APP, _F, "Token belongs to another app"),
        (QUOTA_EXCEEDED, _F, "Sending limit exceeded"),
        (SERVICE_UNAVAILABLE, _F, "Push service overloaded"),
        ("7565", _F, "Push service internal error"),
        ("7566", _F, "APNs certificate or web push key invalid or missing"),
        ("7569", _F, "OAuth token missing, invalid or expired"),
        ("7570", _F, "Insufficient permission"),
        ("7571", _F, "Token unregistered (FCM)"),
        ("7577", _F, "Unknown server error"),
        ("7578", _F, "API method not implemented"),
        ("7880", _F, "Malformed registration token"),
        ("7881", _F, "Missing registration token"),
        ("7882", _F, "Package name does not match the token"),
        ("7883", _F, "Sender not allowed for the token"),
        ("7884", _F, "Reserved key in the data payload"),
        ("7885", _F, "Topic message rate too high"),
        ("7886", _F, "Invalid APNs topic"),
        ("7887", _F, "APNs topic not allowed"),
        ("7889", _F, "Invalid APNs message id"),
        ("7890", _F, "Missing device token"),
        ("7891", _F, "Device token not for the topic"),
        ("7892", _F, "Missing APNs topic"),
        (UNKNOWN_USER, _F, "Customer profile not found"),
        ("7404", _F, "Others"),
    ]
}
