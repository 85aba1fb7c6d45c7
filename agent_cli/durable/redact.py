"""Secrets the process knows never reach disk (or, through the model layer, the model).

A test can print the API key, a traceback can carry a token from the environment, a
user can paste a key into an issue. Rather than trust every producer to scrub what
it emits, the writers scrub what they write: `fsio` redacts every file and timeline
line under `.agent/`, the cache redacts what it stores, and the model layer redacts
each request before it is hashed, journaled and sent. They all ask this module.

What counts as a secret: values registered with `register` (the API key, from any
source), and the values of this process's environment variables whose names look
like secrets (`looks_secret`). Values shorter than `MIN_LENGTH` are not redacted:
`TOKEN_TTL=3600` or `AWS_REGION=eu` would otherwise blank out ordinary text.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MARK = "[redacted]"
MIN_LENGTH = 8

# Variable names that say they hold a credential (GIT_AUTHOR_NAME is not one).
_SECRET_NAME = re.compile(
    r"KEY|TOKEN|SECRET|PASSW|PASSPHRASE|CREDENTIAL|AUTH(?!OR)|^AWS_", re.IGNORECASE)

_registered: set[str] = set()
_cache: tuple[frozenset[str], tuple[str, ...]] | None = None


def looks_secret(name: str) -> bool:
    """Whether an environment variable's name says it holds a credential."""
    return bool(_SECRET_NAME.search(name))


def register(*values: str | None) -> None:
    """Add values to redact for the rest of this process (e.g. the API key from a file)."""
    for value in values:
        if value and len(value) >= MIN_LENGTH:
            _registered.add(value)


def secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every value redacted now: registered ones and secret-named variables' values,
    with their JSON-escaped spellings, longest first (a key that contains another
    secret is replaced whole)."""
    global _cache
    env = os.environ if environ is None else environ
    raw = frozenset(_registered | {v for k, v in env.items()
                                   if len(v) >= MIN_LENGTH and looks_secret(k)})
    if _cache is not None and _cache[0] == raw:
        return _cache[1]
    forms: set[str] = set()
    for value in raw:
        forms |= {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    ordered = tuple(sorted(forms, key=len, reverse=True))
    _cache = (raw, ordered)
    return ordered


def text(value: str) -> str:
    """`value` with every known secret replaced by `[redacted]`."""
    for secret in secrets():
        if secret in value:
            value = value.replace(secret, MARK)
    return value


def data(value: Any) -> Any:
    """A JSON-like structure with every string redacted (keys included), as a copy;
    the input itself when no secret is known."""
    known = secrets()
    if not known:
        return value
    return _walk(value, known)


def _walk(value: Any, known: Iterable[str]) -> Any:
    if isinstance(value, str):
        for secret in known:
            if secret in value:
                value = value.replace(secret, MARK)
        return value
    if isinstance(value, dict):
        return {_walk(k, known): _walk(v, known) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk(v, known) for v in value]
    return value
