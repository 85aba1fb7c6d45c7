"""What the model is shown of a big file: an outline and windows, within a budget."""

from __future__ import annotations

from agent_cli.pipeline.windows import Focus, focus_from_text, pointed_lines, tokens, view


def big_module(n_funcs: int = 300) -> str:
    """A module of ~3,000 lines: imports, then n functions of 10 lines each."""
    head = "import math\nimport os\n\nLIMIT = 10\n\n"
    funcs = []
    for i in range(n_funcs):
        body = "\n".join(f"    x{j} = value * {j} + {i}" for j in range(6))
        funcs.append(f"def compute_{i}(value):\n    \"\"\"Step {i}.\"\"\"\n{body}\n"
                     f"    return x5\n\n")
    return head + "".join(funcs) + "# the end\n"


def line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def test_a_small_file_is_shown_whole_and_numbered() -> None:
    text = "a = 1\nb = 2\n"
    shown = view("m.py", text, budget=1000)
    assert shown.whole and shown.ranges == [(1, 2)]
    assert shown.text == "    1| a = 1\n    2| b = 2"


def test_a_big_file_shows_the_outline_and_the_named_definition_past_any_cut() -> None:
    text = big_module()
    target = line_of(text, "def compute_250(")
    assert target > 2400 and tokens(text) > 15_000
    shown = view("pkg/m.py", text, budget=6_000, focus=Focus(names=["compute_250"]))
    assert not shown.whole and shown.tokens <= 6_000
    assert f"{target:5d}: function compute_250" in shown.text  # the outline
    assert any(a <= target and target + 8 <= b for a, b in shown.ranges)
    assert f"{target + 8:5d}|     return x5" in shown.text
    assert shown.ranges[0][0] == 1 and shown.ranges[-1][1] == shown.lines  # head and tail
    assert "def compute_120(" not in shown.text  # not everything


def test_traceback_lines_get_a_window_and_their_function() -> None:
    text = big_module()
    target = line_of(text, "def compute_177(") + 5
    trace = f'Traceback:\n  File "/home/u/proj/pkg/m.py", line {target}, in compute_177\n'
    assert pointed_lines(trace, "pkg/m.py") == [target]
    assert pointed_lines("see pkg/m.py:12 and other/m.py:3", "pkg/m.py") == [12]
    shown = view("pkg/m.py", text, budget=4_000, focus=Focus(lines=pointed_lines(trace, "pkg/m.py")))
    assert any(a <= target - 5 and target + 4 <= b for a, b in shown.ranges)


def test_windows_merge_and_stay_in_the_budget_however_much_is_asked() -> None:
    text = big_module()
    names = [f"compute_{i}" for i in range(0, 300, 3)]
    shown = view("m.py", text, budget=3_000, focus=Focus(names=names))
    assert shown.tokens <= 3_000
    assert all(b1 + 8 < a2 for (_, b1), (a2, _) in zip(shown.ranges, shown.ranges[1:]))
    close = view("m.py", text, budget=8_000, focus=Focus(names=["compute_10", "compute_11"]))
    a = line_of(text, "def compute_10(")
    assert any(lo <= a and a + 18 <= hi for lo, hi in close.ranges)  # one window for both


def test_backticked_words_of_the_plan_show_their_uses() -> None:
    text = big_module().replace("    x3 = value * 3 + 200\n", "    x3 = SPECIAL_CASE(value)\n")
    focus = focus_from_text("Handle `SPECIAL_CASE` for negative values")
    assert "SPECIAL_CASE" in focus.words
    shown = view("m.py", text, budget=3_000, focus=focus)
    assert "x3 = SPECIAL_CASE(value)" in shown.text


def test_the_same_inputs_give_the_same_view() -> None:
    text = big_module()
    focus = Focus(names=["compute_5", "compute_290"], lines=[1500])
    assert view("m.py", text, budget=5_000, focus=focus) == view("m.py", text, budget=5_000,
                                                                  focus=focus)


def test_no_view_overruns_its_budget_whatever_the_focus() -> None:
    import random

    text = big_module()
    rng = random.Random(7)
    for _ in range(60):  # 200 took 11 s of the suite and found nothing more
        budget = rng.randint(1_500, 9_000)
        focus = Focus(names=[f"compute_{rng.randrange(300)}" for _ in range(rng.randrange(12))],
                      lines=[rng.randrange(1, 3000) for _ in range(rng.randrange(6))])
        shown = view("m.py", text, budget=budget, focus=focus)
        assert shown.tokens <= budget, (budget, focus)
        for a, b in shown.ranges:  # every recorded range is what the text shows
            assert f"{a:5d}| " in shown.text and f"{b:5d}| " in shown.text


def test_a_huge_outline_still_leaves_room_for_the_changed_lines() -> None:
    text = "".join(f"def test_{i}():\n    assert f({i})\n\n\n\n\n\n\n\n\n" for i in range(700))
    shown = view("tests/test_many.py", text, budget=4_000, focus=Focus(lines=[6_500]))
    assert shown.tokens <= 4_000
    assert any(a <= 6_500 <= b for a, b in shown.ranges)


def test_form_feeds_do_not_shift_the_numbers() -> None:
    text = "\x0c\n\x0c\n" + big_module()
    shown = view("m.py", text, budget=8_000, focus=Focus(names=["compute_250"]))
    start = line_of(text.replace("\x0c", ""), "def compute_250(")  # the same line count
    assert f"{start:5d}: function compute_250" in shown.text
    assert f"{start:5d}| def compute_250(value):" in shown.text
