"""The few git reads the index needs, as plain `git` subprocesses.

GitPython costs ~66 ms to import, more than a warm `agent locate` can spare, and we
need only three things: the commit, its tree with blob ids and sizes (`ls-tree -r
-l`), and blob contents in one batch (`cat-file --batch`). Reading blobs from the
object store rather than the work tree keeps the index a function of the commit:
uncommitted edits never leak into a cache entry keyed by that commit.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


class GitError(Exception):
    """A git command failed; callers turn it into a UsageError with a hint."""


@dataclass(frozen=True, slots=True)
class TreeEntry:
    path: str
    blob: str
    size: int


def _git(repo: Path, *args: str, input: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args],
            input=input,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise GitError("git is not installed or not on PATH") from exc
    if proc.returncode != 0:
        raise GitError(proc.stderr.decode(errors="replace").strip() or f"git {args[0]} failed")
    return proc.stdout


def toplevel_and_commit(repo: Path, rev: str) -> tuple[Path | None, str | None]:
    """(work tree root, commit of `rev`) in one `git rev-parse`; None for what is not
    there: no repository at all, or a repository where `rev` names no commit (no
    commits yet, or an unknown revision)."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--show-toplevel", f"{rev}^{{commit}}"],
            capture_output=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise GitError("git is not installed or not on PATH") from exc
    lines = proc.stdout.decode(errors="replace").splitlines()
    # Outside a repository stdout is empty; inside one, the root comes first even when
    # the revision then fails (git echoes the unresolved argument after it).
    root = Path(lines[0]) if lines else None
    if proc.returncode == 0 and len(lines) >= 2:
        return root, lines[1].strip()
    return root, None


def git_common_dir(repo: Path) -> Path:
    out = _git(repo, "rev-parse", "--path-format=absolute", "--git-common-dir")
    return Path(out.decode().strip())


def ls_tree(repo: Path, commit: str) -> list[TreeEntry]:
    """Regular files of `commit` (no symlinks, no submodules) with blob id and size."""
    out = _git(repo, "ls-tree", "-r", "-l", "-z", "--full-tree", commit)
    entries = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, blob, size = meta.split()
        # 120000 is a symlink, 160000 a submodule; neither has content of its own here.
        if kind != b"blob" or mode == b"120000" or not size.isdigit():
            continue
        entries.append(TreeEntry(path.decode("utf-8", "surrogateescape"), blob.decode(), int(size)))
    return entries


def read_blobs(repo: Path, blobs: list[str]) -> dict[str, bytes]:
    """Contents of `blobs` in one `cat-file --batch`; missing objects are left out."""
    if not blobs:
        return {}
    out = _git(repo, "cat-file", "--batch", input="".join(b + "\n" for b in blobs).encode())
    contents: dict[str, bytes] = {}
    pos = 0
    while pos < len(out):
        eol = out.index(b"\n", pos)
        header = out[pos:eol].split()
        pos = eol + 1
        if len(header) != 3:  # "<sha> missing": a blob the object store lacks
            continue
        size = int(header[2])
        contents[header[0].decode()] = out[pos : pos + size]
        pos += size + 1
    return contents
