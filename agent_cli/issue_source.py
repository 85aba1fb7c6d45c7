"""Where an issue comes from: a file, stdin (`-`), `--text`, a GitHub issue URL, or
`#N` (an issue of the checkout's GitHub repository).

GitHub issues are fetched with the user's own `gh` (`gh issue view --json
title,body,comments`): its login, its host settings, nothing of ours. Whatever the
source, the text is untrusted and bounded before anything is written: at most
`MAX_BYTES`, UTF-8, no NUL bytes. A bad source is a `UsageError` (exit 2) that names
the problem and the way round it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_cli.errors import UsageError

MAX_BYTES = 1_000_000
GH_TIMEOUT = 60.0
_URL = re.compile(r"^https?://github\.com/([\w.-]+)/([\w.-]+)/issues/(\d+)/?(?:[#?].*)?$")
_NUMBER = re.compile(r"^#(\d+)$")
_REMOTE = re.compile(r"github\.com[:/]([\w.-]+)/([\w.-]+?)(?:\.git)?/?$")
_HOW = "pass ISSUE.md, - (stdin), --text TEXT, a GitHub issue URL or '#N'"


@dataclass(frozen=True)
class IssueText:
    title: str
    text: str
    source: str | None
    """A file's absolute path, an issue's URL, or None (stdin, --text)."""


def read(spec: str | None, *, text: str | None, root: Path) -> IssueText:
    if spec is not None and text is not None:
        raise UsageError("give the issue once: a FILE, -, URL or #N, or --text, not both",
                         hint=_HOW)
    if text is not None:
        return _checked(text.encode("utf-8", "surrogateescape"), "--text", None)
    if spec is None:
        raise UsageError("no issue given", hint=_HOW)
    if spec == "-":
        return _checked(sys.stdin.buffer.read(MAX_BYTES + 1), "the issue on stdin", None)
    if m := _URL.match(spec):
        owner, repo, number = m.groups()
        return _github(f"{owner}/{repo}", int(number), spec)
    if spec.startswith(("http://", "https://")):
        raise UsageError(f"not a GitHub issue URL: {spec}",
                         hint="use https://github.com/OWNER/REPO/issues/N, or save the issue "
                         "to a file and pass its path")
    if m := _NUMBER.match(spec):
        slug = github_repo(root)
        return _github(slug, int(m.group(1)), f"https://github.com/{slug}/issues/{m.group(1)}")
    return _file(Path(spec))


def _file(path: Path) -> IssueText:
    if not path.is_file():
        raise UsageError(f"issue file not found: {path}",
                         hint="write the issue in a Markdown file and pass its path, or " + _HOW)
    what = f"issue file {path}"
    try:
        if path.stat().st_size > MAX_BYTES:
            raise UsageError(f"{what} is larger than 1 MB ({path.stat().st_size:,} bytes)",
                             hint="cut it to what describes the problem (logs: the relevant "
                             "lines) and run again")
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what}: {exc.strerror or exc}",
                         hint="check the file's permissions, or pass another file") from None
    return _checked(data, what, str(path.resolve()))


def check_text(text: str, what: str, source: str | None) -> IssueText:
    """An issue's text from elsewhere (a batch's row), held to the same limits."""
    return _checked(text.encode("utf-8", "surrogateescape"), what, source)


def _checked(data: bytes, what: str, source: str | None) -> IssueText:
    """The issue's text, or a UsageError when it is too long, binary or empty."""
    if len(data) > MAX_BYTES:
        raise UsageError(f"{what} is larger than 1 MB",
                         hint="cut it to what describes the problem (logs: the relevant lines) "
                         "and run again")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} is not UTF-8 text (byte {exc.start} cannot be decoded)",
                         hint="an issue is Markdown text: save it as UTF-8") from None
    if not text.replace("\x00", "").strip():
        raise UsageError(f"{what} is empty", hint="write a title line and what goes wrong")
    if "\x00" in text:
        raise UsageError(f"{what} holds NUL bytes: it looks like a binary file, not an issue",
                         hint="pass the Markdown file that describes the issue")
    from agent_cli.search import require_words

    require_words(text, what)  # before the analysis is paid for
    first = next(line for line in text.splitlines() if line.strip())
    return IssueText(title=first.lstrip("# ").strip()[:200], text=text, source=source)


# -- GitHub ----------------------------------------------------------------------------


def github_repo(root: Path) -> str:
    """OWNER/REPO of the checkout's GitHub remote: `origin` when it is on GitHub, else
    the first remote that is."""
    names = _git(root, "remote").split()
    for name in sorted(names, key=lambda n: n != "origin"):
        if m := _REMOTE.search(_git(root, "remote", "get-url", name).strip()):
            return f"{m.group(1)}/{m.group(2)}"
    raise UsageError(f"{root} has no GitHub remote, so '#N' names no issue",
                     hint="pass the issue's URL: agent solve https://github.com/OWNER/REPO/issues/N")


def _git(root: Path, *args: str) -> str:
    from agent_cli.workspace._git import run_git

    proc = run_git(root, *args, check=False)
    return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else ""


def _github(slug: str, number: int, url: str) -> IssueText:
    gh = shutil.which("gh")
    what = f"issue #{number} of {slug}"
    if gh is None:
        raise UsageError(f"cannot fetch {what}: the GitHub CLI `gh` is not installed",
                         hint="install it (https://cli.github.com) and run gh auth login, or "
                         "save the issue to a file and run: agent solve ISSUE.md")
    try:
        proc = subprocess.run([gh, "issue", "view", str(number), "--repo", slug,
                               "--json", "title,body,comments"], capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=GH_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise UsageError(f"gh did not answer within {GH_TIMEOUT:.0f} s for {what}",
                         hint="check your network and gh auth status, then run again") from None
    if proc.returncode != 0:
        said = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"gh could not fetch {what}: {said[-1] if said else 'exit ' + str(proc.returncode)}",
                         hint="check it with: gh issue view "
                         f"{number} --repo {slug}   (and gh auth status)")
    try:
        data: dict[str, Any] = json.loads(proc.stdout)
        title = str(data["title"])
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"gh answered something that is not an issue for {what}",
                         hint=f"check it with: gh issue view {number} --repo {slug} --json "
                         "title,body,comments") from None
    parts = [f"# {title}", str(data.get("body") or "")]
    for comment in data.get("comments") or []:
        author = ((comment.get("author") or {}).get("login")) or "someone"
        parts.append(f"## Comment by @{author}\n\n{comment.get('body') or ''}")
    issue = _checked("\n\n".join(parts).encode("utf-8", "surrogateescape") + b"\n",
                     what, url)
    return IssueText(title=title.strip()[:200] or issue.title, text=issue.text, source=url)
