"""`agent locate` through a real process: output shape and usage errors (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _locate_argv() -> list[str]:
    from agent_cli.cli import app

    # Typer runs the only command of a one-command app as the root command, without its
    # name; `agent locate` needs the name as soon as cli.py registers a second command.
    lone = len(app.registered_commands) + len(app.registered_groups) == 1
    return [sys.executable, "-m", "agent_cli", *([] if lone else ["locate"])]


def agent(
    *args: str, cwd: Path, columns: int | None = None, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ) | (env_extra or {})
    if columns:
        env["COLUMNS"] = str(columns)
    # Stop git's upward search at tmp_path, so "not a repository" cannot find one above.
    env["GIT_CEILING_DIRECTORIES"] = str(cwd.parent)
    return subprocess.run(
        [*_locate_argv(), *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def issue(tmp_path: Path) -> Path:
    path = tmp_path / "ISSUE.md"
    path.write_text(
        "# Store.flush divides by zero\n\n"
        "```\n"
        'File "/venv/lib/site-packages/pkg/storage.py", line 8, in flush\n'
        "ZeroDivisionError: division by zero\n"
        "```\n"
    )
    return path


def test_json_output_shape(repo: Path, issue: Path) -> None:
    proc = agent(str(issue), "--repo", str(repo), "--top", "3", "--json", cwd=repo.parent)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["files"]) == 3
    first = data["files"][0]
    assert first["path"] == "pkg/storage.py"
    assert isinstance(first["score"], float) and first["reasons"]
    assert {"name", "line", "end_line"} <= set(first["symbols"][0])
    assert first["symbols"][0]["name"] == "Store.flush"
    assert isinstance(data["seconds"], float)
    assert len(data["commit"]) == 40
    assert data["symbols"][0]["path"] == "pkg/storage.py"


def test_table_output(repo: Path, issue: Path) -> None:
    proc = agent(str(issue), "--repo", str(repo), cwd=repo.parent)
    assert proc.returncode == 0, proc.stderr
    assert "pkg/storage.py" in proc.stdout
    assert "Store.flush" in proc.stdout


def test_table_prints_brackets_in_reasons_as_they_are(repo: Path, tmp_path: Path) -> None:
    # Commit subjects ("[MRG] ...", "[3.9] bpo-..."), paths and issue words are text,
    # not rich markup: `[/x]` would crash the table, `[bold]` would vanish.
    from tests.search.conftest import git

    strings = repo / "pkg/util/strings.py"
    strings.write_text(strings.read_text() + "# tabs\n")
    git(repo, "commit", "-q", "-am", "[/x] Fix [bold] tab characters vanish from titles")
    issue = tmp_path / "TABS.md"
    issue.write_text("Titles drop tab characters\n\nThe tab characters vanish.\n")
    proc = agent(str(issue), "--repo", str(repo), cwd=repo.parent, columns=250)
    assert proc.returncode == 0, proc.stderr
    assert '"[/x] Fix [bold] tab characters vanish from titles"' in proc.stdout


def test_table_on_a_terminal_that_cannot_show_a_name(tmp_path: Path) -> None:
    from tests.search.conftest import git

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "café_parser.py").write_text("def parse_café():\n    pass\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    issue = tmp_path / "ISSUE.md"
    issue.write_text("café parser broken\n\n`parse_café` fails\n")
    proc = agent(
        str(issue), "--repo", str(repo), cwd=tmp_path, env_extra={"PYTHONIOENCODING": "ascii"}
    )
    assert proc.returncode == 0, proc.stderr
    assert "caf?_parser.py" in proc.stdout


def _assert_usage_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert needle in errors[0]
    assert "Traceback" not in proc.stderr


def test_not_a_git_repository(tmp_path: Path, issue: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = agent(str(issue), "--repo", str(plain), cwd=tmp_path)
    _assert_usage_error(proc, "not a git repository")
    assert "--repo" in proc.stderr  # the hint says how to fix it
    assert not (plain / ".agent").exists()


def test_empty_issue_file(repo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.md"
    empty.write_text("\n   \n")
    proc = agent(str(empty), "--repo", str(repo), cwd=tmp_path)
    _assert_usage_error(proc, "issue file is empty")
    assert not (repo / ".agent").exists()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("\ufeff\n", "issue file is empty"),
        ("\x00\x00\n", "issue file is empty"),
        ("<!-- Describe the bug here -->\n", "no words outside template comments"),
    ],
)
def test_issue_file_without_words(repo: Path, tmp_path: Path, text: str, needle: str) -> None:
    blank = tmp_path / "blank.md"
    blank.write_text(text)
    proc = agent(str(blank), "--repo", str(repo), cwd=tmp_path)
    _assert_usage_error(proc, needle)
    assert not (repo / ".agent").exists()


def test_damaged_cache_database(repo: Path, issue: Path, tmp_path: Path) -> None:
    assert agent(str(issue), "--repo", str(repo), cwd=tmp_path).returncode == 0
    db = repo / ".agent" / "cache" / "index" / "cache.db"
    db.write_bytes(b"not a database " * 2000)
    proc = agent(str(issue), "--repo", str(repo), cwd=tmp_path)
    _assert_usage_error(proc, "cannot open the cache")
    assert f"rm -rf {db.parent}" in proc.stderr
    assert db.read_bytes() == b"not a database " * 2000


def test_missing_issue_file(repo: Path, tmp_path: Path) -> None:
    proc = agent(str(tmp_path / "nope.md"), "--repo", str(repo), cwd=tmp_path)
    _assert_usage_error(proc, "issue file not found")
    assert not (repo / ".agent").exists()


def test_top_zero(repo: Path, issue: Path, tmp_path: Path) -> None:
    proc = agent(str(issue), "--repo", str(repo), "--top", "0", cwd=tmp_path)
    _assert_usage_error(proc, "--top")
    assert not (repo / ".agent").exists()
