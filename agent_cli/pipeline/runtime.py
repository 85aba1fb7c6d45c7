"""What the stages need that is not an input: the model service and where things are.

A flow's inputs are recorded and fingerprinted; the services a run talks to are
not (an API key must never be recorded), so they reach the stages through this
context, set by `service.py` around each execution.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from agent_cli import durable
from agent_cli.llm import ModelService
from agent_cli.pipeline.artifacts import RepoRef
from agent_cli.workspace import sandbox
from agent_cli.workspace.worktree import Worktree


@dataclass(frozen=True)
class Runtime:
    models: ModelService
    repo: Path
    agent_dir: Path
    base_commit: str | None = None  # the run's; where its agent instructions are read


_runtime: ContextVar[Runtime | None] = ContextVar("agent_runtime", default=None)


@contextmanager
def using(rt: Runtime) -> Iterator[Runtime]:
    token = _runtime.set(rt)
    try:
        yield rt
    finally:
        _runtime.reset(token)


def rt() -> Runtime:
    current = _runtime.get()
    if current is None:
        raise RuntimeError("pipeline stages run inside service.execute_run()")
    return current


def run_id() -> str:
    ex = durable.current()
    if ex is None:
        raise RuntimeError("pipeline stages run inside a flow")
    return ex.run.id


def setting(name: str, default: object = None) -> object:
    value = durable.config().get(name)
    return default if value is None else value


def number_setting(name: str, default: int) -> int:
    """A whole-number setting (validated when the run was made: settings.py)."""
    value = setting(name, default)
    return int(value) if isinstance(value, (int, float, str)) else default


def seconds_setting(name: str, default: float) -> float:
    value = setting(name, default)
    return float(value) if isinstance(value, (int, float, str)) else default


def worktree(repo: RepoRef) -> Worktree:
    """The run's worktree, after killing any process a dead predecessor of this
    execution left running in it, before its files are rebuilt and reused."""
    leftovers = sandbox.reap(run_id())
    if leftovers:
        durable.emit("leftovers_killed", pids=leftovers)
    return Worktree.ensure(Path(repo.path), run_id(), repo.base_commit)
