"""The pipeline, as plain Python: eight stages, one human gate, a bounded fix loop."""

from __future__ import annotations

from agent_cli import durable
from agent_cli.answers import Answer, PlanAnswer
from agent_cli.pipeline.artifacts import (
    ImplementationPlan,
    Issue,
    PlanDraft,
    PullRequest,
    RepoRef,
    Stopped,
    TestBaseline,
    TestResult,
)
from agent_cli.pipeline.context import repo_context
from agent_cli.pipeline.runtime import number_setting, setting
from agent_cli.pipeline.stages import (
    analyze_issue,
    create_plan,
    create_pr,
    edit_plan,
    explore_codebase,
    fix_code,
    replan,
    write_code,
)
from agent_cli.pipeline.testing import check_tests, run_tests

AUTO = {"approved": True, "comment": "auto-approved (--auto-approve)"}


@durable.flow
def coding_agent(issue: Issue, repo: RepoRef) -> PullRequest | Stopped:
    analysis = analyze_issue(issue, repo_context(repo))
    exploration = explore_codebase(issue, analysis, repo)
    plan = create_plan(issue, analysis, exploration, repo)
    while True:  # the reviewer may send the plan back (revise) or write their own (edit)
        baseline = check_tests(plan, repo)
        approval = durable.wait("approve_plan", f"Approve this plan? {plan.summary}", PlanAnswer,
                                gate_metadata(plan, baseline),
                                auto=AUTO if setting("auto_approve") else None)
        if approval.feedback:
            plan = replan(issue, analysis, exploration, repo, plan, approval.feedback)
        elif approval.plan:
            plan = edit_plan(PlanDraft.model_validate(approval.plan), exploration, repo)
        else:
            break
    if not approval.approved:
        return Stopped(run_status="rejected", reason=approval.reason or "plan rejected")
    if approval.comment and not setting("auto_approve"):  # the reviewer's words reach the model
        plan = plan.model_copy(update={"review": approval.comment})
    targets = [t.id for t in plan.tests]
    left_out = [f.path for f in baseline.selection.left_out]
    changes = write_code(issue, exploration, plan, repo)
    result = run_tests(changes, targets, repo, 1, left_out)
    attempts, allowed, patience = 0, number_setting("max_attempts", 3), 1
    while not result.passed:
        if result.timeout:  # says nothing about the change: no fix is paid for it
            again = durable.wait("tests_timed_out", timed_out(result), Answer,
                                 {"summary": result.summary, "command": result.command})
            if not again.approved:
                return Stopped(run_status="rejected", diff=changes.diff,
                               reason=again.reason or f"the {result.timeout} timed out")
            patience *= 2
            result = run_tests(changes, targets, repo, patience, left_out)
            continue
        if attempts >= allowed:
            more = durable.wait(
                "tests_failing",
                f"tests still failing after {_attempts(attempts)} — grant more attempts or stop",
                Answer, {"attempts": attempts, "summary": result.summary,
                         "failures": [f.id for f in result.failures][:20]})
            if not more.approved:
                return Stopped(run_status="rejected", diff=changes.diff,
                               reason=more.reason or f"tests still failing after {_attempts(attempts)}")
            allowed += max(1, number_setting("max_attempts", 3))
        attempts += 1
        changes = fix_code(issue, exploration, plan, changes, result, attempts, repo)
        targets = changes.targets or targets
        result = run_tests(changes, targets, repo, patience, left_out)
    if not changes.diff.strip():
        return Stopped(run_status="failed", reason="the tests pass but the change is empty: "
                       "nothing to commit (was the issue already fixed?)")
    return create_pr(issue, exploration, plan, changes, result, repo)


def _attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"


def gate_metadata(plan: ImplementationPlan, baseline: TestBaseline) -> dict[str, object]:
    selection = baseline.selection
    return {
        "summary": plan.summary,
        "files": [{"path": c.path, "action": c.action, "description": c.description}
                  for c in plan.changes],
        "tests": [t.id for t in plan.tests],
        "estimated_cost_usd": plan.estimate.cost_usd,
        "estimated_tokens": plan.estimate.input_tokens + plan.estimate.output_tokens,
        "test_command": selection.command,
        "test_environment": selection.environment,
        "test_selection": [f.path for f in selection.files],
        "test_left_out": [f.path for f in selection.left_out],
        "test_note": selection.note,
        "baseline": baseline.summary,
        **({"author": "human"} if plan.author == "human" else {}),
    }


def timed_out(result: TestResult) -> str:
    what = "the baseline (the selected tests on the base commit)" if result.timeout == \
        "baseline" else "the tests"
    return (f"{what} ran into test_timeout, so they say nothing about the change and no fix "
            f"was attempted. Command: {result.command}. Approve to run them again with twice "
            "the timeout; reject to stop. To narrow them instead, fork from the tests with "
            "agent replay RUN --from run_tests --test-cmd 'COMMAND' (or --test-scope related, "
            "--test-timeout SECONDS).")
