"""The artifact of `agent locate` and of the pipeline's explore stage.

These are the public shapes: the CLI prints `LocateResult.model_dump(mode="json")`,
and the pipeline stores it inside its exploration checkpoint, so every field is
plain JSON (strings, numbers, lists) and unknown fields are refused.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Symbol(BaseModel):
    """A class, function or method defined in a file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """Qualified name inside its file, e.g. `Session.request` or `merge_setting`."""
    kind: str
    """`class`, `function` or `method` (other languages: what the definition says)."""
    line: int
    """First line of the definition (1-based, the `def`/`class` line)."""
    end_line: int
    """Last line of the definition (1-based, inclusive)."""


class RankedSymbol(Symbol):
    """A symbol in the overall ranking, with where it lives and why it ranked."""

    path: str
    """Repository-relative path of the file that defines it."""
    score: float
    """Relevance to the issue; only comparable within one result."""
    reasons: list[str] = Field(default_factory=list)
    """Signals that fired for this symbol, e.g. "named in the issue"."""


class RankedFile(BaseModel):
    """One file of the ranking, best first."""

    model_config = ConfigDict(extra="forbid")

    path: str
    """Repository-relative path, `/`-separated."""
    score: float
    """Relevance to the issue; only comparable within one result."""
    reasons: list[str]
    """Human-readable signals that fired, e.g. "traceback frame line 42", "bm25"."""
    symbols: list[Symbol]
    """The file's symbols most relevant to the issue, best first."""
    imports: list[str] = Field(default_factory=list)
    """Repository files this file imports."""
    imported_by: list[str] = Field(default_factory=list)
    """Repository files that import this file."""


class LocateResult(BaseModel):
    """Where in the repository an issue most likely lives."""

    model_config = ConfigDict(extra="forbid")

    files: list[RankedFile]
    """Ranked files, best first, at most `top` of them."""
    symbols: list[RankedSymbol]
    """The best symbols over all ranked files, best first."""
    seconds: float
    """Wall time of the whole locate call, index load or build included."""
    commit: str
    """The commit whose tree was indexed and ranked."""
