"""The smaller things of issue 15, one test each, through real `agent` processes.

Most share one run: an unpriced model (`my-local-model`, no `prices:`), `push: true`
in a checkout without a remote, a first edit that fails the tests and a fix that
passes them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from tests.cli.test_read_commands import _run_in_pty
from tests.e2e import scenario
from tests.fakes.anthropic_server import FakeAnthropic, tool_reply

SGR = re.compile(r"\x1b\[([0-9;]*)m")


@dataclass
class Run:
    repo: Path
    env: dict[str, str]
    id: str
    stdout: str


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    base = tmp_path_factory.mktemp("small")
    repo = scenario.make_repo(base)
    with FakeAnthropic() as server:
        server.route(tool="submit_analysis", reply=tool_reply(scenario.ANALYSIS))
        server.route(tool="submit_plan", reply=tool_reply(scenario.plan()))
        server.route(tool="submit_edits", reply=tool_reply(
            scenario.edits("shopcart/cart.py", scenario.BUGGY, scenario.WRONG)))
        server.route(tool="submit_fix", reply=tool_reply(scenario.fix(
            "shopcart/cart.py", "subtotal * self.coupon.amount\n",
            "subtotal * self.coupon.amount / 100\n")))
        server.route(tool="submit_pr", reply=tool_reply(scenario.PR))
        env = {**scenario.agent_env(server, base), "AGENT_PUSH": "true"}
        proc = scenario.agent(["solve", scenario.issue(repo), "--auto-approve",
                               "--model", "my-local-model"], repo, env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        rows = json.loads(scenario.agent(["runs", "--json"], repo, env).stdout)
        yield Run(repo, env, rows[0]["id"], proc.stdout)


def agent(run: Run, *args: str) -> subprocess.CompletedProcess[str]:
    proc = scenario.agent(list(args), run.repo, run.env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_push_without_a_remote_says_what_did_not_happen(run: Run) -> None:
    out = " ".join(run.stdout.split())
    assert f"run {run.id} committed its branch but did not push it" in out
    assert f"run {run.id} succeeded" not in out
    assert "nothing was pushed and no pull request was opened" in out
    assert "no git remote named 'origin'; add one with: git remote add origin URL" in out


def test_the_gh_pr_create_line_is_whole_and_has_a_title(run: Run) -> None:
    (line,) = [ln for ln in run.stdout.splitlines() if "gh pr create" in ln]
    assert "--title 'Apply percentage coupons as percentages'" in line
    assert line.rstrip().endswith("pr.md"), f"the command is cut: {line!r}"
    assert len(line) > 120, "the line is long enough that a wrapping console would break it"


def test_an_unpriced_model_costs_unknown_not_zero(run: Run) -> None:
    assert "spent unknown" in run.stdout and "$0.0000" not in run.stdout
    table = agent(run, "runs").stdout
    assert "unknown" in table and "$0.0000" not in table
    row = _row(run)
    assert row["cost_unknown"] is True


def _row(run: Run) -> dict:
    return next(r for r in json.loads(agent(run, "runs", "--json").stdout) if r["id"] == run.id)


def test_push_without_gh_says_so(run: Run, tmp_path: Path) -> None:
    """A remote, but no `gh` on PATH: the replayed create_pr pushes nothing and says why."""
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    if "origin" not in scenario.git(run.repo, "remote").split():
        scenario.git(run.repo, "remote", "add", "origin", str(remote))
    env = {**run.env, "PATH": scenario.without_bwrap(tmp_path)}
    proc = scenario.agent(["replay", run.id, "--from", "create_pr"], run.repo, env)
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert "did not push it" in out and "succeeded" not in out
    assert "the GitHub CLI (gh) is not on PATH; install it from https://cli.github.com" in out
    assert not scenario.git(remote, "branch", "--list"), "nothing reached the remote"


def test_runs_json_age_is_seconds_and_times_are_iso(run: Run) -> None:
    row = _row(run)
    assert isinstance(row["age"], int) and 0 <= row["age"] < 3600
    for key in ("created_at", "updated_at"):
        assert datetime.fromisoformat(row[key]).tzinfo is not None, row[key]


def test_inspect_a_wait_as_json_has_no_internal_fields(run: Run) -> None:
    record = json.loads(agent(run, "inspect", "--step", "approve_plan", "--json").stdout)
    assert record["key"] == "approve_plan" and "answer" in record
    assert not [k for k in record if k.startswith("_")], sorted(record)


def test_a_failed_test_step_does_not_say_failed_twice(run: Run) -> None:
    out = agent(run, "inspect", "--step", "run_tests").stdout
    assert "FAILED:" in out
    assert "FAILED: failed" not in out and "PASSED: passed" not in out


def test_status_reads_as_english(run: Run) -> None:
    resumed = agent(run, "resume", run.id)
    assert resumed.returncode == 2
    assert f"run {run.id} has already succeeded; there is nothing to resume" in resumed.stderr
    approved = agent(run, "approve", run.id)
    assert approved.returncode == 2
    assert "it has succeeded" in approved.stderr and "it is succeeded" not in approved.stderr


def test_diff_context_lines_keep_the_terminals_colour(run: Run) -> None:
    env = {**run.env, "TERM": "xterm-256color", "COLUMNS": "200"}
    env.pop("NO_COLOR", None)
    _, out = _run_in_pty(["diff", run.id], run.repo, env)
    context = [ln for ln in out.splitlines() if "def total" in ln or "subtotal =" in ln]
    assert context, out
    for line in context:
        codes = [c for c in SGR.findall(line) if c not in ("", "0")]
        assert not codes, f"a context line is coloured {codes}: {line!r}"
    added = next(ln for ln in out.splitlines() if "/ 100" in ln)
    assert SGR.search(added), "added lines are still coloured"


# -- without a run ------------------------------------------------------------------------


def bare(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    repo = scenario.make_repo(tmp_path)
    env = {k: v for k, v in scenario.os.environ.items()
           if not k.startswith(("AGENT_", "ANTHROPIC_"))}
    env.update(PYTHONPATH=str(scenario.REPO), NO_COLOR="1")
    proc = subprocess.run([sys.executable, "-m", "agent_cli", *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_version_and_short_help(tmp_path: Path) -> None:
    from agent_cli import __version__

    for flag in ("--version", "-V"):
        proc = bare(tmp_path / flag, flag)
        assert proc.returncode == 0 and proc.stdout.strip() == f"agent {__version__}"
    for args in (["-h"], ["solve", "-h"]):
        proc = bare(tmp_path / args[0], *args)
        assert proc.returncode == 0 and "Usage: agent" in proc.stdout


def test_cost_json_without_runs_has_the_documented_shape(tmp_path: Path) -> None:
    proc = bare(tmp_path, "cost", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "rows": [], "runs": 0,
        "total": {"input": 0, "cache_write": 0, "cache_read": 0, "output": 0,
                  "cost_usd": 0.0, "unknown_cost": False}}


def test_help_names_the_right_defaults(tmp_path: Path) -> None:
    cost = " ".join(bare(tmp_path / "c", "cost", "--help").stdout.split())
    assert "(default: every run, by day and model)" in cost and "latest run" not in cost
    for command in ("approve", "reject"):
        text = " ".join(bare(tmp_path / command, command, "--help").stdout.split())
        assert "(default: the latest waiting run)" in text, text


def test_demo_into_a_file_is_a_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("mine\n")
    proc = bare(tmp_path / "r", "demo", str(target))
    assert proc.returncode == 2
    assert f"{target} is a file, not a directory" in proc.stderr
    assert "agent demo DIR" in proc.stderr
    assert target.read_text() == "mine\n"
