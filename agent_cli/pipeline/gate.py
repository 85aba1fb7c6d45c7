"""The plan gate, beyond yes and no: the plan as a document a person edits, checked
before anything is recorded, and what changed around a run while it waited.

An edited plan goes back into the run as the answer to the gate (`PlanAnswer.plan`);
the flow turns it into the `edit_plan` step, whose output is write_code's input, so
the fingerprints say the human's plan is the one the code was written from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agent_cli import durable
from agent_cli.errors import UsageError
from agent_cli.pipeline.artifacts import ImplementationPlan, PlanDraft
from agent_cli.workspace._git import run_git
from agent_cli.workspace.edits import confine_in_commit
from agent_cli.workspace.errors import EditRejected

PLAN_STEPS = ("create_plan", "edit_plan")


class BadPlanEdit(UsageError):
    """An edited plan that cannot be recorded: what is wrong, line by line."""


def plan_gate(run: durable.Run) -> dict[str, Any]:
    """The run's pending wait, which must be the plan gate."""
    data = run.load()
    pending = data.get("pending_wait") if data.get("status") == "waiting" else None
    if not pending:
        raise UsageError(f"run {run.id} is not waiting for an answer (it is {run.status(data)})",
                         hint=f"see where it stands with: agent inspect {run.id}")
    if not str(pending.get("key", "")).startswith("approve_plan"):
        raise UsageError(f"run {run.id} is not at the plan gate: it waits at {pending['key']}",
                         hint=f"answer it with: agent approve {run.id}   or: agent reject {run.id}")
    return pending


def current_plan(run: durable.Run) -> ImplementationPlan | None:
    """The latest plan the run made (or was given), before its pending wait if any."""
    pending = run.load().get("pending_wait") or {}
    limit = next((r["seq"] for r in run.records() if r["key"] == pending.get("key")), None)
    plans = [r for r in run.records() if r.get("kind") == "step" and r.get("name") in PLAN_STEPS
             and r.get("status") == "done" and (limit is None or r["seq"] < limit)]
    return ImplementationPlan.model_validate(plans[-1]["output"]) if plans else None


# -- the plan as a document ------------------------------------------------------------

HEADER = """\
# The plan of run {run_id}. Edit it, save and close the editor: it becomes the run's
# plan (yours, not the model's), the tests are checked again and the gate asks again.
# To cancel, close without saving, or delete everything.
#
# summary   what the change does and why it fixes the issue
# changes   the files, in the order to change them; action: modify, create or delete
# tests     tests that prove the fix (pytest node ids or test files); kind: existing or new
"""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                   style="|" if "\n" in value.strip() else None)


_Dumper.add_representer(str, _str)


def plan_document(plan: ImplementationPlan, run_id: str) -> str:
    """The plan as YAML a person can edit: the fields of `PlanDraft`, nothing else."""
    draft = PlanDraft(summary=plan.summary, changes=plan.changes, tests=plan.tests)
    body = yaml.dump(draft.model_dump(mode="json"), Dumper=_Dumper, sort_keys=False,
                     allow_unicode=True, width=88, default_flow_style=False)
    return HEADER.format(run_id=run_id) + "\n" + body


def read_plan_document(text: str, repo: Path, base_commit: str) -> PlanDraft | None:
    """The edited document as a plan, or None when it was emptied (cancel). Raises
    `BadPlanEdit` listing every problem found."""
    if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise BadPlanEdit(f"the edited plan is not valid YAML{where}: "
                          f"{getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise BadPlanEdit("the edited plan must be a mapping with summary, changes and tests")
    try:
        draft = PlanDraft.model_validate(data)
    except ValidationError as exc:
        raise BadPlanEdit("the edited plan does not fit:\n" + "\n".join(
            f"  {_where(e['loc'])}: {e['msg']}" for e in exc.errors())) from None
    problems = [p for i, c in enumerate(draft.changes)
                if (p := _path_problem(repo, base_commit, i, c.path, c.action))]
    if problems:
        raise BadPlanEdit("the edited plan does not fit:\n" + "\n".join(problems))
    return draft


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the plan"


def _path_problem(repo: Path, commit: str, i: int, path: str, action: str) -> str | None:
    where = f"  changes[{i + 1}].path"
    try:
        confine_in_commit(repo, commit, path)
    except EditRejected as exc:
        return f"{where}: {exc.message}"
    exists = run_git(repo, "cat-file", "-e", f"{commit}:{path}", check=False).returncode == 0
    if action in ("modify", "delete") and not exists:
        return f"{where}: {path} does not exist at the base commit {commit[:12]} (action {action})"
    if action == "create" and exists:
        return f"{where}: {path} already exists at the base commit (use action modify)"
    return None


# -- what moved while the run waited -------------------------------------------------


def current_branch(root: Path) -> str | None:
    """The branch checked out in `root` (None when HEAD is detached)."""
    out = run_git(root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    return out.stdout.decode().strip() or None if out.returncode == 0 else None


def drift(run: durable.Run) -> list[str]:
    """What the person at the gate should know about their checkout: uncommitted changes
    to a file the plan changes, and a base branch that moved on since the run started."""
    data = run.load()
    repo = data.get("repo") or {}
    root, base = Path(repo.get("path") or "."), str(repo.get("base_commit") or "")
    if not base or not root.is_dir():
        return []
    notes = []
    plan = current_plan(run)
    paths = [c.path for c in plan.changes] if plan else []
    if paths:
        out = run_git(root, "--literal-pathspecs", "status", "--porcelain", "-z",
                      "--untracked-files=all", "--", *paths, check=False).stdout
        dirty = sorted({entry[3:].decode("utf-8", "replace") for entry in out.split(b"\0")
                        if len(entry) > 3 and entry[2:3] == b" "})
        if dirty:
            notes.append(f"uncommitted changes in your checkout to {', '.join(dirty)}, which the "
                         f"plan changes: the run writes from its base commit {base[:12]} in its "
                         "own worktree and leaves them alone; its branch may conflict with them")
    branch = repo.get("branch")
    ref = f"refs/heads/{branch}" if branch else "HEAD"
    now = run_git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}",
                  check=False).stdout.decode().strip()
    if now and now != base:
        ahead = run_git(root, "rev-list", "--count", f"{base}..{now}",
                        check=False).stdout.decode().strip() or "?"
        notes.append(f"{branch or 'HEAD'} moved while the run waited ({ahead} new commit(s), "
                     f"now {now[:12]}): the run still uses its base commit {base[:12]}; "
                     f"start a new run to build on {branch or 'HEAD'} as it is now")
    return notes
