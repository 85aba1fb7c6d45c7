"""Durable execution: runs on disk, checkpoints, waits, resume, replay, one lock.

Imports nothing else of `agent_cli` (the arrows point into this package, never out).
"""

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
    wait,
)
from agent_cli.durable.errors import (
    AgentError,
    CorruptRecord,
    RunLocked,
    RunNotFound,
    Suspended,
    UsageError,
)
from agent_cli.durable.store import Run, RunStore

__all__ = [
    "AgentError",
    "CorruptRecord",
    "DurableError",
    "Execution",
    "Outcome",
    "Run",
    "RunLocked",
    "RunNotFound",
    "RunStore",
    "StepScope",
    "Stop",
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
    "wait",
]
