"""The `agent` command line: parse, call one function, render.

No logic lives here. Library code raises `AgentError`s; `main()` is the one place
that turns them into a message on stderr and an exit code (DESIGN.md: 0 done,
1 failed, 2 usage, 75 waiting, 130 interrupted; README: 74 the disk refused a write). Heavy modules (the anthropic SDK,
the pipeline, the search index) are imported inside the commands that need them,
so `agent --help`, `runs`, `inspect` and `cost` stay fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agent_cli.completion import run_ids, step_names
from agent_cli.errors import AgentError, UsageError

if TYPE_CHECKING:
    from agent_cli.durable import Outcome, RunStore

app = typer.Typer(
    name="agent",
    help="A durable coding agent: issue in, tested branch out. Every stage is a checkpoint.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from agent_cli import __version__

        sys.stdout.write(f"agent {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", "-V", help="Print the version and exit.", is_eager=True,
        callback=_version)] = False) -> None:
    """A durable coding agent: issue in, tested branch out. Every stage is a checkpoint."""

RepoOpt = Annotated[
    Path, typer.Option("--repo", help="The git checkout (default: the current directory).",
                       show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
DetachOpt = Annotated[bool, typer.Option(
    "--detach", help="At the plan gate, do not ask here: exit 75 (as without a terminal).")]
WaitingRunArg = Annotated[
    str | None, typer.Argument(
        help="Run id, or any unique part of it from its start or its end (default: the latest "
        "waiting run).", show_default=False, autocompletion=run_ids)
]
CostRunArg = Annotated[
    str | None, typer.Argument(
        help="Run id, or any unique part of it from its start or its end (default: every run, "
        "by day and model).", show_default=False, autocompletion=run_ids)
]
RunArg = Annotated[
    str | None, typer.Argument(
        help="Run id, or any unique part of it from its start or its end (default: the latest run).",
        show_default=False, autocompletion=run_ids)
]


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _find_repo(path: Path) -> Path:
    """The checkout's top directory, found without running git (read commands are fast)."""
    start = path.resolve()
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    raise UsageError(f"not a git repository: {path}",
                     hint="run agent inside a git checkout, or pass --repo DIR")


def _store(repo: Path) -> RunStore:
    from agent_cli.durable import RunStore

    return RunStore(_find_repo(repo) / ".agent")


def _finish(outcome: Outcome, repo: Path, as_json: bool, detach: bool = False) -> None:
    """Render how an execution ended and exit with its code. At the plan gate with a
    person at the terminal, ask them first (views/gate.py)."""
    from agent_cli.durable import exit_code

    if not (as_json or detach):
        from agent_cli.views.gate import at_the_gate

        asked = at_the_gate(outcome, repo, lambda o: _render(o, repo, False), _progress)
        if asked is None:  # left waiting, and told how to come back
            raise typer.Exit(exit_code(outcome))
        outcome = asked
    _render(outcome, repo, as_json)
    raise typer.Exit(exit_code(outcome))


def _render(outcome: Outcome, repo: Path, as_json: bool) -> None:
    from agent_cli.pipeline import reports

    run = _store(repo).get(outcome.run_id)
    data = {**run.load(), "error": outcome.error} if outcome.error else run.load()
    spent = reports.spent_usd(run)
    unpriced = reports.unpriced(run)
    if as_json:
        result = data.get("result") if isinstance(data.get("result"), dict) else {}
        _print_json({"run_id": outcome.run_id, "status": outcome.status, "reason": outcome.reason,
                     "cost_usd": round(spent, 6), "cost_unknown": unpriced,
                     "branch": (result or {}).get("branch"),
                     "pending_wait": data.get("pending_wait"), "error": data.get("error"),
                     "sandbox": reports.sandbox_detail(run, data),
                     "repo_settings": data.get("repo_settings") or {}})
    else:
        from agent_cli.pipeline.gate import drift
        from agent_cli.views.outcome import render_outcome

        render_outcome(outcome.run_id, outcome.status, outcome.reason, data, spent,
                       reports.sandbox_detail(run, data), unpriced=unpriced,
                       notes=drift(run) if outcome.status == "waiting" else None)


def _progress(as_json: bool) -> Any:
    from agent_cli.views.progress import PlainProgress, progress

    return PlainProgress() if as_json else progress()


# -- commands that execute runs ------------------------------------------------------


@app.command()
def solve(
    issue: Annotated[str | None, typer.Argument(
        help="The issue: a Markdown file, - (stdin), a GitHub issue URL, or '#N' (an issue "
        "of this checkout's GitHub repository; both through gh).", show_default=False)] = None,
    text: Annotated[str | None, typer.Option(
        "--text", help="The issue's text itself, instead of ISSUE.", show_default=False)] = None,
    repo: RepoOpt = Path("."),
    model: Annotated[str | None, typer.Option(help="Model alias (sonnet, opus, haiku) or id.")] = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Skip the plan gate.")] = False,
    max_cost: Annotated[float | None, typer.Option(help="Budget in USD.")] = None,
    max_attempts: Annotated[int | None, typer.Option(help="Fix attempts before asking.")] = None,
    test_cmd: Annotated[str | None, typer.Option(help="Test command (default: detected).")] = None,
    sandbox: Annotated[str | None, typer.Option(
        help="Confine tests with bubblewrap: auto, required or off (default: auto).",
        show_default=False)] = None,
    as_json: JsonOpt = False,
    detach: DetachOpt = False,
) -> None:
    """Start a run on ISSUE; on a terminal, asks at the plan gate; otherwise stops there
    (exit 75) unless auto-approved."""
    from agent_cli.pipeline import service

    flags = {"model": model, "auto_approve": auto_approve or None, "max_cost": max_cost,
             "max_attempts": max_attempts, "test_cmd": test_cmd, "sandbox": sandbox}
    with _progress(as_json) as progress:
        outcome = service.solve(issue, text=text, repo=repo, flags=flags, on_event=progress)
    _finish(outcome, repo, as_json, detach)


@app.command()
def approve(
    run: WaitingRunArg = None,
    repo: RepoOpt = Path("."),
    comment: Annotated[str | None, typer.Option(
        help="At the plan gate: words the model is shown with the plan.")] = None,
    budget: Annotated[float | None, typer.Option(help="USD to add to the run's budget.")] = None,
    as_json: JsonOpt = False,
    detach: DetachOpt = False,
    batch: Annotated[str | None, typer.Option(
        "--batch", help="Review the waiting runs of BATCH one after another.",
        show_default=False)] = None,
    approve_all: Annotated[bool, typer.Option(
        "--all", help="With --batch: approve every waiting run without asking.")] = False,
) -> None:
    """Answer the pending wait with yes and continue the run here."""
    if batch is not None or approve_all:
        return _approve_batch(run, batch, approve_all, repo, comment, budget, as_json)
    from agent_cli.pipeline import service

    if not as_json:
        from agent_cli.views.gate import drift_of, render_notes

        render_notes(drift_of(service.store_for(repo).resolve(run, waiting=True)), on_approve=True)
    with _progress(as_json) as progress:
        outcome = service.approve(run, repo=repo, comment=comment, budget=budget, on_event=progress)
    _finish(outcome, repo, as_json, detach)


@app.command()
def revise(
    run: Annotated[str, typer.Argument(help="Run id, or any unique part of it from its start "
                                       "or its end; alone, the feedback for the latest waiting "
                                       "run.", show_default=False, autocompletion=run_ids)],
    feedback: Annotated[str | None, typer.Argument(
        help="What the plan should do differently.", show_default=False)] = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
    detach: DetachOpt = False,
) -> None:
    """Send the plan back: plan again with FEEDBACK, then wait at the gate again."""
    from agent_cli.pipeline import service

    ref, words = (run, feedback) if feedback is not None else (None, run)
    with _progress(as_json) as progress:
        outcome = service.revise(ref, repo=repo, feedback=words, on_event=progress)
    _finish(outcome, repo, as_json, detach)


@app.command()
def edit(run: WaitingRunArg = None, repo: RepoOpt = Path("."), as_json: JsonOpt = False,
         detach: DetachOpt = False) -> None:
    """Edit the plan in $VISUAL/$EDITOR; it becomes the run's plan and the gate asks again."""
    from agent_cli.pipeline import service
    from agent_cli.views.gate import edit_plan

    found = service.store_for(repo).resolve(run, waiting=True)
    draft = edit_plan(found, repo)
    if draft is None:
        raise UsageError(f"nothing recorded: run {found.id} still waits at its plan gate",
                         hint=f"approve it as it is with: agent approve {found.id}")
    with _progress(as_json) as progress:
        outcome = service.edit(found.id, repo=repo, draft=draft, on_event=progress)
    _finish(outcome, repo, as_json, detach)


@app.command()
def reject(
    run: WaitingRunArg = None,
    repo: RepoOpt = Path("."),
    reason: Annotated[str | None, typer.Option(help="Why, recorded with the answer.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer the pending wait with no; the run ends."""
    from agent_cli.pipeline import service

    with _progress(as_json) as progress:
        outcome = service.reject(run, repo=repo, reason=reason, on_event=progress)
    _finish(outcome, repo, as_json)


@app.command()
def resume(run: RunArg = None, repo: RepoOpt = Path("."), as_json: JsonOpt = False,
           detach: DetachOpt = False) -> None:
    """Continue an interrupted or failed run from where it stopped."""
    from agent_cli.pipeline import service

    with _progress(as_json) as progress:
        outcome = service.resume(run, repo=repo, on_event=progress)
    _finish(outcome, repo, as_json, detach)


@app.command()
def replay(
    run: RunArg = None,
    from_step: Annotated[str, typer.Option(
        "--from", help="The step to run again from.", autocompletion=step_names)] = ...,  # type: ignore[assignment]
    repo: RepoOpt = Path("."),
    model: Annotated[str | None, typer.Option(help="Model for the re-executed steps.")] = None,
    max_attempts: Annotated[int | None, typer.Option(help="Fix attempts for the new run.")] = None,
    feedback: Annotated[str | None, typer.Option(help="Guidance shown to the model.")] = None,
    test_cmd: Annotated[str | None, typer.Option(help="Test command for the new run.")] = None,
    test_timeout: Annotated[float | None, typer.Option(help="Test timeout in seconds.")] = None,
    test_scope: Annotated[str | None, typer.Option(
        help="related or full.", show_default=False)] = None,
    as_json: JsonOpt = False,
    detach: DetachOpt = False,
) -> None:
    """Fork a new run from STEP of RUN; earlier steps are reused at no cost."""
    from agent_cli.pipeline import service

    with _progress(as_json) as progress:
        outcome = service.replay(run, repo=repo, from_step=from_step, feedback=feedback,
                                 on_event=progress, model=model, max_attempts=max_attempts,
                                 test_cmd=test_cmd, test_timeout=test_timeout,
                                 test_scope=test_scope)
    _finish(outcome, repo, as_json, detach)


@app.command()
def batch(
    issues: Annotated[list[Path] | None, typer.Argument(
        help="Markdown files, directories of *.md, or JSONL files of {id, issue, repo?, "
        "base_commit?} rows.", show_default=False)] = None,
    repo: RepoOpt = Path("."),
    workers: Annotated[int | None, typer.Option(
        help="Runs at once (default 2 locally; on Ray, tasks in flight).",
        show_default=False)] = None,
    ray: Annotated[str | None, typer.Option(
        "--ray", show_default=False, metavar="[ADDRESS]",
        help="Run each issue as a Ray task: on a cluster of this machine (--ray alone), "
        "or on the cluster at ADDRESS.")] = None,
    model: Annotated[str | None, typer.Option(help="Model alias (sonnet, opus, haiku) or id.")] = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Skip the plan gates.")] = False,
    max_cost: Annotated[float | None, typer.Option(
        help="One budget in USD for all the runs of the batch.")] = None,
    resume_batch: Annotated[str | None, typer.Option(
        "--resume", help="Continue BATCH after a crash or Ctrl-C.", show_default=False)] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="Show BATCH: each run's status, cost, seconds, branch.",
        show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Solve many issues, each an ordinary durable run, on a local pool or on Ray."""
    from agent_cli.batch import service as batches
    from agent_cli.views.batch import BatchProgress, render_summary

    given = [name for name, value in (("ISSUES", issues), ("--resume", resume_batch),
                                      ("--status", status)) if value]
    if len(given) != 1:
        raise UsageError(f"give one of ISSUES, --resume BATCH or --status BATCH, not "
                         f"{' and '.join(given) or 'none'}",
                         hint="agent batch ISSUES...   agent batch --resume BATCH   "
                         "agent batch --status BATCH")
    if status:
        report = batches.status(status, repo=repo)
    else:
        with BatchProgress() as progress:
            if resume_batch:
                report = _interruptible(lambda: batches.resume(
                    resume_batch, repo=repo, workers=workers, ray=ray, on_progress=progress))
            else:
                flags = {"model": model, "auto_approve": auto_approve or None,
                         "max_cost": max_cost}
                report = _interruptible(lambda: batches.start(
                    issues or [], repo=repo, flags=flags, workers=2 if workers is None else workers,
                    ray=ray, on_progress=progress))
    if as_json:
        _print_json(report)
    else:
        render_summary(report)
    if not status:
        raise typer.Exit(batches.exit_code(report))


def _interruptible(execute: Any) -> Any:
    """A batch stopped by Ctrl-C or SIGTERM: its runs recorded it; say how to go on."""
    try:
        return execute()
    except KeyboardInterrupt as stop:
        batch_id = getattr(stop, "batch_id", None)
        if batch_id:
            _print_error(f"batch {batch_id} interrupted",
                         f"continue with: agent batch --resume {batch_id}")
        raise typer.Exit(128 + int(getattr(stop, "signum", 2))) from None


def _approve_batch(run: str | None, batch: str | None, approve_all: bool, repo: Path,
                   comment: str | None, budget: float | None, as_json: bool) -> None:
    from agent_cli.batch import service as batches
    from agent_cli.views.batch import BatchProgress, ask_review, render_summary

    if run is not None:
        raise UsageError("give a run or --batch, not both")
    if batch is None:
        raise UsageError("--all approves the waiting runs of a batch: give --batch BATCH")
    if not approve_all and not sys.stdin.isatty():
        raise UsageError("approve --batch asks about each run on a terminal",
                         hint=f"approve every waiting run with: agent approve --batch {batch} --all")
    answer = {"approved": True, **({"comment": comment} if comment else {}),
              **({"budget": budget} if budget else {})}

    def decide(entry: dict[str, Any], found: Any) -> dict[str, Any] | None:
        if approve_all:
            key = (found.load().get("pending_wait") or {}).get("key", "")
            return None if key.startswith("budget") and not budget else answer
        return ask_review(entry, found, budget)

    with BatchProgress() as progress:
        report = _interruptible(lambda: batches.approve(batch, repo=repo, decide=decide,
                                                        on_progress=progress))
    if as_json:
        _print_json(report)
    else:
        render_summary(report)
    raise typer.Exit(batches.exit_code(report))


# -- commands that read ----------------------------------------------------------------


@app.command()
def inspect(
    run: RunArg = None,
    repo: RepoOpt = Path("."),
    step: Annotated[str | None, typer.Option(help="Show this step's artifact.",
                                             autocompletion=step_names)] = None,
    as_json: JsonOpt = False,
) -> None:
    """The timeline of a run, or with --step, that step's artifact."""
    from agent_cli.pipeline import reports

    found = _store(repo).resolve(run)
    if step is None:
        timeline = reports.timeline(found)
        if as_json:
            return _print_json(timeline)
        from agent_cli.views.timeline import render_timeline

        return render_timeline(timeline)
    record = reports.step_record(found, step)
    if record is None:
        keys = ", ".join(r["key"] for r in found.records())
        raise UsageError(f"run {found.id} has no step {step!r}", hint=f"its steps: {keys}")
    if as_json:  # the artifact itself; a wait's question and answer
        return _print_json(record.get("output") if record.get("kind") == "step" else
                           {k: v for k, v in record.items() if not k.startswith("_")})
    from agent_cli.pipeline.transcript import answers
    from agent_cli.views.timeline import render_step

    render_step(record, answers(found, record["key"]))


@app.command()
def show(
    run: RunArg = None,
    repo: RepoOpt = Path("."),
    step: Annotated[str | None, typer.Option(help="Only this step's model calls.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Everything the model was shown, "
                                       "not only the headings.")] = False,
) -> None:
    """The conversation of a run: per model call, what the model was shown and what it answered."""
    from agent_cli.pipeline.transcript import transcript
    from agent_cli.views.transcript import render_transcript

    render_transcript(transcript(_store(repo).resolve(run), step), full=full)


@app.command()
def cost(run: CostRunArg = None, repo: RepoOpt = Path("."), as_json: JsonOpt = False,
         batch: Annotated[str | None, typer.Option(
             "--batch", help="Per run of BATCH, and its total.", show_default=False)] = None,
         ) -> None:
    """Tokens and dollars per step and model; without RUN, every run by day and model."""
    from agent_cli.pipeline import reports

    if batch is not None:
        from agent_cli.batch import service as batches

        if run is not None:
            raise UsageError("give a run or --batch, not both")
        data = batches.cost(batch, repo=repo)
        if as_json:
            return _print_json(data)
        from agent_cli.views.batch import render_batch_cost

        return render_batch_cost(data)
    store = _store(repo)
    if run is None:
        data = reports.all_costs(store)
        _warn(store.warnings)
        if as_json:
            return _print_json(data)
        from agent_cli.views.cost import render_all_costs

        return render_all_costs(data)
    data = reports.run_cost(store.resolve(run))
    if as_json:
        return _print_json(data)
    from agent_cli.views.cost import render_run_cost

    render_run_cost(data)


@app.command()
def runs(repo: RepoOpt = Path("."), as_json: JsonOpt = False) -> None:
    """List runs with status, issue, age, cost and branch."""
    from agent_cli.pipeline import reports

    store = _store(repo)
    rows = reports.list_runs(store)
    _warn(store.warnings)
    if as_json:
        return _print_json(rows)
    from agent_cli.views.runs import render_runs

    render_runs(rows)


@app.command()
def diff(run: RunArg = None, repo: RepoOpt = Path(".")) -> None:
    """The code change a run produced."""
    from agent_cli.pipeline import reports

    found = _store(repo).resolve(run)
    text = reports.run_diff(found)
    if text is None:
        raise UsageError(f"run {found.id} has not written any code yet",
                         hint=f"see where it stands with: agent inspect {found.id}")
    from agent_cli.views.runs import render_diff

    render_diff(text)


@app.command()
def clean(
    run: RunArg = None,
    repo: RepoOpt = Path("."),
    finished: Annotated[bool, typer.Option(
        "--finished", help="Every run that succeeded, failed or was rejected.")] = False,
    branches: Annotated[bool, typer.Option(
        "--branches", help="Also delete the agent/<run> branches those runs made (only "
        "where they still point at the run's commit).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove the worktrees of runs that are over; never a waiting or running run's."""
    from agent_cli.pipeline.clean import clean as clean_runs

    report = clean_runs(run, repo=repo, finished=finished, branches=branches)
    if as_json:
        return _print_json(report)
    from agent_cli.views.runs import render_clean

    render_clean(report)


@app.command()
def locate(
    issue: Annotated[Path, typer.Argument(help="The issue, a Markdown file.")],
    repo: RepoOpt = Path("."),
    top: Annotated[int, typer.Option(help="How many files to show.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Rank the files and symbols of a repository for an issue; no model call."""
    from agent_cli.search import locate_issue
    from agent_cli.search.index import reporting
    from agent_cli.views.progress import IndexBar

    with IndexBar() as bar, reporting(bar):
        result = locate_issue(issue, repo=repo, top=top)
    if as_json:
        _print_json(result.model_dump(mode="json"))
    else:
        from agent_cli.views.locate import render_locate

        render_locate(result)


@app.command()
def demo(
    directory: Annotated[Path | None, typer.Argument(
        help="Where to put the sample project (default: a new temporary directory).",
        show_default=False)] = None,
) -> None:
    """Run the whole pipeline on a bundled sample project with a scripted model, offline."""
    from agent_cli.demo.run import run_demo

    raise typer.Exit(run_demo(directory))


def main() -> None:
    # A path or an issue title the terminal's encoding cannot show (PYTHONIOENCODING=
    # ascii, a C locale on an old system) is printed with `?`, not a UnicodeEncodeError.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    _stop_on_signals()
    # Typer handles its own usage errors (exit 2); ours arrive here as AgentErrors.
    try:
        app(args=_ray_address_optional(sys.argv[1:]), prog_name="agent")
    except AgentError as exc:
        _print_error(exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except OSError as exc:  # a write the disk refused outside the run store's writers
        from agent_cli.durable.fsio import storage_error

        if (found := storage_error(exc)) is None:
            raise
        _print_error(found.message, found.hint)
        sys.exit(found.exit_code)
    except SystemExit as exc:
        # Outside a run, click turns an interruption into "Aborted!" and exit 1; a
        # signal's own code tells a supervisor what happened.
        if _signalled and exc.code == 1:
            sys.exit(128 + _signalled[-1])
        raise


def _ray_address_optional(args: list[str]) -> list[str]:
    """`agent batch ... --ray [ADDRESS]`: click has no option with an optional value,
    so a bare --ray (last, or before another option or an issue path) means a
    cluster on this machine."""
    if not args or args[0] != "batch" or "--ray" not in args:
        return args
    at = args.index("--ray")
    after = args[at + 1] if at + 1 < len(args) else None
    if after is None or after.startswith("-") or Path(after).exists() \
            or after.endswith((".md", ".jsonl")):
        return [*args[:at], "--ray=local", *args[at + 1:]]
    return args


_signalled: list[int] = []


def _stop_on_signals() -> None:
    """SIGTERM and SIGHUP (a closed terminal, `kill`, a CI runner giving up) end a run
    as Ctrl-C does: the step records `interrupted`, the test processes are stopped,
    and the run can be resumed. Exit code 128 + the signal (143, 129)."""
    import signal

    from agent_cli.durable.errors import Interrupted

    def stop(signum: int, _frame: object) -> None:
        _signalled.append(signum)
        # Once: a second signal during the clean-up takes the default action, and the
        # run, left `running` with a free lock, still resumes as interrupted.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        raise Interrupted(signum, signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)


def _warn(lines: list[str]) -> None:
    for line in lines:
        sys.stderr.write(f"warning: {line}\n")


def _print_error(message: str, hint: str | None) -> None:
    sys.stderr.write(f"error: {message}\n")
    if hint:
        sys.stderr.write(f"{hint}\n")
