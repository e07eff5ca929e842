"""SMS, declared once: its documented codes (reference/webex-connect.md §2.2-2.3) and its spec."""

from tidings.schema.sms import SMS as SMS_REQUEST
from tidings.schema.sms import SmsContent
from tidings.schema.sms_v2 import SMS_V2
from tidings.specs.base import ChannelSpec
from tidings.statuses import Outcome, Status

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

SMS = ChannelSpec(
    name="sms",
    request=SMS_REQUEST,
    content_type=SmsContent,
    category="text",
    failures=SMS_FAILURES,
    expired_code="7208",
    platform_code="7202",
    v2=SMS_V2,
)
