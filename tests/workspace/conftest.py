"""Real git repositories in tmp_path, isolated from the machine's git configuration.

Every test runs with an empty global config and no system config, and without the
GIT_AUTHOR_*/GIT_COMMITTER_* variables, so identities come only from what a test
sets with `git config` inside its repository.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

BINARY = bytes(range(256)) * 4


def sh(cwd: Path, *args: str, input: bytes | None = None) -> str:
    """Run a command for test setup; fail loudly."""
    result = subprocess.run(args, cwd=cwd, capture_output=True, input=input, check=False)
    assert result.returncode == 0, f"{args}: {result.stderr.decode()}"
    return result.stdout.decode().strip()


def make_repo(path: Path, *, identity: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    sh(path, "git", "init", "-q", "-b", "main")
    if identity:
        sh(path, "git", "config", "user.name", "Ada Tester")
        sh(path, "git", "config", "user.email", "ada@example.test")
    (path / "app.py").write_text("def greet(name):\n    return 'hello ' + name\n")
    (path / "README.md").write_text("# demo\n")
    (path / "old.txt").write_text("to be deleted\n")
    (path / "logo.bin").write_bytes(BINARY)
    sh(path, "git", "add", "-A")
    sh(
        path,
        "git",
        "-c",
        "user.name=Setup",
        "-c",
        "user.email=setup@example.test",
        "commit",
        "-q",
        "-m",
        "initial",
    )
    return path


@pytest.fixture(autouse=True)
def _isolated_git(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "EMAIL",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def user_state(repo: Path) -> dict[str, object]:
    """Everything about the user's checkout that our operations must leave alone."""
    files = {
        str(p.relative_to(repo)): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.parts and ".agent" not in p.parts
    }
    return {
        "files": files,
        "status": sh(repo, "git", "status", "--porcelain=v1", "--untracked-files=all"),
        "staged": sh(repo, "git", "diff", "--cached"),
        "head": sh(repo, "git", "rev-parse", "HEAD"),
        "branch": sh(repo, "git", "symbolic-ref", "HEAD"),
    }


def dirty(repo: Path) -> None:
    """Uncommitted work in the user's checkout: a modified, a staged and an untracked file."""
    (repo / "app.py").write_text("def greet(name):\n    return 'hi ' + name  # WIP\n")
    (repo / "README.md").write_text("# demo, staged edit\n")
    sh(repo, "git", "add", "README.md")
    (repo / "notes.txt").write_text("my untracked notes\n")
