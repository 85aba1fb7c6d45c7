"""The batch on Ray: each run one Ray task; Ray places and retries, we do the rest.

Only a `--ray` batch imports this module's Ray (inside `run_pool`). A task gets the
repository as a git bundle of the base commit (made once per repository and put in
the object store, so it moves by reference) and the run directory as a tar. On the
worker it clones the bundle into a scratch directory whose path depends only on the
batch and the issue (`scratch()`), the same on every node, and which the run's
inputs name from the start: checkpoint fingerprints include the repository path, so
every execution of the run, wherever Ray places it, matches its own checkpoints.
It then executes the run there in an `agent` process, as the local pool does, and
returns the run directory (a tar) and the run's branch (a bundle), which the driver
puts back into the user's `.agent/runs/` and repository.

A worker that dies mid-run: Ray retries the task (`max_retries`). On the same node
the retry finds the scratch clone with the run's checkpoints and journal, and the
run resumes from them (its agent process got SIGTERM when the worker died and
recorded the interruption); on another node it starts from the directory the driver
shipped. While a task is in flight the driver holds the run's lock, so nothing here
executes the run twice.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from agent_cli.batch.local import child_env, die_with_parent
from agent_cli.batch.record import FINAL, Batch
from agent_cli.durable import fsio
from agent_cli.durable.store import Run, is_locked

MAX_RETRIES = 3
BASE_REF = "refs/agent-batch/base"  # named in the bundle only while it is made


def scratch(batch_id: str, item: str) -> Path:
    """Where a run's repository lives on any worker (the same path on every node)."""
    return Path(tempfile.gettempdir()) / "agent-ray" / batch_id / item


def run_pool(batch: Batch, tasks: list[dict[str, Any]], address: str, workers: int,
             on_start: Callable[[dict[str, Any], int], None],
             on_end: Callable[[dict[str, Any], int | None, float], None],
             tick: Callable[[], None]) -> None:
    # Ray prints what its workers report (a worker died...) on stdout, which is ours
    # (--json): it goes to stderr with the progress.
    with contextlib.redirect_stdout(sys.stderr):
        _run_pool(batch, tasks, address, workers, on_start, on_end, tick)


def _run_pool(batch: Batch, tasks: list[dict[str, Any]], address: str, workers: int,
              on_start: Callable[[dict[str, Any], int], None],
              on_end: Callable[[dict[str, Any], int | None, float], None],
              tick: Callable[[], None]) -> None:
    import ray

    if address == "local":  # a cluster of this machine, gone when the batch ends
        os.environ["PYTHONPATH"] = child_env()["PYTHONPATH"]  # the workers inherit it
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    else:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    remote = ray.remote(max_retries=MAX_RETRIES, num_cpus=1)(_run_task)
    bundles: dict[tuple[str, str], Any] = {}
    queue = list(tasks)
    pending: dict[Any, tuple[dict[str, Any], float, ExitStack]] = {}
    try:
        while queue or pending:
            while queue and len(pending) < workers:
                task = queue.pop(0)
                entry, run = task["entry"], batch.run(task["entry"])
                held = ExitStack()
                held.enter_context(run.lock())
                data = run.load()
                if data["status"] in ("created", "interrupted"):  # executing, elsewhere
                    data = run.update(status="running")
                key = (entry["repo"], data["inputs"]["repo"]["base_commit"])
                if key not in bundles:
                    bundles[key] = ray.put(_bundle(Path(entry["repo"]), key[1]))
                spec = {"batch": batch.id, "item": entry["item"], "run_id": run.id,
                        "shipment": os.urandom(8).hex(),
                        "args": task["args"], "base_commit": key[1],
                        "identity": _identity(Path(entry["repo"]))}
                ref = remote.remote(spec, bundles[key], _tar(run.path))
                pending[ref] = (task, time.monotonic(), held)
                on_start(task, 0)
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in done:
                task, started, held = pending.pop(ref)
                code: int | None
                try:
                    result = ray.get(ref)
                    _bring_back(batch.run(task["entry"]), task["entry"], result)
                    code = result["exit_code"]
                except Exception as exc:  # noqa: BLE001 - any failure of the task past its retries
                    _log(batch, task, f"ray task failed: {exc}")
                    code = None
                finally:
                    held.close()
                on_end(task, code, time.monotonic() - started)
            tick()
    finally:
        for _task, _started, held in pending.values():
            held.close()
        ray.shutdown()


def _run_task(spec: dict[str, Any], bundle: bytes, run_tar: bytes) -> dict[str, Any]:
    """On a Ray worker: clone, execute the run in an agent process, send it back."""
    home = scratch(spec["batch"], spec["item"])
    repo = home / "repo"
    home.mkdir(parents=True, exist_ok=True)
    (home / "worker.pid").write_text(str(os.getpid()))
    if not (repo / ".git").exists():
        shutil.rmtree(repo, ignore_errors=True)
        (home / "base.bundle").write_bytes(bundle)
        repo.mkdir()
        _git(repo, "init", "-q")
        _git(repo, "fetch", "-q", str(home / "base.bundle"), BASE_REF)
        _git(repo, "checkout", "-q", "--detach", spec["base_commit"])
        for key, value in spec["identity"].items():
            _git(repo, "config", key, value)
    run_dir = repo / ".agent" / "runs" / spec["run_id"]
    run = Run(run_dir)
    deadline = time.monotonic() + 60  # the agent of a dead worker is still stopping
    while is_locked(run.lock_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    shipment = home / "shipment"
    retry = shipment.exists() and shipment.read_text() == spec["shipment"]
    if not (retry and (run_dir / "run.json").exists()):  # a retry keeps its checkpoints
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(run_tar)) as tar:
            tar.extractall(run_dir.parent, filter="data")
        shipment.write_text(spec["shipment"])
    data = run.load()
    data["repo"] = {**data["repo"], "path": str(repo)}
    run.save(data)
    with open(home / "agent.log", "ab") as log:
        proc = subprocess.run([sys.executable, "-m", "agent_cli", *spec["args"], "--repo",
                               str(repo), "--json"], cwd=repo, env=child_env(),
                              stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                              preexec_fn=die_with_parent, check=False)
    branch = f"agent/{spec['run_id']}"
    shipped = None
    if _git(repo, "rev-parse", "--verify", "--quiet", branch, check=False):
        _git(repo, "bundle", "create", "-q", str(home / "branch.bundle"), branch,
             f"^{spec['base_commit']}")
        shipped = (home / "branch.bundle").read_bytes()
    result = {"exit_code": proc.returncode, "run_tar": _tar(run_dir), "branch": shipped,
              "log": (home / "agent.log").read_text(errors="replace")[-4000:]}
    if run.load().get("status") in FINAL:  # nothing will execute here again
        shutil.rmtree(home, ignore_errors=True)
        with contextlib.suppress(OSError):
            home.parent.rmdir()  # the batch's, once its last run is done here
    return result


def _bring_back(run: Run, entry: dict[str, Any], result: dict[str, Any]) -> None:
    """The run directory from the worker replaces ours (whose run.json names the user's
    repository again); its branch is fetched into the user's repository."""
    incoming = run.path.parent / f".{run.id}.incoming"
    shutil.rmtree(incoming, ignore_errors=True)
    incoming.mkdir()
    with tarfile.open(fileobj=io.BytesIO(result["run_tar"])) as tar:
        tar.extractall(incoming, filter="data")
    back = Run(incoming / run.id)
    data = back.load()
    data["repo"] = {**data["repo"], "path": entry["repo"]}
    back.save(data)
    (back.path / "lock").unlink(missing_ok=True)  # ours is held until we are done
    old = run.path.parent / f".{run.id}.old"
    os.rename(run.path, old)
    os.rename(back.path, run.path)
    fsio.fsync_dir(run.path.parent)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(incoming, ignore_errors=True)
    if result.get("branch"):
        bundle = run.path / "branch.bundle"
        bundle.write_bytes(result["branch"])
        branch = f"agent/{run.id}"
        _git(Path(entry["repo"]), "fetch", "-q", str(bundle), f"{branch}:{branch}")
        bundle.unlink()


def _bundle(repo: Path, commit: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        _git(repo, "update-ref", BASE_REF, commit)
        try:
            _git(repo, "bundle", "create", "-q", f"{tmp}/base.bundle", BASE_REF)
        finally:
            _git(repo, "update-ref", "-d", BASE_REF)
        return Path(f"{tmp}/base.bundle").read_bytes()


def _identity(repo: Path) -> dict[str, str]:
    """The committer the user's repository would use, for the run's commit."""
    found = {}
    for key in ("user.name", "user.email"):
        value = _git(repo, "config", key, check=False).strip()
        if value:
            found[key] = value
    return found


def _tar(path: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(path, arcname=path.name, filter=lambda t: None if t.name.endswith("/lock") else t)
    return buffer.getvalue()


def _git(cwd: Path, *args: str, check: bool = True) -> str:
    """git as `workspace._git` runs it: no hooks (a fetch into the user's repository
    would run its reference-transaction hook), no inherited GIT_DIR."""
    from agent_cli.workspace._git import run_git

    out = run_git(cwd, *args, check=check)
    return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else ""


def _log(batch: Batch, task: dict[str, Any], text: str) -> None:
    with open(batch.logs / f"{task['entry']['run_id']}.log", "a", encoding="utf-8") as f:
        f.write(text + "\n")
