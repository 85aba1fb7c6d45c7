"""How an execution ended, for people: the gate panel, the result, what to run next."""

from __future__ import annotations

import shlex
from typing import Any

from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agent_cli.views.common import console, money


def render_outcome(run_id: str, status: str, reason: str | None, data: dict[str, Any],
                   spent: float | None, sandbox: str | None, *, unpriced: bool = False,
                   notes: list[str] | None = None) -> None:
    """`unpriced`: a call of the run had no known price, so `spent` is a lower bound
    (shown "unknown" when it is all there is, as `agent cost` shows it). `notes`: what
    changed around a waiting run (pipeline/gate.py `drift`)."""
    out = console()
    pending = data.get("pending_wait") or {}
    shown = money(None if unpriced and not spent else spent, unpriced)
    if status == "waiting":
        out.print(_gate(run_id, pending, shown, sandbox, data.get("repo_settings") or {},
                        notes or []))
        return
    if sandbox and sandbox.startswith("UNCONFINED") and status != "rejected":
        out.print(f"[bold yellow]tests ran {escape(sandbox)}[/]")
    cost = f" — spent {shown}" if spent is not None else ""
    if status == "succeeded":
        result = data.get("result") or {}
        skipped = result.get("push_skipped")
        head = (f"[bold green]run {run_id} succeeded[/]{cost}" if not skipped else
                f"[bold yellow]run {run_id} committed its branch but did not push it[/]{cost}")
        lines = [head,
                 f"branch [bold]{result.get('branch')}[/] at {str(result.get('commit'))[:12]}: "
                 f"{escape(str(result.get('title')))}",
                 f"pull-request description: {result.get('pr_path')}"]
        if skipped:
            lines.append(f"[bold yellow]push: true, but nothing was pushed and no pull request "
                         f"was opened:[/] {escape(str(skipped))}")
        if result.get("url"):
            lines.append(f"pull request: {result['url']}")
        elif result.get("push_commands"):
            lines.append("to push and open a pull request" + (" yourself" if skipped else "") + ":")
        out.print("\n".join(lines))
        if not result.get("url"):
            # Unwrapped and unstyled: a command wrapped at the terminal's width breaks
            # when pasted.
            for command in result.get("push_commands") or []:
                out.print(f"  {command}", markup=False, highlight=False, soft_wrap=True)
        out.print(f"next: agent inspect {run_id} · agent cost {run_id} · agent diff {run_id}")
    elif status == "rejected":
        out.print(f"run {run_id} rejected: {escape(str(reason))}{cost}")
        result = data.get("result")
        if isinstance(result, dict) and result.get("diff"):  # rejected after the fix attempts
            out.print(f"the last diff is kept: agent diff {run_id}")
        else:
            words = shlex.quote(reason) if reason and reason != "plan rejected" else "TEXT"
            out.print("to plan again with your words (a new run; this one stays as it is):")
            out.print(f"  agent replay {run_id} --from create_plan --feedback {escape(words)}",
                      soft_wrap=True)  # whole, to paste
    elif status == "failed":
        error = data.get("error") or {}
        out.print(f"[bold red]run {run_id} failed[/]: {escape(str(reason))}{cost}")
        if error.get("hint"):
            out.print(escape(error["hint"]))
        if error and error.get("exit_code") != 2:  # an exception, not a decision: resumable
            if "agent resume" not in str(error.get("hint")):
                out.print(f"resume with: agent resume {run_id}")
        else:
            out.print(f"the last diff is kept: agent diff {run_id}")
    elif status == "interrupted":
        out.print(f"run {run_id} interrupted{cost}; resume with: agent resume {run_id}")


def _gate(run_id: str, pending: dict[str, Any], spent: str, sandbox: str | None,
          repo_settings: dict[str, Any], notes: list[str]) -> Panel:
    meta = pending.get("metadata") or {}
    key = pending.get("key", "")
    body = Table.grid(padding=(0, 1))
    if key.startswith("approve_plan"):
        body.add_row(Text(meta.get("summary", ""), style="bold"))  # Text: no markup
        files = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
        files.add_column("action")
        files.add_column("file")
        files.add_column("change")
        for f in meta.get("files", []):
            files.add_row(Text(f["action"]), Text(f["path"]), Text(f["description"]))
        body.add_row(files)
        if meta.get("tests"):
            body.add_row(Text("target tests: " + ", ".join(meta["tests"])))
        est = meta.get("estimated_cost_usd")
        body.add_row(f"estimated cost of the rest of the run: {money(est)} "
                     f"(~{meta.get('estimated_tokens', 0):,} tokens); spent so far: {spent}")
        for line in _test_lines(meta):
            body.add_row(line)
        for line in _trust_lines(sandbox, repo_settings):
            body.add_row(line)
        title = "your plan, ready for approval" if meta.get("author") == "human" else \
            "plan ready for approval"
        approve = f"agent approve {run_id}"
    elif key.startswith("budget"):
        body.add_row(Text(pending.get("question", "")))
        title = "budget reached"
        approve = f"agent approve {run_id} --budget USD"
    else:
        body.add_row(Text(pending.get("question", "")))
        if meta.get("summary"):
            body.add_row(Text(meta["summary"]))
        for f in meta.get("failures", [])[:10]:
            body.add_row(Text(f"  ✗ {f}"))
        title = "waiting for a decision"
        approve = f"agent approve {run_id}"
    if not key.startswith("approve_plan") and sandbox and sandbox.startswith("UNCONFINED"):
        body.add_row(Text(f"tests run {sandbox}", style="bold yellow"))
    for note in notes:
        body.add_row(Text(f"note: {note}", style="yellow"))
    body.add_row("")
    body.add_row(f"approve: [bold]{approve}[/]" + (" [--comment TEXT]" if key.startswith(
        "approve_plan") else ""))
    body.add_row(f"reject:  [bold]agent reject {run_id} --reason TEXT[/]")
    if key.startswith("approve_plan"):
        body.add_row(f"revise:  [bold]agent revise {run_id} FEEDBACK[/]   (plan again)")
        body.add_row(f"edit:    [bold]agent edit {run_id}[/]   (write the plan yourself)")
    return Panel(body, title=f"{title} — run {run_id}", title_align="left")


def _test_lines(meta: dict[str, Any]) -> list[Text]:
    """How the change will be tested: the command, its interpreter, the selection and
    what the base commit already does (runs started before these existed show none)."""
    if not meta.get("test_command"):
        return []
    lines = [Text(f"test command: {meta['test_command']}")]
    if meta.get("test_environment"):
        lines.append(Text(f"  environment: {meta['test_environment']}"))
    selected = meta.get("test_selection") or []
    if selected:
        shown = ", ".join(selected[:4]) + (f" and {len(selected) - 4} more" if len(selected) > 4 else "")
        lines.append(Text(f"  {len(selected)} related test file(s): {shown}"))
    left_out = meta.get("test_left_out") or []
    if left_out:
        lines.append(Text(f"  left out, over related_budget: {', '.join(left_out[:4])}"
                          + (f" and {len(left_out) - 4} more" if len(left_out) > 4 else "")))
    if meta.get("test_note"):
        lines.append(Text(f"  {meta['test_note']}"))
    if meta.get("baseline"):
        lines.append(Text(f"  {meta['baseline']}"))
    return lines


def _trust_lines(sandbox: str | None, repo_settings: dict[str, Any]) -> list[Text]:
    """What the user should weigh before saying yes: where the tests will run, and
    what the repository's own .agentrc asked for."""
    lines = []
    if sandbox:
        unconfined = sandbox.startswith("UNCONFINED")
        lines.append(Text(f"tests will run {sandbox}" if unconfined else f"tests run in {sandbox}",
                          style="bold yellow" if unconfined else ""))
    if repo_settings:
        lines.append(Text("from the repository's .agentrc:"))
        for key, said in repo_settings.items():
            lines.append(Text(f"  {key}: {said.get('value')!r} — {said.get('note')}"))
    return lines
