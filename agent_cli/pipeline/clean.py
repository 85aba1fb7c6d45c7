"""`agent clean`: remove the worktrees (and, asked, the branches) of runs that are over.

A run is over when it succeeded, failed or was rejected. A waiting, running or
interrupted run keeps its worktree: it is still going somewhere. Each run is cleaned
under its executor lock, so a `resume` that starts meanwhile is refused or waits its
turn, never finds half a worktree. A branch is deleted only when it is the one the
run recorded making (`agent/<run-id>`) and still points at the commit the run made:
a branch the user made, or moved on with commits of their own, is never touched;
nor is the branch checked out in the checkout. The run's records stay: `inspect`,
`cost` and `diff` keep working, and `agent resume` of a failed run rebuilds its
worktree from the recorded diff.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from agent_cli import durable
from agent_cli.errors import UsageError
from agent_cli.pipeline.service import store_for
from agent_cli.workspace._git import run_git
from agent_cli.workspace.worktree import Worktree, repo_root

OVER = ("succeeded", "failed", "rejected")


def clean(ref: str | None, *, repo: Path, finished: bool, branches: bool) -> list[dict[str, Any]]:
    """What was removed and kept, per run considered: {run, status, removed, kept}."""
    if ref is not None and finished:
        raise UsageError("give a RUN or --finished, not both",
                         hint="agent clean RUN   or   agent clean --finished")
    if ref is None and not finished:
        raise UsageError("say which runs to clean",
                         hint="agent clean RUN, or agent clean --finished for every run that "
                         "succeeded, failed or was rejected (add --branches to delete their "
                         "agent/ branches too)")
    root = repo_root(repo)
    store = store_for(root)
    if ref is not None:
        run = store.resolve(ref)
        status = run.status()
        if status not in OVER:
            raise UsageError(f"run {run.id} is {status}; its worktree is kept until it is over",
                             hint=_finish_hint(run.id, status))
        runs = [run]
    else:
        runs = [store.get(i) for i in store.ids()]
    report = []
    for run in runs:
        status = run.status()
        if status not in OVER:
            continue
        try:
            with run.lock():
                report.append(_clean_one(root, run, status, branches))
        except durable.RunLocked:
            report.append({"run": run.id, "status": "running", "removed": [],
                           "kept": ["everything: another process is executing it"]})
    return [r for r in report if r["removed"] or r["kept"] or ref is not None]


def _finish_hint(run_id: str, status: str) -> str:
    if status == "waiting":
        return f"answer it first: agent approve {run_id}   or   agent reject {run_id}"
    if status == "interrupted":
        return f"continue it with: agent resume {run_id}   (clean it once it is over)"
    return "wait for it to finish"


def _clean_one(root: Path, run: durable.Run, status: str, branches: bool) -> dict[str, Any]:
    removed: list[str] = []
    kept: list[str] = []
    path = root / ".agent" / "worktrees" / run.id
    if path.exists():
        Worktree(repo=root, path=path, base_commit="").remove()
        removed.append(f"worktree .agent/worktrees/{run.id}")
    if branches:
        result = run.load().get("result")
        if isinstance(result, dict) and result.get("branch") and result.get("commit"):
            deleted, why_kept = _delete_branch(root, str(result["branch"]), str(result["commit"]))
            if deleted:
                removed.append(f"branch {result['branch']}")
            if why_kept:
                kept.append(why_kept)
    return {"run": run.id, "status": status, "removed": removed, "kept": kept}


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """git in the user's checkout, as `workspace._git` runs it (no hooks, no inherited
    GIT_DIR pointing elsewhere), its output as text."""
    out = run_git(root, *args, check=False)
    return subprocess.CompletedProcess(out.args, out.returncode,
                                       out.stdout.decode("utf-8", "replace"),
                                       out.stderr.decode("utf-8", "replace"))


def _delete_branch(root: Path, branch: str, commit: str) -> tuple[bool, str | None]:
    """Delete `branch` if it still is what the run made: (deleted, why it was kept)."""
    ref = f"refs/heads/{branch}"
    tip = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if tip.returncode != 0:
        return False, None  # already gone
    if tip.stdout.strip() != commit:
        return False, (f"branch {branch}: it has moved past the commit the run made "
                       f"({commit[:12]}); if you mean it: git branch -D {branch}")
    listed = _git(root, "worktree", "list", "--porcelain").stdout.splitlines()
    if f"branch {ref}" in listed:
        return False, f"branch {branch}: it is checked out; switch to another branch first"
    # The old value makes the deletion conditional: a commit that lands meanwhile wins.
    gone = _git(root, "update-ref", "-d", ref, commit)
    if gone.returncode != 0:
        return False, f"branch {branch}: git refused to delete it ({gone.stderr.strip()})"
    return True, None
