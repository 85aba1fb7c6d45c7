"""The eight stages. Each is a checkpoint: typed inputs in, a typed artifact out.

Steps that touch the worktree first put it in the state their inputs describe
(`materialize`), so a step re-executed after a crash starts from the same files and,
with its model calls served from the journal, ends in the same place.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from agent_cli import durable
from agent_cli.durable.fsio import write_text
from agent_cli.llm.models import is_replay, resolve_model
from agent_cli.llm.pricing import estimate_cost
from agent_cli.pipeline import context as ctx
from agent_cli.pipeline import instructions
from agent_cli.pipeline.artifacts import (
    AnalysisPlan,
    AppliedEdit,
    CodeChanges,
    Estimate,
    ExplorationResult,
    FileEdits,
    FileView,
    Find,
    FixEdits,
    ImplementationPlan,
    Issue,
    PlanDraft,
    PlannedChange,
    PullRequest,
    PullRequestDraft,
    ReadFile,
    RepoRef,
    TestResult,
)
from agent_cli.pipeline.prompts import fingerprint_text, render, template
from agent_cli.pipeline.reader import Reader
from agent_cli.pipeline.runtime import number_setting, rt, run_id, setting, worktree
from agent_cli.workspace.branch import commit_branch, push_and_open_pr
from agent_cli.workspace.edits import Edit, EditOutcome, apply_edits, confine_in_commit
from agent_cli.workspace.errors import EditRejected
from agent_cli.workspace.worktree import Worktree

TOOLS: dict[str, type[BaseModel]] = {
    "submit_analysis": AnalysisPlan,
    "submit_plan": PlanDraft,
    "submit_edits": FileEdits,
    "submit_fix": FixEdits,
    "submit_pr": PullRequestDraft,
    "read_file": ReadFile,  # helpers of write_code and fix_code (pipeline/reader.py)
    "find": Find,
}
EDIT_ROUNDS = 3  # model calls per file (or per fix) when edits do not apply


def _ask(output: type, tool: str, context: list[str], instruction: str,  # type: ignore[no-untyped-def]
         reader: Reader | None = None):
    return rt().models.ask(output, tool=tool, tools=TOOLS, system=template("system"),
                           context=[*_guide(), *context], instruction=instruction,
                           helpers=reader)


def _guide() -> list[str]:
    """The repository's instructions for agents (AGENTS.md, ...), as a context block."""
    runtime = rt()
    if not runtime.base_commit:
        return []
    return instructions.block(instructions.read(runtime.repo, runtime.base_commit))


def _prompt(name: str):  # type: ignore[no-untyped-def]
    """A model stage's prompt fingerprint: its templates and the repository's
    instructions for agents, which every one of its requests shows."""
    return lambda: "\n\0\n".join([fingerprint_text(name), *_guide()])


def _fixed_tokens() -> int:
    """The system prompt, the tools' schemas and the repository's instructions: in
    every request."""
    from agent_cli.llm.service import tool_spec

    specs = json.dumps([tool_spec(name, cls) for name, cls in sorted(TOOLS.items())])
    return ctx.tokens(template("system")) + ctx.tokens(specs) + sum(map(ctx.tokens, _guide()))


def _feedback() -> str:
    text = setting("feedback")
    return f"\nFeedback from the reviewer on an earlier attempt:\n{text}\n" if text else ""


@durable.checkpoint(prompt=_prompt("analyze"), uses_model=True)
def analyze_issue(issue: Issue, repo_context: str) -> AnalysisPlan:
    return _ask(AnalysisPlan, "submit_analysis", [ctx.issue_block(issue)],
                render("analyze", repo_context=repo_context, feedback=_feedback()))


@durable.checkpoint
def explore_codebase(issue: Issue, analysis: AnalysisPlan, repo: RepoRef) -> ExplorationResult:
    from agent_cli.search import index

    def parsed(done: int, total: int) -> None:  # a cold index: files parsed of files
        durable.progress("index_progress", done=done, total=total)

    with index.reporting(parsed):
        return ctx.explore(issue, analysis, repo, top=number_setting("locate_top", 10),
                           budget=number_setting("context_tokens", 30_000))


@durable.checkpoint(prompt=_prompt("plan"), uses_model=True)
def create_plan(issue: Issue, analysis: AnalysisPlan, exploration: ExplorationResult,
                repo: RepoRef) -> ImplementationPlan:
    return _plan(issue, analysis, exploration, repo, "")


@durable.checkpoint(name="create_plan", prompt=lambda: fingerprint_text("plan", "replan"),
                    uses_model=True)
def replan(issue: Issue, analysis: AnalysisPlan, exploration: ExplorationResult,
           repo: RepoRef, previous: ImplementationPlan, words: str) -> ImplementationPlan:
    """create_plan again (`create_plan-2`, ...) after the reviewer sent the plan back
    with `words` (agent revise): the plan they saw and their words are inputs."""
    shown = ctx.plan_block(previous).split("\n", 1)[1].strip()  # without the heading
    return _plan(issue, analysis, exploration, repo, render("replan", plan=shown, words=words))


@durable.checkpoint
def edit_plan(draft: PlanDraft, exploration: ExplorationResult, repo: RepoRef) -> ImplementationPlan:
    """The reviewer's own plan (agent edit), checked as the model's is, estimated anew."""
    refused = _refused_paths(draft, repo)
    if refused:  # validated before it was recorded; a hand-made answer can still say this
        raise EditRejected("the edited plan names paths outside the repository:\n"
                           + "\n".join(refused.values()))
    return ImplementationPlan(summary=draft.summary, changes=draft.changes, tests=draft.tests,
                              estimate=_estimate(draft, exploration), author="human")


def _plan(issue: Issue, analysis: AnalysisPlan, exploration: ExplorationResult, repo: RepoRef,
          revision: str) -> ImplementationPlan:
    from agent_cli.pipeline.testing import warm_baseline

    warm_baseline(exploration, repo)  # the baseline runs while the model plans
    shared = [ctx.issue_block(issue), ctx.exploration_block(exploration)]
    instruction = render("plan", analysis=ctx.analysis_text(analysis),
                         feedback=_feedback() + revision)
    draft: PlanDraft = _ask(PlanDraft, "submit_plan", shared, instruction)
    refused = _refused_paths(draft, repo)
    if refused:  # one repair turn, as for edits that do not apply
        draft = _ask(PlanDraft, "submit_plan", shared, instruction + ctx.path_errors(refused))
        refused = _refused_paths(draft, repo)
    if refused:
        raise EditRejected(
            "the model's plan names paths it may not use (outside the repository, or "
            "too long for a file system), after one repair turn:\n"
            + "\n".join(refused.values()),
            hint=f"replay this step with another model or guidance: agent replay {run_id()} "
            "--from create_plan --model M --feedback TEXT")
    return ImplementationPlan(summary=draft.summary, changes=draft.changes, tests=draft.tests,
                              estimate=_estimate(draft, exploration))


def _refused_paths(draft: PlanDraft, repo: RepoRef) -> dict[str, str]:
    """Each planned path that `confine_in_commit` refuses, with why. Checked before the
    plan is shown to anyone: a path such as `pkg/settings.py` can be a committed symlink
    to a file outside the repository, and looks harmless at the gate."""
    refused = {}
    for change in draft.changes:
        try:
            confine_in_commit(Path(repo.path), repo.base_commit, change.path)
        except EditRejected as exc:
            refused[change.path] = exc.message
    return refused


def _estimate(draft: PlanDraft, exploration: ExplorationResult) -> Estimate:
    """Tokens and dollars for the rest of the run: a call per file, one fix attempt,
    the PR description; each reads the shared context and writes about 2k tokens."""
    calls = len(draft.changes) + 2
    per_call_in = exploration.tokens + 3_000
    input_tokens, output_tokens = calls * per_call_in, calls * 2_000
    model = str(setting("model", "sonnet"))
    prices = setting("prices", {})
    cost = 0.0 if is_replay(model) else estimate_cost(  # a recording costs nothing
        resolve_model(model), input_tokens, output_tokens,
        prices if isinstance(prices, dict) else {})
    return Estimate(input_tokens=input_tokens, output_tokens=output_tokens, calls=calls,
                    cost_usd=cost)


@durable.checkpoint(prompt=_prompt("write"), uses_model=True)
def write_code(issue: Issue, exploration: ExplorationResult, plan: ImplementationPlan,
               repo: RepoRef) -> CodeChanges:
    wt = worktree(repo)
    wt.materialize("")
    focus = {c.path: ctx.write_focus(c, plan, issue, exploration) for c in plan.changes}

    def instruction(change: PlannedChange, errors: str, shown: list[FileView]) -> str:
        content = ctx.file_for_prompt(wt.path, change.path, budget=ctx.FILE_TOKENS,
                                      focus=focus[change.path], call_for=change.path, shown=shown)
        return render("write", path=change.path, action=change.action,
                      change=change.description, content=content, edit_errors=errors,
                      feedback=_feedback())

    # The files claim the prompt first (each call writes one, from its base state: a
    # call may not edit another's file), the exploration context gets what is left.
    largest = max((ctx.tokens(instruction(c, "", [])) for c in plan.changes), default=0)
    head = [ctx.issue_block(issue), ctx.plan_block(plan)]
    shared = [head[0], ctx.exploration_block(
        exploration, ctx.exploration_room(_fixed_tokens(), *head, largest)), head[1]]
    applied: list[AppliedEdit] = []
    notes: list[str] = []
    shown: list[FileView] = []
    for change in plan.changes:
        def ask_for(errors: str, change: PlannedChange = change) -> str:
            return instruction(change, errors, shown)

        outcomes, note, _ = _edit_rounds(wt, FileEdits, "submit_edits", shared, ask_for,
                                      Reader(wt.path, change.path, shown), only=change.path)
        applied += outcomes
        notes += [note] if note else []
    return CodeChanges(diff=wt.diff(), files=wt.changed_files(), edits=applied, notes=notes,
                       shown=shown)


def _edit_rounds(wt: Worktree, output: type, tool: str, shared: list[str], instruction,  # type: ignore[no-untyped-def]
                 reader: Reader, only: str | None = None) -> tuple[list[AppliedEdit], str, BaseModel]:
    """Ask for edits and apply them; an edit that does not apply goes back to the
    model with the error and the nearest matching text, up to EDIT_ROUNDS answers
    (each may follow a few reads). Returns what was applied, the model's note, and
    its last answer."""
    errors, done = "", []
    for _ in range(EDIT_ROUNDS):
        answer = _ask(output, tool, shared, instruction(errors), reader)
        outcomes = [_refuse_other(e, only) or apply_edits(wt.path, [e])[0] for e in answer.edits]
        done += [AppliedEdit(path=o.path, action=o.action, applied=o.applied, how=o.how,
                             error=o.error) for o in outcomes]
        failed = [o for o in outcomes if not o.applied]
        note = getattr(answer, "note", "") or getattr(answer, "explanation", "")
        if not failed:
            return done, note, answer
        errors = ctx.edit_errors(failed)
    return done, note, answer


def _refuse_other(edit: Edit, only: str | None) -> EditOutcome | None:
    if only is None or ctx.same_path(edit.path, only):
        return None
    return EditOutcome(path=edit.path, action=edit.action, applied=False, how="refused",
                       error=f"refused: this call writes {only} only; {edit.path} has its own step")


@durable.checkpoint(prompt=_prompt("fix"), uses_model=True)
def fix_code(issue: Issue, exploration: ExplorationResult, plan: ImplementationPlan,
             changes: CodeChanges, result: TestResult, attempt: int, repo: RepoRef) -> CodeChanges:
    wt = worktree(repo)
    wt.materialize(changes.diff)
    shown: list[FileView] = []

    def instruction(errors: str, record: list[FileView] = shown) -> str:
        files = ctx.files_for_prompt(wt.path, wt.changed_files() or changes.files,
                                     ctx.fix_focus(wt.diff(), result, plan), record)
        return render("fix", attempt=attempt, command=result.command,
                      failures=ctx.failures_text(result), diff=changes.diff or "(no change yet)",
                      files=files, edit_errors=errors, feedback=_feedback())

    head = [ctx.issue_block(issue), ctx.plan_block(plan)]
    room = ctx.exploration_room(_fixed_tokens(), *head, instruction("", []))
    shared = [head[0], ctx.exploration_block(exploration, room), head[1]]
    applied, note, answer = _edit_rounds(wt, FixEdits, "submit_fix", shared, instruction,
                                         Reader(wt.path, "", shown))
    corrected = getattr(answer, "targets", None) if result.missing_targets else None
    return CodeChanges(diff=wt.diff(), files=wt.changed_files(), edits=applied,
                       notes=[*changes.notes, note] if note else changes.notes,
                       targets=corrected or changes.targets, shown=shown)


@durable.checkpoint(prompt=_prompt("pr"), uses_model=True)
def create_pr(issue: Issue, exploration: ExplorationResult, plan: ImplementationPlan,
              changes: CodeChanges, result: TestResult, repo: RepoRef) -> PullRequest:
    draft: PullRequestDraft = _ask(
        PullRequestDraft, "submit_pr",
        [ctx.issue_block(issue), ctx.exploration_block(exploration), ctx.plan_block(plan)],
        render("pr", diff=changes.diff, tests=result.summary))
    wt = worktree(repo)
    wt.materialize(changes.diff)
    made = commit_branch(Path(repo.path), wt, run_id(), draft.commit_message)
    pr_path = durable.current().run.path / "pr.md"  # type: ignore[union-attr]
    write_text(pr_path, f"# {draft.title}\n\n{draft.body}\n")
    pushed = None
    if setting("push", False):
        pushed = push_and_open_pr(Path(repo.path), made.branch, draft.title, pr_path)
    if not setting("keep_worktree", False):
        wt.remove()
    return PullRequest(
        branch=made.branch, commit=made.commit, title=draft.title, body=draft.body,
        files=made.files_changed, pr_path=str(pr_path), pushed=bool(pushed and pushed.pushed),
        url=pushed.pr_url if pushed else None,
        push_commands=pushed.commands if pushed else ctx.push_commands(repo, made.branch,
                                                                       draft.title, pr_path),
        push_skipped=pushed.reason if pushed and not pushed.pushed else None,
    )
