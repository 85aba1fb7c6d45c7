from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent_cli.workspace import Edit, EditRejected, apply_edits, confine

SOURCE = """\
import os


class Greeter:
    def greet(self, name):
        if not name:
            return "hello, stranger"
        return "hello, " + name

    def leave(self, name):
        return "bye, " + name
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "greet.py").write_text(SOURCE)
    return root


def replace(path: str, old: str, new: str) -> Edit:
    return Edit(path=path, action="replace", old=old, new=new)


def test_exact_replace(root: Path) -> None:
    [out] = apply_edits(root, [replace("pkg/greet.py", 'return "bye, " + name', 'return "bye!"')])
    assert (out.applied, out.how, out.error) == (True, "exact", None)
    assert 'return "bye!"' in (root / "pkg" / "greet.py").read_text()


def test_trailing_whitespace_tolerated(root: Path) -> None:
    old = '    def leave(self, name):   \n        return "bye, " + name  \n'
    [out] = apply_edits(
        root, [replace("pkg/greet.py", old, '    def leave(self):\n        return "bye"\n')]
    )
    assert (out.applied, out.how) == (True, "trailing-whitespace")
    assert (
        (root / "pkg" / "greet.py")
        .read_text()
        .endswith('    def leave(self):\n        return "bye"\n')
    )


def test_indentation_shift_reindents_new(root: Path) -> None:
    # The model quoted the method without its class indentation.
    old = 'def greet(self, name):\n    if not name:\n        return "hello, stranger"\n'
    new = 'def greet(self, name):\n    if not name:\n        raise ValueError("name")\n'
    [out] = apply_edits(root, [replace("pkg/greet.py", old, new)])
    assert (out.applied, out.how) == (True, "indentation-shift")
    text = (root / "pkg" / "greet.py").read_text()
    assert (
        '    def greet(self, name):\n        if not name:\n            raise ValueError("name")\n'
        in text
    )

    # And the other way: quoted with more indentation than the file has.
    old = "        import os\n"
    [out] = apply_edits(root, [replace("pkg/greet.py", old, "        import sys\n")])
    assert (out.applied, out.how) == (True, "indentation-shift")
    assert (root / "pkg" / "greet.py").read_text().startswith("import sys\n")


def test_old_text_copied_with_the_line_numbers_of_a_numbered_view(root: Path) -> None:
    text = (root / "pkg" / "greet.py").read_text().splitlines()
    n = text.index("    def leave(self, name):") + 1
    old = f"{n:5d}|     def leave(self, name):\n{n + 1:5d}|         return \"bye, \" + name\n"
    new = f"{n:5d}|     def leave(self, name):\n        return \"bye!\"\n"
    [out] = apply_edits(root, [replace("pkg/greet.py", old, new)])
    assert (out.applied, out.how) == (True, "line-numbers")
    assert (root / "pkg" / "greet.py").read_text().endswith(
        '    def leave(self, name):\n        return "bye!"\n')
    # numbers that do not count up by one are not a numbered view: not stripped
    skipped = f"{n:5d}|     def leave(self, name):\n{n + 5:5d}|         return \"bye!\"\n"
    [out] = apply_edits(root, [replace("pkg/greet.py", skipped, "x")])
    assert not out.applied and out.how == "not-found"


def test_ambiguous_occurrence_asks_for_context(root: Path) -> None:
    before = (root / "pkg" / "greet.py").read_bytes()
    [out] = apply_edits(root, [replace("pkg/greet.py", "(self, name):", "(self):")])
    assert not out.applied and out.how == "ambiguous"
    assert (
        "pkg/greet.py" in str(out.error)
        and "2 times" in str(out.error)
        and "lines 5, 10" in str(out.error)
    )
    assert "more surrounding lines" in str(out.error)
    assert (root / "pkg" / "greet.py").read_bytes() == before


def test_not_found_shows_nearest_text_with_line_numbers(root: Path) -> None:
    old = '    def leave(self, person):\n        return "goodbye, " + person\n'
    [out] = apply_edits(root, [replace("pkg/greet.py", old, "pass\n")])
    assert not out.applied and out.how == "not-found"
    assert "pkg/greet.py" in str(out.error)
    assert out.nearest == '10 |     def leave(self, name):\n11 |         return "bye, " + name'
    assert out.nearest in str(out.error) and "lines 10-11" in str(out.error)
    assert (root / "pkg" / "greet.py").read_text() == SOURCE


def test_nearest_text_in_a_large_file_is_found_quickly(root: Path) -> None:
    lines = [f"    value_{i} = compute(x, {i})  # note {i % 7}" for i in range(20_000)]
    (root / "big.py").write_text("\n".join(lines) + "\n")
    old = "\n".join(line.replace("compute", "calculate") for line in lines[12_000:12_030])
    start = time.monotonic()
    [out] = apply_edits(root, [replace("big.py", old, "x = 1\n")])
    assert time.monotonic() - start < 3
    assert out.how == "not-found" and "lines 12001-12030" in str(out.error)


def test_crlf_file_edited_with_lf_text(root: Path) -> None:
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    [out] = apply_edits(root, [replace("win.txt", "two\nthree\n", "2\n3\n")])
    assert (out.applied, out.how) == (True, "line-endings")
    assert (root / "win.txt").read_bytes() == b"one\r\n2\r\n3\r\n"


def test_create_and_delete(root: Path) -> None:
    outcomes = apply_edits(
        root,
        [
            Edit(path="pkg/sub/new.py", action="create", content="X = 1\n"),
            Edit(path="pkg/sub/new.py", action="create", content="X = 1\n"),
            Edit(path="pkg/sub/new.py", action="create", content="X = 2\n"),
            Edit(path="pkg/greet.py", action="delete"),
            Edit(path="pkg/greet.py", action="delete"),
        ],
    )
    assert [(o.applied, o.how) for o in outcomes] == [
        (True, "created"),
        (True, "unchanged"),
        (False, "exists"),
        (True, "deleted"),
        (False, "missing"),
    ]
    assert (root / "pkg" / "sub" / "new.py").read_text() == "X = 1\n"
    assert not (root / "pkg" / "greet.py").exists()


def test_failed_edit_does_not_stop_the_others(root: Path) -> None:
    outcomes = apply_edits(
        root,
        [
            replace("pkg/greet.py", "no such text", "x"),
            replace("pkg/greet.py", "import os", "import os.path"),
            replace("pkg/missing.py", "a", "b"),
        ],
    )
    assert [o.applied for o in outcomes] == [False, True, False]
    assert "pkg/missing.py: no such file" in str(outcomes[2].error)
    assert (root / "pkg" / "greet.py").read_text().startswith("import os.path\n")


def test_invalid_combinations_are_reported_not_raised(root: Path) -> None:
    outcomes = apply_edits(
        root,
        [
            Edit(path="pkg/greet.py", action="replace", new="x"),
            Edit(path="pkg/a.py", action="create"),
        ],
    )
    assert [o.how for o in outcomes] == ["invalid", "invalid"]
    with pytest.raises(ValidationError):
        Edit(path="a", action="replace", old="a", new="b", extra="nope")  # type: ignore[call-arg]


def test_non_utf8_bytes_elsewhere_in_file_survive(root: Path) -> None:
    (root / "legacy.txt").write_bytes("name = 'café'\nvalue = 1\n".encode("latin-1"))
    [out] = apply_edits(root, [replace("legacy.txt", "value = 1", "value = 2")])
    assert out.applied
    assert (root / "legacy.txt").read_bytes() == "name = 'café'\nvalue = 2\n".encode("latin-1")


# -- confinement -------------------------------------------------------------------


@pytest.fixture
def fenced(tmp_path: Path, root: Path) -> tuple[Path, Path]:
    """A worktree with a `.git` file and a sibling directory it must not reach."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    (root / ".git").write_text("gitdir: /somewhere\n")
    (root / "escape.txt").symlink_to(outside / "secret.txt")
    (root / "linkdir").symlink_to(outside)
    return root, outside


@pytest.mark.parametrize(
    ("path", "action", "reason"),
    [
        ("../outside.txt", "create", "is outside the worktree"),
        ("pkg/../../outside/secret.txt", "replace", "is outside the worktree"),
        ("/etc/passwd", "replace", "absolute path"),
        (".git/config", "create", ".git/"),
        (".GIT/config", "create", ".git/"),
        ("pkg/.Git/hooks/pre-commit", "create", ".git/"),
        ("escape.txt", "replace", "symbolic link"),
        ("escape.txt", "delete", "symbolic link"),
        ("linkdir/secret.txt", "replace", "symbolic link"),
        ("linkdir/new.txt", "create", "symbolic link"),
    ],
)
def test_paths_escaping_the_worktree_are_refused(
    fenced: tuple[Path, Path], path: str, action: str, reason: str
) -> None:
    root, outside = fenced
    snapshot = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    edit = Edit(path=path, action=action, old="secret", new="pwned", content="pwned\n")  # type: ignore[arg-type]
    [out] = apply_edits(root, [edit])
    assert not out.applied and out.how == "refused"
    assert str(out.error).startswith(f"refused: {path}") and reason in str(out.error)
    assert {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()} == snapshot
    assert (root / ".git").read_text() == "gitdir: /somewhere\n"
    assert not (root.parent / "outside.txt").exists()


def test_symlink_inside_the_worktree_is_allowed(root: Path) -> None:
    (root / "alias.py").symlink_to(root / "pkg" / "greet.py")
    assert confine(root, "alias.py") == root.resolve() / "alias.py"
    [out] = apply_edits(root, [replace("alias.py", "import os", "import re")])
    assert out.applied
    assert (root / "pkg" / "greet.py").read_text().startswith("import re\n")


def test_confine_raises_for_direct_callers(root: Path) -> None:
    with pytest.raises(EditRejected, match=r"refused: \.\./x is outside the worktree"):
        confine(root, "../x")


def test_plan_paths_are_confined_in_the_base_commit_tree(tmp_path: Path) -> None:
    from agent_cli.workspace import confine_in_commit
    from tests.workspace.conftest import make_repo, sh

    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    repo = make_repo(tmp_path / "repo")
    (repo / "pkg").mkdir()
    (repo / "pkg" / "mod.py").write_text("x = 1\n")
    links = {"pkg/settings.py": str(outside), "pkg/up.py": "../../secret.txt",
             "alias": "pkg", "gitlink": ".git", "loop": "loop", "top": "."}
    for name, target in links.items():
        (repo / name).symlink_to(target)
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "-m", "links")
    head = sh(repo, "git", "rev-parse", "HEAD")
    (repo / "pkg" / "settings.py").unlink()  # the check reads the commit, not the disk

    assert confine_in_commit(repo, head, "pkg/mod.py") == "pkg/mod.py"
    assert confine_in_commit(repo, head, "alias/mod.py") == "pkg/mod.py"
    assert confine_in_commit(repo, head, "pkg/new_file.py") == "pkg/new_file.py"
    refused = {
        "/etc/passwd": "absolute path", "../secret.txt": "outside the worktree",
        ".git/config": "inside .git/", "pkg/settings.py": "through a symbolic link",
        "pkg/up.py": "through a symbolic link", "gitlink/config": "leads into .git/",
        "loop/x": "too many symbolic links", "top": "the worktree itself",
    }
    for path, why in refused.items():
        with pytest.raises(EditRejected) as err:
            confine_in_commit(repo, head, path)
        assert why in err.value.message, (path, err.value.message)
