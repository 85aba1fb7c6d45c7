from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from agent_cli.errors import UsageError
from agent_cli.workspace import (
    DiffDoesNotApply,
    WorkspaceError,
    Worktree,
    head_commit,
    repo_root,
)
from tests.workspace.conftest import BINARY, dirty, make_repo, sh, user_state


def test_ensure_creates_detached_worktree_and_excludes_agent_dir(repo: Path) -> None:
    base = head_commit(repo)
    wt = Worktree.ensure(repo, "run1", base)

    assert wt.path == repo / ".agent" / "worktrees" / "run1"
    assert wt.base_commit == base
    assert (wt.path / "app.py").read_text() == (repo / "app.py").read_text()
    assert sh(wt.path, "git", "rev-parse", "HEAD") == base
    assert sh(wt.path, "git", "branch", "--show-current") == ""  # detached
    exclude = (repo / ".git" / "info" / "exclude").read_text()
    assert exclude.count(".agent/") == 1
    assert sh(repo, "git", "status", "--porcelain", "--untracked-files=all") == ""

    Worktree.ensure(repo, "run2", base)
    assert (repo / ".git" / "info" / "exclude").read_text().count(".agent/") == 1


def test_ensure_reuses_and_repairs(repo: Path) -> None:
    base = head_commit(repo)
    wt = Worktree.ensure(repo, "run1", base)
    (wt.path / "scratch.txt").write_text("kept on reuse\n")

    again = Worktree.ensure(repo, "run1", base)
    assert again == wt
    assert (wt.path / "scratch.txt").exists()

    # A crash mid-way can leave a plain directory, or a registration without directory.
    shutil.rmtree(wt.path)
    wt.path.mkdir()
    (wt.path / "junk").write_text("x")
    repaired = Worktree.ensure(repo, "run1", base)
    assert (repaired.path / "app.py").exists() and not (repaired.path / "junk").exists()
    shutil.rmtree(wt.path)
    assert Worktree.ensure(repo, "run1", base).diff() == ""


def test_remove_is_idempotent(repo: Path) -> None:
    wt = Worktree.ensure(repo, "run1", head_commit(repo))
    (wt.path / "untracked.txt").write_text("x")
    locked = wt.path / "cache" / "ro"
    locked.mkdir(parents=True)
    (locked / "f").write_text("read-only, like a module cache")
    locked.chmod(0o500)  # (only a real obstacle when the tests do not run as root)
    wt.remove()
    assert not wt.path.exists()
    assert str(wt.path) not in sh(repo, "git", "worktree", "list")
    wt.remove()


def test_materialize_round_trip_with_new_deleted_and_binary_files(repo: Path) -> None:
    wt = Worktree.ensure(repo, "run1", head_commit(repo))
    (wt.path / "app.py").write_text("def greet(name):\n    return 'hey ' + name\n")
    (wt.path / "pkg").mkdir()
    (wt.path / "pkg" / "new.py").write_text("VALUE = 1\n")
    (wt.path / "old.txt").unlink()
    (wt.path / "logo.bin").write_bytes(BINARY[::-1] + b"\0tail")
    (wt.path / "new.bin").write_bytes(b"\0\1\2\3" * 50)
    diff = wt.diff()
    assert wt.changed_files() == ["app.py", "logo.bin", "new.bin", "old.txt", "pkg/new.py"]

    wt.materialize("")
    assert wt.diff() == "" and wt.changed_files() == []
    assert (wt.path / "old.txt").exists() and not (wt.path / "pkg").exists()

    (wt.path / "stray.txt").write_text("left by a test run")
    wt.materialize(diff)
    assert not (wt.path / "stray.txt").exists()
    assert (wt.path / "logo.bin").read_bytes() == BINARY[::-1] + b"\0tail"
    assert (wt.path / "new.bin").read_bytes() == b"\0\1\2\3" * 50
    assert not (wt.path / "old.txt").exists()
    assert wt.diff() == diff

    # Idempotent: a re-executed checkpoint materializes the same diff again.
    wt.materialize(diff)
    assert wt.diff() == diff


def test_diff_excludes_bytecode_and_survives_non_utf8(repo: Path) -> None:
    wt = Worktree.ensure(repo, "run1", head_commit(repo))
    (wt.path / "__pycache__").mkdir()
    (wt.path / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0pyc")
    (wt.path / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    diff = wt.diff()
    diff.encode("utf-8")  # valid UTF-8, so it can go into a JSON artifact
    assert wt.changed_files() == ["latin1.txt"]
    wt.materialize(diff)
    assert (wt.path / "latin1.txt").read_bytes() == "café\n".encode("latin-1")


def test_materialize_rejects_a_diff_that_does_not_apply(repo: Path) -> None:
    wt = Worktree.ensure(repo, "run1", head_commit(repo))
    bad = (
        "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n"
        "@@ -1,2 +1,2 @@\n-def nothing_like_this():\n-    pass\n+x = 1\n+y = 2\n"
    )
    with pytest.raises(DiffDoesNotApply, match="does not apply"):
        wt.materialize(bad)
    assert wt.diff() == ""


def test_user_checkout_untouched_by_every_operation(repo: Path) -> None:
    dirty(repo)
    before = user_state(repo)
    wt = Worktree.ensure(repo, "run1", head_commit(repo))
    (wt.path / "app.py").write_text("changed in the worktree\n")
    (wt.path / "extra.txt").write_text("new\n")
    diff = wt.diff()
    wt.materialize("")
    wt.materialize(diff)
    wt.changed_files()
    wt.remove()
    assert user_state(repo) == before


def test_broken_worktree_never_falls_back_to_user_checkout(repo: Path) -> None:
    dirty(repo)
    before = user_state(repo)
    wt = Worktree.ensure(repo, "run1", head_commit(repo))
    (wt.path / ".git").unlink()  # git would now find the enclosing user repository
    with pytest.raises(WorkspaceError, match="missing or broken"):
        wt.materialize("")
    assert user_state(repo) == before


def test_linked_worktree_as_repo_uses_common_git_dir(tmp_path: Path) -> None:
    main = make_repo(tmp_path / "main")
    linked = tmp_path / "linked"
    sh(main, "git", "worktree", "add", "-q", "--detach", str(linked))
    assert (linked / ".git").is_file()

    wt = Worktree.ensure(linked, "run1", "HEAD")
    assert wt.path == linked / ".agent" / "worktrees" / "run1"
    assert ".agent/" in (main / ".git" / "info" / "exclude").read_text()
    assert sh(linked, "git", "status", "--porcelain") == ""
    wt.remove()


def test_repo_root_and_head_commit(repo: Path, tmp_path: Path) -> None:
    (repo / "sub").mkdir()
    assert repo_root(repo / "sub") == repo.resolve()
    assert head_commit(repo) == sh(repo, "git", "rev-parse", "HEAD")
    outside = tmp_path / "plain"
    outside.mkdir()
    with pytest.raises(UsageError, match="not a git repository: .*pass --repo"):
        repo_root(outside)
    with pytest.raises(UsageError, match="not a git repository"):
        repo_root(tmp_path / "missing")


def test_agent_dir_symlink_is_refused(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / ".agent").symlink_to(elsewhere)
    with pytest.raises(WorkspaceError, match="symlink"):
        Worktree.ensure(repo, "run1", "HEAD")
    assert list(elsewhere.iterdir()) == []


def test_a_worktree_whose_git_link_was_rewritten_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    """A test rewrote the worktree's `.git` to the checkout's git directory; reusing
    it would have moved the user's branch back to the run's base (`reset --soft`)."""
    repo = make_repo(tmp_path / "repo")
    base = head_commit(repo)
    wt = Worktree.ensure(repo, "run1", base)
    (repo / "later.txt").write_text("the user's later work\n")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "later")
    later = head_commit(repo)
    (wt.path / ".git").write_text(f"gitdir: {repo / '.git'}\n")

    again = Worktree.ensure(repo, "run1", base)
    assert head_commit(repo) == later and (repo / "later.txt").exists()
    assert sh(repo, "git", "status", "--porcelain") == ""
    again.materialize("")
    assert sh(again.path, "git", "rev-parse", "HEAD") == base


def test_diff_sees_a_same_size_rewrite_in_the_tick_of_the_checkout(tmp_path: Path) -> None:
    """Racy git: a file rewritten with the same size in the same timestamp tick as the
    checkout that wrote it and the index looks unchanged by its stat data; git then
    re-reads it because its mtime is not older than the index's. The diff copied the
    index under a new mtime, and sympy-13091's one-line fix of basic.py (same size)
    vanished from the branch."""
    import os

    repo = make_repo(tmp_path / "repo")
    wt = Worktree.ensure(repo, "run1", head_commit(repo))
    wt.materialize("")
    target = wt.path / "app.py"
    before = target.read_text()
    index = wt.path / sh(wt.path, "git", "rev-parse", "--git-path", "index")
    tick = os.stat(index).st_mtime_ns
    os.utime(target, ns=(tick, tick))  # checked out in the index's tick...
    os.utime(index, ns=(tick, tick))
    sh(wt.path, "git", "update-index", "--refresh")  # (records that stat in the index)
    os.utime(index, ns=(tick, tick))
    after = before.replace("hello", "howdy")
    assert len(after) == len(before)
    target.write_text(after)  # ...and rewritten, same size, in that tick
    os.utime(target, ns=(tick, tick))
    time.sleep(1.1)  # the diff comes a second later (after the other files' edits)
    assert "howdy" in wt.diff()
