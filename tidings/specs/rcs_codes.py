"""Webex Connect's RCS status codes, and what the RBM API's answers become (docs/rcs.md, "Statuses and
codes").

Webex Connect documents its RCS failures as the block 7318-7334 (bad request, carrier lookup, TPS, MaaP
failures) and 7740 (invalid media) (developers.webexconnect.io/reference/channel-specific-status-codes,
summarised in reference/webex-connect.md §2.3), and an OTT message whose expiry passed as Expired 7301
(§2.2). The public summary names the kinds of failure, not every number's words, so the numbers below
are assigned in that order; docs/rcs.md lists them. 7500/7501/7502 are the shared progress codes.

Status: every RCS failure is `Failed` (the agent refused or could not send it); an expired message is
`Expired`.
"""

from tidings.statuses import Outcome, Status

_F, _E = Status.FAILED, Status.EXPIRED

EXPIRED = "7301"  # the request's expiry passed before RBM took the message
BAD_REQUEST = "7318"  # RBM 400 INVALID_ARGUMENT: the message as built was refused
NOT_RCS_USER = "7319"  # RBM 404 NOT_FOUND: the number is not RCS-reachable (carrier lookup failed)
TPS_EXCEEDED = "7320"  # RBM 429 RESOURCE_EXHAUSTED, retried until expiry
MAAP_FAILURE = "7321"  # RBM 5xx, or an answer Tidings cannot read: retried, then this
AUTH_FAILURE = "7322"  # RBM 401/403 or a refused service-account grant: the agent's configuration
AGENT_NOT_LAUNCHED = "7323"  # RBM 403 for a carrier the agent is not launched on (its words say so)
UNSUPPORTED_FEATURE = "7324"  # the handset lacks a feature the message needs (capabilities)
INVALID_MEDIA = "7740"  # RBM refused a file URL (not fetchable, unsupported type)

RCS_FAILURES: dict[str, Outcome] = {
    code: Outcome(_E if code == EXPIRED else _F, code, text)
    for code, text in [
        (EXPIRED, "Message expired"),
        (BAD_REQUEST, "Bad request"),
        (NOT_RCS_USER, "User is not RCS enabled (carrier lookup failed)"),
        (TPS_EXCEEDED, "TPS limit exceeded"),
        (MAAP_FAILURE, "MaaP failure"),
        (AUTH_FAILURE, "MaaP authentication failed"),
        (AGENT_NOT_LAUNCHED, "Agent not launched on the user's carrier"),
        (UNSUPPORTED_FEATURE, "Feature not supported by the user's device"),
        (INVALID_MEDIA, "Invalid media"),
    ]
}

PLATFORM_FAILURE = MAAP_FAILURE
