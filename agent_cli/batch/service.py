"""`agent batch`: many issues, each an ordinary durable run, executed by a pool.

Starting a batch checks every issue (readable, a git repository, a base commit that
exists, a test command that can be found there, the key, the sandbox) before writing
anything; then it creates every run (status `created`) and the batch record that
lists them, and hands the runs to an executor: the local process pool
(`local.py`) or Ray (`onray.py`). Resuming executes again every run that is not
finished and not waiting for a human (created, or interrupted when the batch
died); finished runs are left alone and a run that is resumed re-pays nothing it
already paid (its journal). Waiting runs are answered with `agent approve --batch`,
which answers them one by one and then executes the answered runs the same way.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_cli.batch import inputs, local, onray
from agent_cli.batch.record import FINAL, Batch, find
from agent_cli.durable.store import Run
from agent_cli.errors import UsageError
from agent_cli.llm.ledger import Ledger

Progress = Callable[[dict[str, Any]], None]
RAY_HINT = "install it with: pip install 'agent-cli[ray]'  (or pip install ray)"


def check_executor(workers: int, ray: str | None, max_cost: float | None) -> None:
    if workers < 1:
        raise UsageError(f"--workers must be 1 or more, not {workers}")
    if ray is None:
        return
    if not _ray_installed():
        raise UsageError("--ray needs Ray, which is not installed", hint=RAY_HINT)
    if Path(ray).exists() or ray.endswith((".md", ".jsonl")):
        raise UsageError(f"--ray took {ray!r} as the cluster's address",
                         hint="write --ray after the issues, or give the address as --ray=ADDRESS")
    if ray != "local" and max_cost is not None:
        raise UsageError("--max-cost with a Ray cluster's address: the batch's budget is a file "
                         "the runs must share, which a cluster's workers do not",
                         hint="use --ray without an address (a cluster on this machine), or "
                         "give each run its budget in .agentrc (max_cost)")


def _ray_installed() -> bool:
    try:
        return importlib.util.find_spec("ray") is not None  # found, not imported
    except (ImportError, ValueError):
        return False


def start(args: list[Path], *, repo: Path, flags: dict[str, Any], workers: int,
          ray: str | None, on_progress: Progress | None = None) -> dict[str, Any]:
    from agent_cli.pipeline import service
    from agent_cli.workspace.errors import WorkspaceError
    from agent_cli.workspace.worktree import repo_root, resolve_commit

    max_cost = flags.get("max_cost")  # each run's too: never binds before the batch's
    if max_cost is not None and max_cost <= 0:
        raise UsageError(f"--max-cost must be more than 0, not {max_cost}")
    check_executor(workers, ray, max_cost)
    items = inputs.read_items(args)
    root = repo_root(repo)
    checked = []
    for item in items:  # everything before anything is written
        item_root = repo_root(item.repo) if item.repo else root
        base = None
        if item.base_commit:
            try:
                base = resolve_commit(item_root, item.base_commit)
            except WorkspaceError:
                raise UsageError(f"{item.source}: no commit {item.base_commit!r} in {item_root}",
                                 hint="fetch it there first, or fix the row's base_commit") from None
        issue = (service.parse_issue(item.text, "issue file", item.path) if item.path
                 else service.parse_issue(item.text, "issue", item.source))
        checked.append((item, service.check_new_run(issue, item_root, flags, base)))
    agent_dir = service.store_for(root).agent_dir
    for where in {root, *(new.root for _, new in checked)}:
        service.exclude_agent_dir(where)  # before the first byte under .agent/
    batch = Batch.create(agent_dir, {
        "executor": {"kind": "ray", "address": ray} if ray else {"kind": "local",
                                                                 "workers": workers},
        "workers": workers, "model": flags.get("model"),
        "auto_approve": bool(flags.get("auto_approve")), "max_cost": max_cost, "runs": []})
    data = batch.load()
    meta = {"batch": {"id": batch.id, "dir": str(batch.dir), "max_cost": max_cost}}
    for item, new in checked:
        run = service.create_run(new, meta, onray.scratch(batch.id, item.id) / "repo"
                                 if ray else None)
        data["runs"].append({"item": item.id, "run_id": run.id, "repo": str(new.root),
                             "agent_dir": str(new.root / ".agent"), "issue": new.issue.title,
                             "source": item.source})
    batch.save(data)
    batch.event("batch_created", runs=len(data["runs"]))
    return execute(batch, [{"entry": e, "args": ["resume", e["run_id"]]}
                           for e in data["runs"]], on_progress)


def resume(ref: str | None, *, repo: Path, workers: int | None, ray: str | None,
           on_progress: Progress | None = None) -> dict[str, Any]:
    batch = find(_agent_dir(repo), ref)
    data = batch.load()
    if ray is not None and data["executor"]["kind"] != "ray":
        raise UsageError(f"batch {batch.id} runs on this machine's pool, not on Ray",
                         hint=f"resume it without --ray: agent batch --resume {batch.id}")
    if workers is not None or ray is not None:  # more workers, or another cluster
        data["workers"] = data["workers"] if workers is None else workers
        check_executor(data["workers"], ray, data.get("max_cost"))
        if ray is not None:
            data["executor"] = {"kind": "ray", "address": ray}
        batch.save(data)
    tasks = [{"entry": e, "args": ["resume", e["run_id"]]}
             for e in data["runs"] if _status(batch.run(e)) in ("created", "interrupted")]
    return execute(batch, tasks, on_progress)


def approve(ref: str | None, *, repo: Path,
            decide: Callable[[dict[str, Any], Run], dict[str, Any] | None],
            on_progress: Progress | None = None) -> dict[str, Any]:
    """`decide(entry, run)` for each waiting run: an answer ({"approved": bool, ...})
    or None to leave it waiting. Then the answered runs continue in the pool."""
    batch = find(_agent_dir(repo), ref)
    if batch.is_locked():
        raise UsageError(f"batch {batch.id} is still executing",
                         hint=f"wait for it, or watch it with: agent batch --status {batch.id}")
    waiting = [e for e in batch.load()["runs"] if _status(batch.run(e)) == "waiting"]
    if not waiting:
        raise UsageError(f"no run of batch {batch.id} is waiting for an answer",
                         hint=f"see the batch with: agent batch --status {batch.id}")
    tasks = []
    for entry in waiting:
        answer = decide(entry, batch.run(entry))
        if answer is None:
            continue
        if answer.get("approved"):
            args = ["approve", entry["run_id"]]
            if answer.get("budget"):
                args += ["--budget", str(answer["budget"])]
            if answer.get("comment"):
                args += ["--comment", answer["comment"]]
        else:
            args = ["reject", entry["run_id"], *(["--reason", answer["reason"]]
                                                 if answer.get("reason") else [])]
        tasks.append({"entry": entry, "args": args})
    return execute(batch, tasks, on_progress)


def execute(batch: Batch, tasks: list[dict[str, Any]],
            on_progress: Progress | None) -> dict[str, Any]:
    """Run `tasks` with the batch's executor, holding the batch's lock."""
    data = batch.load()
    ledger = Ledger(batch.dir)
    with batch.lock():
        started = time.monotonic()
        batch.event("batch_started", tasks=len(tasks), executor=data["executor"])

        def on_start(task: dict[str, Any], pid: int) -> None:
            batch.event("run_started", run_id=task["entry"]["run_id"], command=task["args"][0],
                        pid=pid)

        def on_end(task: dict[str, Any], code: int | None, seconds: float) -> None:
            run = batch.run(task["entry"])
            if data.get("max_cost") is not None:
                ledger.settle(run.id, _spent(run))
            batch.event("run_ended", run_id=run.id, exit_code=code, seconds=round(seconds, 3),
                        status=_status(run))
            tick()

        def tick() -> None:
            if on_progress is not None:
                on_progress(summary(batch, elapsed=time.monotonic() - started))

        try:
            if data["executor"]["kind"] == "ray":
                from agent_cli.batch import onray

                onray.run_pool(batch, tasks, data["executor"]["address"], data["workers"],
                               on_start, on_end, tick)
            else:
                local.run_pool(tasks, data["workers"], batch.logs, on_start, on_end, tick)
        except KeyboardInterrupt as stop:
            batch.event("batch_interrupted")
            stop.batch_id = batch.id  # type: ignore[attr-defined]
            raise
        batch.event("batch_finished", seconds=round(time.monotonic() - started, 3))
    return summary(batch)


# -- reading -------------------------------------------------------------------


def status(ref: str | None, *, repo: Path) -> dict[str, Any]:
    return summary(find(_agent_dir(repo), ref))


def summary(batch: Batch, elapsed: float | None = None) -> dict[str, Any]:
    """The batch as `--status --json` shows it (README: the batch --json shape)."""
    data = batch.load()
    events = batch.events()
    seconds: dict[str, float] = {}
    for ev in events:
        if ev["event"] == "run_ended":
            seconds[ev["run_id"]] = seconds.get(ev["run_id"], 0.0) + ev.get("seconds", 0.0)
    rows = []
    for entry in data["runs"]:
        run = batch.run(entry)
        run_data = run.load()
        result = run_data.get("result") if isinstance(run_data.get("result"), dict) else {}
        pending = run_data.get("pending_wait") or {}
        rows.append({"item": entry["item"], "run_id": run.id, "repo": entry["repo"],
                     "issue": entry["issue"], "status": _status(run, run_data),
                     "cost_usd": round(_spent(run), 6), "seconds": round(seconds.get(run.id, 0.0), 3),
                     "branch": (result or {}).get("branch"), "waiting_for": pending.get("key"),
                     "reason": run_data.get("reason")})
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    if elapsed is None:
        elapsed = sum(ev.get("seconds", 0.0) for ev in events if ev["event"] == "batch_finished")
    return {"batch": batch.id, "status": _batch_status(batch, rows), "created_at": data["created_at"],
            "executor": data["executor"], "workers": data["workers"], "model": data.get("model"),
            "auto_approve": data.get("auto_approve"), "max_cost": data.get("max_cost"),
            "counts": counts, "cost_usd": round(sum(r["cost_usd"] for r in rows), 6),
            "elapsed_s": round(elapsed, 3), "runs": rows}


def _batch_status(batch: Batch, rows: list[dict[str, Any]]) -> str:
    if batch.is_locked():
        return "running"
    statuses = {r["status"] for r in rows}
    if statuses & {"created", "interrupted", "running"}:
        return "interrupted"
    return "waiting" if "waiting" in statuses else "finished"


def exit_code(report: dict[str, Any]) -> int:
    """75 when a run waits for a human, else 1 when a run failed, else 0."""
    counts = report["counts"]
    if counts.get("waiting"):
        return 75
    return 1 if counts.get("failed") or report["status"] == "interrupted" else 0


def cost(ref: str | None, *, repo: Path) -> dict[str, Any]:
    """Per run and in total, with per-model totals (`agent cost --batch`)."""
    from agent_cli.pipeline import reports

    batch = find(_agent_dir(repo), ref)
    runs, models, total = [], {}, {}  # type: ignore[var-annotated]
    for entry in batch.load()["runs"]:
        data = reports.run_cost(batch.run(entry))
        runs.append({"item": entry["item"], "run_id": entry["run_id"], **data["total"]})
        for model, usage in data["models"].items():
            _merge(models.setdefault(model, {}), usage)
        _merge(total, data["total"])
    return {"batch": batch.id, "runs": runs, "models": models, "total": total}


def _merge(into: dict[str, Any], part: dict[str, Any]) -> None:
    for key, value in part.items():
        if key == "unknown_cost":
            into[key] = True
        else:
            into[key] = into.get(key, 0) + value


def _status(run: Run, data: dict[str, Any] | None = None) -> str:
    return run.status(data)


def _spent(run: Run) -> float:
    from agent_cli.pipeline.reports import spent_usd

    return spent_usd(run)


def _agent_dir(repo: Path) -> Path:
    from agent_cli.pipeline.service import store_for

    return store_for(repo).agent_dir


__all__ = ["FINAL", "approve", "cost", "exit_code", "resume", "start", "status", "summary"]
