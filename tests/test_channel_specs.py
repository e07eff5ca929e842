"""The channel registry and the failure catalogue: one spec per channel that every consumer reads, and
what each failure kind means for a message."""

import asyncio
from pathlib import Path

import msgspec
import pytest

from tests.test_dispatch import run_until_final
from tidings import specs
from tidings.channels import SANDBOX, build_routes
from tidings.channels.base import FailureKind, SendError
from tidings.channels.sandbox.connector import SandboxConnector, outcome_for
from tidings.config import Config
from tidings.errors import InvalidParameter
from tidings.schema import sms_api, v1
from tidings.schema.sms import SmsContent
from tidings.specs import ChannelSpec
from tidings.specs.sms import SMS, SMS_FAILURES
from tidings.statuses import DELIVERED, Status


def test_every_spec_is_complete() -> None:
    for spec in specs.SPECS:
        assert spec.expired.status is Status.EXPIRED
        assert spec.platform_failure.code in spec.failures
        assert spec.request is None or spec.request.name == spec.name
        assert specs.spec(spec.name) is spec


def test_a_spec_missing_a_code_fails_when_declared() -> None:
    with pytest.raises(ValueError, match="7208"):
        ChannelSpec("sms", SMS.request, SmsContent, "text", {}, expired_code="7208", platform_code="7202")


def test_a_spec_with_another_channels_request_fails_when_declared() -> None:
    with pytest.raises(ValueError, match="request object"):
        ChannelSpec(
            "push", SMS.request, SmsContent, "push", SMS_FAILURES, expired_code="7208", platform_code="7202"
        )


def test_sms_is_declared_as_before() -> None:
    assert specs.names()[:4] == ("sms", "push", "whatsapp", "fb")  # later channels follow
    assert (SMS.category, SMS.destination_key, SMS.inbound_label) == ("text", "msisdn", "SMS")
    assert SMS.expired == SMS_FAILURES["7208"]
    assert SMS.platform_failure == SMS_FAILURES["7202"]


@pytest.mark.parametrize("value", ["sms", " SMS ", "Sms"])
def test_deliverychannel_finds_its_spec(value: str) -> None:
    assert specs.by_delivery_channel(value) is SMS


def test_an_unknown_deliverychannel_lists_the_registry() -> None:
    body = b'{"deliverychannel":"pigeon","destination":[{"msisdn":["+447700900123"]}]}'
    with pytest.raises(Exception, match=r"supported: sms, push, whatsapp, fb\)"):
        v1.decode(body)


def test_sandbox_follows_the_last_four_digits_of_any_address() -> None:
    assert outcome_for("sms", "+447700907203") == SMS_FAILURES["7203"]
    assert outcome_for("sms", "+447700907208").status is Status.EXPIRED
    assert outcome_for("sms", "+447700900123") == DELIVERED
    # The rule ignores other characters, as later channels' addresses need (CONTRACT.md "Sandbox").
    assert SMS.sandbox_outcome("user7203@example.com") == SMS_FAILURES["7203"]
    assert outcome_for("no-such-channel", "+447700907203") == DELIVERED


def test_every_channel_has_a_route() -> None:
    sandbox = SandboxConnector(0)
    routes = build_routes(Config(), {SANDBOX: sandbox})
    assert set(routes) == set(specs.names())


def test_the_failure_catalogue() -> None:
    free = {k for k in FailureKind if not k.costs_attempt}
    assert free == {FailureKind.THROTTLED, FailureKind.UNAVAILABLE}
    assert all(k.retryable for k in free)  # a failure that costs nothing must be one worth retrying
    gone = FailureKind.GONE
    assert (gone.retryable, gone.costs_attempt, gone.address_gone) == (False, True, True)
    assert [k for k in FailureKind if k.address_gone] == [gone]
    assert SendError(gone, "token unregistered").retryable is False


def test_a_gone_address_fails_at_once_with_its_code(tmp_path: Path) -> None:
    result = asyncio.run(
        run_until_final(
            tmp_path,
            {
                "gone": [SendError(FailureKind.GONE, "number deleted", code="7280")],
                "unavailable": [SendError(FailureKind.UNAVAILABLE, "no bind")] * 4,
            },
        )
    )
    assert result["gone"] == ("Failed", "7280", 1, 1, ["Failed"])
    assert result["unavailable"] == ("Delivered", "7500", 1, 5, ["Submitted", "Delivered"])


SENDER_CASES = [
    ("CONNCT", (), True),  # no sender ids configured: the default
    ("OTHER", (), False),
    ("ACME", ("ACME", "+14155550100"), True),
    ("+14155550100", ("ACME", "+14155550100"), True),
    ("14155550100", ("ACME", "+14155550100"), True),  # a number's '+' is not significant
    ("+14155550100", ("14155550100",), True),
    ("14155550199", ("ACME", "+14155550100"), False),
    ("acme", ("ACME",), False),
]


@pytest.mark.parametrize(("sender", "senders", "allowed"), SENDER_CASES)
def test_both_apis_take_the_same_senders(sender: str, senders: tuple[str, ...], allowed: bool) -> None:
    v1_object = msgspec.json.encode({"text": "hi", "senderid": sender})
    sms_api_body = msgspec.json.encode({"from": sender, "to": "+447700900123", "content": "hi"})
    outcomes = []
    for attempt in (
        lambda: SMS.request.content(v1_object, "channels.sms", senders).data.senderid,
        lambda: sms_api.decode(sms_api_body, senders).items[0].content.senderid,
    ):
        try:
            outcomes.append(attempt() == sender)
        except InvalidParameter:
            outcomes.append(False)
    assert outcomes == [allowed, allowed]


def test_a_spec_that_neither_v1_nor_v2_serves_fails_when_declared() -> None:
    with pytest.raises(ValueError, match="neither v1 nor v2"):
        ChannelSpec("sms", None, SmsContent, "text", SMS_FAILURES, expired_code="7208", platform_code="7202")
