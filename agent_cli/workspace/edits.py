"""The edit format the model writes, and applying it to a worktree.

Edits are exact-string replacements (plus whole-file create and delete) because
that is what models reproduce most reliably: no line numbers to drift, no unified
diff headers to get wrong. Models still copy text imperfectly, so a `replace` is
matched in tiers, and the outcome says which tier matched:

1. ``exact`` — `old` occurs exactly once (``line-endings`` when the file uses CRLF
   and `old` was written with plain newlines);
2. ``trailing-whitespace`` — the same lines, ignoring whitespace at line ends;
3. ``indentation-shift`` — the same lines after adding or removing one uniform
   indent; `new` is re-indented by that same shift;
4. ``line-numbers`` — `old` was copied with the `  123| ` prefixes of a numbered view
   (consecutive numbers on every line): matched without them, and `new` loses them too.

A tier that matches more than once is an error asking for more context, never a
guess. When nothing matches, the error carries the nearest block of the file (by
difflib similarity over windows of the same number of lines, with line numbers), so
the model can copy the real text and retry.

Paths come from a model and are untrusted, for reading as for writing: `confine`
refuses absolute paths, `..`, anything under `.git/` in any letter case, and anything
whose resolved location (following symlinks, also of parent directories) leaves the
root. `confine_in_commit` applies the same rules to a commit's tree, following the
symlinks git stores, so a plan can be checked before any worktree exists. Each edit is
checked completely before anything is written, so a refused or failed edit changes
nothing; edits apply in order and a failed one does not stop the rest.

Files are read and written as bytes decoded with ``surrogateescape``, so a file that
is not UTF-8 survives an edit of some other part of it byte for byte.
"""

from __future__ import annotations

import difflib
import errno
import os
import re
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict

from agent_cli.workspace.errors import EditRejected

_NEAREST_MAX_LINES = 120
_EXHAUSTIVE_WINDOWS = 300
_TOKEN = re.compile(r"\w+|[^\w\s]")
_SUGGEST_MAX_FILES = 20_000


class Edit(BaseModel):
    """One change to one file, as proposed by the model."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    path: str
    """File path relative to the repository root, with forward slashes, e.g. `src/app.py`."""
    action: Literal["replace", "create", "delete"]
    """`replace`: swap the text `old` for `new` in an existing file. `create`: write a new
    file whose whole text is `content`. `delete`: remove the file."""
    old: str | None = None
    """For `replace`: the current text to replace, copied exactly from the file, with
    enough surrounding lines that it occurs only once."""
    new: str | None = None
    """For `replace`: the text that takes the place of `old` (an empty string removes it)."""
    content: str | None = None
    """For `create`: the complete text of the new file."""


class EditOutcome(BaseModel):
    """What happened to one `Edit`."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    path: str
    """The edit's path, as given."""
    action: Literal["replace", "create", "delete"]
    """The edit's action."""
    applied: bool
    """Whether the file now reflects the edit."""
    how: str
    """How it matched or why not: exact, line-endings, trailing-whitespace,
    indentation-shift, created, unchanged, deleted; or refused, invalid, missing, exists,
    ambiguous, not-found, binary, failed."""
    error: str | None = None
    """For an edit not applied: a message for the model, naming the file."""
    nearest: str | None = None
    """For `not-found`: the most similar block of the file, with line numbers."""


class _Failed(Exception):
    def __init__(self, how: str, message: str, nearest: str | None = None) -> None:
        super().__init__(message)
        self.how = how
        self.message = message
        self.nearest = nearest


def _lexical(path: str) -> PurePosixPath:
    """The checks that need no filesystem: a relative path, no `..`, not in `.git/`."""
    if not path or "\0" in path:
        raise EditRejected(f"refused: {path!r} is not a file path")
    pure = PurePosixPath(path)
    if pure.is_absolute() or re.match(r"^[A-Za-z]:[\\/]", path) or path.startswith("\\"):
        raise EditRejected(
            f"refused: {path} is an absolute path; use a path relative to the repository root"
        )
    if ".." in pure.parts:
        raise EditRejected(f"refused: {path} is outside the worktree")
    if any(part.lower() == ".git" for part in pure.parts):
        raise EditRejected(f"refused: {path} is inside .git/, which edits may not touch")
    if not pure.parts or pure == PurePosixPath("."):
        raise EditRejected(f"refused: {path} is the worktree itself, not a file")
    _check_length(path, pure)
    return pure


NAME_MAX = 255  # bytes in one file name (Linux, macOS; most file systems)
PATH_MAX = 1024  # bytes in a whole relative path: the worktree's own prefix must fit
# too (PATH_MAX 4096 on Linux, 1024 on macOS)


def _check_length(path: str, pure: PurePosixPath) -> None:
    """Names the file system cannot hold are refused here, with the limit, rather than
    failing as an OSError (ENAMETOOLONG) on every later read of the plan."""
    shown = path if len(path) <= 80 else f"{path[:60]}...{path[-15:]}"
    for part in pure.parts:
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > NAME_MAX:
            raise EditRejected(f"refused: {shown} has a name of {size} bytes; a file or "
                               f"directory name is at most {NAME_MAX} bytes")
    size = len(path.encode("utf-8", "surrogateescape"))
    if size > PATH_MAX:
        raise EditRejected(f"refused: {shown} is {size} bytes long; a path is at most "
                           f"{PATH_MAX} bytes")


def confine(root: Path, path: str) -> Path:
    """`root / path` if it stays inside `root`, else `EditRejected` with a message the
    model can act on. The returned path is not resolved, so deleting a symlink removes
    the link, not its target."""
    root = Path(root).resolve()
    pure = _lexical(path)
    target = root.joinpath(*pure.parts)
    try:
        rel = target.resolve().relative_to(root)
    except ValueError:
        raise EditRejected(
            f"refused: {path} is outside the worktree (through a symbolic link)"
        ) from None
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise EditRejected(f"refused: {path} cannot be resolved: {exc}") from None
    if not rel.parts:
        raise EditRejected(f"refused: {path} is the worktree itself, not a file")
    if any(part.lower() == ".git" for part in rel.parts):
        raise EditRejected(f"refused: {path} leads into .git/ through a symbolic link")
    return target


_MAX_LINKS = 40  # as the kernel's limit on symlinks followed in one lookup


def confine_in_commit(repo: Path, commit: str, path: str) -> str:
    """`path` resolved inside the tree of `commit` (as `confine` would resolve it in a
    worktree of that commit), or `EditRejected`. Symlinks stored in the tree are
    followed; one that points outside the repository (absolute, or up past its root)
    or into `.git` is refused. A path that does not exist yet is fine."""
    from agent_cli.workspace._git import run_git

    pending = list(_lexical(path).parts)
    done: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not done:
                raise EditRejected(f"refused: {path} is outside the worktree (through a "
                                   "symbolic link)")
            done.pop()
            continue
        if part.lower() == ".git":
            raise EditRejected(f"refused: {path} leads into .git/ through a symbolic link")
        here = "/".join([*done, part])
        listed = run_git(repo, "--literal-pathspecs", "ls-tree", "-z", commit, "--", here,
                         check=False).stdout
        mode, _, rest = listed.partition(b" ")
        if mode == b"120000":
            links += 1
            if links > _MAX_LINKS:
                raise EditRejected(f"refused: {path} cannot be resolved: too many symbolic links")
            oid = rest.split(b" ", 1)[1].split(b"\t", 1)[0].decode()
            target = run_git(repo, "cat-file", "blob", oid).stdout.decode("utf-8", "replace")
            if target.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", target):
                raise EditRejected(f"refused: {path} is outside the worktree (through a "
                                   "symbolic link)")
            pending = [*PurePosixPath(target).parts, *pending]
            continue
        done.append(part)
    if not done:
        raise EditRejected(f"refused: {path} is the worktree itself, not a file")
    return "/".join(done)


def apply_edits(root: Path, edits: list[Edit]) -> list[EditOutcome]:
    """Apply `edits` in order under `root`; one outcome per edit, in the same order."""
    root = Path(root).resolve()
    return [_apply_one(root, edit) for edit in edits]


def _apply_one(root: Path, edit: Edit) -> EditOutcome:
    try:
        target = confine(root, edit.path)
        if edit.action == "replace":
            how = _replace(root, target, edit)
        elif edit.action == "create":
            how = _create(target, edit)
        else:
            how = _delete(root, target, edit)
    except EditRejected as exc:
        return EditOutcome(
            path=edit.path, action=edit.action, applied=False, how="refused", error=exc.message
        )
    except _Failed as exc:
        return EditOutcome(
            path=edit.path,
            action=edit.action,
            applied=False,
            how=exc.how,
            error=exc.message,
            nearest=exc.nearest,
        )
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            # The disk's fault, not the edit's: telling the model would pay for nothing.
            from agent_cli.durable.fsio import as_storage_error

            raise as_storage_error(exc, root / edit.path) from exc
        return EditOutcome(
            path=edit.path,
            action=edit.action,
            applied=False,
            how="failed",
            error=f"{edit.path}: {exc.strerror or exc}",
        )
    return EditOutcome(path=edit.path, action=edit.action, applied=True, how=how)


# -- actions -------------------------------------------------------------------------


def _replace(root: Path, target: Path, edit: Edit) -> str:
    if not edit.old:
        raise _Failed("invalid", f"{edit.path}: a replace needs `old`, the text to replace")
    if edit.new is None:
        raise _Failed("invalid", f"{edit.path}: a replace needs `new` (empty to remove `old`)")
    text = _read_text(root, target, edit.path)
    old, new = edit.old, edit.new
    # A CRLF file edited with LF text: match and write in LF, then restore CRLF.
    crlf = "\r\n" in text and text.count("\r\n") == text.count("\n") and "\r" not in old
    work = text.replace("\r\n", "\n") if crlf else text
    if crlf:
        new = new.replace("\r\n", "\n")
    result, how = _match_and_replace(work, old, new, edit.path)
    if crlf:
        result = result.replace("\n", "\r\n")
        how = "line-endings" if how == "exact" else how
    if result != text:
        target.write_bytes(result.encode("utf-8", "surrogateescape"))
    return how


def _create(target: Path, edit: Edit) -> str:
    if edit.content is None:
        raise _Failed("invalid", f"{edit.path}: a create needs `content`, the whole file")
    data = edit.content.encode("utf-8", "surrogateescape")
    if target.exists() or target.is_symlink():
        if target.is_file() and target.read_bytes() == data:
            return "unchanged"
        raise _Failed(
            "exists",
            f"{edit.path} already exists; use action `replace` to change part of it, "
            "or `delete` it first",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return "created"


def _delete(root: Path, target: Path, edit: Edit) -> str:
    if target.is_dir() and not target.is_symlink():
        raise _Failed("invalid", f"{edit.path} is a directory; delete the files in it one by one")
    if not (target.exists() or target.is_symlink()):
        raise _Failed("missing", f"{edit.path}: no such file{_suggest(root, edit.path)}")
    target.unlink()
    # git does not track directories; an emptied one would still shadow imports.
    parent = target.parent
    while parent != root and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
    return "deleted"


def _read_text(root: Path, target: Path, shown: str) -> str:
    if target.is_dir():
        raise _Failed("invalid", f"{shown} is a directory, not a file")
    if not target.is_file():
        raise _Failed(
            "missing",
            f"{shown}: no such file{_suggest(root, shown)}; use action `create` for a new file",
        )
    data = target.read_bytes()
    if b"\0" in data[:8192]:
        raise _Failed("binary", f"{shown} is a binary file; it cannot be edited as text")
    return data.decode("utf-8", "surrogateescape")


# -- matching ------------------------------------------------------------------------


def _match_and_replace(text: str, old: str, new: str, path: str) -> tuple[str, str]:
    count = text.count(old)
    if count == 1:
        return text.replace(old, new, 1), "exact"
    if count > 1:
        starts, i = [], text.find(old)
        while i != -1:
            starts.append(text.count("\n", 0, i) + 1)
            i = text.find(old, i + 1)
        raise _ambiguous(path, starts)

    lines = _split_keepends(text)
    old_lines = _split(old)
    new_lines = _split(new)
    if not any(line.strip() for line in old_lines):
        raise _Failed("not-found", f"{path}: `old` is only whitespace and does not occur")
    m = len(old_lines)
    windows = range(len(lines) - m + 1)

    hits = [i for i in windows if _same_rstripped(lines[i : i + m], old_lines)]
    if len(hits) == 1:
        return _splice(lines, hits[0], m, new_lines), "trailing-whitespace"
    if hits:
        raise _ambiguous(path, [i + 1 for i in hits])

    shifts = [(i, s) for i in windows if (s := _indent_shift(lines[i : i + m], old_lines))]
    if len(shifts) == 1:
        i, (kind, prefix) = shifts[0]
        return _splice(lines, i, m, _reindent(new_lines, kind, prefix)), "indentation-shift"
    if shifts:
        raise _ambiguous(path, [i + 1 for i, _ in shifts])

    unnumbered = _without_line_numbers(old_lines)
    if unnumbered is not None:  # copied with the `  123| ` prefix of a numbered view
        plain_new = _without_line_numbers(new_lines, strict=False) or []
        end = "\n" if old.endswith("\n") else ""
        result, _ = _match_and_replace(text, "\n".join(unnumbered) + end,
                                       "\n".join(plain_new) + ("\n" if new.endswith("\n") else ""),
                                       path)
        return result, "line-numbers"

    raise _not_found(path, lines, old_lines)


_NUMBERED = re.compile(r"^ *(\d+)\| ?")


def _without_line_numbers(lines: list[str], strict: bool = True) -> list[str] | None:
    """`lines` without the `NNNNN| ` prefixes of the numbered views the model is shown,
    when every line has one and the numbers count up by one (strict); else None. With
    `strict=False` (for `new`), the prefixed lines lose it and the others stay."""
    if not lines:
        return None if strict else []
    matches = [_NUMBERED.match(line) for line in lines]
    if strict:
        if not all(matches):
            return None
        numbers = [int(m.group(1)) for m in matches if m]
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            return None
    return [line[m.end():] if m else line for line, m in zip(lines, matches)]


def _ambiguous(path: str, line_numbers: list[int]) -> _Failed:
    shown = ", ".join(str(n) for n in line_numbers[:10])
    return _Failed(
        "ambiguous",
        f"{path}: `old` occurs {len(line_numbers)} times (starting at lines {shown}); "
        "include more surrounding lines in `old` so that it occurs exactly once",
    )


def _split(s: str) -> list[str]:
    """Lines of `s` without their newlines; a final newline does not add an empty line.
    Only `\\n` separates lines (str.splitlines would also split on form feeds)."""
    parts = s.split("\n")
    return parts[:-1] if parts and parts[-1] == "" else parts


def _split_keepends(s: str) -> list[str]:
    parts = s.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def _same_rstripped(window: list[str], old_lines: list[str]) -> bool:
    return all(a.rstrip() == b.rstrip() for a, b in zip(window, old_lines, strict=True))


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _indent_shift(window: list[str], old_lines: list[str]) -> tuple[str, str] | None:
    """("add", p) if every non-blank file line is `p + old line`, ("remove", p) if every
    old line is `p + file line`; None when the shift is not uniform or is zero."""
    shift: tuple[str, str] | None = None
    for f_line, o_line in zip(window, old_lines, strict=True):
        f, o = f_line.rstrip(), o_line.rstrip()
        if not f and not o:
            continue
        if not f or not o or f.lstrip() != o.lstrip():
            return None
        fi, oi = _indent(f), _indent(o)
        if fi.endswith(oi):
            this = ("add", fi[: len(fi) - len(oi)])
        elif oi.endswith(fi):
            this = ("remove", oi[: len(oi) - len(fi)])
        else:
            return None
        if shift is None:
            shift = this
        elif this != shift:
            return None
    return shift if shift and shift[1] else None


def _reindent(lines: list[str], kind: str, prefix: str) -> list[str]:
    if kind == "add":
        return [prefix + line if line.strip() else line for line in lines]
    return [
        line[len(prefix) :] if line.startswith(prefix) else line.lstrip(" \t") for line in lines
    ]


def _splice(lines: list[str], start: int, count: int, new_lines: list[str]) -> str:
    replacement = "\n".join(new_lines)
    if new_lines and lines[start + count - 1].endswith("\n"):
        replacement += "\n"
    return "".join(lines[:start]) + replacement + "".join(lines[start + count :])


def _not_found(path: str, lines: list[str], old_lines: list[str]) -> _Failed:
    base = (
        f"{path}: `old` was not found (tried exact, trailing-whitespace and "
        "indentation-shift matching)"
    )
    plain = [line.rstrip("\n") for line in lines]
    if not plain:
        return _Failed("not-found", f"{base}; the file is empty")
    start, ratio = _nearest_window(plain, old_lines)
    size = min(len(old_lines), len(plain), _NEAREST_MAX_LINES)
    width = len(str(start + size))
    nearest = "\n".join(
        f"{n:>{width}} | {plain[n - 1]}" for n in range(start + 1, start + size + 1)
    )
    return _Failed(
        "not-found",
        f"{base}. The most similar text is at lines {start + 1}-{start + size} "
        f"({ratio:.0%} similar):\n{nearest}\n"
        "Copy the current text exactly into `old` and retry.",
        nearest=nearest,
    )


def _nearest_window(lines: list[str], old_lines: list[str]) -> tuple[int, float]:
    """(start index, similarity) of the window of len(old_lines) lines most like `old`.

    Compared as sequences of tokens (words and punctuation), not characters: character
    difflib on blocks of a few dozen lines takes about half a second per window, and
    whitespace is already forgiven by the matching tiers."""
    size = min(len(old_lines), len(lines))
    line_tokens = [_TOKEN.findall(line) for line in lines]
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    old_tokens = _TOKEN.findall("\n".join(old_lines))
    matcher.set_seq2(old_tokens)  # seq2 is the side SequenceMatcher preprocesses: once
    scored = []
    for i in _candidate_windows(line_tokens, old_tokens, size):
        matcher.set_seq1([t for tokens in line_tokens[i : i + size] for t in tokens])
        scored.append((matcher.quick_ratio(), i))
    # quick_ratio is an upper bound and cheap; compute the real ratio for the best few.
    best_i, best = 0, -1.0
    for _, i in sorted(scored, key=lambda s: (-s[0], s[1]))[:25]:
        matcher.set_seq1([t for tokens in line_tokens[i : i + size] for t in tokens])
        ratio = matcher.ratio()
        if ratio > best or (ratio == best and i < best_i):
            best_i, best = i, ratio
    return best_i, best


def _candidate_windows(line_tokens: list[list[str]], old_tokens: list[str], size: int) -> list[int]:
    """Window starts worth comparing with difflib: all of them in a small file; in a
    large one, those sharing the most rare tokens with `old`, each token weighted by
    1 / the number of lines it is on."""
    count = len(line_tokens) - size + 1
    if count <= _EXHAUSTIVE_WINDOWS:
        return list(range(count))
    wanted = set(old_tokens)
    shared = [set(tokens) & wanted for tokens in line_tokens]
    spread: dict[str, int] = {}
    for tokens in shared:
        for t in tokens:
            spread[t] = spread.get(t, 0) + 1
    per_line = [sum(1 / spread[t] for t in tokens) for tokens in shared]
    window = sum(per_line[:size])
    sums = [window]
    for i in range(size, len(line_tokens)):
        window += per_line[i] - per_line[i - size]
        sums.append(window)
    return sorted(range(count), key=lambda i: -sums[i])[:_EXHAUSTIVE_WINDOWS]


def _suggest(root: Path, path: str) -> str:
    """ "; did you mean ...?" from the files under root, or nothing."""
    names: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [
            d for d in dirnames if d.lower() != ".git" and d not in ("node_modules", ".agent")
        ]
        rel = Path(dirpath).relative_to(root)
        names.extend((rel / f).as_posix() for f in filenames)
        if len(names) > _SUGGEST_MAX_FILES:
            break
    close = difflib.get_close_matches(path, names, n=3, cutoff=0.6)
    if not close:
        by_name = [n for n in names if PurePosixPath(n).name == PurePosixPath(path).name]
        close = sorted(by_name)[:3]
    return f"; did you mean {' or '.join(close)}?" if close else ""
