"""Oversized answers and paths from the model end in one clear message (issue 16).

A tool input far past what a prompt can carry is not journaled, and the model gets
one repair turn; a plan path the file system cannot hold is refused like a path
outside the repository, instead of an OSError on every resume. Real `agent`
processes; the model service is the only fake.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.scenario import ANALYSIS, agent, issue, only_run, plan
from tests.fakes.anthropic_server import FakeAnthropic, tool_reply


def flat(text: str) -> str:
    """Output with the terminal's line wrapping undone."""
    return " ".join(text.split())


def test_an_oversized_tool_input_is_sent_back_once_and_never_journaled(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    server.enforce_max_tokens = False  # a server gone wrong: 500 kB in one field
    huge = "spam " * 100_000
    server.route(tool="submit_analysis",
                 replies=[tool_reply({**ANALYSIS, "problem": huge}), tool_reply(ANALYSIS)])
    server.route(tool="submit_plan", reply=tool_reply(plan()))
    solved = agent(["solve", issue(repo)], repo, env)
    assert solved.returncode == 75, solved.stderr + solved.stdout

    _first, repair = server.find(tool="submit_analysis")[:2]
    assert "at most 256,000 are taken" in json.dumps(repair.body)
    assert "spam spam spam" not in json.dumps(repair.body)
    run_id = only_run(repo)
    journaled = [p.read_text() for p in (repo / ".agent" / "runs" / run_id).rglob("*.json")]
    assert not any("spam spam spam" in text for text in journaled)
    total = sum(p.stat().st_size for p in (repo / ".agent" / "runs").rglob("*") if p.is_file())
    assert total < 400_000


def test_a_plan_path_too_long_for_the_disk_is_one_clear_error(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    long_name = "shopcart/" + "a" * 300 + ".py"
    server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
    server.route(tool="submit_plan", reply=tool_reply(plan(long_name)))
    solved = agent(["solve", issue(repo), "--auto-approve"], repo, env)
    said = flat(solved.stdout + solved.stderr)
    assert solved.returncode == 1, said
    assert "Traceback" not in said and "OSError" not in said
    assert "a file or directory name is at most 255 bytes" in said
    repair = server.find(tool="submit_plan")[1]
    assert "at most 255 bytes" in json.dumps(repair.body)

    resumed = agent(["resume", only_run(repo)], repo, env)
    said = flat(resumed.stdout + resumed.stderr)
    assert resumed.returncode == 1 and "OSError" not in said
    assert "at most 255 bytes" in said
