"""The plan gate on a terminal: after the panel, a question instead of exit 75.

Each choice is the command a person would otherwise type (`agent approve`, `reject`,
`revise`, `edit`), executed here with its progress shown, after which the gate asks
again if the run comes back to it (a revised or edited plan). Without a terminal on
both stdin and stdout, with --detach or --json, the commands never get here: the run
waits and the process exits 75, as it always has.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from agent_cli.errors import UsageError
from agent_cli.views.common import console, money

if TYPE_CHECKING:
    from agent_cli.durable import Outcome, Run
    from agent_cli.pipeline.artifacts import PlanDraft

Progress = Callable[[bool], AbstractContextManager[Any]]

QUESTION = "[a]pprove [COMMENT] · [r]eject · [e]dit · [f]eedback · [d]etails · [q]uit › "
HELP = ("a: approve (a TEXT: approve with a comment the model is shown) · r: reject · e: edit "
        "the plan in your editor · f: give feedback, plan again · d: the whole plan · q: decide "
        "later")
WORDS = {"a": "a", "approve": "a", "y": "a", "yes": "a", "r": "r", "reject": "r", "n": "r",
         "no": "r", "e": "e", "edit": "e", "f": "f", "feedback": "f", "revise": "f",
         "d": "d", "details": "d", "show": "d", "q": "q", "quit": "q", "later": "q",
         "c": "q", "cancel": "q"}


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def at_plan_gate(outcome: Outcome) -> bool:
    return outcome.status == "waiting" and str(
        (outcome.pending_wait or {}).get("key", "")).startswith("approve_plan")


def at_the_gate(outcome: Outcome, repo: Path, show: Callable[[Outcome], None],
                progress: Progress) -> Outcome | None:
    """While the run waits at the plan gate and a person is at the terminal: show the
    gate, ask, act. Returns the outcome to render, or None when the person left the
    run waiting (told how to come back)."""
    from agent_cli.pipeline import service

    def do(operation: Callable[..., Outcome], **kwargs: Any) -> Outcome:
        with progress(False) as on_event:
            return operation(outcome.run_id, repo=repo, on_event=on_event, **kwargs)

    while at_plan_gate(outcome) and interactive():
        show(outcome)
        run = service.store_for(repo).resolve(outcome.run_id)
        while True:
            choice, text = _ask(QUESTION)
            if choice == "q":
                console().print(f"run {outcome.run_id} waits; come back with: agent approve "
                                f"{outcome.run_id}  (or reject, revise, edit)")
                return None
            if choice == "d":
                render_details(run)
            elif choice == "a":
                render_notes(drift_of(run), on_approve=True)
                outcome = do(service.approve, comment=text or None)
                break
            elif choice == "r":
                reason = text or _ask_line("reason (Enter for none): ")
                outcome = do(service.reject, reason=reason or None)
                break
            elif choice == "f":
                words = text or _ask_line("what should the plan do differently? ")
                if words:
                    outcome = do(service.revise, feedback=words)
                    break
            elif choice == "e":
                draft = edit_plan(run, repo)
                if draft is not None:
                    outcome = do(service.edit, draft=draft)
                    break
    return outcome


def _ask(question: str) -> tuple[str, str]:
    """The person's choice and the text after it; Ctrl-C or Ctrl-D is 'decide later'."""
    while True:
        try:
            line = console().input(Text(question)).strip()
        except (EOFError, KeyboardInterrupt):
            console().print()
            return "q", ""
        word, _, rest = line.partition(" ")
        if word.lower() in WORDS:
            return WORDS[word.lower()], rest.strip()
        console().print(Text(f"not a choice: {line!r}" if line else "", style="yellow"))
        console().print(Text(HELP))


def _ask_line(question: str) -> str:
    try:
        return console().input(Text(question)).strip()
    except (EOFError, KeyboardInterrupt):
        console().print()
        return ""


# -- editing ---------------------------------------------------------------------------


def edit_plan(run: Run, repo: Path) -> PlanDraft | None:
    """Open $VISUAL/$EDITOR on the run's plan as YAML and return the edited plan, checked.
    None: cancelled or unchanged (said so). A bad edit is said, with an offer to edit
    again or cancel on a terminal; without one it is a `BadPlanEdit` (exit 2)."""
    import click

    from agent_cli.pipeline.gate import (
        BadPlanEdit,
        current_plan,
        plan_document,
        plan_gate,
        read_plan_document,
    )

    plan_gate(run)
    plan = current_plan(run)
    if plan is None:
        raise UsageError(f"run {run.id} has no plan to edit")
    where = run.load().get("repo") or {}
    original = text = plan_document(plan, run.id)
    while True:
        try:
            edited = click.edit(text, extension=".yaml", require_save=True)
        except click.ClickException as exc:
            raise UsageError(f"the editor failed: {exc.message}",
                             hint="set VISUAL or EDITOR to an editor that waits (code -w)") from None
        if edited is None or edited.strip() == original.strip():
            console().print("the plan is unchanged: nothing recorded")
            return None
        try:
            draft = read_plan_document(edited, Path(where["path"]), where["base_commit"])
        except BadPlanEdit as exc:
            if not interactive():
                raise
            console().print(Text(f"the edit cannot be used: {exc.message}", style="bold red"))
            choice, _ = _ask("[e]dit again or [q] cancel › ")
            if choice != "e":
                console().print("cancelled: nothing recorded")
                return None
            text = "".join(f"# ERROR: {line}\n" for line in exc.message.splitlines()) + \
                "\n".join(line for line in edited.splitlines()
                          if not line.startswith("# ERROR: ")) + "\n"
            continue
        if draft is None:
            console().print("the plan was emptied: cancelled, nothing recorded")
        return draft


# -- what the panel and the approval add ---------------------------------------------


def drift_of(run: Run) -> list[str]:
    from agent_cli.pipeline.gate import drift

    return drift(run)


def render_notes(notes: list[str], *, on_approve: bool = False) -> None:
    for note in notes:
        console().print(Text(("note before the run goes on: " if on_approve else "note: ") + note,
                             style="yellow"))


def render_details(run: Run) -> None:
    """The whole plan (descriptions and test reasons unabridged), the analysis it
    answers and its estimate: what the panel summarizes."""
    from agent_cli.pipeline.gate import current_plan

    plan = current_plan(run)
    if plan is None:
        return
    out = console()
    analysis = next((r.get("output") or {} for r in run.records()
                     if r.get("key") == "analyze_issue"), {})
    if analysis:
        out.print(Text("the problem: ", style="bold") + Text(analysis.get("problem", "")))
        for item in analysis.get("acceptance_criteria", []):
            out.print(Text(f"  done when: {item}"))
    by = " (yours)" if plan.author == "human" else ""
    out.print(Text(f"plan{by}: ", style="bold") + Text(plan.summary))
    for i, change in enumerate(plan.changes, 1):
        out.print(Text(f"{i}. {change.action} {change.path}", style="bold"))
        out.print(Text(f"   {change.description}"))
    table = Table(box=None, show_header=True, header_style="bold", padding=(0, 2))
    for column in ("test", "kind", "why"):
        table.add_column(column)
    for test in plan.tests:
        table.add_row(Text(test.id), Text(test.kind), Text(test.reason))
    if plan.tests:
        out.print(table)
    est = plan.estimate
    out.print(f"estimate: {est.calls} model call(s), ~{est.input_tokens:,} input and "
              f"~{est.output_tokens:,} output tokens, {money(est.cost_usd)}")
