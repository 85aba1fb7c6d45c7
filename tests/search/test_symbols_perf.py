"""Inputs that were quadratic (or worse) in `symbols` and `treesit`: each runs well
under a second now, and the timeout is far below what the old code took."""

from __future__ import annotations

import pytest

from agent_cli.search.symbols import _regex_symbols, analyze


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
