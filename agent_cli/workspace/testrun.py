"""Running a project's tests in a worktree, and judging the result against a baseline.

`run_tests` starts the command through `sandbox.Sandbox.start`, the one door for
project code (confinement, an allowlisted environment, nothing outliving the agent).
On timeout the command's group first gets SIGINT, which makes pytest print where it
was stuck and write its report, then everything is killed after a short grace.
Output is read by a thread into a buffer that keeps the head and the tail and counts
what it dropped, so a suite printing gigabytes costs a bounded amount of memory.

For pytest, per-test results come from JUnit XML (`--junitxml` into a temporary
file, `junit_family=xunit1` so each case carries its `file`), or, when a stopped run
wrote none, from a plugin that streamed each result as it was known. Node ids are
rebuilt as pytest prints them: `file::Class::name[params]`. Go, Cargo, Jest, Vitest
and `node --test` report through `runners.py`; other commands are judged by their
exit code only.

A test suite can already fail on the base commit. `baseline` runs the same command
on the base in a throwaway worktree (cached per commit and command, as JSON) and
`evaluate` counts only failures that the baseline did not have. The plan's target
tests are stricter: each must exist in the current run and pass.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, ClassVar, Literal
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, ValidationError

from agent_cli.cache import open_cache
from agent_cli.workspace._git import clean_env
from agent_cli.workspace.errors import TestCommandNotFound, WorkspaceError
from agent_cli.workspace.results import TestCase
from agent_cli.workspace.runners import runner_for
from agent_cli.workspace.sandbox import Confinement, Process, Sandbox
from agent_cli.workspace.worktree import Worktree, files_at, repo_root, resolve_commit

_KILL_GRACE_S = 3.0
_MESSAGE_CAP = 4_000
_WHOLE_CAP = 64 << 20  # output kept whole for a runner's parser; past it: exit code only
_STREAM_CAP = 16 << 20  # of pytest results streamed by the plugin
_BASELINE_SCHEMA = 2
_FAILING = ("failed", "error")
_PYTEST_NOT_RUN = {
    2: "interrupted (usually errors while collecting tests)",
    3: "internal error",
    4: "command line usage error",
    5: "no tests were collected",
}


class TestRun(BaseModel):
    """One execution of the test command."""

    __test__: ClassVar[bool] = False
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    command: list[str] | str
    """The command as given (a string runs through `sh -c`)."""
    exit_code: int
    """The process's exit status; negative for a signal (e.g. -9 after a timeout kill)."""
    timed_out: bool
    """The command ran past its timeout and its process group was stopped."""
    duration_s: float
    """Wall-clock seconds."""
    tests: list[TestCase] = []
    """Per-test results (pytest only; empty for other runners or when no report came)."""
    output_tail: str
    """Combined stdout+stderr, capped: the head and the tail, with a marker between."""
    collected: bool
    """The runner got as far as running tests: for pytest, exit code 0 or 1 (2-5 mean
    collection errors, interruption, usage error or no tests); for other runners, the
    command finished within its timeout."""
    junit: bool = False
    """`tests` are per-test results (a JUnit report, pytest's stream, another runner's
    report), so new failures can be told from old ones."""
    sandbox: Literal["bwrap", "none"] = "none"
    """What confined the command: bubblewrap, or nothing (see `sandbox_detail`)."""
    sandbox_detail: str = ""
    """One line on the confinement, e.g. `UNCONFINED: bwrap not found; install ...`."""
    from_cache: bool = False
    """A baseline served from the cache (nothing ran now)."""
    unfinished: list[str] = []
    """Of a baseline's selected files, those a timeout cut short or kept from running."""
    over_budget: list[str] = []
    """Tests stopped at the per-test budget (`test_budget`; pytest with the detected
    command): their outcome is unknown, and they are not in `tests`."""


class TestVerdict(BaseModel):
    """Whether the current run counts as passing, and why."""

    __test__: ClassVar[bool] = False
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    passed: bool
    """No new failure, no timeout, the tests ran, and every target test ran and passed."""
    new_failures: list[TestCase] = []
    """Failing now and not failing on the base commit."""
    preexisting_failures: list[str] = []
    """Ids failing now that already failed on the base commit (not held against us)."""
    missing_targets: list[str] = []
    """Target tests (node ids, files or directories) that matched no test in this run."""
    failing_targets: list[str] = []
    """Target tests that ran but failed, errored, or were only skipped."""
    resolved_targets: dict[str, str] = {}
    """Targets not found as named but found, by name, in another file: target -> test id."""
    summary: str
    """One or a few lines for people and for the model."""


# -- detection -----------------------------------------------------------------------


def detect_test_command(root: Path) -> list[str] | None:
    """The usual test command for the project at `root`, or None if it is not recognised."""
    root = Path(root)
    python_markers = (
        "pyproject.toml",
        "setup.py",
        "setup.cfg",
        "pytest.ini",
        "tox.ini",
        "conftest.py",
    )
    if any((root / m).is_file() for m in python_markers) or _has_python_tests(root):
        return [sys.executable, "-m", "pytest"]
    package = root / "package.json"
    if package.is_file() and _has_npm_test(package):
        return ["npm", "test"]
    if (root / "go.mod").is_file():
        return ["go", "test", "./..."]
    if (root / "Cargo.toml").is_file():
        return ["cargo", "test"]
    return None


_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "pytest.ini", "tox.ini", "conftest.py",
            "package.json", "go.mod", "Cargo.toml")


def detect_test_command_at(repo: Path, commit: str) -> list[str] | None:
    """`detect_test_command` for the tree of `commit` (what a run's worktree will
    hold), not for the working tree, which may have untracked files. Only the files
    detection looks at are copied out, into a scratch directory."""
    listed = subprocess.run(["git", "ls-tree", "-r", "--name-only", "-z", commit], cwd=repo,
                            capture_output=True, check=False, env=clean_env())
    names = [n for n in listed.stdout.decode("utf-8", "replace").split("\0") if n]
    wanted = [n for n in names if n in _MARKERS or (
        n.count("/") <= 1 and n.rsplit("/", 1)[-1].endswith(".py")
        and n.split("/")[0] in (n, "tests", "test"))]
    with tempfile.TemporaryDirectory(prefix="agent-detect-") as tmp:
        for name in wanted:
            blob = subprocess.run(["git", "show", f"{commit}:{name}"], cwd=repo,
                                  capture_output=True, check=False, env=clean_env()).stdout
            target = Path(tmp) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
        return detect_test_command(Path(tmp))


def _has_python_tests(root: Path) -> bool:
    for where in (root, root / "tests", root / "test"):
        if where.is_dir() and (any(where.glob("test_*.py")) or any(where.glob("*_test.py"))):
            return True
    return False


def _has_npm_test(package: Path) -> bool:
    try:
        script = json.loads(package.read_text()).get("scripts", {}).get("test")
    except (ValueError, OSError, AttributeError):
        return False
    # `npm init` writes a placeholder test script that always fails.
    return bool(script) and "no test specified" not in script


# -- running -------------------------------------------------------------------------


def is_pytest(command: list[str] | str) -> bool:
    """Whether the command runs pytest (`pytest ...`, `python -m pytest`, `uv run pytest`)."""
    if isinstance(command, str):
        try:
            argv = shlex.split(command)
        except ValueError:
            argv = command.split()
    else:
        argv = command
    names = [Path(a).name for a in argv]
    if any(n in ("pytest", "py.test") for n in names):
        return True
    return any(a == "-m" and b == "pytest" for a, b in itertools.pairwise(argv))


def run_tests(
    root: Path,
    command: list[str] | str,
    *,
    timeout: float = 900,
    output_cap: int = 200_000,
    sandbox: Sandbox | None = None,
    on_start: Callable[[Process], None] | None = None,
    test_budget: float | None = None,
    keep: Sequence[str] = (),
    on_progress: Callable[[int, int], None] | None = None,
) -> TestRun:
    """Run `command` in `root` through `sandbox` and collect the result. Never raises
    for a failing or hanging suite (that is a `TestRun`); raises `TestCommandNotFound`
    when the program does not exist. `on_start` learns the process as soon as it runs
    (the pipeline records its group id); `on_progress(ran, failed)` hears how many
    tests have finished, as pytest streams them (other runners: not at all). With
    `test_budget` (seconds; pytest run as a list of words, the detected command) a
    test body running longer is stopped and listed in `over_budget`, unless `keep`
    names it."""
    root = Path(root)
    if not root.is_dir():
        raise WorkspaceError(f"cannot run tests: {root} is not a directory")
    sandbox = sandbox or Sandbox()
    pytest = is_pytest(command)
    runner = None if pytest else runner_for(command, root)
    with tempfile.TemporaryDirectory(prefix="agent-tests-") as tmp:
        scratch = Path(tmp)
        instrumented, runner_env = runner.instrument(command, scratch) if runner else (command, {})
        argv, env = _prepare(root, instrumented, scratch if pytest else None, sandbox)
        if pytest and test_budget and "AGENT_PYTEST_STREAM" in env:
            env["AGENT_PYTEST_BUDGET"] = f"{test_budget:g}"
            env["AGENT_PYTEST_KEEP"] = "\n".join(k for k in keep if "\n" not in k)
        for name, value in runner_env.items():  # NODE_OPTIONS: after what the user passes
            env[name] = f"{os.environ[name]} {value}" if (
                name in sandbox.pass_env and os.environ.get(name)) else value
        start = time.monotonic()
        proc = _start(sandbox, argv, root, scratch, env)
        if on_start is not None:
            on_start(proc)
        # Outside the sandbox (its /tmp is private) and unlinked: no test can touch it.
        with tempfile.TemporaryFile() as whole:
            counter = _Counter(scratch / "stream.jsonl", on_progress) if (
                pytest and on_progress is not None) else None
            exit_code, timed_out, output, complete = _execute(
                proc, timeout, output_cap, whole if runner else None,
                counter.poll if counter else None)
            if counter is not None:
                counter.poll()
            duration = time.monotonic() - start
            tests, over_budget = None, []
            if pytest:  # pytest's exact node ids as streamed; else its JUnit report
                tests, over_budget = _parse_stream(scratch / "stream.jsonl")
                if tests is None and not over_budget:
                    tests = _parse_junit(scratch / "junit.xml", root)
            elif runner is not None and complete:  # a cut output could hide a failure
                whole.seek(0)
                tests = runner.results(whole.read().decode("utf-8", "replace"), scratch, root)
    if timed_out:
        output += f"\n[agent] timed out after {timeout:g}s; the test process group was stopped\n"
    collected = not timed_out and (exit_code in (0, 1) if pytest else True)
    return TestRun(
        command=command,
        exit_code=exit_code,
        timed_out=timed_out,
        duration_s=round(duration, 3),
        tests=tests or [],
        output_tail=output,
        collected=collected,
        junit=tests is not None,
        sandbox=proc.confinement.kind,
        sandbox_detail=proc.confinement.detail,
        over_budget=over_budget,
    )


def _prepare(
    root: Path, command: list[str] | str, reports: Path | None, sandbox: Sandbox
) -> tuple[list[str], dict[str, str]]:
    """The argv and what the runner adds to the sandbox's environment allowlist; the
    user's PYTHONPATH and PYTEST_ADDOPTS count only when listed in `test_env`. With
    `reports` (pytest), the run writes a JUnit report there and, for a command given
    as a list (ours: the detected one), streams each result as it is known."""
    passed = {k: os.environ.get(k, "") for k in ("PYTHONPATH", "PYTEST_ADDOPTS")
              if k in sandbox.pass_env}
    junit_args = (["-o", "junit_family=xunit1", f"--junitxml={reports / 'junit.xml'}"]
                  if reports else [])
    extra = {
        # Unbuffered, so a test killed mid-way still shows what it printed; and no
        # bytecode files, which would otherwise land in the worktree's diff.
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    paths = [passed.get("PYTHONPATH", "")]
    src = root / "src"
    if src.is_dir() and any(src.glob("*/__init__.py")):
        # A src-layout project installed editable from the user's checkout would be
        # imported from there, not from the worktree, and the tests would test the
        # user's code instead of ours.
        paths.insert(0, str(src.resolve()))
    if isinstance(command, str):
        if junit_args:
            # The command may chain several programs; pytest reads PYTEST_ADDOPTS
            # wherever in the chain it runs.
            addopts = passed.get("PYTEST_ADDOPTS", "")
            extra["PYTEST_ADDOPTS"] = f"{addopts} {shlex.join(junit_args)}".strip()
        if any(paths):
            extra["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        return ["/bin/sh", "-c", command], extra
    if not command:
        raise TestCommandNotFound("the test command is empty", hint="pass --test-cmd")
    stream_args: list[str] = []
    if reports:
        shutil.copyfile(Path(__file__).with_name("_pytest_stream.py"),
                        reports / "agent_pytest_stream.py")
        extra["AGENT_PYTEST_STREAM"] = str(reports / "stream.jsonl")
        paths.append(str(reports))
        stream_args = ["-p", "agent_pytest_stream"]
    if any(paths):
        extra["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return [*command, *junit_args, *stream_args], extra


def _start(sandbox: Sandbox, argv: list[str], root: Path, scratch: Path,
           env: dict[str, str]) -> Process:
    try:
        return sandbox.start(argv, cwd=root, writable=[scratch], env=env)
    except (FileNotFoundError, PermissionError) as exc:
        raise TestCommandNotFound(
            f"cannot run the test command {shlex.join(argv)}: {exc.strerror}",
            hint="install it, or pass the right one with --test-cmd",
        ) from exc


def _execute(proc: Process, timeout: float, cap: int, whole: IO[bytes] | None = None,
             tick: Callable[[], None] | None = None) -> tuple[int, bool, str, bool]:
    """(exit code, timed out, the capped output, whether `whole` got all of it).
    `tick` is called about twice a second while the command runs."""
    buffer = _CappedBuffer(cap, whole)
    reader = threading.Thread(target=buffer.drain, args=(proc.popen.stdout,), daemon=True)
    reader.start()
    timed_out = False
    try:
        try:
            _wait(proc, timeout, tick)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.interrupt()
            try:
                proc.popen.wait(timeout=_KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.popen.wait()
    except BaseException:
        # Ctrl-C, SIGTERM or a crash of ours: do not leave the suite running behind us.
        proc.kill()
        proc.popen.wait()
        raise
    finally:
        # Stragglers (servers, sleeping children) hold the pipe open and would keep
        # running; the group id stays reserved while any member lives, so this is safe.
        proc.kill()
        proc.close()
    reader.join(timeout=5)
    return proc.popen.returncode, timed_out, buffer.text(), buffer.whole_complete


def _wait(proc: Process, timeout: float, tick: Callable[[], None] | None) -> None:
    if tick is None:
        proc.popen.wait(timeout=timeout)
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            proc.popen.wait(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
            return
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                raise
            tick()


class _Counter:
    """Counts the tests that finished (and failed) so far from the lines the pytest
    plugin streams, reading only what was appended since the last poll. For the eyes
    only: the tests can write that file too, and the verdict never comes from here."""

    def __init__(self, path: Path, report: Callable[[int, int], None]) -> None:
        self.path, self.report = path, report
        self.offset, self.rest = 0, b""
        self.ran: set[str] = set()
        self.failed: set[str] = set()
        self.said = (0, 0)

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read(1 << 20)
        except OSError:
            return
        self.offset += len(chunk)
        lines = (self.rest + chunk).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            try:
                item = json.loads(line)
                test_id, when, outcome = str(item["id"]), item["when"], item["outcome"]
            except (ValueError, KeyError, TypeError):
                continue
            if when == "call" or outcome != "passed":  # a failed setup decides the test too
                self.ran.add(test_id)
            if outcome == "failed":
                self.failed.add(test_id)
        counts = (len(self.ran), len(self.failed))
        if counts != self.said:
            self.said = counts
            self.report(*counts)


class _CappedBuffer:
    """Keeps the first quarter and the last three quarters of `cap` bytes: the start
    shows collection problems, the end shows pytest's summary. With `whole`, also
    copies every byte there up to `_WHOLE_CAP`, for parsers that need all of it (a
    Go package's results can sit in the middle that the display drops)."""

    def __init__(self, cap: int, whole: IO[bytes] | None = None) -> None:
        self.head_cap = max(cap // 4, 0)
        self.tail_cap = max(cap - self.head_cap, 0)
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0
        self.whole = whole
        self.whole_size = 0
        self.whole_complete = True

    def drain(self, stream) -> None:  # type: ignore[no-untyped-def]
        fd = stream.fileno()
        while chunk := os.read(fd, 65536):
            self.add(chunk)
        stream.close()

    def add(self, chunk: bytes) -> None:
        if self.whole is not None and self.whole_complete:
            if self.whole_size + len(chunk) > _WHOLE_CAP:
                self.whole_complete = False
            else:
                self.whole.write(chunk)
                self.whole_size += len(chunk)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        excess = len(self.tail) - self.tail_cap
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    def text(self) -> str:
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        if self.dropped:
            return f"{head}\n[... {self.dropped} bytes of output omitted ...]\n{tail}"
        return head + tail


# -- JUnit XML -----------------------------------------------------------------------

_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


def _parse_junit(path: Path, root: Path) -> list[TestCase] | None:
    # The report's directory is writable by the tests: a link planted there must not
    # make us read (and show the model) a file the sandbox hides.
    data = _read_report(path, _STREAM_CAP * 4)
    if data is None:
        return None
    try:
        tree = ET.ElementTree(ET.fromstring(data))
    except ET.ParseError:
        return None  # pytest killed while writing: judge by exit code and output
    by_id: dict[str, TestCase] = {}
    for case in tree.iter("testcase"):
        test_id = _node_id(case.get("classname", ""), case.get("name", ""), case.get("file"), root)
        outcome, message = "passed", None
        for tag, name in (("error", "error"), ("failure", "failed"), ("skipped", "skipped")):
            child = case.find(tag)
            if child is not None:
                outcome, message = name, _message(child)
                break
        prior = by_id.get(test_id)
        # pytest reports a test twice when its call fails and its teardown errors.
        if prior is None or _RANK[outcome] > _RANK[prior.outcome]:
            by_id[test_id] = TestCase(id=test_id, outcome=outcome, message=message)  # type: ignore[arg-type]
    return list(by_id.values())


def _parse_stream(path: Path) -> tuple[list[TestCase] | None, list[str]]:
    """Results from `_pytest_stream.py`'s lines, as JUnit would give them: a failed or
    skipped setup decides the test; else its call, made worse by a failing teardown.
    A test whose call never reported (stopped mid-way) is left out, not passed; one
    stopped at the per-test budget is listed apart. (None when there are no results,
    the tests stopped at the budget.)"""
    data = _read_report(path, _STREAM_CAP)
    if data is None:
        return None, []
    phases: dict[str, dict[str, tuple[str, str | None]]] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        try:  # the tests can write this file too: take nothing on trust
            item = json.loads(line)
            message = item.get("message")
            phases.setdefault(str(item["id"]), {})[str(item["when"])] = (
                str(item["outcome"]), _cap(str(message)) if message else None)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a line cut by the stop, or not ours
    out, stopped = [], []
    for test_id, seen in phases.items():
        if seen.get("budget", ("",))[0] == "over_budget" and "collect" not in seen:
            stopped.append(test_id)
            continue
        decided = _decide(seen)
        if decided is not None:
            out.append(TestCase(id=test_id, outcome=decided[0], message=decided[1]))  # type: ignore[arg-type]
    return (out if out or stopped else None), stopped


def _read_report(path: Path, cap: int) -> bytes | None:
    """A report file the tests could also have written: a regular file, not followed
    through a link, at most `cap` bytes of it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        return f.read(cap)


def _cap(text: str) -> str:
    if len(text) <= _MESSAGE_CAP:
        return text
    keep = _MESSAGE_CAP // 4
    return f"{text[:keep]}\n[...]\n{text[-(_MESSAGE_CAP - keep):]}"


def _decide(seen: dict[str, tuple[str, str | None]]) -> tuple[str, str | None] | None:
    setup, call, teardown = seen.get("setup"), seen.get("call"), seen.get("teardown")
    if "collect" in seen:
        return "error", seen["collect"][1]
    if setup is not None and setup[0] != "passed":
        return ("skipped" if setup[0] == "skipped" else "error"), setup[1]
    if call is None:
        return None
    if teardown is not None and teardown[0] == "failed":
        return "error", teardown[1]
    return (call[0] if call[0] in ("passed", "failed", "skipped") else "failed"), call[1]


def _message(element: ET.Element) -> str | None:
    parts = [p for p in (element.get("message"), (element.text or "").strip()) if p]
    return _cap("\n".join(parts)) or None


def _node_id(classname: str, name: str, file: str | None, root: Path) -> str:
    """Rebuild pytest's node id from a JUnit testcase.

    pytest writes classname = the file's path, dotted and without `.py`, then the
    classes; name = function name with its `[params]`. With xunit1 it also writes
    `file`, which removes the guesswork of where the module path ends."""
    file = file.replace("\\", "/") if file else None
    if not classname:
        # A collection error: name is the dotted module path.
        return file or _dotted_to_file(name, root)[0]
    if file:
        module = file.removesuffix(".py")
        dotted = module.replace("/", ".")
        if classname == dotted:
            return f"{file}::{name}"
        if classname.startswith(dotted + "."):
            classes = classname[len(dotted) + 1 :].split(".")
            return "::".join([file, *classes, name])
        return f"{file}::{name}"
    path, classes = _dotted_to_file(classname, root)
    return "::".join([path, *classes, name])


def _dotted_to_file(dotted: str, root: Path) -> tuple[str, list[str]]:
    """Split `tests.test_x.TestK` into (`tests/test_x.py`, [`TestK`]) by finding the
    longest prefix that is a file under root."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        candidate = "/".join(parts[:k]) + ".py"
        if (root / candidate).is_file():
            return candidate, parts[k:]
    return "/".join(parts) + ".py", []


# -- baseline and verdict --------------------------------------------------------------


def baseline(
    repo: Path,
    base_commit: str,
    command: list[str] | str,
    *,
    agent_dir: Path,
    timeout: float = 900,
    sandbox: Sandbox | None = None,
    on_start: Callable[[Process], None] | None = None,
    files: list[str] | None = None,
    test_budget: float | None = None,
    keep: Sequence[str] = (),
    on_progress: Callable[[int, int], None] | None = None,
) -> TestRun:
    """The test command's result on the base commit, run in a temporary worktree that
    is removed afterwards, through the same sandbox as the run's tests.

    Cached under `agent_dir/cache/baselines` per (commit, command, confinement), and
    with `files` (the test files a run selected; pytest only) per file: the command
    runs on those of them the base commit has that no earlier baseline ran, and a
    later selection re-runs only files it has not seen. A run that timed out is
    cached too, with its timeout: the same question is not asked again for another
    15 minutes, and a longer timeout asks it anew. A command that did not work at all
    (`broken_command`) is not cached.

    `test_budget` and `keep` (per-file pytest baselines only) stop a test running
    longer than the budget, as `run_tests` does. A file's entry with such tests serves
    a later call only if that call allows no more time per test and keeps none of
    them: a question asked with more patience is asked anew."""
    root = repo_root(repo)
    commit = resolve_commit(root, base_commit)
    budget = test_budget if files is not None else None
    sandbox = sandbox or Sandbox()
    confinement = sandbox.confinement()
    # What can change a test's outcome: its confinement, the paths it may read, and the
    # variables it gets (their values as a digest: the key is stored).
    passed = json.dumps({k: os.environ.get(k) for k in sorted(sandbox.pass_env)})
    key = ["test-baseline", _BASELINE_SCHEMA, commit, command, confinement.kind,
           confinement.network, sorted(sandbox.read_paths),
           hashlib.sha256(passed.encode()).hexdigest()]

    def fresh(command: list[str] | str) -> TestRun:
        _remove_abandoned_baselines(root)
        # The pid in the name lets a later call tell a crashed run's leftover from a
        # baseline that another live process is computing right now.
        wt = Worktree.ensure(root, f"baseline-{commit[:12]}-{os.getpid()}-{uuid4().hex[:6]}",
                             commit)
        try:
            return run_tests(wt.path, command, timeout=timeout, sandbox=sandbox,
                             on_start=on_start, test_budget=budget, keep=keep,
                             on_progress=on_progress)
        finally:
            wt.remove()

    if files is not None:
        in_base = files_at(root, commit)
        present = [f for f in files if f in in_base]
        if not present:
            return TestRun(command=command, exit_code=0, timed_out=False, duration_s=0.0,
                           output_tail="(none of the selected test files exists on the base "
                           "commit: nothing to compare with)", collected=True, junit=True,
                           sandbox=confinement.kind, sandbox_detail=confinement.detail)
        if is_pytest(command) and narrow(command, present) is not None:
            return _baseline_of_files(command, present, key, agent_dir, timeout, fresh,
                                      confinement, test_budget, keep)
        narrowed = narrow(command, present, root)  # another runner: one cache entry
        if narrowed is not None:
            command, key = narrowed, [*key[:3], narrowed, *key[4:]]
    with open_cache(agent_dir, "baselines") as cache:
        hit = _usable(cache.get(key), timeout)
    if hit is not None:
        return TestRun.model_validate({**hit, "from_cache": True})
    run = fresh(command)
    if broken_command(run) is None:
        with open_cache(agent_dir, "baselines") as cache:
            cache.set(key, {**run.model_dump(mode="json"), "timeout": timeout})
    return run


def _baseline_of_files(command: list[str] | str, present: list[str], key: list[object],
                       agent_dir: Path, timeout: float,
                       fresh: Callable[[list[str] | str], TestRun],
                       confinement: Confinement, budget: float | None,
                       keep: Sequence[str]) -> TestRun:
    entries: dict[str, dict[str, object]] = {}
    with open_cache(agent_dir, "baselines") as cache:
        for f in present:
            hit = _usable(cache.get([*key, "file", f]), timeout)
            if hit is not None and _within_budget(hit, budget, keep):
                entries[f] = hit
    misses = [f for f in present if f not in entries]
    run = None
    if misses:
        narrowed = narrow(command, misses)
        run = fresh(narrowed if narrowed is not None else command)
        if broken_command(run, narrowed=True) is not None or not run.junit:
            return run
        # Files run in the order given: after a timeout, the last one with results may
        # be cut short and the ones after it never ran; those before it are complete.
        last = next((f for t in reversed(run.tests) for f in misses if _in_file(t.id, f)), None)
        with open_cache(agent_dir, "baselines") as cache:
            for f in misses:
                mine = [t.model_dump(mode="json") for t in run.tests if _in_file(t.id, f)]
                slow = [t for t in run.over_budget if _in_file(t, f)]
                cut = run.timed_out and (not mine or f == last)
                entry = {"tests": mine, "timed_out": cut, "collected": run.collected or not cut,
                         "duration_s": run.duration_s, "over_budget": slow,
                         "budget": budget if slow else None}
                entries[f] = entry
                # A file without results in a run that ended (-x, --maxfail, a collection
                # error elsewhere) may simply not have run: not a fact to keep.
                if mine or cut or slow:
                    cache.set([*key, "file", f], {**entry, "timeout": timeout})
    tests = [TestCase.model_validate(t) for f in present
             for t in entries[f]["tests"]]  # type: ignore[attr-defined]
    failing = any(t.outcome in _FAILING for t in tests)
    unfinished = [f for f in present if entries[f]["timed_out"]]
    over_budget = [t for f in present for t in entries[f].get("over_budget") or []]  # type: ignore[attr-defined]
    return TestRun(
        command=narrow(command, present) or command,
        exit_code=run.exit_code if run is not None else int(failing),
        timed_out=bool(unfinished),
        unfinished=unfinished,
        duration_s=run.duration_s if run is not None else 0.0,
        tests=tests,
        output_tail=run.output_tail if run is not None else "(every file served from the cache)",
        collected=all(bool(e["collected"]) for e in entries.values()),
        junit=True,
        sandbox=confinement.kind,
        sandbox_detail=confinement.detail,
        from_cache=run is None,
        over_budget=over_budget,
    )


def _within_budget(entry: dict[str, object], budget: float | None, keep: Sequence[str]) -> bool:
    """Whether a file's entry answers a call with this per-test budget: it stopped no
    test, or it stopped them at no less patience than asked now and none of them is
    one the call keeps whole."""
    stopped = entry.get("over_budget") or []
    if not stopped:
        return True
    if budget is None or float(entry.get("budget") or 0) < budget:
        return False
    return not any(target_matches(t, k) for t in stopped for k in keep)  # type: ignore[attr-defined]


def _usable(hit: object, timeout: float) -> dict[str, object] | None:
    """A cache entry, unless it timed out under a shorter timeout than asked now."""
    if not isinstance(hit, dict):
        return None
    if hit.get("timed_out") and float(hit.get("timeout") or 0) < timeout:
        return None
    data = {k: v for k, v in hit.items() if k != "timeout"}
    try:
        if "command" in data:
            TestRun.model_validate(data)
        else:
            [TestCase.model_validate(t) for t in data["tests"]]  # type: ignore[union-attr]
    except (ValidationError, KeyError, TypeError):
        return None  # written by another version of us: recompute
    return data


def _in_file(test_id: str, path: str) -> bool:
    return test_id == path or test_id.startswith(path + "::")


# Options of pytest whose value is a separate word that may look like a path.
_PYTEST_VALUED = frozenset("-c -k -m -o -p -W --rootdir --confcutdir --basetemp --ignore "
                           "--deselect --junitxml".split())


def narrow(command: list[str] | str, files: list[str],
           root: Path | None = None) -> list[str] | str | None:
    """`command` run on `files` only, or None: a runner that cannot narrow by file, a
    shell pipeline, or a command that already names what to test (the user narrowed
    it). `root` is the project (for `npm test`, its package.json says what runs)."""
    if not files:
        return None
    if not is_pytest(command):
        runner = runner_for(command, root)
        return runner.select(command, files) if runner is not None else None
    if isinstance(command, str):
        if any(op in command for op in ("&&", "||", ";", "|", "`", "$(", ">", "<", "\n")):
            return None
        try:
            argv = shlex.split(command)
        except ValueError:
            return None
    else:
        argv = command
    start = next((i + 1 for i, a in enumerate(argv)
                  if Path(a).name in ("pytest", "py.test") or (a == "pytest" and i
                                                                 and argv[i - 1] == "-m")), 0)
    words = argv[start:]
    for i, word in enumerate(words):
        after_option = i > 0 and words[i - 1] in _PYTEST_VALUED
        if not word.startswith("-") and not after_option and (
                "/" in word or "::" in word or word.endswith(".py")):
            return None
    if isinstance(command, str):
        return f"{command} {shlex.join(files)}"
    return [*command, *files]


def deselect(command: list[str] | str, ids: Sequence[str]) -> list[str] | str:
    """A pytest command given as words (the detected one) that skips `ids`."""
    if not ids or isinstance(command, str) or not is_pytest(command):
        return command
    return [*command, *(f"--deselect={i}" for i in ids)]  # one word: an id is never an option


def broken_command(run: TestRun, *, narrowed: bool = False) -> str | None:
    """Why the test command did not work at all (as opposed to tests failing), or
    None: the program was not found or not runnable (and no test reported anything),
    pytest reported a usage error, or it collected no test from the whole suite (from
    a few `narrowed` files that only says they hold no test that runs here)."""
    tail = run.output_tail[-2000:].lower()
    if run.exit_code in (126, 127) or (run.exit_code != 0 and not run.tests and (
            "command not found" in tail or ": not found" in tail)):
        return f"the test command could not be run (exit {run.exit_code}): " + _last_lines(
            run.output_tail, 3)
    codes = (4,) if narrowed else (4, 5)
    if is_pytest(run.command) and run.exit_code in codes and not run.timed_out:
        why = _PYTEST_NOT_RUN[run.exit_code]
        return f"pytest exited {run.exit_code} ({why}): " + _last_lines(run.output_tail, 3)
    return None


def _remove_abandoned_baselines(root: Path) -> None:
    for path in (root / ".agent" / "worktrees").glob("baseline-*-*-*"):
        try:
            pid = int(path.name.split("-")[2])
        except (IndexError, ValueError):
            continue
        try:
            os.kill(pid, 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # alive, someone else's
        Worktree(repo=root, path=path, base_commit="").remove()


def target_matches(test_id: str, target: str) -> bool:
    """Whether `test_id` is selected by `target`: the same id, a parametrization of it,
    a test in that file or class, or a file under that directory."""
    t = target.strip().replace("\\", "/").removeprefix("./").rstrip("/")
    if not t:
        return False
    return test_id == t or any(test_id.startswith(t + sep) for sep in ("::", "[", "/"))


def evaluate(current: TestRun, baseline: TestRun | None, targets: list[str],
             changed: list[str] | None = None) -> TestVerdict:
    """Judge `current` against the base commit's run and the plan's target tests. A
    target not found as named counts as found when a test of the same name is in one
    of the `changed` files (the plan guessed the file wrong); an unrelated test that
    merely shares the name does not stand in for it."""
    if not current.junit:
        return _evaluate_exit_code(current, baseline, targets)

    failing = [t for t in current.tests if t.outcome in _FAILING]
    before = {t.id for t in baseline.tests if t.outcome in _FAILING} if baseline else set()
    new = [t for t in failing if t.id not in before]
    old = [t.id for t in failing if t.id in before]
    missing, failing_targets, resolved = [], [], {}
    for target in targets:
        hits = [t for t in current.tests if target_matches(t.id, target)]
        if not hits and (alias := _same_name(target, current.tests, changed or [])):
            resolved[target] = alias  # a plan that named the right test in the wrong file
            hits = [t for t in current.tests if target_matches(t.id, alias)]
        if not hits:
            missing.append(target)
        elif any(t.outcome in _FAILING for t in hits) or not any(
            t.outcome == "passed" for t in hits
        ):
            failing_targets.append(target)

    problems = []
    tool = "pytest" if is_pytest(current.command) else "the test command"
    if current.timed_out:
        problems.append(f"timed out after {current.duration_s:.0f}s")
    if not current.collected and not current.timed_out:
        why = _PYTEST_NOT_RUN.get(current.exit_code, f"exit code {current.exit_code}")
        problems.append(f"{tool} did not run the tests: {why}")
    if current.collected and current.exit_code != 0 and not failing:
        problems.append(f"{tool} exited {current.exit_code} without reporting a failing test")
    if new:
        problems.append(f"{len(new)} new failure(s): {_some([t.id for t in new])}")
    if missing:
        problems.append(f"target test(s) not found: {_some(missing)}")
    if failing_targets:
        problems.append(f"target test(s) not passing: {_some(failing_targets)}")
    found_as = "; ".join(f"target {t} found as {a}" for t, a in resolved.items())

    counts = _counts(current)
    if problems:
        summary = "failed: " + "; ".join(problems) + f" ({counts})"
        if not current.collected or current.timed_out:
            summary += "\n" + _last_lines(current.output_tail, 15)
    else:
        summary = f"passed ({counts})"
        if old:
            summary += f"; {len(old)} failure(s) already present on the base commit ignored"
    if found_as:
        summary += f"\n{found_as}"
    return TestVerdict(
        passed=not problems,
        new_failures=new,
        preexisting_failures=old,
        missing_targets=missing,
        failing_targets=failing_targets,
        resolved_targets=resolved,
        summary=summary,
    )


def _same_name(target: str, tests: list[TestCase], changed: list[str]) -> str | None:
    """The id of the one test named like `target` (`file::name` or `file::Class::name`)
    in another file that the change touched: the same test, where the plan's path was
    wrong."""
    if "::" not in target:
        return None
    tail = target.split("::", 1)[1]
    matches = {t.id.split("[", 1)[0] for t in tests
               if t.id.split("[", 1)[0].endswith("::" + tail)
               and t.id.split("::", 1)[0] in changed}
    return matches.pop() if len(matches) == 1 else None


def _evaluate_exit_code(
    current: TestRun, baseline: TestRun | None, targets: list[str]
) -> TestVerdict:
    """Without per-test results only the exit code counts; targets cannot be checked
    one by one, so a zero exit is taken as them passing."""
    if current.timed_out:
        summary = f"failed: timed out after {current.duration_s:.0f}s"
    elif current.exit_code != 0:
        summary = f"failed: the test command exited {current.exit_code}"
        if baseline is not None and baseline.exit_code != 0:
            summary += (
                f" (it also exited {baseline.exit_code} on the base commit; without "
                "per-test results old and new failures cannot be told apart)"
            )
    else:
        note = " (target tests not checked individually: no per-test report)" if targets else ""
        return TestVerdict(passed=True, summary=f"passed: the test command exited 0{note}")
    return TestVerdict(passed=False, summary=summary + "\n" + _last_lines(current.output_tail, 15))


def _counts(run: TestRun) -> str:
    tally: dict[str, int] = {}
    for t in run.tests:
        tally[t.outcome] = tally.get(t.outcome, 0) + 1
    shown = [f"{n} {k}" for k in ("passed", "failed", "error", "skipped") if (n := tally.get(k))]
    return ", ".join(shown) or "no tests"


def _some(items: list[str], limit: int = 5) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _last_lines(text: str, n: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])
