"""The workspace: where a run's code is written, tested and committed.

Everything here acts on an isolated git worktree (`<repo>/.agent/worktrees/<run>`),
never on the user's checkout, and every operation is idempotent given its inputs so
the pipeline can call it from checkpoints that re-execute after a crash.

* `worktree` — create/reuse/remove the worktree; its state is base commit + one diff.
* `edits`    — the model's edit format, tolerant matching, path confinement.
* `testrun`  — run tests with a timeout and output cap, JUnit parsing, baselines.
* `sandbox`  — the one door for project code: bubblewrap, the environment allowlist,
               nothing outliving the agent (`_reaper.py` when unconfined).
* `branch`   — one commit on `agent/<run>`, push and pull request.

This package imports only `agent_cli.errors`, `agent_cli.cache` and `agent_cli.durable.redact`
(what counts as a secret) from the project.
"""

from agent_cli.workspace.branch import BranchResult, PushResult, commit_branch, push_and_open_pr
from agent_cli.workspace.edits import Edit, EditOutcome, apply_edits, confine, confine_in_commit
from agent_cli.workspace.errors import (
    DiffDoesNotApply,
    EditRejected,
    GitFailed,
    GitIdentityMissing,
    NotAGitRepository,
    NothingToCommit,
    PushFailed,
    TestCommandNotFound,
    WorkspaceError,
)
from agent_cli.workspace.testrun import (
    TestCase,
    TestRun,
    TestVerdict,
    baseline,
    detect_test_command,
    evaluate,
    run_tests,
)
from agent_cli.workspace.worktree import Worktree, head_commit, repo_root, resolve_commit

__all__ = [
    "BranchResult",
    "DiffDoesNotApply",
    "Edit",
    "EditOutcome",
    "EditRejected",
    "GitFailed",
    "GitIdentityMissing",
    "NotAGitRepository",
    "NothingToCommit",
    "PushFailed",
    "PushResult",
    "TestCase",
    "TestCommandNotFound",
    "TestRun",
    "TestVerdict",
    "WorkspaceError",
    "Worktree",
    "apply_edits",
    "baseline",
    "commit_branch",
    "confine",
    "confine_in_commit",
    "detect_test_command",
    "evaluate",
    "head_commit",
    "push_and_open_pr",
    "repo_root",
    "resolve_commit",
    "run_tests",
]
