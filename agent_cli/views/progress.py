"""Live progress of a run: one line per stage with elapsed time, tokens and dollars.

On a terminal, a rich Live table redrawn eight times a second, so the running stage's
time ticks; it also shows a model call's retries as they happen, how many tests have
run and failed, and a bar while a cold index is parsed. A test stage whose tests fail
ends ✗, not ✓. NO_COLOR removes the colours only.

Not a terminal (a pipe, a log file) or TERM=dumb: plain lines on stderr, each printed
as its event happens, no control codes. Both consume the engine's events (`on_event`):
the timeline's (step_started, model_call, model_retry, tests_finished, step_done...)
and the transient ones steps send while they work (tests_progress, index_progress).
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from agent_cli.errors import UsageError
from agent_cli.views.common import console, is_live, money, seconds, tokens

PLAIN_EVERY_S = 5.0  # plain mode: at most one line of counts per step this often
PLAIN_INDEX_MIN = 200  # plain mode: files to parse before indexing is worth a line


class _Line:
    def __init__(self, key: str, note: str = "") -> None:
        self.key, self.note = key, note
        self.start = time.monotonic()
        self.end: float | None = None
        self.status = "running"
        self.tokens = 0
        self.cost = 0.0
        self.unknown = False
        self.retry = ""  # the retry being waited for, until the call is answered
        self.tests: tuple[int, int] | None = None  # (ran, failed) so far
        self.index: tuple[int, int] | None = None  # (files parsed, files to parse)
        self.verdict: dict[str, Any] | None = None  # tests_finished
        self.said_at = self.start  # plain mode: counts only for a step that takes a while

    def add_call(self, ev: dict[str, Any]) -> None:
        self.retry = ""
        self.tokens += sum((ev.get("usage") or {}).values())
        if ev.get("cost_usd") is None:
            self.unknown = True
        else:
            self.cost += ev["cost_usd"]

    @property
    def elapsed(self) -> float:
        return (self.end or time.monotonic()) - self.start

    @property
    def tests_failed(self) -> bool:
        return self.verdict is not None and not self.verdict.get("passed")

    def counts(self) -> str:
        if self.verdict is not None:
            ran, failed = self.verdict.get("ran", 0), self.verdict.get("failed", 0)
        elif self.tests is not None:
            ran, failed = self.tests
        else:
            return ""
        late = ", timed out" if (self.verdict or {}).get("timed_out") else ""
        return f"{ran} test{'s' if ran != 1 else ''} ran, {failed} failed{late}"


def retry_text(ev: dict[str, Any]) -> str:
    """'overloaded (529), retry 2/4 in 4.0 s'."""
    status = f" ({ev['status']})" if ev.get("status") else ""
    return (f"{ev.get('reason') or 'error'}{status}, retry {ev.get('attempt')}/"
            f"{ev.get('max_retries')} in {float(ev.get('delay_s') or 0):.1f} s")


class PlainProgress:
    """Plain lines on stderr, each as its event happens."""

    def __init__(self) -> None:
        self.lines: dict[str, _Line] = {}
        self.out = console(stderr=True)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, exc_type: type | None, exc: object, tb: object) -> None:
        pass

    def _say(self, text: str) -> None:
        self.out.print(text, markup=False, highlight=False, soft_wrap=True)

    def __call__(self, ev: dict[str, Any]) -> None:
        kind, key = ev["event"], ev.get("key", "")
        line = self.lines.get(key)
        if kind == "step_started":
            self.lines[key] = _Line(key)
            why = f" ({ev['reason']})" if ev.get("reason") else ""
            self._say(f"{key}: started{why}")
        elif kind == "step_reused":
            src = f" from {ev['reused_from']}" if ev.get("reused_from") else ""
            self._say(f"{key}: reused{src}")
        elif kind == "wait_answered" and ev.get("answered_by") == "auto":
            self._say(f"{key}: approved automatically (--auto-approve)")
        elif line is None:
            return
        elif kind == "model_call":
            line.add_call(ev)
        elif kind == "model_retry":
            self._say(f"{key}: {retry_text(ev)}")
        elif kind == "tests_progress":
            line.tests = (ev["ran"], ev["failed"])
            self._now_and_then(line, f"{key}: {line.counts()} so far")
        elif kind == "index_progress":
            line.index = (ev["done"], ev["total"])
            if ev["total"] >= PLAIN_INDEX_MIN:
                self._now_and_then(line, f"{key}: indexing the repository, {ev['done']:,} of "
                                   f"{ev['total']:,} files parsed", force=ev["done"] == 0)
        elif kind == "tests_finished":
            line.verdict = ev
        elif kind in ("step_done", "step_failed"):
            took = seconds(ev.get("seconds") or line.elapsed)
            spent = f"{tokens(line.tokens)} tokens, {money(line.cost, line.unknown)}"
            if kind == "step_failed":
                self._say(f"{key}: failed in {took}, {spent}")  # the error comes last, once
            elif line.tests_failed:
                what = "timed out" if (line.verdict or {}).get("timed_out") else "failed"
                self._say(f"{key}: tests {what} in {took} ({line.counts()}), {spent}")
            else:
                counts = f" ({line.counts()})" if line.verdict else ""
                self._say(f"{key}: done in {took}{counts}, {spent}")

    def _now_and_then(self, line: _Line, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - line.said_at >= PLAIN_EVERY_S:
            line.said_at = now
            self._say(text)


class _Board:
    """What Live redraws: rebuilt at every refresh, so elapsed times tick."""

    def __init__(self, lines: dict[str, _Line]) -> None:
        self.lines = lines

    def __rich__(self) -> Table:
        table = Table.grid(padding=(0, 2))
        for line in list(self.lines.values()):  # the events' thread may add one
            table.add_row(_mark(line), line.key, seconds(line.elapsed),
                          f"{tokens(line.tokens)} tok", money(line.cost, line.unknown),
                          _note(line))
        return table


def _mark(line: _Line) -> Any:
    if line.status == "done" and line.tests_failed:
        return Text("✗", style="red")
    return {"done": Text("✓", style="green"), "failed": Text("✗", style="red"),
            "reused": Text("↺", style="cyan"), "stopped": Text("■", style="yellow")
            }.get(line.status) or Spinner("dots", style="yellow")


def _note(line: _Line) -> Any:
    parts: list[Any] = []
    if line.note:
        parts.append(Text(line.note, style="dim"))
    if line.retry and line.end is None:
        parts.append(Text(line.retry, style="yellow"))
    if line.index is not None and line.end is None:
        done, total = line.index
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=total, completed=done, width=24),
                    Text(f"{done:,}/{total:,} files parsed"))
        parts.append(bar)
    counts = line.counts()
    if counts:
        parts.append(Text(counts, style="red" if line.tests_failed else ""))
    if len(parts) <= 1:
        return parts[0] if parts else ""
    return Group(*parts) if any(not isinstance(p, Text) for p in parts) else \
        Text("  ").join(parts)


class LiveProgress(PlainProgress):
    def __init__(self) -> None:
        super().__init__()
        self.live = Live(_Board(self.lines), console=self.out, refresh_per_second=8,
                         transient=False)

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, exc_type: type | None, exc: object, tb: object) -> None:
        if exc_type is not None and issubclass(exc_type, UsageError):
            self.lines.clear()  # bad input after all: show only the error
        self.live.refresh()
        self.live.__exit__(None, None, None)

    def __call__(self, ev: dict[str, Any]) -> None:
        kind, key = ev["event"], ev.get("key", "")
        line = self.lines.get(key)
        if kind == "step_started":
            self.lines[key] = _Line(key, ev.get("reason") or "")
        elif kind == "step_reused":
            self.lines[key] = _Line(key, "reused" + (f" from {ev['reused_from']}"
                                                    if ev.get("reused_from") else ""))
            self.lines[key].status, self.lines[key].end = "reused", self.lines[key].start
        elif line is None:
            return
        elif kind == "model_call":
            line.add_call(ev)
        elif kind == "model_retry":
            line.retry = retry_text(ev)
        elif kind == "tests_progress":
            line.tests = (ev["ran"], ev["failed"])
        elif kind == "index_progress":
            line.index = (ev["done"], ev["total"])
        elif kind == "tests_finished":
            line.verdict = ev
        elif kind in ("step_done", "step_failed", "step_interrupted"):
            line.status = {"step_done": "done", "step_failed": "failed"}.get(kind, "stopped")
            line.end = time.monotonic()
        self.live.refresh()


class IndexBar:
    """`agent locate`'s progress while a cold index is built: a transient bar on a
    terminal, one line otherwise (and nothing for a small or a cached index)."""

    def __init__(self) -> None:
        self.out = console(stderr=True)
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> IndexBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, done: int, total: int) -> None:
        if total < PLAIN_INDEX_MIN:
            return
        if not is_live():
            if done == 0:
                self.out.print(f"indexing the repository: {total:,} files to parse",
                               markup=False, highlight=False)
            return
        if self.bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(TextColumn("indexing"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("files parsed"), console=self.out, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("index", total=total)
        self.bar.update(self.task, completed=done)


def progress() -> PlainProgress:
    return LiveProgress() if is_live() else PlainProgress()
