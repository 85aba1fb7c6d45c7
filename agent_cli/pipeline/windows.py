"""What the model is shown of one file: the whole of it, or an outline and windows.

Edits are exact-string replacements, so the model can only change text it was shown.
A file that fits its token budget is shown whole. A bigger one is shown as its
outline (every definition with its line, from the same parser the index uses) and
windows of numbered lines around the places that matter for this change, in this
order of claim on the budget:

1. the lines a traceback or a located symbol points at, and the definitions the
   change names (the plan's words for this file, the located symbols);
2. the file's head (imports, module constants) and its tail (where new functions
   and tests are added);
3. other occurrences of names the change spells out in backticks.

Windows that are close merge. What was shown is returned as line ranges, so the step
artifact can answer "did the model see line 1,840 of latex.py?". Everything here is
a pure function of its inputs: the same step asked twice sends the same request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from agent_cli.search.symbols import definitions, lines_of

CONTEXT = 6  # lines around a pointed-at line
MERGE_GAP = 8  # windows closer than this become one
HEAD_LINES = 40
TAIL_LINES = 30
DEFINITION_LINES = 160  # a longer definition shows its head and its tail
DEFINITION_TAIL = 30
MAX_OUTLINE = 400
MAX_OCCURRENCES = 4  # per backticked name

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_BACKTICKED = re.compile(r"`([^`\n]{2,80})`")
_STOP = frozenset([
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "for", "from", "if", "in", "is",
    "it", "no", "not", "of", "on", "or", "the", "this", "to", "with", "when", "then", "else",
    "self", "cls", "none", "true", "false", "return", "def", "class", "import"])


def tokens(text: str) -> int:
    return (len(text) + 3) // 4


def numbered(lines: list[str], start: int = 1) -> str:
    return "\n".join(f"{n:5d}| {line}" for n, line in enumerate(lines, start))


@dataclass
class Focus:
    """What matters in a file for this change: names (of definitions, from the plan
    and the search), lines (from tracebacks, located symbols, a diff) and words
    (backticked names whose uses are worth a window)."""

    names: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    words: list[str] = field(default_factory=list)


@dataclass
class View:
    text: str  # what goes into the prompt
    lines: int  # the file's line count
    ranges: list[tuple[int, int]]  # 1-based inclusive line ranges shown
    whole: bool
    tokens: int


def focus_from_text(text: str) -> Focus:
    """Names and backticked words of a plan's or an issue's prose."""
    names = [m.group() for m in _IDENT.finditer(text)]
    words = [w.strip() for w in _BACKTICKED.findall(text)]
    return Focus(names=_unique(n for n in names if n.lower() not in _STOP and len(n) > 2),
                 words=_unique(w for w in words if w.lower() not in _STOP))


def pointed_lines(text: str, path: str) -> list[int]:
    """Line numbers that tracebacks and `path:line` references in `text` give for
    `path` (matched by its trailing components, as a traceback has absolute paths)."""
    tail = re.escape(path.lstrip("./"))
    found = [int(m.group(1)) for m in re.finditer(
        rf'(?:^|[\s"\'/(]){tail}"?(?:, line |:)(\d+)', text, re.MULTILINE)]
    return _unique(found)


def view(path: str, text: str, *, budget: int, focus: Focus | None = None) -> View:
    """`text` (the file `path`) within `budget` tokens: whole when it fits, else the
    outline and windows around `focus`."""
    lines = lines_of(text)
    whole = numbered(lines)
    if tokens(whole) <= budget:
        return View(whole, len(lines), [(1, len(lines))] if lines else [], True, tokens(whole))
    focus = focus or Focus()
    defs = definitions(path, text)
    outline = _outline(defs)
    header = (f"({path} has {len(lines):,} lines, too many to show whole: its outline, then "
              "the parts that matter for this change. Use read_file for any other lines.)")
    room = budget - tokens(header) - tokens(outline) - 20
    if room < budget // 3:  # a huge outline gives way to windows
        outline = _outline(defs, top_level_only=True, max_tokens=budget // 3)
        room = budget - tokens(header) - tokens(outline) - 20

    def cost(ranges: list[tuple[int, int]]) -> int:
        return sum(tokens(numbered(lines[a - 1:b], a)) + 8 for a, b in ranges)

    chosen: list[tuple[int, int]] = []
    for start, end in _wanted(lines, defs, focus):
        candidate = _merge([*chosen, (start, end)])
        if cost(candidate) <= room:
            chosen = candidate
            continue
        # the part of this window that still fits, from its start (merging may add the
        # gap to a neighbour: checked again)
        fit = _lines_fitting(lines, start, end, room - cost(chosen) - 8)
        while fit >= start + 2 and cost(_merge([*chosen, (start, fit)])) > room:
            fit -= max(1, (fit - start) // 4)
        if fit >= start + 2:
            chosen = _merge([*chosen, (start, fit)])
    parts = [header]
    if outline:
        parts.append("Outline (line: definition):\n" + outline)
    for a, b in chosen:
        parts.append(f"Lines {a}-{b}:\n" + numbered(lines[a - 1:b], a))
    body = "\n\n".join(parts)
    return View(body, len(lines), chosen, False, tokens(body))


def _wanted(lines: list[str], defs: list[list], focus: Focus) -> Iterable[tuple[int, int]]:
    n = len(lines)

    def around(line: int) -> tuple[int, int]:
        return max(1, line - CONTEXT), min(n, line + CONTEXT)

    by_name: dict[str, list[list]] = {}
    for row in defs:
        qual = str(row[0])
        by_name.setdefault(qual, []).append(row)
        by_name.setdefault(qual.rsplit(".", 1)[-1], []).append(row)
    for line in focus.lines:
        if 1 <= line <= n:
            yield around(line)
            inner = _innermost(defs, line)
            if inner is not None:
                yield from _definition(inner, n)
    for name in focus.names:
        for row in by_name.get(name, by_name.get(name.rsplit(".", 1)[-1], []))[:3]:
            yield from _definition(row, n)
    if n:
        yield 1, _head_end(lines)
        yield max(1, n - TAIL_LINES + 1), n
    for word in focus.words:
        hits = [i for i, line in enumerate(lines, 1) if word in line][:MAX_OCCURRENCES]
        for line in hits:
            yield around(line)


def _definition(row: list, n: int) -> Iterable[tuple[int, int]]:
    """A definition with the lines around it (a new one often goes right after it)."""
    start, end = int(row[2]), min(int(row[3]), n)
    if end - start + 1 <= DEFINITION_LINES:
        yield max(1, start - 2), min(n, end + 3)
    else:
        yield max(1, start - 2), start + DEFINITION_LINES - DEFINITION_TAIL
        yield end - DEFINITION_TAIL + 1, min(n, end + 3)


_IMPORT = re.compile(r"^(?:import |from \S+ import |#include |use |require|const \w+ = require)")


def _head_end(lines: list[str]) -> int:
    """The head shown of a big file: HEAD_LINES, or through its opening imports (the
    last import line among the first 3 x HEAD_LINES), where a new import goes."""
    last = max((i for i, line in enumerate(lines[:3 * HEAD_LINES], 1) if _IMPORT.match(line)),
               default=0)
    return min(len(lines), max(HEAD_LINES, last + 2))


def _innermost(defs: list[list], line: int) -> list | None:
    inner = None
    for row in defs:
        if int(row[2]) <= line <= int(row[3]):
            inner = row  # parents come before children
    if inner is None or int(inner[3]) - int(inner[2]) + 1 > 4 * DEFINITION_LINES:
        return None  # a class of thousands of lines is not a window
    return inner


def _outline(defs: list[list], top_level_only: bool = False,
             max_tokens: int | None = None) -> str:
    wanted = [r for r in defs if not top_level_only or "." not in str(r[0])]
    rows, used = [], 0
    for r in wanted[:MAX_OUTLINE]:
        row = f"{int(r[2]):5d}: {r[1]} {r[0]}"
        if max_tokens is not None and used + tokens(row) + 1 > max_tokens:
            break
        rows.append(row)
        used += tokens(row) + 1
    text = "\n".join(rows)
    if len(rows) < len(wanted):
        text += "\n  ... (more definitions; use find)"
    return text


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + MERGE_GAP:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _lines_fitting(lines: list[str], start: int, end: int, room: int) -> int:
    used, last = 0, start - 1
    for i in range(start, end + 1):
        used += tokens(f"{i:5d}| {lines[i - 1]}\n")
        if used > room:
            break
        last = i
    return last


def _unique(items: Iterable) -> list:
    return list(dict.fromkeys(items))
