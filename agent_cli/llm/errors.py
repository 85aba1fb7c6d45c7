"""Typed errors of the model layer; each says what to do next."""

from __future__ import annotations

from agent_cli.errors import AgentError, UsageError


class ModelError(AgentError):
    """A model call that did not produce a usable answer; the run stays resumable."""


class NoApiKey(UsageError):
    pass


class AuthError(ModelError):
    """401/403 from the service: the key is missing, wrong or not allowed."""


class ModelRejected(ModelError):
    """The service does not know the model id (404 not_found_error)."""


class PromptTooLong(ModelError):
    pass


class ServiceUnavailable(ModelError):
    """Overloaded, rate-limited, 5xx or timed out after every retry."""


class BadRequest(ModelError):
    pass


class StructuredOutputError(ModelError):
    """The model's tool input did not validate, even after one repair turn."""


class ReplayMissing(ModelError):
    """A `replay:` model was asked for a call that the recording does not have."""
