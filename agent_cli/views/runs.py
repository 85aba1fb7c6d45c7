"""`agent runs` and `agent diff`."""

from __future__ import annotations

import sys
from typing import Any

from rich.markup import escape
from rich.table import Table

from agent_cli.views.common import age, console, money


def render_runs(rows: list[dict[str, Any]]) -> None:
    out = console()
    if not rows:
        out.print("no runs yet: start one with agent solve ISSUE.md")
        return
    table = Table(header_style="bold", box=None, padding=(0, 1))
    # A narrow terminal wraps the issue and folds the branch, never the run id: it is
    # what the next command needs.
    widest = max(len(r["id"]) for r in rows)
    table.add_column("run", no_wrap=True, min_width=widest)
    table.add_column("status", no_wrap=True)
    table.add_column("issue")
    table.add_column("age", justify="right", no_wrap=True)
    table.add_column("cost", justify="right", no_wrap=True)
    table.add_column("branch", overflow="fold")
    for r in rows:
        issue = escape((r.get("issue") or "")[:50])
        if r.get("parent"):
            issue += f" (replay of {r['parent']['run_id']})"
        cost = None if r.get("cost_unknown") and not r["cost_usd"] else r["cost_usd"]
        table.add_row(r["id"], r["status"], issue, age(r["age"]),
                      money(cost, bool(r.get("cost_unknown"))),
                      r.get("branch") or "")
    out.print(table)


def render_diff(diff: str) -> None:
    out = console()
    if out.is_terminal:
        # Our own colours, not a syntax theme's: a theme paints context lines white,
        # which a light terminal cannot show. Context keeps the terminal's own colour.
        from rich.text import Text

        for line in diff.splitlines():
            out.print(Text(line, style=_diff_style(line)), soft_wrap=True)
    else:
        sys.stdout.write(diff if diff.endswith("\n") else diff + "\n")


def render_clean(report: list[dict[str, Any]]) -> None:
    out = console()
    removed = [r for r in report if r["removed"]]
    for r in report:
        if r["removed"]:
            out.print(f"run {r['run']} ({r['status']}): removed {', '.join(r['removed'])}",
                      markup=False)
        for why in r["kept"]:
            out.print(f"run {r['run']} ({r['status']}): kept {why}", markup=False)
    if not removed:
        out.print("nothing to remove: no worktree (or, with --branches, branch) of a run that "
                  "is over is left", markup=False)


def _diff_style(line: str) -> str:
    if line.startswith(("diff --git", "index ", "--- ", "+++ ", "new file", "deleted file")):
        return "bold"
    if line.startswith("@@"):
        return "cyan"
    if line.startswith("+"):
        return "green"
    if line.startswith("-"):
        return "red"
    return ""
