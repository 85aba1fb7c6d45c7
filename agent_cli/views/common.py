"""Shared rendering bits: one Console per stream, number formats."""

from __future__ import annotations

import os
import sys
from functools import cache

from rich.console import Console


@cache
def console(stderr: bool = False) -> Console:
    """stdout: what a command renders, plain (no escape codes at all) when it is not
    a terminal, TERM=dumb or NO_COLOR. stderr: the live progress, which redraws itself
    on a terminal whatever NO_COLOR says; NO_COLOR (https://no-color.org) takes its
    colours away, nothing else."""
    stream = sys.stderr if stderr else sys.stdout
    no_color = bool(os.environ.get("NO_COLOR"))
    plain = not _terminal(stream) or (no_color and not stderr)
    # Plain: no colors, no cursor movement, no wrapping surprises.
    return Console(file=stream, no_color=plain or no_color,
                   force_terminal=False if plain else None, highlight=False,
                   width=120 if plain else None)


def _terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def is_live() -> bool:
    """Whether progress may redraw itself: stderr is a terminal that can move the cursor."""
    return _terminal(sys.stderr)


def money(value: float | None, unknown: bool = False) -> str:
    if value is None or unknown:
        return "unknown" if value is None else f"${value:.4f}+?"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def age(s: int | None) -> str:
    """Seconds as the largest whole unit: 42s, 5m, 3h, 2d."""
    if s is None:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def tokens(n: int | None) -> str:
    if not n:
        return "0"
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def seconds(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.1f}s" if s < 60 else f"{int(s // 60)}m{int(s % 60):02d}s"
