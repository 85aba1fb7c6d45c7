"""Test selection: which test files a change needs, each with its reasons."""

from __future__ import annotations

from pathlib import Path

from agent_cli.search.related import is_test_file, related_tests
from tests.search.conftest import git, write


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")


def by_path(repo: Path, changed: list[str], targets: list[str] = ()) -> dict[str, list[str]]:
    return {r.path: r.reasons for r in related_tests(repo, head(repo), changed, targets)}


def test_named_for_imports_and_the_change_itself(repo: Path) -> None:
    write(repo, "tests/test_client.py", "from pkg.client import Client\n\ndef test_c():\n    pass\n")
    write(repo, "tests/unit/test_client.py", "def test_far():\n    pass\n")
    write(repo, "pkg/util/tests/test_strings.py", "def test_s():\n    pass\n")
    write(repo, "tests/test_storage_uses_parser.py", "import pkg.parser\n\ndef test_p():\n    pass\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tests")

    found = by_path(repo, ["pkg/parser.py", "tests/test_new_feature.py"],
                    ["tests/test_parser.py::test_split_fields"])
    assert found["tests/test_new_feature.py"] == ["changed by this run"]
    assert found["tests/test_parser.py"][:2] == [
        "holds the target test tests/test_parser.py::test_split_fields",
        "named for pkg/parser.py"]
    assert "imports pkg/parser.py" in found["tests/test_parser.py"]
    assert found["tests/test_storage_uses_parser.py"] == ["imports pkg/parser.py"]
    assert "pkg/util/tests/test_strings.py" not in found

    nearest = by_path(repo, ["pkg/util/strings.py"])
    assert nearest == {"pkg/util/tests/test_strings.py": ["named for pkg/util/strings.py"]}
    # Two test_client.py: the nearer to pkg/client.py (tests/ over tests/unit/) wins.
    client = by_path(repo, ["pkg/client.py"])
    assert client["tests/test_client.py"][0] == "named for pkg/client.py"
    assert "tests/unit/test_client.py" not in client


def test_test_files_that_changed_together_with_a_file(repo: Path) -> None:
    write(repo, "tests/test_integration.py", "def test_i():\n    pass\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "integration tests")
    for n in range(2):
        write(repo, "pkg/storage.py", f"# change {n}\nclass Store:\n    pass\n")
        write(repo, "tests/test_integration.py", f"def test_i():\n    assert {n} == {n}\n")
        git(repo, "commit", "-qam", f"storage change {n}")
    found = by_path(repo, ["pkg/storage.py"])
    assert found["tests/test_integration.py"] == ["changed together with pkg/storage.py in 2 commits"]


def test_what_counts_as_a_test_file() -> None:
    for path in ("tests/test_x.py", "pkg/x_test.py", "cmd/x_test.go", "src/x.test.ts",
                 "web/x.spec.jsx", "tests/it.rs"):
        assert is_test_file(path), path
    for path in ("tests/conftest.py", "tests/__init__.py", "src/x.ts", "src/lib.rs", "testing.py"):
        assert not is_test_file(path), path


def test_a_wide_change_keeps_what_is_certain_and_a_few_inferred_files(repo: Path) -> None:
    modules = [f"pkg/mod{i}.py" for i in range(12)]
    for i, path in enumerate(modules):
        write(repo, path, f"X{i} = {i}\n")
        write(repo, f"tests/test_mod{i}.py", f"def test_{i}():\n    pass\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "many modules")
    found = related_tests(repo, head(repo), [*modules, "tests/test_mod11.py"],
                          ["tests/test_mod10.py::test_10"], inferred=3)
    assert [r.path for r in found] == ["tests/test_mod11.py", "tests/test_mod10.py",
                                       "tests/test_mod0.py", "tests/test_mod1.py",
                                       "tests/test_mod2.py"]
