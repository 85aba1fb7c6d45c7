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
from agent_cli.answers import Answer
from agent_cli.errors import UsageError
from agent_cli.llm import Connection, ModelService, NoApiKey, is_replay, resolve_model
from agent_cli.pipeline.artifacts import Issue, RepoRef
from agent_cli.pipeline.flow import coding_agent
from agent_cli.pipeline.runtime import Runtime, using
from agent_cli.settings import Settings, load_settings
from agent_cli.workspace import testrun
from agent_cli.workspace.sandbox import Confinement, Sandbox
from agent_cli.workspace.worktree import Worktree, head_commit, repo_root

EventSink = Callable[[dict[str, Any]], None]


def read_issue(path: Path) -> Issue:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"issue file not found: {path}",
                         hint="write the issue in a Markdown file and pass its path")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    return parse_issue(text, "issue file", path)


def parse_issue(text: str, kind: str, source: Path | str) -> Issue:
    """An issue from its text; `kind` and `source` name it in errors ("issue file",
    a path; or a JSONL row)."""
    if not text.replace("\x00", "").strip():
        raise UsageError(f"{kind} is empty: {source}",
                         hint="write a title line and what goes wrong into it")
    from agent_cli.search import require_words

    require_words(text, f"{kind} {source}")  # before the analysis is paid for
    path = str(source.resolve()) if isinstance(source, Path) else source
    first = next(line for line in text.splitlines() if line.strip())
    return Issue(title=first.lstrip("# ").strip()[:200], text=text, path=path)


def store_for(repo: Path) -> durable.RunStore:
    root = repo_root(repo)
    _check_agent_dir(root)
    return durable.RunStore(root / ".agent")


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


def solve(issue_path: Path, *, repo: Path, flags: dict[str, Any],
          on_event: EventSink | None = None) -> durable.Outcome:
    root = repo_root(repo)
    checked = check_new_run(read_issue(issue_path), root, flags)
    had_agent_dir = (root / ".agent").exists()
    run = create_run(checked)
    outcome = _execute(run, checked.settings, root, on_event=on_event)
    _discard_if_model_rejected(run, outcome, root, remove_agent_dir=not had_agent_dir)
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
                                "repo": new.ref.model_dump(), "sandbox": new.confinement.record(),
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


def resume(ref: str | None, *, repo: Path, on_event: EventSink | None = None) -> durable.Outcome:
    run = store_for(repo).resolve(ref)
    data = run.load()
    status = run.status(data)
    decided = status == "failed" and not data.get("error")  # e.g. stopped at a wait
    if status in ("succeeded", "rejected") or decided:
        raise UsageError(f"run {run.id} has already {status}; there is nothing to resume",
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
    child = durable.fork(store, parent, from_step, {**given, "feedback": feedback})
    outcome = _execute(child, settings, root, on_event=on_event)
    _discard_if_model_rejected(child, outcome, root, remove_agent_dir=False)
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
                      agent_dir=root / ".agent")
    with using(runtime):
        return durable.execute(run, coding_agent, answer=answer, on_event=on_event)


def _pending(run: durable.Run) -> dict[str, Any]:
    data = run.load()
    if data.get("status") != "waiting" or not data.get("pending_wait"):
        raise UsageError(f"run {run.id} is not waiting for an answer (it is {run.status(data)})",
                         hint=f"see where it stands with: agent inspect {run.id}")
    return data["pending_wait"]


def _valid(answer: dict[str, Any]) -> dict[str, Any]:
    try:
        return Answer.model_validate(answer).model_dump(exclude_none=True)
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
                               *, remove_agent_dir: bool) -> None:
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
    runs_dir = root / ".agent" / "runs"
    if remove_agent_dir and runs_dir.is_dir() and not any(runs_dir.iterdir()):
        shutil.rmtree(root / ".agent", ignore_errors=True)  # nothing else started meanwhile
    error = outcome.error or {}
    raise UsageError(error.get("message", "the run could not start"), hint=error.get("hint"))
