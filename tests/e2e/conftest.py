"""Fixtures of the end-to-end tests: the fake model service, the sample repository and
the environment an `agent` process runs with. A test module may override any of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.scenario import agent_env, make_repo
from tests.fakes.anthropic_server import FakeAnthropic


@pytest.fixture
def server(fake_anthropic: FakeAnthropic) -> FakeAnthropic:
    fake_anthropic.min_cacheable_tokens = 100
    return fake_anthropic


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


@pytest.fixture
def env(server: FakeAnthropic, tmp_path: Path) -> dict[str, str]:
    return agent_env(server, tmp_path)
