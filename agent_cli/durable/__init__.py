"""Durable execution: runs on disk, checkpoints, waits, resume, replay, one lock.

Imports nothing else of `agent_cli` (the arrows point into this package, never out).

The names below are loaded on first use: `agent_cli.errors` (imported by every
command) needs only `durable.errors`, and `agent locate` should not pay ~20 ms for
the engine and the store it never touches.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_cli.durable.engine import (
        DurableError,
        Execution,
        Outcome,
        StepScope,
        Stop,
        checkpoint,
        config,
        create,
        current,
        current_step,
        emit,
        execute,
        exit_code,
        flow,
        fork,
        note,
        progress,
        wait,
    )
    from agent_cli.durable.errors import (
        AgentError,
        CorruptRecord,
        Interrupted,
        RunLocked,
        RunNotFound,
        StorageError,
        Suspended,
        UsageError,
    )
    from agent_cli.durable.store import Run, RunStore

_HOME = {
    "DurableError": "engine",
    "Execution": "engine",
    "Outcome": "engine",
    "StepScope": "engine",
    "Stop": "engine",
    "checkpoint": "engine",
    "config": "engine",
    "create": "engine",
    "current": "engine",
    "current_step": "engine",
    "emit": "engine",
    "execute": "engine",
    "exit_code": "engine",
    "flow": "engine",
    "fork": "engine",
    "note": "engine",
    "progress": "engine",
    "wait": "engine",
    "AgentError": "errors",
    "CorruptRecord": "errors",
    "Interrupted": "errors",
    "RunLocked": "errors",
    "RunNotFound": "errors",
    "StorageError": "errors",
    "Suspended": "errors",
    "UsageError": "errors",
    "Run": "store",
    "RunStore": "store",
}

__all__ = [
    "AgentError",
    "CorruptRecord",
    "DurableError",
    "Execution",
    "Interrupted",
    "Outcome",
    "Run",
    "RunLocked",
    "RunNotFound",
    "RunStore",
    "StepScope",
    "Stop",
    "StorageError",
    "Suspended",
    "UsageError",
    "checkpoint",
    "config",
    "create",
    "current",
    "current_step",
    "emit",
    "execute",
    "exit_code",
    "flow",
    "fork",
    "note",
    "progress",
    "wait",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
