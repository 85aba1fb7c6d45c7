"""Errors raised by the workspace package.

They all descend from `agent_cli.errors.AgentError`, so `cli.py` prints them and maps
them to exit codes without knowing this package. Problems the user fixes by changing
their input (not a git checkout) are `UsageError`s and exit 2; everything else exits 1
and leaves the run resumable once the cause (a git identity, a missing tool) is fixed.
"""

from __future__ import annotations

from agent_cli.errors import AgentError, UsageError


class WorkspaceError(AgentError):
    """A git or filesystem operation on the run's worktree failed."""


class NotAGitRepository(UsageError):
    """The directory given as the repository is not inside a git checkout (or has no commit)."""


class GitFailed(WorkspaceError):
    """A git command exited non-zero; carries the command and git's own stderr."""

    def __init__(self, command: list[str], stderr: str, *, hint: str | None = None) -> None:
        shown = " ".join(command)
        super().__init__(f"git failed: {shown}\n{stderr.strip()}", hint=hint)
        self.command = command
        self.stderr = stderr


class DiffDoesNotApply(WorkspaceError):
    """A stored diff no longer applies to the base commit; the worktree was left at base."""


class EditRejected(WorkspaceError):
    """A model-proposed path escapes the worktree (`..`, absolute, `.git/`, symlink)."""


class GitIdentityMissing(WorkspaceError):
    """`user.name` / `user.email` are not configured, so no commit can be authored."""


class NothingToCommit(WorkspaceError):
    """The worktree has no change against the base commit."""


class TestCommandNotFound(WorkspaceError):
    """The test command's program is not installed or not executable."""

    __test__ = False  # not a pytest test class, despite the name


class PushFailed(WorkspaceError):
    """`git push` or `gh pr create` failed."""
