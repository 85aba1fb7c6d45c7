"""The operations behind the commands that execute runs: solve, approve, reject,
resume, replay. Each validates everything it can before writing anything (bad input
is exit 2 with nothing changed on disk), then executes the flow with the services
the stages need.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent_cli import durable
from agent_cli.answers import Answer, PlanAnswer
from agent_cli.durable.store import state as durable_state
from agent_cli.errors import UsageError
from agent_cli.llm import Connection, ModelService, NoApiKey, is_replay, resolve_model
from agent_cli.pipeline.artifacts import Issue, PlanDraft, RepoRef
from agent_cli.pipeline.flow import coding_agent
from agent_cli.pipeline.gate import current_branch, plan_gate
from agent_cli.pipeline.runtime import Runtime, using
from agent_cli.settings import Settings, load_settings
from agent_cli.workspace import testrun
from agent_cli.workspace.sandbox import Confinement, Sandbox
from agent_cli.workspace.worktree import (
    Worktree,
    common_dir,
    ensure_excluded,
    head_commit,
    repo_root,
)

EventSink = Callable[[dict[str, Any]], None]


def read_issue(spec: str | None, *, text: str | None = None, root: Path) -> Issue:
    """The issue from a file, `-`, `--text`, a GitHub URL or `#N` (see issue_source)."""
    from agent_cli import issue_source

    found = issue_source.read(spec, text=text, root=root)
    return Issue(title=found.title, text=found.text, path=found.source)


def parse_issue(text: str, kind: str, source: Path | str) -> Issue:
    """An issue from its text (a batch's file or JSONL row), checked as `solve` checks
    one: at most 1 MB of UTF-8 without NUL bytes, with words to search for. `kind` and
    `source` name it in errors ("issue file", a path; or a JSONL row)."""
    from agent_cli import issue_source

    path = str(source.resolve()) if isinstance(source, Path) else source
    found = issue_source.check_text(text, f"{kind} {source}", path)
    return Issue(title=found.title, text=found.text, path=found.source)


def store_for(repo: Path) -> durable.RunStore:
    root = repo_root(repo)
    _check_agent_dir(root)
    return durable.RunStore(root / ".agent")


def exclude_agent_dir(root: Path) -> Callable[[], None]:
    """Keep `.agent/` out of the user's `git status`: called once the input is known
    good and just before the first byte is written under `.agent/` (a run that then
    fails in its first stage must not leave it showing as untracked). Returns what
    undoes it, for a run discarded as bad input."""
    exclude = common_dir(root) / "info" / "exclude"
    before = exclude.read_bytes() if exclude.is_file() else None

    def undo() -> None:
        if before is None:
            exclude.unlink(missing_ok=True)
        else:
            exclude.write_bytes(before)

    try:
        ensure_excluded(root)
    except OSError:
        pass  # a .git we cannot write only means .agent/ shows in git status
    return undo


def _check_agent_dir(root: Path) -> None:
    """`.agent/` is ours. One that the repository ships (tracked, or a symlink) could
    hold planted runs that the commands below would execute."""
    agent_dir = root / ".agent"
    if agent_dir.is_symlink():
        raise UsageError(f"{agent_dir} is a symlink; agent keeps its runs in a real directory",
                         hint=f"remove it with: rm {agent_dir}")
    tracked = subprocess.run(["git", "ls-files", "--", ".agent"], cwd=root,
                             capture_output=True, text=True, check=False).stdout.strip()
    if tracked:
        raise UsageError(f"the repository tracks files under {agent_dir} "
                         f"({tracked.splitlines()[0]}...); agent will not run what it did not write",
                         hint="remove them from the repository: git rm -r --cached .agent")


def _check_run_repo(run: durable.Run, root: Path) -> None:
    recorded = (run.load().get("repo") or {}).get("path")
    if recorded and Path(recorded).resolve() != root.resolve():
        raise UsageError(f"run {run.id} belongs to {recorded}, not to {root}",
                         hint=f"run agent from {recorded}")


def solve(issue_spec: str | None, *, repo: Path, flags: dict[str, Any],
          on_event: EventSink | None = None, text: str | None = None) -> durable.Outcome:
    root = repo_root(repo)
    checked = check_new_run(read_issue(issue_spec, text=text, root=root), root, flags)
    had_agent_dir = (root / ".agent").exists()
    had_reserve = (root / ".agent" / "reserve").exists()
    unexclude = exclude_agent_dir(root)
    run = create_run(checked)
    outcome = _execute(run, checked.settings, root, on_event=on_event)
    _discard_if_model_rejected(run, outcome, root, remove_agent_dir=not had_agent_dir,
                               had_reserve=had_reserve, unexclude=unexclude)
    return outcome


@dataclass
class NewRun:
    """A run checked and ready to be created (nothing written yet)."""

    issue: Issue
    root: Path
    settings: Settings
    ref: RepoRef
    confinement: Confinement


def check_new_run(issue: Issue, root: Path, flags: dict[str, Any],
                  base_commit: str | None = None) -> NewRun:
    """Everything `solve` checks before it writes: settings, key, budget, sandbox, and
    that the tests can be run at the base commit (HEAD unless given)."""
    settings = load_settings(root, flags)
    _check_can_call(settings, settings.model)
    _check_budget_enforceable(settings, settings.model)
    confinement = _confinement(settings.for_run())
    ref = RepoRef(path=str(root), base_commit=base_commit or head_commit(root))
    if not settings.test_cmd and testrun.detect_test_command_at(root, ref.base_commit) is None:
        at = "its last commit" if base_commit is None else f"commit {base_commit[:12]}"
        raise UsageError(f"cannot tell how to run the tests of {root} at {at}",
                         hint="pass --test-cmd 'COMMAND' or set test_cmd in .agentrc")
    return NewRun(issue, root, settings, ref, confinement)


def create_run(new: NewRun, meta: dict[str, Any] | None = None,
               executes_in: Path | None = None) -> durable.Run:
    """The run directory of a checked run, not yet executed (status `created`).
    `executes_in`: the clone the run will execute in, when not the checkout (a Ray
    worker's; its path is part of every step's inputs)."""
    ref = new.ref if executes_in is None else RepoRef(path=str(executes_in),
                                                      base_commit=new.ref.base_commit)
    return durable.create(store_for(new.root), coding_agent,
                          {"issue": new.issue, "repo": ref},
                          settings=new.settings.for_run(),
                          meta={"issue": {"title": new.issue.title, "path": new.issue.path},
                                "repo": {**new.ref.model_dump(), "branch": current_branch(new.root)},
                                "sandbox": new.confinement.record(),
                                "repo_settings": new.settings.from_repository(), **(meta or {})})


def approve(ref: str | None, *, repo: Path, comment: str | None = None,
            budget: float | None = None, on_event: EventSink | None = None) -> durable.Outcome:
    run = store_for(repo).resolve(ref, waiting=True)
    pending = _pending(run)
    if pending["key"].startswith("budget") and not budget:
        raise UsageError(f"run {run.id} stopped at its budget: say how much more it may spend",
                         hint=f"agent approve {run.id} --budget USD")
    answer = {"approved": True, "comment": comment, "budget": budget}
    return _continue(run, repo, _valid({k: v for k, v in answer.items() if v is not None}),
                     on_event)


def reject(ref: str | None, *, repo: Path, reason: str | None = None,
           on_event: EventSink | None = None) -> durable.Outcome:
    run = store_for(repo).resolve(ref, waiting=True)
    _pending(run)
    answer = {"approved": False, **({"reason": reason} if reason else {})}
    return _continue(run, repo, _valid(answer), on_event)


def revise(ref: str | None, *, repo: Path, feedback: str,
           on_event: EventSink | None = None) -> durable.Outcome:
    """Send the plan back with `feedback`: create_plan runs again with the words as an
    input, and the run waits at the gate with the new plan."""
    run = store_for(repo).resolve(ref, waiting=True)
    plan_gate(run)
    if not feedback.strip():
        raise UsageError("the feedback is empty: say what the plan should do differently",
                         hint=f'agent revise {run.id} "FEEDBACK"')
    return _continue(run, repo, _valid({"approved": False, "feedback": feedback}, PlanAnswer),
                     on_event)


def edit(ref: str | None, *, repo: Path, draft: PlanDraft,
         on_event: EventSink | None = None) -> durable.Outcome:
    """Record `draft` (checked with `gate.read_plan_document`) as the reviewer's plan;
    the run checks the tests against it and waits at the gate again."""
    run = store_for(repo).resolve(ref, waiting=True)
    plan_gate(run)
    answer = {"approved": False, "plan": draft.model_dump(mode="json")}
    return _continue(run, repo, _valid(answer, PlanAnswer), on_event)


def resume(ref: str | None, *, repo: Path, on_event: EventSink | None = None) -> durable.Outcome:
    run = store_for(repo).resolve(ref)
    data = run.load()
    status = run.status(data)
    decided = status == "failed" and not data.get("error")  # e.g. stopped at a wait
    if status in ("succeeded", "rejected") or decided:
        already = durable_state(status).replace("has ", "has already ", 1).replace(
            "was ", "was already ", 1)  # "has already succeeded", "was already rejected"
        raise UsageError(f"run {run.id} {already}; there is nothing to resume",
                         hint=f"fork it from a stage with: agent replay {run.id} --from STEP")
    if status == "waiting":
        raise UsageError(f"run {run.id} is waiting for an answer, not interrupted",
                         hint=f"agent approve {run.id}   or   agent reject {run.id}")
    return _continue(run, repo, None, on_event)


# What `agent replay` may change for the forked steps (besides --feedback).
REPLAY_OVERRIDES = ("model", "max_attempts", "test_cmd", "test_timeout", "test_scope")


def replay(ref: str | None, *, repo: Path, from_step: str, feedback: str | None = None,
           on_event: EventSink | None = None, **overrides: Any) -> durable.Outcome:
    """Fork RUN from `from_step` with `overrides` (keys of REPLAY_OVERRIDES; None: as
    recorded) and `feedback` for the model."""
    root = repo_root(repo)
    store = store_for(root)
    parent = store.resolve(ref)
    _check_run_repo(parent, root)
    settings = load_settings(root, {})
    data = parent.load()
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(given) - set(REPLAY_OVERRIDES)
    if unknown:
        raise UsageError(f"replay cannot change {', '.join(sorted(unknown))}")
    if given.get("max_attempts", 0) < 0:
        raise UsageError("--max-attempts must be 0 or more")
    try:
        recorded = Settings.model_validate({**(data.get("settings") or {}), **given})
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise UsageError(f"bad value for --{str(problem['loc'][0]).replace('_', '-')}: "
                         f"{problem['msg']}") from None
    _check_can_call(settings, recorded.model)
    if "model" in given:
        _check_budget_enforceable(recorded, recorded.model)
    _confinement(data.get("settings") or {})
    had_reserve = (root / ".agent" / "reserve").exists()
    unexclude = exclude_agent_dir(root)
    child = durable.fork(store, parent, from_step, {**given, "feedback": feedback})
    outcome = _execute(child, settings, root, on_event=on_event)
    _discard_if_model_rejected(child, outcome, root, remove_agent_dir=False,
                               had_reserve=had_reserve, unexclude=unexclude)
    return outcome


# -- internals -----------------------------------------------------------------


def _continue(run: durable.Run, repo: Path, answer: dict[str, Any] | None,
              on_event: EventSink | None) -> durable.Outcome:
    root = repo_root(repo)
    _check_run_repo(run, root)
    settings = load_settings(root, {})
    recorded = run.load().get("settings") or {}
    _check_can_call(settings, recorded.get("model") or "sonnet")
    _confinement(recorded)
    return _execute(run, settings, root, answer=answer, on_event=on_event)


def _execute(run: durable.Run, settings: Settings, root: Path, *,
             answer: dict[str, Any] | None = None,
             on_event: EventSink | None = None) -> durable.Outcome:
    conn = Connection(
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        base_url=settings.base_url, timeout=settings.request_timeout,
        max_retries=settings.max_retries)
    runtime = Runtime(models=ModelService(conn, root / ".agent" / "runs"), repo=root,
                      agent_dir=root / ".agent",
                      base_commit=(run.load().get("repo") or {}).get("base_commit"))
    with using(runtime):
        outcome = durable.execute(run, coding_agent, answer=answer, on_event=on_event)
    if outcome.status == "rejected":
        _drop_worktree(run, root)
    return outcome


def _drop_worktree(run: durable.Run, root: Path) -> None:
    """A rejected run is over (resume refuses it; replay makes a new run with its own
    worktree), so nothing can use its worktree again: remove it. Its last diff stays
    in the run's records (`agent diff RUN`)."""
    path = root / ".agent" / "worktrees" / run.id
    if path.exists():
        Worktree(repo=root, path=path, base_commit="").remove()


def _pending(run: durable.Run) -> dict[str, Any]:
    data = run.load()
    if data.get("status") != "waiting" or not data.get("pending_wait"):
        raise UsageError(f"run {run.id} is not waiting for an answer: it "
                         f"{durable_state(run.status(data))}",
                         hint=f"see where it stands with: agent inspect {run.id}")
    return data["pending_wait"]


def _valid(answer: dict[str, Any], schema: type[Answer] = Answer) -> dict[str, Any]:
    try:
        return schema.model_validate(answer).model_dump(exclude_none=True)
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise UsageError(f"bad answer: --{problem['loc'][0]} {problem['msg'].lower()}") from None


def _check_budget_enforceable(settings: Settings, model: str) -> None:
    """--max-cost means nothing for a model whose calls cannot be priced."""
    if settings.max_cost is None or is_replay(model):
        return
    from agent_cli.llm.pricing import price_call

    overrides = {k: v.model_dump() for k, v in settings.prices.items()}
    if price_call(resolve_model(model), {"input": 1, "output": 1}, overrides)[0] is None:
        raise UsageError(
            f"--max-cost cannot be enforced: the price of {resolve_model(model)} is unknown",
            hint=f"give it in your user .agentrc: prices: {{{model}: {{input: USD_PER_MTOK, "
            "output: USD_PER_MTOK}}", )


def _confinement(recorded: dict[str, Any]) -> Confinement:
    """What will confine the run's tests; `sandbox: required` without a working
    bubblewrap is refused here, before anything is written (exit 2)."""
    return Sandbox.from_settings(recorded).confinement()


def _check_can_call(settings: Settings, model: str) -> None:
    if is_replay(model) or settings.api_key:
        return
    raise NoApiKey(
        f"no API key for model {resolve_model(model)}",
        hint="set ANTHROPIC_API_KEY (or AGENT_API_KEY, or api_key in .agentrc); "
        "for a local Anthropic-compatible server also set ANTHROPIC_BASE_URL")


def _discard_if_model_rejected(run: durable.Run, outcome: durable.Outcome, root: Path,
                               *, remove_agent_dir: bool, had_reserve: bool,
                               unexclude: Callable[[], None]) -> None:
    """A model id the service does not know is bad input: undo the run, exit 2."""
    if outcome.status != "failed" or (outcome.error or {}).get("type") != "ModelRejected":
        return
    from agent_cli.pipeline.reports import calls

    if any(c.get("status") == "ok" and not c.get("served_from") for c in calls(run)):
        return  # something was paid for in this run: keep it, it is resumable
    path = root / ".agent" / "worktrees" / run.id
    if path.exists():
        Worktree(repo=root, path=path, base_commit="").remove()
    shutil.rmtree(run.path, ignore_errors=True)
    if not had_reserve:  # bad input changes nothing: the disk reserve goes with the run
        (root / ".agent" / "reserve").unlink(missing_ok=True)
    runs_dir = root / ".agent" / "runs"
    if remove_agent_dir and runs_dir.is_dir() and not any(runs_dir.iterdir()):
        shutil.rmtree(root / ".agent", ignore_errors=True)  # nothing else started meanwhile
        unexclude()
    error = outcome.error or {}
    raise UsageError(error.get("message", "the run could not start"), hint=error.get("hint"))
