"""Tidings: a self-hosted gateway that speaks the Webex Connect Messaging API."""

__version__ = "0.1.0"
