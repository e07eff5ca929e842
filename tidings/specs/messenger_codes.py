"""Webex Connect's documented Messenger status codes, and Graph Send API errors mapped onto them
(docs/messenger-codes.md has both tables and their sources).

The connector raises the named codes (`OUTSIDE_WINDOW`, …) so the numbers live here only.

Status: Webex Connect's Messenger table gives no status column; every failure is `Failed` except 7301,
which is Expired (reference/webex-connect.md §2.2: 7301 is the OTT expiry code).

Graph answers an error as `{"error":{"code","error_subcode",…}}`. `GRAPH_ERRORS` maps (code, subcode)
to (Webex Connect code, retryable, description); `graph_error` looks a pair up, falling back from the
exact pair to the subcode alone (Meta's subcodes are unique across codes) and then to the code alone.
How a failure is to be handled beyond retrying is said by the sets beside it: `THROTTLING` is retried
after a backoff without costing the message an attempt, `CONFIGURATION` is final and an alarm (the page
token or the app's permissions are wrong: every message will fail alike), `GONE` means the PSID will
never take a message from this page.
"""

from tidings.statuses import Outcome, Status

_F, _E = Status.FAILED, Status.EXPIRED

# Names the connector uses; each is a key of MESSENGER_FAILURES.
INVALID_PARAMETERS = "7004"  # the common code for a value refused (seed 003's table of common codes)
INTERNAL_ERROR = "7006"
PROVIDER_ERROR = "7010"  # Graph refused the message, or failed, and no finer code fits
PLATFORM_FAILURE = "7011"  # retries ran out and no provider answer said more
EXPIRED = "7301"
UNREACHABLE = "7303"  # no such user for this page, or the person is not available (blocked, gone)
OUTSIDE_WINDOW = "7313"  # no message from the user within the window, and no usable tag
TAG_NOT_ALLOWED = "7526"  # the page lacks the messaging permission, or the tag was refused
EU_PRIVACY = "2018336"  # not sent under Europe's privacy rules (Webex Connect passes Meta's subcode)
EU_PRIVACY_ACTION = "2018047"
# A deprecated airline template: the seed says the request fails by notification and names no code;
# the common "invalid parameters" code is the one that says what is wrong (the template_type).
DEPRECATED_TEMPLATE = INVALID_PARAMETERS

MESSENGER_FAILURES: dict[str, Outcome] = {
    code: Outcome(status, code, text)
    for code, status, text in [
        ("7000", _F, "Invalid input details (JSON not correct)"),
        (INVALID_PARAMETERS, _F, "Invalid parameters/values"),
        (INTERNAL_ERROR, _F, "Internal server error"),
        (PROVIDER_ERROR, _F, "Service provider exception"),
        (PLATFORM_FAILURE, _F, "Unknown exception"),
        (EXPIRED, _E, "Message expired"),
        (UNREACHABLE, _F, "Endpoint not reachable"),
        (OUTSIDE_WINDOW, _F, "Inbound message not received from the user"),
        (TAG_NOT_ALLOWED, _F, "Subscription messaging permission not enabled, or invalid tag"),
        (EU_PRIVACY, _F, "Not submitted under the privacy rules in Europe"),
        (EU_PRIVACY_ACTION, _F, "Not submitted under the privacy rules in Europe"),
    ]
}

GraphKey = tuple[int, int | None]  # (error.code, error.error_subcode)
GraphError = tuple[str, bool, str]  # (Webex Connect code, retryable, description)

GRAPH_ERRORS: dict[GraphKey, GraphError] = {
    (1, None): (PLATFORM_FAILURE, True, "Graph: an unknown error occurred"),
    (2, None): (PROVIDER_ERROR, True, "Graph: unexpected error, retry later"),
    (2, 2018344): (
        PROVIDER_ERROR,
        False,
        "Graph: service unavailable, the page's privacy terms not accepted",
    ),
    (4, None): (PROVIDER_ERROR, True, "Graph: application request limit reached"),
    (4, 2018022): (PROVIDER_ERROR, True, "Graph: too many send requests to phone numbers"),
    (4, 2018354): (PROVIDER_ERROR, False, "Graph: marketing message frequency cap"),
    (9, 2018352): (PROVIDER_ERROR, False, "Graph: the user is performing too many actions"),
    (10, None): (PROVIDER_ERROR, False, "Graph: the app may not use the Send API"),
    (10, 2018065): (OUTSIDE_WINDOW, False, "Graph: sent outside the allowed window"),
    (10, 2018108): (TAG_NOT_ALLOWED, False, "Graph: outside the window, messaging permission missing"),
    (10, 2018278): (OUTSIDE_WINDOW, False, "Graph: sent outside the allowed window"),
    (10, 2018336): (EU_PRIVACY, False, "Graph: not submitted under the privacy rules in Europe"),
    (10, 2018047): (EU_PRIVACY_ACTION, False, "Graph: not submitted under the privacy rules in Europe"),
    (100, None): (PROVIDER_ERROR, False, "Graph: invalid parameter"),
    (100, 2018001): (UNREACHABLE, False, "Graph: no matching user found"),
    (100, 2018034): (PROVIDER_ERROR, False, "Graph: message and sender action sent together"),
    (190, None): (PROVIDER_ERROR, False, "Graph: invalid OAuth access token (the page token)"),
    (200, None): (PROVIDER_ERROR, False, "Graph: permission missing"),
    (200, 2018027): (PROVIDER_ERROR, False, "Graph: permission missing (pages_messaging)"),
    (200, 2018028): (
        PROVIDER_ERROR,
        False,
        "Graph: the user is not an admin, developer or tester of the app",
    ),
    (551, None): (UNREACHABLE, False, "Graph: this person isn't available right now"),
    (551, 1545041): (UNREACHABLE, False, "Graph: this person isn't available right now"),
    (613, None): (PROVIDER_ERROR, True, "Graph: calls to this API exceeded the rate limit"),
    (1200, None): (PROVIDER_ERROR, True, "Graph: temporary send message failure"),
}

# Retried after a backoff; the wait says nothing about this message, so it costs no attempt.
THROTTLING: frozenset[GraphKey] = frozenset({(4, None), (4, 2018022), (613, None)})
# Final, and a configuration alarm: the page token or the app's permissions are wrong.
CONFIGURATION: frozenset[GraphKey] = frozenset(
    {(10, None), (190, None), (200, None), (200, 2018027), (200, 2018028), (2, 2018344)}
)
# The PSID is not one this page can reach: remembered, not tried again.
GONE: frozenset[GraphKey] = frozenset({(100, 2018001)})

# What an error Graph answers with and this table does not know becomes: final, the provider's fault.
UNKNOWN_GRAPH_ERROR: GraphError = (PROVIDER_ERROR, False, "Graph: error")

_BY_SUBCODE: dict[int, GraphKey] = {sub: (code, sub) for code, sub in GRAPH_ERRORS if sub is not None}


def graph_error(code: int, subcode: int | None) -> tuple[GraphKey, GraphError]:
    """The table's entry for a Graph error: the exact pair, else the subcode alone, else the code alone,
    else `UNKNOWN_GRAPH_ERROR` (keyed by the pair given). The key says which of THROTTLING,
    CONFIGURATION and GONE applies."""
    for key in ((code, subcode), _BY_SUBCODE.get(subcode) if subcode is not None else None, (code, None)):
        if key is not None and key in GRAPH_ERRORS:
            return key, GRAPH_ERRORS[key]
    return (code, subcode), UNKNOWN_GRAPH_ERROR
