"""The SMTP provider kind: `[[smtp]]`, one connector per relay, named by its `name`; it reads `[email]`
too (the bounce domain of the VERP sender, DKIM signing)."""

from typing import TYPE_CHECKING, Any

from tidings.channels.email.settings import EmailConfig, SmtpConfig, check, check_email
from tidings.channels.kind import ProviderKind

if TYPE_CHECKING:
    from tidings.channels.email.connector import SmtpConnector

__all__ = ["KIND", "EmailConfig", "SmtpConfig", "check_email"]


def name(settings: SmtpConfig) -> str:
    return settings.name


# The connector is imported when one is built, not with the kind: reading a config needs only the
# settings, and the connector's imports (the console's connector reports among them) lead back here.
def build(settings: SmtpConfig) -> "SmtpConnector":
    from tidings.channels.email.connector import SmtpConnector

    return SmtpConnector(settings)


def build_in(settings: SmtpConfig, config: Any) -> "SmtpConnector":
    from tidings.channels.email.connector import SmtpConnector

    return SmtpConnector(settings, config.email)


KIND = ProviderKind("smtp", SmtpConfig, True, check, build, name, build_in)
