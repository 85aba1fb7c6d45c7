"""What the model is shown: the issue, the code, the plan, failures, as text blocks.

The blocks are deterministic functions of the artifacts, so the same step asked
twice sends the same request (the journal and the prompt cache both rely on it).
Code comes from the base commit through git, never from the user's working tree,
which may hold uncommitted work that is not part of the run.
"""

from __future__ import annotations

import posixpath
import shlex
import subprocess
import time
from pathlib import Path

from agent_cli.pipeline.artifacts import (
    AnalysisPlan,
    ContextFile,
    ExplorationResult,
    ImplementationPlan,
    Issue,
    RankedPath,
    RepoRef,
    SymbolRef,
    TestResult,
)
from agent_cli.workspace.edits import EditOutcome, confine
from agent_cli.workspace.errors import EditRejected

WHOLE_FILE_SHARE = 0.35  # a file bigger than this share of the budget is shown by symbols
MAX_PROMPT_FILE_CHARS = 60_000


def tokens(text: str) -> int:
    return (len(text) + 3) // 4


def issue_block(issue: Issue) -> str:
    return f"# Issue: {issue.title}\n\n{issue.text.strip()}\n"


def analysis_text(a: AnalysisPlan) -> str:
    def bullets(items: list[str]) -> str:
        return "\n".join(f"- {x}" for x in items) or "- (none)"

    return (f"Problem: {a.problem}\n\nSymptoms:\n{bullets(a.symptoms)}\n\n"
            f"Suspected areas:\n{bullets(a.suspected_areas)}\n\n"
            f"Acceptance criteria:\n{bullets(a.acceptance_criteria)}")


def exploration_block(e: ExplorationResult) -> str:
    parts = ["# Relevant code, ranked by a search of the repository\n"]
    for f in e.files:
        parts.append(f"## {f.path} ({f.why})\n```\n{f.content.rstrip()}\n```\n")
    if e.neighbours:
        parts.append("Import neighbours of the top files: " + ", ".join(e.neighbours) + "\n")
    return "\n".join(parts)


def plan_block(plan: ImplementationPlan) -> str:
    changes = "\n".join(f"{i}. {c.action} `{c.path}`: {c.description}"
                        for i, c in enumerate(plan.changes, 1))
    tests = "\n".join(f"- [{t.kind}] `{t.id}`: {t.reason}" for t in plan.tests) or "- (none)"
    return f"# The approved plan\n\n{plan.summary}\n\nChanges, in order:\n{changes}\n\nTests:\n{tests}\n"


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
        shown = _context_file(repo, f, budget)
        if shown is not None and used + shown.tokens <= budget:
            files.append(shown)
            used += shown.tokens
    top_paths = {f.path for f in found.files[:3]}
    neighbours = sorted({n for f in found.files[:3] for n in [*f.imports, *f.imported_by]}
                        - top_paths)
    return ExplorationResult(ranked=ranked, files=files, neighbours=neighbours[:15], tokens=used,
                             seconds=round(time.monotonic() - t0, 3))


def _context_file(repo: RepoRef, f: RankedPath, budget: int) -> ContextFile | None:
    text = show(repo, f.path)
    why = f"score {f.score:g}: " + "; ".join(f.reasons[:3])
    if tokens(text) <= budget * WHOLE_FILE_SHARE:
        return ContextFile(path=f.path, why=why, content=numbered(text), whole=True,
                           tokens=tokens(text))
    if not f.symbols:
        return None
    lines = text.splitlines()
    pieces = []
    for s in f.symbols[:6]:
        body = lines[s.line - 1:s.end_line][:150]
        pieces.append(numbered("\n".join(body), start=s.line))
    content = "\n...\n".join(pieces)
    return ContextFile(path=f.path, why=why + " (relevant symbols only)", content=content,
                       whole=False, tokens=tokens(content))


def numbered(text: str, start: int = 1) -> str:
    return "\n".join(f"{n:5d}| {line}" for n, line in enumerate(text.splitlines(), start))


def git_text(repo: RepoRef, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo.path, capture_output=True, check=False)
    return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else ""


def show(repo: RepoRef, path: str) -> str:
    return git_text(repo, "show", f"{repo.base_commit}:{path}")


# -- files, failures and edits in prompts -----------------------------------------


def file_for_prompt(root: Path, path: str) -> str:
    """The text of a file of the worktree for the model; `path` comes from the model
    (a plan, a diff a test run shaped), so it is confined before anything is read."""
    try:
        target = confine(root, path)
    except EditRejected as exc:
        return f"(not shown: {exc.message})"
    if not target.is_file():
        return "(the file does not exist yet)"
    text = target.read_text(encoding="utf-8", errors="replace")
    if len(text) > MAX_PROMPT_FILE_CHARS:
        text = text[:MAX_PROMPT_FILE_CHARS] + "\n... (truncated)"
    return f"```\n{text}\n```"


def files_for_prompt(root: Path, paths: list[str]) -> str:
    return "\n".join(f"`{p}`:\n{file_for_prompt(root, p)}" for p in paths) or "(no files changed)"


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


def push_commands(repo: RepoRef, branch_name: str, pr_path: Path) -> list[str]:
    return [f"cd {shlex.quote(repo.path)}",
            f"git push -u origin {branch_name}",
            f"gh pr create --draft --head {branch_name} --body-file {shlex.quote(str(pr_path))}"]
