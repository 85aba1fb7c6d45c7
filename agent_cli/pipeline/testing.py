"""The test stage: which command, in which environment, on which tests, judged how.

Two checkpoints, and a warm-up. While the model plans, `warm_baseline` runs the tests
related to the files the exploration ranked first on the base commit, in the
background, into the baseline cache. `check_tests` runs right after the plan, before
the gate and before any code is written: it selects the tests related to the planned
change and runs them on the base commit (what the warm-up did comes from the cache),
so the gate can say what already fails, and a test command that does not work at all
stops the run here (exit 2), before a fix is ever paid for.
`run_tests` runs the selection (recomputed from the actual change) on the worktree and
judges it against the baseline, which the per-file cache mostly serves.

`test_scope: related` (the default) runs the related test files only (`search/
related.py`); `full` runs them first and, when they pass, the whole suite. Within
the related files, a test that runs past `related_budget` on the base commit is
stopped there and, unless the change edits it or the plan targets it, not run on the
change (`Selection.slow`): sympy's one-minute `test_sqrtdenest3_slow` would otherwise
cost its minute twice for a change that does not touch it. A run that
hits `test_timeout` says so (`TestResult.timeout`): the flow asks a human instead of
paying for a fix, and asking again doubles the timeout (`patience`).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from agent_cli import durable
from agent_cli.errors import AgentError, UsageError
from agent_cli.pipeline import context as ctx
from agent_cli.pipeline.artifacts import (
    CodeChanges,
    ExplorationResult,
    Failure,
    ImplementationPlan,
    RepoRef,
    SelectedTest,
    Selection,
    TestBaseline,
    TestResult,
)
from agent_cli.pipeline.runtime import (
    number_setting,
    rt,
    run_id,
    seconds_setting,
    setting,
    worktree,
)
from agent_cli.search import symbols
from agent_cli.settings import user_config_dir
from agent_cli.workspace import sandbox as sandboxing
from agent_cli.workspace import testrun
from agent_cli.workspace.worktree import files_at, is_tracked


class TestCommandBroken(UsageError):
    """The test command does not work on the base commit: not found, a usage error,
    no test collected. Nothing the model writes can fix that."""

    __test__ = False


# The exploration's first files whose related tests the warm-up runs: the plan changes
# them more often than not (sympy's oracle plans: the first file in 49 of 53).
_WARM_FILES = 3
_warmups: dict[str, threading.Thread] = {}


def warm_baseline(exploration: ExplorationResult, repo: RepoRef) -> None:
    """Start the base commit's run of the tests related to the exploration's first
    files in the background, as `check_tests` would run them (per file, the same
    budgets), so that while the model plans the baseline is being computed, and
    `check_tests` finds most of it in the cache. Nothing depends on it: what it did
    not finish (or chose differently from the plan) `check_tests` runs, and a failure
    here is forgotten. Only while a model plans: a reused plan starts nothing."""
    try:
        command, _ = test_command(repo)
        budget = min(seconds_setting("test_timeout", 900), seconds_setting("related_budget", 15))
        box, agent_dir, key = sandbox(), rt().agent_dir, run_id()
    except (AgentError, OSError):
        return  # check_tests will say what is wrong, with the plan in hand
    root, commit = Path(repo.path), repo.base_commit
    first = [r.path for r in exploration.ranked[:_WARM_FILES]]

    def work() -> None:  # nothing here may touch the run's context: another thread
        try:
            from agent_cli.search.related import related_tests

            in_base = files_at(root, commit)
            code = [p for p in first if p in in_base]
            files = [r.path for r in related_tests(root, commit, code) if r.path in in_base]
            if files and testrun.narrow(command, files, root) is not None:
                testrun.baseline(root, commit, command, agent_dir=agent_dir, timeout=budget,
                                 sandbox=box, files=files, test_budget=budget)
        except Exception:  # noqa: BLE001 - a warm-up: check_tests runs what it did not
            pass

    thread = threading.Thread(target=work, name=f"baseline-warmup-{key}", daemon=True)
    _warmups[key] = thread
    thread.start()


def _await_warmup() -> bool:
    """Let the warm-up finish before running the same files again (it is bounded by
    related_budget per file group); whether there was one."""
    thread = _warmups.pop(run_id(), None)
    if thread is not None:
        thread.join()
    return thread is not None


@durable.checkpoint
def check_tests(plan: ImplementationPlan, repo: RepoRef) -> TestBaseline:
    warmed = _await_warmup()
    command, environment = test_command(repo)
    timeout, box = seconds_setting("test_timeout", 900), sandbox()
    budget = min(timeout, seconds_setting("related_budget", 15))
    in_base = files_at(Path(repo.path), repo.base_commit)
    targets = [t.id for t in plan.tests]
    selection, files = select(repo, command, environment, [c.path for c in plan.changes],
                              targets, exists=in_base.__contains__)
    certain = [f.path for f in selection.files if f.certain]
    inferred = [f.path for f in selection.files if not f.certain]
    runs = [_baseline(repo, command, certain, timeout, box, budget, targets)
            ] if certain or not files else []
    if inferred:  # within the budget: what the base commit does not finish is left out
        runs.append(_baseline(repo, command, inferred, budget, box, budget, targets))
        selection = _leave_out(selection, runs[-1].unfinished, budget)
    slow = [t for run in runs for t in run.over_budget
            if any(t.startswith(f.path + "::") for f in selection.files)]
    if slow:
        selection = selection.model_copy(update={"slow": slow})
    if files and all(_collected_nothing(r) for r in runs):
        selection, files = _widened(selection, command)
        runs = [_baseline(repo, command, [], timeout, box)]
    for run in runs:
        _stop_if_broken(run, "on the base commit", narrowed=bool(files))
    tests = [t for run in runs for t in run.tests]
    failing = [t.id for t in tests if t.outcome in ("failed", "error")]
    timed_out = runs[0].timed_out if runs and (certain or not files) else False
    seconds = sum(r.duration_s for r in runs)
    cached = all(r.from_cache for r in runs)
    return TestBaseline(selection=selection, total=len(tests), failing=failing,
                        timed_out=timed_out, seconds=seconds, from_cache=cached,
                        sandbox=runs[-1].sandbox_detail,
                        summary=_baseline_line(len(tests), failing, timed_out, seconds,
                                               ("while the model planned" if warmed else
                                                "from the cache") if cached else "",
                                               all(r.junit for r in runs), runs[-1].exit_code,
                                               len(selection.left_out), len(selection.slow)))


def _leave_out(selection: Selection, unfinished: list[str], budget: float) -> Selection:
    gone = set(unfinished)
    why = f"left out: the base commit did not finish it within related_budget ({budget:g} s)"
    return selection.model_copy(update={
        "files": [f for f in selection.files if f.path not in gone],
        "left_out": [f.model_copy(update={"reasons": [*f.reasons, why]})
                     for f in selection.files if f.path in gone]})


@durable.checkpoint
def run_tests(changes: CodeChanges, targets: list[str], repo: RepoRef, patience: int = 1,
              left_out: list[str] | None = None) -> TestResult:
    _await_warmup()  # check_tests was reused after a plan that started one
    wt = worktree(repo)
    wt.materialize(changes.diff)
    command, environment = test_command(repo)
    timeout = seconds_setting("test_timeout", 900) * patience
    budget = min(timeout, seconds_setting("related_budget", 15))
    box = sandbox()
    skip = set(left_out or [])  # inferred files check_tests found over the budget
    selection, files = select(repo, command, environment, changes.files, targets,
                              exists=lambda f: (wt.path / f).is_file(), skip=skip)
    before = _baseline(repo, command, files, timeout, box, budget, targets)
    narrowed = testrun.narrow(command, files, wt.path) if files else None
    # Only ids in the selected files: the stream the ids come from is one the tests can write.
    slow = untouched([t for t in before.over_budget if any(t.startswith(f + "::") for f in files)],
                     changes.diff, targets, wt.path)
    if narrowed is not None and slow:
        narrowed = testrun.deselect(narrowed, slow)
        selection = selection.model_copy(update={"slow": slow,
                                                 "command": ctx.shown_command(narrowed)})
    now = _run(wt.path, narrowed or command, timeout, box, "test_process")
    if files and _collected_nothing(now) and _collected_nothing(before):
        selection, files = _widened(selection, command)
        before = _baseline(repo, command, [], timeout, box)
        now = _run(wt.path, command, timeout, box, "test_process")
    _stop_if_broken(before, "on the base commit", narrowed=bool(files))
    if now.exit_code in (126, 127):
        _stop_if_broken(now, "in the worktree")
    verdict = testrun.evaluate(now, before, targets, changes.files)
    if verdict.passed and files and setting("test_scope") == "full":
        before = _baseline(repo, command, [], timeout, box)
        now = _run(wt.path, command, timeout, box, "full_suite_process")
        verdict = testrun.evaluate(now, before, targets, changes.files)
        selection = selection.model_copy(update={
            "command": ctx.shown_command(command),
            "note": "the related tests passed; then the whole suite ran (test_scope: full)"})
    timeout_in = "tests" if now.timed_out else (
        "baseline" if before.timed_out and not verdict.passed else None)
    counted = {t.id for t in verdict.new_failures} | set(verdict.failing_targets)
    durable.emit("tests_finished", key=durable.current_step().key,  # type: ignore[union-attr]
                 passed=verdict.passed, ran=len(now.tests),
                 failed=sum(t.outcome in ("failed", "error") for t in now.tests),
                 counted=len(counted), timed_out=now.timed_out)
    return TestResult(
        passed=verdict.passed, command=selection.command, exit_code=now.exit_code,
        timed_out=now.timed_out, seconds=now.duration_s, total=len(now.tests),
        failures=[Failure(id=t.id, message=(t.message or "")[:4000])
                  for t in now.tests if t.id in counted],
        new_failures=[t.id for t in verdict.new_failures],
        preexisting_failures=verdict.preexisting_failures,
        failing_targets=verdict.failing_targets, missing_targets=verdict.missing_targets,
        summary=verdict.summary, output_tail=now.output_tail[-8000:], sandbox=now.sandbox_detail,
        selection=selection, timeout=timeout_in,  # type: ignore[arg-type]
        baseline_seconds=0.0 if before.from_cache else before.duration_s,
        resolved_targets=verdict.resolved_targets)


def _baseline(repo: RepoRef, command: list[str] | str, files: list[str], timeout: float,
              box: sandboxing.Sandbox, test_budget: float | None = None,
              keep: list[str] | None = None) -> testrun.TestRun:
    return testrun.baseline(Path(repo.path), repo.base_commit, command, agent_dir=rt().agent_dir,
                            timeout=timeout, sandbox=box, files=files or None,
                            on_start=_record_process("baseline_process"),
                            test_budget=test_budget, keep=keep or (),
                            on_progress=_tests_progress("baseline"))


def untouched(slow: list[str], diff: str, targets: list[str], root: Path) -> list[str]:
    """Of the tests stopped at the budget on the base commit, those the change does not
    edit (no changed line inside their definition, or their class's) and the plan does
    not target: what the run on the change leaves out."""
    if not slow:
        return []
    changed = changed_lines(diff)
    touched: dict[str, set[str]] = {}
    for path in {t.split("::", 1)[0] for t in slow} & set(changed):
        try:
            text = (root / path).read_text("utf-8", errors="replace")
        except OSError:
            continue
        defs = symbols.definitions(path, text)
        names = touched.setdefault(path, set())
        for line in changed[path]:
            inner = None
            for row in defs:
                if int(row[2]) <= line <= int(row[3]):
                    inner = str(row[0])  # parents come before children
            if inner:
                names.add(inner)
    out = []
    for test in slow:
        path, _, rest = test.partition("::")
        name = rest.split("[", 1)[0].replace("::", ".")
        edited = any(name == n or name.startswith(n + ".") for n in touched.get(path, ()))
        if not edited and not any(testrun.target_matches(test, t) for t in targets):
            out.append(test)
    return out


def changed_lines(diff: str) -> dict[str, list[int]]:
    """Per file a unified diff changes: the lines of the new file it adds, and the
    line after each place it removes lines."""
    out: dict[str, list[int]] = {}
    lines = diff.splitlines()
    path, line, i = None, 0, 0
    while i < len(lines):
        text = lines[i]
        if text.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            new = lines[i + 1][4:].rstrip("\t")
            path = new[2:] if new.startswith("b/") else None
            i += 2
            continue
        if text.startswith("@@"):
            m = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@", text)
            line = int(m.group(1)) if m else 0
        elif path and line:
            if text.startswith("+"):
                out.setdefault(path, []).append(line)
                line += 1
            elif text.startswith("-"):
                out.setdefault(path, []).append(line)
            elif text.startswith(" "):
                line += 1
        i += 1
    return out


def _run(root: Path, command: list[str] | str, timeout: float, box: sandboxing.Sandbox,
         label: str) -> testrun.TestRun:
    return testrun.run_tests(root, command, timeout=timeout,
                             output_cap=number_setting("test_output_cap", 200_000),
                             sandbox=box, on_start=_record_process(label),
                             on_progress=_tests_progress("worktree"))


def _tests_progress(where: str) -> Callable[[int, int], None]:
    def tell(ran: int, failed: int) -> None:
        durable.progress("tests_progress", where=where, ran=ran, failed=failed)
    return tell


def _collected_nothing(run: testrun.TestRun) -> bool:
    """pytest found no test in the selected files (its exit 5): all deselected by
    the project's options, say. The whole suite is then what can be compared."""
    return testrun.is_pytest(run.command) and run.exit_code == 5 and not run.timed_out


def _widened(selection: Selection, command: list[str] | str) -> tuple[Selection, list[str]]:
    return selection.model_copy(update={
        "command": ctx.shown_command(command), "files": [], "slow": [],
        "note": "the related test files hold no test that runs here: the whole suite runs"}), []


def select(repo: RepoRef, command: list[str] | str, environment: str, changed: list[str],
           targets: list[str], *, exists: Callable[[str], bool],
           skip: set[str] | None = None) -> tuple[Selection, list[str]]:
    """The tests to run for a change: the related test files that `exists`, and the
    command narrowed to them; or the whole suite, saying why. With `test_scope: full`
    the same: `run_tests` runs the whole suite after them, when they pass."""
    from agent_cli.search.related import related_tests

    shown = ctx.shown_command(command)
    scope: Literal["related", "full"] = (
        "full" if setting("test_scope", "related") == "full" else "related")
    related = [r for r in related_tests(Path(repo.path), repo.base_commit, changed, targets)
               if exists(r.path) and (r.certain or r.path not in (skip or ()))]
    files = [r.path for r in related]
    narrowed = testrun.narrow(command, files, Path(repo.path))
    if not files:
        note = "no test file related to the change was found: the whole suite runs"
    elif narrowed is None:
        note, related, files = f"`{shown}` cannot be narrowed to test files: the whole suite runs", [], []
    else:
        note = ""
    return Selection(scope=scope, command=ctx.shown_command(narrowed or command),
                     files=[SelectedTest(path=r.path, reasons=r.reasons, certain=r.certain)
                            for r in related],
                     note=note, environment=environment), files


def test_command(repo: RepoRef) -> tuple[list[str] | str, str]:
    """The test command (configured, or detected at the base commit) and where its
    interpreter comes from."""
    configured = setting("test_cmd")
    if configured:
        return str(configured), "the configured test_cmd"
    root = Path(repo.path)
    detected = testrun.detect_test_command_at(root, repo.base_commit)
    if detected is None:
        raise testrun.TestCommandNotFound(
            f"no test command found at the base commit in {root}",
            hint="start a new run with --test-cmd 'COMMAND' (or test_cmd in .agentrc)")
    if detected[0] != sys.executable:
        return detected, ""
    python, environment = project_environment(rt().repo)
    return [python, *detected[1:]], environment


def project_environment(repo: Path) -> tuple[str, str]:
    """The interpreter that has the project's dependencies, and where it comes from:
    the checkout's own virtualenv, the active one, or (the demo, a project without
    one) the interpreter agent runs on. A virtualenv the repository ships (tracked in
    git) is not the user's: skipped, as the sandbox would make whatever its
    pyvenv.cfg names readable. Nothing from the repository runs here: tools such as
    poetry load plugins from the project they are asked about."""
    noticed = [f"{name} present (not used: the tests run directly)"
               for name in ("tox.ini", "noxfile.py") if (repo / name).is_file()]
    for venv, why in ((repo / ".venv", ".venv in the checkout"), (repo / "venv", "venv in the "
                      "checkout"), (Path(os.environ.get("VIRTUAL_ENV") or "/nonexistent"),
                                    "the active VIRTUAL_ENV")):
        python = venv / "bin" / "python"
        if python.is_file() and not is_tracked(repo, venv):
            return str(python), "; ".join([f"{python} ({why})", *noticed])
    for lock, tool, how in (("poetry.lock", "poetry", "activate its environment (VIRTUAL_ENV) or "
                             "set virtualenvs.in-project"),
                            ("uv.lock", "uv", "run `uv sync` to make .venv")):
        if (repo / lock).is_file():
            noticed.append(f"{lock} present: to test in {tool}'s environment, {how}")
    return sys.executable, "; ".join([f"{sys.executable} (agent's own: no virtualenv found)",
                                      *noticed])


def sandbox() -> sandboxing.Sandbox:
    """The confinement of this run's test commands, from its recorded settings."""
    return sandboxing.Sandbox.from_settings(durable.config(), repo=rt().repo,
                                            hide=(user_config_dir(),), tag=run_id())


def _record_process(label: str) -> Callable[[sandboxing.Process], None]:
    def record(proc: sandboxing.Process) -> None:
        durable.note(**{label: {"pgid": proc.pid, "sandbox": proc.confinement.kind}})
    return record


def _stop_if_broken(run: testrun.TestRun, where: str, *, narrowed: bool = False) -> None:
    why = testrun.broken_command(run, narrowed=narrowed)
    if why is not None:
        raise TestCommandBroken(
            f"the test command does not work {where}: {why}",
            hint=f"fix the command and fork from here: agent replay {run_id()} --from "
            "check_tests --test-cmd 'COMMAND' (or start anew with agent solve --test-cmd)")


def _baseline_line(total: int, failing: list[str], timed_out: bool, seconds: float,
                   cached: str, per_test: bool, exit_code: int, left_out: int,
                   slow: int = 0) -> str:
    took = cached or f"{seconds:.0f} s"  # "from the cache", "while the model planned"
    extra = f"; {left_out} inferred file(s) left out, over related_budget" if left_out else ""
    if slow:
        extra += f"; {slow} slow test(s) stopped at related_budget, left out unless edited"
    if timed_out:
        return f"baseline: timed out after {seconds:.0f} s ({total} tests done){extra}"
    if not per_test:
        return f"baseline: the test command exited {exit_code} ({took}){extra}"
    return f"baseline: {total} tests, {len(failing)} already failing, {took}{extra}"
