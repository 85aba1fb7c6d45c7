"""Per-test results for test runners other than pytest: Go, Cargo, Jest, Vitest, node --test.

A `Runner` knows three things about one tool:

- `instrument`: the command (and extra environment variables) that makes the tool
  report its results in a machine-readable way, next to its usual output, with the
  user's own flags left as they are;
- `results`: the per-test results (`TestCase`s) read back from what that run printed
  and wrote into the report directory, or None when nothing usable came out (the
  caller then judges the run by its exit code, as before);
- `select`: the command narrowed to some test files, or None when it cannot be.

`runner_for` recognises the tool in a command: an argv list or a shell string such as
`go test ./...`, `cargo test --all`, `npx vitest run`, `node --test` or `npm test`
(for npm, the project's `scripts.test` in package.json says which tool runs).

What each tool reports, and how:

- go: `go test -json` (test2json events on stdout). Ids are `<package dir>::TestName`
  (subtests `TestName/sub`), the package directory relative to the project root
  (`.` for the module's root package; the import path for packages outside the
  module). A package that fails without a failing test (build failure, panic in
  init, TestMain exiting) is one `error` case whose id is the package directory.
- cargo: libtest's text output (`test name ... ok|FAILED|ignored` and the
  `---- name stdout ----` sections); `--no-fail-fast` is added so that a failing test
  binary does not hide the ones after it. Ids are `<source file>::module::test`,
  e.g. `src/lib.rs::tests::adds`, `tests/it.rs::it_works`, or for a doc-test
  `src/lib.rs::add (line 3)`; a test binary that crashed is an `error` case whose id
  is its source file.
- cargo nextest: nextest's JUnit report, asked for through `--tool-config-file`.
- jest and vitest: their built-in JSON reports (`--json --outputFile=F`;
  `--reporter=json --outputFile.json=F`), which carry each test's file and its
  describe blocks as a list. Ids are `path/from/root::describe::test`; a test file
  that failed to run is an `error` case whose id is the file.
- node --test: a small reporter module written into the report directory that
  records node's own test events as JSON lines (file, nesting, name, error), next to
  the `spec` reporter on stdout. Ids are `path/from/root::suite::test`; a test file
  that failed to load is an `error` case whose id is the file.

Outcomes are exactly `passed`, `failed`, `error` (a failure outside the test body:
hooks, a file that did not load, a package that did not build) and `skipped`.
Messages are capped like testrun's: 4,000 characters, the head and the tail.

For the caller: give `instrument` a report directory the tests may write (the
sandbox's scratch directory) and `results` the same one; go and cargo results come
from the combined output, so it must not be redirected away by the command. For
`npm test` running node --test, the flags travel in NODE_OPTIONS (`instrument`'s env):
prepend any NODE_OPTIONS the sandbox already passes.

`TestCase` is imported lazily from `agent_cli.workspace.testrun`, so that module may
import this one at its top.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import posixpath
import re
import shlex
import stat
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from agent_cli.workspace.testrun import TestCase

Command = list[str] | str

_MESSAGE_CAP = 4_000
_REPORT_CAP = 256 * 1024 * 1024
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class Runner(Protocol):
    """What the test stage needs from a test runner to get per-test results."""

    name: str
    """`go`, `cargo`, `nextest`, `jest`, `vitest` or `node`."""

    def instrument(self, command: Command, report_dir: Path) -> tuple[Command, dict[str, str]]:
        """The command (and extra env vars) that makes the tool write machine-readable
        results (into report_dir when it writes a file), leaving the user's own flags
        intact."""
        ...

    def results(self, output: str, report_dir: Path, root: Path) -> list[TestCase] | None:
        """Per-test results from what the instrumented run wrote (stdout+stderr text
        `output`, files in report_dir); None when nothing usable came out."""
        ...

    def select(self, command: Command, test_files: list[str]) -> Command | None:
        """The command narrowed to these test files (paths relative to the project
        root), or None when this runner cannot narrow by file."""
        ...


def runner_for(command: Command, root: Path | None = None) -> Runner | None:
    """The runner for the tool that `command` runs, or None if none is recognised.

    `root` is the project directory the command runs in (default: the current
    directory); it is read for `npm test` (package.json's `scripts.test` names the
    tool) and nowhere else."""
    where = Path(root) if root is not None else Path.cwd()
    for inv in _Cmd(command).invocations():
        if inv.kind == "npm":
            script = _npm_script(where, inv)
            if script is None:
                return None
            return _RUNNERS[script.kind](where, script)
        return _RUNNERS[inv.kind](where, None)
    return None


# -- the runners ---------------------------------------------------------------------


class _Base:
    name = ""

    def __init__(self, root: Path, script: _Script | None = None) -> None:
        self.root = root
        """The project directory (for `select` to read Cargo manifests)."""
        self.script = script
        """For `npm test`: how the project's test script runs this tool."""


class GoRunner(_Base):
    """`go test`, reported by `go test -json`."""

    name = "go"

    def instrument(self, command: Command, report_dir: Path) -> tuple[Command, dict[str, str]]:
        cmd = _Cmd(command)
        edits = []
        for inv in cmd.invocations("go"):
            args = _go_args(inv)
            if not any(_flag_name(a) in ("json", "test.json") for a in args.flags):
                edits.append(_Edit(inv.simple, inv.head, after=["-json"]))
        return cmd.render(edits), {}

    def results(self, output: str, report_dir: Path, root: Path) -> list[TestCase] | None:
        return _go_results(output, Path(root))

    def select(self, command: Command, test_files: list[str]) -> Command | None:
        dirs: list[str] = []
        for f in test_files:
            f = _norm(f)
            if not f.endswith(".go"):
                continue
            d = posixpath.dirname(f)
            pkg = f"./{d}" if d else "."
            if pkg not in dirs:
                dirs.append(pkg)
        cmd = _Cmd(command)
        invs = list(cmd.invocations("go"))
        if not dirs or len(invs) != 1:
            return None
        inv = invs[0]
        args = _go_args(inv)
        edits = [_Edit(inv.simple, i, remove=True) for i in args.positional]
        edits.append(_Edit(inv.simple, args.last_before_binary_args, after=dirs))
        return cmd.render(edits)


class CargoRunner(_Base):
    """`cargo test`, read from libtest's text output."""

    name = "cargo"

    def instrument(self, command: Command, report_dir: Path) -> tuple[Command, dict[str, str]]:
        cmd = _Cmd(command)
        edits = []
        for inv in cmd.invocations("cargo"):
            words = inv.values()
            own, binary = _split_dashdash(words[inv.head + 1 :])
            if "--no-fail-fast" not in own:
                edits.append(_Edit(inv.simple, inv.head, after=["--no-fail-fast"]))
            quiet = any(w in ("-q", "--quiet") for w in [*words[inv.prog : inv.head], *own])
            if quiet and not any(_flag_name(w) in ("format", "quiet", "q") for w in binary):
                # `-q` makes libtest print one character per test: ask for a line each.
                extra = ["--format=pretty"] if "--" in words[inv.head + 1 :] else ["--", "--format=pretty"]
                edits.append(_Edit(inv.simple, len(words) - 1, after=extra))
        return cmd.render(edits), {}

    def results(self, output: str, report_dir: Path, root: Path) -> list[TestCase] | None:
        return _cargo_results(output, Path(root))

    def select(self, command: Command, test_files: list[str]) -> Command | None:
        return _cargo_select(command, test_files, "cargo", self.root)


class NextestRunner(_Base):
    """`cargo nextest run`, read from nextest's JUnit report."""

    name = "nextest"
    config_name = "agent-nextest.toml"
    junit_name = "nextest-junit.xml"

    def instrument(self, command: Command, report_dir: Path) -> tuple[Command, dict[str, str]]:
        report_dir = Path(report_dir)
        _forget(report_dir / self.junit_name)
        cmd = _Cmd(command)
        edits = []
        for inv in cmd.invocations("nextest"):
            own, _ = _split_dashdash(inv.values()[inv.head + 1 :])
            if any(_flag_name(w) == "tool-config-file" for w in own):
                continue
            report_dir.mkdir(parents=True, exist_ok=True)
            config = report_dir / self.config_name
            junit = report_dir / self.junit_name
            # Absolute, so nextest does not join it to its store directory. A tool's
            # config ranks below the repository's own .config/nextest.toml.
            config.write_text(f"[profile.default.junit]\npath = {json.dumps(str(junit))}\n")
            extra = ["--tool-config-file", f"agent:{config}"]
            if "--no-fail-fast" not in own:
                extra.append("--no-fail-fast")
            edits.append(_Edit(inv.simple, inv.head, after=extra))
        return cmd.render(edits), {}

    def results(self, output: str, report_dir: Path, root: Path) -> list[TestCase] | None:
        data = _read_report(Path(report_dir) / self.junit_name)
        if data is None:
            return None
        try:
            tree = ET.fromstring(data)
        except ET.ParseError:
            return None
        crates = _Crates(Path(root))
        cases: list[tuple[str, str, str | None]] = []
        for suite in tree.iter("testsuite"):
            binary_id = suite.get("name", "")
            for case in suite.iter("testcase"):
                binary = case.get("classname") or binary_id
                test_id = f"{crates.nextest_file(binary)}::{case.get('name', '')}"
                outcome, message = "passed", None
                for tag, name in (("error", "error"), ("failure", "failed"), ("skipped", "skipped")):
                    child = case.find(tag)
                    if child is not None:
                        parts = [child.get("message"), (child.text or "").strip()]
                        if name != "skipped":
                            parts += [(case.findtext(t) or "").strip()
                                      for t in ("system-out", "system-err")]
                        outcome, message = name, "\n".join(p for p in parts if p) or None
                        break
                cases.append((test_id, outcome, message))
        return _cases(cases)

    def select(self, command: Command, test_files: list[str]) -> Command | None:
        return _cargo_select(command, test_files, "nextest", self.root)


class JestRunner(_Base):
    """Jest, read from its built-in JSON report (`--json --outputFile=F`)."""

    name = "jest"
    report_name = "jest-results.json"

    def _flags(self, report_dir: Path, existing: list[str]) -> list[str] | None:
        if any(_flag_name(w) in ("json", "outputFile") for w in existing):
            return None  # the user's own JSON report: leave it alone
        return ["--json", f"--outputFile={Path(report_dir) / self.report_name}"]

    def instrument(self, command: Command, report_dir: Path) -> tuple[Command, dict[str, str]]:
        return _js_instrument(self, command, report_dir), {}

    def results(self, output: str, report_dir: Path, root: Path) -> list[TestCase] | None:
        return _jest_json_results(Path(report_dir) / self.report_name, Path(root))

    def select(self, command: Command, test_files: list[str]) -> Command | None:
        # Positional arguments are regular expressions; --runTestsByPath makes them paths.
        return _js_select(self, command, test_files, ["--runTestsByPath"])


class VitestRunner(_Base):
    """Vitest, read from its built-in JSON reporter (same shape as Jest's)."""

    name = "vitest"
    report_name = "vitest-results.json"

    def _flags(self, report_dir: Path, existing: list[str]) -> list[str] | None:
        if any(_flag_name(w).startswith("outputFile") for w in existing):
            return None
        path = Path(report_dir) / self.report_name
        ours = ["--reporter=json", f"--outputFile.json={path}"]
        if any(_flag_name(w) == "reporter" for w in existing):
            return ours  # the user chose the reporters people see
        return ["--reporter=default", *ours]

    def instrument(self, command: Command, report_dir: Path) -> tuple[Command, dict[str, str]]:
        return _js_instrument(self, command, report_dir), {}

    def results(self, output: str, report_dir: Path, root: Path) -> list[TestCase] | None:
        return _jest_json_results(Path(report_dir) / self.report_name, Path(root))

    def select(self, command: Command, test_files: list[str]) -> Command | None:
        return _js_select(self, command, test_files, [])


class NodeTestRunner(_Base):
    """`node --test`, through a reporter module that writes node's test events as
    JSON lines (node's own JUnit reporter does not say which file a test is in)."""

    name = "node"
    reporter_name = "agent-node-reporter.mjs"
    report_name = "node-tests.jsonl"

    def instrument(self, command: Command, report_dir: Path) -> tuple[Command, dict[str, str]]:
        report_dir = Path(report_dir)
        if not _node_has_reporters():
            return command, {}
        reporter = report_dir / self.reporter_name
        dest = report_dir / self.report_name
        _forget(dest)
        ours = [f"--test-reporter={reporter}", f"--test-reporter-destination={dest}"]
        cmd = _Cmd(command)
        edits = []
        direct = list(cmd.invocations("node"))
        for inv in direct:
            words = inv.values()
            # Ours go after the user's options, so that node, which pairs reporters
            # with destinations by position, pairs the user's first.
            anchor = _node_args(inv).first_positional - 1
            if words[anchor] == "--":
                anchor -= 1
            flags = words[inv.prog + 1 : anchor + 1]
            reporters = sum(_flag_name(w) == "test-reporter" for w in flags)
            destinations = sum(_flag_name(w) == "test-reporter-destination" for w in flags)
            if reporters == 0:
                extra = [*ours, "--test-reporter=spec", "--test-reporter-destination=stdout"]
            elif destinations == reporters:
                extra = ours
            elif reporters == 1 and destinations == 0:
                extra = [ours[0], "--test-reporter-destination=stdout", ours[1]]
            else:
                continue
            edits.append(_Edit(inv.simple, anchor, after=extra))
        env: dict[str, str] = {}
        if not direct and any(i.kind == "npm" for i in cmd.invocations()):
            script = self.script
            if script is not None and not any(
                _flag_name(w).startswith("test-reporter") for w in script.words
            ):
                # The script's own command line is not ours to change (args after
                # `npm test --` land after its file arguments, where node takes them
                # for files); NODE_OPTIONS reaches it. The caller should prepend any
                # NODE_OPTIONS of its own.
                env["NODE_OPTIONS"] = " ".join(
                    _node_option_quote(o)
                    for o in [*ours, "--test-reporter=spec", "--test-reporter-destination=stdout"]
                )
        if not edits and not env:
            return command, {}
        report_dir.mkdir(parents=True, exist_ok=True)
        reporter.write_text(_NODE_REPORTER)
        return cmd.render(edits), env

    def results(self, output: str, report_dir: Path, root: Path) -> list[TestCase] | None:
        return _node_results(Path(report_dir) / self.report_name, Path(root))

    def select(self, command: Command, test_files: list[str]) -> Command | None:
        return _js_select(self, command, test_files, [])


_RUNNERS: dict[str, Callable[[Path, _Script | None], Runner]] = {
    "go": GoRunner,
    "cargo": CargoRunner,
    "nextest": NextestRunner,
    "jest": JestRunner,
    "vitest": VitestRunner,
    "node": NodeTestRunner,
}


# -- commands: argv lists and shell strings --------------------------------------------


@dataclass
class _Word:
    value: str
    """The word after quote removal."""
    start: int
    """Offset in the shell string (for an argv list: the index)."""
    end: int


@dataclass
class _Simple:
    """One simple command: its words, without redirections."""

    words: list[_Word]


@dataclass
class _Edit:
    simple: int
    word: int
    after: list[str] = field(default_factory=list)
    """Arguments to insert after the word."""
    remove: bool = False


@dataclass
class _Invocation:
    kind: str
    """go, cargo, nextest, jest, vitest, node or npm."""
    simple: int
    words: list[_Word]
    prog: int
    """Index of the program (`go`, `cargo`, `jest`, `node`, `npm`, ...)."""
    head: int
    """Index of the last word of the tool's own head: `test` in `go test`, `run` in
    `vitest run` or `cargo nextest run`, `--test` for node, the program for jest."""

    def values(self) -> list[str]:
        return [w.value for w in self.words]


class _Cmd:
    """A command as a list of simple commands whose words can be edited in place: an
    argv list is one simple command; a shell string is split like sh would split it,
    and edited by splicing, so the rest of the string stays as the user wrote it."""

    def __init__(self, command: Command) -> None:
        self.command = command
        if isinstance(command, str):
            self.simples = _lex(command) or []
        else:
            self.simples = [_Simple([_Word(a, i, i + 1) for i, a in enumerate(command)])]

    def invocations(self, kind: str | None = None) -> Iterable[_Invocation]:
        for n, simple in enumerate(self.simples):
            inv = _find_invocation(simple.words, n)
            if inv is not None and (kind is None or inv.kind == kind):
                yield inv

    def render(self, edits: list[_Edit]) -> Command:
        if not edits:
            return self.command
        if isinstance(self.command, list):
            removed = {e.word for e in edits if e.remove}
            after: dict[int, list[str]] = {}
            for e in edits:
                after.setdefault(e.word, []).extend(e.after)
            argv: list[str] = []
            for i, a in enumerate(self.command):
                if i not in removed:
                    argv.append(a)
                argv.extend(after.get(i, []))
            return argv
        text = self.command
        # A removal takes the blanks before the word; an insertion goes right after its
        # word, removed or not. Applied from the end, so offsets stay valid.
        splices: list[tuple[int, int, str]] = []
        inserts: dict[int, list[str]] = {}
        for e in edits:
            w = self.simples[e.simple].words[e.word]
            if e.remove:
                start = w.start
                while start > 0 and text[start - 1] in " \t":
                    start -= 1
                splices.append((start, w.end, ""))
            if e.after:
                inserts.setdefault(w.end, []).extend(e.after)
        splices += [(at, at, " " + shlex.join(args)) for at, args in inserts.items()]
        for start, end, new in sorted(splices, key=lambda s: (s[0], s[1]), reverse=True):
            text = text[:start] + new + text[end:]
        return text


_OPERATOR = re.compile(r"&&|\|\||;;|\|&|[;&|()\n]")
_REDIRECT = re.compile(r"\d*(?:&>>?|>>?&?|<&|<>|>\||<(?!<))")
_STOP = set(" \t\n;&|()<>")


def _lex(text: str) -> list[_Simple] | None:
    """Split a shell command line into simple commands; None for what this does not
    read (command substitution, here-documents, unterminated quotes)."""
    simples: list[_Simple] = []
    words: list[_Word] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t":
            i += 1
            continue
        if c == "#" and (i == 0 or text[i - 1] in " \t\n;&|()"):
            nl = text.find("\n", i)
            i = n if nl < 0 else nl
            continue
        if c == "\\" and text[i : i + 2] == "\\\n":
            i += 2
            continue
        if text.startswith("<<", i):
            return None
        redirect = _REDIRECT.match(text, i)
        if redirect:
            i = redirect.end()
            while i < n and text[i] in " \t":
                i += 1
            target = _read_word(text, i)
            if target is None:
                return None
            i = target.end
            continue
        op = _OPERATOR.match(text, i)
        if op:
            if words:
                simples.append(_Simple(words))
                words = []
            i = op.end()
            continue
        word = _read_word(text, i)
        if word is None:
            return None
        words.append(word)
        i = word.end
    if words:
        simples.append(_Simple(words))
    return simples


def _read_word(text: str, i: int) -> _Word | None:
    start, value, n = i, [], len(text)
    while i < n and text[i] not in _STOP:
        c = text[i]
        if c == "`" or text.startswith("$(", i):
            return None
        if c == "\\":
            if i + 1 < n:
                value.append(text[i + 1])
            i += 2
        elif c == "'":
            j = text.find("'", i + 1)
            if j < 0:
                return None
            value.append(text[i + 1 : j])
            i = j + 1
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "`" or text.startswith("$(", i):
                    return None
                if text[i] == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
                    value.append(text[i + 1])
                    i += 2
                else:
                    value.append(text[i])
                    i += 1
            if i >= n:
                return None
            i += 1
        else:
            value.append(c)
            i += 1
    return _Word("".join(value), start, i)


_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_PREFIXES = {"time", "exec", "command", "nohup", "builtin", "if", "then", "else", "elif",
             "do", "while", "until", "!", "{"}


def _find_invocation(words: list[_Word], simple: int) -> _Invocation | None:
    v = [w.value for w in words]
    i = 0
    while i < len(v):
        if _ASSIGNMENT.match(v[i]) or v[i] in _PREFIXES:
            i += 1
        elif Path(v[i]).name in ("env", "cross-env"):
            i += 1
            while i < len(v) and (v[i].startswith("-") or _ASSIGNMENT.match(v[i])):
                i += 1
        elif v[i] == "nice" and i + 1 < len(v) and v[i + 1] == "-n":
            i += 3
        elif v[i] == "timeout":
            i += 1
            while i < len(v) and v[i].startswith("-"):
                i += 1
            i += 1  # the duration
        elif Path(v[i]).name in ("npx", "bunx"):
            i += 1
            while i < len(v) and v[i].startswith("-"):
                i += 2 if v[i] in ("-p", "--package") else 1
        elif v[i] in ("pnpm", "yarn") and i + 1 < len(v) and v[i + 1] in ("exec", "dlx"):
            i += 2
        elif v[i] == "npm" and i + 1 < len(v) and v[i + 1] == "exec":
            i += 2
            if i < len(v) and v[i] == "--":
                i += 1
        else:
            break
    if i >= len(v):
        return None
    prog = Path(v[i]).name

    def found(kind: str, head: int) -> _Invocation:
        return _Invocation(kind, simple, words, i, head)

    if prog == "go":
        return found("go", i + 1) if v[i + 1 : i + 2] == ["test"] else None
    if prog == "cargo":
        j = i + 1
        while j < len(v):
            w = v[j]
            if w.startswith("+"):
                j += 1
            elif w in ("test", "t"):
                return found("cargo", j)
            elif w == "nextest":
                return found("nextest", j + 1) if v[j + 1 : j + 2] in (["run"], ["r"]) else None
            elif w in ("--manifest-path", "--config", "-Z", "-C", "--color", "--target-dir"):
                j += 2
            elif w.startswith("-"):
                j += 1
            else:
                return None
        return None
    if prog in ("node", "nodejs"):
        # `node node_modules/.bin/jest`, or `node [options] --test [files]`
        args = _node_args(_Invocation("node", simple, words, i, i))
        if args.first_positional < len(v):
            script = Path(v[args.first_positional]).name
            if script in ("jest", "jest.js"):
                return found("jest", args.first_positional)
            if script in ("vitest", "vitest.mjs"):
                return _vitest_head(found("vitest", args.first_positional))
        return found("node", args.test_flag) if args.test_flag is not None else None
    if prog in ("jest", "jest.js"):
        return found("jest", i)
    if prog in ("vitest", "vitest.mjs"):
        return _vitest_head(found("vitest", i))
    if prog == "npm":
        j = i + 1
        while j < len(v) and v[j].startswith("-"):
            j += 2 if v[j] in ("--prefix", "-C", "--workspace", "-w") else 1
        if j < len(v) and v[j] in ("test", "t", "tst"):
            return found("npm", j)
        if j + 1 < len(v) and v[j] in ("run", "run-script", "rum", "urn") and v[j + 1] == "test":
            return found("npm", j + 1)
    return None


def _vitest_head(inv: _Invocation) -> _Invocation | None:
    v = inv.values()
    nxt = v[inv.head + 1] if inv.head + 1 < len(v) else ""
    if nxt in ("run", "watch", "dev", "related"):
        inv.head += 1
    elif nxt in ("bench", "list", "init", "typecheck"):
        return None
    return inv


def _flag_name(word: str) -> str:
    """`--outputFile=x` -> `outputFile`, `-json` -> `json`; "" for a non-flag."""
    if not word.startswith("-") or word == "--":
        return ""
    return word.lstrip("-").split("=", 1)[0]


def _split_dashdash(words: list[str]) -> tuple[list[str], list[str]]:
    if "--" in words:
        k = words.index("--")
        return words[:k], words[k + 1 :]
    return words, []


# -- npm -------------------------------------------------------------------------------


@dataclass
class _Script:
    """How `npm test` runs a tool: the tool's invocation inside scripts.test."""

    kind: str
    words: list[str]
    """The tool's words in the script (its program and arguments)."""
    head: int
    last: bool
    """The tool runs in the script's last simple command, so arguments given to
    `npm test -- ...` reach it."""


def _npm_script(root: Path, inv: _Invocation) -> _Script | None:
    v = inv.values()
    where = root
    for a, b in itertools.pairwise(v):
        if a in ("--prefix", "-C"):
            where = root / b
    try:
        data = json.loads((where / "package.json").read_text())
        script = data.get("scripts", {}).get("test")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(script, str):
        return None
    simples = _lex(script)
    if not simples:
        return None
    for n, simple in enumerate(simples):
        found = _find_invocation(simple.words, n)
        if found is not None and found.kind != "npm":
            words = found.values()
            return _Script(found.kind, words[found.prog :], found.head - found.prog,
                           last=n == len(simples) - 1)
    return None


def _npm_append(cmd: _Cmd, inv: _Invocation, args: list[str]) -> Command:
    v = inv.values()
    extra = args if "--" in v[inv.head + 1 :] else ["--", *args]
    return cmd.render([_Edit(inv.simple, len(v) - 1, after=extra)])


# -- JavaScript: instrumenting and selecting --------------------------------------------


def _js_instrument(runner: JestRunner | VitestRunner, command: Command, report_dir: Path) -> Command:
    _forget(Path(report_dir) / runner.report_name)
    cmd = _Cmd(command)
    edits = []
    for inv in cmd.invocations(runner.name):
        flags = runner._flags(report_dir, inv.values()[inv.head + 1 :])
        if flags:
            edits.append(_Edit(inv.simple, inv.head, after=flags))
    if edits:
        return cmd.render(edits)
    script = runner.script
    for inv in cmd.invocations("npm"):
        if script is None or script.kind != runner.name or not script.last:
            return command
        flags = runner._flags(report_dir, [*script.words[script.head + 1 :],
                                           *inv.values()[inv.head + 1 :]])
        return _npm_append(cmd, inv, flags) if flags else command
    return command


_JEST_VALUE_FLAGS = {
    "c", "config", "rootDir", "roots", "testPathPatterns", "testPathPattern", "t",
    "testNamePattern", "w", "maxWorkers", "reporters", "outputFile", "testTimeout", "shard",
    "selectProjects", "ignoreProjects", "coverageDirectory", "coverageProvider",
    "collectCoverageFrom", "coverageReporters", "coveragePathIgnorePatterns",
    "coverageThreshold", "testEnvironment", "env", "testRunner", "testMatch", "testRegex",
    "testPathIgnorePatterns", "changedSince", "seed", "setupFiles", "setupFilesAfterEnv",
    "transform", "moduleNameMapper", "moduleDirectories", "moduleFileExtensions",
    "modulePaths", "globals", "globalSetup", "globalTeardown", "projects", "resolver",
    "snapshotSerializers", "testResultsProcessor", "testSequencer", "cacheDirectory",
    "notifyMode", "filter", "maxConcurrency", "workerIdleMemoryLimit", "preset",
    "testEnvironmentOptions", "watchPathIgnorePatterns", "testFailureExitCode",
}
_JEST_BOOL_FLAGS = {
    "ci", "coverage", "collectCoverage", "watch", "watchAll", "verbose", "silent", "runInBand",
    "i", "detectOpenHandles", "forceExit", "passWithNoTests", "onlyChanged", "o",
    "onlyFailures", "f", "json", "listTests", "logHeapUsage", "noStackTrace", "clearCache",
    "clearMocks", "resetMocks", "restoreMocks", "bail", "b", "u", "updateSnapshot", "debug",
    "errorOnDeprecated", "expand", "e", "runTestsByPath", "showConfig", "useStderr",
    "colors", "no-colors", "cache", "no-cache", "all", "detectLeaks", "randomize",
    "injectGlobals", "no-watchman", "watchman", "lastCommit", "openHandlesTimeout",
}
_VITEST_VALUE_FLAGS = {
    "r", "root", "dir", "c", "config", "reporter", "outputFile", "t", "testNamePattern",
    "environment", "pool", "project", "shard", "exclude", "mode", "testTimeout",
    "hookTimeout", "maxWorkers", "minWorkers", "retry", "bail", "teardownTimeout",
    "slowTestThreshold", "maxConcurrency", "inspect", "inspectBrk", "sequence.seed",
    "diff", "tags", "configLoader",
}
_VITEST_BOOL_FLAGS = {
    "watch", "w", "ui", "globals", "dom", "isolate", "passWithNoTests", "allowOnly",
    "coverage", "update", "u", "logHeapUsage", "clearScreen", "hideSkippedTests",
    "standalone", "no-file-parallelism", "fileParallelism", "typecheck", "run",
    "expandSnapshotDiff", "disableConsoleIntercept", "no-isolate", "silent", "changed",
    "no-color", "color", "printConsoleTrace", "includeTaskLocation", "clearCache",
}


def _js_positionals(kind: str, words: list[str], head: int) -> list[int] | None:
    """Indexes of the tool's positional arguments (file patterns); None when a flag
    of unknown arity makes that uncertain."""
    if kind == "node":
        args = _node_args_values(words, 0)
        return list(range(args.first_positional, len(words)))
    value_flags = _JEST_VALUE_FLAGS if kind == "jest" else _VITEST_VALUE_FLAGS
    bool_flags = _JEST_BOOL_FLAGS if kind == "jest" else _VITEST_BOOL_FLAGS
    out: list[int] = []
    i = head + 1
    while i < len(words):
        w = words[i]
        if w == "--":
            out.extend(range(i + 1, len(words)))
            break
        if w.startswith("-"):
            name = _flag_name(w)
            if "=" in w or name in bool_flags:
                i += 1
            elif name in value_flags or name.startswith(("coverage.", "poolOptions.", "browser.")):
                i += 2
            elif i + 1 < len(words) and not words[i + 1].startswith("-"):
                return None  # `--unknown x`: a value, or a pattern?
            else:
                i += 1
        else:
            out.append(i)
            i += 1
    return out


def _js_select(runner: JestRunner | VitestRunner | NodeTestRunner, command: Command,
               test_files: list[str], extra: list[str]) -> Command | None:
    files = [_norm(f) for f in test_files if f.strip()]
    if not files:
        return None
    cmd = _Cmd(command)
    for inv in cmd.invocations(runner.name):
        words = inv.values()
        if runner.name == "node":
            positional = list(range(_node_args(inv).first_positional, len(words)))
        else:
            found = _js_positionals(runner.name, words, inv.head)
            if found is None:
                return None
            positional = found
        edits = [_Edit(inv.simple, i, remove=True) for i in positional]
        added = [e for e in extra if e not in words]
        edits.append(_Edit(inv.simple, len(words) - 1, after=[*added, *files]))
        return cmd.render(edits)
    script = runner.script
    for inv in cmd.invocations("npm"):
        if script is None or script.kind != runner.name or not script.last:
            return None
        found = _js_positionals(script.kind, script.words, script.head)
        passed = inv.values()[inv.head + 1 :]
        if found or found is None or ("--" in passed and passed[passed.index("--") + 1 :]):
            return None  # the script (or the command) already names files: cannot narrow
        return _npm_append(cmd, inv, [*[e for e in extra if e not in script.words], *files])
    return None


@dataclass
class _NodeArgs:
    test_flag: int | None
    first_positional: int


_NODE_VALUE_FLAGS = {
    "-r", "--require", "--import", "--loader", "--experimental-loader", "--test-name-pattern",
    "--test-skip-pattern", "--test-reporter", "--test-reporter-destination",
    "--test-concurrency", "--test-timeout", "--test-shard", "--conditions", "-C",
    "--input-type", "--env-file", "--watch-path", "--experimental-config-file",
    "--test-coverage-include", "--test-coverage-exclude", "--test-isolation",
    "--test-global-setup",
}


def _node_args(inv: _Invocation) -> _NodeArgs:
    return _node_args_values(inv.values(), inv.prog)


def _node_args_values(v: list[str], prog: int) -> _NodeArgs:
    """node stops reading options at its first positional argument (the script, or
    with --test the first file)."""
    test_flag = None
    i = prog + 1
    while i < len(v):
        w = v[i]
        if w == "--":
            return _NodeArgs(test_flag, i + 1)
        if not w.startswith("-"):
            break
        if w == "--test":
            test_flag = i
        i += 2 if w in _NODE_VALUE_FLAGS else 1
    return _NodeArgs(test_flag, i)


def _node_option_quote(option: str) -> str:
    return f'"{option}"' if any(c in option for c in ' \t"\\') else option


@functools.cache
def _node_has_reporters() -> bool:
    """Custom reporters and --test-reporter-destination came in node 18.15 / 19.6."""
    try:
        out = subprocess.run(["node", "--version"], capture_output=True, text=True,
                             timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    m = re.match(r"v(\d+)\.(\d+)", out.strip())
    if not m:
        return False
    major, minor = int(m.group(1)), int(m.group(2))
    return (major, minor) >= (19, 6) or (major == 18 and minor >= 15)


# The reporter is node's documented custom-reporter interface: an async generator
# over the test run's events. One JSON object per line, so a run that is killed still
# leaves the lines it wrote.
_NODE_REPORTER = r"""// Written by agent: records node --test events as JSON lines.
function text(error) {
  if (error === undefined || error === null) return null;
  const cause = error.cause ?? error;
  if (cause && typeof cause === 'object' && cause.stack) return String(cause.stack);
  try { return String(cause); } catch { return '[unprintable error]'; }
}
export default async function* agentReporter(source) {
  const streamed = new Map();  // bytes of stdout/stderr kept per file (for load errors)
  for await (const event of source) {
    const d = event.data ?? {};
    if (event.type === 'test:pass' || event.type === 'test:fail') {
      const error = d.details?.error;
      yield JSON.stringify({
        event: event.type, name: d.name, nesting: d.nesting ?? 0, file: d.file ?? null,
        type: d.details?.type ?? 'test', skip: d.skip ?? false, todo: d.todo ?? false,
        error: text(error), failureType: error?.failureType ?? null,
      }) + '\n';
    } else if (event.type === 'test:stderr' || event.type === 'test:stdout') {
      const file = d.file ?? null;
      const message = String(d.message ?? '');
      const kept = streamed.get(file) ?? 0;
      if (kept < 65536) {
        streamed.set(file, kept + message.length);
        yield JSON.stringify({event: event.type, file, message}) + '\n';
      }
    }
  }
}
"""


# -- results: Go -----------------------------------------------------------------------


@dataclass
class _GoTest:
    output: list[str] = field(default_factory=list)
    action: str | None = None


@dataclass
class _GoPackage:
    tests: dict[str, _GoTest] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)
    action: str | None = None
    failed_build: str | None = None
    """Go 1.24+: the ImportPath of the build that failed; `[build failed]` before."""


_GO_PLAIN_FAIL = re.compile(r"^FAIL\s+(\S+)\s+\[(build failed|setup failed)\]")
_GO_FRAMING = ("=== RUN", "=== PAUSE", "=== CONT", "=== NAME")


def _go_results(output: str, root: Path) -> list[TestCase] | None:
    packages: dict[str, _GoPackage] = {}
    build_output: dict[str, list[str]] = {}
    header: str | None = None
    saw_events = False
    for line in output.splitlines():
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            header = None
            action = event.get("Action")
            if action in ("build-output", "build-fail"):
                # Go 1.24+: compiler output as events of the package being built.
                if action == "build-output":
                    key = str(event.get("ImportPath", ""))
                    build_output.setdefault(key, []).append(str(event.get("Output", "")))
                continue
            pkg = event.get("Package")
            if not isinstance(pkg, str) or not isinstance(action, str):
                continue
            saw_events = True
            p = packages.setdefault(pkg, _GoPackage())
            test = event.get("Test")
            if isinstance(test, str) and test:
                t = p.tests.setdefault(test, _GoTest())
                if action == "output":
                    t.output.append(str(event.get("Output", "")))
                elif action in ("pass", "fail", "skip", "bench"):
                    t.action = action
            elif action == "output":
                p.output.append(str(event.get("Output", "")))
            elif action in ("pass", "fail", "skip"):
                p.action = action
                if event.get("FailedBuild"):
                    p.failed_build = str(event["FailedBuild"])
            continue
        # Plain text: before Go 1.24, build errors go to stderr as `# pkg` blocks and
        # `FAIL pkg [build failed]` to stdout.
        m = _GO_PLAIN_FAIL.match(line)
        if m:
            p = packages.setdefault(m.group(1), _GoPackage())
            p.action, p.failed_build = "fail", p.failed_build or m.group(1)
            p.output.append(line + "\n")
            saw_events = True
            header = None
        elif line.startswith("# "):
            header = line[2:]
            build_output.setdefault(header, []).append(line + "\n")
        elif header is not None:
            build_output[header].append(line + "\n")
    if not saw_events:
        return None
    modules = _go_modules(root)
    cases: list[tuple[str, str, str | None]] = []
    for pkg, p in packages.items():
        where = _go_package_dir(pkg, modules)
        failing = False
        for name, t in p.tests.items():
            text = "".join(x for x in t.output if not x.startswith(_GO_FRAMING))
            if t.action is None:
                if p.action != "fail":
                    continue  # cut short (output truncated or still running)
                # The binary died in this test (panic, timeout, os.Exit).
                cases.append((f"{where}::{name}", "failed", text + "".join(p.output)))
                failing = True
                continue
            outcome = {"pass": "passed", "bench": "passed", "fail": "failed", "skip": "skipped"}[t.action]
            failing = failing or outcome == "failed"
            cases.append((f"{where}::{name}", outcome, text if outcome != "passed" else None))
        if p.action == "fail" and not failing:
            cases.append((where, "error", "".join(_go_build_output(pkg, p, build_output) + p.output)))
    return _cases(cases)


def _go_build_output(pkg: str, p: _GoPackage, build_output: dict[str, list[str]]) -> list[str]:
    """The compiler's messages for a package: its own build (`pkg [pkg.test]`,
    `pkg.test`, `pkg_test [pkg.test]`), else, when its build failed, everything that
    failed to build (a broken dependency fails every package importing it)."""
    if p.failed_build and p.failed_build in build_output:
        return build_output[p.failed_build]
    own = [lines for key, lines in build_output.items()
           if key.split(" ")[0].removesuffix(".test").removesuffix("_test") == pkg]
    if own:
        return [x for lines in own for x in lines]
    if p.failed_build:
        return [x for lines in build_output.values() for x in lines]
    return []


def _go_modules(root: Path) -> list[tuple[str, str]]:
    """(module path, directory relative to root), from go.mod and go.work's `use`."""
    dirs = ["."]
    try:
        work = (root / "go.work").read_text()
    except OSError:
        work = ""
    for block in re.findall(r"^use\s*\(([^)]*)\)", work, re.MULTILINE):
        dirs += block.split()
    dirs += re.findall(r"^use\s+([^\s(]+)", work, re.MULTILINE)
    out = []
    for d in dict.fromkeys(posixpath.normpath(d.strip('"')) for d in dirs):
        try:
            text = (root / d / "go.mod").read_text()
        except OSError:
            continue
        m = re.search(r"^module\s+\"?([^\s\"]+)", text, re.MULTILINE)
        if m:
            out.append((m.group(1), d))
    return sorted(out, key=lambda m: len(m[0]), reverse=True)


def _go_package_dir(pkg: str, modules: list[tuple[str, str]]) -> str:
    for module, d in modules:
        if pkg == module:
            return d
        if pkg.startswith(module + "/"):
            return posixpath.normpath(posixpath.join(d, pkg[len(module) + 1 :]))
    return pkg


@dataclass
class _GoArgs:
    flags: list[str]
    positional: list[int]
    last_before_binary_args: int


_GO_VALUE_FLAGS = {
    "C", "p", "asmflags", "buildmode", "compiler", "gccgoflags", "gcflags", "installsuffix",
    "ldflags", "mod", "modfile", "overlay", "pgo", "pkgdir", "tags", "toolexec", "covermode",
    "coverpkg", "o", "exec", "bench", "benchtime", "blockprofile", "blockprofilerate",
    "count", "coverprofile", "cpu", "cpuprofile", "fuzz", "fuzzcachedir", "fuzzminimizetime",
    "fuzztime", "list", "memprofile", "memprofilerate", "mutexprofile",
    "mutexprofilefraction", "outputdir", "parallel", "run", "skip", "shuffle", "timeout",
    "trace", "vet", "debug",
}


def _go_args(inv: _Invocation) -> _GoArgs:
    v = inv.values()
    flags, positional = [], []
    i = inv.head + 1
    last = inv.head
    while i < len(v):
        w = v[i]
        if w in ("-args", "--args"):
            break
        if w.startswith("-"):
            flags.append(w)
            name = w.lstrip("-").removeprefix("test.")
            if "=" not in w and name in _GO_VALUE_FLAGS:
                i += 1
        else:
            positional.append(i)
        last = i
        i += 1
    return _GoArgs(flags, positional, min(last, len(v) - 1))


# -- results: Cargo ----------------------------------------------------------------------


_CARGO_RUNNING = re.compile(r"^\s*Running (?:unittests )?(.+?) \((.+)\)\s*$")
_CARGO_DOCTESTS = re.compile(r"^\s*Doc-tests (\S+)\s*$")
_CARGO_TEST = re.compile(r"^test (.+?) \.\.\. (ok|FAILED|ignored(?:, (.*))?|bench:.*)$")
_CARGO_SECTION = re.compile(r"^---- (.+) (?:stdout|stderr) ----$")


def _cargo_results(output: str, root: Path) -> list[TestCase] | None:
    crates = _Crates(root)
    cases: dict[tuple[str, str], tuple[str, str | None]] = {}
    order: list[tuple[str, str]] = []
    binary = ""          # the current test binary's source file, e.g. `src/lib.rs`
    doc_prefix: str | None = None
    started = finished = False
    crash: list[str] = []
    section: str | None = None
    messages: dict[tuple[str, str], list[str]] = {}
    saw_tests = False

    def close_binary() -> None:
        if started and not finished and crash and binary:
            key = (binary, "")
            cases[key] = ("error", "".join(crash))
            order.append(key)

    for raw in output.splitlines():
        line = raw.rstrip("\r")
        m = _CARGO_RUNNING.match(line)
        d = _CARGO_DOCTESTS.match(line)
        if m or d:
            close_binary()
            binary = crates.running_file(m.group(1), m.group(2)) if m else ""
            doc_prefix = crates.doc_prefix(d.group(1)) if d else None
            started = finished = False
            crash, section = [], None
            continue
        if section is not None:
            # A failing test's captured output: anything goes, up to the next section
            # or the list of failures after the last one.
            s = _CARGO_SECTION.match(line)
            if s:
                section = s.group(1)
                messages[_cargo_key(binary, doc_prefix, section)] = []
            elif line == "failures:" or line.startswith("test result: "):
                section = None
                finished = finished or line.startswith("test result: ")
            else:
                messages[_cargo_key(binary, doc_prefix, section)].append(line + "\n")
            continue
        if line.startswith("running ") and line.endswith(("tests", "test")):
            started, saw_tests = True, True
            continue
        if line.startswith("test result: "):
            finished, section = True, None
            continue
        t = _CARGO_TEST.match(line)
        if t:
            name = t.group(1).removesuffix(" - should panic")
            verdict = t.group(2)
            outcome = ("passed" if verdict == "ok" or verdict.startswith("bench")
                       else "failed" if verdict == "FAILED" else "skipped")
            message = (t.group(3) or None) if outcome == "skipped" else None
            key = _cargo_key(binary, doc_prefix, name)
            if key not in cases:
                order.append(key)
            cases[key] = (outcome, message)
            continue
        s = _CARGO_SECTION.match(line)
        if s:
            section = s.group(1)
            messages[_cargo_key(binary, doc_prefix, section)] = []
            continue
        if started and not finished and (crash or line.startswith("error: test failed")):
            crash.append(line + "\n")
    close_binary()
    if not saw_tests:
        return None  # it did not build, or printed nothing we read
    out: list[tuple[str, str, str | None]] = []
    for key in order:
        outcome, message = cases[key]
        where, name = key
        if where.startswith("doc:"):
            test_id = _doctest_id(where[4:], name)
        elif not name:
            test_id = where
        else:
            test_id = f"{where}::{name}" if where else name
        if outcome == "failed":
            message = "".join(messages.get(key, [])).strip("\n") or None
        out.append((test_id, outcome, message))
    return _cases(out)


def _cargo_key(binary: str, doc_prefix: str | None, name: str) -> tuple[str, str]:
    return (binary, name) if doc_prefix is None else ("doc:" + doc_prefix, name)


def _doctest_id(prefix: str, name: str) -> str:
    """`src/lib.rs - add (line 3)` -> `src/lib.rs::add (line 3)` (under the crate's dir)."""
    file, sep, rest = name.partition(" - ")
    if not sep or not file.endswith(".rs"):
        return name
    return f"{posixpath.join(prefix, file) if prefix else file}::{rest}"


@dataclass
class _Crate:
    dir: str
    package: str
    lib: str


class _Crates:
    """The crates under a project root (its own and its workspace members'), to turn
    the paths cargo prints (relative to each crate) into paths from the root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._crates: list[_Crate] | None = None

    @property
    def crates(self) -> list[_Crate]:
        if self._crates is None:
            self._crates = _find_crates(self.root)
        return self._crates

    def running_file(self, file: str, binary: str) -> str:
        """`src/lib.rs` + `target/debug/deps/a-1234` -> `crates/a/src/lib.rs`."""
        file = file.replace("\\", "/")
        if Path(file).is_absolute():
            try:
                return Path(file).relative_to(self.root).as_posix()
            except ValueError:
                return file
        holders = [c for c in self.crates if (self.root / c.dir / file).is_file()]
        if len(holders) > 1:
            stem = Path(binary).name.rsplit("-", 1)[0]
            wanted = {"src/lib.rs": "lib", "src/main.rs": "package"}.get(file)
            narrowed = [c for c in holders if wanted and stem == (
                c.lib if wanted == "lib" else c.package.replace("-", "_"))]
            holders = narrowed
        if len(holders) == 1:
            return posixpath.normpath(posixpath.join(holders[0].dir, file))
        return file

    def doc_prefix(self, lib: str) -> str:
        for c in self.crates:
            if lib in (c.lib, c.package):
                return "" if c.dir == "." else c.dir
        return ""

    def nextest_file(self, binary_id: str) -> str:
        """nextest binary ids: `pkg` (library), `pkg::it` (tests/it.rs), `pkg::bin/x`."""
        pkg, _, target = binary_id.partition("::")
        crate = next((c for c in self.crates if c.package == pkg), None)
        if crate is None:
            return binary_id
        kind, _, name = target.partition("/") if "/" in target else ("test", "", target)
        if not target:
            candidates = ["src/lib.rs"]
        elif kind == "bin":
            candidates = ["src/main.rs", f"src/bin/{name}.rs", f"src/bin/{name}/main.rs"]
        elif kind in ("example", "bench"):
            candidates = [f"{kind}s/{name}.rs", f"{kind}s/{name}/main.rs"]
        else:
            candidates = [f"tests/{name}.rs", f"tests/{name}/main.rs"]
        for c in candidates:
            if (self.root / crate.dir / c).is_file():
                return posixpath.normpath(posixpath.join(crate.dir, c))
        return binary_id


def _find_crates(root: Path, limit: int = 2000) -> list[_Crate]:
    crates = []
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        seen += 1
        if seen > limit:
            break
        dirnames[:] = [d for d in dirnames
                       if not d.startswith(".") and d not in ("target", "node_modules")]
        if "Cargo.toml" not in filenames:
            continue
        try:
            manifest = tomllib.loads((Path(dirpath) / "Cargo.toml").read_text())
        except (OSError, ValueError):
            continue
        package = manifest.get("package")
        if not isinstance(package, dict) or not isinstance(package.get("name"), str):
            continue
        name = package["name"]
        lib = manifest.get("lib")
        lib_name = lib.get("name") if isinstance(lib, dict) else None
        rel = Path(dirpath).relative_to(root).as_posix()
        crates.append(_Crate(rel, name, lib_name or name.replace("-", "_")))
    return crates


_CARGO_TARGET_FLAGS = {"--lib", "--bins", "--tests", "--examples", "--benches",
                       "--all-targets", "--doc"}
_CARGO_TARGET_VALUE_FLAGS = {"--bin", "--test", "--example", "--bench"}


def _cargo_select(command: Command, test_files: list[str], kind: str,
                  root: Path) -> Command | None:
    """`cargo test --test it` for integration tests (`tests/it.rs`, `tests/it/main.rs`);
    `-p <package>` too for a crate below the root. Anything else: None."""
    files = [_norm(f) for f in test_files if f.strip()]
    if not files:
        return None
    cmd = _Cmd(command)
    invs = list(cmd.invocations(kind))
    if len(invs) != 1:
        return None
    inv = invs[0]
    packages: list[str] = []
    targets: list[str] = []
    for f in files:
        m = re.match(r"^(?:(.*)/)?tests/([^/]+?)(?:\.rs|/main\.rs)$", f)
        if not m:
            return None
        crate_dir, target = m.group(1), m.group(2)
        if crate_dir:
            package = _package_name(root / crate_dir) or posixpath.basename(crate_dir)
            packages += [] if package in packages else [package]
        targets += [] if target in targets else [target]
    # cargo applies every --test to every selected package that has such a target.
    wanted = [*(a for p in packages for a in ("-p", p)), *(a for t in targets for a in ("--test", t))]
    v = inv.values()
    own, _ = _split_dashdash(v[inv.head + 1 :])
    edits = []
    i = 0
    while i < len(own):
        w = own[i]
        index = inv.head + 1 + i
        if w in _CARGO_TARGET_FLAGS or w.split("=", 1)[0] in _CARGO_TARGET_VALUE_FLAGS and "=" in w:
            edits.append(_Edit(inv.simple, index, remove=True))
        elif w in _CARGO_TARGET_VALUE_FLAGS:
            edits += [_Edit(inv.simple, index, remove=True),
                      _Edit(inv.simple, index + 1, remove=True)]
            i += 1
        i += 1
    edits.append(_Edit(inv.simple, inv.head, after=wanted))
    return cmd.render(edits)


def _package_name(crate_dir: Path) -> str | None:
    try:
        name = tomllib.loads((crate_dir / "Cargo.toml").read_text())["package"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) else None


# -- results: Jest and Vitest JSON ---------------------------------------------------------


def _jest_json_results(path: Path, root: Path) -> list[TestCase] | None:
    data = _read_report(path)
    if data is None:
        return None
    try:
        report = json.loads(data)
    except ValueError:
        return None
    if not isinstance(report, dict) or not isinstance(report.get("testResults"), list):
        return None
    cases: list[tuple[str, str, str | None]] = []
    for suite in report["testResults"]:
        if not isinstance(suite, dict):
            continue
        file = _relative(str(suite.get("name", "")), root)
        assertions = [a for a in suite.get("assertionResults") or [] if isinstance(a, dict)]
        failing = False
        for a in assertions:
            titles = [str(t) for t in a.get("ancestorTitles") or []]
            test_id = "::".join([file, *titles, str(a.get("title", ""))])
            status = a.get("status")
            if status == "passed":
                cases.append((test_id, "passed", None))
            elif status == "failed":
                failing = True
                messages = [str(m) for m in a.get("failureMessages") or []]
                cases.append((test_id, "failed", _strip_ansi("\n".join(messages)) or None))
            else:  # pending, skipped, todo, disabled, focused
                cases.append((test_id, "skipped", "todo" if status == "todo" else None))
        if suite.get("status") == "failed" and not failing:
            # The file did not load, or a hook outside any test failed.
            message = suite.get("message") or suite.get("failureMessage") or ""
            cases.append((file, "error", _strip_ansi(str(message)) or None))
    return _cases(cases)


# -- results: node --test ------------------------------------------------------------------


@dataclass
class _NodeResult:
    event: dict[str, Any]
    children: list[_NodeResult]


def _node_results(path: Path, root: Path) -> list[TestCase] | None:
    data = _read_report(path)
    if data is None:
        return None
    # node reports a test after its subtests, so the events come in post-order per
    # file: a result at nesting k adopts the results at nesting k+1 collected so far.
    pending: dict[str, dict[int, list[_NodeResult]]] = {}
    files: list[str] = []
    streams: dict[str, list[str]] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        file = event.get("file") or ""
        if event.get("event") in ("test:stderr", "test:stdout"):
            streams.setdefault(file, []).append(str(event.get("message", "")))
            continue
        if event.get("event") not in ("test:pass", "test:fail"):
            continue
        nesting = event["nesting"] if isinstance(event.get("nesting"), int) else 0
        levels = pending.setdefault(file, {})
        if file not in files:
            files.append(file)
        children: list[_NodeResult] = []
        for k in sorted(k for k in levels if k > nesting):
            children += levels.pop(k)
        levels.setdefault(nesting, []).append(_NodeResult(event, children))
    if not files:
        return None
    cases: list[tuple[str, str, str | None]] = []
    for file in files:
        rel = _relative(file, root) if file else ""
        roots = [r for k in sorted(pending[file]) for r in pending[file][k]]
        for r in roots:
            _node_emit(r, [rel] if rel else [], file, rel, streams, cases)
    return _cases(cases)


def _node_emit(r: _NodeResult, prefix: list[str], file: str, rel: str,
               streams: dict[str, list[str]], cases: list[tuple[str, str, str | None]]) -> None:
    e = r.event
    name = str(e.get("name", ""))
    failed = e.get("event") == "test:fail"
    failure = e.get("failureType")
    error = e.get("error")
    if (not prefix or prefix == [rel]) and not r.children and file and name in (file, rel) and failed:
        # The file itself failed: it did not load, or its process died.
        text = "".join(streams.get(file, [])) or (str(error) if error else "")
        cases.append((rel or name, "error", _strip_ansi(text) or None))
        return
    path = [*prefix, name]
    if e.get("type") == "suite":
        if failed and failure != "subtestsFailed":
            cases.append(("::".join(path), "error", _strip_ansi(str(error or "")) or None))
    else:
        skip, todo = e.get("skip"), e.get("todo")
        if todo:
            note = todo if isinstance(todo, str) else "todo"
            cases.append(("::".join(path), "skipped", note))
        elif skip:
            cases.append(("::".join(path), "skipped", skip if isinstance(skip, str) else None))
        elif not failed:
            cases.append(("::".join(path), "passed", None))
        else:
            outcome = "error" if failure in ("hookFailed", "cancelledByParent") else "failed"
            cases.append(("::".join(path), outcome, _strip_ansi(str(error or "")) or None))
    for child in r.children:
        _node_emit(child, path, file, rel, streams, cases)


# -- shared helpers --------------------------------------------------------------------------


def _cases(items: list[tuple[str, str, str | None]]) -> list[TestCase]:
    """TestCases, one per id (the worst outcome wins, as in testrun), in order."""
    from agent_cli.workspace.testrun import TestCase

    by_id: dict[str, TestCase] = {}
    for test_id, outcome, message in items:
        prior = by_id.get(test_id)
        if prior is None or _RANK[outcome] > _RANK[prior.outcome]:
            by_id[test_id] = TestCase(id=test_id, outcome=outcome, message=_cap(message))  # type: ignore[arg-type]
    return list(by_id.values())


def _cap(text: str | None) -> str | None:
    if not text:
        return None
    text = text.strip("\n")
    if len(text) > _MESSAGE_CAP:
        keep = _MESSAGE_CAP // 4
        text = f"{text[:keep]}\n[...]\n{text[-(_MESSAGE_CAP - keep):]}"
    return text or None


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _norm(path: str) -> str:
    return posixpath.normpath(path.strip().replace("\\", "/")).removeprefix("./")


def _relative(path: str, root: Path) -> str:
    """A path the tool printed (usually absolute), relative to root when inside it."""
    path = path.removeprefix("file://")
    p = Path(path)
    if not p.is_absolute():
        return _norm(path)
    for base in (root, root.resolve()):
        for candidate in (p, p.resolve()):
            try:
                return candidate.relative_to(base.absolute()).as_posix()
            except ValueError:
                continue
    return path


def _forget(report: Path) -> None:
    """Remove a report left by an earlier run, so that a run that writes none is not
    judged by it."""
    with contextlib.suppress(OSError):  # absent; or a directory, which is not read either
        report.unlink()


def _read_report(path: Path) -> bytes | None:
    """A report file's bytes; not through a link (the report directory is writable by
    the tests, and a planted link must not make us read a file the sandbox hides)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            return f.read(_REPORT_CAP)
    except OSError:
        return None
