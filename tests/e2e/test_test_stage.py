"""The test stage on a repository with more tests than the change needs: selection,
timeouts that are not failures, broken commands caught before code is written, and
target tests named in the wrong file. Real `agent` processes, the model faked at HTTP."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.scenario import (
    ANALYSIS,
    BUGGY,
    FIXED,
    PR,
    TARGET,
    agent,
    edits,
    git,
    issue,
    only_run,
    plan,
    record,
    run_json,
    script_happy,
    write_call_for,
)
from tests.fakes.anthropic_server import FakeAnthropic, delay, tool_reply

SLOW_UNRELATED = "import time\n\ndef test_a_slow_unrelated_suite():\n    time.sleep(30)\n"


def commit(repo: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "more tests")


def test_only_the_related_tests_run_and_the_gate_says_which(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    commit(repo, {"tests/test_slow_reports.py": SLOW_UNRELATED})
    script_happy(server)
    started = time.monotonic()
    first = agent(["solve", issue(repo)], repo, env)
    assert first.returncode == 75, first.stderr + first.stdout
    gate = first.stdout.replace("\n", " ")
    assert "related test file(s): tests/test_cart.py" in gate
    assert "baseline: 6 tests, 1 already failing" in gate
    done = agent(["approve"], repo, env)
    assert done.returncode == 0, done.stderr + done.stdout
    assert time.monotonic() - started < 25  # the 30 s unrelated test never ran
    run_id = only_run(repo)
    result = record(repo, run_id, "run_tests")["output"]
    assert result["passed"] and result["command"].endswith("-m pytest tests/test_cart.py")
    selected = {f["path"]: f["reasons"] for f in result["selection"]["files"]}
    assert list(selected) == ["tests/test_cart.py"]
    assert "named for shopcart/cart.py" in selected["tests/test_cart.py"]
    shown = agent(["inspect", run_id, "--step", "run_tests"], repo, env).stdout
    assert "selected tests/test_cart.py: " in shown


def test_scope_full_runs_the_whole_suite_after_the_related_tests_pass(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    commit(repo, {"tests/test_more.py": "def test_more():\n    assert 1 + 1 == 2\n"})
    script_happy(server)
    done = agent(["solve", issue(repo), "--auto-approve"], repo, {**env, "AGENT_TEST_SCOPE": "full"})
    assert done.returncode == 0, done.stderr + done.stdout
    result = record(repo, only_run(repo), "run_tests")["output"]
    assert result["selection"]["scope"] == "full" and result["command"].endswith("-m pytest")
    assert "then the whole suite ran" in result["selection"]["note"]
    assert result["total"] > 7  # more than test_cart.py's tests


def test_a_timeout_asks_and_approving_runs_again_with_twice_the_timeout(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    with (repo / "tests" / "test_cart.py").open("a") as f:
        f.write("\n\ndef test_takes_three_seconds():\n    import time\n    time.sleep(3.3)\n")
    git(repo, "commit", "-qam", "a slow test")
    script_happy(server)
    # 3 s: past it on any machine; twice that leaves 2.7 s for pytest to start and the
    # other tests to run, on a loaded one too.
    env = {**env, "AGENT_TEST_TIMEOUT": "3"}
    first = agent(["solve", issue(repo), "--auto-approve"], repo, env)
    assert first.returncode == 75, first.stderr + first.stdout
    run_id = only_run(repo)
    assert run_json(repo, run_id)["pending_wait"]["key"] == "tests_timed_out"
    assert record(repo, run_id, "check_tests")["output"]["timed_out"] is True
    assert record(repo, run_id, "run_tests")["output"]["timeout"] == "tests"
    assert server.count(tool="submit_fix") == 0
    done = agent(["approve", run_id], repo, env)
    assert done.returncode == 0, done.stderr + done.stdout
    again = record(repo, run_id, "run_tests-2")["output"]
    assert again["passed"] and again["timeout"] is None
    assert server.count(tool="submit_fix") == 0


def test_a_broken_test_command_stops_before_any_code_is_written(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    script_happy(server)
    out = agent(["solve", issue(repo), "--auto-approve", "--test-cmd", "pytset -q"], repo, env)
    assert out.returncode == 2, out.stderr + out.stdout
    assert "the test command does not work on the base commit" in out.stdout.replace("\n", " ")
    assert "--test-cmd" in out.stdout
    assert server.count(tool="submit_edits") == 0 and server.count(tool="submit_fix") == 0
    run_id = only_run(repo)
    assert record(repo, run_id, "check_tests")["error"]["type"] == "TestCommandBroken"
    fixed = agent(["replay", run_id, "--from", "check_tests", "--test-cmd",
                   f"{sys.executable} -m pytest -q"], repo, env)
    assert fixed.returncode == 0, fixed.stderr + fixed.stdout


def test_a_target_test_named_in_the_wrong_file_is_found_by_its_name(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    wrong = TARGET.replace("tests/test_cart.py", "tests/test_coupons.py")
    misplaced = {**plan("shopcart/cart.py", "tests/test_cart.py"),
                 "tests": [{"id": wrong, "kind": "existing", "reason": "the bug"}]}
    server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
    server.route(tool="submit_plan", reply=tool_reply(misplaced))
    server.route(tool="submit_edits", when=write_call_for("shopcart/cart.py"),
                 reply=tool_reply(edits("shopcart/cart.py", BUGGY, FIXED)))
    server.route(tool="submit_edits", when=write_call_for("tests/test_cart.py"),
                 reply=tool_reply(edits("tests/test_cart.py", "def test_percentage_coupon_takes",
                                        "# the issue's case\ndef test_percentage_coupon_takes")))
    server.route(tool="submit_pr", reply=tool_reply(PR))
    done = agent(["solve", issue(repo), "--auto-approve"], repo, env)
    assert done.returncode == 0, done.stderr + done.stdout
    result = record(repo, only_run(repo), "run_tests")["output"]
    assert result["passed"] and result["resolved_targets"] == {wrong: TARGET}
    assert server.count(tool="submit_fix") == 0


def test_a_target_that_cannot_be_found_is_corrected_by_the_fix_stage(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    ghost = "tests/test_cart.py::test_percent_coupons"
    unknown = {**plan(), "tests": [{"id": ghost, "kind": "existing", "reason": "the bug"}]}
    server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
    server.route(tool="submit_plan", reply=tool_reply(unknown))
    server.route(tool="submit_edits", reply=tool_reply(edits("shopcart/cart.py", BUGGY, FIXED)))
    server.route(tool="submit_fix", reply=tool_reply(
        {"edits": [], "explanation": "the test has another name", "targets": [TARGET]}))
    server.route(tool="submit_pr", reply=tool_reply(PR))
    done = agent(["solve", issue(repo), "--auto-approve"], repo, env)
    assert done.returncode == 0, done.stderr + done.stdout
    run_id = only_run(repo)
    assert record(repo, run_id, "run_tests")["output"]["missing_targets"] == [ghost]
    told = server.find(tool="submit_fix")[0].body["messages"][0]["content"][-1]["text"]
    assert "corrected ids in `targets`" in told
    assert record(repo, run_id, "fix_code")["output"]["targets"] == [TARGET]
    assert record(repo, run_id, "run_tests-2")["output"]["passed"] is True
    assert server.count(tool="submit_fix") == 1


JS_BUG = "  return a - b;\n"
JS_FIX = "  return a + b;\n"


@pytest.mark.skipif(not (shutil.which("node") and shutil.which("npm")), reason="node/npm absent")
def test_a_node_project_gets_per_test_results_and_its_related_tests(
        tmp_path: Path, env: dict, server: FakeAnthropic) -> None:
    repo = tmp_path / "calc"
    files = {
        "package.json": json.dumps({"name": "calc", "version": "1.0.0",
                                    "scripts": {"test": "node --test"}}),
        "src/math.js": f"function add(a, b) {{\n{JS_BUG}}}\nmodule.exports = {{ add }};\n",
        "test/math.test.js": ("const test = require('node:test');\n"
                              "const assert = require('node:assert');\n"
                              "const { add } = require('../src/math.js');\n"
                              "test('adds', () => assert.strictEqual(add(2, 3), 5));\n"
                              "test('adds zero', () => assert.strictEqual(add(2, 0), 2));\n"),
        "test/legacy.test.js": ("const test = require('node:test');\n"
                                "test('is broken', () => { throw new Error('old'); });\n"),
    }
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.com")
    commit(repo, files)
    (tmp_path / "ISSUE.md").write_text("# add() subtracts\n\nadd(2, 3) returns -1 in src/math.js.\n")
    js_plan = {"summary": "Add instead of subtracting.",
               "changes": [{"path": "src/math.js", "action": "modify", "description": "add"}],
               "tests": [{"id": "test/math.test.js::adds", "kind": "existing", "reason": "bug"}]}
    server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
    server.route(tool="submit_plan", reply=tool_reply(js_plan))
    server.route(tool="submit_edits", reply=tool_reply(edits("src/math.js", JS_BUG, JS_FIX)))
    server.route(tool="submit_pr", reply=tool_reply(PR))
    done = agent(["solve", str(tmp_path / "ISSUE.md"), "--auto-approve"], repo, env)
    assert done.returncode == 0, done.stderr + done.stdout
    run_id = only_run(repo)
    baseline = record(repo, run_id, "check_tests")["output"]
    assert baseline["failing"] == ["test/math.test.js::adds"]  # the bug, on the base commit
    result = record(repo, run_id, "run_tests")["output"]
    assert result["passed"] and result["total"] == 2  # legacy.test.js was not selected
    assert [f["path"] for f in result["selection"]["files"]] == ["test/math.test.js"]


def test_inferred_test_files_over_the_budget_are_left_out_and_said_so(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    commit(repo, {"tests/test_totals_slowly.py": (
        "import time\nfrom shopcart.cart import Cart\n\n"
        "def test_a_slow_check_of_totals():\n    time.sleep(8)\n    assert Cart\n")})
    script_happy(server)
    started = time.monotonic()
    first = agent(["solve", issue(repo)], repo, {**env, "AGENT_RELATED_BUDGET": "2"})
    assert first.returncode == 75, first.stderr + first.stdout
    gate = first.stdout.replace("\n", " ")
    assert "left out, over related_budget: tests/test_totals_slowly.py" in gate
    assert "1 inferred file(s) left out" in gate
    done = agent(["approve"], repo, env)
    assert done.returncode == 0, done.stderr + done.stdout
    assert time.monotonic() - started < 30
    result = record(repo, only_run(repo), "run_tests")["output"]
    assert [f["path"] for f in result["selection"]["files"]] == ["tests/test_cart.py"]
    assert "test_totals_slowly" not in result["command"]


def test_a_slow_test_the_change_does_not_touch_runs_once_at_most_its_budget(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    """In the change's own test file, a test past related_budget on the base commit is
    stopped there and left out of the run on the change, unless the change edits it.
    Before: the 20 s test ran whole twice (base and worktree), 40 s of a 45 s run."""
    with (repo / "tests" / "test_cart.py").open("a") as f:
        f.write("\n\ndef test_a_big_cart_slowly():\n    import time\n    time.sleep(20)\n"
                "\n\ndef test_edited_slowly():\n    import time\n    time.sleep(4)\n")
    git(repo, "commit", "-qam", "two slow tests")
    server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
    server.route(tool="submit_plan", reply=tool_reply(plan("shopcart/cart.py", "tests/test_cart.py")))
    server.route(tool="submit_edits", when=write_call_for("tests/test_cart.py"),
                 reply=tool_reply(edits("tests/test_cart.py", "    time.sleep(4)\n",
                                        "    time.sleep(1)\n")))
    server.route(tool="submit_edits", reply=tool_reply(edits("shopcart/cart.py", BUGGY, FIXED)))
    server.route(tool="submit_pr", reply=tool_reply(PR))
    started = time.monotonic()
    first = agent(["solve", issue(repo)], repo, {**env, "AGENT_RELATED_BUDGET": "1.5"})
    assert first.returncode == 75, first.stderr + first.stdout
    assert "2 slow test(s) stopped at related_budget" in first.stdout.replace("\n", " ")
    done = agent(["approve"], repo, env)
    assert done.returncode == 0, done.stderr + done.stdout
    assert time.monotonic() - started < 35  # the 20 s test never ran whole (before: twice)
    run_id = only_run(repo)
    slow, edited = "tests/test_cart.py::test_a_big_cart_slowly", "tests/test_cart.py::test_edited_slowly"
    baseline = record(repo, run_id, "check_tests")["output"]
    assert baseline["selection"]["slow"] == [slow, edited]
    assert baseline["failing"] == [TARGET]  # a stopped test is not a failing one
    result = record(repo, run_id, "run_tests")["output"]
    assert result["passed"] and result["selection"]["slow"] == [slow]
    assert result["command"].endswith(f"--deselect={slow}")
    assert result["total"] == 7  # the 6 of before and the edited one; not the slow one
    shown = agent(["inspect", run_id, "--step", "run_tests"], repo, env).stdout
    assert f"left out {slow}: over related_budget" in shown.replace("\n", "")


def test_the_baseline_runs_while_the_model_plans(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    """The tests related to the exploration's first files run on the base commit while
    the model writes the plan; check_tests then takes them from the cache. Before: the
    2 s test ran after the plan came back, and the gate waited for it."""
    with (repo / "tests" / "test_cart.py").open("a") as f:
        f.write("\n\ndef test_totals_slowly():\n    import time\n    time.sleep(2)\n")
    git(repo, "commit", "-qam", "a slower test")
    server.route(tool="submit_plan", reply=delay(6, tool_reply(plan())))  # the first route wins
    script_happy(server)
    first = agent(["solve", issue(repo)], repo, env)
    assert first.returncode == 75, first.stderr + first.stdout
    run_id = only_run(repo)
    check = record(repo, run_id, "check_tests")
    assert check["output"]["from_cache"] is True, check["output"]["summary"]
    assert check["output"]["total"] == 7 and check["seconds"] < 2  # before: the 2 s test ran here
    assert "baseline: 7 tests, 1 already failing, while the model planned" in \
        first.stdout.replace("\n", " ")
