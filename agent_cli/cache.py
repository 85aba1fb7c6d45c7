"""Caches under `.agent/cache/`, stored as JSON and never unpickled.

diskcache pickles keys and values by default, and a repository is untrusted input:
a cache database committed into it (or planted under `.agent/`) must not be able to
run code when we read it. `SafeJSONDisk` stores keys and values as compressed JSON
bytes (values over RAW_ABOVE as plain JSON) and refuses any row that would need
unpickling, instead of loading it. What it stores is redacted (`durable.redact`): a
cached baseline test run must not keep a key its output printed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_cli.durable import redact
from agent_cli.errors import AgentError

if TYPE_CHECKING:
    import diskcache


RAW_ABOVE = 1 << 20
"""Values this large (a repository's commit index: 5.8 MB of JSON for sympy) are
stored as plain JSON: inflating them cost 24 ms of every warm `agent locate`, for
3.6 MB of disk per indexed commit."""


class CacheCorrupt(AgentError):
    """A cache that cannot be read safely: a database sqlite cannot open, or a row that
    would need unpickling. Nothing was changed; the hint says how to remove the cache
    (it holds derived data only)."""

    exit_code = 2


def cache_error(exc: Exception, where: Path, message: str | None = None) -> AgentError:
    """What a failing cache operation means: a disk that is full or cannot be written
    (`StorageError`, fix the disk) or a damaged cache (`CacheCorrupt`, delete it)."""
    import errno

    from agent_cli.durable.fsio import storage_error

    if isinstance(exc, OSError):
        found = storage_error(exc, where)
        if found is not None:
            return found
    text = str(exc).lower()
    for words, code in (("disk is full", errno.ENOSPC), ("readonly", errno.EROFS),
                        ("read-only", errno.EROFS)):
        if words in text:
            return storage_error(OSError(code, text), where)  # type: ignore[return-value]
    if "unable to open" in text and not os.access(_existing(where), os.W_OK):
        return storage_error(OSError(errno.EROFS if _read_only(where) else errno.EACCES, text),
                             where)  # type: ignore[return-value]
    return damaged(message or f"the cache {where} is damaged: {exc}", where)


def _disk_or_damage(exc: Exception, where: Path) -> Exception:
    """`cache_error` for sqlite's errors; an OSError only when the disk caused it."""
    if isinstance(exc, OSError):
        from agent_cli.durable.fsio import storage_error

        return storage_error(exc, where) or exc
    return cache_error(exc, where)


def _existing(path: Path) -> Path:
    return next((p for p in (path, *path.parents) if p.exists()), Path("."))


def _read_only(path: Path) -> bool:
    return bool(os.statvfs(_existing(path)).f_flag & os.ST_RDONLY)


class _Unreadable(CacheCorrupt):
    """An entry whose bytes are not the compressed JSON we write (a damaged value
    file): dropped and rebuilt, never an error."""


@functools.cache
def _safe_disk_class() -> type:
    import diskcache
    from diskcache.core import MODE_BINARY, MODE_RAW

    class SafeJSONDisk(diskcache.Disk):
        def put(self, key: Any) -> tuple[Any, bool]:
            text = redact.text(json.dumps(key, sort_keys=True))
            return super().put(zlib.compress(text.encode(), 1))

        def get(self, key: Any, raw: bool) -> Any:
            if not raw:
                raise CacheCorrupt(f"refusing a pickled cache key in {self._directory}")
            return json.loads(zlib.decompress(super().get(key, raw)))

        def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
            if read:
                raise TypeError("SafeJSONDisk stores JSON values, not files")
            data = redact.text(json.dumps(value)).encode()
            if len(data) < RAW_ABOVE:
                data = zlib.compress(data, 1)
            return super().store(data, False, key=key)

        def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
            if mode not in (MODE_RAW, MODE_BINARY) or read:
                raise damaged(
                    f"refusing a cache entry of mode {mode} in {self._directory}: "
                    "only JSON entries are read",
                    Path(self._directory),
                )
            data = super().fetch(mode, filename, value, read)
            try:
                # A zlib stream starts with 0x78 ("x"), which no JSON text does.
                return json.loads(zlib.decompress(data) if data[:1] == b"x" else data)
            except (zlib.error, ValueError) as exc:
                raise _Unreadable(f"unreadable cache entry in {self._directory}: {exc}") from exc

    return SafeJSONDisk


@functools.cache
def _safe_cache_class() -> type:
    import sqlite3

    import diskcache

    class SafeCache(diskcache.Cache):
        def get(self, key: Any, default: Any = None, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().get(key, default, *args, **kwargs)
            except _Unreadable:
                # Derived data: the caller rebuilds what is missing.
                self.delete(key)
                return default

        def set(self, *args: Any, **kwargs: Any) -> Any:
            # A full disk is sqlite's "database or disk is full" or an OSError of a
            # value file: the disk's fault, not a damaged cache.
            try:
                return super().set(*args, **kwargs)
            except (sqlite3.OperationalError, OSError) as exc:
                raise _disk_or_damage(exc, Path(self.directory)) from exc

        @contextlib.contextmanager
        def transact(self, retry: bool = False) -> Iterator[None]:
            try:
                with super().transact(retry):
                    yield
            except (sqlite3.OperationalError, OSError) as exc:
                raise _disk_or_damage(exc, Path(self.directory)) from exc

    return SafeCache


def open_cache(agent_dir: Path, name: str) -> diskcache.Cache:
    """The cache `name` under `<agent_dir>/cache/`, created on first use."""
    import sqlite3

    path = Path(agent_dir) / "cache" / name
    try:
        cache: diskcache.Cache = _safe_cache_class()(str(path), disk=_safe_disk_class())
    except (sqlite3.DatabaseError, OSError) as exc:
        # A file where a directory should be (`.agent/cache` a file) is what to remove.
        chain = [Path(agent_dir), Path(agent_dir) / "cache", path]
        blocker = next((p for p in chain if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise damaged(f"cannot open the cache {path}: {exc}", blocker) from exc
        raise cache_error(exc, path, f"cannot open the cache {path}: {exc}") from exc
    return cache


def damaged(message: str, remove: Path) -> CacheCorrupt:
    """The error for a cache sqlite cannot read, saying what to delete."""
    return CacheCorrupt(
        message, hint=f"it holds only derived data; delete it and run again: rm -rf {remove}"
    )
