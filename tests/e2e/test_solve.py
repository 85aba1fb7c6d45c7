"""End-to-end: `agent` processes on real git repositories, the model faked at HTTP."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path


from tests.e2e.scenario import (
    ANALYSIS,
    BUGGY,
    FIXED,
    PR,
    TARGET,
    WRONG,
    agent,
    edits,
    fix,
    git,
    issue,
    only_run,
    plan,
    record,
    run_json,
    script_happy,
    solve_killed_at,
    write_call_for,
)
from tests.fakes.anthropic_server import FakeAnthropic, delay, tool_reply


def steps(repo: Path, run_id: str) -> list[str]:
    files = sorted((repo / ".agent" / "runs" / run_id / "steps").glob("*.json"),
                   key=lambda p: int(p.name.split("-")[0]))
    return [json.loads(p.read_text())["key"] for p in files]


def tree(root: Path, skip: tuple[str, ...] = (".git", ".agent")) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).parts[0] not in skip}


def branch_diff(repo: Path, run_id: str) -> str:
    return git(repo, "diff", "main", f"agent/{run_id}")


def test_happy_path_gate_approve_branch_and_untouched_working_tree(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    script_happy(server)
    (repo / "README.md").write_text("my uncommitted edit\n")
    before = tree(repo)
    status_before = git(repo, "status", "--porcelain")

    first = agent(["solve", issue(repo)], repo, env)
    assert first.returncode == 75, first.stderr
    run_id = only_run(repo)
    assert "plan ready for approval" in first.stdout and f"agent approve {run_id}" in first.stdout
    assert run_json(repo, run_id)["pending_wait"]["metadata"]["files"][0]["path"] == "shopcart/cart.py"

    done = agent(["approve", run_id], repo, env)
    assert done.returncode == 0, done.stderr + done.stdout
    data = run_json(repo, run_id)
    assert data["status"] == "succeeded"
    assert steps(repo, run_id) == ["analyze_issue", "explore_codebase", "create_plan",
                                   "check_tests", "approve_plan", "write_code", "run_tests",
                                   "create_pr"]
    assert record(repo, run_id, "run_tests")["output"]["passed"] is True
    assert git(repo, "rev-list", "--count", f"main..agent/{run_id}").strip() == "1"
    diff = branch_diff(repo, run_id)
    assert "-        discount = self.coupon.amount\n" in diff
    assert "+            discount = subtotal * self.coupon.amount / 100\n" in diff
    assert git(repo, "log", "-1", "--format=%an <%ae>|%s", f"agent/{run_id}").strip() == \
        "Test User <test@example.com>|Apply percentage coupons as percentages"
    assert (repo / ".agent" / "runs" / run_id / "pr.md").read_text().startswith("# Apply")
    assert tree(repo) == before
    assert git(repo, "status", "--porcelain") == status_before
    assert not (repo / ".agent" / "worktrees" / run_id).exists()
    assert ".agent/" in (repo / ".git" / "info" / "exclude").read_text()


def test_fix_loop_repairs_a_broken_first_edit(repo: Path, env: dict, server: FakeAnthropic) -> None:
    server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
    server.route(tool="submit_plan", reply=tool_reply(plan()))
    server.route(tool="submit_edits", reply=tool_reply(edits("shopcart/cart.py", BUGGY, WRONG)))
    server.route(tool="submit_fix", reply=tool_reply(
        fix("shopcart/cart.py", WRONG, FIXED, "divide by 100")))
    server.route(tool="submit_pr", reply=tool_reply(PR))

    done = agent(["solve", issue(repo), "--auto-approve"], repo, env)
    assert done.returncode == 0, done.stderr + done.stdout
    run_id = only_run(repo)
    assert steps(repo, run_id)[5:] == ["write_code", "run_tests", "fix_code", "run_tests-2",
                                      "create_pr"]
    first = record(repo, run_id, "run_tests")["output"]
    assert first["passed"] is False
    assert [f["id"] for f in first["failures"]] == [TARGET]
    assert first["failing_targets"] == [TARGET]
    fix_request = server.find(tool="submit_fix")[0].body["messages"][0]["content"][-1]["text"]
    assert TARGET in fix_request and "subtotal * self.coupon.amount\n" in fix_request
    assert record(repo, run_id, "run_tests-2")["output"]["passed"] is True
    assert "/ 100" in branch_diff(repo, run_id)


def test_exhausted_attempts_wait_then_reject_keeps_the_diff(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
    server.route(tool="submit_plan", reply=tool_reply(plan()))
    server.route(tool="submit_edits", reply=tool_reply(edits("shopcart/cart.py", BUGGY, WRONG)))
    server.route(tool="submit_fix", reply=tool_reply(
        fix("shopcart/cart.py", "self.coupon.amount\n        else",
            "self.coupon.amount * 2\n        else", "still wrong")))

    stuck = agent(["solve", issue(repo), "--auto-approve", "--max-attempts", "1"], repo, env)
    assert stuck.returncode == 75, stuck.stderr + stuck.stdout
    run_id = only_run(repo)
    pending = run_json(repo, run_id)["pending_wait"]
    assert pending["key"] == "tests_failing"
    assert pending["question"].startswith("tests still failing after 1 attempt ")
    assert server.count(tool="submit_fix") == 1

    assert (repo / ".agent" / "worktrees" / run_id).is_dir()

    # Rejected as asked (README: exit 0); the worktree, which no command can use any
    # more, is removed; the diff stays in the run.
    rejected = agent(["reject", run_id, "--reason", "giving up"], repo, env)
    assert rejected.returncode == 0, rejected.stderr + rejected.stdout
    data = run_json(repo, run_id)
    assert data["status"] == "rejected" and data["reason"] == "giving up"
    assert not (repo / ".agent" / "worktrees" / run_id).exists()
    assert run_id not in git(repo, "worktree", "list")
    kept = agent(["diff", run_id], repo, env)
    assert kept.returncode == 0 and "self.coupon.amount * 2" in kept.stdout
    assert git(repo, "branch", "--list", f"agent/{run_id}").strip() == ""
    listed = agent(["runs", "--json"], repo, env)
    assert json.loads(listed.stdout)[0]["status"] == "rejected"


def test_reject_at_the_gate_leaves_no_branch_and_no_worktree(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    script_happy(server)
    assert agent(["solve", issue(repo)], repo, env).returncode == 75
    run_id = only_run(repo)
    rejected = agent(["reject", "--reason", "wrong approach"], repo, env)
    assert rejected.returncode == 0, rejected.stderr
    data = run_json(repo, run_id)
    assert data["status"] == "rejected" and data["reason"] == "wrong approach"
    assert git(repo, "branch", "--list", "agent/*").strip() == ""
    assert not (repo / ".agent" / "worktrees").exists() or not any(
        (repo / ".agent" / "worktrees").iterdir())
    assert server.count(tool="submit_edits") == 0


THREE = ("shopcart/cart.py", "shopcart/coupons.py", "README.md")


def test_sigkill_during_write_code_resume_pays_one_more_call(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
    server.route(tool="submit_plan", reply=tool_reply(plan(*THREE)))
    server.route(tool="submit_edits", when=write_call_for(THREE[0]),
                 reply=tool_reply(edits(THREE[0], BUGGY, FIXED)))
    server.route(tool="submit_edits", when=write_call_for(THREE[1]),
                 reply=tool_reply(edits(THREE[1], '"""Coupon codes', '"""Coupon codes (case-insensitive)')))
    third = edits(THREE[2], "# shopcart\n", "# shopcart\n\nCoupons: SAVE<n> is a percentage.\n")
    server.route(tool="submit_edits", when=write_call_for(THREE[2]), times=1,
                 reply=delay(120, tool_reply(third)))
    server.route(tool="submit_edits", when=write_call_for(THREE[2]), reply=tool_reply(third))
    server.route(tool="submit_pr", reply=tool_reply(PR))

    run_id = solve_killed_at(repo, env, server, 3, "submit_edits")
    assert run_json(repo, run_id)["status"] == "running"  # what the killed process left
    assert server.count(tool="submit_edits") == 3

    resumed = agent(["resume", run_id], repo, env)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert server.count(tool="submit_edits") == 4
    assert server.count(tool="submit_analysis") == 1 and server.count(tool="submit_plan") == 1
    rec = record(repo, run_id, "write_code")
    assert rec["rerun_reason"].startswith("interrupted")
    assert [c["served_from"] is not None for c in rec["calls"]] == [True, True, False]
    diff = branch_diff(repo, run_id)
    assert all(path in diff for path in THREE)


def test_replay_from_write_code_with_haiku(repo: Path, env: dict, server: FakeAnthropic) -> None:
    script_happy(server)
    assert agent(["solve", issue(repo), "--auto-approve"], repo, env).returncode == 0
    parent = only_run(repo)
    parent_dir = repo / ".agent" / "runs" / parent
    before = {str(p.relative_to(parent_dir)): p.read_bytes()
              for p in parent_dir.rglob("*") if p.is_file()}
    seen = len(server.requests)

    replayed = agent(["replay", parent, "--from", "write_code", "--model", "haiku", "--json"],
                     repo, env)
    assert replayed.returncode == 0, replayed.stderr + replayed.stdout
    child = json.loads(replayed.stdout)["run_id"]
    assert child != parent
    new = server.requests[seen:]
    assert {r.tool for r in new} == {"submit_edits", "submit_pr"}
    assert {r.model for r in new} == {"claude-haiku-5-5"}
    for key in ("analyze_issue", "explore_codebase", "create_plan", "check_tests", "approve_plan"):
        assert record(repo, child, key)["reused_from"] == parent
    assert "reused_from" not in record(repo, child, "write_code")
    assert run_json(repo, child)["parent"] == {"run_id": parent, "from_step": "write_code"}
    after = {str(p.relative_to(parent_dir)): p.read_bytes()
             for p in parent_dir.rglob("*") if p.is_file()}
    assert after == before
    cost = json.loads(agent(["cost", child, "--json"], repo, env).stdout)
    assert cost["saved_usd"] > 0 and set(cost["steps"]) == {"write_code", "create_pr"}


def test_edits_outside_the_worktree_are_refused_and_the_model_is_told(
        repo: Path, env: dict, server: FakeAnthropic, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    absolute = tmp_path / "absolute.txt"
    config_before = (repo / ".git" / "config").read_bytes()
    escapes = {"explanation": "try to escape", "edits": [
        {"path": "../outside.txt", "action": "create", "content": "escaped\n"},
        {"path": ".git/config", "action": "replace", "old": "[core]", "new": "[core]\n\tx = 1"},
        {"path": str(absolute), "action": "create", "content": "escaped\n"},
    ]}
    server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
    server.route(tool="submit_plan", reply=tool_reply(plan()))
    server.route(tool="submit_edits", reply=tool_reply(edits("shopcart/cart.py", BUGGY, WRONG)))
    server.route(tool="submit_fix", replies=[
        tool_reply(escapes),
        tool_reply(fix("shopcart/cart.py", WRONG, FIXED))])
    server.route(tool="submit_pr", reply=tool_reply(PR))

    done = agent(["solve", issue(repo), "--auto-approve"], repo, env)
    assert done.returncode == 0, done.stderr + done.stdout
    told = server.find(tool="submit_fix")[1].body["messages"][0]["content"][-1]["text"]
    assert "../outside.txt" in told and ".git/config" in told and str(absolute) in told
    assert told.count("refused") >= 3
    assert not outside.exists() and not absolute.exists()
    assert (repo / ".git" / "config").read_bytes() == config_before
    run_id = only_run(repo)
    applied = record(repo, run_id, "fix_code")["output"]["edits"]
    assert [e["applied"] for e in applied] == [False, False, False, True]


def test_hanging_test_command_is_stopped_at_its_timeout(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    script_happy(server)
    hang = f"{sys.executable} -c \"print('starting the slow suite', flush=True); import time; time.sleep(120)\""
    started = time.monotonic()
    out = agent(["solve", issue(repo), "--auto-approve", "--max-attempts", "0",
                 "--test-cmd", hang], repo, {**env, "AGENT_TEST_TIMEOUT": "2"})
    assert time.monotonic() - started < 60
    assert out.returncode == 75, out.stderr + out.stdout
    run_id = only_run(repo)
    result = record(repo, run_id, "run_tests")["output"]
    assert result["timed_out"] is True and result["passed"] is False
    assert result["timeout"] == "tests"
    assert "starting the slow suite" in result["output_tail"]
    # A timeout says nothing about the change: the run asks, and pays for no fix.
    assert run_json(repo, run_id)["pending_wait"]["key"] == "tests_timed_out"
    assert server.count(tool="submit_fix") == 0
    assert "twice the timeout" in out.stdout.replace("\n", " ")


def test_preexisting_failure_on_base_does_not_count_against_the_fix(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    with (repo / "tests" / "test_cart.py").open("a") as f:  # in a related test file
        f.write("\n\ndef test_legacy_is_broken():\n    assert 1 == 2\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a test that was already failing")
    script_happy(server)
    done = agent(["solve", issue(repo), "--auto-approve"], repo, env)
    assert done.returncode == 0, done.stderr + done.stdout
    result = record(repo, only_run(repo), "run_tests")["output"]
    assert result["passed"] is True
    assert result["preexisting_failures"] == ["tests/test_cart.py::test_legacy_is_broken"]
    assert result["new_failures"] == []


def test_ctrl_c_exits_130_and_leaves_an_interrupted_resumable_run(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    script_happy(server)
    hang = f"{sys.executable} -c \"import time; time.sleep(120)\""
    proc = subprocess.Popen([sys.executable, "-m", "agent_cli", "solve", issue(repo),
                             "--auto-approve", "--test-cmd", hang], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # The hang is in the baseline, which check_tests runs before any code is written.
    while not list((repo / ".agent" / "runs").glob("*/steps/*-check_tests.json")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    run_id = only_run(repo)
    assert run_json(repo, run_id)["status"] == "interrupted"
    assert f"agent resume {run_id}" in out
    assert record(repo, run_id, "check_tests")["status"] == "interrupted"
