"""The repository's instructions for agents (issue 15): the first of AGENTS.md,
CLAUDE.md, CONVENTIONS.md, .github/copilot-instructions.md in the base commit (not
the working tree), capped with the cut marked, reach every model stage's request and
its fingerprint.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import scenario
from tests.fakes.anthropic_server import FakeAnthropic

MODEL_TOOLS = ("submit_analysis", "submit_plan", "submit_edits", "submit_pr")


@pytest.fixture
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        scenario.script_happy(fake)
        yield fake


def commit(repo: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    scenario.git(repo, "add", *files)
    scenario.git(repo, "commit", "-q", "-m", "instructions")


def texts(server: FakeAnthropic, tool: str) -> list[str]:
    return [json.dumps(r.body) for r in server.find(tool=tool)]


def test_every_model_stage_sees_the_first_file_of_the_base_commit(
        server: FakeAnthropic, tmp_path: Path) -> None:
    repo = scenario.make_repo(tmp_path)
    commit(repo, {"CLAUDE.md": "Use Decimal for money. CLAUDE-MARK\n",
                  "CONVENTIONS.md": "CONVENTIONS-MARK\n",
                  ".github/copilot-instructions.md": "COPILOT-MARK\n"})
    (repo / "AGENTS.md").write_text("UNCOMMITTED-AGENTS-MARK\n")  # the working tree only
    (repo / "CLAUDE.md").write_text("WORKTREE-EDIT-MARK\n")
    env = scenario.agent_env(server, tmp_path)
    proc = scenario.agent(["solve", scenario.issue(repo), "--auto-approve", "--json"], repo, env)
    assert proc.returncode == 0, proc.stderr
    for tool in MODEL_TOOLS:
        requests = texts(server, tool)
        assert requests, tool
        for text in requests:
            assert "CLAUDE-MARK" in text and "(CLAUDE.md, at the base commit)" in text, tool
            for other in ("CONVENTIONS-MARK", "COPILOT-MARK", "UNCOMMITTED-AGENTS-MARK",
                          "WORKTREE-EDIT-MARK"):
                assert other not in text, (tool, other)


def test_long_instructions_are_cut_and_say_so(server: FakeAnthropic, tmp_path: Path) -> None:
    repo = scenario.make_repo(tmp_path)
    body = "HEAD-MARK " + "x" * 12_000 + " TAIL-MARK"
    commit(repo, {".github/copilot-instructions.md": body})
    env = scenario.agent_env(server, tmp_path)
    proc = scenario.agent(["solve", scenario.issue(repo), "--json"], repo, env)
    assert proc.returncode == 75, proc.stderr
    (text,) = texts(server, "submit_analysis")
    assert "HEAD-MARK" in text and "TAIL-MARK" not in text
    assert f"{len(body) - 8000:,} more characters of .github/copilot-instructions.md cut" in text


def test_changed_instructions_rerun_what_they_fed(server: FakeAnthropic, tmp_path: Path) -> None:
    """The same base commit, its AGENTS.md blob swapped (git replace): the continued run
    re-runs analyze_issue because its prompt changed, and shows the new text."""
    repo = scenario.make_repo(tmp_path)
    commit(repo, {"AGENTS.md": "Version one. V1-MARK\n"})
    env = scenario.agent_env(server, tmp_path)
    proc = scenario.agent(["solve", scenario.issue(repo), "--json"], repo, env)
    assert proc.returncode == 75, proc.stderr
    run_id = json.loads(proc.stdout)["run_id"]
    old = scenario.git(repo, "rev-parse", "HEAD:AGENTS.md").strip()
    new = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo, check=True,
                         input="Version two. V2-MARK\n", capture_output=True,
                         text=True).stdout.strip()
    scenario.git(repo, "replace", old, new)
    proc = scenario.agent(["approve", run_id, "--json"], repo, env)
    assert proc.returncode in (0, 75), proc.stderr
    first, second = texts(server, "submit_analysis")
    assert "V1-MARK" in first and "V2-MARK" in second
    timeline = json.loads(scenario.agent(["inspect", run_id, "--json"], repo, env).stdout)
    analyze = next(s for s in timeline["steps"] if s["key"] == "analyze_issue")
    assert analyze["rerun_reason"] == "prompt changed"
