"""Files that survive a crash.

Every JSON file is written to a temporary file in the same directory, flushed,
fsynced and renamed over the target, then the directory is fsynced so the rename
itself is durable: a reader sees the old file or the new one, never half of one.
`events.jsonl` is the exception: it is a timeline, appended one whole line per
`write()` (O_APPEND), and a reader skips a torn last line, which only a power loss
can leave (a killed process cannot: the kernel already has the bytes).

Both writers pass the text through `redact` first: whatever a step produced, no
secret the process knows is written under `.agent/`.

A write the disk refuses (full, read-only, not writable, a file where a directory
should be) is a `StorageError` naming the cause and the fix, never a bare OSError:
`storage_error` tells those apart from real bugs. The temporary file of a refused
write is removed; one a killed process left behind (`.NAME.XXXX.tmp`) is swept by
the store (`RunStore.sweep`).
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from agent_cli.durable import redact
from agent_cli.durable.errors import CorruptRecord, StorageError

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


TMP_SUFFIX = ".tmp"


def write_text(path: Path, text: str) -> None:
    data = redact.text(text)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    except OSError as exc:
        raise as_storage_error(exc, path) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise as_storage_error(exc, path) from exc
        raise
    fsync_dir(path.parent)


# What the disk (not our code) refused, and what the user does about it.
_FULL = (errno.ENOSPC, errno.EDQUOT)
_STORAGE_ERRNOS = (*_FULL, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                   errno.EEXIST, errno.EISDIR)


def storage_error(exc: OSError, path: Path | str | None = None) -> StorageError | None:
    """The `StorageError` for an OSError the disk raised at `path` (full, read-only,
    not writable, a file in a directory's place); None for anything else."""
    code = exc.errno
    if code not in _STORAGE_ERRNOS:
        return None
    where = Path(path if path is not None else (exc.filename or "."))
    if code in _FULL:
        what = "disk quota exceeded" if code == errno.EDQUOT else "no space left on the disk"
        return StorageError(f"{what}: cannot write {where}",
                            hint=_then(f"free some space there (df -h {_existing(where)})"),
                            errno=code)
    if code == errno.EROFS:
        return StorageError(f"{where} is on a read-only file system",
                            hint=_then(f"make {_existing(where)} writable (remount it read-write)"),
                            errno=code)
    if code in (errno.EACCES, errno.EPERM):
        return StorageError(f"permission denied: cannot write {where}",
                            hint=_then(f"make {_existing(where)} writable for this user "
                                       f"(ls -ld {_existing(where)})"), errno=code)
    blocker = next((p for p in (where, *where.parents) if p.exists() and not p.is_dir()), None)
    if code == errno.EISDIR or blocker is None:
        if code == errno.EEXIST:
            return None  # a plain "already exists" is a caller's bug, not the disk's
        return StorageError(f"cannot write {where}: a directory is in the way",
                            hint=_then(f"move it aside (mv {where} {where}.bak)"), errno=code)
    return StorageError(f"{blocker} is a file where agent keeps a directory",
                        hint=_then(f"move it aside (mv {blocker} {blocker}.bak)"), errno=code)


def as_storage_error(exc: OSError, path: Path | str | None = None) -> Exception:
    """`storage_error`, or the OSError itself when the disk is not the cause."""
    return storage_error(exc, path) or exc


def _then(fix: str) -> str:
    return f"{fix}, then run the command again"


def _existing(path: Path) -> Path:
    return next((p for p in (path, *path.parents) if p.is_dir()), Path("."))


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
        hint=_corrupt_hint(path),
    )


def _corrupt_hint(path: Path) -> str:
    """What deleting the file would do depends on which file it is."""
    if path.name == "run.json":  # without it the run is gone, not re-run
        return (f"restore it from a backup; the run cannot continue without it (to drop the "
                f"run: rm -rf {path.parent})")
    if path.parent.name == "calls":
        return ("restore it from a backup, or delete it: the cost views then miss that call, "
                "and a resumed step pays for it again")
    if path.parent.name == "steps":
        return "restore it from a backup, or delete it to make that step run again on resume"
    return "restore it from a backup, or delete it"


def append_line(path: Path, data: dict[str, Any]) -> None:
    line = redact.text(json.dumps(data, ensure_ascii=False, default=_default)) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
    except OSError as exc:
        raise as_storage_error(exc, path) from exc


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
