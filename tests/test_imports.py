"""Modules that once could not be imported first, each in a fresh interpreter: `tidings.templates` and
the config's checks imported each other (`import tidings.api.webhooks` on its own failed with a
circular import, while the server, which imports the config first, did not), and the connector reports
(`tidings.observe.connectors`) led through `tidings.channels`, which imported every kind's connector,
back to themselves."""

import subprocess
import sys

import pytest

FIRST = [
    "tidings.api.webhooks",
    "tidings.templates",
    "tidings.config.rules",
    "tidings.channels.email",
    "tidings.observe.connectors",
    "tidings.observe.cluster",
]


@pytest.mark.parametrize("module", FIRST)
def test_imports_on_its_own(module: str):
    r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
