"""The local pool: N runs at once, each in its own `agent` process.

A run executes in a child process (`python -m agent_cli resume RUN --json`, or
approve/reject for runs answered with `approve --batch`), exactly as a person would
continue it, so a crash, a hung test or a bad issue in one run ends that process
and nothing else; the pool only starts processes and waits for them. Children ask
the kernel for SIGTERM when the batch process dies (Linux), so a killed batch
leaves its runs `interrupted` and resumable rather than running unsupervised; a
SIGTERM or Ctrl-C of the batch is passed on and each run records its interruption.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Task = dict[str, Any]  # {"entry": batch entry, "args": [command, RUN, ...]}


def child_env() -> dict[str, str]:
    """The parent's environment, with this agent_cli first on the path: the runs
    execute the same code as the batch, whatever is installed."""
    here = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": here + (os.pathsep + path if path else "")}


def die_with_parent() -> None:
    """preexec_fn: SIGTERM when the parent dies (Linux). Only a call into libc, loaded
    before the fork: a Ray worker has threads, and a child must not take a lock."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def run_pool(tasks: list[Task], workers: int, logs: Path,
             on_start: Callable[[Task, int], None],
             on_end: Callable[[Task, int, float], None],
             tick: Callable[[], None]) -> None:
    """Run every task, `workers` at a time; `on_end(task, exit code, seconds)`."""
    queue = list(tasks)
    running: dict[subprocess.Popen[bytes], tuple[Task, float]] = {}
    env = child_env()
    try:
        while queue or running:
            while queue and len(running) < workers:
                task = queue.pop(0)
                entry = task["entry"]
                with open(logs / f"{entry['run_id']}.log", "ab") as log:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "agent_cli", *task["args"],
                         "--repo", entry["repo"], "--json"],
                        cwd=entry["repo"], env=env, stdout=log, stderr=log,
                        stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)  # noqa: PLW1509
                running[proc] = (task, time.monotonic())
                on_start(task, proc.pid)
            for proc in [p for p in running if p.poll() is not None]:
                task, started = running.pop(proc)
                on_end(task, proc.returncode, time.monotonic() - started)
            tick()
            time.sleep(0.2)
    except KeyboardInterrupt as stop:
        signum = getattr(stop, "signum", signal.SIGINT)
        if signum == signal.SIGINT:  # from a terminal, Ctrl-C reached them too
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and any(p.poll() is None for p in running):
                time.sleep(0.1)
            signum = signal.SIGTERM
        for proc in running:  # a kill of the batch alone did not reach them
            if proc.poll() is None:
                proc.send_signal(signum)
        for proc, (task, started) in running.items():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            on_end(task, proc.returncode, time.monotonic() - started)
        raise
