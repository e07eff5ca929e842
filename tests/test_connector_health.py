"""What a connector's self-description keeps (tidings.observe.connectors) on its own: a provider's words
without anything shaped like a secret, and when a connector needs a person."""

from tidings.channels.base import FailureKind, SendError, SendResult
from tidings.observe.connectors import Credential, Ledger, redact


def test_secrets_are_redacted_from_a_providers_words():
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ0ZWFtIn0.c2lnbmF0dXJl"
    said = (
        f"401 for Authorization: Bearer ya29.abc-DEF_123 (token {jwt}); retry at "
        "https://user:hunter2@relay.example/path?access_token=EAAsecret&x=1 password=pw1234, "
        '"client_secret": "s3cr3t-value" and the SMSC password smsc9x7q'
    )
    text = redact(said, ["smsc9x7q"])
    for secret in ("ya29.abc-DEF_123", jwt, "hunter2", "EAAsecret", "pw1234", "s3cr3t-value", "smsc9x7q"):
        assert secret not in text, secret
    # What is not a secret stays, so the words still explain the failure.
    assert text.startswith("401 for Authorization: Bearer [redacted]") and "relay.example/path" in text
    assert "x=1" in text and "the SMSC password [redacted]" in text


def test_the_ledger_keeps_the_last_failure_and_the_providers_backoff():
    ledger = Ledger(lambda: ["tok-1234"])
    ledger.record([SendResult("a"), SendError(FailureKind.THROTTLED, "429 for tok-1234", "7563", 30.0)])
    report = ledger.report(configured="none set")
    assert report.last_success is not None and report.last_error is not None
    assert (report.last_error.kind, report.last_error.code) == ("throttled", "7563")
    assert report.last_error.text == "429 for [redacted]"
    assert report.rate.backoff_until is not None and report.rate.backing_off(report.last_error.at + 29)
    assert not report.rate.backing_off(report.last_error.at + 31)
    assert (report.state, report.attention) == ("up", "")


def test_a_refused_credential_or_a_config_failure_since_the_last_success_needs_a_person():
    ledger = Ledger()
    ledger.record([SendResult("a")])
    refused = Credential("app x", "static token", refused="190 Invalid OAuth access token")
    assert ledger.report(credentials=[refused]).state == "needs attention"
    ledger.record([SendError(FailureKind.CONFIG, "AUTH refused")])
    assert ledger.report().attention == "the last send failed on the configuration or credentials"
    ledger.record([SendResult("b")])
    assert ledger.report().state == "up"
    assert ledger.report(up=False).state == "down"
