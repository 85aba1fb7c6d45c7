"""Prompt templates: `prompts/<name>.md`, shipped as the package `agent_cli.prompts`.

Placeholders are `{{name}}`. Rendering is strict both ways: a placeholder without a
value and a value without a placeholder are errors, so a renamed variable cannot
silently send a model an empty hole. A template's text is part of its step's
fingerprint: edit a prompt and that step (and what follows) runs again on resume.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

from agent_cli.errors import AgentError

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


class PromptError(AgentError):
    pass


@functools.cache
def template(name: str) -> str:
    try:
        return resources.files("agent_cli.prompts").joinpath(f"{name}.md").read_text("utf-8")
    except FileNotFoundError:
        raise PromptError(f"no prompt template {name}.md in agent_cli/prompts") from None


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def render(name: str, **values: object) -> str:
    text = template(name)
    wanted = placeholders(text)
    missing = wanted - values.keys()
    extra = values.keys() - wanted
    if missing or extra:
        parts = []
        if missing:
            parts.append("no value for " + ", ".join(sorted(missing)))
        if extra:
            parts.append("no placeholder for " + ", ".join(sorted(extra)))
        raise PromptError(f"prompt {name}.md: " + "; ".join(parts))
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def fingerprint_text(*names: str) -> str:
    """What a step's fingerprint includes: the system prompt and its own templates."""
    return "\n\0\n".join(template(n) for n in ("system", *names))
