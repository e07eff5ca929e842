"""The provider-kind registry: every kind's table is a typed field of Config, and its checks and factory
are what the config loader and the composition root use."""

import msgspec

from tidings.channels import KINDS, build_connectors, connector_names
from tidings.config import Config, ConfigError, parse_config


def test_every_kind_has_its_config_field() -> None:
    fields = {f.name: f.type for f in msgspec.structs.fields(Config)}
    for kind in KINDS:
        expected = list[kind.settings] if kind.many else kind.settings
        assert fields.get(kind.key) == expected, kind.key
    assert len({kind.key for kind in KINDS}) == len(KINDS)


def test_connectors_are_built_by_their_kinds() -> None:
    config = parse_config('[[smsc]]\nname = "carrier"\nport = 2775\n')
    # The app connectors (push) may be named by [routes] too; they are built with the apps and store.
    assert connector_names(config) == {"sandbox", "carrier", "push", "whatsapp", "messenger", "rcs"}
    assert set(build_connectors(config)) == {"sandbox", "carrier"}


def test_a_kinds_checks_run_with_the_files_lines() -> None:
    try:
        parse_config('[sandbox]\ndelay_ms = -1\n\n[[smsc]]\nname = "a"\nwindow = 0\n', "f.toml")
    except ConfigError as exc:
        assert exc.problems == [
            "f.toml:2: sandbox.delay_ms: must be 0 or more",
            "f.toml:6: smsc[0].window: must be at least 1",
        ]
    else:
        raise AssertionError("no problems found")
