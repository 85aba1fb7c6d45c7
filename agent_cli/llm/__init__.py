"""The model layer: Anthropic SDK client, structured outputs, pricing, call journal,
budget, and the `replay:<run>` model. Nothing here imports the SDK at import time."""

from agent_cli.llm.client import Connection
from agent_cli.llm.errors import (
    AuthError,
    ModelError,
    ModelRejected,
    NoApiKey,
    PromptTooLong,
    ReplayMissing,
    ServiceUnavailable,
    StructuredOutputError,
)
from agent_cli.llm.models import ALIASES, is_replay, resolve_model
from agent_cli.llm.service import ModelService

__all__ = [
    "ALIASES",
    "AuthError",
    "Connection",
    "ModelError",
    "ModelRejected",
    "ModelService",
    "NoApiKey",
    "PromptTooLong",
    "ReplayMissing",
    "ServiceUnavailable",
    "StructuredOutputError",
    "is_replay",
    "resolve_model",
]
