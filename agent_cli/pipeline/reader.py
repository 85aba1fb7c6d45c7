"""The read tools of write_code and fix_code: `read_file` and `find`, on the worktree.

The model asks for lines it was not shown; every path it names is confined like an
edit's (no absolute paths, no `..`, nothing under `.git/`, no symbolic link out of
the repository). Results are numbered like the prompt's views (`  123| text`), cut
to a line and a character limit, and what was shown is recorded as `FileView`s for
the step artifact. The worktree is the base commit plus the edits the step already
made, which a re-executed step rebuilds identically, so a helper run again after a
crash returns the same text and the next request matches the journal.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent_cli.pipeline.artifacts import FileView, Find, ReadFile
from agent_cli.pipeline.windows import numbered
from agent_cli.search.symbols import lines_of
from agent_cli.workspace.edits import confine
from agent_cli.workspace.errors import EditRejected

MAX_CALLS = 5  # per answer (a file in write_code, an attempt in fix_code)
MAX_READ_LINES = 200
MAX_READ_CHARS = 16_000
MAX_FIND_HITS = 40
MAX_HIT_CHARS = 200
MAX_LINE_CHARS = 2_000


class Reader:
    """`Helpers` for `ModelService.ask` over the worktree at `root`."""

    names = frozenset({"read_file", "find"})
    max_calls = MAX_CALLS

    def __init__(self, root: Path, call_for: str, shown: list[FileView]) -> None:
        self.root = Path(root)
        self.call_for = call_for
        self.shown = shown  # appended to

    def run(self, name: str, tool_input: dict[str, Any], room_chars: int) -> tuple[str, bool]:
        schema: type[ReadFile | Find] = ReadFile if name == "read_file" else Find
        try:
            args = schema.model_validate(tool_input)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                 for e in exc.errors()[:5])
            return f"{name}: bad input ({problems})", True
        limit = min(MAX_READ_CHARS, room_chars)
        if limit < 500:
            return "No room is left in this prompt for more text; submit your answer now.", True
        if "\0" in args.path or (isinstance(args, Find) and "\0" in args.text):
            return f"{name}: a path or text with a NUL character cannot be looked up", True
        try:
            if isinstance(args, ReadFile):
                return self._read(args, limit), False
            return self._find(args, limit), False
        except EditRejected as exc:
            return f"{name}: {exc.message}", True
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            return f"{name}: could not read: {exc}", True

    def _read(self, args: ReadFile, limit: int) -> str:
        target = confine(self.root, args.path)
        if not target.is_file():
            raise EditRejected(f"{args.path}: no such file (yet)")
        data = target.read_bytes()
        if b"\0" in data[:8192]:
            raise EditRejected(f"{args.path} is a binary file")
        lines = lines_of(data.decode("utf-8", "replace"))
        n = len(lines)
        if args.end_line < args.start_line:
            raise EditRejected(f"end_line {args.end_line} is before start_line {args.start_line}")
        if n and (args.end_line < 1 or args.start_line > n):
            raise EditRejected(f"lines {args.start_line}-{args.end_line} are outside {args.path}, "
                               f"which has {n} lines")
        start = min(max(1, args.start_line), max(n, 1))
        end = min(args.end_line, n, start + MAX_READ_LINES - 1)
        body, end = _fit(lines, start, end, limit - 200)
        cut = " (cut to fit; ask again from the next line)" if end < min(args.end_line, n) else ""
        header = f"{args.path}, lines {start}-{end} of {n}{cut}:"
        if n:
            self.shown.append(FileView(path=args.path, call_for=self.call_for, via="read_file",
                                       lines=n, ranges=[(start, end)]))
        return header + "\n" + (body or "(the file is empty)")

    def _find(self, args: Find, limit: int) -> str:
        if not args.text.strip():
            raise EditRejected("find needs some text to look for")
        where = "." if args.path.strip() in ("", ".", "./") else args.path
        target = self.root if where == "." else confine(self.root, where)
        if not target.exists():
            raise EditRejected(f"{args.path}: no such file or directory")
        relative = "." if target == self.root.resolve() else target.relative_to(
            self.root.resolve()).as_posix()
        out = subprocess.run(
            ["git", "--literal-pathspecs", "-c", "grep.column=false", "-c", "grep.fullName=false",
             "-c", "grep.patternType=fixed", "grep", "--untracked", "-z", "-n", "-I", "-F",
             "--no-color", "-e", args.text, "--", relative],
            cwd=self.root, capture_output=True, check=False, timeout=30)
        hits: list[tuple[str, int, str]] = []
        for raw in out.stdout.decode("utf-8", "replace").splitlines():
            name, digits, found = (raw.split("\0", 2) + ["", ""])[:3]
            if digits.isdigit():
                hits.append((name, int(digits), found))
        if not hits:
            return f"No line of {where} contains {args.text!r}."
        lines, used = [], 0
        for path, number, text in hits[:MAX_FIND_HITS]:
            line = f"{path}:{number}: {text[:MAX_HIT_CHARS]}"
            if used + len(line) > limit - 200:
                break
            lines.append(line)
            used += len(line) + 1
        listed = hits[:len(lines)]
        for path in dict.fromkeys(hit[0] for hit in listed):
            numbers = [hit[1] for hit in listed if hit[0] == path]
            self.shown.append(FileView(path=path, call_for=self.call_for, via="find",
                                       lines=_count_lines(self.root / path),
                                       ranges=[(n, n) for n in numbers]))
        more = f" (the first {len(lines)} of {len(hits)})" if len(hits) > len(lines) else ""
        return f"Lines containing {args.text!r} in {where}{more}:\n" + "\n".join(lines)


def _fit(lines: list[str], start: int, end: int, limit: int) -> tuple[str, int]:
    """Numbered lines start..end, ending early so that the text stays under `limit`;
    a line longer than MAX_LINE_CHARS (minified code) is cut and says so."""
    used, last, shown = 0, start - 1, []
    for i in range(start, end + 1):
        line = lines[i - 1]
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + f" ... (line cut: {len(line):,} characters)"
        used += len(line) + 8
        if used > limit and last >= start:
            break
        shown.append(line)
        last = i
    return numbered(shown, start), last


def _count_lines(path: Path) -> int:
    """Lines as `read_file` numbers them (a last line without a newline counts)."""
    try:
        return len(lines_of(path.read_bytes().decode("utf-8", "replace")))
    except OSError:
        return 0
