"""Live progress of a run: one line per stage with elapsed time, tokens and dollars.

On a terminal, a rich Live table with a spinner on the running stage. Not a
terminal (or NO_COLOR): plain lines, one per event that matters, no control codes.
Both consume the engine's events (`on_event`).
"""

from __future__ import annotations

import time
from typing import Any

from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from agent_cli.errors import UsageError
from agent_cli.views.common import console, is_live, money, seconds, tokens


class _Line:
    def __init__(self, key: str, note: str = "") -> None:
        self.key, self.note = key, note
        self.start = time.monotonic()
        self.end: float | None = None
        self.status = "running"
        self.tokens = 0
        self.cost = 0.0
        self.unknown = False

    def add_call(self, ev: dict[str, Any]) -> None:
        self.tokens += sum((ev.get("usage") or {}).values())
        if ev.get("cost_usd") is None:
            self.unknown = True
        else:
            self.cost += ev["cost_usd"]

    @property
    def elapsed(self) -> float:
        return (self.end or time.monotonic()) - self.start


class PlainProgress:
    """Plain lines on stderr. They are held back until the service has accepted a
    model call (or a step finished): when the run turns out to be bad input (a model
    id the service rejects), it is discarded and only the error is printed."""

    def __init__(self) -> None:
        self.lines: dict[str, _Line] = {}
        self.out = console(stderr=True)
        self.held: list[str] | None = []

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, exc_type: type | None, exc: object, tb: object) -> None:
        if exc_type is not None and issubclass(exc_type, UsageError):
            self.held = None
        self._release()

    def _say(self, text: str) -> None:
        if self.held is None:
            self.out.print(text, markup=False, highlight=False)
        else:
            self.held.append(text)

    def _release(self) -> None:
        held, self.held = self.held, None
        for text in held or []:
            self.out.print(text, markup=False, highlight=False)

    def __call__(self, ev: dict[str, Any]) -> None:
        if ev["event"] in ("model_call", "step_done", "wait_pending", "run_finished"):
            self._release()
        self._plain(ev)

    def _plain(self, ev: dict[str, Any]) -> None:
        kind, key = ev["event"], ev.get("key", "")
        if kind == "step_started":
            self.lines[key] = _Line(key)
            why = f" ({ev['reason']})" if ev.get("reason") else ""
            self._say(f"{key}: started{why}")
        elif kind == "model_call" and key in self.lines:
            self.lines[key].add_call(ev)
        elif kind == "step_reused":
            src = f" from {ev['reused_from']}" if ev.get("reused_from") else ""
            self._say(f"{key}: reused{src}")
        elif kind in ("step_done", "step_failed") and key in self.lines:
            line = self.lines[key]
            word = "done" if kind == "step_done" else f"failed: {ev.get('error')}"
            self._say(f"{key}: {word} in {seconds(ev.get('seconds') or line.elapsed)}, "
                      f"{tokens(line.tokens)} tokens, {money(line.cost, line.unknown)}")
        elif kind == "wait_answered" and ev.get("answered_by") == "auto":
            self._say(f"{key}: approved automatically (--auto-approve)")


class LiveProgress(PlainProgress):
    def __init__(self) -> None:
        super().__init__()
        self.reused: list[str] = []
        self.live = Live(self._render(), console=self.out, refresh_per_second=8, transient=False)

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, exc_type: type | None, exc: object, tb: object) -> None:
        if exc_type is not None and issubclass(exc_type, UsageError):
            self.lines.clear()  # bad input after all: show only the error
        self.live.update(self._render())
        self.live.__exit__(None, None, None)

    def __call__(self, ev: dict[str, Any]) -> None:
        kind, key = ev["event"], ev.get("key", "")
        if kind == "step_started":
            self.lines[key] = _Line(key, ev.get("reason") or "")
        elif kind == "step_reused":
            self.lines[key] = _Line(key, "reused" + (f" from {ev['reused_from']}"
                                                    if ev.get("reused_from") else ""))
            self.lines[key].status, self.lines[key].end = "reused", self.lines[key].start
        elif kind == "model_call" and key in self.lines:
            self.lines[key].add_call(ev)
        elif kind in ("step_done", "step_failed", "step_interrupted") and key in self.lines:
            self.lines[key].status = {"step_done": "done", "step_failed": "failed"}.get(kind, "stopped")
            self.lines[key].end = time.monotonic()
        self.live.update(self._render())

    def _render(self) -> Table:
        table = Table.grid(padding=(0, 2))
        for line in self.lines.values():
            mark: Any = {"done": Text("✓", style="green"), "failed": Text("✗", style="red"),
                         "reused": Text("↺", style="cyan"), "stopped": Text("■", style="yellow")
                         }.get(line.status) or Spinner("dots", style="yellow")
            table.add_row(mark, line.key, seconds(line.elapsed), f"{tokens(line.tokens)} tok",
                          money(line.cost, line.unknown), Text(line.note, style="dim"))
        return table


def progress() -> PlainProgress:
    return LiveProgress() if is_live() else PlainProgress()
