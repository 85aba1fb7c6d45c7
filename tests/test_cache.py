"""agent_cli.cache: JSON values, compressed unless large, read back either way."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

import pytest

from agent_cli import cache as cache_mod
from agent_cli.cache import open_cache


def stored_bytes(agent_dir: Path) -> list[bytes]:
    """Every value as stored: inline in the database or in its file."""
    root = agent_dir / "cache" / "c"
    db = sqlite3.connect(root / "cache.db")
    rows = db.execute("SELECT filename, value FROM Cache").fetchall()
    db.close()
    return [(root / name).read_bytes() if name else bytes(value) for name, value in rows]


def test_small_values_are_compressed_large_ones_plain(tmp_path: Path) -> None:
    big = {"postings": ["term:1,2,3"] * 200_000}  # about 2.6 MB of JSON
    with open_cache(tmp_path, "c") as c:
        c.set("small", {"a": [1, 2, 3]})
        c.set("big", big)
    stored = stored_bytes(tmp_path)
    assert sorted(b[:1] for b in stored) == [b"x", b"{"]  # zlib's header, plain JSON
    assert max(len(b) for b in stored) >= cache_mod.RAW_ABOVE
    with open_cache(tmp_path, "c") as c:
        assert c.get("small") == {"a": [1, 2, 3]}
        assert c.get("big") == big


def test_a_large_value_compressed_by_an_older_version_still_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = {"postings": ["term:1,2,3"] * 200_000}
    monkeypatch.setattr(cache_mod, "RAW_ABOVE", 1 << 40)  # as before: everything compressed
    with open_cache(tmp_path, "c") as c:
        c.set("big", big)
    assert [zlib.decompress(b)[:1] for b in stored_bytes(tmp_path)] == [b"{"]
    monkeypatch.undo()
    with open_cache(tmp_path, "c") as c:
        assert c.get("big") == big
