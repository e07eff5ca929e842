"""The app block for RCS (`[apps.rcs]`, CONTRACT.md "RCS"). `client_token` is a secret: write-only in the
admin API, never logged."""

import msgspec

BASE_URL = "https://rcsbusinessmessaging.googleapis.com"


class RcsSettings(msgspec.Struct, forbid_unknown_fields=True):
    agent_id: str  # the RBM agent (`agentId` on every call)
    service_account_file: str  # a Google service-account key file; its token_uri is used as is
    client_token: str  # the webhook's client token: verifies X-Goog-Signature, answers the handshake
    base_url: str = BASE_URL
    ca_file: str = ""  # an extra CA bundle for base_url (tests use their own CA)
    # Ask RBM which features the number's device has before each send (one more call per message):
    # a number RBM does not know takes the SMS fallback (or fails 7319) without a send, and a rich card,
    # carousel or action the device cannot show fails 7324 (or takes the fallback) instead of arriving
    # as RBM's own text rendering. Off by default: the send's own 404 already says "not RCS-reachable".
    check_capabilities: bool = False
