"""Canonical JSON and content hashes.

A fingerprint must not change when nothing that matters changed: dict order, float
formatting of the same value, a tuple versus a list. Values are reduced to plain JSON
(pydantic models through `model_dump(mode="json")`), dumped with sorted keys and no
spaces, and hashed with a prefix naming the algorithm (`sha256:...`), so a future
change of algorithm cannot be mistaken for a change of inputs.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from pathlib import PurePath
from typing import Any


class Unfingerprintable(TypeError):
    pass


def to_jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((to_jsonable(v) for v in value), key=canonical)
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json")
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    raise Unfingerprintable(f"a value of type {type(value).__name__} has no JSON form")


def canonical(value: Any) -> str:
    return json.dumps(
        to_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical(value).encode("utf-8")).hexdigest()


def digest_text(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
