"""`agent clean` (issue 15): removes the worktrees, and with --branches the branches,
of runs that are over; never a waiting run's worktree, never a branch the user made
or moved on; says what it removed and what it kept.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.e2e import scenario
from tests.fakes.anthropic_server import FakeAnthropic, tool_reply


def agent(repo: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = scenario.agent(list(args), repo, env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def solve(repo: Path, env: dict[str, str], *flags: str) -> str:
    code, out, err = agent(repo, env, "solve", scenario.issue(repo), "--json", *flags)
    assert code in (0, 75), err
    return json.loads(out)["run_id"]


def branches(repo: Path) -> set[str]:
    return set(scenario.git(repo, "branch", "--format=%(refname:short)").split())


def test_clean_needs_a_run_or_finished(tmp_path: Path) -> None:
    repo = scenario.make_repo(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "ANTHROPIC_"))}
    env["PYTHONPATH"] = str(scenario.REPO)
    code, _, err = agent(repo, env, "clean")
    assert code == 2
    assert "say which runs to clean" in err and "agent clean --finished" in err
    assert not (repo / ".agent").exists()


def test_clean_removes_what_finished_runs_left_and_nothing_else(tmp_path: Path) -> None:
    repo = scenario.make_repo(tmp_path)
    worktrees = repo / ".agent" / "worktrees"
    with FakeAnthropic() as server:
        scenario.script_happy(server)
        env = scenario.agent_env(server, tmp_path)
        kept_env = {**env, "AGENT_KEEP_WORKTREE": "true"}
        done = solve(repo, kept_env, "--auto-approve")      # succeeded, worktree kept
        moved = solve(repo, env, "--auto-approve")          # succeeded; the user builds on it
        rejected = solve(repo, env)
        assert agent(repo, env, "reject", rejected)[0] == 0
        server.reset()                                      # waits with a worktree:
        server.route(tool="submit_analysis", reply=tool_reply(scenario.ANALYSIS))
        server.route(tool="submit_plan", reply=tool_reply(scenario.plan()))
        server.route(tool="submit_edits", reply=tool_reply(
            scenario.edits("shopcart/cart.py", scenario.BUGGY, scenario.WRONG)))
        waiting = solve(repo, env, "--auto-approve", "--max-attempts", "0")
        assert scenario.run_json(repo, waiting)["status"] == "waiting"
    scenario.git(repo, "branch", "agent/mine")              # the user's own branches
    scenario.git(repo, "branch", f"agent/{rejected}")       # named like a run's, made by hand
    wt = repo / "wt-user"
    scenario.git(repo, "worktree", "add", "-q", str(wt), f"agent/{moved}")
    (wt / "NOTES.md").write_text("mine\n")
    scenario.git(wt, "add", "NOTES.md")
    scenario.git(wt, "commit", "-q", "-m", "my work on top")
    scenario.git(repo, "worktree", "remove", str(wt))
    assert (worktrees / done).is_dir() and (worktrees / waiting).is_dir()
    before = {p.name for p in worktrees.iterdir()}

    code, _, err = agent(repo, env, "clean", waiting[-4:])
    assert code == 2 and f"run {waiting} is waiting" in err and "agent approve" in err, err
    assert {p.name for p in worktrees.iterdir()} == before

    code, out, err = agent(repo, env, "clean", "--finished", "--branches")
    assert code == 0, err
    assert (worktrees / waiting).is_dir(), "a waiting run keeps its worktree"
    assert not (worktrees / done).exists()
    assert {p.name for p in worktrees.iterdir()} == {waiting}
    assert f"run {done} (succeeded): removed worktree .agent/worktrees/{done}, " \
           f"branch agent/{done}" in out
    assert f"kept branch agent/{moved}: it has moved past" in out
    left = branches(repo)
    assert f"agent/{done}" not in left
    assert {"main", "agent/mine", f"agent/{moved}", f"agent/{rejected}"} <= left
    assert json.loads(agent(repo, env, "clean", "--finished", "--json")[1]) == []
    code, out, _ = agent(repo, env, "clean", "--finished")
    assert code == 0 and "nothing to remove" in out
    assert agent(repo, env, "diff", done)[0] == 0, "the run's records stay"
