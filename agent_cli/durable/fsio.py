"""Files that survive a crash.

Every JSON file is written to a temporary file in the same directory, flushed,
fsynced and renamed over the target, then the directory is fsynced so the rename
itself is durable: a reader sees the old file or the new one, never half of one.
`events.jsonl` is the exception: it is a timeline, appended one whole line per
`write()` (O_APPEND), and a reader skips a torn last line, which only a power loss
can leave (a killed process cannot: the kernel already has the bytes).

Both writers pass the text through `redact` first: whatever a step produced, no
secret the process knows is written under `.agent/`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from agent_cli.durable import redact
from agent_cli.durable.errors import CorruptRecord

SCHEMA_VERSION = 1


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=_default) + "\n"


def _default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically replace `path` with `data`, stamped with `schema_version`."""
    if "schema_version" not in data:
        data = {"schema_version": SCHEMA_VERSION, **data}
    write_text(path, dumps(data))


def write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(redact.text(text))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: Path) -> dict[str, Any]:
    """Read a file we wrote; anything else is a `CorruptRecord` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _corrupt(path, f"it is not UTF-8 text ({exc.reason})") from exc
    if not text.strip():
        raise _corrupt(path, "it is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _corrupt(path, f"it is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise _corrupt(path, "it does not hold a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise _corrupt(path, f"its schema_version is {version!r}, expected {SCHEMA_VERSION}")
    return data


def _corrupt(path: Path, why: str) -> CorruptRecord:
    return CorruptRecord(
        f"cannot read {path}: {why}; the file is truncated or was edited by hand",
        hint="restore it from a backup, or delete it to make that step run again on resume",
    )


def append_line(path: Path, data: dict[str, Any]) -> None:
    line = redact.text(json.dumps(data, ensure_ascii=False, default=_default)) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The events of a timeline; a torn final line is skipped, a torn middle is not."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[dict[str, Any]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if n == len(lines):
                break
            raise _corrupt(path, f"line {n} is not valid JSON") from exc
    return out
