"""Turning a run's worktree into a branch, and offering it as a pull request.

`commit_branch` makes `agent/<run_id>` point at one new commit whose parent is the
base commit and whose tree is the worktree's content. The commit is made with
`git commit-tree` rather than `git commit`: it reads user.name/user.email (and
commit.gpgSign) from the same repository config, but it neither moves the worktree's
HEAD nor rewrites its index, and it runs no hooks. The worktree therefore stays
"base + diff" whatever happens, and a re-executed checkpoint sees the same state.
Re-running is idempotent: an existing branch whose commit has the same parent, tree
and message is returned as is.

We insist on a configured identity (`user.useConfigOnly`): git's fallback of
`root@hostname` would put a made-up author on the user's branch.

`push_and_open_pr` only acts when it can finish: a remote exists and `gh` is on
PATH. Otherwise it returns the exact commands for the user to run themselves.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from agent_cli.workspace._git import clean_env, git, run_git, split_z
from agent_cli.workspace.errors import (
    GitIdentityMissing,
    NothingToCommit,
    PushFailed,
    WorkspaceError,
)
from agent_cli.workspace.worktree import Worktree, repo_root

_PUSH_TIMEOUT_S = 300


class BranchResult(BaseModel):
    """The branch a run produced."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    branch: str
    """`agent/<run_id>`."""
    commit: str
    """Full id of the branch's commit (one commit on top of the base)."""
    files_changed: list[str]
    """Paths the commit changes, sorted."""
    diffstat: str
    """`git diff --stat` of the commit against the base."""
    reused: bool = False
    """The branch already pointed at an identical commit; nothing was written."""


class PushResult(BaseModel):
    """What `push_and_open_pr` did, or what the user can run instead."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    pushed: bool
    """The branch was pushed and a pull request exists."""
    pr_url: str | None = None
    """The pull request's URL, when one was opened (or already open)."""
    commands: list[str]
    """Shell lines that push the branch and open the pull request, starting with `cd`."""
    reason: str | None = None
    """Why nothing was pushed (no remote, no gh)."""


def commit_branch(
    repo: Path,
    worktree: Worktree,
    run_id: str,
    message: str,
    *,
    files: list[str] | None = None,
) -> BranchResult:
    """Create (or reuse) branch `agent/<run_id>` at one commit containing the
    worktree's changes (only `files`, when given) on top of the base commit."""
    root = repo_root(repo)
    branch = f"agent/{run_id}"
    if run_git(root, "check-ref-format", f"refs/heads/{branch}", check=False).returncode != 0:
        raise WorkspaceError(f"not a valid branch name: {branch}")
    text = message.strip()
    if not text:
        raise WorkspaceError("the commit message is empty")
    text += "\n"
    base = worktree.base_commit
    tree = worktree.tree(files)
    if tree == git(root, "rev-parse", f"{base}^{{tree}}"):
        raise NothingToCommit(
            f"the worktree {worktree.path} has no changes against {base[:12]} to commit"
        )

    existing = run_git(
        root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", check=False
    )
    current = existing.stdout.decode().strip() if existing.returncode == 0 else None
    if current and _same_commit(root, current, tree, base, text):
        return _result(root, branch, base, current, reused=True)

    _require_identity(worktree.path)
    commit = git(
        worktree.path,
        "-c",
        "user.useConfigOnly=true",
        "commit-tree",
        tree,
        "-p",
        base,
        "-F",
        "-",
        input=text.encode(),
    )
    # `branch -f` (not update-ref) so git refuses to move a branch checked out somewhere.
    git(root, "branch", "-f", branch, commit)
    return _result(root, branch, base, commit, reused=False)


def _same_commit(root: Path, commit: str, tree: str, base: str, message: str) -> bool:
    fields = git(root, "show", "-s", "--format=%T%x00%P%x00%B", commit).split("\0", 2)
    if len(fields) != 3:
        return False
    return fields[0] == tree and fields[1] == base and fields[2].strip() == message.strip()


def _require_identity(cwd: Path) -> None:
    for var in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
        result = run_git(cwd, "-c", "user.useConfigOnly=true", "var", var, check=False)
        if result.returncode != 0:
            raise GitIdentityMissing(
                "git does not know who is committing: user.name and user.email are not set",
                hint='set them with: git config user.email "you@example.com" && '
                'git config user.name "Your Name"  (then resume the run)',
            )


def _result(root: Path, branch: str, base: str, commit: str, *, reused: bool) -> BranchResult:
    names = split_z(run_git(root, "diff", "--name-only", "-z", "--no-renames", base, commit).stdout)
    stat = git(root, "diff", "--stat=100", "--no-renames", "--no-color", base, commit)
    return BranchResult(
        branch=branch, commit=commit, files_changed=sorted(names), diffstat=stat, reused=reused
    )


def push_and_open_pr(
    repo: Path,
    branch: str,
    title: str,
    body_path: Path,
    *,
    remote: str = "origin",
    draft: bool = True,
) -> PushResult:
    """Push `branch` and open a pull request with `gh`, when there is a remote and
    `gh` is installed; otherwise return the commands to do it by hand."""
    root = repo_root(repo)
    body = Path(body_path).resolve()
    push = ["git", "push", "-u", remote, branch]
    pr = ["gh", "pr", "create", *(["--draft"] if draft else []), "--head", branch]
    pr += ["--title", title, "--body-file", str(body)]
    commands = [shlex.join(["cd", str(root)]), shlex.join(push), shlex.join(pr)]

    reason = None
    if run_git(root, "remote", "get-url", remote, check=False).returncode != 0:
        reason = f"no git remote named {remote!r}; add one with: git remote add {remote} URL"
    elif shutil.which("gh") is None:
        reason = "the GitHub CLI (gh) is not on PATH; install it from https://cli.github.com"
    if reason:
        return PushResult(pushed=False, commands=commands, reason=reason)

    pushed = run_git(root, "push", "-u", remote, branch, check=False, timeout=_PUSH_TIMEOUT_S)
    if pushed.returncode != 0:
        raise PushFailed(
            f"git push to {remote} failed:\n{pushed.stderr.decode('utf-8', 'replace').strip()}",
            hint="push and open the pull request by hand:\n" + "\n".join(commands),
        )
    # A re-executed step must not open a second pull request for the same branch.
    listing = ["gh", "pr", "list", "--head", branch, "--state", "open", "--json", "url"]
    url = _gh(root, [*listing, "--jq", ".[0].url"], commands)
    if not url:
        # gh prints progress first and the new pull request's URL last.
        created = _gh(root, pr, commands).splitlines()
        url = created[-1].strip() if created else ""
    return PushResult(pushed=True, pr_url=url or None, commands=commands)


def _gh(root: Path, argv: list[str], commands: list[str]) -> str:
    env = clean_env({"GH_PROMPT_DISABLED": "1", "GH_NO_UPDATE_NOTIFIER": "1", "NO_COLOR": "1"})
    try:
        result = subprocess.run(
            argv,
            check=False,
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=_PUSH_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PushFailed(f"{shlex.join(argv[:3])} failed: {exc}") from exc
    if result.returncode != 0:
        raise PushFailed(
            f"{shlex.join(argv[:3])} failed:\n{result.stderr.strip()}",
            hint="open the pull request by hand:\n" + commands[-1],
        )
    return result.stdout.strip()
