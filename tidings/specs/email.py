"""Email, declared once: its documented codes (reference/webex-connect.md §2.2-2.3, Webex Connect's
email status codes) and its spec. v1 does not serve it; v2 does (`tidings.schema.email.EmailV2`)."""

from tidings.schema.email import EmailContent, EmailV2
from tidings.specs.base import ChannelSpec
from tidings.statuses import Outcome, Status

_B, _F, _E = Status.BOUNCE, Status.FAILED, Status.EXPIRED

BOUNCE = "7520"  # the relay refused the address (5xx at RCPT/DATA), or a DSN said delivery failed
PREVIOUSLY_BOUNCED = "7240"  # a later send to an address that bounced (suppressed for the service)
UNSUBSCRIBED = "7241"
NOT_VERIFIED = "7522"  # the relay refused our sender (5xx at MAIL FROM)
SMTP_FAILURE = "7553"  # retries ran out and the relay named nothing better
EXPIRED = "7301"  # no email expiry code is documented: the generic one of the OTT channels

# The sandbox ends an address in one of these with that outcome; the SMTP connector maps the relay's
# answers onto them.
EMAIL_FAILURES: dict[str, Outcome] = {
    code: Outcome(status, code, text)
    for code, status, text in [
        (BOUNCE, _B, "Bounce"),
        ("7521", _F, "Complaint"),
        (NOT_VERIFIED, _F, "Not verified"),
        ("7523", _F, "Invalid email address"),
        ("7524", _F, "Message too long"),
        ("7535", _F, "Attachment too large"),
        ("7536", _F, "Template error"),
        (PREVIOUSLY_BOUNCED, _F, "Previously bounced address"),
        (UNSUBSCRIBED, _F, "Unsubscribed address"),
        (SMTP_FAILURE, _F, "SMTP failure"),
        ("7554", _F, "SMTP relay refused the message"),
        (EXPIRED, _E, "Expired"),
    ]
}

EMAIL_V2 = EmailV2()

EMAIL = ChannelSpec(
    name="email",
    request=None,
    content_type=EmailContent,
    category="email",
    failures=EMAIL_FAILURES,
    expired_code=EXPIRED,
    platform_code=SMTP_FAILURE,
    remembers_gone=True,
    gone_code=PREVIOUSLY_BOUNCED,
    explains_failures=True,  # the relay's own reply goes into additionalInfo
    v2=EMAIL_V2,
)
