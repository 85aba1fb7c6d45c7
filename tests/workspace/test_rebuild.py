"""Rebuilding a worktree (`materialize`) is idempotent whatever the diff holds (issue 16).

A diff that adds or changes a `.gitattributes` changes how git writes files back: when
`reset --hard` ran before `clean`, the `*.py text eol=crlf` the last diff left behind
made reset write the changed files with CRLF, and the same diff then did not apply,
every other rebuild. Real git, real worktrees.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_cli.workspace import Worktree, head_commit
from tests.workspace.conftest import sh


def _diff_with_attributes(wt: Worktree) -> str:
    (wt.path / ".gitattributes").write_text("*.py text eol=crlf\n")
    (wt.path / "app.py").write_text("def greet(name):\n    return 'hi ' + name\n")
    return wt.diff()


@pytest.mark.parametrize("tracked", [False, True], ids=["added", "changed"])
def test_rebuild_with_gitattributes_is_idempotent(repo: Path, tracked: bool) -> None:
    if tracked:  # the base commit already has a .gitattributes; the diff changes it
        (repo / ".gitattributes").write_text("*.md text\n")
        sh(repo, "git", "add", ".gitattributes")
        sh(repo, "git", "commit", "-q", "-m", "attributes")
    wt = Worktree.ensure(repo, "run1", head_commit(repo))
    diff = _diff_with_attributes(wt)
    assert ".gitattributes" in diff and "eol=crlf" in diff

    seen = []
    for _ in range(4):  # before the fix: works, fails, works, fails
        wt.materialize(diff)
        seen.append(wt.diff())
    assert seen == [diff] * 4
    assert sh(wt.path, "git", "status", "--porcelain") != ""  # the change is there


def test_rebuild_from_a_dirty_worktree_with_attributes(repo: Path) -> None:
    """A test run (or a crash) left more behind than the diff: the rebuild still lands
    on base + diff exactly."""
    wt = Worktree.ensure(repo, "run1", head_commit(repo))
    diff = _diff_with_attributes(wt)
    (wt.path / "README.md").write_text("# changed by a test\r\n")
    (wt.path / "scratch").mkdir()
    (wt.path / "scratch" / ".gitattributes").write_text("* -text\n")
    wt.materialize(diff)
    assert wt.diff() == diff
    wt.materialize(diff)
    assert wt.diff() == diff
