"""What the model is shown: the issue, the code, the plan, failures, as text blocks.

The blocks are deterministic functions of the artifacts, so the same step asked
twice sends the same request (the journal and the prompt cache both rely on it).
Code comes from the base commit through git, never from the user's working tree,
which may hold uncommitted work that is not part of the run.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import subprocess
import time
from pathlib import Path

from agent_cli.pipeline import windows
from agent_cli.pipeline.artifacts import (
    AnalysisPlan,
    ContextFile,
    ExplorationResult,
    FileView,
    ImplementationPlan,
    Issue,
    PlannedChange,
    RankedPath,
    RepoRef,
    SymbolRef,
    TestResult,
)
from agent_cli.pipeline.windows import Focus, tokens
from agent_cli.workspace.edits import EditOutcome, confine
from agent_cli.workspace.errors import EditRejected

WHOLE_FILE_SHARE = 0.35  # a file bigger than this share of the budget is shown in windows
# A write_code or fix_code prompt, before any read, stays within PROMPT_TOKENS (the
# rest of llm.service.MAX_PROMPT_TOKENS is for what the model reads). The files being
# written claim it first; the exploration context gets what is left.
PROMPT_TOKENS = 52_000
FILE_TOKENS = 28_000  # the file a write_code call writes: whole up to this, else windows
FIX_FILES_TOKENS = 24_000  # the changed files in a fix prompt, shared among them
MIN_FIX_FILE_TOKENS = 4_000
MIN_EXPLORATION_TOKENS = 6_000


def issue_block(issue: Issue) -> str:
    return f"# Issue: {issue.title}\n\n{issue.text.strip()}\n"


def analysis_text(a: AnalysisPlan) -> str:
    def bullets(items: list[str]) -> str:
        return "\n".join(f"- {x}" for x in items) or "- (none)"

    return (f"Problem: {a.problem}\n\nSymptoms:\n{bullets(a.symptoms)}\n\n"
            f"Suspected areas:\n{bullets(a.suspected_areas)}\n\n"
            f"Acceptance criteria:\n{bullets(a.acceptance_criteria)}")


def exploration_block(e: ExplorationResult, max_tokens: int | None = None) -> str:
    """The exploration's files in rank order; with `max_tokens`, those that fit (the
    rest are named, so the model can read them)."""
    parts = ["# Relevant code, ranked by a search of the repository\n"]
    used, left_out = 0, []
    for f in e.files:
        block = f"## {f.path} ({f.why})\n```\n{f.content.rstrip()}\n```\n"
        if max_tokens is not None and used + tokens(block) > max_tokens:
            left_out.append(f.path)
            continue
        parts.append(block)
        used += tokens(block)
    if left_out:
        parts.append("Also relevant, not shown here for room (use read_file): "
                     + ", ".join(left_out) + "\n")
    if e.neighbours:
        parts.append("Import neighbours of the top files: " + ", ".join(e.neighbours) + "\n")
    return "\n".join(parts)


def exploration_room(*claimed: str | int) -> int:
    """Tokens the exploration block may take in a prompt whose other parts are
    `claimed` (texts, or token counts), within PROMPT_TOKENS."""
    used = sum(c if isinstance(c, int) else tokens(c) for c in claimed)
    return max(MIN_EXPLORATION_TOKENS, PROMPT_TOKENS - used)


def plan_block(plan: ImplementationPlan) -> str:
    changes = "\n".join(f"{i}. {c.action} `{c.path}`: {c.description}"
                        for i, c in enumerate(plan.changes, 1))
    tests = "\n".join(f"- [{t.kind}] `{t.id}`: {t.reason}" for t in plan.tests) or "- (none)"
    by = " (written by the human reviewer)" if plan.author == "human" else ""
    review = (f"\nThe reviewer's comment on approving it (follow it):\n{plan.review}\n"
              if plan.review else "")
    return (f"# The approved plan{by}\n\n{plan.summary}\n\nChanges, in order:\n{changes}\n\n"
            f"Tests:\n{tests}\n{review}")


# -- exploration ---------------------------------------------------------------


def repo_context(repo: RepoRef) -> str:
    """Top-level entries and the README's head, at the base commit."""
    names = git_text(repo, "ls-tree", "--name-only", repo.base_commit).split()
    readme = next((n for n in names if n.lower().startswith("readme")), None)
    head = ""
    if readme:
        head = "\n".join(show(repo, readme).splitlines()[:40])
    return "Top-level entries: " + ", ".join(names) + (f"\n\n{readme} (start):\n{head}" if head else "")


def explore(issue: Issue, analysis: AnalysisPlan, repo: RepoRef, *, top: int,
            budget: int) -> ExplorationResult:
    from agent_cli.search import locate_text

    t0 = time.monotonic()
    terms = [*analysis.search_terms, *analysis.suspected_areas]
    found = locate_text(f"{issue.title}\n\n{issue.text}", repo=Path(repo.path), top=top,
                        extra_terms=terms, commit=repo.base_commit)
    ranked = [RankedPath(path=f.path, score=round(f.score, 3), reasons=f.reasons,
                         symbols=[SymbolRef(name=s.name, line=s.line, end_line=s.end_line)
                                  for s in f.symbols]) for f in found.files]
    files: list[ContextFile] = []
    used = 0
    for f in ranked:
        shown = _context_file(repo, f, budget, issue)
        if shown is not None and used + shown.tokens <= budget:
            files.append(shown)
            used += shown.tokens
    top_paths = {f.path for f in found.files[:3]}
    neighbours = sorted({n for f in found.files[:3] for n in [*f.imports, *f.imported_by]}
                        - top_paths)
    return ExplorationResult(ranked=ranked, files=files, neighbours=neighbours[:15], tokens=used,
                             seconds=round(time.monotonic() - t0, 3))


def _context_file(repo: RepoRef, f: RankedPath, budget: int, issue: Issue) -> ContextFile | None:
    text = show(repo, f.path)
    why = f"score {f.score:g}: " + "; ".join(f.reasons[:3])
    if not f.symbols and tokens(text) > budget * WHOLE_FILE_SHARE:
        return None  # too big, and the search found nothing in it to show
    focus = Focus(names=[s.name for s in f.symbols[:6]],
                  lines=windows.pointed_lines(issue.text, f.path))
    shown = windows.view(f.path, text, budget=int(budget * WHOLE_FILE_SHARE), focus=focus)
    return ContextFile(path=f.path, why=why if shown.whole else why + " (outline and windows)",
                       content=shown.text, whole=shown.whole, tokens=shown.tokens,
                       lines=shown.lines, ranges=shown.ranges)


def write_focus(change: PlannedChange, plan: ImplementationPlan, issue: Issue,
                exploration: ExplorationResult) -> Focus:
    """What matters in the file a write_code call writes, most telling first: the
    change's own words, the plan's test ids in it, the symbols the search located in
    it, the lines a traceback points at, then the plan's summary and the issue."""
    own = windows.focus_from_text(change.description)
    tests = [t.id.split("::")[-1] for t in plan.tests if same_path(t.id.split("::")[0], change.path)]
    located = [s.name for r in exploration.ranked if same_path(r.path, change.path)
               for s in r.symbols]
    rest = windows.focus_from_text(f"{plan.summary}\n{issue.text}")
    return Focus(names=[*own.names, *tests, *located, *rest.names],
                 lines=windows.pointed_lines(issue.text, change.path),
                 words=[*own.words, *rest.words])


def git_text(repo: RepoRef, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo.path, capture_output=True, check=False)
    return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else ""


def show(repo: RepoRef, path: str) -> str:
    return git_text(repo, "show", f"{repo.base_commit}:{path}")


# -- files, failures and edits in prompts -----------------------------------------


def file_for_prompt(root: Path, path: str, *, budget: int, focus: Focus, call_for: str,
                    shown: list[FileView]) -> str:
    """A file of the worktree for the model: whole and numbered, or its outline and
    windows around `focus` (see `windows`); what was shown is appended to `shown`.
    `path` comes from the model (a plan, a diff a test run shaped), so it is confined
    before anything is read."""
    try:
        target = confine(root, path)
    except EditRejected as exc:
        return f"(not shown: {exc.message})"
    if not target.is_file():
        return "(the file does not exist yet)"
    data = target.read_bytes()
    if b"\0" in data[:8192]:
        return "(a binary file; not shown)"
    view = windows.view(path, data.decode("utf-8", "replace"), budget=budget, focus=focus)
    shown.append(FileView(path=path, call_for=call_for, via="prompt", lines=view.lines,
                          ranges=view.ranges, whole=view.whole))
    return f"```\n{view.text}\n```"


def files_for_prompt(root: Path, paths: list[str], focus: dict[str, Focus],
                     shown: list[FileView]) -> str:
    """The changed files for a fix prompt, sharing FIX_FILES_TOKENS among them."""
    budget = max(MIN_FIX_FILE_TOKENS, FIX_FILES_TOKENS // max(len(paths), 1))
    return "\n".join(
        f"`{p}`:\n" + file_for_prompt(root, p, budget=budget, focus=focus.get(p, Focus()),
                                     call_for="", shown=shown)
        for p in paths) or "(no files changed)"


def fix_focus(diff: str, result: TestResult, plan: ImplementationPlan) -> dict[str, Focus]:
    """Per changed file: the lines the change wrote (new side of each hunk) and the
    lines the failures' tracebacks point at, then the plan's names."""
    lines: dict[str, list[int]] = {}
    path = None
    diff_lines = diff.splitlines()
    for i, line in enumerate(diff_lines):
        if line.startswith("--- ") and i + 1 < len(diff_lines) \
                and diff_lines[i + 1].startswith("+++ "):  # a file header, not a `++` line
            new = diff_lines[i + 1][4:].rstrip("\t")
            path = new[2:] if new.startswith("b/") else None  # /dev/null, quoted: unfocused
        elif line.startswith("@@") and path:
            m = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", line)
            if m:
                start, count = int(m.group(1)), int(m.group(2) or 1)
                lines.setdefault(path, []).extend(range(start, start + max(count, 1), 6))
    failures = "\n".join(f.message for f in result.failures[:10]) + result.output_tail
    names = windows.focus_from_text(plan.summary)
    return {p: Focus(names=names.names, words=names.words,
                     lines=[*windows.pointed_lines(failures, p), *ls]) for p, ls in lines.items()}


def path_errors(refused: dict[str, str]) -> str:
    lines = "\n".join(f"- {why}" for why in refused.values())
    return ("\nYour plan named paths the agent will not read or write:\n" + lines
            + "\nEvery path must be a file inside the repository, relative to its root, not "
            "under .git/ and not through a symbolic link that leaves the repository. Send the "
            "plan again.\n")


def edit_errors(failed: list[EditOutcome]) -> str:
    parts = ["\nSome of your edits did not apply. Fix them and send the edits again:\n"]
    for o in failed:
        parts.append(f"- {o.path} ({o.action}): {o.error}")
        if o.nearest:
            parts.append(f"  The most similar text in the file:\n```\n{o.nearest}\n```")
    return "\n".join(parts) + "\n"


def failures_text(result: TestResult) -> str:
    lines = [result.summary]
    for f in result.failures[:10]:
        lines.append(f"\n### {f.id}\n```\n{f.message[:3000]}\n```")
    if result.missing_targets:
        lines.append("\nTarget tests of the plan that were not found: "
                     + ", ".join(result.missing_targets) + ". If one is a new test, write it; "
                     "if it exists under another id, give the corrected ids in `targets`.")
    if result.timed_out or not result.failures:
        lines.append(f"\nEnd of the test output:\n```\n{result.output_tail[-4000:]}\n```")
    return "\n".join(lines)


def shown_command(command: list[str] | str) -> str:
    return command if isinstance(command, str) else shlex.join(command)


def same_path(a: str, b: str) -> bool:
    return posixpath.normpath(a) == posixpath.normpath(b)


def push_commands(repo: RepoRef, branch_name: str, title: str, pr_path: Path) -> list[str]:
    return [shlex.join(["cd", repo.path]),
            shlex.join(["git", "push", "-u", "origin", branch_name]),
            shlex.join(["gh", "pr", "create", "--draft", "--head", branch_name, "--title", title,
                        "--body-file", str(pr_path)])]
