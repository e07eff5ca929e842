"""The SMTP provider kind: `[[smtp]]`, one connector per relay, named by its `name`; it reads `[email]`
too (the bounce domain of the VERP sender, DKIM signing)."""

from typing import Any

from tidings.channels.email.connector import SmtpConnector
from tidings.channels.email.settings import EmailConfig, SmtpConfig, check, check_email
from tidings.channels.kind import ProviderKind

__all__ = ["KIND", "EmailConfig", "SmtpConfig", "SmtpConnector", "check_email"]


def name(settings: SmtpConfig) -> str:
    return settings.name


def build(settings: SmtpConfig) -> SmtpConnector:
    return SmtpConnector(settings)


def build_in(settings: SmtpConfig, config: Any) -> SmtpConnector:
    return SmtpConnector(settings, config.email)


KIND = ProviderKind("smtp", SmtpConfig, True, check, build, name, build_in)
