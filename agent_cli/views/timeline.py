"""`agent inspect`: a run's timeline and a step's artifact."""

from __future__ import annotations

import json
import re
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agent_cli.views.common import console, money, seconds, tokens

STATUS_STYLE = {"done": "green", "answered": "green", "failed": "red", "running": "yellow",
                "pending": "yellow", "suspended": "yellow", "interrupted": "yellow"}


def render_timeline(t: dict[str, Any]) -> None:
    out = console()
    run = t["run"]
    head = f"run {run['id']} — {run['status']} — {run['issue']}"
    if run.get("parent"):
        head += f"\nreplayed from {run['parent']['run_id']} at {run['parent']['from_step']}"
        if run.get("overrides"):
            head += f" with {', '.join(f'{k}={v}' for k, v in run['overrides'].items())}"
    out.print(escape(head))
    if run.get("sandbox"):
        style = "bold yellow" if run["sandbox"].startswith("UNCONFINED") else ""
        line = f"tests: {escape(run['sandbox'])}"
        out.print(f"[{style}]{line}[/]" if style else line)
    table = Table(show_header=True, header_style="bold", box=None, padding=(0, 1))
    for col in ("#", "step", "status", "time", "model", "tokens", "cost", "notes"):
        table.add_column(col, justify="right" if col in ("#", "time", "tokens", "cost") else "left")
    for i, s in enumerate(t["steps"], 1):
        notes = []
        if s["reused_from"]:
            saved = f" (saved {money(s['saved_usd'])})" if s["saved_usd"] is not None else ""
            notes.append(f"reused from {s['reused_from']}{saved}")
        if s["served_calls"]:
            notes.append(f"{s['served_calls']} call(s) served, $0")
        if s["rerun_reason"]:
            notes.append(f"re-ran: {s['rerun_reason']}")
        if s["kind"] == "wait":
            answer = s.get("answer") or {}
            question = s.get("question") or ""
            notes.append(question if len(question) <= 60 else question[:57] + "...")
            if answer:
                notes.append("answer: " + ("revise: " + answer["feedback"] if answer.get("feedback")
                                           else "edited the plan" if answer.get("plan")
                                           else "yes" if answer.get("approved") else "no"))
        if s["error"]:
            notes.append(f"error: {s['error'][:160]}")
        style = STATUS_STYLE.get(s["status"] or "", "")
        table.add_row(str(i), s["key"], f"[{style}]{s['status']}[/]" if style else s["status"],
                      seconds(s["seconds"]), s["model"] or "", tokens(s["tokens"]),
                      money(s["cost_usd"]) if s["kind"] == "step" else "", escape("; ".join(notes)))
    out.print(table)
    if t.get("pending_wait"):
        out.print(f"waiting: {escape(t['pending_wait']['question'])}")
        out.print(f"answer with: agent approve {run['id']}   or: agent reject {run['id']}")
    if run.get("reason") and run["status"] in ("failed", "rejected"):
        out.print(f"{run['status']}: {escape(run['reason'])}")


def render_step(record: dict[str, Any], answers: list[dict[str, Any]] | None = None) -> None:
    """A step's artifact as text (`--json` prints the data). `answers`: what the model
    submitted in the step (the call journal), for what the artifact does not keep."""
    from rich.syntax import Syntax  # pygments: only for a step's artifact

    from agent_cli.views import transcript

    out = console()
    output = record.get("output")
    name = record.get("name")
    out.print(escape(f"{record['key']} — {record.get('status')}"
                     + (f" — re-ran: {record['rerun_reason']}" if record.get("rerun_reason") else "")))
    if record.get("error"):
        out.print(Panel(escape(record["error"].get("traceback") or record["error"]["message"]),
                        title="error", border_style="red"))
    if record.get("kind") == "wait":
        out.print(escape(record.get("question", "")))
        out.print(_wait(record))
        return
    if not isinstance(output, dict):
        out.print_json(json.dumps(output))
    elif name == "analyze_issue":
        out.print(transcript.analysis(output))
    elif name == "explore_codebase":
        out.print(_exploration(output))
    elif name in ("write_code", "fix_code"):
        said = [a["input"] for a in answers or []]
        for a in said:
            why = a.get("explanation") or a.get("note")
            if why and name == "fix_code":
                out.print(Text.assemble(("explanation: ", "bold"), why))
            elif why:
                out.print(Text.assemble((f"note on {_paths(a)}: ", "bold"), why))
        if not said and output.get("notes"):  # a step copied from another run
            out.print(Text.assemble(("notes: ", "bold"), "\n".join(output["notes"])))
        out.print(Syntax(output.get("diff") or "(no change)", "diff", background_color="default"))
        for e in output.get("edits", []):
            if not e["applied"]:
                out.print(f"[red]✗ {escape(e['path'])}: {escape(str(e.get('error')))}[/]")
        for line in shown_lines(output.get("shown") or []):
            out.print(escape(line))
    elif name == "create_plan":
        out.print(_plan(output))
    elif name == "run_tests":
        out.print(_tests(output))
    elif name == "check_tests":
        out.print(_baseline(output))
    elif name == "create_pr":
        from rich.markdown import Markdown  # markdown-it costs 0.1 s: only when shown

        out.print(Panel(Markdown(f"# {output['title']}\n\n{output['body']}"),
                        title=f"{output['branch']} @ {output['commit'][:12]}"))
    else:
        out.print(Syntax(json.dumps(output, indent=2), "json", background_color="default"))


def _paths(answer: dict[str, Any]) -> str:
    return ", ".join(dict.fromkeys(str(e.get("path")) for e in answer.get("edits") or [])) or "-"


def _wait(record: dict[str, Any]) -> Table:
    table = Table(box=None, padding=(0, 1), show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in (record.get("metadata") or {}).items():
        if value not in (None, "", [], {}):
            table.add_row(escape(str(key)), escape(_value(value)))
    answer = record.get("answer")
    if answer:
        said = "yes" if answer.get("approved") else "no"
        extra = answer.get("comment") or answer.get("reason")
        table.add_row("answer", escape(said + (f" — {extra}" if extra else "")
                                       + (f" (by {record.get('answered_by')})"
                                          if record.get("answered_by") else "")))
    else:
        table.add_row("answer", "(not answered yet)")
    return table


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def _exploration(e: dict[str, Any]) -> Group:
    ranked = Table(box=None, padding=(0, 1), show_header=True, header_style="bold",
                   title="ranked files", title_justify="left")
    for col in ("#", "file", "score", "why", "symbols"):
        ranked.add_column(col, overflow="fold", justify="right" if col in ("#", "score") else "left")
    for i, r in enumerate(e["ranked"], 1):
        symbols = ", ".join(f"{s['name']}:{s['line']}" for s in r.get("symbols") or [])
        ranked.add_row(str(i), escape(r["path"]), f"{r['score']:.2f}",
                       escape("; ".join(r["reasons"])), escape(symbols))
    shown = Table(box=None, padding=(0, 1), show_header=True, header_style="bold",
                  title=f"shown to the model (~{tokens(e['tokens'])} tokens)",
                  title_justify="left")
    for col in ("file", "how", "tokens", "why"):
        shown.add_column(col, overflow="fold", justify="right" if col == "tokens" else "left")
    for f in e["files"]:
        how = "whole" if f["whole"] else ", ".join(
            f"{a}-{b}" for a, b in f.get("ranges") or []) or "outline"
        shown.add_row(escape(f["path"]), escape(how), tokens(f["tokens"]), escape(f["why"]))
    parts: list[Any] = [ranked, Text(""), shown]
    if e.get("neighbours"):
        parts.append(Text("import neighbours: " + ", ".join(e["neighbours"])))
    parts.append(Text(f"searched in {seconds(e['seconds'])}", style="dim"))
    return Group(*parts)


def _selection(selection: dict[str, Any]) -> list[str]:
    """Which test files ran and why, what was left out, and why the whole suite ran."""
    lines = [escape(f"  selected {f['path']}: {'; '.join(f['reasons'])}")
             for f in selection.get("files") or []]
    lines += [escape(f"  left out {f['path']}: {'; '.join(f['reasons'])}")
              for f in selection.get("left_out") or []]
    lines += [escape(f"  left out {test}: over related_budget on the base commit")
              for test in selection.get("slow") or []]
    if selection.get("note"):
        lines.append(escape(f"  {selection['note']}"))
    return lines


def _baseline(b: dict[str, Any]) -> Panel:
    lines = [escape(b["summary"])]
    if b.get("sandbox"):
        lines.append(escape(f"sandbox: {b['sandbox']}"))
    selection = b.get("selection") or {}
    lines.append(escape(f"command: {selection.get('command', '')}"))
    lines += _selection(selection)
    lines += [f"[yellow]already failing: {escape(t)}[/]" for t in b.get("failing") or []]
    return Panel("\n".join(lines), title="tests on the base commit")


def shown_lines(views: list[dict[str, Any]]) -> list[str]:
    """What the model saw of each file, merged over the step's calls: `path: lines
    1-40, 1831-1870 of 3,012 (windows; read 1840-1900)`."""
    by_path: dict[str, dict[str, Any]] = {}
    for v in views:
        entry = by_path.setdefault(v["path"], {"lines": v["lines"], "whole": False,
                                               "prompt": set(), "read": set(), "find": set()})
        entry["whole"] |= bool(v.get("whole"))
        entry["lines"] = max(entry["lines"], v["lines"])
        kind = "prompt" if v["via"] == "prompt" else "read" if v["via"] == "read_file" else "find"
        entry[kind].update((a, b) for a, b in v["ranges"])
    lines = ["shown to the model:"] if by_path else []
    for path, e in by_path.items():
        parts = ["whole"] if e["whole"] else []
        if e["prompt"] and not e["whole"]:
            parts.append(_ranges(e["prompt"]) + " (windows)")
        if e["read"]:
            parts.append("read " + _ranges(e["read"]))
        if e["find"]:
            parts.append("found at " + _ranges(e["find"]))
        lines.append(f"  {path} ({e['lines']:,} lines): " + "; ".join(parts))
    return lines


def _ranges(ranges: set[tuple[int, int]]) -> str:
    merged: list[list[int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in merged)


def _plan(plan: dict[str, Any]) -> Panel:
    lines = [escape(plan["summary"]), ""]
    lines += [f"{i}. [bold]{c['action']}[/] {escape(c['path'])}: {escape(c['description'])}"
              for i, c in enumerate(plan["changes"], 1)]
    lines += ["", "tests:"] + [escape(f"  [{t['kind']}] {t['id']}: {t['reason']}")
                               for t in plan["tests"]]
    est = plan["estimate"]
    lines += ["", f"estimate: {est['calls']} calls, ~{est['input_tokens'] + est['output_tokens']:,}"
              f" tokens, {money(est['cost_usd'])}"]
    return Panel("\n".join(lines), title="plan")


def _tests(r: dict[str, Any]) -> Panel:
    summary = re.sub(r"^(failed: |passed )", "", str(r["summary"]))  # said by the word before
    lines = [escape(f"{'PASSED' if r['passed'] else 'FAILED'}: {summary}"),
             escape(f"command: {r['command']} (exit {r['exit_code']}, {seconds(r['seconds'])})")]
    if r.get("sandbox"):
        lines.append(escape(f"sandbox: {r['sandbox']}"))
    lines += _selection(r.get("selection") or {})
    if r.get("timeout"):
        lines.append(escape(f"the {r['timeout']} ran into test_timeout: not judged, no fix paid"))
    for f in r["failures"]:
        last = f["message"].strip().splitlines()[-1][:200] if f["message"].strip() else ""
        lines += [f"[red]✗ {escape(f['id'])}[/]", "    " + escape(last)]
    if r["preexisting_failures"]:
        lines.append(escape("already failing on the base commit: "
                            + ", ".join(r["preexisting_failures"])))
    return Panel("\n".join(lines), title="tests", border_style="green" if r["passed"] else "red")
