"""What the index extracts from a file and from a tree: symbols, spans, imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_cli.search import locate_text, treesit
from agent_cli.search.index import file_kind
from agent_cli.search.symbols import analyze
from tests.search.conftest import git, symbols, write


def test_python_symbols_with_spans_nesting_and_conditionals() -> None:
    rows = symbols(
        "m.py",
        """
        import os


        class Outer:
            @property
            def size(self):
                return 1

            class Inner:
                def deep(self):
                    def helper():
                        return 2
                    return helper()


        if os.name == "nt":
            def platform_thing():
                pass
        else:
            def platform_thing():
                pass
        """,
    )
    assert rows == [
        ["Outer", "class", 4, 13],
        ["Outer.size", "method", 6, 7],
        ["Outer.Inner", "class", 9, 13],
        ["Outer.Inner.deep", "method", 10, 13],
        ["platform_thing", "function", 17, 18],
        ["platform_thing", "function", 20, 21],
    ]


def test_regex_fallback_for_other_languages_and_python_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(treesit, "installed", dict)  # no grammar here
    js = symbols(
        "app.js",
        """
        export function render(node) {
          return node;
        }

        class Widget {
          draw(ctx) {
            ctx.fill();
          }
        }
        """,
    )
    assert [r[:2] for r in js] == [
        ["render", "function"],
        ["Widget", "class"],
        ["Widget.draw", "method"],
    ]
    py2 = symbols("old.py", 'def greet(name):\n    print "hi", name\n')
    assert py2 == [["greet", "function", 1, 2]]


def test_file_kinds() -> None:
    assert file_kind("pkg/core.py") == "code"
    assert file_kind("pkg/tests/test_core.py") == "test"
    assert file_kind("testing/conftest.py") == "test"
    assert file_kind("docs/conf.py") == "aux"
    assert file_kind("README.md") == "doc"
    assert file_kind("setup.cfg") == "config"
    assert file_kind("vendor/lib/x.py") is None
    assert file_kind("cextern/cfitsio/lib/putkey.c") is None  # astropy's bundled C libraries
    assert file_kind("sympy/external/importtools.py") == "code"
    assert file_kind("static/jquery-3.5.1.js") is None
    assert file_kind("data/table.csv") is None


def test_relative_and_src_layout_imports_resolve_to_files(tmp_path: Path) -> None:
    root = tmp_path / "srcrepo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, "src/lib/__init__.py", "from .engine import run\n")
    write(
        root,
        "src/lib/engine.py",
        "from . import util\nfrom .codec.wire import encode_frame\n\ndef run():\n    return util.clamp(encode_frame(1))\n",
    )
    write(root, "src/lib/util.py", "def clamp(x):\n    return x\n")
    write(root, "src/lib/codec/__init__.py", "")
    write(root, "src/lib/codec/wire.py", "import lib.util\n\ndef encode_frame(x):\n    return x\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")

    result = locate_text("encode_frame breaks in lib.engine.run", repo=root, top=5)
    by_path = {f.path: f for f in result.files}
    engine = by_path["src/lib/engine.py"]
    assert set(engine.imports) == {
        "src/lib/util.py",
        "src/lib/codec/wire.py",
        "src/lib/__init__.py",
    }
    assert "src/lib/__init__.py" in engine.imported_by
    assert by_path["src/lib/codec/wire.py"].imports == ["src/lib/util.py"]
    # A frame through site-packages finds the file under src/.
    tb = 'Traceback:\n  File "/venv/site-packages/lib/util.py", line 2, in clamp\n'
    assert locate_text("crash\n" + tb, repo=root).files[0].path == "src/lib/util.py"


def test_a_second_name_of_a_class_or_function_is_a_definition(repo: Path) -> None:
    rows = symbols(
        "rel.py",
        """
        class Equality:
            def _print_Symbol(self, expr):
                return str(expr)

            _print_MatrixSymbol = _print_Symbol
            label = "eq"


        Eq = Equality
        limit = 10
        alias_of_unknown = something_imported


        def check():
            pass


        check = Eq  # a rebinding, not a second name
        """,
    )
    assert rows == [
        ["Equality", "class", 1, 6],
        ["Equality._print_Symbol", "method", 2, 3],
        ["Equality._print_MatrixSymbol", "method", 5, 5],
        ["Eq", "class", 9, 9],
        ["check", "function", 14, 15],
    ]

    write(
        repo,
        "pkg/printer.py",
        "class StrPrinter:\n    def _print_Symbol(self, e):\n        return e\n\n    _print_MatrixSymbol = _print_Symbol\n",
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "printer")
    result = locate_text("`_print_MatrixSymbol` drops the shape", repo=repo)
    assert result.files[0].path == "pkg/printer.py"
    assert result.symbols[0].name == "StrPrinter._print_MatrixSymbol"
    assert "named in the issue: `StrPrinter._print_MatrixSymbol`" in result.symbols[0].reasons


def test_a_form_feed_does_not_shift_the_lines_after_it() -> None:
    # `ast` counts LF, CRLF and CR only; `str.splitlines` also breaks at form feeds.
    text = "def first():\n    return 1\n\x0c\ndef second():\n    return special_value\n"
    core, detail = analyze("m.py", text)
    assert core["symbols"] == [["first", "function", 1, 2], ["second", "function", 4, 5]]
    assert detail["post"]["special"] == "1,1"  # the body's words belong to `second`


def test_a_cold_build_reports_files_parsed_and_a_warm_one_nothing(repo: Path) -> None:
    """What the progress bar of explore_codebase shows (issue 15): (parsed, to parse)
    from (0, n) to (n, n) while a cold index is built; nothing when it is cached."""
    from agent_cli.search import index

    seen: list[tuple[int, int]] = []
    with index.reporting(lambda done, total: seen.append((done, total))):
        locate_text("parse headers", repo=repo, top=3)
        cold = list(seen)
        locate_text("parse headers", repo=repo, top=3)
    total = cold[0][1]
    assert total >= 5 and cold[0] == (0, total) and cold[-1] == (total, total), cold
    assert [d for d, _ in cold] == sorted(d for d, _ in cold)
    assert seen == cold, "a warm index parses nothing and reports nothing"
