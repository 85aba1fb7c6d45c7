"""`agent cost`: tokens by kind and dollars, per step and model, with shares."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from agent_cli.views.common import console, money, tokens

KINDS = ("input", "cache_write", "cache_read", "output")


def _bar(share: float, width: int = 20) -> str:
    filled = round(share * width)
    return "█" * filled + "·" * (width - filled)


def _table(title: str, first: str) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold", box=None, padding=(0, 1))
    t.add_column(first)
    for k in KINDS:
        t.add_column(k.replace("_", " "), justify="right")
    t.add_column("dollars", justify="right")
    return t


def render_run_cost(c: dict[str, Any]) -> None:
    out = console()
    total = c["total"].get("cost_usd") or 0.0
    steps = _table(f"cost of run {c['run']} by step", "step")
    steps.add_column("share")
    for key, v in c["steps"].items():
        share = ((v.get("cost_usd") or 0.0) / total) if total else 0.0
        steps.add_row(escape(key), *(tokens(v.get(k, 0)) for k in KINDS),
                      money(v.get("cost_usd"), v.get("unknown_cost", False)),
                      f"{_bar(share)} {share:4.0%}")
    for r in c["reused"]:
        steps.add_row(f"{r['key']} (reused)", "", "", "", "", "$0", f"saved {money(r['cost_usd'])}")
    t = c["total"]
    steps.add_row("[bold]total[/]", *(tokens(t.get(k, 0)) for k in KINDS),
                  f"[bold]{money(t.get('cost_usd', 0.0), t.get('unknown_cost', False))}[/]", "")
    out.print(steps)
    models = _table("by model", "model")
    for m, v in c["models"].items():
        models.add_row(escape(m), *(tokens(v.get(k, 0)) for k in KINDS),
                       money(v.get("cost_usd"), v.get("unknown_cost", False)))
    out.print(models)
    if c["saved_usd"]:
        out.print(f"reuse saved {money(c['saved_usd'])}: steps copied from the parent run cost nothing")
    if c["served_recorded_usd"]:
        out.print(f"calls served from a recording or the journal would have cost "
                  f"{money(c['served_recorded_usd'])}")
    if t.get("unknown_cost"):
        out.print("some calls used a model without a known price: set prices in .agentrc")


def render_all_costs(c: dict[str, Any]) -> None:
    out = console()
    table = _table(f"cost of all {c['runs']} runs by day and model", "day")
    table.add_column("model")
    for r in c["rows"]:
        table.add_row(r["day"], *(tokens(r.get(k, 0)) for k in KINDS),
                      money(r.get("cost_usd"), r.get("unknown_cost", False)), r["model"])
    t = c["total"]
    table.add_row("[bold]total[/]", *(tokens(t.get(k, 0)) for k in KINDS),
                  f"[bold]{money(t.get('cost_usd', 0.0), t.get('unknown_cost', False))}[/]", "")
    out.print(table)
