import os

import pytest

pytest_plugins = ["tests.fakes.plugin"]


@pytest.fixture
def needs_bwrap() -> None:
    """For tests of the bubblewrap sandbox: skipped where bwrap cannot run, except in
    CI (CI=true), where a missing sandbox is a failure: a green CI means it was tested."""
    from agent_cli.workspace.sandbox import probe

    path, _, problem = probe()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must test the sandbox, but {problem}: install bubblewrap")
        pytest.skip(f"bubblewrap sandbox unavailable: {problem}")
