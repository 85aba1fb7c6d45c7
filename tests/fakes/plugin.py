"""pytest fixtures for the fake Anthropic service.

Enable with ``pytest_plugins = ["tests.fakes.plugin"]`` in the top-level conftest.

- ``fake_anthropic``: a started ``FakeAnthropic`` with default options (change them
  as attributes, e.g. ``fake_anthropic.min_cacheable_tokens = 16``).
- ``fake_anthropic_factory``: ``make(**options) -> FakeAnthropic``, started; every
  server made is stopped at teardown.
- ``fake_anthropic_env``: ``fake_anthropic`` plus ``ANTHROPIC_BASE_URL`` /
  ``ANTHROPIC_API_KEY`` set in ``os.environ`` for the test (other credential
  variables removed), for in-process code that builds its own client. For a
  subprocess, pass ``env={**os.environ, **server.env()}`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .anthropic_server import FakeAnthropic

# Variables that would make the SDK pick other credentials than the fake's key.
_CREDENTIAL_VARS = (
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_PROFILE",
    "ANTHROPIC_CONFIG_DIR",
    "ANTHROPIC_CUSTOM_HEADERS",
    "ANTHROPIC_IDENTITY_TOKEN",
    "ANTHROPIC_IDENTITY_TOKEN_FILE",
    "ANTHROPIC_FEDERATION_RULE_ID",
    "ANTHROPIC_ORGANIZATION_ID",
)


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def fake_anthropic_factory() -> Iterator[Callable[..., FakeAnthropic]]:
    made: list[FakeAnthropic] = []

    def make(**options: Any) -> FakeAnthropic:
        server = FakeAnthropic(**options).start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def fake_anthropic_env(
    fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> FakeAnthropic:
    for name in _CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in fake_anthropic.env().items():
        monkeypatch.setenv(name, value)
    return fake_anthropic
