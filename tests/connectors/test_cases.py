"""Every provider's case file, run by the shared connector runner (tests/connectors/runner.py)."""

import logging

import pytest

from tests.connectors import (
    cases_apns,
    cases_fcm,
    cases_messenger,
    cases_smpp,
    cases_webpush,
    cases_whatsapp,
    cases_wns,
)
from tests.connectors.runner import (
    InboundCase,
    OutboundCase,
    Provider,
    StandIn,
    _outbound,
    _Sent,
    _with_stand_in,
    assert_no_secrets,
    captured_logs,
    run_inbound,
    run_outbound,
)

CASE_FILES = [cases_smpp, cases_webpush, cases_wns, cases_fcm, cases_apns, cases_whatsapp, cases_messenger]
PROVIDERS: list[Provider] = [module.PROVIDER for module in CASE_FILES]

OUTBOUND = [pytest.param(p, case, id=f"{p.name}-{case.label}") for p in PROVIDERS for case in p.outbound]
INBOUND = [pytest.param(p, case, id=f"{p.name}-{case.label}") for p in PROVIDERS for case in p.inbound]


@pytest.mark.parametrize(("provider", "case"), OUTBOUND)
def test_outbound(provider: Provider, case: OutboundCase) -> None:
    run_outbound(provider, case)


@pytest.mark.parametrize(("provider", "case"), INBOUND)
def test_inbound(provider: Provider, case: InboundCase) -> None:
    run_inbound(provider, case)


def test_case_labels_are_unique() -> None:
    for provider in PROVIDERS:
        cases: list[OutboundCase | InboundCase] = [*provider.outbound, *provider.inbound]
        labels = [c.label for c in cases]
        assert len(labels) == len(set(labels)), provider.name


def test_the_secret_check_sees_a_leak_in_a_log() -> None:
    with captured_logs() as logs:
        logging.getLogger("tidings.smpp").debug("binding with %s", "hunter2")
    with pytest.raises(AssertionError, match="hunter2"):
        assert_no_secrets(["hunter2"], *logs.lines)


PUSH_SECRETS: list[tuple[Provider, list[str]]] = [
    (cases_webpush.PROVIDER, ["<vapid jwt 1>"]),
    (cases_wns.PROVIDER, ["<client secret>", "<token 1>"]),
    (cases_fcm.PROVIDER, ["<assertion 1>", "<token 1>"]),
    (cases_apns.PROVIDER, ["<provider token 1>"]),
]


@pytest.mark.parametrize(("provider", "wanted"), PUSH_SECRETS, ids=[p.name for p, _ in PUSH_SECRETS])
def test_a_push_cases_secret_check_covers_the_tokens_and_keys(provider: Provider, wanted: list[str]) -> None:
    case = provider.outbound[0]

    async def use(stand_in: StandIn) -> _Sent:
        return await _outbound(stand_in, case)

    sent = _with_stand_in(provider.open(), use)
    assert set(wanted) <= set(sent.names)
    assert {sent.names[name] for name in wanted} <= set(sent.secrets)
    if provider.name != "wns":  # a private key: each line of its PEM body is looked for
        assert any(len(s) == 64 and s not in sent.names.values() for s in sent.secrets)
