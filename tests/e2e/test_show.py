"""`agent show` and `agent inspect --step` as a person reads them (issue 15), on one
run that has every kind of answer: an analysis, a plan, a helper read and edits that
break the target test, a fix with its explanation, and a PR text after one retry."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e import scenario
from tests.e2e.scenario import ANALYSIS, BUGGY, FIXED, PR, WRONG, edits, fix, plan
from tests.fakes.anthropic_server import FakeAnthropic, error_reply, tool_reply

ANSI = re.compile(r"\x1b\[")


@dataclass
class Done:
    repo: Path
    env: dict[str, str]
    run_id: str


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Done:
    base = tmp_path_factory.mktemp("show")
    with FakeAnthropic() as server:
        repo = scenario.make_repo(base)
        env = scenario.agent_env(server, base)
        server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
        server.route(tool="submit_plan", reply=tool_reply(plan()))
        server.route(tool="submit_edits", replies=[
            tool_reply("read_file", {"path": "shopcart/cart.py", "start_line": 1,
                                     "end_line": 12}),
            tool_reply(edits("shopcart/cart.py", BUGGY, WRONG))])
        server.route(tool="submit_fix", reply=tool_reply(
            fix("shopcart/cart.py", WRONG, FIXED, "the percentage was not divided by 100")))
        server.route(tool="submit_pr", replies=[error_reply(529, retry_after_ms=50),
                                                tool_reply(PR)])
        proc = scenario.agent(["solve", scenario.issue(repo), "--auto-approve"], repo, env)
        assert proc.returncode == 0, proc.stderr
    return Done(repo, env, scenario.only_run(repo))


def show(done: Done, *args: str) -> str:
    proc = scenario.agent(["show", done.run_id, *args], done.repo, done.env)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_show_renders_each_kind_of_answer(done: Done) -> None:
    out = show(done)
    # One header per call, with its model, tokens, cost and latency; the retry is said.
    headers = [ln for ln in out.splitlines() if ln.startswith("#")]
    assert [h.split()[1] for h in headers] == ["analyze_issue", "create_plan", "write_code",
                                               "write_code", "fix_code", "create_pr"]
    assert all(re.search(r"claude-\S+ · [\d.k]+ in, [\d.k]+ out.* · \$[\d.]+ · [\d.]+s", h)
               for h in headers), headers
    assert "1 retry" in headers[-1] and "retry" not in " ".join(headers[:-1])
    # The analysis as text, the plan as a table, edits as a diff, the read as one line.
    assert f"problem: {ANALYSIS['problem']}" in out
    assert "- SAVE10 on 160.0 gives 144.0" in out
    assert re.search(r"1\s+modify\s+shopcart/cart\.py\s+fix the coupon math", out)
    assert "→ read_file shopcart/cart.py:1-12" in out
    assert "-        discount = self.coupon.amount" in out
    assert "+            discount = subtotal * self.coupon.amount" in out
    assert "explanation: the percentage was not divided by 100" in out
    assert f"title: {PR['title']}" in out and "Tested with the existing suite." in out
    # What the model was shown, collapsed to headings: the issue's title, not its text.
    assert "# Issue: Percentage coupons take off a flat amount" in out
    assert "tool result: " in out  # the read's result, in the next turn of write_code
    assert "tools: " in out and "(must call submit_analysis)" in out
    assert not ANSI.search(out)


def test_show_full_prints_what_the_model_was_shown(done: Done) -> None:
    collapsed, full = show(done), show(done, "--full")
    issue_text = (done.repo.parent / "ISSUE.md").read_text()
    body_line = next(ln for ln in issue_text.splitlines()[1:] if len(ln) > 30)
    assert body_line not in collapsed
    assert body_line in full
    assert len(full) > 2 * len(collapsed)


def test_show_one_step_and_a_step_without_calls(done: Done) -> None:
    out = show(done, "--step", "fix_code")
    assert [ln.split()[1] for ln in out.splitlines() if ln.startswith("#")] == ["fix_code"]
    proc = scenario.agent(["show", done.run_id, "--step", "run_tests"], done.repo, done.env)
    assert proc.returncode == 2 and "no model call in step 'run_tests'" in proc.stderr
    assert "analyze_issue, create_plan, write_code, fix_code, create_pr" in proc.stderr


def test_show_colours_the_diffs_on_a_terminal(done: Done) -> None:
    env = {k: v for k, v in done.env.items() if k != "NO_COLOR"}
    env.update(TERM="xterm-256color", COLUMNS="160")
    code, out, _ = scenario.run_on_pty(["show", done.run_id, "--step", "fix_code"], done.repo,
                                       env)
    assert code == 0, out
    assert re.search(r"\x1b\[32m\s*\+            discount = subtotal", out), out[-2000:]
    assert re.search(r"\x1b\[31m\s*-            discount = subtotal", out)


def test_show_does_not_import_the_sdk(done: Done) -> None:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "agent_cli", "show",
                           done.run_id], cwd=done.repo, env=done.env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not any(ln.rstrip().endswith(" anthropic") for ln in proc.stderr.splitlines())


def inspect(done: Done, step: str, *args: str) -> str:
    proc = scenario.agent(["inspect", done.run_id, "--step", step, *args], done.repo, done.env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("step", ["analyze_issue", "explore_codebase", "check_tests",
                                  "approve_plan", "fix_code"])
def test_inspect_step_is_text_not_json(done: Done, step: str) -> None:
    out = inspect(done, step)
    assert not re.search(r'^\s*([{\[]|"\w+": )', out, re.MULTILINE), out


def test_inspect_step_views_say_what_matters(done: Done) -> None:
    analysis = inspect(done, "analyze_issue")
    assert f"problem: {ANALYSIS['problem']}" in analysis and "acceptance criteria:" in analysis
    explored = inspect(done, "explore_codebase")
    assert re.search(r"1\s+shopcart/cart\.py\s+[\d.]+", explored), explored
    assert "shown to the model" in explored
    fixed = inspect(done, "fix_code")
    assert "explanation: the percentage was not divided by 100" in fixed
    assert "+            discount = subtotal * self.coupon.amount / 100" in fixed
    written = inspect(done, "write_code")
    assert "explanation" not in written


@pytest.mark.parametrize("step", ["analyze_issue", "explore_codebase", "fix_code"])
def test_inspect_step_json_keeps_the_data(done: Done, step: str) -> None:
    data = json.loads(inspect(done, step, "--json"))
    key = {"analyze_issue": "problem", "explore_codebase": "ranked", "fix_code": "diff"}[step]
    assert key in data
