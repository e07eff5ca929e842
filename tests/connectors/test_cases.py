"""Every provider's case file, run by the shared connector runner (tests/connectors/runner.py)."""

import logging

import pytest

from tests.connectors import cases_smpp, cases_webpush, cases_wns
from tests.connectors.runner import (
    InboundCase,
    OutboundCase,
    Provider,
    _outbound,
    _with_stand_in,
    assert_no_secrets,
    captured_logs,
    run_inbound,
    run_outbound,
)

CASE_FILES = [cases_smpp, cases_webpush, cases_wns]
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


def test_the_push_providers_secrets_are_checked() -> None:
    """The secret check of a push case covers the keys, the client secret and the tokens issued."""
    for module, wanted in [
        (cases_webpush, ["<vapid jwt 1>"]),
        (cases_wns, ["<client secret>", "<token 1>"]),
    ]:
        case = module.OUTBOUND[0]
        sent = _with_stand_in(module.PROVIDER.open(), lambda stand_in, c=case: _outbound(stand_in, c))
        assert set(wanted) <= set(sent.names)
        assert {sent.names[name] for name in wanted} <= set(sent.secrets), module.__name__
