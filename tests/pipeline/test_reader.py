"""The read tools of write_code and fix_code: confined, capped, recorded."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent_cli.pipeline.artifacts import FileView
from agent_cli.pipeline.reader import MAX_READ_LINES, Reader


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "big.py").write_text("".join(f"line_{i} = {i}\n" for i in range(1, 1001)))
    (root / "pkg" / "small.py").write_text("def helper():\n    return line_7\n")
    (root / ":(top)x.py").write_text("line_7 in a file with pathspec magic in its name\n")
    (tmp_path / "secret.txt").write_text("the key is sk-secret\n")
    (root / "pkg" / "link.py").symlink_to(tmp_path / "secret.txt")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "pkg/big.py"], cwd=root, check=True)
    return root


def test_read_file_gives_numbered_lines_and_records_them(tree: Path) -> None:
    shown: list[FileView] = []
    text, error = Reader(tree, "pkg/big.py", shown).run(
        "read_file", {"path": "pkg/big.py", "start_line": 840, "end_line": 845}, 100_000)
    assert not error
    assert text.splitlines()[0] == "pkg/big.py, lines 840-845 of 1000:"
    assert "  840| line_840 = 840" in text and "  845| line_845 = 845" in text
    assert "line_846" not in text
    assert shown == [FileView(path="pkg/big.py", call_for="pkg/big.py", via="read_file",
                              lines=1000, ranges=[(840, 845)])]


def test_a_read_is_capped_in_lines_and_in_the_room_left(tree: Path) -> None:
    reader = Reader(tree, "", [])
    text, _ = reader.run("read_file", {"path": "pkg/big.py", "start_line": 1, "end_line": 1000},
                         100_000)
    assert f"lines 1-{MAX_READ_LINES} of 1000" in text
    small, _ = reader.run("read_file", {"path": "pkg/big.py", "start_line": 1, "end_line": 100},
                          1_200)
    assert len(small) <= 1_200 and "cut to fit" in small
    none, error = reader.run("read_file", {"path": "pkg/big.py", "start_line": 1, "end_line": 9},
                             100)
    assert error and "submit" in none


@pytest.mark.parametrize("path", ["../secret.txt", "/etc/passwd", "pkg/link.py", ".git/config",
                                  "pkg/../../secret.txt"])
def test_paths_outside_the_worktree_are_refused_unread(tree: Path, path: str) -> None:
    shown: list[FileView] = []
    reader = Reader(tree, "", shown)
    for name, args in (("read_file", {"path": path, "start_line": 1, "end_line": 5}),
                       ("find", {"path": path, "text": "key"})):
        text, error = reader.run(name, args, 100_000)
        assert error and "refused" in text and "sk-secret" not in text
    assert shown == []


def test_bad_input_is_an_error_result_not_an_exception(tree: Path) -> None:
    reader = Reader(tree, "", [])
    text, error = reader.run("read_file", {"path": "pkg/big.py", "start_line": "x"}, 100_000)
    assert error and "start_line" in text and "end_line" in text
    text, error = reader.run("read_file", {"path": "pkg/big.py", "start_line": 9,
                                           "end_line": 3}, 100_000)
    assert error and "before" in text
    text, error = reader.run("read_file", {"path": "pkg/none.py", "start_line": 1,
                                           "end_line": 3}, 100_000)
    assert error and "no such file" in text


def test_find_in_a_file_a_directory_and_the_whole_tree(tree: Path) -> None:
    shown: list[FileView] = []
    reader = Reader(tree, "pkg/small.py", shown)
    text, error = reader.run("find", {"path": "pkg/small.py", "text": "line_7"}, 100_000)
    assert not error and "pkg/small.py:2:     return line_7" in text
    text, _ = reader.run("find", {"path": "pkg", "text": "line_7 ="}, 100_000)
    assert "pkg/big.py:7: line_7 = 7" in text and "small.py" not in text
    text, _ = reader.run("find", {"path": ".", "text": "pathspec magic"}, 100_000)
    assert ":(top)x.py:1: line_7" in text  # untracked files too
    text, _ = reader.run("find", {"path": ":(top)x.py", "text": "line_7"}, 100_000)
    assert text.count("\n") == 1 and ":(top)x.py:1:" in text  # a name, never pathspec magic
    text, _ = reader.run("find", {"path": ".", "text": "line_"}, 100_000)
    assert "the first 40 of 100" in text.splitlines()[0]
    assert any(v.via == "find" and v.path == "pkg/small.py" and v.ranges == [(2, 2)]
               for v in shown)
    text, error = reader.run("find", {"path": "pkg", "text": "nowhere"}, 100_000)
    assert not error and text.startswith("No line of pkg contains")


def test_hostile_inputs_are_error_results_never_a_crash(tree: Path) -> None:
    reader = Reader(tree, "", [])
    text, error = reader.run("find", {"path": ".", "text": "a\0b"}, 100_000)
    assert error and "NUL" in text
    text, error = reader.run("read_file", {"path": "pkg/big.py\0", "start_line": 1,
                                           "end_line": 2}, 100_000)
    assert error
    text, error = reader.run("read_file", {"path": "pkg/big.py", "start_line": -5,
                                           "end_line": -1}, 100_000)
    assert error and "outside pkg/big.py, which has 1000 lines" in text
    text, error = reader.run("read_file", {"path": "pkg/big.py", "start_line": 2000,
                                           "end_line": 2001}, 100_000)
    assert error and "outside" in text


def test_a_minified_line_is_cut_to_the_cap(tree: Path) -> None:
    (tree / "app.min.js").write_text("var a=1;" * 125_000 + "\n")  # one 1 MB line
    text, error = Reader(tree, "", []).run(
        "read_file", {"path": "app.min.js", "start_line": 1, "end_line": 1}, 100_000)
    assert not error and len(text) < 3_000 and "line cut: 1,000,000 characters" in text


def test_lines_are_numbered_as_tracebacks_and_git_number_them(tree: Path) -> None:
    (tree / "ff.py").write_text("a = 1\n\x0c\nb = 2\nc = 3\n")  # a form feed is no line break
    text, _ = Reader(tree, "", []).run(
        "read_file", {"path": "ff.py", "start_line": 3, "end_line": 3}, 100_000)
    assert "    3| b = 2" in text
