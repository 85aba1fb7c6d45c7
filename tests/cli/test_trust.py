"""What agent refuses to trust or accept, through the CLI: exit 2, nothing changed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.e2e.scenario import agent, agent_env, git, make_repo, script_happy
from tests.fakes.anthropic_server import FakeAnthropic


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def test_a_tracked_agent_directory_is_refused(repo: Path, tmp_path: Path,
                                              fake_anthropic: FakeAnthropic) -> None:
    planted = repo / ".agent" / "runs" / "99991231-235959-beef"
    planted.mkdir(parents=True)
    (planted / "run.json").write_text(json.dumps({"schema_version": 1, "id": planted.name,
                                                  "status": "waiting"}))
    git(repo, "add", "-f", ".agent")
    git(repo, "commit", "-q", "-m", "plant a run")
    before = snapshot(repo)
    out = agent(["approve"], repo, agent_env(fake_anthropic, tmp_path))
    assert out.returncode == 2
    assert "tracks files under" in out.stderr and "git rm -r --cached .agent" in out.stderr
    assert snapshot(repo) == before


def test_a_negative_budget_is_refused_before_anything_is_written(
        repo: Path, tmp_path: Path, fake_anthropic: FakeAnthropic) -> None:
    script_happy(fake_anthropic)
    env = agent_env(fake_anthropic, tmp_path)
    assert agent(["solve", str(tmp_path / "ISSUE.md")], repo, env).returncode == 75
    before = snapshot(repo)
    out = agent(["approve", "--budget", "-5"], repo, env)
    assert out.returncode == 2 and "--budget" in out.stderr
    assert snapshot(repo) == before
    assert agent(["approve"], repo, env).returncode == 0  # still answerable


def test_max_cost_with_an_unpriced_model_is_refused(repo: Path, tmp_path: Path,
                                                    fake_anthropic: FakeAnthropic) -> None:
    before = snapshot(repo)
    out = agent(["solve", str(tmp_path / "ISSUE.md"), "--model", "my-local-llama",
                 "--max-cost", "1"], repo, agent_env(fake_anthropic, tmp_path))
    assert out.returncode == 2
    assert "--max-cost cannot be enforced" in out.stderr and "prices" in out.stderr
    assert snapshot(repo) == before and not (repo / ".agent").exists()
