"""`agent demo`: the whole pipeline on a bundled project, offline, with no key.

The sample project (`project/`) is a cart whose percentage coupons take a flat
amount off, with a test that fails because of it. The model is a recording
(`recording/`, a call journal) served by the `replay:` model, so nothing leaves the
machine and nothing is paid. Everything else is real: a git repository, a run
directory, a worktree, pytest, a branch.

The recorded model first writes a fix that is wrong (it forgets to divide by 100),
the tests catch it, the fix loop repairs it, and the run ends on a branch.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from agent_cli.errors import UsageError

DEMO_IDENTITY = ("agent demo", "demo@agent.invalid")


def bundled() -> Path:
    return Path(str(resources.files("agent_cli.demo")))


def prepare(directory: Path | None) -> tuple[Path, Path]:
    """Copy the project into `directory` (new or empty) and make it a git repository.
    Returns (repository, issue file)."""
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="agent-demo-"))
    directory = directory.resolve()
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is a file, not a directory",
                         hint="give a new or empty directory (agent demo DIR), or none for a "
                         "temporary one")
    if directory.exists() and any(directory.iterdir()):
        raise UsageError(f"{directory} is not empty",
                         hint="give a new or empty directory, or none for a temporary one")
    shutil.copytree(bundled() / "project", directory, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
    issue = directory / "ISSUE.md"
    shutil.copy(bundled() / "ISSUE.md", issue)
    _git(directory, "init", "-q", "-b", "main")
    if not _git(directory, "config", "user.email", check=False).strip():
        _git(directory, "config", "user.name", DEMO_IDENTITY[0])
        _git(directory, "config", "user.email", DEMO_IDENTITY[1])
    _git(directory, "add", "--", ".", ":(exclude)ISSUE.md")
    _git(directory, "commit", "-q", "-m", "shopcart: a cart with coupons")
    return directory, issue


def _git(cwd: Path, *args: str, check: bool = True) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and out.returncode != 0:
        raise UsageError(f"git {' '.join(args)} failed in {cwd}: {out.stderr.strip()}")
    return out.stdout


def run_demo(directory: Path | None) -> int:
    from agent_cli.durable import exit_code
    from agent_cli.pipeline import reports, service
    from agent_cli.views.common import console
    from agent_cli.views.outcome import render_outcome
    from agent_cli.views.progress import progress
    from agent_cli.views.timeline import render_timeline

    out = console()
    repo, issue = prepare(directory)
    model = f"replay:{bundled() / 'recording'}"
    out.print(f"[bold]agent demo[/] — a sample project in {repo}")
    out.print(f"issue: {issue.name} — \"Percentage coupons take off a flat amount\"")
    out.print("model: a bundled recording (offline, no API key, $0)\n")
    out.print(f"$ agent solve ISSUE.md --model {model}")
    flags = {"model": model, "test_cmd": None}

    def show(outcome: object) -> None:
        run = service.store_for(repo).get(outcome.run_id)  # type: ignore[attr-defined]
        spent, data = reports.spent_usd(run), run.load()
        render_outcome(outcome.run_id, outcome.status, outcome.reason,  # type: ignore[attr-defined]
                       data, spent, reports.sandbox_detail(run, data))

    with progress() as p:
        outcome = service.solve(str(issue), repo=repo, flags=flags, on_event=p)
    show(outcome)
    if outcome.status == "waiting":
        out.print(f"\nThe demo approves its own plan (you would run: agent approve {outcome.run_id})\n")
        out.print(f"$ agent approve {outcome.run_id}")
        with progress() as p:
            outcome = service.approve(outcome.run_id, repo=repo, comment="approved by agent demo",
                                      on_event=p)
        show(outcome)
    run_id = outcome.run_id
    timeline = reports.timeline(service.store_for(repo).get(run_id))
    out.print(f"\n$ agent inspect {run_id}")
    render_timeline(timeline)
    keys = [s["key"] for s in timeline["steps"]]
    if outcome.status == "succeeded" and "fix_code" in keys:
        out.print("\n[bold]What happened[/]: the recorded model's first fix forgot to divide by "
                  "100; run_tests caught it, fix_code repaired it, run_tests-2 passed, and "
                  "create_pr committed the change on its own branch. Your working tree (and "
                  "the untracked ISSUE.md in it) was not touched.")
    out.print("\n[bold]Try next[/]:")
    for cmd in (f"cd {repo}",
                f"agent inspect {run_id}",
                f"agent inspect {run_id} --step create_plan",
                f"agent cost {run_id}",
                f"agent diff {run_id}",
                f"git log --oneline agent/{run_id}",
                f"agent replay {run_id} --from write_code      # offline: served by the recording",
                f"agent replay {run_id} --from write_code --model sonnet   # needs ANTHROPIC_API_KEY"):
        out.print(f"  {cmd}", markup=False)
    return exit_code(outcome)
