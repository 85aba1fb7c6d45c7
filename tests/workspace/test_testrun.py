from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_cli.workspace import (
    TestCase,
    TestCommandNotFound,
    TestRun,
    Worktree,
    baseline,
    detect_test_command,
    evaluate,
    head_commit,
    run_tests,
)
from agent_cli.workspace.sandbox import Sandbox
from tests.workspace.conftest import sh

PYTEST = [sys.executable, "-m", "pytest", "-q"]
# For tests that watch the test processes from outside (their pids, files outside the
# worktree): the unconfined path, where the supervisor (_reaper.py) keeps the lifetime
# rules. tests/workspace/test_sandbox.py covers the same under bubblewrap.
UNCONFINED = Sandbox(mode="off")

CALC = """\
import pytest

def test_ok():
    assert 1 + 1 == 2

def test_bad():
    assert 1 + 1 == 3, "arithmetic is broken"

class TestGroup:
    @pytest.mark.parametrize("value", [1, "a.b"])
    def test_param(self, value):
        assert value != 1

@pytest.mark.skip(reason="later")
def test_later():
    pass
"""

# Appends a line to $SIDE_EFFECT_LOG each time pytest starts, so a test can count runs.
COUNTING_CONFTEST = """\
import os

def pytest_sessionstart(session):
    log = os.environ.get("SIDE_EFFECT_LOG")
    if log:
        with open(log, "a") as f:
            f.write("ran\\n")
"""


@pytest.fixture(autouse=True)
def _no_plugin_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tiny projects need no plugins, and loading the machine's installed ones costs
    # over a second per pytest start.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def project(path: Path, tests: dict[str, str]) -> Path:
    """A tiny pytest project committed in a git repository."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "pytest.ini").write_text("[pytest]\n")
    (path / "conftest.py").write_text(COUNTING_CONFTEST)
    (path / "tests").mkdir(exist_ok=True)
    for name, text in tests.items():
        (path / "tests" / name).write_text(text)
    sh(path, "git", "init", "-q", "-b", "main")
    sh(path, "git", "config", "user.name", "Ada Tester")
    sh(path, "git", "config", "user.email", "ada@example.test")
    sh(path, "git", "add", "-A")
    sh(path, "git", "commit", "-q", "-m", "tests")
    return path


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_passing_and_failing_tests_are_parsed(tmp_path: Path) -> None:
    root = project(tmp_path / "p", {"test_calc.py": CALC})
    run = run_tests(root, PYTEST, timeout=60)

    assert (run.exit_code, run.timed_out, run.collected, run.junit) == (1, False, True, True)
    outcomes = {t.id: t.outcome for t in run.tests}
    assert outcomes == {
        "tests/test_calc.py::test_ok": "passed",
        "tests/test_calc.py::test_bad": "failed",
        "tests/test_calc.py::TestGroup::test_param[1]": "failed",
        "tests/test_calc.py::TestGroup::test_param[a.b]": "passed",
        "tests/test_calc.py::test_later": "skipped",
    }
    bad = next(t for t in run.tests if t.id.endswith("test_bad"))
    assert "arithmetic is broken" in str(bad.message)
    assert "1 failed" in run.output_tail or "2 failed" in run.output_tail
    assert not (root / "tests" / "__pycache__").exists()  # nothing for the diff to pick up


def test_string_command_through_the_shell_still_gets_junit(tmp_path: Path) -> None:
    root = project(tmp_path / "p", {"test_one.py": "def test_one():\n    pass\n"})
    run = run_tests(root, f"echo starting && {sys.executable} -m pytest -q", timeout=60)
    assert run.exit_code == 0 and run.junit
    assert [t.id for t in run.tests] == ["tests/test_one.py::test_one"]
    assert run.output_tail.startswith("starting")


def test_hanging_test_is_stopped_with_its_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    hang = f"""\
import os, subprocess, time

def test_fast():
    pass

def test_hang():
    child = subprocess.Popen(["sleep", "60"])
    with open({str(pids)!r}, "w") as f:
        f.write(f"{{os.getpid()}} {{child.pid}}")
    print("about to hang", flush=True)
    time.sleep(60)
"""
    root = project(tmp_path / "p", {"test_hang.py": hang})
    start = time.monotonic()
    run = run_tests(root, [*PYTEST, "-s"], timeout=2, sandbox=UNCONFINED)
    elapsed = time.monotonic() - start

    assert run.timed_out and not run.collected
    assert elapsed < 8
    assert "about to hang" in run.output_tail
    assert "timed out after 2s" in run.output_tail
    assert all(not alive(int(pid)) for pid in pids.read_text().split())
    verdict = evaluate(run, None, [])
    assert not verdict.passed and "timed out" in verdict.summary


def test_hang_that_ignores_sigint_is_killed(tmp_path: Path) -> None:
    hang = "import signal, time\n\ndef test_stubborn():\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n    time.sleep(60)\n"
    root = project(tmp_path / "p", {"test_stubborn.py": hang})
    start = time.monotonic()
    run = run_tests(root, PYTEST, timeout=1)
    assert run.timed_out and run.exit_code == -9
    assert time.monotonic() - start < 8
    assert not evaluate(run, None, []).passed


def test_collection_error_is_a_failure_with_the_output(tmp_path: Path) -> None:
    root = project(tmp_path / "p", {"test_broken.py": "import no_such_module_here\n"})
    run = run_tests(root, PYTEST, timeout=60)
    assert run.exit_code == 2 and not run.collected
    assert [(t.id, t.outcome) for t in run.tests] == [("tests/test_broken.py", "error")]
    verdict = evaluate(run, None, [])
    assert not verdict.passed
    assert "did not run the tests" in verdict.summary
    assert "no_such_module_here" in verdict.summary


def test_output_is_capped_keeping_head_and_tail(tmp_path: Path) -> None:
    script = "print('START'); [print('x' * 100) for _ in range(5000)]; print('END')"
    run = run_tests(tmp_path, [sys.executable, "-c", script], output_cap=2_000)
    assert run.exit_code == 0 and not run.junit and run.collected
    assert len(run.output_tail) < 2_200
    assert run.output_tail.startswith("START") and run.output_tail.rstrip().endswith("END")
    assert "bytes of output omitted" in run.output_tail


def test_other_runners_are_judged_by_exit_code(tmp_path: Path) -> None:
    failing = run_tests(tmp_path, ["sh", "-c", "echo broken; exit 3"])
    assert (failing.exit_code, failing.tests, failing.junit) == (3, [], False)
    verdict = evaluate(failing, None, ["anything"])
    assert not verdict.passed and "exited 3" in verdict.summary and "broken" in verdict.summary
    assert evaluate(run_tests(tmp_path, "true"), None, ["x"]).passed
    with pytest.raises(TestCommandNotFound):
        run_tests(tmp_path, ["no-such-test-runner-xyz"])


def test_baseline_is_cached_per_commit_and_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = project(tmp_path / "p", {"test_calc.py": CALC})
    log = tmp_path / "runs.log"
    monkeypatch.setenv("SIDE_EFFECT_LOG", str(log))
    agent_dir = repo / ".agent"
    base = head_commit(repo)

    sandbox = Sandbox(mode="off", pass_env=("SIDE_EFFECT_LOG",))
    first = baseline(repo, base, PYTEST, agent_dir=agent_dir, timeout=60, sandbox=sandbox)
    assert log.read_text() == "ran\n"
    second = baseline(repo, base, PYTEST, agent_dir=agent_dir, timeout=60, sandbox=sandbox)
    assert log.read_text() == "ran\n"  # served from the cache: pytest did not start
    assert second.from_cache and not first.from_cache
    assert second.model_copy(update={"from_cache": False}) == first
    assert {t.id for t in first.tests if t.outcome == "failed"} == {
        "tests/test_calc.py::test_bad",
        "tests/test_calc.py::TestGroup::test_param[1]",
    }

    # A crashed process left its baseline worktree behind; the next baseline removes it.
    gone = subprocess.Popen(["true"])
    gone.wait()
    leftover = Worktree.ensure(repo, f"baseline-{base[:12]}-{gone.pid}-abcdef", base)
    baseline(repo, base, [*PYTEST, "-x"], agent_dir=agent_dir, timeout=60, sandbox=sandbox)
    assert log.read_text() == "ran\nran\n"  # another command is another entry
    assert not leftover.path.exists()
    # The temporary worktree is gone, and the user's checkout did not change.
    assert sh(repo, "git", "worktree", "list", "--porcelain").count("worktree ") == 1
    assert list((agent_dir / "worktrees").iterdir()) == []
    assert sh(repo, "git", "status", "--porcelain") == ""


def test_end_to_end_preexisting_failure_ignored_target_must_pass(tmp_path: Path) -> None:
    repo = project(tmp_path / "p", {"test_calc.py": CALC})
    base = head_commit(repo)
    before = baseline(repo, base, PYTEST, agent_dir=repo / ".agent", timeout=60)
    wt = Worktree.ensure(repo, "run1", base)
    (wt.path / "tests" / "test_new.py").write_text("def test_feature():\n    assert True\n")

    run = run_tests(wt.path, PYTEST, timeout=60)
    verdict = evaluate(run, before, ["tests/test_new.py::test_feature"])
    assert verdict.passed, verdict.summary
    assert sorted(verdict.preexisting_failures) == [
        "tests/test_calc.py::TestGroup::test_param[1]",
        "tests/test_calc.py::test_bad",
    ]
    assert "already present on the base commit" in verdict.summary


def case(id: str, outcome: str) -> TestCase:
    return TestCase(id=id, outcome=outcome)  # type: ignore[arg-type]


def junit_run(*tests: TestCase, exit_code: int = 1) -> TestRun:
    return TestRun(
        command=["pytest"],
        exit_code=exit_code,
        timed_out=False,
        duration_s=1.0,
        tests=list(tests),
        output_tail="",
        collected=exit_code in (0, 1),
        junit=True,
    )


def test_evaluate_rules() -> None:
    base = junit_run(case("t.py::old_fail", "failed"), case("t.py::a", "passed"))

    ok = junit_run(case("t.py::old_fail", "failed"), case("t.py::a", "passed"))
    assert evaluate(ok, base, []).passed

    new = junit_run(case("t.py::old_fail", "failed"), case("t.py::a", "error"))
    verdict = evaluate(new, base, [])
    assert not verdict.passed and [t.id for t in verdict.new_failures] == ["t.py::a"]
    assert verdict.preexisting_failures == ["t.py::old_fail"]
    assert "1 new failure(s): t.py::a" in verdict.summary

    # Without a baseline every failure is new.
    assert not evaluate(ok, None, []).passed

    # Targets: node ids, parametrizations, files and directories; missing or failing fails.
    run = junit_run(
        case("tests/t.py::test_a[1]", "passed"),
        case("tests/t.py::test_a[2]", "passed"),
        case("tests/t.py::TestK::test_b", "passed"),
        case("tests/u.py::test_c", "skipped"),
        exit_code=0,
    )
    assert evaluate(
        run, None, ["tests/t.py::test_a", "tests/t.py::TestK", "tests/", "./tests/t.py"]
    ).passed
    verdict = evaluate(
        run, None, ["tests/t.py::test_missing", "tests/u.py::test_c", "tests/t.py::test_"]
    )
    assert not verdict.passed
    assert verdict.missing_targets == ["tests/t.py::test_missing", "tests/t.py::test_"]
    assert verdict.failing_targets == ["tests/u.py::test_c"]

    # A target that already failed on base must pass now: pre-existing is no excuse.
    still = junit_run(case("t.py::old_fail", "failed"))
    verdict = evaluate(still, base, ["t.py::old_fail"])
    assert not verdict.passed and verdict.failing_targets == ["t.py::old_fail"]
    assert verdict.new_failures == []


def test_detect_test_command(tmp_path: Path) -> None:
    def make(name: str, files: dict[str, str]) -> Path:
        d = tmp_path / name
        d.mkdir()
        for f, text in files.items():
            (d / f).write_text(text)
        return d

    assert detect_test_command(make("py", {"pyproject.toml": ""})) == [
        sys.executable,
        "-m",
        "pytest",
    ]
    npm = make("npm", {"package.json": json.dumps({"scripts": {"test": "jest"}})})
    assert detect_test_command(npm) == ["npm", "test"]
    placeholder = {"scripts": {"test": 'echo "Error: no test specified" && exit 1'}}
    assert detect_test_command(make("npm0", {"package.json": json.dumps(placeholder)})) is None
    assert detect_test_command(make("go", {"go.mod": "module x\n"})) == ["go", "test", "./..."]
    assert detect_test_command(make("rs", {"Cargo.toml": "[package]\n"})) == ["cargo", "test"]
    assert detect_test_command(make("none", {"README.md": "hi"})) is None


def test_narrow_appends_test_files_unless_the_command_already_names_some() -> None:
    from agent_cli.workspace.testrun import narrow

    files = ["tests/test_a.py", "tests/test_b.py"]
    assert narrow([*PYTEST], files) == [*PYTEST, *files]
    assert narrow("pytest -x -k 'not slow'", files) == "pytest -x -k 'not slow' tests/test_a.py tests/test_b.py"
    assert narrow("python -m pytest -c setup.cfg", files) is not None  # -c's value is no target
    for named in ("pytest tests/test_a.py", "pytest tests/", "pytest t.py::test_x",
                  "pytest -q && flake8", "tox -e py311", "make test"):
        assert narrow(named, files) is None, named
    assert narrow([*PYTEST, "tests"], []) is None


def test_the_baseline_of_a_selection_is_cached_per_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = project(tmp_path / "p", {"test_a.py": "def test_a():\n    assert False\n",
                                    "test_b.py": "def test_b():\n    pass\n",
                                    "test_c.py": "def test_c():\n    pass\n"})
    log = tmp_path / "runs.log"
    monkeypatch.setenv("SIDE_EFFECT_LOG", str(log))
    box = Sandbox(mode="off", pass_env=("SIDE_EFFECT_LOG",))
    base = head_commit(repo)

    def ask(files: list[str]) -> TestRun:
        return baseline(repo, base, PYTEST, agent_dir=repo / ".agent", timeout=60, sandbox=box,
                        files=files)

    first = ask(["tests/test_a.py", "tests/test_b.py"])
    assert [t.id for t in first.tests] == ["tests/test_a.py::test_a", "tests/test_b.py::test_b"]
    assert log.read_text() == "ran\n" and not first.from_cache
    again = ask(["tests/test_b.py", "tests/test_c.py", "tests/test_new.py"])  # new: not on base
    assert log.read_text() == "ran\nran\n"  # test_c.py only; test_b.py came from the cache
    assert [t.id for t in again.tests] == ["tests/test_b.py::test_b", "tests/test_c.py::test_c"]
    served = ask(["tests/test_a.py", "tests/test_c.py"])
    assert served.from_cache and log.read_text() == "ran\nran\n"
    assert [t.outcome for t in served.tests] == ["failed", "passed"]


def test_a_timed_out_baseline_is_cached_with_its_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = project(tmp_path / "p", {"test_slow.py": "import time\n\ndef test_slow():\n    time.sleep(2)\n"})
    log = tmp_path / "runs.log"
    monkeypatch.setenv("SIDE_EFFECT_LOG", str(log))
    box = Sandbox(mode="off", pass_env=("SIDE_EFFECT_LOG",))
    base = head_commit(repo)

    def ask(timeout: float) -> TestRun:
        return baseline(repo, base, PYTEST, agent_dir=repo / ".agent", timeout=timeout,
                        sandbox=box, files=["tests/test_slow.py"])

    assert ask(1).timed_out and log.read_text() == "ran\n"
    assert ask(1).timed_out and log.read_text() == "ran\n"  # not run blindly again
    longer = ask(10)  # a longer timeout asks anew
    assert not longer.timed_out and log.read_text() == "ran\nran\n"


def test_a_suite_stopped_before_its_report_keeps_the_results_it_had(tmp_path: Path) -> None:
    stubborn = ("import signal, time\n\ndef test_first():\n    pass\n\ndef test_second():\n"
                "    assert 1 == 2\n\ndef test_stuck():\n"
                "    signal.signal(signal.SIGINT, signal.SIG_IGN)\n    time.sleep(60)\n")
    root = project(tmp_path / "p", {"test_stubborn.py": stubborn})
    run = run_tests(root, PYTEST, timeout=3, sandbox=UNCONFINED)
    assert run.timed_out and run.exit_code == -9  # killed: pytest wrote no JUnit report
    assert {t.id: t.outcome for t in run.tests} == {
        "tests/test_stubborn.py::test_first": "passed",
        "tests/test_stubborn.py::test_second": "failed"}
    assert "assert 1 == 2" in (run.tests[1].message or "")


def test_a_target_named_in_another_file_is_found_by_name() -> None:
    current = TestRun(command=PYTEST, exit_code=0, timed_out=False, duration_s=1,
                      tests=[TestCase(id="tests/test_b.py::TestK::test_x[1]", outcome="passed"),
                             TestCase(id="tests/test_b.py::test_y", outcome="passed"),
                             TestCase(id="tests/test_c.py::test_y", outcome="passed")],
                      output_tail="", collected=True, junit=True)
    targets = ["tests/test_a.py::TestK::test_x", "tests/test_a.py::test_y"]
    verdict = evaluate(current, None, targets, ["src/x.py", "tests/test_b.py", "tests/test_c.py"])
    assert verdict.resolved_targets == {"tests/test_a.py::TestK::test_x": "tests/test_b.py::TestK::test_x"}
    assert verdict.missing_targets == ["tests/test_a.py::test_y"]  # two files have it: ambiguous
    assert not verdict.passed
    # A test that only shares the name, in a file the change did not touch, is not it.
    unrelated = evaluate(current, None, targets[:1], ["src/x.py"])
    assert unrelated.missing_targets == targets[:1] and not unrelated.passed


# -- found by review (each failed before its fix) -------------------------------------


def test_a_baseline_that_stopped_early_caches_no_file_it_did_not_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = project(tmp_path / "p", {"test_a.py": "def test_a():\n    assert False\n",
                                    "test_b.py": "def test_b():\n    assert False\n"})
    base = head_commit(repo)
    box = Sandbox(mode="off")
    stop_at_first = [*PYTEST, "-x", "-p", "no:randomly"]
    first = baseline(repo, base, stop_at_first, agent_dir=repo / ".agent", timeout=60,
                     sandbox=box, files=["tests/test_a.py", "tests/test_b.py"])
    assert [t.id for t in first.tests] == ["tests/test_a.py::test_a"]  # -x stopped there
    later = baseline(repo, base, stop_at_first, agent_dir=repo / ".agent", timeout=60,
                     sandbox=box, files=["tests/test_b.py"])
    assert not later.from_cache  # not served as "no failure"
    assert [(t.id, t.outcome) for t in later.tests] == [("tests/test_b.py::test_b", "failed")]


def test_inherited_tests_keep_the_file_that_runs_them(tmp_path: Path) -> None:
    root = project(tmp_path / "p", {
        "base.py": "class Base:\n    def test_value(self):\n        assert self.value == 1\n",
        "test_a.py": "from tests.base import Base\n\nclass TestA(Base):\n    value = 1\n",
        "test_b.py": "from tests.base import Base\n\nclass TestB(Base):\n    value = 2\n"})
    (root / "tests" / "__init__.py").write_text("")
    run = run_tests(root, PYTEST, timeout=60, sandbox=UNCONFINED)
    assert {t.id: t.outcome for t in run.tests} == {"tests/test_a.py::TestA::test_value": "passed",
                                                    "tests/test_b.py::TestB::test_value": "failed"}


def test_only_a_command_that_did_not_run_is_broken() -> None:
    from agent_cli.workspace.testrun import broken_command

    def run(exit_code: int, tail: str, tests: list[TestCase] = ()) -> TestRun:
        return TestRun(command=PYTEST, exit_code=exit_code, timed_out=False, duration_s=1,
                       tests=list(tests), output_tail=tail, collected=exit_code in (0, 1),
                       junit=bool(tests))

    failing = [TestCase(id="t.py::test_fetch", outcome="failed", message="404: Not Found")]
    assert broken_command(run(1, "E  HTTPError 404: Not Found", failing)) is None
    assert broken_command(run(127, "sh: 1: pytset: not found")) is not None
    assert broken_command(run(5, "no tests ran")) is not None  # the whole suite: nothing
    assert broken_command(run(5, "no tests ran"), narrowed=True) is None  # a few files: fine
    assert broken_command(run(4, "ERROR: usage"), narrowed=True) is not None


def test_a_stream_a_test_tampered_with_is_read_safely(tmp_path: Path) -> None:
    from agent_cli.workspace.testrun import _parse_stream

    stream = tmp_path / "stream.jsonl"
    lines = ['{"id": "t.py::a", "when": "call", "outcome": "failed", "message": 123}',
             '{"id": "t.py::b", "when": "call", "outcome": "failed", "message": "' + "x" * 100_000 + '"}',
             '{"id": ["t.py::c"], "when": "call"}', "not json", '{"when": "call"}']
    stream.write_text("\n".join(lines) + "\n" + "z" * (20 << 20))
    found = {t.id: t for t in _parse_stream(stream)[0] or []}
    assert set(found) == {"t.py::a", "t.py::b"}
    assert found["t.py::a"].message == "123" and len(found["t.py::b"].message or "") <= 4_100


def test_the_baseline_cache_knows_what_the_tests_could_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = project(tmp_path / "p", {"test_a.py": "def test_a():\n    pass\n"})
    base = head_commit(repo)

    def ask(box: Sandbox) -> TestRun:
        return baseline(repo, base, PYTEST, agent_dir=repo / ".agent", timeout=60, sandbox=box,
                        files=["tests/test_a.py"])

    monkeypatch.setenv("PGHOST", "db1")
    assert not ask(Sandbox(mode="off", pass_env=("PGHOST",))).from_cache
    assert ask(Sandbox(mode="off", pass_env=("PGHOST",))).from_cache
    assert not ask(Sandbox(mode="off", pass_env=("PGHOST",), read_paths=("/opt",))).from_cache
    monkeypatch.setenv("PGHOST", "db2")  # another value of a passed variable
    assert not ask(Sandbox(mode="off", pass_env=("PGHOST",))).from_cache


def test_a_runners_results_come_from_its_whole_output_and_new_files_need_no_baseline(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `go` on PATH that prints test2json events: 400 KB of passing tests with one
    failure in the middle, which the 200 KB display tail drops."""
    fake = tmp_path / "bin" / "go"
    fake.parent.mkdir()
    fake.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        "def ev(a, p, t): print(json.dumps({'Action': a, 'Package': p, 'Test': t}))\n"
        "for i in range(2000): ev('pass', 'example.com/m/b', f'TestB{i:04d}' + 'x' * 150)\n"
        "ev('fail', 'example.com/m/c', 'TestNewBreak')\n"
        "for i in range(2000): ev('pass', 'example.com/m/d', f'TestD{i:04d}' + 'x' * 150)\n"
        "sys.exit(1)\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    root = tmp_path / "m"
    root.mkdir()
    (root / "go.mod").write_text("module example.com/m\n\ngo 1.19\n")
    run = run_tests(root, ["go", "test", "./..."], timeout=60, sandbox=UNCONFINED)
    assert len(run.output_tail) < 250_000 and "TestNewBreak" not in run.output_tail
    assert [t.id for t in run.tests if t.outcome == "failed"] == ["c::TestNewBreak"]

    repo = project(tmp_path / "p", {})
    ran = baseline(repo, head_commit(repo), ["go", "test", "./..."], agent_dir=repo / ".agent",
                   timeout=60, sandbox=UNCONFINED, files=["e/e_test.go"])  # a new file
    assert ran.tests == [] and ran.duration_s == 0.0 and "nothing to compare" in ran.output_tail


SLOW_TESTS = """\
import time

def test_fast():
    pass

def test_slow_and_stubborn():
    try:
        time.sleep(30)
    except Exception:  # the budget is not an Exception: this cannot swallow it
        pass

def test_kept():
    time.sleep(0.8)
"""


def test_a_test_past_its_budget_is_stopped_and_named_unless_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_cli.workspace.testrun import _within_budget

    repo = project(tmp_path / "p", {"test_slow.py": SLOW_TESTS})
    log = tmp_path / "runs.log"
    monkeypatch.setenv("SIDE_EFFECT_LOG", str(log))
    box = Sandbox(mode="off", pass_env=("SIDE_EFFECT_LOG",))
    base = head_commit(repo)
    slow, kept = "tests/test_slow.py::test_slow_and_stubborn", "tests/test_slow.py::test_kept"

    def ask(budget: float | None, keep: tuple[str, ...] = (kept,)) -> TestRun:
        return baseline(repo, base, PYTEST, agent_dir=repo / ".agent", timeout=60, sandbox=box,
                        files=["tests/test_slow.py"], test_budget=budget, keep=keep)

    started = time.monotonic()
    first = ask(0.5)
    assert time.monotonic() - started < 15  # not the 30 s sleep
    assert first.over_budget == [slow] and not first.timed_out
    assert {t.id: t.outcome for t in first.tests} == {
        "tests/test_slow.py::test_fast": "passed", kept: "passed"}  # kept ran past 0.5 s
    assert ask(0.5).from_cache and ask(0.3).from_cache  # no more patience asked
    assert log.read_text().count("ran") == 1
    assert ask(1.0).over_budget == [slow]  # more patience: asked anew
    assert log.read_text().count("ran") == 2
    entry = {"over_budget": [slow], "budget": 1.0}
    assert _within_budget(entry, 0.5, ()) and not _within_budget(entry, None, ())
    assert not _within_budget(entry, 0.5, ("tests/test_slow.py",))  # to be kept whole: asked anew
    assert _within_budget({"over_budget": []}, None, ())


def test_the_budget_stops_nothing_without_the_stream_or_for_the_run_on_the_change(
        tmp_path: Path) -> None:
    repo = project(tmp_path / "p", {"test_slow.py": "import time\n\ndef test_s():\n    time.sleep(1.2)\n"})
    run = run_tests(repo, PYTEST + ["tests"], sandbox=UNCONFINED)
    assert run.over_budget == [] and [t.outcome for t in run.tests] == ["passed"]
    stopped = run_tests(repo, PYTEST + ["tests"], sandbox=UNCONFINED, test_budget=0.3)
    assert stopped.over_budget == ["tests/test_slow.py::test_s"] and stopped.tests == []
    as_text = run_tests(repo, f"{sys.executable} -m pytest -q tests", sandbox=UNCONFINED,
                        test_budget=0.3)  # the user's own command line: no plugin, no budget
    assert as_text.over_budget == [] and [t.outcome for t in as_text.tests] == ["passed"]
