"""Message statuses and the codes every channel shares.

The status words are the ones Webex Connect puts in `deliveryStatus`. "Queued" is only ever an API
answer and a history entry, never a notification. A channel's own documented codes (failures, expiry)
are part of its spec (`tidings.specs`).
"""

from dataclasses import dataclass
from enum import Enum


class Status(Enum):
    QUEUED = ("Queued", False)
    SUBMITTED = ("Submitted", False)
    DELIVERED = ("Delivered", True)
    READ = ("Read", True)  # push, in-app, WhatsApp, email opens: after Delivered, on the app's word
    UNDELIVERED = ("Un-Delivered", True)
    FAILED = ("Failed", True)
    EXPIRED = ("Expired", True)
    BOUNCE = ("Bounce", True)  # email: the relay refused the address (5xx) or a DSN said it failed
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
READ_CODE = "7502"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A final or intermediate delivery result: what a notification reports."""

    status: Status
    code: str
    description: str


SUBMITTED = Outcome(Status.SUBMITTED, SUBMITTED_CODE, "Submitted")
DELIVERED = Outcome(Status.DELIVERED, DELIVERED_CODE, "Delivered")
READ = Outcome(Status.READ, READ_CODE, "Read")

# How far along a message is, for statuses that only move forward (`Store.advance`).
PROGRESS = {Status.QUEUED: 0, Status.SUBMITTED: 1, Status.DELIVERED: 2, Status.READ: 3}
