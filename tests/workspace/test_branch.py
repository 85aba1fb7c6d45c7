from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent_cli.workspace import (
    GitIdentityMissing,
    NothingToCommit,
    Worktree,
    commit_branch,
    head_commit,
    push_and_open_pr,
)
from tests.workspace.conftest import dirty, make_repo, sh, user_state


def changed_worktree(repo: Path) -> Worktree:
    wt = Worktree.ensure(repo, "run1", head_commit(repo))
    (wt.path / "app.py").write_text("def greet(name):\n    return 'hey ' + name\n")
    (wt.path / "new.py").write_text("X = 1\n")
    (wt.path / "old.txt").unlink()
    return wt


def test_commit_branch_creates_one_commit_with_configured_identity(repo: Path) -> None:
    dirty(repo)
    before = user_state(repo)
    base = head_commit(repo)
    wt = changed_worktree(repo)

    result = commit_branch(repo, wt, "run1", "Greet with hey\n\nLonger body.\n")
    assert result.branch == "agent/run1" and not result.reused
    assert result.files_changed == ["app.py", "new.py", "old.txt"]
    assert "3 files changed" in result.diffstat
    assert sh(repo, "git", "rev-parse", "agent/run1") == result.commit
    assert sh(repo, "git", "rev-list", f"{base}..agent/run1") == result.commit
    assert sh(repo, "git", "rev-parse", "agent/run1^") == base
    who = sh(repo, "git", "show", "-s", "--format=%an <%ae>|%cn <%ce>|%B", result.commit)
    assert (
        who
        == "Ada Tester <ada@example.test>|Ada Tester <ada@example.test>|Greet with hey\n\nLonger body."
    )
    assert sh(repo, "git", "show", "agent/run1:new.py") == "X = 1"

    # Idempotent: same tree, parent and message -> the same commit, nothing new written.
    again = commit_branch(repo, wt, "run1", "Greet with hey\n\nLonger body.")
    assert again.reused and again.commit == result.commit
    # The worktree is still base + diff, and the user's checkout did not move.
    assert sh(wt.path, "git", "rev-parse", "HEAD") == base
    assert user_state(repo) == before


def test_commit_branch_moves_to_new_content_and_can_take_a_file_subset(repo: Path) -> None:
    wt = changed_worktree(repo)
    first = commit_branch(repo, wt, "run1", "msg")
    (wt.path / "new.py").write_text("X = 2\n")
    second = commit_branch(repo, wt, "run1", "msg")
    assert second.commit != first.commit and not second.reused
    assert sh(repo, "git", "show", "agent/run1:new.py") == "X = 2"

    subset = commit_branch(repo, wt, "run2", "only app", files=["app.py"])
    assert subset.files_changed == ["app.py"]


def test_commit_branch_needs_changes_and_an_identity(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "anon", identity=False)
    wt = Worktree.ensure(repo, "run1", head_commit(repo))
    with pytest.raises(NothingToCommit):
        commit_branch(repo, wt, "run1", "nothing")
    (wt.path / "app.py").write_text("changed\n")
    with pytest.raises(GitIdentityMissing) as info:
        commit_branch(repo, wt, "run1", "msg")
    assert "git config user.email" in str(info.value)
    assert sh(repo, "git", "branch", "--list", "agent/*") == ""


def test_push_without_remote_returns_the_commands(repo: Path) -> None:
    wt = changed_worktree(repo)
    result = commit_branch(repo, wt, "run1", "msg")
    body = repo / ".agent" / "pr.md"
    body.write_text("## Summary\n")
    push = push_and_open_pr(repo, result.branch, "Fix greeting", body)
    assert not push.pushed and push.pr_url is None
    assert "no git remote named 'origin'" in str(push.reason)
    assert push.commands == [
        f"cd {repo.resolve()}",
        "git push -u origin agent/run1",
        f"gh pr create --draft --head agent/run1 --title 'Fix greeting' --body-file {body.resolve()}",
    ]


def test_push_and_open_pr_with_a_remote_and_gh(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "remote.git"
    sh(tmp_path, "git", "init", "-q", "--bare", str(remote))
    sh(repo, "git", "remote", "add", "origin", str(remote))
    # A stand-in `gh` on PATH, at the process boundary: it records its arguments.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "gh-calls"
    gh = bin_dir / "gh"
    gh.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {calls}\n'
        'if [ "$2" = create ]; then echo https://example.test/pr/7; fi\n'
    )
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    result = commit_branch(repo, changed_worktree(repo), "run1", "msg")
    push = push_and_open_pr(repo, result.branch, "Fix", repo / "pr.md", draft=True)
    assert push.pushed and push.pr_url == "https://example.test/pr/7"
    assert sh(remote, "git", "rev-parse", "agent/run1") == result.commit
    logged = calls.read_text().splitlines()
    assert logged[0].startswith("pr list --head agent/run1")
    assert logged[1].startswith("pr create --draft --head agent/run1 --title Fix --body-file")
