"""`agent show`: a run's conversation as a person reads it, and the answers rendered as
`inspect --step` renders the artifacts made from them.

Per model call: a header (step, model, tokens, dollars, latency, retries, served
from where), what the model was shown (each block cut to its headings unless
`--full`), and its answer: an analysis as text, a plan as a table, edits as coloured
diffs, a fix's explanation, the pull-request text, a helper call as one line.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from agent_cli.views.common import console, money, seconds, tokens

HEADINGS = 12  # collapsed: at most this many heading lines per block


def render_transcript(t: dict[str, Any], full: bool = False) -> None:
    out = console()
    out.print(escape(f"run {t['run_id']} — {t['issue']} — {len(t['calls'])} model call(s)"))
    parent = t.get("parent") or {}
    if parent.get("run_id"):
        out.print(escape(f"replayed from {parent['run_id']} at {parent.get('from_step')}: the "
                         f"calls of the steps before it are in: agent show {parent['run_id']}"))
    step = None
    for call in t["calls"]:
        if call["step"] != step:
            step = call["step"]
            out.print(Rule(escape(str(step)), align="left", style="bold"))
        out.print(Text(_header(call), style="bold"))
        if call["shown"] is None:
            out.print(Text("  shown: (the request is not recorded: a bundled recording)",
                           style="dim"))
        else:
            out.print(_shown(call["shown"], full))
        if call["status"] != "ok":
            error = call.get("error") or {}
            out.print(Text(f"  failed: {error.get('type', '')}: {error.get('message', '')}",
                           style="red"))
            continue
        out.print(Text("  answer:", style="bold"))
        for block in call["answer"]:
            out.print(answer_block(block))
        out.print()


def _header(call: dict[str, Any]) -> str:
    u = call["usage"]
    parts = [f"#{call['number']} {call['step']} call {call['call_index']}", call["model"] or "",
             f"{tokens(u.get('input'))} in, {tokens(u.get('output'))} out"
             + (f", cache read {tokens(u.get('cache_read'))}" if u.get("cache_read") else "")
             + (f", cache write {tokens(u.get('cache_write'))}" if u.get("cache_write") else ""),
             money(call["cost_usd"]), seconds(call["latency_s"])]
    if call["retries"]:
        parts.append(f"{call['retries']} retr{'y' if call['retries'] == 1 else 'ies'}")
    if call["served_from"]:
        parts.append(f"served from {call['served_from']}")
    return " · ".join(p for p in parts if p)


def _shown(shown: dict[str, Any], full: bool) -> RenderableType:
    rows: list[RenderableType] = []
    if shown["system"] is not None:
        rows.append(_text_block("system prompt", shown["system"], full))
        forced = f" (must call {shown['forced']})" if shown["forced"] else ""
        rows.append(Text(f"  tools: {', '.join(shown['tools'])}{forced}", style="dim"))
    else:
        rows.append(Text(f"  (the {shown['earlier_messages']} earlier message(s) of this "
                         "conversation, then:)", style="dim"))
    for block in shown["blocks"]:
        if block["type"] == "tool_result":
            label = "tool result (error)" if block["is_error"] else "tool result"
            rows.append(_text_block(label, block["text"], full))
        else:
            rows.append(_text_block("", block["text"], full))
    return Group(*rows)


def _text_block(label: str, text: str, full: bool) -> RenderableType:
    lines = text.splitlines()
    size = f"{len(lines):,} line(s), ~{tokens(len(text) // 4)} tokens"
    if full:
        head = Text(f"  ┌ {label + ': ' if label else ''}{size}", style="dim")
        return Group(head, Text("\n".join("  │ " + ln for ln in lines)))
    first = lines[0] if lines else ""
    headings = [first, *(ln for ln in headings_of(lines[1:]) if ln != first)]
    shown = [ln[:100] + ("…" if len(ln) > 100 else "") for ln in headings[:HEADINGS]]
    more = f" (+{len(headings) - HEADINGS} more headings)" if len(headings) > HEADINGS else ""
    body = Text(f"  ▸ {label + ': ' if label else ''}", style="dim")
    body.append(shown[0] if shown else "(empty)")
    body.append(f"  [{size}]{more}", style="dim")
    rest = [Text("      " + ln) for ln in shown[1:]]
    return Group(body, *rest)


def headings_of(lines: list[str]) -> list[str]:
    """Markdown headings outside fenced code (where `# ...` is a comment)."""
    found, fenced = [], False
    for ln in lines:
        if ln.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,4} \S", ln):
            found.append(ln)
    return found


def answer_block(block: dict[str, Any]) -> RenderableType:
    """One block of a model's answer, rendered for its tool."""
    if block.get("type") == "text":
        return Text("  " + block.get("text", "").strip().replace("\n", "\n  "))
    if block.get("type") != "tool_use":
        return Text(f"  ({block.get('type')} block)", style="dim")
    name, data = block.get("name"), block.get("input") or {}
    render = _ANSWERS.get(str(name))
    if render is None:
        args = ", ".join(f"{k}={v!r}" for k, v in data.items())
        return Text(f"  → {name}({args})", style="cyan")
    try:
        return render(data)
    except (KeyError, TypeError, AttributeError):  # an answer that did not validate
        import json

        return Group(Text(f"  {name} (did not match its schema):", style="yellow"),
                     Text(json.dumps(data, indent=2)))


def analysis(a: dict[str, Any]) -> RenderableType:
    parts: list[RenderableType] = [Text.assemble(("  problem: ", "bold"), a["problem"])]
    for key, title in (("symptoms", "symptoms"), ("suspected_areas", "suspected areas"),
                       ("search_terms", "search terms"),
                       ("acceptance_criteria", "acceptance criteria")):
        items = a.get(key) or []
        parts.append(Text(f"  {title}:", style="bold"))
        parts += [Text(f"    - {item}") for item in items] or [Text("    (none)")]
    return Group(*parts)


def plan(p: dict[str, Any]) -> RenderableType:
    table = Table(box=None, padding=(0, 1), show_header=True, header_style="bold")
    for col in ("#", "action", "file", "change"):
        table.add_column(col, overflow="fold")
    for i, c in enumerate(p["changes"], 1):
        table.add_row(str(i), c["action"], escape(c["path"]), escape(c["description"]))
    tests = [Text(f"    [{t['kind']}] {t['id']}: {t['reason']}") for t in p.get("tests") or []]
    return Group(Text.assemble(("  summary: ", "bold"), p["summary"]), Padding(table, (0, 0, 0, 2)),
                 Text("  tests:", style="bold"), *(tests or [Text("    (none)")]))


def edits(e: dict[str, Any]) -> RenderableType:
    parts: list[RenderableType] = [edit_diff(x) for x in e["edits"]]
    if e.get("note"):
        parts.append(Text.assemble(("  note: ", "bold"), e["note"]))
    return Group(*parts)


def fix(f: dict[str, Any]) -> RenderableType:
    parts: list[RenderableType] = [Text.assemble(("  explanation: ", "bold"), f["explanation"])]
    parts += [edit_diff(x) for x in f["edits"]]
    if f.get("targets"):
        parts.append(Text("  corrected targets: " + ", ".join(f["targets"])))
    return Group(*parts)


def edit_diff(edit: dict[str, Any]) -> Text:
    """One proposed edit as a coloured unified diff of its own text."""
    path, action = edit.get("path", "?"), edit.get("action", "?")
    if action == "delete":
        return Text(f"  delete {path}", style="red")
    old = "" if action == "create" else edit.get("old") or ""
    new = edit.get("content") if action == "create" else edit.get("new")
    lines = difflib.unified_diff(old.splitlines(), (new or "").splitlines(),
                                 f"a/{path}", f"b/{path}", lineterm="", n=3)
    text = Text()
    text.append(f"  {action} {path}\n", style="bold")
    for ln in lines:
        style = ("green" if ln.startswith("+") and not ln.startswith("+++") else
                 "red" if ln.startswith("-") and not ln.startswith("---") else
                 "cyan" if ln.startswith("@@") else "dim")
        text.append("    " + ln + "\n", style=style)
    return text


def pull_request(pr: dict[str, Any]) -> RenderableType:
    return Group(Text.assemble(("  title: ", "bold"), pr["title"]),
                 Text("  commit message:", style="bold"),
                 Text("    " + pr["commit_message"].strip().replace("\n", "\n    ")),
                 Text("  description:", style="bold"),
                 Text("    " + pr["body"].strip().replace("\n", "\n    ")))


def _helper(name: str) -> Any:
    def call(data: dict[str, Any]) -> Text:
        where = (f"{data['path']}:{data['start_line']}-{data['end_line']}" if name == "read_file"
                 else f"{data['text']!r} in {data['path']}")
        return Text(f"  → {name} {where}", style="cyan")
    return call


_ANSWERS = {"submit_analysis": analysis, "submit_plan": plan, "submit_edits": edits,
            "submit_fix": fix, "submit_pr": pull_request, "read_file": _helper("read_file"),
            "find": _helper("find")}
