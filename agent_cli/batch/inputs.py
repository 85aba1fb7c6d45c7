"""What `agent batch ISSUES...` is given: Markdown files, directories of `*.md`, or
JSONL files with one row per issue (`{"id", "issue", "repo"?, "base_commit"?}`, so a
benchmark's rows can be fed as they are). Everything is read and checked here,
before anything is written: one bad file, row or commit is exit 2 naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_cli.errors import UsageError

ROW_KEYS = {"id", "issue", "repo", "base_commit"}


@dataclass
class Item:
    """One issue of a batch, before its run exists."""

    id: str  # the file's stem, or the row's id
    text: str
    source: str  # where it came from, for messages: a path, or path:line
    repo: Path | None = None  # None: the batch's --repo
    base_commit: str | None = None  # None: the repository's HEAD
    path: Path | None = None  # the Markdown file, when it is one


def read_items(args: list[Path]) -> list[Item]:
    if not args:
        raise UsageError("no issues given",
                         hint="agent batch ISSUE.md... | DIR | ROWS.jsonl")
    items: list[Item] = []
    for arg in args:
        if arg.is_dir():
            found = sorted(p for p in arg.glob("*.md") if p.is_file())
            if not found:
                raise UsageError(f"no *.md issue files in {arg}",
                                 hint="put one issue per Markdown file there, or pass the files")
            items += [_markdown(p) for p in found]
        elif arg.suffix == ".jsonl":
            items += _rows(arg)
        elif arg.is_file():
            items.append(_markdown(arg))
        else:
            raise UsageError(f"issue file not found: {arg}",
                             hint="pass Markdown files, a directory of *.md, or a .jsonl file")
    seen: dict[str, str] = {}
    for item in items:
        if item.id in seen:
            raise UsageError(f"two issues have the id {item.id!r}: {seen[item.id]} and {item.source}",
                             hint="give each issue its own file name or row id")
        seen[item.id] = item.source
    return items


def _markdown(path: Path) -> Item:
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise UsageError(f"cannot read issue file {path}: {exc.strerror}") from None
    return Item(id=path.stem, text=text, source=str(path), path=path)


def _rows(path: Path) -> list[Item]:
    if not path.is_file():
        raise UsageError(f"issue file not found: {path}",
                         hint="pass Markdown files, a directory of *.md, or a .jsonl file")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where} is not valid JSON ({exc.msg})",
                             hint='one object per line: {"id": "...", "issue": "..."}') from None
        if not isinstance(row, dict):
            raise UsageError(f"{where} is not a JSON object",
                             hint='one object per line: {"id": "...", "issue": "..."}')
        unknown = set(row) - ROW_KEYS
        if unknown:
            raise UsageError(f"{where} has unknown keys: {', '.join(sorted(unknown))}",
                             hint="a row has id, issue, and optionally repo and base_commit")
        for key in ("id", "issue"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise UsageError(f"{where} needs a non-empty string {key!r}",
                                 hint='one object per line: {"id": "...", "issue": "..."}')
        for key in ("repo", "base_commit"):
            if key in row and not isinstance(row[key], str):
                raise UsageError(f"{where}: {key!r} must be a string")
        if "/" in row["id"] or row["id"].startswith("."):
            raise UsageError(f"{where}: id {row['id']!r} may not contain '/' or start with '.'")
        repo = Path(row["repo"]) if row.get("repo") else None
        if repo is not None and not repo.is_absolute():
            repo = path.parent / repo  # relative to the JSONL file, as a dataset ships it
        items.append(Item(id=row["id"], text=row["issue"], source=where, repo=repo,
                          base_commit=row.get("base_commit")))
    if not items:
        raise UsageError(f"{path} has no rows", hint='one object per line: {"id": "...", "issue": "..."}')
    return items
