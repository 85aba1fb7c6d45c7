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

Shell strings follow the rule pytest's narrowing uses (testrun's `narrow`): a string
with any of `& | ; < > $( \\`` or a newline is neither instrumented nor narrowed (its
output may go to another program that must keep receiving what it expects), and its
tool is recognised, for what the plain run prints, only when nothing is piped after
it (`cd sub && cargo test`, not `go test ./... | go-junit-report`). Any other string
is split into words with shlex; an edit keeps the other words as written (or quotes
them again, when that changes nothing for sh). `npm test` whose script has operators
gives no runner. `select` keeps the user's own narrowing: a command that already names
packages, paths, targets or files (other than `./...`), or has a flag we do not know
next to a word that could be its value, is not narrowed (None).

What each tool reports, and how:

- go: `go test -json` (test2json events on stdout). Ids are `<package dir>::TestName`
  (subtests `TestName/sub`), the package directory relative to the project root
  (`.` for the module's root package; the import path for packages outside the
  module). A package that fails without a failing test (build failure, panic in
  init, TestMain exiting) is one `error` case whose id is the package directory.
  Plain `go test` output (no -json) gives no results.
- cargo: libtest's text output (`test name ... ok|FAILED|ignored` and the
  `---- name stdout ----` sections); `--no-fail-fast` is added so that a failing test
  binary does not hide the ones after it, and cargo's own `-q` is dropped (it hides
  the `Running <file>` lines the ids take their file from). Ids are
  `<source file>::module::test`, e.g. `src/lib.rs::tests::adds`, `tests/it.rs::it_works`,
  or for a doc-test `src/lib.rs::add (line 3)`; a test binary that crashed is an
  `error` case whose id is its source file.
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
hooks, a file that did not load, a package that did not build) and `skipped`; an id
reported more than once keeps its worst outcome (passed < skipped < failed < error).
Messages are capped like testrun's: 4,000 characters, the head and the tail.
Reports are read up to 16 MB, never through a link; whatever a test writes into them
or prints, `results` does not raise (fields of the wrong type are skipped).

For the caller: give `instrument` a report directory the tests may write (the
sandbox's scratch directory) and `results` the same one; go and cargo results come
from the combined output, so it must not be redirected away by the command. For
`npm test` running node --test, the flags travel in NODE_OPTIONS (`instrument`'s env):
prepend any NODE_OPTIONS the sandbox already passes.

"""

from __future__ import annotations

import abc
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
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent_cli.workspace.results import TestCase

Command = list[str] | str

_MESSAGE_CAP = 4_000
_REPORT_CAP = 16 * 1024 * 1024
_LINE_CAP = 8_192
"""Longer output lines are never a tool's status line (and are not matched)."""
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_OPERATORS = ("&", "|", ";", "<", ">", "\n", "$(", "`")


class Runner(Protocol):
    """What the test stage needs from a test runner to get per-test results."""

    name: str
    """`go`, `cargo`, `nextest`, `jest`, `vitest` or `node`."""

    def instrument(self, command: Command, report_dir: Path) -> tuple[Command, dict[str, str]]:
        """The command (and extra env vars) that makes the tool write machine-readable
        results (into report_dir when it writes a file), leaving the user's own flags
        intact; the command unchanged when it cannot be instrumented."""
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
    tool = _tool(command)
    if tool is None:
        return None
    if tool.kind != "npm":
        return _RUNNERS[tool.kind](where, None)
    if _shell(command):
        return None  # `cd web && npm test`: whose package.json?
    script = _npm_script(where, tool)
    return _RUNNERS[script.kind](where, script) if script is not None else None


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
        found = _editable(command, "go")
        if found is None:
            return command, {}
        line, tool = found
        end = _index(line.words, ("-args", "--args"), tool.head + 1)
        if any(_flag_name(w).removeprefix("test.") == "json"
               for w in line.words[tool.head + 1 : end]):
            return command, {}
        return line.edit({tool.head: ["-json"]}), {}

    def results(self, output: str, report_dir: Path, root: Path) -> list[TestCase] | None:
        return _go_results(output, Path(root))

    def select(self, command: Command, test_files: list[str]) -> Command | None:
        dirs: list[str] = []
        for f in map(_norm, test_files):
            parts = f.split("/")
            if not f.endswith(".go") or any(
                    p.startswith((".", "_")) or p in ("testdata", "vendor") for p in parts[:-1]):
                continue  # not in `./...`
            pkg = "./" + "/".join(parts[:-1]) if len(parts) > 1 else "."
            if pkg not in dirs:
                dirs.append(pkg)
        found = _editable(command, "go")
        if not dirs or found is None:
            return None
        line, tool = found
        end = _index(line.words, ("-args", "--args"), tool.head + 1)
        if any(_flag_name(w) == "C" for w in line.words[tool.head + 1 : end]):
            return None  # run in another directory
        positional = _positionals(line.words, tool.head + 1, end, _GO_VALUE_FLAGS, _GO_BOOL_FLAGS)
        if positional is None or [line.words[i] for i in positional] != ["./..."]:
            return None  # the user named the packages (or none: the current one)
        return line.edit({positional[0]: dirs}, remove={positional[0]})


class CargoRunner(_Base):
    """`cargo test`, read from libtest's text output."""

    name = "cargo"

    def instrument(self, command: Command, report_dir: Path) -> tuple[Command, dict[str, str]]:
        found = _editable(command, "cargo")
        if found is None:
            return command, {}
        line, tool = found
        words = line.words
        end = _index(words, ("--",), tool.head + 1)
        insert: dict[int, list[str]] = {}
        if "--no-fail-fast" not in words[tool.head + 1 : end]:
            insert[tool.head] = ["--no-fail-fast"]
        # cargo's -q hides the `Running <file>` lines (ids would lose their file) and
        # asks libtest for one character per test.
        remove = {i for i in range(tool.prog + 1, end) if words[i] in ("-q", "--quiet")}
        binary = words[end + 1 :]
        if any(w in ("-q", "--quiet") for w in binary) and not any(
                _flag_name(w) == "format" for w in binary):
            insert.setdefault(len(words) - 1, []).append("--format=pretty")
        return line.edit(insert, remove), {}

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
        found = _editable(command, "nextest")
        if found is None:
            return command, {}
        line, tool = found
        own = line.words[tool.head + 1 : _index(line.words, ("--",), tool.head + 1)]
        if any(_flag_name(w) == "tool-config-file" for w in own):
            return command, {}
        report_dir.mkdir(parents=True, exist_ok=True)
        config = report_dir / self.config_name
        junit = report_dir / self.junit_name
        # Absolute, so nextest does not join it to its store directory. A tool's config
        # ranks below the repository's own .config/nextest.toml.
        config.write_text(f"[profile.default.junit]\npath = {json.dumps(str(junit))}\n")
        extra = ["--tool-config-file", f"agent:{config}"]
        if "--no-fail-fast" not in own:
            extra.append("--no-fail-fast")
        return line.edit({tool.head: extra}), {}

    def results(self, output: str, report_dir: Path, root: Path) -> list[TestCase] | None:
        data = _read_report(Path(report_dir) / self.junit_name)
        if data is None:
            return None
        try:
            tree = ET.fromstring(data)
        except (ET.ParseError, ValueError, RecursionError):
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


class _JsonReportRunner(_Base, abc.ABC):
    """Jest and Vitest: the same JSON report, the same way of adding flags and files."""

    report_name = ""
    select_flags: tuple[str, ...] = ()

    @abc.abstractmethod
    def _flags(self, report_dir: Path, existing: list[str]) -> list[str] | None:
        """The flags that ask this tool for its report, or None: the user's own."""

    def instrument(self, command: Command, report_dir: Path) -> tuple[Command, dict[str, str]]:
        return _js_instrument(self, command, report_dir), {}

    def results(self, output: str, report_dir: Path, root: Path) -> list[TestCase] | None:
        return _jest_json_results(Path(report_dir) / self.report_name, Path(root))

    def select(self, command: Command, test_files: list[str]) -> Command | None:
        return _js_select(self, command, test_files)


class JestRunner(_JsonReportRunner):
    """Jest, read from its built-in JSON report (`--json --outputFile=F`)."""

    name = "jest"
    report_name = "jest-results.json"
    select_flags: tuple[str, ...] = ("--runTestsByPath",)
    """Positional arguments are regular expressions; --runTestsByPath makes them paths."""

    def _flags(self, report_dir: Path, existing: list[str]) -> list[str] | None:
        if any(_flag_name(w) in ("json", "outputFile") for w in existing):
            return None  # the user's own JSON report: leave it alone
        return ["--json", f"--outputFile={Path(report_dir) / self.report_name}"]


class VitestRunner(_JsonReportRunner):
    """Vitest, read from its built-in JSON reporter (same shape as Jest's)."""

    name = "vitest"
    report_name = "vitest-results.json"
    select_flags: tuple[str, ...] = ()

    def _flags(self, report_dir: Path, existing: list[str]) -> list[str] | None:
        if any(_flag_name(w).startswith("outputFile") for w in existing):
            return None
        path = Path(report_dir) / self.report_name
        ours = ["--reporter=json", f"--outputFile.json={path}"]
        if any(_flag_name(w) == "reporter" for w in existing):
            return ours  # the user chose the reporters people see
        return ["--reporter=default", *ours]


class NodeTestRunner(_Base):
    """`node --test`, through a reporter module that writes node's test events as
    JSON lines (node's own JUnit reporter does not say which file a test is in)."""

    name = "node"
    reporter_name = "agent-node-reporter.mjs"
    report_name = "node-tests.jsonl"

    def instrument(self, command: Command, report_dir: Path) -> tuple[Command, dict[str, str]]:
        report_dir = Path(report_dir)
        reporter = report_dir / self.reporter_name
        dest = report_dir / self.report_name
        _forget(dest)
        if not _node_has_reporters():
            return command, {}
        ours = [f"--test-reporter={reporter}", f"--test-reporter-destination={dest}"]
        spec = ["--test-reporter=spec", "--test-reporter-destination=stdout"]
        out: Command = command
        env: dict[str, str] = {}
        if (found := _editable(command, "node")) is not None:
            line, tool = found
            words = line.words
            args = _node_args(words, tool.prog)
            if args.ambiguous:
                return command, {}
            # Ours go after the user's options, so that node, which pairs reporters
            # with destinations by position, pairs the user's first.
            anchor = args.first_positional - 1
            if words[anchor] == "--":
                anchor -= 1
            flags = words[tool.prog + 1 : anchor + 1]
            reporters = sum(_flag_name(w) == "test-reporter" for w in flags)
            destinations = sum(_flag_name(w) == "test-reporter-destination" for w in flags)
            if reporters == 0:
                extra = [*ours, *spec]
            elif destinations == reporters:
                extra = ours
            elif reporters == 1 and destinations == 0:
                extra = [ours[0], "--test-reporter-destination=stdout", ours[1]]
            else:
                return command, {}
            out = line.edit({anchor: extra})
        elif (npm := _npm_words(command, self.script)) is not None:
            if any(_flag_name(w).startswith("test-reporter") for w in npm):
                return command, {}
            # The script's command line is not ours to change (args after `npm test --`
            # land after its file arguments, where node takes them for files);
            # NODE_OPTIONS reaches it. The caller should prepend any NODE_OPTIONS of its own.
            env["NODE_OPTIONS"] = " ".join(_node_option_quote(o) for o in [*ours, *spec])
        else:
            return command, {}
        report_dir.mkdir(parents=True, exist_ok=True)
        reporter.write_text(_NODE_REPORTER)
        return out, env

    def results(self, output: str, report_dir: Path, root: Path) -> list[TestCase] | None:
        return _node_results(Path(report_dir) / self.report_name, Path(root))

    def select(self, command: Command, test_files: list[str]) -> Command | None:
        return _js_select(self, command, test_files)


_RUNNERS: dict[str, Callable[[Path, _Script | None], Runner]] = {
    "go": GoRunner,
    "cargo": CargoRunner,
    "nextest": NextestRunner,
    "jest": JestRunner,
    "vitest": VitestRunner,
    "node": NodeTestRunner,
}


# -- commands: argv lists and shell strings --------------------------------------------


def _shell(command: Command) -> bool:
    """A shell string with operators, substitutions or redirections (testrun's rule,
    and a lone `&`)."""
    return isinstance(command, str) and any(op in command for op in _OPERATORS)


@dataclass
class _Argv:
    """A command that can be edited word by word: an argv list, or a shell string
    without operators whose words keep the text they were written with (quotes,
    `$VAR`, globs), so that an edit changes nothing else."""

    command: Command
    words: list[str]
    """The words after quote removal."""
    texts: list[str]
    """Each word as written (for an argv list: the word)."""

    def edit(self, insert: dict[int, list[str]], remove: Collection[int] = ()) -> Command:
        """The command with `insert[i]` after word i, without the words in `remove`."""
        if not any(insert.values()) and not remove:
            return self.command
        as_list = isinstance(self.command, list)
        out: list[str] = []
        for i, text in enumerate(self.words if as_list else self.texts):
            if i not in remove:
                out.append(text)
            added = insert.get(i, [])
            out.extend(added if as_list else map(shlex.quote, added))
        return out if as_list else " ".join(out)


def _argv(command: Command) -> _Argv | None:
    """The command as editable words; None for a shell string with operators, or one
    whose words can be neither taken as written nor quoted again without changing what
    the shell makes of them (`X="$HOME/a b"`)."""
    if isinstance(command, list):
        return _Argv(command, list(command), list(command))
    if _shell(command):
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    try:
        lexer = shlex.shlex(command, posix=False)  # words as written; no quote inside one
        lexer.whitespace_split, lexer.commenters = True, ""
        texts = list(lexer)
        if len(texts) != len(words) or any(
                t.startswith("#") or shlex.split(t) != [w] for t, w in zip(texts, words)):
            raise ValueError(command)
    except ValueError:
        if any(c in command for c in "$`*?[{~#"):
            return None
        texts = [_quote(w) for w in words]
    return _Argv(command, words, texts)


def _quote(word: str) -> str:
    """A word for sh (an assignment stays one: `X='a b'`, not `'X=a b'`)."""
    m = _ASSIGNMENT.match(word)
    return word[: m.end()] + shlex.quote(word[m.end() :]) if m else shlex.quote(word)


@dataclass
class _Tool:
    kind: str
    """go, cargo, nextest, jest, vitest, node or npm."""
    words: list[str]
    """The words of the simple command that runs it."""
    prog: int
    """Index of the program (`go`, `cargo`, `jest`, `node`, `npm`, ...)."""
    head: int
    """Index of the last word of the tool's own head: `test` in `go test`, `run` in
    `vitest run` or `cargo nextest run`, `--test` for node, the program for jest."""


def _editable(command: Command, kind: str) -> tuple[_Argv, _Tool] | None:
    """The command's words and the `kind` tool they run, when the command may be edited."""
    line = _argv(command)
    tool = _find_tool(line.words) if line is not None else None
    return (line, tool) if line is not None and tool is not None and tool.kind == kind else None


_PUNCTUATION = "();<>|&\n"


def _tool(command: Command) -> _Tool | None:
    """The tool a command runs: an argv list's; in a shell string, that of the first
    simple command running one, unless something is piped after it."""
    if isinstance(command, list):
        return _find_tool(command)
    if "$(" in command or "`" in command or "<<" in command:
        return None
    lexer = shlex.shlex(command, posix=True, punctuation_chars=_PUNCTUATION)
    lexer.whitespace, lexer.whitespace_split = " \t\r", True
    found: _Tool | None = None
    words: list[str] = []
    redirect = False
    try:
        for token in lexer:
            if not token or token.strip(_PUNCTUATION):  # a word
                if redirect:
                    redirect = False  # the redirection's target
                else:
                    words.append(token)
            elif "<" in token or ">" in token:
                redirect = True
            else:  # an operator ends a simple command
                found = found or _find_tool(words)
                words = []
                if found is not None and token in ("|", "|&"):
                    return None  # its output goes to another program
    except ValueError:
        return None
    return found or _find_tool(words)


_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_PREFIXES = {"time", "exec", "command", "nohup", "builtin", "if", "then", "else", "elif",
             "do", "while", "until", "!", "{"}


def _find_tool(v: list[str]) -> _Tool | None:
    """The tool a simple command runs, past prefixes such as `env X=1`, `timeout 60`
    or `npx`."""
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

    def found(kind: str, head: int) -> _Tool:
        return _Tool(kind, v, i, head)

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
        args = _node_args(v, i)
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


def _vitest_head(tool: _Tool) -> _Tool | None:
    nxt = tool.words[tool.head + 1] if tool.head + 1 < len(tool.words) else ""
    if nxt in ("run", "watch", "dev", "related"):
        tool.head += 1
    elif nxt in ("bench", "list", "init", "typecheck"):
        return None
    return tool


def _flag_name(word: str) -> str:
    """`--outputFile=x` -> `outputFile`, `-json` -> `json`; "" for a non-flag."""
    if not word.startswith("-") or word in ("-", "--"):
        return ""
    return word.lstrip("-").split("=", 1)[0]


def _index(words: list[str], marks: tuple[str, ...], start: int) -> int:
    """Index of the first of `marks` at or after `start`, else len(words)."""
    return next((i for i in range(start, len(words)) if words[i] in marks), len(words))


def _positionals(words: list[str], start: int, end: int, values: Collection[str],
                 bools: Collection[str]) -> list[int] | None:
    """Indexes of the positional words in words[start:end], given the flags known to
    take a value and those known to take none (Go's `-test.x` counts as `-x`). None
    when a flag we do not know is followed by a word that could be its value."""
    out: list[int] = []
    i = start
    while i < end:
        w = words[i]
        name = _flag_name(w).removeprefix("test.")
        if not name:
            out.append(i)
        elif "=" not in w and name in values:
            i += 1
        elif "=" not in w and name not in bools and i + 1 < end and not _flag_name(words[i + 1]):
            return None
        i += 1
    return out


# -- npm -------------------------------------------------------------------------------


@dataclass
class _Script:
    """How `npm test` runs a tool: scripts.test in package.json, a single command."""

    kind: str
    words: list[str]
    """The tool's words in the script (its program and arguments)."""
    head: int


def _npm_script(root: Path, tool: _Tool) -> _Script | None:
    where = root
    for a, b in itertools.pairwise(tool.words[: tool.head]):
        if a in ("--prefix", "-C"):
            where = root / b
    try:
        data = json.loads((where / "package.json").read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    scripts = data.get("scripts") if isinstance(data, dict) else None
    script = scripts.get("test") if isinstance(scripts, dict) else None
    if not isinstance(script, str) or _shell(script):
        return None  # none, or several commands: arguments would reach the last one only
    try:
        words = shlex.split(script)
    except ValueError:
        return None
    found = _find_tool(words)
    if found is None or found.kind == "npm":
        return None
    return _Script(found.kind, words[found.prog :], found.head - found.prog)


def _npm_words(command: Command, script: _Script | None) -> list[str] | None:
    """For `npm test [-- args]` running `script`: the tool's arguments after its head,
    the script's followed by the command's; None when the command is not that."""
    found = _editable(command, "npm")
    if found is None or script is None:
        return None
    line, tool = found
    passed = line.words[tool.head + 1 :]
    args = passed[passed.index("--") + 1 :] if "--" in passed else []
    return [*script.words[script.head + 1 :], *args]


def _npm_append(command: Command, args: list[str]) -> Command:
    """`npm test` with `args` passed on to its script."""
    found = _editable(command, "npm")
    assert found is not None
    line, tool = found
    extra = args if "--" in line.words[tool.head + 1 :] else ["--", *args]
    return line.edit({len(line.words) - 1: extra})


# -- JavaScript: instrumenting and selecting --------------------------------------------


def _js_instrument(runner: _JsonReportRunner, command: Command, report_dir: Path) -> Command:
    _forget(Path(report_dir) / runner.report_name)
    found = _editable(command, runner.name)
    if found is not None:
        line, tool = found
        flags = runner._flags(report_dir, line.words[tool.head + 1 :])
        return line.edit({tool.head: flags}) if flags else command
    existing = _npm_words(command, runner.script)
    if existing is None:
        return command
    flags = runner._flags(report_dir, existing)
    return _npm_append(command, flags) if flags else command


def _js_select(runner: _JsonReportRunner | NodeTestRunner, command: Command,
               test_files: list[str]) -> Command | None:
    """The command with the files as its file arguments, when it has none and no word
    that could be one (a flag's value, a pattern): otherwise the user narrowed it."""
    files = [_norm(f) for f in test_files if f.strip()]
    if not files:
        return None
    found = _editable(command, runner.name)
    if found is not None:
        line, tool = found
        words = line.words
        if isinstance(runner, NodeTestRunner):
            args = _node_args(words, tool.prog)
            if args.ambiguous or args.first_positional < len(words):
                return None
            return line.edit({len(words) - 1: files})
        if any(not w.startswith("-") for w in words[tool.head + 1 :]):
            return None
        extra = [f for f in runner.select_flags if f not in words]
        # Right after the tool's head, where no flag can take them for its value.
        return line.edit({tool.head: [*extra, *files]})
    existing = _npm_words(command, runner.script)
    npm = _editable(command, "npm")
    if existing is None or npm is None or any(
            _flag_name(w) in ("prefix", "C", "workspace", "w") for w in npm[0].words[: npm[1].head]):
        return None  # not `npm test`, or run elsewhere than the root
    if isinstance(runner, NodeTestRunner):
        args = _node_args(["node", *existing], 0)
        if args.ambiguous or args.first_positional <= len(existing):
            return None
        return _npm_append(command, files)
    if any(not w.startswith("-") for w in existing):
        return None
    extra = [f for f in runner.select_flags if f not in existing]
    before = [*existing, *extra][-1:]
    if before and "=" not in before[0] and before[0] not in runner.select_flags:
        return None  # the files would follow a flag that may take a value
    return _npm_append(command, [*extra, *files])


# -- node --test --------------------------------------------------------------------------


@dataclass
class _NodeArgs:
    test_flag: int | None
    first_positional: int
    """node stops reading options at its first positional argument (the script, or
    with --test the first file)."""
    ambiguous: bool
    """An option we do not know is followed by a word: its value, or a file?"""


_NODE_VALUE_FLAGS = {
    "-r", "--require", "--import", "--loader", "--experimental-loader", "--test-name-pattern",
    "--test-skip-pattern", "--test-reporter", "--test-reporter-destination",
    "--test-concurrency", "--test-timeout", "--test-shard", "--conditions", "-C",
    "--input-type", "--env-file", "--watch-path", "--experimental-config-file",
    "--test-coverage-include", "--test-coverage-exclude", "--test-isolation",
    "--test-global-setup", "--title", "--stack-size", "--max-old-space-size",
}
_NODE_BOOL_FLAGS = {
    "--test", "--watch", "--test-only", "--test-force-exit", "--experimental-test-coverage",
    "--experimental-test-module-mocks", "--experimental-test-snapshots", "--no-warnings",
    "--enable-source-maps", "--trace-warnings", "--trace-uncaught", "--expose-gc",
    "--experimental-vm-modules", "--experimental-strip-types", "--inspect", "--inspect-brk",
}


def _node_args(v: list[str], prog: int) -> _NodeArgs:
    test_flag = None
    ambiguous = False
    i = prog + 1
    while i < len(v):
        w = v[i]
        if w == "--":
            return _NodeArgs(test_flag, i + 1, ambiguous)
        if not w.startswith("-") or w == "-":
            break
        if w == "--test":
            test_flag = i
        if w in _NODE_VALUE_FLAGS:
            i += 2
            continue
        if "=" not in w and w not in _NODE_BOOL_FLAGS and i + 1 < len(v) and not v[i + 1].startswith("-"):
            ambiguous = True
        i += 1
    return _NodeArgs(test_flag, i, ambiguous)


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


# -- Go: flags, results ------------------------------------------------------------------


_GO_VALUE_FLAGS = {
    "C", "p", "asmflags", "buildmode", "compiler", "gccgoflags", "gcflags", "installsuffix",
    "ldflags", "mod", "modfile", "overlay", "pgo", "pkgdir", "tags", "toolexec", "covermode",
    "coverpkg", "o", "exec", "bench", "benchtime", "blockprofile", "blockprofilerate",
    "count", "coverprofile", "cpu", "cpuprofile", "fuzz", "fuzzcachedir", "fuzzminimizetime",
    "fuzztime", "list", "memprofile", "memprofilerate", "mutexprofile",
    "mutexprofilefraction", "outputdir", "parallel", "run", "skip", "shuffle", "timeout",
    "trace", "vet", "debug",
}
_GO_BOOL_FLAGS = {
    "a", "n", "x", "v", "work", "race", "msan", "asan", "cover", "json", "failfast", "short",
    "benchmem", "c", "i", "linkshared", "trimpath", "buildvcs", "modcacherw", "fullpath",
    "paniconexit0",
}


@dataclass
class _GoTest:
    output: _Text = field(default_factory=lambda: _Text())
    outcome: str | None = None


@dataclass
class _GoPackage:
    tests: dict[str, _GoTest] = field(default_factory=dict)
    output: _Text = field(default_factory=lambda: _Text())
    failed: bool = False
    failed_build: str | None = None
    """Go 1.24+: the ImportPath of the build that failed; `[build failed]` before."""


_GO_OUTCOMES = {"pass": "passed", "bench": "passed", "fail": "failed", "skip": "skipped"}
_GO_PLAIN_FAIL = re.compile(r"FAIL\s+(\S+)\s+\[(?:build failed|setup failed)\]")
_GO_PLAIN_VERDICT = re.compile(r"--- (?:PASS|FAIL|SKIP): |=== RUN |ok\s|PASS$|FAIL$|FAIL\s+\S+\s+[\d(]")
"""A line plain `go test` prints; under -json, test2json wraps them all in events."""
_GO_FRAMING = ("=== RUN", "=== PAUSE", "=== CONT", "=== NAME")


def _go_results(output: str, root: Path) -> list[TestCase] | None:
    packages: dict[str, _GoPackage] = {}
    build_output: dict[str, _Text] = {}
    header: str | None = None
    saw_events = False
    for line in _lines(output):
        if line.startswith("{"):
            event = _json(line)
            if not isinstance(event, dict):
                continue
            header = None
            action, text = event.get("Action"), event.get("Output")
            text = text if isinstance(text, str) else ""
            if action in ("build-output", "build-fail"):
                # Go 1.24+: compiler output as events of the package being built.
                key = event.get("ImportPath")
                if action == "build-output" and isinstance(key, str):
                    build_output.setdefault(key, _Text()).add(text)
                continue
            pkg, test = event.get("Package"), event.get("Test", "")
            if not isinstance(pkg, str) or not isinstance(action, str) or not isinstance(test, str):
                continue
            saw_events = True
            p = packages.setdefault(pkg, _GoPackage())
            if test:
                t = p.tests.setdefault(test, _GoTest())
                if action == "output" and not text.startswith(_GO_FRAMING):
                    t.output.add(text)
                elif action in _GO_OUTCOMES:
                    t.outcome = _worst(t.outcome, _GO_OUTCOMES[action])
            elif action == "output":
                p.output.add(text)
            elif action == "fail":
                p.failed = True
                failed_build = event.get("FailedBuild")
                if isinstance(failed_build, str) and failed_build:
                    p.failed_build = failed_build
            continue
        if len(line) > _LINE_CAP:
            continue
        # Plain text: before Go 1.24, build errors go to stderr as `# pkg` blocks and
        # `FAIL pkg [build failed]` to stdout.
        m = _GO_PLAIN_FAIL.match(line)
        if m:
            p = packages.setdefault(m.group(1), _GoPackage())
            p.failed, p.failed_build = True, p.failed_build or m.group(1)
            p.output.add(line + "\n")
            saw_events = True
            header = None
        elif _GO_PLAIN_VERDICT.match(line):
            return None  # plain `go test` output: any JSON-looking line is a test's own
        elif line.startswith("# "):
            header = line[2:]
            build_output.setdefault(header, _Text()).add(line + "\n")
        elif header is not None:
            build_output[header].add(line + "\n")
    if not saw_events:
        return None
    modules = _go_modules(root)
    build_messages = _go_builds(build_output)
    cases: list[tuple[str, str, str | None]] = []
    for pkg, p in packages.items():
        where = _go_package_dir(pkg, modules)
        failing = False
        for name, t in p.tests.items():
            if t.outcome is None:
                if not p.failed:
                    continue  # cut short (output truncated or still running)
                # The binary died in this test (panic, timeout, os.Exit).
                cases.append((f"{where}::{name}", "failed", t.output.text() + p.output.text()))
                failing = True
                continue
            failing = failing or t.outcome == "failed"
            message = t.output.text() if t.outcome != "passed" else None
            cases.append((f"{where}::{name}", t.outcome, message))
        if p.failed and not failing:
            cases.append((where, "error", build_messages(pkg, p.failed_build) + p.output.text()))
    return _cases(cases)


def _go_builds(output: dict[str, _Text]) -> Callable[[str, str | None], str]:
    """The compiler's messages for a package: its own build (`pkg [pkg.test]`,
    `pkg.test`, `pkg_test [pkg.test]`), else, when its build failed, everything that
    failed to build (a broken dependency fails every package importing it)."""
    by_package: dict[str, _Text] = {"": _Text()}  # "": everything
    for key, text in output.items():
        pkg = key.split(" ")[0].removesuffix(".test").removesuffix("_test")
        for where in (pkg, ""):
            by_package.setdefault(where, _Text()).add(text.text())

    def of(pkg: str, failed_build: str | None) -> str:
        if failed_build and failed_build in output:
            return output[failed_build].text()
        if pkg in by_package:
            return by_package[pkg].text()
        return by_package[""].text() if failed_build else ""

    return of


def _go_modules(root: Path) -> list[tuple[str, str]]:
    """(module path, directory relative to root), from go.mod and go.work's `use`."""
    dirs = ["."]
    work = _read_text(root / "go.work")
    for block in re.findall(r"^use\s*\(([^)]*)\)", work, re.MULTILINE):
        dirs += block.split()
    dirs += re.findall(r"^use\s+([^\s(]+)", work, re.MULTILINE)
    out = []
    for d in dict.fromkeys(posixpath.normpath(d.strip('"')) for d in dirs):
        m = re.search(r"^module\s+\"?([^\s\"]+)", _read_text(root / d / "go.mod"), re.MULTILINE)
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


# -- Cargo: selecting, results -----------------------------------------------------------


_CARGO_NARROWING = {"lib", "bins", "bin", "tests", "test", "examples", "example", "benches",
                    "bench", "all-targets", "doc", "p", "package", "exclude", "manifest-path",
                    "C"}
"""Flags that choose the targets or packages: the user narrowed the run."""
_CARGO_VALUE_FLAGS = {
    "F", "features", "j", "jobs", "profile", "target", "target-dir", "message-format",
    "color", "config", "Z", "lockfile-path", "artifact-dir",
    # nextest
    "E", "filterset", "filter-expr", "P", "partition", "test-threads", "build-jobs",
    "retries", "max-fail", "run-ignored", "failure-output", "success-output",
    "status-level", "final-status-level", "no-tests", "tool-config-file", "config-file",
    "cargo-profile", "show-progress", "message-format-version", "test-timeout",
}
_CARGO_BOOL_FLAGS = {
    "q", "quiet", "v", "verbose", "no-run", "no-fail-fast", "fail-fast", "all-features",
    "no-default-features", "r", "release", "frozen", "locked", "offline",
    "ignore-rust-version", "future-incompat-report", "unit-graph", "keep-going", "timings",
    "workspace", "all",
    # nextest
    "no-capture", "nocapture", "cargo-quiet", "cargo-verbose", "hide-progress-bar",
    "ignore-default-filter",
}


def _cargo_select(command: Command, test_files: list[str], kind: str,
                  root: Path) -> Command | None:
    """`cargo test --test it` for integration tests (`tests/it.rs`, `tests/it/main.rs`);
    `-p <package>` too for a crate below the root, when the run covers the workspace.
    None for any other file, and for a command that already chooses what it runs."""
    files = [_norm(f) for f in test_files if f.strip()]
    found = _editable(command, kind)
    if not files or found is None:
        return None
    line, tool = found
    words = line.words
    end = _index(words, ("--",), tool.head + 1)
    own = words[tool.prog + 1 : end]
    if any(_flag_name(w) in _CARGO_NARROWING or re.match(r"-[pC]", w) for w in own):
        return None
    if _positionals(words, tool.head + 1, end, _CARGO_VALUE_FLAGS, _CARGO_BOOL_FLAGS) != []:
        return None  # a test-name filter, or a flag we do not know
    workspace = [i for i in range(tool.head + 1, end) if words[i] in ("--workspace", "--all")]
    manifest = _manifest(root) or {}
    whole = bool(workspace) or ("workspace" in manifest and "package" not in manifest)
    packages: list[str] = []
    targets: list[str] = []
    for f in files:
        m = re.match(r"^(?:(.*)/)?tests/([^/]+?)(?:\.rs|/main\.rs)$", f)
        if not m:
            return None
        crate_dir, target = m.group(1), m.group(2)
        if crate_dir:
            package = _package_name(root / crate_dir)
            if package is None or not whole:
                return None  # not a crate, or not one the command runs
            packages += [] if package in packages else [package]
        targets += [] if target in targets else [target]
    # cargo applies every --test to every selected package that has such a target.
    wanted = [*(a for p in packages for a in ("-p", p)), *(a for t in targets for a in ("--test", t))]
    return line.edit({tool.head: wanted}, remove=workspace if packages else ())


def _manifest(crate_dir: Path) -> dict[str, Any] | None:
    try:
        return tomllib.loads((crate_dir / "Cargo.toml").read_text())
    except (OSError, ValueError, RecursionError):
        return None


def _package_name(crate_dir: Path) -> str | None:
    package = (_manifest(crate_dir) or {}).get("package")
    name = package.get("name") if isinstance(package, dict) else None
    return name if isinstance(name, str) else None


_CARGO_RUNNING = re.compile(r"\s*Running (?:unittests )?(.+) \(([^()]+)\)\s*$")
_CARGO_DOCTESTS = re.compile(r"\s*Doc-tests (\S+)\s*$")
_CARGO_RUN_COUNT = re.compile(r"running (\d+) tests?$")
_CARGO_TEST = re.compile(r"test (.+?) \.\.\. (ok|FAILED|ignored(?:, (.*))?|bench:.*)$")
_CARGO_SECTION = re.compile(r"---- (.+) (?:stdout|stderr) ----$")


def _cargo_results(output: str, root: Path) -> list[TestCase] | None:
    crates = _Crates(root)
    cases: dict[tuple[str, str], tuple[str, str | None]] = {}
    messages: dict[tuple[str, str], _Text] = {}
    binary = ""          # the current test binary's source file, e.g. `src/lib.rs`
    doc_prefix: str | None = None
    started = finished = False
    announced = read = 0  # tests the binary said it runs; result lines read
    crash: _Text | None = None
    section: tuple[str, str] | None = None
    saw_tests = False

    def key(name: str) -> tuple[str, str]:
        return (binary, name) if doc_prefix is None else ("doc:" + doc_prefix, name)

    def add(k: tuple[str, str], outcome: str, message: str | None) -> None:
        prior = cases.get(k)
        if prior is None or _worst(prior[0], outcome) != prior[0]:
            cases[k] = (outcome, message)

    def close_binary() -> None:
        if started and not finished and crash is not None and binary:
            add((binary, ""), "error", crash.text())

    for line in _lines(output):
        if len(line) > _LINE_CAP:
            m = d = t = s = None
        else:
            m, d = _CARGO_RUNNING.match(line), _CARGO_DOCTESTS.match(line)
            t, s = _CARGO_TEST.match(line), _CARGO_SECTION.match(line)
        if m or d:
            close_binary()
            binary = crates.running_file(m.group(1), m.group(2)) if m else ""
            doc_prefix = crates.doc_prefix(d.group(1)) if d else None
            started = finished = False
            announced = read = 0
            crash, section = None, None
            continue
        if section is not None:
            # A failing test's captured output: anything goes, up to the next section
            # or the list of failures after the last one.
            if s:
                section = key(s.group(1))
                messages[section] = _Text()
            elif line == "failures:" or line.startswith("test result: "):
                section = None
                finished = finished or line.startswith("test result: ")
            else:
                messages[section].add(line + "\n")
            continue
        count = _CARGO_RUN_COUNT.match(line) if not started or finished else None
        if count:
            started, finished, saw_tests = True, False, True
            announced, read, crash = int(count.group(1)), 0, None
            continue
        if line.startswith("test result: "):
            finished, section = True, None
            if announced and not read:
                return None  # a format we do not read (`--format terse`, `-q`)
            continue
        if t:
            name = t.group(1).removesuffix(" - should panic")
            verdict = t.group(2)
            outcome = ("passed" if verdict == "ok" or verdict.startswith("bench")
                       else "failed" if verdict == "FAILED" else "skipped")
            add(key(name), outcome, (t.group(3) or None) if outcome == "skipped" else None)
            read += 1
            continue
        if s:
            section = key(s.group(1))
            messages[section] = _Text()
            continue
        if started and not finished and (crash is not None or line.startswith("error: test failed")):
            crash = crash or _Text()
            crash.add(line + "\n")
    close_binary()
    if not saw_tests:
        return None  # it did not build, or printed nothing we read
    out: list[tuple[str, str, str | None]] = []
    for (where, name), (outcome, message) in cases.items():
        if where.startswith("doc:"):
            test_id = _doctest_id(where[4:], name)
        elif not name:
            test_id = where
        else:
            test_id = f"{where}::{name}" if where else name
        if outcome == "failed":
            text = messages.get((where, name))
            message = text.text() if text is not None else None
        out.append((test_id, outcome, message))
    return _cases(out)


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
        if file.startswith("/"):
            return _relative(file, self.root) or file
        holders = [c for c in self.crates if (self.root / c.dir / file).is_file()]
        if len(holders) > 1:
            stem = Path(binary).name.rsplit("-", 1)[0]
            wanted = {"src/lib.rs": "lib", "src/main.rs": "package"}.get(file)
            holders = [c for c in holders if wanted and stem == (
                c.lib if wanted == "lib" else c.package.replace("-", "_"))]
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
    for dirpath, dirnames, filenames in itertools.islice(os.walk(root), limit):
        dirnames[:] = [d for d in dirnames
                       if not d.startswith(".") and d not in ("target", "node_modules")]
        if "Cargo.toml" not in filenames:
            continue
        manifest = _manifest(Path(dirpath)) or {}
        package, lib = manifest.get("package"), manifest.get("lib")
        name = package.get("name") if isinstance(package, dict) else None
        lib_name = lib.get("name") if isinstance(lib, dict) else None
        if not isinstance(name, str):
            continue
        rel = Path(dirpath).relative_to(root).as_posix()
        lib_name = lib_name if isinstance(lib_name, str) else name.replace("-", "_")
        crates.append(_Crate(rel, name, lib_name))
    return crates


# -- results: Jest and Vitest JSON ---------------------------------------------------------


def _jest_json_results(path: Path, root: Path) -> list[TestCase] | None:
    report = _json(_read_report(path))
    if not isinstance(report, dict) or not isinstance(report.get("testResults"), list):
        return None
    cases: list[tuple[str, str, str | None]] = []
    for suite in report["testResults"]:
        if not isinstance(suite, dict) or not isinstance(suite.get("name"), str):
            continue
        file = _relative(suite["name"], root)
        assertions = suite.get("assertionResults")
        if file is None:
            continue
        failing = False
        for a in assertions if isinstance(assertions, list) else []:
            if not isinstance(a, dict):
                continue
            titles = a.get("ancestorTitles") or []
            if not isinstance(titles, list) or not _strings([*titles, a.get("title")]):
                continue
            test_id = "::".join([file, *titles, a["title"]])
            status = a.get("status")
            if status == "passed":
                cases.append((test_id, "passed", None))
            elif status == "failed":
                failing = True
                messages = a.get("failureMessages")
                text = "\n".join(_text_items(messages))
                cases.append((test_id, "failed", _strip_ansi(text) or None))
            else:  # pending, skipped, todo, disabled, focused
                cases.append((test_id, "skipped", "todo" if status == "todo" else None))
        if suite.get("status") == "failed" and not failing:
            # The file did not load, or a hook outside any test failed.
            message = next(_text_items([suite.get("message"), suite.get("failureMessage")]), "")
            cases.append((file, "error", _strip_ansi(message) or None))
    return _cases(cases)


def _strings(items: list[Any]) -> bool:
    return all(isinstance(x, str) for x in items)


def _text_items(items: Any) -> Iterator[str]:
    """The non-empty strings of a list (a report's message field may be anything)."""
    return (x for x in items if isinstance(x, str) and x) if isinstance(items, list) else iter(())


# -- results: node --test ------------------------------------------------------------------


_NODE_DEPTH = 100
"""Results nested deeper are left out (each id would repeat the whole chain)."""


@dataclass
class _NodeResult:
    event: dict[str, Any]
    nesting: int
    children: list[_NodeResult] = field(default_factory=list)


def _node_results(path: Path, root: Path) -> list[TestCase] | None:
    data = _read_report(path)
    if data is None:
        return None
    # node reports a test after its subtests, so the events come in post-order per
    # file: a result at nesting k adopts the results above it on the file's stack that
    # are nested deeper.
    stacks: dict[str, list[_NodeResult]] = {}
    streams: dict[str, _Text] = {}
    for line in _lines(data.decode("utf-8", "replace")):
        event = _json(line)
        if not isinstance(event, dict):
            continue
        file = event.get("file") or ""
        kind = event.get("event")
        if not isinstance(file, str) or "\x00" in file:
            continue
        if kind in ("test:stderr", "test:stdout"):
            message = event.get("message")
            if isinstance(message, str):
                streams.setdefault(file, _Text()).add(message)
            continue
        nesting = event.get("nesting", 0)
        if kind not in ("test:pass", "test:fail") or not isinstance(event.get("name"), str) \
                or not isinstance(nesting, int):
            continue
        stack = stacks.setdefault(file, [])
        result = _NodeResult(event, nesting)
        start = len(stack)
        while start and stack[start - 1].nesting > nesting:
            start -= 1
        result.children, stack[start:] = stack[start:], [result]
    if not stacks:
        return None
    cases: list[tuple[str, str, str | None]] = []
    for file, stack in stacks.items():
        rel = _relative(file, root) if file else ""
        if rel is None:
            continue
        todo = [(r, [rel] if rel else []) for r in reversed(stack)]
        while todo:  # depth first, in order, without recursion
            r, prefix = todo.pop()
            names = _node_case(r, prefix, file, rel, len(prefix) == bool(rel), streams, cases)
            if names is not None and len(names) < _NODE_DEPTH:
                todo.extend((c, names) for c in reversed(r.children))
    return _cases(cases)


def _node_case(r: _NodeResult, prefix: list[str], file: str, rel: str, top: bool,
               streams: dict[str, _Text], cases: list[tuple[str, str, str | None]]) -> list[str] | None:
    """Add the case for one result; its path, for its children (None: none follow)."""
    e = r.event
    name = e["name"]
    failed = e.get("event") == "test:fail"
    failure = e.get("failureType")
    error = e.get("error")
    error = error if isinstance(error, str) else ""
    if top and not r.children and file and name in (file, rel) and failed:
        # The file itself failed: it did not load, or its process died.
        text = (streams[file].text() if file in streams else "") or error
        cases.append((rel or name, "error", _strip_ansi(text) or None))
        return None
    path = [*prefix, name]
    test_id = "::".join(path)
    skip, todo = e.get("skip"), e.get("todo")
    if e.get("type") == "suite":
        if failed and failure != "subtestsFailed":
            cases.append((test_id, "error", _strip_ansi(error) or None))
    elif todo:
        cases.append((test_id, "skipped", todo if isinstance(todo, str) else "todo"))
    elif skip:
        cases.append((test_id, "skipped", skip if isinstance(skip, str) else None))
    elif not failed:
        cases.append((test_id, "passed", None))
    else:
        outcome = "error" if failure in ("hookFailed", "cancelledByParent") else "failed"
        cases.append((test_id, outcome, _strip_ansi(error) or None))
    return path


# -- shared helpers --------------------------------------------------------------------------


def _worst(prior: str | None, outcome: str) -> str:
    """The worse of two outcomes: passed < skipped < failed < error."""
    return outcome if prior is None or _RANK[outcome] > _RANK[prior] else prior


def _cases(items: list[tuple[str, str, str | None]]) -> list[TestCase]:
    """TestCases, one per id (the worst outcome wins, as in testrun), in order."""

    by_id: dict[str, TestCase] = {}
    for test_id, outcome, message in items:
        test_id = _clean(test_id)
        prior = by_id.get(test_id)
        if prior is None or _worst(prior.outcome, outcome) != prior.outcome:
            by_id[test_id] = TestCase(id=test_id, outcome=outcome, message=_cap(message))  # type: ignore[arg-type]
    return list(by_id.values())


def _cap(text: str | None) -> str | None:
    if not text:
        return None
    text = text.strip("\n")
    if len(text) > _MESSAGE_CAP:
        keep = _MESSAGE_CAP // 4
        text = f"{text[:keep]}\n[...]\n{text[-(_MESSAGE_CAP - keep):]}"
    return _clean(text) or None


def _clean(text: str) -> str:
    """Text that encodes as UTF-8 (a report may hold lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


class _Text:
    """Text gathered piece by piece that keeps only what `_cap` shows of it: its first
    and its last _MESSAGE_CAP characters (a test may print gigabytes)."""

    __slots__ = ("head", "parts", "size")

    def __init__(self) -> None:
        self.head = ""
        self.parts: list[str] = []
        self.size = 0

    def add(self, piece: str) -> None:
        self.parts.append(piece)
        self.size += len(piece)
        if self.size > 3 * _MESSAGE_CAP:
            text = "".join(self.parts)
            self.head = self.head or text[:_MESSAGE_CAP]
            self.parts, self.size = [text[-_MESSAGE_CAP:]], _MESSAGE_CAP

    def text(self) -> str:
        return self.head + "".join(self.parts)


def _lines(text: str) -> Iterator[str]:
    """The lines of `text`, one at a time, without their `\\n` or `\\r\\n` (a long
    output is not split into a list of copies)."""
    start, n = 0, len(text)
    while start < n:
        end = text.find("\n", start)
        end = n if end < 0 else end
        yield text[start : end - 1 if end > start and text[end - 1] == "\r" else end]
        start = end + 1


def _json(data: str | bytes | None) -> Any:
    """Parsed JSON, or None for anything else."""
    if data is None:
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _norm(path: str) -> str:
    return posixpath.normpath(path.strip().replace("\\", "/")).removeprefix("./")


def _relative(path: str, root: Path) -> str | None:
    """A path the tool printed (usually absolute), relative to root when inside it;
    None for one that is no path (a NUL byte)."""
    if "\x00" in path:
        return None
    path = path.removeprefix("file://")
    p = Path(path)
    if not p.is_absolute():
        return _norm(path)
    try:
        candidates = [p, p.resolve()]
        bases = [root.absolute(), root.resolve()]
    except (OSError, RuntimeError, ValueError):  # a link loop, a name too long
        candidates, bases = [p], [root.absolute()]
    for candidate, base in itertools.product(candidates, bases):
        with contextlib.suppress(ValueError):
            return candidate.relative_to(base).as_posix()
    return path


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _forget(report: Path) -> None:
    """Remove a report left by an earlier run, so that a run that writes none is not
    judged by it."""
    with contextlib.suppress(OSError):  # absent; or a directory, which is not read either
        report.unlink()


def _read_report(path: Path) -> bytes | None:
    """A report file's first _REPORT_CAP bytes; not through a link (the report
    directory is writable by the tests, and a planted link must not make us read a
    file the sandbox hides), and only a regular file."""
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
