"""Webex Connect's documented WhatsApp status codes, and the Cloud API errors mapped onto them
(docs/whatsapp-codes.md has the tables and their sources).

`WHATSAPP_FAILURES` is Webex Connect's WhatsApp table as outcomes, so the sandbox and the connector find
every documented code by its number. `META_ERRORS` maps a Cloud API error code (a synchronous Graph error
or `statuses[].errors[].code` in a webhook) to `(code, retryable, description)`; `meta_error` looks one
up, and answers `UNKNOWN_STATUS` for a code the table lacks, as Webex Connect's own failed-DR sample does
for 131049. Meta's error text goes into `additionalInfo` beside the code (the connector's job).

Status: every WhatsApp failure in Webex Connect's samples is `Failed`; 7705 is WhatsApp's Expired code
(reference/webex-connect.md §2.2).
"""

from tidings.statuses import Outcome, Status

_F, _E = Status.FAILED, Status.EXPIRED

# Names the connector uses; each is a key of WHATSAPP_FAILURES.
UNKNOWN_STATUS = "7200"  # a Meta error without a closer Webex Connect code; Meta's text says more
PLATFORM_FAILURE = "7010"  # the Cloud API could not be reached or gave an answer Tidings cannot read
UNKNOWN_EXCEPTION = "7011"
MEDIA_DOWNLOAD = "7701"
PAYMENT_ISSUE = "7703"
EXPIRED = "7705"  # the request's expiry passed before the Cloud API took the message
RATE_LIMITED = "7706"
REGISTRATION_ERROR = "7707"
OUTSIDE_WINDOW = "7710"  # free-form message more than 24 hours after the user's last message
SPAM_RATE_LIMITED = "7711"
EXPERIMENT = "7712"
GENERIC_ERROR = "7713"
TEXT_TOO_LONG = "7714"
MISSING_PARAMETER = "7721"
NAMESPACE_MISMATCH = "7722"  # also Meta's "parameter value is not valid"
BAD_USER = "7733"
ACCOUNT_LOCKED_POLICY = "7803"
TEMPLATE_PARAM_COUNT = "7804"
TEMPLATE_MISSING = "7805"
TEMPLATE_TEXT_TOO_LONG = "7809"
TEMPLATE_POLICY = "7811"
TEMPLATE_PARAM_FORMAT = "7816"
AUTH_ERROR = "7832"
API_UNKNOWN = "7833"
API_SERVICE = "7834"
API_METHOD = "7835"
TOO_MANY_CALLS = "7836"
PERMISSION_DENIED = "7837"
INVALID_PARAMETER = "7838"
TOKEN_EXPIRED = "7839"
API_PERMISSION = "7840"
POLICY_BLOCKED = "7842"
THROUGHPUT_LIMIT = "7845"
TEMPLATE_NOT_FOUND = "7849"
SERVICE_UNAVAILABLE = "7854"
ACCOUNT_LOCKED = "7860"
UNSUPPORTED_MEDIA = "7861"
GENERIC_USER_ERROR = "7863"
NOT_REGISTERED = "7865"
TEMPLATE_DISABLED = "7868"
TEMPLATE_PAUSED = "7869"
MAINTENANCE_MODE = "7870"
UNDELIVERABLE = "7871"
CLOUD_EXPERIMENT = "7872"
PAIR_RATE_LIMITED = "7874"

# Webex Connect's WhatsApp table (developers.webexconnect.io/reference/channel-specific-status-codes,
# documentation version 6.20.0), the failures only; 7500-7502 are the shared progress codes.
WHATSAPP_FAILURES: dict[str, Outcome] = {
    code: Outcome(_E if code == EXPIRED else _F, code, text)
    for code, text in [
        (UNKNOWN_STATUS, "Unknown Status"),
        (PLATFORM_FAILURE, "Service provider exception"),
        (UNKNOWN_EXCEPTION, "Unknown Exception"),
        (MEDIA_DOWNLOAD, "Media download error"),
        (PAYMENT_ISSUE, "Business eligibility - Payment issue"),
        ("7704", "Message is not valid"),
        (EXPIRED, "Message expired"),
        (RATE_LIMITED, "Rate limit hit"),
        (REGISTRATION_ERROR, "Unsigned certificate"),
        (OUTSIDE_WINDOW, "Re-engagement message"),
        (SPAM_RATE_LIMITED, "Spam Rate limit hit"),
        (EXPERIMENT, "User's number is part of an experiment"),
        (GENERIC_ERROR, "Generic error"),
        (TEXT_TOO_LONG, "Message too long"),
        ("7715", "Invalid recipient type"),
        ("7717", "Resource already exists"),
        (MISSING_PARAMETER, "Required parameter is missing"),
        (NAMESPACE_MISMATCH, "Parameter value is not valid"),
        ("7723", "Parameter is not required"),
        ("7726", "User is not valid"),
        ("7727", "Internal error"),
        ("7729", "System overloaded"),
        ("7730", "Not Primary Master"),
        ("7731", "Not Primary Coreapp"),
        (BAD_USER, "Bad User"),
        ("7736", "Generic error"),
        ("7802", "A user_identity_changed system notification requires acknowledgement"),
        (ACCOUNT_LOCKED_POLICY, "Sender account has been locked"),
        (TEMPLATE_PARAM_COUNT, "Template Param Count Mismatch"),
        (TEMPLATE_MISSING, "Template Missing"),
        ("7808", "Template Param Length Too Long"),
        (TEMPLATE_TEXT_TOO_LONG, "Template Hydrated Text Too Long"),
        (TEMPLATE_POLICY, "Template Format Character Policy Violated"),
        ("7812", "Template Required Component Missing"),
        ("7813", "Template Invalid Hydrated URL"),
        ("7814", "Template Media Format Unsupported"),
        ("7815", "Template Invalid Phone Number"),
        (TEMPLATE_PARAM_FORMAT, "Template Parameter Format Mismatch"),
        ("7819", "Invalid number of sections"),
        ("7820", "Invalid number of rows"),
        ("7821", "Character Policy Violated"),
        ("7830", "Invalid Header Structure"),
        (AUTH_ERROR, "AuthException"),
        (API_UNKNOWN, "API Unknown"),
        (API_SERVICE, "API Service"),
        (API_METHOD, "API Method"),
        (TOO_MANY_CALLS, "API Too Many Calls"),
        (PERMISSION_DENIED, "API Permission Denied"),
        (INVALID_PARAMETER, "Parameter is invalid"),
        (TOKEN_EXPIRED, "Access token has expired"),
        (API_PERMISSION, "Permission is either not granted or has been removed"),
        (POLICY_BLOCKED, "Temporarily blocked for policies violations"),
        (THROUGHPUT_LIMIT, "Rate limit hit"),
        ("7846", "Service Overloaded"),
        (TEMPLATE_NOT_FOUND, "Template does not exist"),
        (SERVICE_UNAVAILABLE, "Server Temporarily Unavailable"),
        (ACCOUNT_LOCKED, "Account has been locked"),
        (UNSUPPORTED_MEDIA, "Unsupported mime type"),
        ("7862", "Hash mismatch"),
        (GENERIC_USER_ERROR, "Generic user error"),
        (NOT_REGISTERED, "Phone number Not Registered"),
        (TEMPLATE_DISABLED, "Template is Disabled"),
        (TEMPLATE_PAUSED, "Template is Paused"),
        (MAINTENANCE_MODE, "Business Account in maintenance mode"),
        (UNDELIVERABLE, "Message Undeliverable"),
        (CLOUD_EXPERIMENT, "User's number is part of an experiment"),
        (PAIR_RATE_LIMITED, "(Business Account, Consumer Account) pair rate limit hit"),
    ]
}

# Cloud API error code -> (Webex Connect code, retryable, what Meta means). Retryable answers are sent
# again with backoff; the others end the message Failed with the code.
META_ERRORS: dict[int, tuple[str, bool, str]] = {
    0: (AUTH_ERROR, False, "AuthException: the access token cannot be used"),
    1: (API_UNKNOWN, True, "API Unknown: invalid request or possible server error"),
    2: (API_SERVICE, True, "API Service: temporary downtime or overload"),
    3: (API_METHOD, False, "API Method: capability or permission issue"),
    4: (TOO_MANY_CALLS, True, "API Too Many Calls: the app's rate limit"),
    10: (PERMISSION_DENIED, False, "Permission denied: not granted or removed"),
    100: (INVALID_PARAMETER, False, "Invalid parameter: unsupported or misspelled parameter"),
    190: (TOKEN_EXPIRED, False, "Access token has expired"),
    368: (POLICY_BLOCKED, False, "Temporarily blocked for policy violations"),
    80007: (TOO_MANY_CALLS, True, "Rate limit issues: the WhatsApp Business Account's rate limit"),
    130429: (THROUGHPUT_LIMIT, True, "Rate limit hit: Cloud API throughput reached"),
    130472: (CLOUD_EXPERIMENT, False, "User's number is part of an experiment"),
    131000: (GENERIC_ERROR, True, "Something went wrong"),
    131005: (API_PERMISSION, False, "Access denied: permission not granted or removed"),
    131008: (MISSING_PARAMETER, False, "Required parameter is missing"),
    131009: (NAMESPACE_MISMATCH, False, "Parameter value is not valid"),
    131016: (SERVICE_UNAVAILABLE, True, "Service unavailable"),
    131021: (BAD_USER, False, "Recipient cannot be sender"),
    131026: (UNDELIVERABLE, False, "Message undeliverable"),
    131031: (ACCOUNT_LOCKED, False, "Account has been locked"),
    131042: (PAYMENT_ISSUE, False, "Business eligibility payment issue"),
    131045: (REGISTRATION_ERROR, False, "Incorrect certificate: phone number registration error"),
    131047: (OUTSIDE_WINDOW, False, "Re-engagement message: over 24 hours since the user's last reply"),
    131048: (SPAM_RATE_LIMITED, False, "Spam rate limit hit"),
    131049: (UNKNOWN_STATUS, False, "Meta chose not to deliver, for ecosystem engagement"),
    131050: (UNKNOWN_STATUS, False, "The user stopped marketing messages"),
    131051: (UNKNOWN_STATUS, False, "Unsupported message type"),
    131052: (MEDIA_DOWNLOAD, False, "Media download error"),
    131053: (UNSUPPORTED_MEDIA, False, "Media upload error"),
    131056: (PAIR_RATE_LIMITED, True, "(Business, consumer) pair rate limit hit"),
    131057: (MAINTENANCE_MODE, False, "Account in maintenance mode"),
    132000: (TEMPLATE_PARAM_COUNT, False, "Template parameter count mismatch"),
    132001: (TEMPLATE_NOT_FOUND, False, "Template does not exist in that language"),
    132005: (TEMPLATE_TEXT_TOO_LONG, False, "Template hydrated text too long"),
    132007: (TEMPLATE_POLICY, False, "Template format character policy violated"),
    132012: (TEMPLATE_PARAM_FORMAT, False, "Template parameter format mismatch"),
    132015: (TEMPLATE_PAUSED, False, "Template is paused"),
    132016: (TEMPLATE_DISABLED, False, "Template is disabled"),
    133004: (SERVICE_UNAVAILABLE, True, "Server temporarily unavailable"),
    133010: (NOT_REGISTERED, False, "Phone number not registered"),
    135000: (GENERIC_USER_ERROR, False, "Generic user error"),
}

_API_PERMISSION_RANGE = range(200, 300)  # Meta's "API Permission" errors are the whole 2xx block

# Answers that mean the app's configuration is wrong (token, permissions, account): final for the
# message and an alarm for the operator.
CONFIGURATION_ERRORS = frozenset({0, 3, 10, 190, 368, 131005, 131031, 131045, 133010})


def meta_error(code: int) -> tuple[str, bool, str]:
    """The Webex Connect code, retryable flag and meaning for a Cloud API error code."""
    if (known := META_ERRORS.get(code)) is not None:
        return known
    if code in _API_PERMISSION_RANGE:
        return (API_PERMISSION, False, "API Permission: permission not granted or removed")
    return (UNKNOWN_STATUS, False, "A Cloud API error without a closer Webex Connect code")


def is_configuration_error(code: int) -> bool:
    """True for a Cloud API error that says the app's token, permissions or account are wrong."""
    return code in CONFIGURATION_ERRORS or code in _API_PERMISSION_RANGE


def failure(code: int) -> Outcome:
    """The Failed outcome for a Cloud API error code that will not be retried."""
    return WHATSAPP_FAILURES[meta_error(code)[0]]
