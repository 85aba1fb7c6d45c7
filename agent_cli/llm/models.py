"""Model names: aliases, and the `replay:<run>` pseudo-model."""

from __future__ import annotations

ALIASES = {
    "sonnet": "claude-sonnet-5-5",
    "opus": "claude-opus-5-5",
    "haiku": "claude-haiku-5-5",
}

REPLAY_PREFIX = "replay:"


def resolve_model(name: str) -> str:
    """The model id to send: an alias maps to its id; anything else passes through."""
    return ALIASES.get(name, name)


def is_replay(name: str) -> bool:
    return name.startswith(REPLAY_PREFIX)
