"""Test command detection looks at the commit a run starts from, not the working tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agent_cli.workspace.testrun import detect_test_command, detect_test_command_at


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_untracked_marker_does_not_count(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "notes.txt").write_text("x\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "x")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # untracked
    head = git(tmp_path, "rev-parse", "HEAD")
    assert detect_test_command(tmp_path) is not None
    assert detect_test_command_at(tmp_path, head) is None


def test_committed_tests_and_package_json_are_seen(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "x")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert detect_test_command_at(tmp_path, head) == [sys.executable, "-m", "pytest"]
