"""Contact policy: consent groups and frequency caps, checked when a message is about to be sent.

A request opts in with `contactPolicy{contactPolicyGroup, channelCheckConsent, channelApplyFrequencyCap}`;
the group (from `[[contact_policy.groups]]`) says whether consent is needed (opt-in) or assumed until
withdrawn (opt-out), and how many messages an address may get per channel category per day, week and
month. The check and the count happen in one store transaction, so two workers cannot both send the last
allowed message. A refused message is Failed with the documented 9xxx code.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from tidings.statuses import Outcome, Status

# Rolling windows, in seconds. **Choice:** a month is 30 days.
WINDOWS = {"day": 86_400.0, "week": 7 * 86_400.0, "month": 30 * 86_400.0}

NO_CONSENT = Outcome(Status.FAILED, "9002", "No consent")
UNKNOWN_GROUP = Outcome(Status.FAILED, "9005", "Invalid contact policy group")
CAP_EXCEEDED = Outcome(Status.FAILED, "9006", "Frequency cap exceeded")
CONSENT_EXPIRED = Outcome(Status.FAILED, "9010", "Consent expired")
REFUSALS = {o.code: o for o in (NO_CONSENT, UNKNOWN_GROUP, CAP_EXCEEDED, CONSENT_EXPIRED)}


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    service_id: str
    kind: str  # "opt-in" or "opt-out"
    caps: dict[str, dict[str, int]] = field(default_factory=dict)  # category -> window -> count

    def limits(self, category: str) -> list[tuple[float, int]]:
        """(window seconds, most messages in it) for one category."""
        return [(WINDOWS[w], n) for w, n in self.caps.get(category, {}).items() if w in WINDOWS]


class GroupRegistry:
    def __init__(self, groups: Iterable[Group] = ()) -> None:
        self.replace(groups)

    def replace(self, groups: Iterable[Group]) -> None:
        # One assignment: a request reading the registry sees the old entries or the new, never a mix.
        self._by_key = {(g.service_id, g.id): g for g in groups}

    def find(self, service_id: str, group_id: str) -> Group | None:
        return self._by_key.get((service_id, group_id))


@dataclass(frozen=True, slots=True)
class PolicyCheck:
    """One message's check, as the store runs it."""

    transid: str
    service_id: str
    group_id: str
    opt_in: bool
    category: str
    address: str
    check_consent: bool
    limits: list[tuple[float, int]]  # empty: no cap check
