"""What a person sees while a run goes (issue 15), through real `agent` processes.

Plain mode (stderr a pipe) prints each line as its event happens, not when the first
model call returns; a model call's retries are shown as they happen; a test stage
whose tests fail says so with its counts. On a terminal (a pty), the live view keeps
redrawing, so a step's elapsed time ticks while the model is thinking, and it stays
live under NO_COLOR; a failing test step ends ✗.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e import scenario
from tests.e2e.scenario import ANALYSIS, BUGGY, WRONG, edits, issue, plan, run_on_pty
from tests.fakes.anthropic_server import FakeAnthropic, delay, error_reply, tool_reply


def _script_failing_tests(server: FakeAnthropic) -> None:
    """A plan and an edit that makes the target test fail (WRONG: x100 the discount)."""
    server.route(tool="submit_plan", reply=tool_reply(plan()))
    server.route(tool="submit_edits", reply=tool_reply(edits("shopcart/cart.py", BUGGY, WRONG)))


def _read_line(stream: int, timeout: float) -> str:
    """One line from a pipe's file descriptor, or '' when none came in `timeout` s."""
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return ""
        chunk = os.read(stream, 1)
        if not chunk:
            break
        data += chunk
    return data.decode()


def test_plain_mode_prints_each_line_as_it_happens(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    """The first line arrives while the first model call is still held by the server."""
    server.route(tool="submit_analysis", reply=delay(30, tool_reply(ANALYSIS)))
    proc = subprocess.Popen([sys.executable, "-m", "agent_cli", "solve", issue(repo)],
                            cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        server.wait_for_requests(1, timeout=60, tool="submit_analysis")
        line = _read_line(proc.stderr.fileno(), timeout=10)
        assert line == "analyze_issue: started\n"
        (held,) = server.find(tool="submit_analysis")
        assert held.status is None, "the line must come before the model call returns"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_plain_mode_shows_retries_and_failing_tests_with_counts(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    server.route(tool="submit_analysis", replies=[
        error_reply(529, retry_after_ms=300), tool_reply(ANALYSIS)])
    _script_failing_tests(server)
    proc = scenario.agent(["solve", issue(repo), "--auto-approve", "--max-attempts", "0"],
                          repo, env)
    assert proc.returncode == 75, proc.stderr
    lines = proc.stderr.splitlines()
    retry = [ln for ln in lines if "retry" in ln]
    assert retry and re.fullmatch(r"analyze_issue: overloaded \(529\), retry 1/\d in 0\.3 s",
                                  retry[0]), proc.stderr
    assert lines.index(retry[0]) < lines.index(next(ln for ln in lines if
                                                     ln.startswith("analyze_issue: done")))
    # The tests of the change: 6 ran, the target failed; not "done".
    (tests_line,) = [ln for ln in lines if ln.startswith("run_tests: ")
                     and "started" not in ln and "so far" not in ln]
    assert re.fullmatch(r"run_tests: tests failed in [\d.]+s \(6 tests ran, 1 failed\), "
                        r"0 tokens, \$0\.0000", tests_line), proc.stderr
    events = [json.loads(ln) for ln in (repo / ".agent" / "runs" / scenario.only_run(repo)
                                        / "events.jsonl").read_text().splitlines()]
    (retried,) = [e for e in events if e["event"] == "model_retry"]
    assert (retried["key"], retried["status"], retried["attempt"]) == ("analyze_issue", 529, 1)
    (finished,) = [e for e in events if e["event"] == "tests_finished"]
    assert (finished["passed"], finished["ran"], finished["failed"]) == (False, 6, 1)


def test_live_view_ticks_shows_retries_and_ends_failing_tests_with_a_cross(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    """On a terminal with NO_COLOR set (the scenario's env): still the live view."""
    server.route(tool="submit_analysis", replies=[
        error_reply(529, retry_after_ms=1500), delay(2.5, tool_reply(ANALYSIS))])
    _script_failing_tests(server)
    env = {**env, "TERM": "xterm-256color", "COLUMNS": "160", "NO_COLOR": "1"}
    code, out, _ = run_on_pty(["solve", issue(repo), "--auto-approve", "--max-attempts", "0"],
                               repo, env)
    assert code == 75, out[-3000:]
    assert "\x1b[" in out, "not the live view"
    assert not re.search(r"\x1b\[[0-9;]*3[0-7]m", out), "NO_COLOR: no colour codes"
    # The elapsed time of analyze_issue ticked while the model was answering (4 s in all).
    shown = [float(s) for s in re.findall(r"analyze_issue\s+(\d+\.\d)s", out)]
    assert any(0.5 <= s <= 3.0 for s in shown), shown
    assert "overloaded (529), retry 1/" in out
    # The last frame: the failing test step is ✗ with its counts, the others ✓.
    final = out[out.rfind("analyze_issue") - 20:]
    assert re.search(r"✓\s+analyze_issue", final), final[-2000:]
    assert re.search(r"✗\s+run_tests\s.*6 tests ran, 1 failed", final), final[-2000:]
    assert not re.search(r"✓\s+run_tests", final)


def test_locate_shows_a_bar_while_a_cold_index_is_parsed(tmp_path: Path) -> None:
    repo = tmp_path / "big"
    (repo / "pkg").mkdir(parents=True)
    for i in range(240):
        (repo / "pkg" / f"mod{i}.py").write_text(f"def handler_{i}(request):\n    return {i}\n")
    (tmp_path / "ISSUE.md").write_text("# handler_7 returns the wrong number\n")
    scenario.git(repo, "init", "-q", "-b", "main")
    scenario.git(repo, "add", "-A")
    scenario.git(repo, "-c", "user.name=T", "-c", "user.email=t@e.x", "commit", "-q", "-m", "i")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "ANTHROPIC_"))}
    env.update(PYTHONPATH=str(scenario.REPO), TERM="xterm-256color", COLUMNS="120")
    env.pop("NO_COLOR", None)
    code, out, _ = run_on_pty(["locate", str(tmp_path / "ISSUE.md")], repo, env)
    assert code == 0, out
    bare = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    assert re.search(r"indexing ━+\s+240/240 files parsed", bare), bare[:2000]
    assert "pkg/mod7.py" in out
    warm = scenario.agent(["locate", str(tmp_path / "ISSUE.md")], repo, env)
    assert warm.returncode == 0 and "indexing" not in warm.stderr, warm.stderr
    (repo / ".agent").rename(tmp_path / "old-agent-dir")  # cold again, stderr a pipe
    plain = scenario.agent(["locate", str(tmp_path / "ISSUE.md")], repo, env)
    assert plain.stderr == "indexing the repository: 240 files to parse\n", plain.stderr
