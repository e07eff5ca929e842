"""Reading what comes back to the bounce address: RFC 3464 delivery status notifications with the
standard library's parser, anything else with flufl.bounce's detectors (the formats MTAs used before,
or beside, RFC 3464), and what a report means for the message it was sent for.

A DSN (`multipart/report; report-type=delivery-status`) has one block of fields per recipient in its
`message/delivery-status` part: `Action` (failed, delayed, delivered, relayed, expanded) and `Status`
(class.subject.detail, RFC 3463). The per-recipient `Original-Recipient` names the address as we gave
it, when the relay kept it (RFC 3461 ORCPT); `Final-Recipient` always names the one it tried.

What a recipient's report makes of the message (`verdict`):

| report | the message | its address |
| --- | --- | --- |
| failed, 5.x.x (or a permanent failure flufl.bounce finds) | Bounce 7520, `Permanent_<kind>` | suppressed |
| failed, 4.x.x (the relay gave up retrying) | Bounce 7520, `Transient_<kind>` | kept |
| delayed, or any 4.x.x that is not a failure | unchanged: the relay still holds and retries it | kept |
| delivered, expanded | Delivered 7500 | kept |
| relayed (handed to a system that sends no DSN) | unchanged: no evidence either way | kept |

`<kind>` names the status's subject the way bounce reports to Webex Connect do (`Transient_ContentRejected`):
`NoEmail` (X.1.x, the address), `MailboxFull` (X.2.2), `MessageTooLarge` (X.3.4 and X.2.3),
`ContentRejected` (X.6.x and X.7.x), `General` otherwise.
"""

import email
import email.policy
import logging
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import parseaddr

from flufl.bounce import all_failures

log = logging.getLogger("tidings.email.bounces")

_STATUS = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})")
# A per-recipient address field is "<address-type>;<address>" (RFC 3464 2.3.1); rfc822 is the only type
# mail systems use, and some leave the type out.
_ADDRESS_FIELD = re.compile(r"\s*(?:[\w-]+\s*;)?\s*(.*?)\s*$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class RecipientReport:
    """One recipient's fate as a report tells it. `status` is "" when the report gave none (flufl.bounce's
    heuristic formats); `permanent` says whether the failure is for good."""

    recipient: str  # the address, lowercased: Original-Recipient when given, else Final-Recipient
    final_recipient: str
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # "5.1.1", or ""
    diagnostic: str  # Diagnostic-Code, else ""


@dataclass(frozen=True, slots=True)
class BounceReport:
    recipients: tuple[RecipientReport, ...]
    standard: bool  # an RFC 3464 DSN (False: flufl.bounce recognised another format)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one recipient's report does to its message: `status` "Bounce" or "Delivered", `suppress` the
    address for the service; `description` for the notification and `detail` (status code and the
    diagnostic) for its `additionalInfo`."""

    status: str
    description: str
    detail: str
    suppress: bool


def read(raw: bytes) -> BounceReport | None:
    """The report a bounce message carries; None when it carries none this can read (an auto-reply, a
    report mangled on the way, anything that is not mail)."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # the parser is lenient; this is for what it still cannot take
        return None
    standard = _delivery_status(msg)
    if standard:
        return BounceReport(tuple(standard), True)
    try:
        temporary, permanent = all_failures(msg)
    except Exception as exc:  # a detector tripping over an odd message says nothing about the message
        log.debug("flufl.bounce failed on a report: %s", exc)
        return None
    found = [_heuristic(a, "failed") for a in sorted(permanent)]
    found += [_heuristic(a, "delayed") for a in sorted(temporary - permanent)]
    return BounceReport(tuple(found), False) if found else None


def _delivery_status(msg: Message) -> list[RecipientReport]:
    """The per-recipient blocks of the first `message/delivery-status` part of a delivery-status report."""
    if msg.get_content_type() != "multipart/report":
        return []
    if str(msg.get_param("report-type", "")).lower() != "delivery-status":
        return []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            return []
        # The first block holds the per-message fields (Reporting-MTA, …); the rest, one per recipient.
        return [r for b in blocks[1:] if isinstance(b, Message) and (r := _recipient(b)) is not None]
    return []


def _recipient(block: Message) -> RecipientReport | None:
    final = _address(block.get("Final-Recipient", ""))
    action = str(block.get("Action", "")).strip().lower()
    if not final or action not in ("failed", "delayed", "delivered", "relayed", "expanded"):
        return None
    original = _address(block.get("Original-Recipient", ""))
    status = _STATUS.match(str(block.get("Status", "")))
    diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
    code = ".".join(status.groups()) if status else ""
    return RecipientReport(original or final, final, action, code, diagnostic)


def _address(field: object) -> str:
    m = _ADDRESS_FIELD.match(str(field))
    value = m[1] if m else ""
    return parseaddr(value)[1].lower() or value.strip("<>").lower()


def _heuristic(address: bytes | str, action: str) -> RecipientReport:
    text = address.decode("utf-8", "replace") if isinstance(address, bytes) else address
    return RecipientReport(text.lower(), text.lower(), action, "", "")


def for_address(report: BounceReport, address: str) -> RecipientReport | None:
    """The recipient report about `address`, the message's own (by Original-Recipient or
    Final-Recipient); None when the report names only other addresses. A report on the first message of
    a request also covers its cc and bcc recipients (they ride on its envelope), so a block about another
    address never speaks for the message, even when it is the only one: that may cost a bounce whose
    final server renamed the address (a forwarding alias, without the original kept), never the
    suppression of an address that did not bounce."""
    wanted = address.lower()
    return next((r for r in report.recipients if wanted in (r.recipient, r.final_recipient)), None)


def verdict(r: RecipientReport) -> Verdict | None:
    """What the report does to its message (see the module's table); None: nothing changes."""
    detail = " ".join(x for x in (r.status, r.diagnostic) if x)
    if r.action in ("delivered", "expanded"):
        return Verdict("Delivered", "Delivered", detail, suppress=False)
    if r.action != "failed":
        return None
    permanent = not r.status.startswith("4")  # a failure with no status (heuristic formats) is for good
    kind = f"{'Permanent' if permanent else 'Transient'}_{_kind(r.status)}"
    return Verdict("Bounce", kind, detail, suppress=permanent)


def _kind(status: str) -> str:
    _, subject, detail = [*status.split("."), "", "", ""][:3]
    if subject == "1":
        return "NoEmail"
    if (subject, detail) == ("2", "2"):
        return "MailboxFull"
    if (subject, detail) in (("3", "4"), ("2", "3")):
        return "MessageTooLarge"
    if subject in ("6", "7"):
        return "ContentRejected"
    return "General"
