"""Message statuses and the documented delivery codes, per channel.

The status words are the ones Webex Connect puts in `deliveryStatus`; the codes are the documented
channel status codes (reference/webex-connect.md §2.2-2.3). "Queued" is only ever an API answer and a
history entry, never a notification.
"""

from dataclasses import dataclass
from enum import Enum


class Status(Enum):
    QUEUED = ("Queued", False)
    SUBMITTED = ("Submitted", False)
    DELIVERED = ("Delivered", True)
    UNDELIVERED = ("Un-Delivered", True)
    FAILED = ("Failed", True)
    EXPIRED = ("Expired", True)
    CLICKED = ("Clicked", False)  # only ever a notification: the message keeps its delivery status

    def __init__(self, word: str, final: bool) -> None:
        self.word = word
        self.final = final

    @classmethod
    def from_word(cls, word: str) -> "Status":
        return _BY_WORD[word]


_BY_WORD = {s.word: s for s in Status}

QUEUED_CODE = "1001"
SUBMITTED_CODE = "7501"
DELIVERED_CODE = "7500"
CLICKED_CODE = "7528"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A final or intermediate delivery result: what a notification reports."""

    status: Status
    code: str
    description: str


SUBMITTED = Outcome(Status.SUBMITTED, SUBMITTED_CODE, "Submitted")
DELIVERED = Outcome(Status.DELIVERED, DELIVERED_CODE, "Delivered")

_U, _F, _E = Status.UNDELIVERED, Status.FAILED, Status.EXPIRED

# The documented SMS failure codes: the sandbox ends an address in one of these with that outcome, and
# real connectors map operator errors onto them.
SMS_FAILURES: dict[str, Outcome] = {
    code: Outcome(status, code, text)
    for code, status, text in [
        ("7101", _F, "Invalid sender"),
        ("7102", _F, "Invalid destination address"),
        ("7107", _F, "Message length exceeded"),
        ("7109", _U, "Number is registered in DND"),
        ("7111", _U, "Message flagged as spam"),
        ("7201", _U, "Operator failure"),
        ("7202", _U, "Platform failure"),
        ("7203", _U, "Unknown subscriber"),
        ("7204", _U, "Insufficient credit"),
        ("7205", _U, "Binary message error"),
        ("7206", _U, "Subscriber's SIM memory full"),
        ("7207", _U, "Subscriber out of coverage"),
        ("7208", _E, "Expired"),
        ("7209", _U, "Multipart message failure"),
        ("7210", _U, "Billing failure"),
        ("7211", _U, "Billing failure"),
        ("7280", _U, "Number deleted"),
        ("7281", _U, "10DLC campaign error"),
        ("7282", _U, "Invalid route"),
        ("7283", _U, "Landline number"),
        ("7284", _U, "Duplicate message"),
        ("7302", _U, "Rate limit exceeded"),
        ("7513", _U, "Rejected by carrier"),
        ("7518", _U, "Unknown"),
        ("7607", _U, "Invalid message type"),
        ("7720", _U, "Recipient blocked"),
    ]
}

FAILURES: dict[str, dict[str, Outcome]] = {"sms": SMS_FAILURES}

EXPIRED: dict[str, Outcome] = {"sms": SMS_FAILURES["7208"]}

# Used when a retryable send error has run out of attempts and the connector named no code.
PLATFORM_FAILURE: dict[str, Outcome] = {"sms": SMS_FAILURES["7202"]}
