"""Ranking and caching of agent_cli.search on a real, tiny git repository."""

from __future__ import annotations

import json
import pickle
import sqlite3
import zlib
from pathlib import Path

import pytest

from agent_cli.cache import CacheCorrupt, open_cache
from agent_cli.errors import UsageError
from agent_cli.search import LocateResult, locate_issue, locate_text
from agent_cli.search.index import commit_key
from agent_cli.search.issue import parse_issue
from agent_cli.search.tokens import ident_tokens
from tests.search.conftest import git, write


def paths(result: LocateResult) -> list[str]:
    return [f.path for f in result.files]


def build_stats(repo: Path) -> dict:
    cache = open_cache(repo / ".agent", "index")
    try:
        return cache.get("stats")
    finally:
        cache.close()


def test_traceback_frame_ranks_its_file_first(repo: Path) -> None:
    issue = """Store.flush crashes on an empty batch

Traceback (most recent call last):
  File "/home/me/app.py", line 3, in <module>
    client.send(req)
  File "/usr/lib/python3.11/site-packages/pkg/client.py", line 11, in send
    return storage.Store().flush(headers)
  File "/usr/lib/python3.11/site-packages/pkg/storage.py", line 8, in flush
    return total / len(rows)
ZeroDivisionError: division by zero
"""
    result = locate_text(issue, repo=repo)
    assert paths(result)[0] == "pkg/storage.py"
    top = result.files[0]
    assert any("traceback frame line 8" in r for r in top.reasons)
    assert top.symbols[0].name == "Store.flush"
    assert (top.symbols[0].line, top.symbols[0].end_line) == (5, 8)
    # the outer frame's file is still near the top
    assert "pkg/client.py" in paths(result)[:3]


def test_identifier_naming_a_method(repo: Path) -> None:
    result = locate_text(
        "HeaderParser.split_fields keeps whitespace-only fields\n\n"
        "`split_fields('a; ;b')` returns `['a', '', 'b']`; blank fields should be dropped.",
        repo=repo,
    )
    assert paths(result)[0] == "pkg/parser.py"
    assert any("HeaderParser.split_fields" in r for r in result.files[0].reasons)
    best = result.symbols[0]
    assert (best.path, best.name, best.kind) == (
        "pkg/parser.py",
        "HeaderParser.split_fields",
        "method",
    )
    assert (best.line, best.end_line) == (14, 16)


def test_dotted_module_path(repo: Path) -> None:
    result = locate_text(
        "Whitespace helper mangles tabs\n\nSomething in pkg.util.strings turns tabs into spaces.",
        repo=repo,
    )
    assert paths(result)[0] == "pkg/util/strings.py"
    assert any("module `pkg.util.strings`" in r for r in result.files[0].reasons)


def test_test_file_ranks_first_only_when_the_issue_is_about_tests(repo: Path) -> None:
    about_code = locate_text(
        "parse_header drops the value after a second colon\n\n"
        "`parse_header('a: b: c')` should keep `b: c`.",
        repo=repo,
    )
    assert paths(about_code)[0] == "pkg/parser.py"
    assert "tests/test_parser.py" in paths(about_code)
    assert any("test file (down-weighted)" in r for f in about_code.files for r in f.reasons)

    about_tests = locate_text(
        "test_parse_header_empty is flaky\n\nThe test for parse_header fails on CI; fix the test.",
        repo=repo,
    )
    assert paths(about_tests)[0] == "tests/test_parser.py"


def test_imports_and_importers_are_reported(repo: Path) -> None:
    result = locate_text("parse_header mishandles tabs", repo=repo)
    parser = next(f for f in result.files if f.path == "pkg/parser.py")
    assert "pkg/client.py" in parser.imported_by
    client = locate_text("Client.retry_budget is off by one", repo=repo).files[0]
    assert client.path == "pkg/client.py"
    assert set(client.imports) >= {"pkg/parser.py", "pkg/storage.py"}


def test_top_limits_files_and_json_shape(repo: Path) -> None:
    result = locate_text("parse headers and send requests", repo=repo, top=2)
    assert len(result.files) == 2
    data = result.model_dump(mode="json")
    json.dumps(data)
    assert set(data) == {"files", "symbols", "seconds", "commit"}
    assert {"path", "score", "reasons", "symbols", "imports", "imported_by"} <= set(
        data["files"][0]
    )
    assert result.commit == git(repo, "rev-parse", "HEAD")


def test_extra_terms_steer_the_ranking(repo: Path) -> None:
    vague = "Something is wrong with the output"
    assert paths(locate_text(vague, repo=repo, extra_terms=["collapse_blank_lines"]))[0] == (
        "pkg/util/strings.py"
    )


def test_second_call_reuses_the_index_and_a_new_commit_rebuilds_changed_files(repo: Path) -> None:
    locate_text("parse_header", repo=repo)
    first = build_stats(repo)
    assert first["commits_built"] == 1
    parsed_first = first["files_parsed"]
    assert parsed_first >= 7

    locate_text("Client.send", repo=repo)
    assert build_stats(repo) == first  # same commit: nothing built, nothing parsed

    write(repo, "pkg/storage.py", "class Store:\n    def compact_rows(self):\n        return []\n")
    git(repo, "commit", "-q", "-am", "compact")
    result = locate_text("Store.compact_rows returns nothing", repo=repo)
    second = build_stats(repo)
    assert second["commits_built"] == 2
    assert second["files_parsed"] == parsed_first + 1  # only the changed blob
    assert paths(result)[0] == "pkg/storage.py"
    assert result.symbols[0].name == "Store.compact_rows"

    # The old commit is still served from its own entry.
    old = git(repo, "rev-parse", "HEAD~1")
    assert locate_text("Store.flush", repo=repo, commit=old).commit == old
    assert build_stats(repo) == second


def test_uncommitted_edits_do_not_leak_into_the_commit_index(repo: Path) -> None:
    write(repo, "pkg/storage.py", "def brand_new_helper():\n    pass\n")
    result = locate_text("brand_new_helper", repo=repo)
    assert all(s.name != "brand_new_helper" for s in result.symbols)


def test_agent_dir_is_git_excluded(repo: Path) -> None:
    locate_text("parse_header", repo=repo)
    assert (repo / ".agent" / "cache" / "index").is_dir()
    assert git(repo, "status", "--porcelain") == ""


def test_planted_pickle_is_refused_not_executed(repo: Path, tmp_path: Path) -> None:
    locate_text("parse_header", repo=repo)
    sentinel = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    key = zlib.compress(json.dumps(commit_key(git(repo, "rev-parse", "HEAD"))).encode(), 1)
    db = sqlite3.connect(repo / ".agent" / "cache" / "index" / "cache.db")
    with db:
        # mode 4 is diskcache's MODE_PICKLE: what a stock diskcache would unpickle.
        changed = db.execute(
            "UPDATE Cache SET mode = 4, value = ? WHERE key = ?", (pickle.dumps(Exploit()), key)
        ).rowcount
    db.close()
    assert changed == 1

    with pytest.raises(CacheCorrupt) as info:
        locate_text("parse_header", repo=repo)
    assert "refusing" in info.value.message
    assert info.value.hint and "rm -rf" in info.value.hint
    assert info.value.exit_code == 2
    assert not sentinel.exists()


def test_a_damaged_cache_entry_is_rebuilt(repo: Path) -> None:
    first = locate_text("parse_header", repo=repo)
    built = build_stats(repo)["commits_built"]
    key = zlib.compress(json.dumps(commit_key(git(repo, "rev-parse", "HEAD"))).encode(), 1)
    db = sqlite3.connect(repo / ".agent" / "cache" / "index" / "cache.db")
    with db:
        changed = db.execute(
            "UPDATE Cache SET value = ? WHERE key = ?", (b"\x00not zlib", key)
        ).rowcount
    db.close()
    assert changed == 1

    again = locate_text("parse_header", repo=repo)
    assert again.files == first.files
    assert build_stats(repo)["commits_built"] == built + 1  # dropped, rebuilt, stored
    locate_text("parse_header", repo=repo)
    assert build_stats(repo)["commits_built"] == built + 1


@pytest.mark.parametrize(
    ("damage", "remove"),
    [
        ("garbage", ".agent/cache/index"),
        ("directory", ".agent/cache/index"),
        ("cache is a file", ".agent/cache"),
    ],
)
def test_a_cache_that_cannot_be_opened_is_one_message(repo: Path, damage: str, remove: str) -> None:
    locate_text("parse_header", repo=repo)
    index_dir = repo / ".agent" / "cache" / "index"
    if damage == "garbage":
        (index_dir / "cache.db").write_bytes(b"not a database " * 2000)
    elif damage == "directory":
        for p in index_dir.iterdir():
            if p.is_file():
                p.unlink()
        (index_dir / "cache.db").mkdir()
    else:
        import shutil

        shutil.rmtree(repo / ".agent" / "cache")
        (repo / ".agent" / "cache").write_text("")
    with pytest.raises(CacheCorrupt) as info:
        locate_text("parse_header", repo=repo)
    assert info.value.exit_code == 2
    assert "cannot open the cache" in info.value.message
    assert info.value.hint and info.value.hint.endswith(f"rm -rf {repo / remove}")


@pytest.mark.parametrize("top", [0, -3])
def test_bad_top_is_a_usage_error(repo: Path, top: int) -> None:
    with pytest.raises(UsageError, match="--top"):
        locate_text("x", repo=repo, top=top)
    assert not (repo / ".agent").exists()


def test_usage_errors_write_nothing(repo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.md"
    empty.write_text("  \n\n")
    with pytest.raises(UsageError, match="empty"):
        locate_issue(empty, repo=repo)
    with pytest.raises(UsageError, match="not found"):
        locate_issue(tmp_path / "nope.md", repo=repo)
    with pytest.raises(UsageError, match="empty"):
        locate_text(" ", repo=repo)
    with pytest.raises(UsageError, match="unknown commit"):
        locate_text("x", repo=repo, commit="0" * 40)
    assert not (repo / ".agent").exists()


def test_issue_parsing_shapes() -> None:
    m = parse_issue(
        "Bad\n\n/opt/x/site-packages/pkg/storage.py in flush(self, rows)\n"
        "      7 total = len(self.rows)\n----> 8 return total / len(rows)\n\n"
        "src/pkg/client.py:11: in send\n"
    )
    assert [(f.path, f.line, f.func) for f in m.frames] == [
        ("/opt/x/site-packages/pkg/storage.py", 8, "flush"),
        ("src/pkg/client.py", 11, "send"),
    ]
    assert ident_tokens("prepare_content_length") == (
        "prepare_content_length",
        "prepare",
        "content",
        "length",
    )
    assert ident_tokens("HTTPDigestAuth") == ("httpdigestauth", "http", "digest", "auth")


def test_repository_without_commits_is_a_usage_error(tmp_path: Path) -> None:
    bare = tmp_path / "fresh"
    bare.mkdir()
    git(bare, "init", "-q")
    with pytest.raises(UsageError, match="no commits") as info:
        locate_text("anything", repo=bare)
    assert info.value.hint and "git commit" in info.value.hint
    assert not (bare / ".agent").exists()


def test_a_function_the_named_one_calls_comes_next(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        repo,
        "pkg/render.py",
        '''
        from pkg.util.layout import wrap_columns


        def render_title(title, width):
            """The title as display lines."""
            return wrap_columns(title, width)
        ''',
    )
    write(
        repo,
        "pkg/util/layout.py",
        """
        def wrap_columns(text, size):
            return [text[i : i + size] for i in range(0, len(text), size)]
        """,
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Add a renderer")
    issue = (
        "render_title cuts titles in the middle of a word\n\n"
        "`render_title('hello world', 8)` gives `['hello wo', 'rld']`."
    )
    result = locate_text(issue, repo=repo)
    assert paths(result)[:2] == ["pkg/render.py", "pkg/util/layout.py"]
    assert "`wrap_columns` is used by `render_title` (pkg/render.py)" in result.files[1].reasons

    from agent_cli.search import rank

    monkeypatch.setattr(rank, "W_CALLEE", 0.0)
    without = locate_text(issue, repo=repo)
    assert "pkg/util/layout.py" not in paths(without)


def test_an_option_whose_words_spell_a_module_names_it(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        repo,
        "pkg/render/__init__.py",
        "",
    )
    write(
        repo,
        "pkg/settings.py",
        """
        DEFAULTS = {"render_markdown": False, "render_html": False, "page_size": 50}


        def option(options, name):
            return options.get(name, DEFAULTS[name])
        """,
    )
    write(
        repo,
        "pkg/render/markdown.py",
        """
        def to_markdown(rows):
            return "\\n".join("| " + " | ".join(map(str, r)) + " |" for r in rows)
        """,
    )
    write(
        repo,
        "pkg/grid.py",
        """
        def table_rows(table):
            return [table.header] + list(table.rows)
        """,
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Add renderers")
    issue = (
        "`render_markdown = True` drops the header row of tables\n\n"
        "With `render_markdown = True` the table's header row is missing."
    )
    result = locate_text(issue, repo=repo)
    assert paths(result)[0] == "pkg/render/markdown.py"
    assert "`render_markdown` spells module `pkg.render.markdown`" in result.files[0].reasons

    from agent_cli.search import rank

    monkeypatch.setattr(rank, "SPELLED_MODULE", 0.0)
    assert paths(locate_text(issue, repo=repo))[0] != "pkg/render/markdown.py"


def test_bare_words_listed_together_name_sibling_modules(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    printer = (
        "class {}Printer:\n"
        "    def print_add(self, terms):\n"
        '        return " + ".join(self.doprint(t) for t in terms)\n'
    )
    write(repo, "pkg/printing/__init__.py", "")
    write(repo, "pkg/printing/str.py", printer.format("Str"))
    latex = "\n\ndef latex(expr):\n    return LatexPrinter().doprint(expr)\n"
    write(repo, "pkg/printing/latex.py", printer.format("Latex") + latex)
    write(
        repo,
        "pkg/printing/octave.py",
        """
        class OctavePrinter:
            def print_negative(self, term):
                return "-" + self.doprint(term)
        """,
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Add printers")
    issue = (
        "A difference prints with a negative coefficient\n\n"
        "I tried two printers, str and latex: `a - b` prints as `a + (-1)*b`."
    )
    result = locate_text(issue, repo=repo)
    found = {f.path: f.reasons for f in result.files}
    assert set(paths(result)[:2]) == {"pkg/printing/str.py", "pkg/printing/latex.py"}
    assert "`str` listed with its sibling modules of `pkg.printing`" in found["pkg/printing/str.py"]
    # latex.py defines `latex`: the name is the symbol signals' to credit, not the list's.
    assert not any("listed with" in r for r in found["pkg/printing/latex.py"])

    # "str" alone is only a word.
    alone = locate_text(issue.replace("str and latex", "str"), repo=repo)
    assert not any("listed with" in r for f in alone.files for r in f.reasons)

    from agent_cli.search import rank

    monkeypatch.setattr(rank, "LISTED_MODULE", 0.0)
    without = paths(locate_text(issue, repo=repo))
    assert without.index("pkg/printing/str.py") > without.index("pkg/printing/octave.py")


def test_lists_are_read_from_prose_only() -> None:
    m = parse_issue(
        "Title\n\nthe c and cpp domains; `foo`, `bar`, or `baz`; pkg.a and b; f(x) or g\n"
        "```python\nprint(a and b)\n```\n"
    )
    assert m.listed == [(["c", "cpp"], 0.8), (["foo", "bar", "baz"], 0.8)]


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "text",
    [
        "@" * 100_000,  # a path could start after any `@`, `+` or `~`: minutes
        "x = " + "+".join(["1"] * 50_000),
        "```a" * 250_000,  # one line of fence openings: each scanned to the end (90 s)
        " ".join(f"`abc{i}` and x{i}.y" for i in range(20_000)),  # spans x words (30 s)
    ],
    ids=["at-signs", "plus-signs", "fences-on-one-line", "inline-code"],
)
def test_pathological_text_parses_in_linear_time(text: str) -> None:
    parse_issue("Title\n\n" + text)


@pytest.mark.timeout(20)
def test_names_by_the_thousand_rank_in_linear_time(repo: Path) -> None:
    defs = "".join(f"def func{i}(x):\n    return x\n\n" for i in range(6000))
    write(repo, "pkg/big.py", defs)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Add many functions")
    locate_text("warm up the index", repo=repo)
    # Each pasted name partially matched every `func*` symbol (6,000 x 6,000), and a
    # 60,000-part dotted name was joined at every length: about 45 s together.
    script = "\n".join(f"y{i} = my_func{i}(1)" for i in range(6000))
    issue = f"Crash\n\n```python\n{script}\n```\n\n" + ".".join(["abc"] * 60_000)
    assert locate_text(issue, repo=repo).files


def test_repeated_frames_count_once_and_few_are_shown(repo: Path) -> None:
    frame = '  File "/venv/site-packages/pkg/storage.py", line {}, in flush\n'
    issue = (
        "Store.flush recurses forever\n\nTraceback (most recent call last):\n"
        + frame.format(6) * 5000
        + frame.format(7) * 5000
        + frame.format(8)
        + "RecursionError: maximum recursion depth exceeded\n"
    )
    m = parse_issue(issue)
    assert [(f.line, f.index) for f in m.frames] == [(6, 0), (7, 1), (8, 2)]
    top = locate_text(issue, repo=repo).files[0]
    assert top.path == "pkg/storage.py"
    frames = [r for r in top.reasons if r.startswith("traceback frame")]
    assert frames[0] == "traceback frame line 8 in flush (innermost)"
    assert len(frames) == 3


@pytest.mark.timeout(20)
def test_pathological_issues_parse_without_hanging() -> None:
    # Unbounded, the list pattern retried every suffix of this: about a minute.
    assert parse_issue("Title\n\n" + "x, " * 30000).listed == []
    # Frame and prompt patterns began with `^\s*`, which ran across every blank line
    # below each line start: 30,000 of them took 16 s, 60,000 about a minute.
    m = parse_issue("Title\n\nx\n" + "\n" * 60000 + '  File "pkg/a.py", line 3, in f\n')
    assert [(f.path, f.line, f.func) for f in m.frames] == [("pkg/a.py", 3, "f")]


@pytest.mark.parametrize("tag", ["python", "Python", " PYTHON", "py", "pycon", "ipython3", "py3"])
def test_a_python_fence_is_code_whatever_the_case_of_its_tag(tag: str) -> None:
    m = parse_issue(f"Bad chunks\n\n```{tag}\nrechunk_variables(ds)\n```\n")
    assert m.idents["rechunk_variables"] == 1.0


@pytest.mark.parametrize("tag", ["rst", "RST", "shell", "yaml"])
def test_another_language_s_fence_weighs_less(tag: str) -> None:
    m = parse_issue(f"Bad chunks\n\n```{tag}\nrechunk_variables(ds)\n```\n")
    assert m.idents["rechunk_variables"] < 1.0


def test_a_comment_in_pasted_code_is_not_a_heading() -> None:
    from agent_cli.search.issue import clean_issue

    text = clean_issue(
        "Bad chunks\n\n```python\n# Python version\nrechunk_variables(ds)\n```\n\n"
        "### Environment\n\nLinux, numpy 1.26\n"
    )
    assert "rechunk_variables(ds)" in text  # the comment did not start a skipped section
    assert "# Python version" not in text
    assert "numpy 1.26" not in text  # the real heading still did


def test_links_to_sphinx_docs_name_the_module_and_the_api() -> None:
    m = parse_issue(
        "Tabs vanish\n\nSee https://pkg.readthedocs.io/en/latest/_modules/pkg/util/strings.html "
        "and https://pkg.readthedocs.io/en/latest/api/pkg.parser.HeaderParser.html"
    )
    assert m.paths["pkg/util/strings.py"] == 0.7
    assert "pkg.parser.HeaderParser" in m.dotted


def test_a_link_to_a_module_s_source_page_ranks_the_module(repo: Path) -> None:
    issue = (
        "Blank lines survive\n\nThe helper at "
        "https://pkg.readthedocs.io/en/latest/_modules/pkg/util/strings.html keeps them."
    )
    result = locate_text(issue, repo=repo)
    assert paths(result)[0] == "pkg/util/strings.py"
    assert any("path `pkg/util/strings.py`" in r for r in result.files[0].reasons)
