"""`agent batch`: live progress, the summary table, `--status`, `cost --batch`, and the
one-by-one review of `approve --batch`.

Progress goes to stderr: on a terminal one live line (done / failed / waiting /
running, dollars, elapsed); otherwise a plain line each time a run ends.
"""

from __future__ import annotations

from typing import Any

from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agent_cli.views.common import console, is_live, money, seconds, tokens

DONE = ("succeeded", "rejected")


def _line(report: dict[str, Any]) -> str:
    c = report["counts"]
    total = len(report["runs"])
    ended = sum(c.get(s, 0) for s in ("succeeded", "rejected", "failed"))
    parts = [f"batch {report['batch']}: {ended}/{total} ended",
             f"{sum(c.get(s, 0) for s in DONE)} done", f"{c.get('failed', 0)} failed",
             f"{c.get('waiting', 0)} waiting", f"{c.get('running', 0)} running",
             money(report["cost_usd"])]
    if report.get("max_cost"):
        parts[-1] += f" of {money(report['max_cost'])}"
    return " · ".join(parts) + f" · {seconds(report['elapsed_s'])}"


class BatchProgress:
    """A context manager and an `on_progress` callback."""

    def __init__(self) -> None:
        self.out = console(stderr=True)
        self.live: Live | None = Live(console=self.out, transient=False) if is_live() else None
        self.seen: dict[str, str] = {}

    def __enter__(self) -> BatchProgress:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def __call__(self, report: dict[str, Any]) -> None:
        if self.live is not None:
            self.live.update(Text(_line(report)))
            return
        for row in report["runs"]:  # plain: a line when a run's status changes to an end
            status = row["status"]
            if status in ("created", "running", "interrupted") or self.seen.get(row["run_id"]) == status:
                continue
            self.seen[row["run_id"]] = status
            self.out.print(f"{row['item']}: run {row['run_id']} {status}, "
                           f"{money(row['cost_usd'])} — {_line(report)}", markup=False)


def render_summary(report: dict[str, Any]) -> None:
    out = console()
    table = Table(title=f"batch {report['batch']} — {report['status']}", title_justify="left",
                  header_style="bold", box=None, padding=(0, 1))
    for col in ("issue", "run", "status", "cost", "seconds", "branch"):
        table.add_column(col, justify="right" if col in ("cost", "seconds") else "left")
    for r in report["runs"]:
        status = r["status"] + (f" ({r['waiting_for']})" if r.get("waiting_for") else "")
        table.add_row(escape(r["item"]), r["run_id"], status, money(r["cost_usd"]),
                      seconds(r["seconds"]), r.get("branch") or "")
    out.print(table)
    out.print(_line(report), markup=False)
    batch = report["batch"]
    if report["counts"].get("waiting"):
        out.print(f"review the waiting runs: agent approve --batch {batch}   (or --all)",
                  markup=False)
    if report["status"] == "interrupted":
        out.print(f"continue with: agent batch --resume {batch}", markup=False)
    failed = [r for r in report["runs"] if r["status"] == "failed"]
    for r in failed:
        out.print(f"{r['item']} failed: {r.get('reason') or ''} — agent inspect {r['run_id']}",
                  markup=False)


def render_batch_cost(c: dict[str, Any]) -> None:
    from agent_cli.views.cost import KINDS, _table

    out = console()
    runs = _table(f"cost of batch {c['batch']} by run", "issue")
    for r in c["runs"]:
        runs.add_row(escape(r["item"]), *(tokens(r.get(k, 0)) for k in KINDS),
                     money(r.get("cost_usd", 0.0), r.get("unknown_cost", False)))
    t = c["total"]
    runs.add_row("[bold]total[/]", *(tokens(t.get(k, 0)) for k in KINDS),
                 f"[bold]{money(t.get('cost_usd', 0.0), t.get('unknown_cost', False))}[/]")
    out.print(runs)
    models = _table("by model", "model")
    for m, v in c["models"].items():
        models.add_row(escape(m), *(tokens(v.get(k, 0)) for k in KINDS),
                       money(v.get("cost_usd"), v.get("unknown_cost", False)))
    out.print(models)


def ask_review(entry: dict[str, Any], run: Any, budget: float | None) -> dict[str, Any] | None:
    """Show a waiting run's gate and ask: approve, reject, or skip."""
    import typer

    from agent_cli.pipeline import reports
    from agent_cli.views.outcome import render_outcome

    data = run.load()
    render_outcome(run.id, "waiting", data.get("reason"), data, reports.spent_usd(run),
                   reports.sandbox_detail(run, data))
    key = (data.get("pending_wait") or {}).get("key", "")
    if key.startswith("budget") and not budget:
        console().print(f"{entry['item']}: waits at its budget; skipped (give --budget USD)",
                        markup=False)
        return None
    choice = typer.prompt(f"{entry['item']}: approve, reject or skip? [a/r/s]", default="s")
    if choice.lower().startswith("a"):
        return {"approved": True, **({"budget": budget} if budget else {})}
    if choice.lower().startswith("r"):
        return {"approved": False, "reason": "rejected in approve --batch"}
    return None
