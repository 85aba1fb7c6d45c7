"""Inputs that were quadratic (or worse) in `symbols` and `treesit`: each runs well
under a second now, and the timeout is far below what the old code took."""

from __future__ import annotations

import pytest

from agent_cli.search.symbols import _owners, _regex_symbols, analyze


@pytest.mark.timeout(15)
def test_regex_fallback_finds_span_ends_in_one_pass() -> None:
    # Each definition's end was found by scanning (a copy of) all the later ones:
    # 80,000 took 17 s, these 120,000 about 40 s.
    n = 120_000
    lines = [f"def f{i // 2}():" if i % 2 == 0 else "    pass" for i in range(2 * n)]
    rows, starts = _regex_symbols(lines, "python")
    assert len(rows) == n
    assert rows[0] == ["f0", "function", 1, 2]
    assert rows[-1] == [f"f{n - 1}", "function", 2 * n - 1, 2 * n]
    assert starts == [row[2] for row in rows]


@pytest.mark.timeout(15)
def test_regex_fallback_trims_a_shared_blank_tail_once() -> None:
    # 1,000 nested classes all end before `class B`: each walked back over the same
    # million blank lines (1e9 steps).
    text = "".join(" " * k + "class A:\n" for k in range(1000)) + "\n" * 1_000_000 + "class B:\n"
    rows = analyze("tests/test_deep.py", text, exact=False)[0]["symbols"]
    assert len(rows) == 1001
    assert rows[0] == ["A", "class", 1, 1000]
    assert rows[999] == [".".join(["A"] * 1000), "class", 1000, 1000]
    assert rows[-1] == ["B", "class", 1_001_001, 1_001_001]


@pytest.mark.timeout(15)
def test_from_import_reads_a_run_of_dots_once() -> None:
    # `(\.*)([\w.]*)` split the dots every way: 40,000 took 20 s, these 60,000 about 45 s.
    text = "from " + "." * 60_000 + "\nfrom ..a.b import c\n"
    assert analyze("tests/test_dots.py", text, exact=False)[0]["imports"] == [["a.b", 2, ["c"]]]


@pytest.mark.timeout(15)
def test_from_import_parens_left_open_are_read_once() -> None:
    # Each open `(` scanned the rest of the text for its `)`: 20,000 took 2.6 s, these
    # 100,000 about a minute.
    text = "from b import (c,\n d)\n" + "from a import (\n" * 100_000
    imports = analyze("tests/test_parens.py", text, exact=False)[0]["imports"]
    assert imports == [["a", 0, []], ["b", 0, ["c", "d"]]]


def test_regex_imports_of_real_statements() -> None:
    text = (
        "from . import x\n"
        "from ..a.b import c\n"
        "from a.b import c as d, e\n"
        "from .. import (f,\n"
        "    g as h)\n"
        "from m import *\n"
        "import p.q as r, s\n"
    )
    assert analyze("tests/test_imports.py", text, exact=False)[0]["imports"] == [
        ["", 1, ["x"]],
        ["", 2, ["f", "g"]],
        ["a.b", 0, ["c", "e"]],
        ["a.b", 2, ["c"]],
        ["m", 0, []],
        ["p.q", 0, []],
        ["s", 0, []],
    ]


@pytest.mark.timeout(15)
def test_lines_are_claimed_once_however_deep_the_spans_nest() -> None:
    # Each span overwrote its parent's claim line by line: O(lines x depth), 60,000
    # nested spans about 35 s.
    n = 60_000
    rows = [[f"A{i}", "class", i + 1, 2 * n - i] for i in range(n)]
    owner = _owners(rows, [row[2] for row in rows], 2 * n)
    assert owner[1:4] == [0, 1, 2]
    assert owner[n - 1 : n + 3] == [n - 2, n - 1, n - 1, n - 2]
    assert owner[-1] == 0
    # Shallow, overlapping and out-of-range spans: the last one holding a line has it.
    rows = [
        ["a", "class", 2, 9],
        ["a.b", "method", 3, 4],
        ["c", "class", 8, 20],
        ["d", "function", 5, 3],
    ]
    assert _owners(rows, [1, 3, 8, 5], 10) == [-1, 0, 0, 1, 1, 0, 0, 0, 2, 2, 2]


def test_regex_fallback_nesting_deep_with_blank_lines() -> None:
    # Nesting read from indentation, every span running to the end of the file.
    block = "class Alpha:\n" + "\n" * 50 + " value = 1\n"
    text = "".join(" " * k + line for k in range(200) for line in block.splitlines(True))
    core, detail = analyze("tests/test_nest.py", text, exact=False)
    assert len(core["symbols"]) == 200
    assert core["symbols"][-1] == [".".join(["Alpha"] * 200), "class", 199 * 52 + 1, 200 * 52]
    assert detail["lens"] == [2] * 200  # its own `Alpha` and `value`, none of the nested
