"""Typed errors for the whole package; see `agent_cli.durable.errors` for the root."""

from agent_cli.durable.errors import (
    AgentError,
    CorruptRecord,
    RunLocked,
    RunNotFound,
    StorageError,
    Suspended,
    UsageError,
)

__all__ = [
    "AgentError",
    "CorruptRecord",
    "RunLocked",
    "RunNotFound",
    "StorageError",
    "Suspended",
    "UsageError",
]
