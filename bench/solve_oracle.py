"""What `agent solve` does on real SWE-bench issues when the model knows the answer.

Runs the whole pipeline, `python -m agent_cli solve ISSUE.md --auto-approve` (a real
subprocess, no --test-cmd: the detected test command runs), on SWE-bench instances,
with a loopback "oracle" model (tests/fakes/anthropic_server.py's FakeAnthropic,
routed by forced tool name, or when the model may choose by the tool its prompt names
last) that answers with the reference solution:

- submit_analysis: an analysis made from the issue and the names in the patch's hunks;
- submit_plan: every file the patch and the test patch touch (modify, create or
  delete, as the diff says), each described with the definitions its hunks change
  (the innermost around the first changed line, or the one added lines follow: "in
  `LatexPrinter._print_Mul`"), as a planner names what it will edit (--bland-plan:
  no names), and the FAIL_TO_PASS tests as node ids (kind "new");
- submit_edits: for the file the request names, the edit that turns the base file
  into base + patch + test_patch (one whole-file `replace`, or `create` / `delete`).
  Before that, if the request offers `read_file` (and does not force submit_edits)
  and some reference edit of the file is not visible in it (see below), the oracle
  reads the lines it misses first: `read_file(path, start_line, end_line)` over the
  first invisible hunk's base range with 5 lines of margin (and the next invisible
  hunks starting within 150 lines, up to 190 lines in all), at most 2 reads per file;
- submit_fix: no edit (the oracle has nothing better): each call is a pipeline failure;
- submit_pr: a title, a commit message and a body.

Since the edits are right, whatever goes wrong or takes long is the pipeline's own:
the figures are the cost of the stages around the model (exploration, the baseline
and the test runs, the fix loop) on real repositories. Per instance it reports the
exit code, wall seconds, seconds per stage (from .agent/runs/<id>/steps/*.json; a step
cut short by a stop counts for as long as it ran, and says whether the baseline or the
suite on the change was running; pipelines that run the baseline before the gate
report it as check_tests), the
submit_fix calls, whether branch agent/<run> holds exactly base + patch + test_patch
(tree ids compared), what run_tests recorded (command, total, timed_out, summary),
and whether the FAIL_TO_PASS and PASS_TO_PASS tests pass on that branch (pytest run
here, in a checkout of the branch, with the project's venv; on the reference tree
instead when the run made no branch, marked "oracle").

What the model is shown (issue 19). Every hunk of the patch and the test patch in a
modified file is an edit; its old text is its context and removed lines. It is
*visible* in a request when each non-blank line of its old text is a line of the
request's text: the system prompt and the text blocks and tool_result contents of
the user messages, each line without a `  123| ` number prefix, right-stripped (the
JSON also says whether the lines stand as one block of consecutive non-blank lines).
Per file it records visibility in the first request for the file (before any read)
and in the request the oracle submits on (after its reads); created and deleted
files are not counted. For every model call, input tokens = uncached + read from the
cache + written to it (the fake's usage); the report gives the biggest call (and its
step, from the run's call journal), write_code's input per written file (the calls
the submit_edits route answered for it: first request, read follow-ups, repair
turns), and the share of input read from the cache, for write_code and for all calls.
--until STEP stops the agent once that step has ended and skips the tests: the
figures above in a third of the time; what write_code wrote is still checked (its
diff applied to the base tree must give the reference tree: "w:ok" in the branch
column).

Inputs (see bench/benchpaths.py): the data set (--data, $AGENT_BENCH_DATA, default
../shared/bench/swebench_dev.jsonl), mirrors fetched into <mirrors>/<owner>+<name>/repo
(--mirrors, $AGENT_BENCH_MIRRORS, default ../.mirror) and a cache outside the checkout
(--cache, $AGENT_BENCH_CACHE, default ../.benchcache) that holds:

- venvs/<name>: the project's Python environment, made once (sympy: Python 3.9, as
  SWE-bench uses, with mpmath and pytest); the agent runs with VIRTUAL_ENV set to it
  and its bin first on PATH, so the detected test command uses it. Nothing is
  installed into the agent's own environment;
- solve/<instance>/: a fresh git repository per run (`git init`, the mirror's object
  store as an alternate, branch main at the base commit, the work tree from `git
  archive BASE | tar -x`, user.name/user.email set locally), the issue, the agent's
  config dir, a scratch repository for the reference tree, and the checkout where the
  tests are verified; removed after the run unless --keep;
- solve/logs/<instance>.log: the agent's output.

Instances run one after another (one agent at a time). A run past --timeout gets
SIGTERM (the agent stops its tests and records the run as interrupted), then SIGKILL.

    python bench/solve_oracle.py --repo sympy --limit 3 --timeout 600
    python bench/solve_oracle.py --instances sympy__sympy-11618 --keep --json /tmp/r.json
    python bench/solve_oracle.py --repo sympy --limit 3 --agent-rev HEAD   # committed code only
    python bench/solve_oracle.py --repo sympy --until write_code --json /tmp/shown.json
    python bench/solve_oracle.py --report /tmp/r.json                     # the report again
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from benchpaths import CACHE, DATA, MIRRORS, check_cache
from localize import EXCLUDES, mirror_for

from tests.fakes.anthropic_server import (
    FakeAnthropic,
    FakeRequest,
    ToolReply,
    approx_tokens,
    tool_reply,
)

# --------------------------------------------------------------------------- environments


@dataclass(frozen=True)
class EnvSpec:
    """The Python environment a repository's tests need (SWE-bench's choice of Python)."""

    python: str  # a version such as "3.9", or "" for the interpreter this runs on
    packages: tuple[str, ...]


ENVS = {
    # Old sympy imports `collections.Mapping` (gone in 3.10); SWE-bench runs it on 3.9.
    "sympy/sympy": EnvSpec("3.9", ("mpmath==1.3.0", "pytest")),
}
DEFAULT_ENV = EnvSpec("", ("pytest",))


def find_python(version: str) -> str | None:
    """An interpreter of `version`: pyenv's, then the system's; None if none is found."""
    if not version:
        return sys.executable
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    for root in filter(None, roots):
        found = sorted(Path(root, "versions").glob(f"{version}.*/bin/python{version}"),
                       key=lambda p: [int(x) for x in re.findall(r"\d+", p.parts[-3])])
        if found:
            return str(found[-1])
    for directory in ("/usr/local/bin", "/usr/bin"):
        candidate = Path(directory, f"python{version}")
        if candidate.is_file():
            return str(candidate)
    return None


def ensure_venv(cache: Path, repo: str) -> tuple[Path, str]:
    """The repository's venv under <cache>/venvs, made once; and a note on how."""
    spec = ENVS.get(repo, DEFAULT_ENV)
    python = find_python(spec.python)
    note = ""
    if python is None:
        note = f"no Python {spec.python} found; using {sys.version.split()[0]}"
        python = sys.executable
    version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    name = repo.split("/")[-1] + f"-py{version}"
    venv = cache / "venvs" / name
    wanted = json.dumps([python, list(spec.packages)])
    marker = venv / ".bench-ok"
    if marker.is_file() and marker.read_text() == wanted:
        return venv, note
    print(f"making {venv} ({python}; {' '.join(spec.packages)})", file=sys.stderr, flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", *spec.packages], check=True)
    marker.write_text(wanted)
    return venv, note


# --------------------------------------------------------------------------- git helpers


def git(cwd: Path, *args: str, env: dict[str, str] | None = None, input: bytes | None = None,
        check: bool = True) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=env, input=input, capture_output=True,
                          check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: "
                           f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode("utf-8", "surrogateescape")


def git_bytes(cwd: Path, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True).stdout


def attach_mirror(repo: Path, mirror: Path) -> None:
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    alternates = repo / ".git" / "objects" / "info" / "alternates"
    alternates.write_text(str((mirror / "objects").resolve()) + "\n")


def make_checkout(repo: Path, mirror: Path, name: str, commit: str) -> None:
    """A normal git repository: branch main at the base commit (the mirror's objects as
    an alternate, nothing copied), the index filled, the work tree from git archive,
    `git status` clean, an identity configured locally."""
    attach_mirror(repo, mirror)
    git(repo, "update-ref", "refs/heads/main", commit)
    git(repo, "symbolic-ref", "HEAD", "refs/heads/main")
    git(repo, "read-tree", "HEAD")
    pathspec = ["--", "."] + [f":(exclude){p}" for p in EXCLUDES.get(name, [])]
    archive = subprocess.Popen(["git", f"--git-dir={mirror}", "archive", commit, *pathspec],
                               stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(repo)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise RuntimeError(f"git archive of {name}@{commit} failed")
    git(repo, "update-index", "-q", "--refresh", check=False)
    for key, value in (("user.name", "agent bench"), ("user.email", "bench@localhost"),
                       ("gc.auto", "0")):
        git(repo, "config", key, value)


def export_tree(repo: Path, treeish: str, into: Path) -> None:
    into.mkdir(parents=True)
    archive = subprocess.Popen(["git", "archive", treeish], cwd=repo, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise RuntimeError(f"git archive {treeish} failed in {repo}")


def agent_source(cache: Path, rev: str | None) -> tuple[Path, str]:
    """Where `python -m agent_cli` is imported from, and a description of it: this
    checkout's working tree, or (with --agent-rev) a snapshot of a commit, so that
    edits in progress in the working tree do not change what is measured."""
    head = git(ROOT, "rev-parse", "HEAD").strip()
    if rev is None:
        dirty = git(ROOT, "status", "--porcelain", "--", "agent_cli", "prompts").strip()
        return ROOT, f"working tree at {head[:12]}" + (" (agent_cli modified)" if dirty else "")
    sha = git(ROOT, "rev-parse", f"{rev}^{{commit}}").strip()
    src = cache / "agent-src" / sha[:12]
    if not (src / ".bench-ok").is_file():
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        archive = subprocess.Popen(["git", "archive", sha, "agent_cli", "prompts"], cwd=ROOT,
                                   stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(src)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise SystemExit(f"git archive {sha} failed")
        # As installed: prompts/ is the package agent_cli.prompts.
        (src / "prompts").rename(src / "agent_cli" / "prompts")
        (src / ".bench-ok").write_text(sha + "\n")
    return src, f"commit {sha[:12]} (snapshot in {src})"


# --------------------------------------------------------------------------- the patch


@dataclass
class FileChange:
    path: str
    action: str  # modify | create | delete
    hunk_text: str  # this file's part of the diff
    mode_change: bool = False


def diff_files(patch: str) -> list[FileChange]:
    """The files a `git diff` touches, with the plan's action for each (a rename is a
    delete and a create)."""
    out: list[FileChange] = []
    for block in re.split(r"^diff --git ", patch, flags=re.MULTILINE)[1:]:
        header, _, rest = block.partition("\n")
        meta = rest.split("\n@@", 1)[0]
        old = new = None
        for line in meta.splitlines():
            if line.startswith("--- "):
                old = None if line[4:].strip() == "/dev/null" else line[4:].strip()[2:]
            elif line.startswith("+++ "):
                new = None if line[4:].strip() == "/dev/null" else line[4:].strip()[2:]
            elif line.startswith("rename from "):
                old = line[len("rename from "):].strip()
            elif line.startswith("rename to "):
                new = line[len("rename to "):].strip()
        if old is None and new is None and "new file mode" not in meta \
                and "deleted file mode" not in meta:
            half = header.strip()
            a, b = half[: len(half) // 2], half[len(half) // 2 + 1:]
            old, new = a[2:], b[2:]
        mode = "old mode" in meta and "new mode" in meta
        if "new file mode" in meta:
            new = new or header.split(" b/", 1)[-1].strip()
            out.append(FileChange(new, "create", block))
        elif "deleted file mode" in meta:
            old = old or header.split(" b/", 1)[-1].strip()
            out.append(FileChange(old, "delete", block))
        elif old and new and old != new:
            out.append(FileChange(old, "delete", block))
            out.append(FileChange(new, "create", block))
        else:
            out.append(FileChange(new or old or "", "modify", block, mode_change=mode))
    return out


@dataclass
class Hunk:
    """One hunk of a file's diff: its old range (base numbering, from the @@ header)
    and its old text (context and removed lines, in base order)."""

    path: str
    old_start: int
    old_len: int
    old_lines: list[str]
    first_change: int = 0  # base line number of the first removed line, or where lines are added

    @property
    def old_end(self) -> int:
        return self.old_start + max(self.old_len, 1) - 1

    @property
    def needed(self) -> list[str]:
        """The lines a model must have seen to copy this hunk's `old` text."""
        return [ln.rstrip() for ln in self.old_lines if ln.strip()]


def hunk_edits(path: str, base: str, new: str) -> list[dict[str, str]]:
    """`base` -> `new` as `replace` edits of the changed regions with 3 lines of context,
    each widened until its `old` text occurs once in `base`."""
    a, b = base.splitlines(keepends=True), new.splitlines(keepends=True)
    edits = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(3):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        while base.count("".join(a[i1:i2])) != 1 and (i1 > 0 or i2 < len(a)):
            if i1 > 0:
                i1, j1 = i1 - 1, j1 - 1
            if i2 < len(a):
                i2, j2 = i2 + 1, j2 + 1
        edits.append({"path": path, "action": "replace", "old": "".join(a[i1:i2]),
                      "new": "".join(b[j1:j2])})
    return edits


HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


def file_hunks(change: FileChange) -> list[Hunk]:
    hunks: list[Hunk] = []
    current: Hunk | None = None
    for line in change.hunk_text.rstrip("\n").split("\n"):
        header = HUNK_HEADER.match(line)
        if header:
            current = Hunk(change.path, int(header.group(1)),
                           1 if header.group(2) is None else int(header.group(2)), [])
            hunks.append(current)
        elif current is not None and line.startswith(("+", "-")) and not current.first_change:
            current.first_change = current.old_start + len(current.old_lines)
            if line.startswith("-"):
                current.old_lines.append(line[1:])
        elif current is None or line.startswith(("+", "\\")):
            continue
        elif line.startswith((" ", "-")):
            current.old_lines.append(line[1:])
        elif line == "":  # a context line whose blank was trimmed
            current.old_lines.append("")
    return hunks


NUMBERED = re.compile(r"^\s*\d+\| ?")


def shown_lines(body: dict[str, Any]) -> list[str]:
    """What the model is shown as lines: the system text and every text block and
    tool_result content of the user messages, each line without a `   12| ` number
    prefix, right-stripped; lines of only whitespace left out."""
    texts: list[str] = []

    def add(content: Any) -> None:
        if isinstance(content, str):
            texts.append(content)
            return
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                texts.append(str(block.get("text", "")))
            elif block.get("type") == "tool_result":
                add(block.get("content"))

    add(body.get("system"))
    for message in body.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "user":
            add(message.get("content"))
    out: list[str] = []
    for text in texts:
        for line in text.split("\n"):
            line = NUMBERED.sub("", line, count=1).rstrip()
            if line.strip():
                out.append(line)
    return out


@dataclass
class Shown:
    """A request's shown lines, as a set (is each line there?) and as one string (is
    the hunk there as one block of consecutive non-blank lines?)."""

    lines: set[str]
    joined: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> Shown:
        lines = shown_lines(body)
        return cls(set(lines), "\n" + "\n".join(lines) + "\n")

    def sees(self, hunk: Hunk) -> bool:
        return all(ln in self.lines for ln in hunk.needed)

    def sees_block(self, hunk: Hunk) -> bool:
        return not hunk.needed or ("\n" + "\n".join(hunk.needed) + "\n") in self.joined


def hunk_names(patch: str) -> list[str]:
    """Function and class names from the hunk headers and changed def/class lines."""
    names: list[str] = []
    for line in patch.splitlines():
        text = ""
        if line.startswith("@@"):
            text = line.split("@@", 2)[-1]
        elif line[:1] in "+-" and not line.startswith(("+++", "---")):
            text = line[1:]
        for match in re.finditer(r"\b(?:def|class)\s+([A-Za-z_]\w*)", text):
            if match.group(1) not in names:
                names.append(match.group(1))
    return names


def find_tests(sources: dict[str, str], names: list[str]) -> dict[str, list[str]]:
    """Node ids (`path::[Class::]name`) of each test name in the given files."""
    found: dict[str, list[str]] = {n: [] for n in names}
    wanted = {n.split("[", 1)[0]: n for n in names}
    for path, text in sources.items():
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            for m in re.finditer(r"^def\s+(\w+)", text, flags=re.MULTILINE):
                if m.group(1) in wanted:
                    found[wanted[m.group(1)]].append(f"{path}::{m.group(1)}")
            continue

        def walk(body: list[ast.stmt], prefix: list[str], path: str = path) -> None:
            for node in body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                        and node.name in wanted:
                    found[wanted[node.name]].append("::".join([path, *prefix, node.name]))
                elif isinstance(node, ast.ClassDef):
                    walk(node.body, [*prefix, node.name])

        walk(tree.body, [])
    return found


@dataclass
class Oracle:
    """The reference solution of one instance, and what the oracle model answered."""

    row: dict[str, Any]
    base: str
    expected_tree: str
    changes: list[FileChange]
    base_text: dict[str, str]  # path -> base content (modify, delete)
    new_text: dict[str, str]  # path -> expected content (modify, create)
    f2p: list[str]
    p2p: list[str]
    f2p_ids: dict[str, list[str]]
    p2p_ids: dict[str, list[str]]
    calls: dict[str, int] = field(default_factory=dict)
    edit_calls: dict[str, int] = field(default_factory=dict)  # submissions per file
    unknown_edit_paths: list[str] = field(default_factory=list)
    # What each written file's requests showed (see `edits`), and which server request
    # wrote which file.
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)
    request_file: dict[int, str] = field(default_factory=dict)
    bland: bool = False  # --bland-plan: plan descriptions name no definition

    MAX_READS = 2  # per file
    READ_MARGIN = 5  # lines around a hunk
    READ_JOIN = 150  # invisible hunks closer than this are read together,
    READ_SPAN = 190  # as long as the read stays under the agent's cap (200 lines)

    @classmethod
    def build(cls, row: dict[str, Any], scratch: Path, mirror: Path) -> Oracle:
        """The expected tree: base + patch + test_patch, applied with `git apply` to
        the base tree in a scratch repository (an index only, no work tree)."""
        attach_mirror(scratch, mirror)
        base = row["base_commit"]
        env = {**os.environ, "GIT_INDEX_FILE": str(scratch / "oracle-index")}
        git(scratch, "read-tree", base, env=env)
        for name in ("patch", "test_patch"):
            diff = scratch / f"{name}.diff"
            diff.write_text(row[name])
            git(scratch, "apply", "--cached", "--whitespace=nowarn", str(diff), env=env)
        expected = git(scratch, "write-tree", env=env).strip()
        changes: list[FileChange] = []
        for change in diff_files(row["patch"]) + diff_files(row["test_patch"]):
            if all(c.path != change.path for c in changes):
                changes.append(change)

        def text(tree: str, path: str) -> str:
            return git_bytes(scratch, "cat-file", "blob", f"{tree}:{path}").decode(
                "utf-8", "surrogateescape")

        base_text = {c.path: text(base, c.path) for c in changes if c.action != "create"}
        new_text = {c.path: text(expected, c.path) for c in changes if c.action != "delete"}
        f2p, p2p = json.loads(row["FAIL_TO_PASS"]), json.loads(row["PASS_TO_PASS"])
        test_files = {c.path: new_text[c.path] for c in diff_files(row["test_patch"])
                      if c.path.endswith(".py") and c.path in new_text}
        return cls(row=row, base=base, expected_tree=expected, changes=changes,
                   base_text=base_text, new_text=new_text, f2p=f2p, p2p=p2p,
                   f2p_ids=find_tests(test_files, f2p), p2p_ids=find_tests(test_files, p2p))

    # -- the model's answers ------------------------------------------------------------

    def _count(self, tool: str) -> None:
        self.calls[tool] = self.calls.get(tool, 0) + 1

    def analysis(self, request: FakeRequest) -> ToolReply:
        self._count("submit_analysis")
        issue = self.row["problem_statement"].strip()
        lines = [ln.strip() for ln in issue.splitlines() if ln.strip()]
        title = lines[0].lstrip("# ").strip() if lines else self.row["instance_id"]
        symptoms = [ln for ln in lines if re.search(r"Error|Exception|Traceback|wrong|should",
                                                   ln)][:3] or [title]
        code = [c.path for c in self.changes if "test" not in c.path]
        names = hunk_names(self.row["patch"])
        return ToolReply(None, {
            "problem": title[:300],
            "symptoms": [s[:300] for s in symptoms],
            "suspected_areas": code + names[:5],
            "search_terms": names[:8] + [Path(p).stem for p in code][:3],
            "acceptance_criteria": [f"{t} passes" for t in self.f2p][:5]
                                   + ["no test that passed before fails"],
        })

    def plan(self, request: FakeRequest) -> ToolReply:
        self._count("submit_plan")
        tests_file = next((c.path for c in diff_files(self.row["test_patch"])
                           if c.path.endswith(".py")), "")
        tests = []
        for name in self.f2p:
            ids = self.f2p_ids.get(name) or [f"{tests_file}::{name}" if tests_file else name]
            tests.append({"id": ids[0], "kind": "new",
                          "reason": "fails before the fix, passes after it (FAIL_TO_PASS)"})
        changes = [{"path": c.path, "action": c.action,
                    "description": f"apply the reference change to {c.path}"
                                   + (" (a test file)" if "test" in c.path else "")
                                   + self.where(c.path)}
                   for c in self.changes]
        return ToolReply(None, {"summary": f"Reference fix for {self.row['instance_id']}.",
                                "changes": changes, "tests": tests})

    def where(self, path: str) -> str:
        """What a planner names for a modified file: the definition each hunk changes
        (the innermost one around its first changed line; for lines added between
        definitions, the one they follow), as in "in `Cls.method`, `func`". Off with
        --bland-plan, which leaves the windows to the search's located symbols."""
        if self.bland or path not in self.base_text or not path.endswith(".py"):
            return ""
        try:
            tree = ast.parse(self.base_text[path])
        except (SyntaxError, ValueError):
            return ""
        spans: list[tuple[str, int, int]] = []

        def walk(body: list[ast.stmt], prefix: str) -> None:
            for node in body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    name = prefix + node.name
                    spans.append((name, node.lineno, node.end_lineno or node.lineno))
                    if isinstance(node, ast.ClassDef):
                        walk(node.body, name + ".")

        walk(tree.body, "")
        names: list[str] = []
        for hunk in self.hunks(path):
            line = hunk.first_change or hunk.old_start
            inside = [s for s in spans if s[1] <= line <= s[2]]
            before = [s for s in spans if s[2] < line]
            pick = inside[-1] if inside else max(before, key=lambda s: s[2]) if before else None
            if pick and pick[0] not in names:
                names.append(pick[0])
        return (", in " + ", ".join(f"`{n}`" for n in names)) if names else ""

    def hunks(self, path: str) -> list[Hunk]:
        """The hunks of the patch and the test patch for `path` (a modified file)."""
        return [h for patch in (self.row["patch"], self.row["test_patch"])
                for c in diff_files(patch) if c.path == path and c.action == "modify"
                for h in file_hunks(c)]

    def edits(self, request: FakeRequest) -> ToolReply:
        self._count("submit_edits")
        path = written_path(request.body)
        self.request_file[request.index] = path
        change = next((c for c in self.changes if c.path == path), None)
        if change is None:
            self.edit_calls[path] = self.edit_calls.get(path, 0) + 1
            self.unknown_edit_paths.append(path)
            return self._submit(request, {"edits": [], "note":
                                          f"oracle: no reference change to {path}"})
        seen = self.seen.get(path)
        if seen is None:  # the first request for this file, before any read
            seen = self.seen[path] = {"action": change.action, "requests": [],
                                      "hunks": [], "reads": [], "read_offered": False}
        seen["requests"].append(request.index)
        submitted = self.edit_calls.get(path, 0) > 0
        if change.action == "modify" and not submitted:
            hunks = self.hunks(path)
            shown = Shown.of(dict(request.body))
            visible = [shown.sees(h) for h in hunks]
            block = [shown.sees_block(h) for h in hunks]
            if not seen["hunks"]:
                seen["hunks"] = [{"old": [h.old_start, h.old_len], "lines": len(h.needed),
                                  "first": v, "first_block": b}
                                 for h, v, b in zip(hunks, visible, block, strict=True)]
            for record, v, b in zip(seen["hunks"], visible, block, strict=True):
                record["last"], record["last_block"] = v, b
            can_read = "read_file" in request.tool_names and \
                (request.body.get("tool_choice") or {}).get("type") != "tool"
            seen["read_offered"] = seen["read_offered"] or can_read
            unseen = [h for h, v in zip(hunks, visible, strict=True) if not v]
            if unseen and can_read and len(seen["reads"]) < self.MAX_READS:
                start, end = self._read_range(path, unseen)
                seen["reads"].append([start, end])
                return tool_reply("read_file", {"path": path, "start_line": start,
                                                "end_line": end})
        self.edit_calls[path] = self.edit_calls.get(path, 0) + 1
        if change.action == "delete":
            edits = [{"path": path, "action": "delete"}]
        elif change.action == "create":
            edits = [{"path": path, "action": "create", "content": self.new_text[path]}]
        elif self.base_text[path] and len(self.base_text[path]) + len(self.new_text[path]) \
                > self.WHOLE_FILE_CHARS:
            edits = hunk_edits(path, self.base_text[path], self.new_text[path])
        elif self.base_text[path]:
            edits = [{"path": path, "action": "replace", "old": self.base_text[path],
                      "new": self.new_text[path]}]
        else:  # an empty file: a replace needs a non-empty `old`
            edits = [{"path": path, "action": "delete"},
                     {"path": path, "action": "create", "content": self.new_text[path]}]
        # What a model writing the change as small edits would be billed, not the
        # whole file twice (which would also pass max_tokens and be cut off).
        out = min(int(request.body.get("max_tokens") or 8192),
                  max(1, approx_tokens(change.hunk_text)))
        return self._submit(request, {"edits": edits, "note": ""}, output_tokens=out)

    # A whole-file replace of a file this big would be more than a model can answer in
    # one turn (and more than agent takes: 256,000 characters); the oracle then sends
    # the changed regions as edits, as a model would.
    WHOLE_FILE_CHARS = 150_000

    def _read_range(self, path: str, unseen: list[Hunk]) -> tuple[int, int]:
        """The lines to read: the first invisible hunk's old range and a margin, and
        the next invisible hunks as long as each starts within READ_JOIN lines of the
        range and the range stays within READ_SPAN lines."""
        start, end = unseen[0].old_start, unseen[0].old_end
        for h in unseen[1:]:
            if h.old_start - end > self.READ_JOIN or h.old_end - start > self.READ_SPAN:
                break
            end = max(end, h.old_end)
        total = len(self.base_text.get(path, "").splitlines())
        return max(1, start - self.READ_MARGIN), min(max(total, 1), end + self.READ_MARGIN)

    @staticmethod
    def _submit(request: FakeRequest, answer: dict[str, Any],
                output_tokens: int | None = None) -> ToolReply:
        # Named: with tool_choice any, `None` would mean whichever tool the prompt names.
        name = "submit_edits" if "submit_edits" in request.tool_names else None
        return tool_reply(name, answer, output_tokens=output_tokens)

    def fix(self, request: FakeRequest) -> ToolReply:
        self._count("submit_fix")
        name = "submit_fix" if "submit_fix" in request.tool_names else None
        return tool_reply(name, {"edits": [], "explanation":
                                 "oracle: the reference change is already applied; it has "
                                 "nothing better to offer"})

    def helper(self, request: FakeRequest) -> ToolReply:
        """A request whose text names a helper tool (read_file, find) last: answered as
        the stage it belongs to (write_code if it says which file to write, else
        fix_code; every request offers all the flow's tools, so they cannot tell)."""
        return self.edits(request) if written_path(request.body) else self.fix(request)

    def pr(self, request: FakeRequest) -> ToolReply:
        self._count("submit_pr")
        lines = [ln for ln in self.row["problem_statement"].splitlines() if ln.strip()]
        title = (lines[0].lstrip("# ").strip() if lines else self.row["instance_id"])
        title = ("Fix: " + title)[:69]
        files = "\n".join(f"- `{c.path}` ({c.action})" for c in self.changes)
        return ToolReply(None, {
            "title": title,
            "commit_message": f"{title}\n\nThe reference change of {self.row['instance_id']}.",
            "body": f"Applies the reference change of {self.row['instance_id']}.\n\n{files}\n",
        })

    def serve(self, server: FakeAnthropic) -> None:
        # read_file and find: a request whose text names a helper tool last still
        # belongs to write_code or fix_code (see `helper`).
        for tool, fn in (("submit_analysis", self.analysis), ("submit_plan", self.plan),
                         ("submit_edits", self.edits), ("read_file", self.helper),
                         ("find", self.helper), ("submit_fix", self.fix),
                         ("submit_pr", self.pr)):
            server.route(tool=tool, reply=fn)


WRITE_PATH = re.compile(r"one file: `([^`]+)`")


def written_path(body: Mapping[str, Any]) -> str:
    """The file a write_code request is about: the last "Write the planned change to
    one file: `PATH`" in the text blocks of its user messages (a follow-up after a read
    ends with a tool result, not with the instruction)."""
    found = ""
    for message in body.get("messages") or []:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks if isinstance(blocks, list) else []:
            if isinstance(block, dict) and block.get("type") == "text":
                for match in WRITE_PATH.finditer(str(block.get("text", ""))):
                    found = match.group(1)
    return found


# --------------------------------------------------------------------------- one run


def run_agent(argv: list[str], cwd: Path, env: dict[str, str], timeout: float,
              log: Path, until: Callable[[], bool] | None = None
              ) -> tuple[int | None, bool, float, bool]:
    """(exit code, stopped by our timeout, seconds, stopped because `until()` held).
    Past the timeout, or once `until()` holds (polled twice a second): SIGTERM (the
    agent stops its tests and records the run as interrupted), SIGKILL of its process
    group after a grace (60 s at the timeout, 20 s after `until`)."""
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        stopped = reached = False
        try:
            deadline = started + timeout
            while True:
                try:
                    proc.wait(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
                    break
                except subprocess.TimeoutExpired:
                    pass
                if until is not None and until():
                    reached = True
                elif time.monotonic() < deadline:
                    continue
                else:
                    stopped = True
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20 if reached else 60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                break
        except BaseException:  # Ctrl-C of the bench: do not leave the agent behind
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            raise
    return proc.returncode, stopped, time.monotonic() - started, reached


def step_finished(repo: Path, key: str) -> bool:
    """Whether the run in `repo` has a record of step `key` that is no longer running
    (the record is written when the step starts, and again when it ends)."""
    for path in (repo / ".agent" / "runs").glob(f"*/steps/[0-9]*-{key}.json"):
        try:
            if json.loads(path.read_text()).get("status") not in (None, "running"):
                return True
        except (OSError, ValueError):
            continue  # being replaced: look again at the next poll
    return False


def call_figures(requests: list[Any], run_dir: Path | None,
                 request_file: dict[int, str]) -> list[dict[str, Any]]:
    """One entry per answered model call: the route it took (the tool the request
    asks for), the step that made it (from the run's call journal, matched by the
    response id), the file of a write_code call, and its input tokens (uncached,
    read from the cache, written to it; total = the three)."""
    steps: dict[str, str] = {}
    for path in sorted((run_dir / "calls").glob("[0-9]*.json")) if run_dir else []:
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        rid = (rec.get("response") or {}).get("id")
        if rid:
            steps[rid] = rec.get("step")
    out = []
    for r in requests:
        usage = r.usage
        if r.status != 200 or not usage or r.path != "/v1/messages":
            continue
        fresh = int(usage.get("input_tokens") or 0)
        read = int(usage.get("cache_read_input_tokens") or 0)
        written = int(usage.get("cache_creation_input_tokens") or 0)
        out.append({"index": r.index, "route": r.tool, "step": steps.get(r.response.get("id")),
                    "file": request_file.get(r.index), "input": fresh, "cache_read": read,
                    "cache_write": written, "total": fresh + read + written})
    return out


def prompt_summary(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's prompt figures: the biggest call, write_code's input per written
    file (its calls are those the oracle's submit_edits route answered: first request,
    read follow-ups, repair turns) and the share of input read from the cache."""
    if not calls:
        return {}
    top = max(calls, key=lambda c: c["total"])
    writes = [c for c in calls if c["file"] is not None]
    per_file: dict[str, int] = {}
    for c in writes:
        per_file[c["file"]] = per_file.get(c["file"], 0) + c["total"]

    def share(cs: list[dict[str, Any]]) -> list[int]:
        return [sum(c["cache_read"] for c in cs), sum(c["total"] for c in cs)]

    return {"max_total": top["total"], "max_step": top["step"] or top["route"],
            "over_60k": sum(1 for c in calls if c["total"] > 60_000),
            "write_per_file": per_file,
            "write_median": statistics.median(per_file.values()) if per_file else None,
            "cache_write_code": share(writes), "cache_run": share(calls)}


def read_steps(run_dir: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted((run_dir / "steps").glob("*.json"),
                       key=lambda p: int(p.name.split("-")[0]) if p.name[0].isdigit() else 0):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return records


def iso_seconds(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def verify(checkout: Path, venv: Path, ids: list[str], timeout: float) -> dict[str, Any]:
    """Run the given node ids with pytest in `checkout`; outcome per node id."""
    if not ids:
        return {"outcomes": {}, "seconds": 0.0, "error": None}
    report = checkout.parent / f"{checkout.name}-junit.xml"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "PYTEST", "AGENT_", "ANTHROPIC_", "VIRTUAL_ENV"))}
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               PYTHONDONTWRITEBYTECODE="1")
    argv = [str(venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-q",
            "-o", "junit_family=xunit1", f"--junitxml={report}", *ids]
    started = time.monotonic()
    error = None
    try:
        done = subprocess.run(argv, cwd=checkout, env=env, capture_output=True, text=True, check=False,
                              errors="replace", timeout=timeout)
        if done.returncode not in (0, 1):
            error = f"pytest exited {done.returncode}: " + " | ".join(
                done.stdout.strip().splitlines()[-3:])
    except subprocess.TimeoutExpired:
        error = f"pytest timed out after {timeout:g}s"
    seconds = time.monotonic() - started
    outcomes: dict[str, str] = {}
    if report.is_file():
        try:
            for case in ET.parse(report).iter("testcase"):
                file = (case.get("file") or "").replace("\\", "/")
                classname, name = case.get("classname", ""), case.get("name", "")
                dotted = file.removesuffix(".py").replace("/", ".")
                classes = classname[len(dotted) + 1:].split(".") if classname.startswith(
                    dotted + ".") else []
                node = "::".join([file, *classes, name])
                outcome = "passed"
                for tag in ("error", "failure", "skipped"):
                    if case.find(tag) is not None:
                        outcome = {"failure": "failed"}.get(tag, tag)
                        break
                if outcomes.get(node) in (None, "passed"):
                    outcomes[node] = outcome
        except ET.ParseError:
            error = error or "unreadable JUnit report"
    return {"outcomes": outcomes, "seconds": round(seconds, 1), "error": error}


def tally(names: list[str], ids: dict[str, list[str]], outcomes: dict[str, str]) -> dict[str, Any]:
    """How many of `names` passed: each name's node ids must all have run and passed."""
    passed, failing, unresolved = 0, [], []
    for name in names:
        nodes = ids.get(name) or []
        if not nodes:
            unresolved.append(name)
            continue
        results = [outcomes.get(n) for n in nodes]
        if results and all(r == "passed" for r in results):
            passed += 1
        else:
            failing.append(f"{name}: {'/'.join(str(r) for r in results)}")
    return {"passed": passed, "total": len(names), "failing": failing, "unresolved": unresolved}


def solve_one(row: dict[str, Any], args: argparse.Namespace, agent_src: Path) -> dict[str, Any]:
    iid = row["instance_id"]
    res: dict[str, Any] = {"id": iid, "repo": row["repo"], "exit_code": None, "stopped": False,
                           "seconds": None, "stages": {}, "fix_calls": 0, "error": None}
    work = args.cache / "solve" / iid
    logs = args.cache / "solve" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    repo = work / "repo"
    try:
        mirror = mirror_for(args.mirrors, row["repo"])
        venv, env_note = ensure_venv(args.cache, row["repo"])
        res["venv"] = str(venv)
        if env_note:
            res["env_note"] = env_note
        oracle = Oracle.build(row, work / "oracle", mirror)
        oracle.bland = args.bland_plan
        res["plan_names"] = not args.bland_plan
        res["expected_tree"] = oracle.expected_tree
        res["planned"] = [f"{c.action} {c.path}" for c in oracle.changes]
        res["mode_changes"] = [c.path for c in oracle.changes if c.mode_change]
        make_checkout(repo, mirror, row["repo"], row["base_commit"])
        issue = work / "ISSUE.md"
        issue.write_text(row["problem_statement"])
        config = work / "agent-config"
        config.mkdir()

        with FakeAnthropic(min_cacheable_tokens=1024) as server:
            oracle.serve(server)
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("AGENT_", "ANTHROPIC_", "PYTHON", "VIRTUAL_ENV"))}
            env.update(server.env(), AGENT_CONFIG_DIR=str(config), NO_COLOR="1",
                       PYTHONPATH=str(agent_src), VIRTUAL_ENV=str(venv),
                       PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
            if args.test_timeout:
                env["AGENT_TEST_TIMEOUT"] = str(args.test_timeout)
            argv = [sys.executable, "-m", "agent_cli", "solve", str(issue), "--repo", str(repo),
                    "--auto-approve", *shlex.split(args.agent_args)]
            log = logs / f"{iid}.log"
            until = (lambda: step_finished(repo, args.until)) if args.until else None
            code, stopped, seconds, reached = run_agent(argv, repo, env, args.timeout, log,
                                                        until)
            ended = time.time()
            res.update(exit_code=code, stopped=stopped, seconds=round(seconds, 1))
            if args.until:
                res["until"] = args.until
                res["until_reached"] = reached
            requests = list(server.requests)
            res["visibility"] = oracle.seen
            res["model_calls"] = dict(oracle.calls)
            res["fix_calls"] = oracle.calls.get("submit_fix", 0)
            res["edit_calls"] = oracle.edit_calls
            res["unknown_edit_paths"] = oracle.unknown_edit_paths
            res["unmatched_requests"] = [f"{r.tool}: {r.error}"[:300] for r in server.unmatched]
            res["log_tail"] = log.read_text(errors="replace").strip().splitlines()[-12:]

        runs = sorted((repo / ".agent" / "runs").glob("*")) if (repo / ".agent").is_dir() else []
        res["calls"] = call_figures(requests, runs[-1] if runs else None, oracle.request_file)
        res["prompt"] = prompt_summary(res["calls"])
        if not runs:
            res["error"] = "no run directory"
            return res
        run_dir = runs[-1]
        run_id = run_dir.name
        res["run_id"] = run_id
        try:
            res["run_status"] = json.loads((run_dir / "run.json").read_text()).get("status")
        except (OSError, ValueError):
            res["run_status"] = None
        steps = read_steps(run_dir)
        if res.get("until_reached"):  # the steps after it were cut by our stop: nothing
            last = max((i for i, s in enumerate(steps) if s["key"] == args.until), default=None)
            res["cut_steps"] = [s["key"] for s in steps[last + 1:]] if last is not None else []
            steps = steps[: last + 1] if last is not None else steps
        res["stages"] = {s["key"]: s.get("seconds") for s in steps}
        res["stage_status"] = {s["key"]: s.get("status") for s in steps}
        # A step the stop cut short has no `seconds`: how long it had run by then.
        res["unfinished"] = {s["key"]: round(ended - started, 1) for s in steps
                             if s.get("seconds") is None and s.get("status") != "answered"
                             and (started := iso_seconds(s.get("started_at"))) is not None}
        res["cost_usd"] = round(sum(s.get("cost_usd") or 0 for s in steps), 4)
        res["run_tests"] = []
        for s in steps:
            if s["key"].startswith("run_tests"):
                out = s.get("output") or {}
                notes = s.get("notes") or {}
                # The baseline (the suite on the base commit) runs first, then the suite
                # on the change: which was running when the step ended, if unfinished.
                phase = None if s.get("status") == "done" else (
                    "suite" if "test_process" in notes else
                    "baseline" if "baseline_process" in notes else "setup")
                res["run_tests"].append({
                    "key": s["key"], "status": s.get("status"), "phase": phase,
                    "step_seconds": s.get("seconds") if s.get("seconds") is not None
                    else res["unfinished"].get(s["key"]),
                    "test_seconds": out.get("seconds"), "command": out.get("command"),
                    "total": out.get("total"), "timed_out": out.get("timed_out"),
                    "passed": out.get("passed"), "summary": out.get("summary"),
                    "sandbox": out.get("sandbox"),
                })
        # Every run_tests* step, an unfinished one for as long as it ran (a lower bound).
        res["run_tests_seconds"] = round(sum(r["step_seconds"] or 0 for r in res["run_tests"]),
                                         1) if res["run_tests"] else None
        res["run_tests_complete"] = all(r["status"] == "done" for r in res["run_tests"])
        # Newer pipelines run the baseline before the gate, in its own step (check_tests).
        checks = [s for s in steps if s["key"].startswith("check_tests")]
        check_s: list[float] = [
            float(s["seconds"]) if s.get("seconds") is not None
            else float(res["unfinished"].get(s["key"], 0.0)) for s in checks]
        res["check_tests_seconds"] = round(sum(check_s), 1) if checks else None

        # What write_code wrote (its step's diff applied to the base tree), so a run
        # stopped by --until still says whether the edits were right.
        written = next((s for s in steps if s["key"] == "write_code"
                        and s.get("status") == "done"), None)
        if written is not None:
            diff = (written.get("output") or {}).get("diff") or ""
            res["write_tree_ok"] = diff_tree(repo, work / "write-index", row["base_commit"],
                                             diff) == oracle.expected_tree
        branch = f"agent/{run_id}"
        tree = git(repo, "rev-parse", "--verify", "-q", f"{branch}^{{tree}}", check=False).strip()
        res["branch_tree"] = tree or None
        res["branch_ok"] = bool(tree) and tree == oracle.expected_tree
        if tree and not res["branch_ok"]:
            res["branch_diff"] = git(repo, "diff", "--stat", oracle.expected_tree, tree,
                                     check=False).strip().splitlines()[-15:]

        if args.no_verify or args.until:
            return res
        checkout = work / "verify"
        if tree:
            export_tree(repo, branch, checkout)
            res["verified_on"] = "branch"
        else:
            export_tree(work / "oracle", oracle.expected_tree, checkout)
            res["verified_on"] = "oracle"
        ids = sorted({n for v in (*oracle.f2p_ids.values(), *oracle.p2p_ids.values()) for n in v})
        checked = verify(checkout, venv, ids, args.verify_timeout)
        res["verify_seconds"] = checked["seconds"]
        res["verify_error"] = checked["error"]
        res["f2p"] = tally(oracle.f2p, oracle.f2p_ids, checked["outcomes"])
        res["p2p"] = tally(oracle.p2p, oracle.p2p_ids, checked["outcomes"])
    except Exception as exc:  # noqa: BLE001 - one failing instance is a result, not a crash
        res["error"] = f"{type(exc).__name__}: {exc}"
        res["traceback"] = traceback.format_exc(limit=6)
    except SystemExit as exc:  # mirror_for and friends say why they stop
        res["error"] = f"stopped: {exc}"
    finally:
        if not args.keep:
            cleanup(work)
    return res


def diff_tree(repo: Path, index: Path, base: str, diff: str) -> str | None:
    """The tree of `base` with `diff` applied (in a scratch index); None if it does
    not apply."""
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    git(repo, "read-tree", base, env=env)
    if diff.strip():
        done = subprocess.run(["git", "apply", "--cached", "--whitespace=nowarn", "-"], cwd=repo,
                              env=env, input=diff.encode("utf-8", "surrogateescape"),
                              capture_output=True, check=False)
        if done.returncode != 0:
            return None
    return git(repo, "write-tree", env=env).strip()


def cleanup(work: Path) -> None:
    repo = work / "repo"
    if (repo / ".git").is_dir():
        git(repo, "worktree", "prune", check=False)
    shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- report


def fmt(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def print_report(results: list[dict[str, Any]], timeout: float) -> None:
    head = (f"{'instance':28} {'exit':>5} {'total s':>8} {'tests s':>8} {'fixes':>5} "
            f"{'branch':>6} {'F2P':>6} {'P2P':>7}  run_tests")
    print(head)
    print("-" * len(head))
    for r in results:
        exit_code = ("kill" if r["stopped"] else "until" if r.get("until_reached")
                     else fmt(r["exit_code"]))
        branch = "-" if r.get("branch_tree") is None else ("ok" if r.get("branch_ok") else "WRONG")
        if branch == "-" and r.get("write_tree_ok") is not None:  # stopped by --until
            branch = "w:ok" if r["write_tree_ok"] else "w:BAD"
        on = "*" if r.get("verified_on") == "oracle" else ""
        f2p = f"{r['f2p']['passed']}/{r['f2p']['total']}{on}" if r.get("f2p") else "-"
        p2p = f"{r['p2p']['passed']}/{r['p2p']['total']}{on}" if r.get("p2p") else "-"
        tests = r.get("run_tests") or []
        last = tests[-1] if tests else None
        if last and last["status"] != "done":
            what = (f"{last['key']} {last['status']} after {fmt(last['step_seconds'])} s, "
                    f"in the {last.get('phase')}")
        elif last:
            what = (f"{last['key']}: {last['total']} tests, timed_out={last['timed_out']}, "
                    f"{(last['summary'] or '').splitlines()[0][:70]}")
        elif r.get("error"):
            what = "ERROR " + r["error"][:90]
        elif r.get("until_reached"):
            what = f"stopped after {r['until']} (--until): no tests"
        else:
            running = [f"{k} ({s})" for k, s in (r.get("stage_status") or {}).items()
                       if s not in ("done", "answered")]
            what = f"no run_tests record (unfinished: {', '.join(running) or 'none'})"
        tests_s = fmt(r.get("run_tests_seconds"))
        if r.get("run_tests") and not r.get("run_tests_complete"):
            tests_s = ">" + tests_s
        print(f"{r['id']:28} {exit_code:>5} {fmt(r['seconds']):>8} "
              f"{tests_s:>8} {r['fix_calls']:>5} {branch:>6} "
              f"{f2p:>6} {p2p:>7}  {what}")
    if any(r.get("verified_on") == "oracle" for r in results):
        print("(* verified on the reference tree: the run made no branch)")
    print()
    for r in results:
        unfinished = r.get("unfinished") or {}
        stages = " ".join(
            f"{k}={fmt(v, 1)}" if k not in unfinished
            else f"{k}={r['stage_status'][k]}-after-{unfinished[k]:.0f}"
            for k, v in r.get("stages", {}).items())
        print(f"{r['id']}: {stages or '(no step recorded)'}")
        for t in r.get("run_tests") or []:
            if t["status"] != "done":
                print(f"    {t['key']}: {t['status']} after {fmt(t['step_seconds'], 1)} s, "
                      f"in the {t.get('phase')} (no result recorded)")
                continue
            print(f"    {t['key']}: command {t['command']!r}, total {t['total']}, "
                  f"timed_out {t['timed_out']}, step {fmt(t['step_seconds'], 1)} s "
                  f"(suite {fmt(t['test_seconds'], 1)} s)")
            for line in (t["summary"] or "").splitlines()[:3]:
                print(f"        {line[:150]}")
        if r.get("error"):
            print(f"    error: {r['error']}")
        if r.get("verify_error"):
            print(f"    verify: {r['verify_error']}")
        for key in ("f2p", "p2p"):
            info = r.get(key) or {}
            if info.get("failing") or info.get("unresolved"):
                print(f"    {key} not passing: {(info.get('failing') or [])[:5]}; "
                      f"not found: {(info.get('unresolved') or [])[:5]}")
        repeated = {k: v for k, v in (r.get("edit_calls") or {}).items() if v > 1}
        if repeated or r.get("unknown_edit_paths"):
            print(f"    write_code asked again (an edit did not apply): {repeated}; "
                  f"asked for files the oracle does not change: {r.get('unknown_edit_paths')}")
        if r.get("branch_diff"):
            print("    branch differs from the reference: " + "; ".join(r["branch_diff"][-3:]))
        if r.get("unmatched_requests"):
            print(f"    unanswered model requests: {r['unmatched_requests'][:3]}")
    print()
    n = len(results)
    ok = sum(1 for r in results if r.get("branch_ok"))
    sums = [r["run_tests_seconds"] for r in results if r.get("run_tests_seconds") is not None]
    cut = sum(1 for r in results if r.get("run_tests") and not r.get("run_tests_complete"))
    fixes = [r for r in results if r["fix_calls"]]
    killed = [r["id"] for r in results if r["stopped"]]
    timeout = results[0].get("timeout", timeout) if results else timeout
    test_timeouts = [r["id"] for r in results
                     if any(t.get("timed_out") for t in r.get("run_tests") or [])]
    print(f"runs with a correct branch: {ok}/{n}")
    written = [r for r in results if r.get("write_tree_ok") is not None and not r.get("branch_tree")]
    if written:  # stopped by --until before create_pr made a branch
        print(f"runs without a branch whose write_code diff gives the reference tree: "
              f"{sum(1 for r in written if r['write_tree_ok'])}/{len(written)}")
    if sums:
        print(f"run_tests (all run_tests* steps of a run): median "
              f"{statistics.median(sums):.0f} s, max {max(sums):.0f} s over {len(sums)} run(s)"
              + (f"; {cut} of them cut short by a stop (lower bounds)" if cut else ""))
    else:
        print("run_tests: no run finished a run_tests step")
    checks = [r["check_tests_seconds"] for r in results if r.get("check_tests_seconds") is not None]
    if checks:
        print(f"check_tests (the baseline before the gate): median "
              f"{statistics.median(checks):.0f} s, max {max(checks):.0f} s over {len(checks)} run(s)")
    print(f"fix attempts paid: {sum(r['fix_calls'] for r in results)} call(s) in "
          f"{len(fixes)} run(s)" + (f": {', '.join(r['id'] for r in fixes)}" if fixes else ""))
    print(f"runs stopped at the bench timeout ({timeout:g} s): {len(killed)}"
          + (f": {', '.join(killed)}" if killed else ""))
    print(f"runs whose test command timed out inside the agent: {len(test_timeouts)}"
          + (f": {', '.join(test_timeouts)}" if test_timeouts else ""))
    errors = [r["id"] for r in results if r.get("error")]
    if errors:
        print(f"instances with an error: {', '.join(errors)}")
    if any("visibility" in r or "prompt" in r for r in results):
        print()
        print_shown(results)


def pct(k: int, n: int) -> str:
    return f"{k} of {n} ({100 * k / n:.0f} %)" if n else "0 of 0"


def print_shown(results: list[dict[str, Any]]) -> None:
    """What the model was shown: per run, then over the bench."""
    print("What write_code was shown (an edit = a hunk of the patch or test patch in a "
          "modified file; visible = each of its non-blank old lines is a line of the "
          "request; created and deleted files not counted):")
    hunks: list[dict[str, Any]] = []
    files = read_files = created = 0
    offered = 0
    for r in results:
        vis = r.get("visibility")
        if vis is None:
            continue
        mine = [h for f in vis.values() if f["action"] == "modify" for h in f["hunks"]]
        hunks += mine
        files += sum(1 for f in vis.values() if f["action"] == "modify")
        read_files += sum(1 for f in vis.values() if f["reads"])
        created += sum(1 for f in vis.values() if f["action"] != "modify")
        offered += any(f.get("read_offered") for f in vis.values())
        first = sum(1 for h in mine if h["first"])
        last = sum(1 for h in mine if h.get("last", h["first"]))
        reads = sum(len(f["reads"]) for f in vis.values())
        prompt = r.get("prompt") or {}
        cache = prompt.get("cache_write_code") or [0, 0]
        print(f"  {r['id']:28} visible {first}/{len(mine)} before reads, {last}/{len(mine)} "
              f"after {reads} read(s); max prompt {ntok(prompt.get('max_total'))} "
              f"({prompt.get('max_step') or '-'}); write_code per file median "
              f"{ntok(prompt.get('write_median'))}; cache read {fmt_share(cache)} of "
              f"write_code input")
        for path, f in vis.items():
            lost = [h for h in f["hunks"] if not h.get("last", h["first"])]
            late = [h for h in f["hunks"] if not h["first"] and h.get("last")]
            scattered = [h for h in f["hunks"] if h.get("last", h["first"])
                         and not h.get("last_block", h.get("first_block", True))]
            if lost or late or scattered or f["reads"]:
                print(f"      {path}: " + "; ".join(x for x in (
                    f"reads {f['reads']}" if f["reads"] else "",
                    f"seen after a read: lines {where(late)}" if late else "",
                    f"NOT SEEN: lines {where(lost)}" if lost else "",
                    f"seen only as scattered lines: {where(scattered)}" if scattered else "")
                    if x))
    runs = [r for r in results if r.get("prompt")]
    if hunks:
        first = sum(1 for h in hunks if h["first"])
        last = sum(1 for h in hunks if h.get("last", h["first"]))
        block = sum(1 for h in hunks if h.get("last_block", h.get("first_block")))
        print(f"edits visible before any read: {pct(first, len(hunks))}")
        print(f"edits visible after at most {Oracle.MAX_READS} reads: {pct(last, len(hunks))}"
              f" (as one block of consecutive lines: {pct(block, len(hunks))}); read_file "
              f"offered in {offered} of {sum(1 for r in results if 'visibility' in r)} run(s)")
        print(f"modified files with reads: {read_files} of {files}; created or deleted files "
              f"(not counted): {created}")
    if runs:
        top = max(runs, key=lambda r: r["prompt"]["max_total"])
        over = sum(r["prompt"].get("over_60k", 0) for r in runs)
        print(f"max prompt (input + cache read + cache write tokens): "
              f"{top['prompt']['max_total']:,} ({top['id']}, {top['prompt']['max_step']}); "
              f"calls over 60,000: {over}")
        per_file = [t for r in runs for t in (r["prompt"].get("write_per_file") or {}).values()]
        if per_file:
            print(f"write_code input tokens per written file: median "
                  f"{statistics.median(per_file):,.0f}, max {max(per_file):,} over "
                  f"{len(per_file)} file(s)")
        for key, what in (("cache_write_code", "write_code calls"), ("cache_run", "all calls")):
            pairs = [r["prompt"].get(key) or [0, 0] for r in runs]
            print(f"share of input read from the cache, {what}: "
                  f"{fmt_share([sum(a for a, _ in pairs), sum(b for _, b in pairs)])}")


def where(hunks: list[dict[str, Any]]) -> str:
    """Hunks' old line ranges (base numbering)."""
    return ", ".join(f"{h['old'][0]}-{h['old'][0] + max(h['old'][1], 1) - 1}" for h in hunks)


def ntok(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def fmt_share(pair: list[int]) -> str:
    read, total = pair
    return f"{100 * read / total:.0f} %" if total else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help=f"data set (default {DATA})")
    ap.add_argument("--mirrors", type=Path, default=MIRRORS, help=f"mirrors (default {MIRRORS})")
    ap.add_argument("--cache", type=Path, default=CACHE, help=f"cache dir (default {CACHE})")
    ap.add_argument("--repo", action="append", default=[], help="substring of repo; repeatable")
    ap.add_argument("--instances", default="", help="comma-separated instance ids")
    ap.add_argument("--limit", type=int, default=0, help="at most N instances")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per agent run")
    ap.add_argument("--test-timeout", type=float, default=0,
                    help="pass AGENT_TEST_TIMEOUT to the agent (default: its own, 900 s)")
    ap.add_argument("--verify-timeout", type=float, default=900,
                    help="seconds for the FAIL_TO_PASS/PASS_TO_PASS check")
    ap.add_argument("--no-verify", action="store_true", help="skip the FAIL_TO_PASS/PASS_TO_PASS check")
    ap.add_argument("--until", metavar="STEP", default=None,
                    help="stop the agent (SIGTERM, SIGKILL after 20 s) once its step STEP has "
                         "ended (e.g. write_code), and skip the FAIL_TO_PASS/PASS_TO_PASS "
                         "check: the visibility and prompt figures without the tests")
    ap.add_argument("--bland-plan", action="store_true",
                    help="plan descriptions name no definition (\"apply the reference change "
                         "to PATH\"); by default each names the definitions its hunks change, "
                         "as a planner would")
    ap.add_argument("--agent-rev", default=None,
                    help="run the agent from a snapshot of this commit (e.g. HEAD) instead of "
                         "the working tree")
    ap.add_argument("--agent-args", default="",
                    help="more arguments for `agent solve`, for experiments (e.g. \"--test-cmd "
                         "'python -m pytest FILE'\"); the benchmark's figures are without")
    ap.add_argument("--json", type=Path, help="write the raw results to this file")
    ap.add_argument("--keep", action="store_true", help="keep the checkouts under the cache")
    ap.add_argument("--report", type=Path, metavar="JSON",
                    help="print the report of results saved with --json, run nothing")
    args = ap.parse_args()
    if args.report:
        print_report(json.loads(args.report.read_text()), args.timeout)
        return
    check_cache(args.cache)
    args.cache = args.cache.resolve()

    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    if args.repo:
        rows = [r for r in rows if any(x in r["repo"] for x in args.repo)]
    if args.instances:
        wanted = [i.strip() for i in args.instances.split(",") if i.strip()]
        rows = [r for r in rows if r["instance_id"] in wanted]
        missing = set(wanted) - {r["instance_id"] for r in rows}
        if missing:
            print(f"not in the data set: {', '.join(sorted(missing))}", file=sys.stderr)
    if args.limit:
        rows = rows[: args.limit]
    if not rows:
        raise SystemExit("no instance selected")

    agent_src, described = agent_source(args.cache, args.agent_rev)
    print(f"agent: {described}; {len(rows)} instance(s); timeout {args.timeout:g} s per run",
          file=sys.stderr, flush=True)
    results: list[dict[str, Any]] = []
    for i, row in enumerate(rows, 1):
        print(f"[{i}/{len(rows)}] {row['instance_id']} ...", file=sys.stderr, flush=True)
        res = solve_one(row, args, agent_src)
        res["agent"] = described
        res["timeout"] = args.timeout
        results.append(res)
        stopped = " (stopped at the timeout)" if res["stopped"] else ""
        print(f"[{i}/{len(rows)}] {row['instance_id']}: exit {res['exit_code']}{stopped}, "
              f"{fmt(res['seconds'])} s, branch "
              f"{'ok' if res.get('branch_ok') else res.get('branch_tree') and 'WRONG' or 'none'}"
              + (f", error: {res['error']}" if res.get("error") else ""),
              file=sys.stderr, flush=True)
        if args.json:  # after each instance, so a long session keeps what it measured
            args.json.write_text(json.dumps(results, indent=1) + "\n")
    print_report(results, args.timeout)


if __name__ == "__main__":
    main()
