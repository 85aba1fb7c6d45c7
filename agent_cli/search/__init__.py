"""Issue localization: which files and symbols of a repository an issue is about.

The explore stage of the pipeline and `agent locate` both come here. No model call:
an index of the repository at a commit (cached under `<repo>/.agent/cache/index`,
see `index.py`) and a ranking of explicit pointers and lexical evidence (see
`rank.py`). Everything is validated before anything is written, so a bad call
leaves no `.agent/` behind.

Imports stay light (no GitPython, no bm25s/scipy): a warm `agent locate` has half a
second for everything, Python start-up included.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from agent_cli.errors import UsageError
from agent_cli.search.models import LocateResult, RankedFile, RankedSymbol, Symbol

__all__ = [
    "LocateResult",
    "RankedFile",
    "RankedSymbol",
    "Symbol",
    "locate_issue",
    "locate_text",
    "require_words",
]


def locate_issue(issue_path: Path, *, repo: Path, top: int = 10) -> LocateResult:
    """Rank `repo`'s files and symbols for the issue in the Markdown file `issue_path`."""
    started = time.perf_counter()
    issue_path = Path(issue_path)
    _check_top(top)
    root, sha = _check_repo(Path(repo), None)
    if not issue_path.exists():
        raise UsageError(
            f"issue file not found: {issue_path}",
            hint="pass the path of a Markdown file describing the issue, e.g. agent locate ISSUE.md",
        )
    if not issue_path.is_file():
        raise UsageError(
            f"issue path is not a file: {issue_path}",
            hint="pass the path of a Markdown file describing the issue, e.g. agent locate ISSUE.md",
        )
    try:
        text = issue_path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise UsageError(
            f"cannot read issue file {issue_path}: {exc.strerror or exc}",
            hint="check the file's permissions, or pass another file",
        ) from None
    if _blank(text):
        raise UsageError(
            f"issue file is empty: {issue_path}",
            hint="write the issue (a title line, then what goes wrong) into the file and run again",
        )
    require_words(text, f"issue file {issue_path}")
    return _locate(text, root=root, sha=sha, top=top, extra_terms=(), started=started)


def locate_text(
    issue_text: str,
    *,
    repo: Path,
    top: int = 10,
    extra_terms: Sequence[str] = (),
    commit: str | None = None,
) -> LocateResult:
    """Rank `repo`'s files and symbols for `issue_text`.

    `extra_terms` are search terms from the analysis (identifiers, phrases); they
    weigh like the issue's title. `commit` defaults to HEAD.
    """
    started = time.perf_counter()
    _check_top(top)
    root, sha = _check_repo(Path(repo), commit)
    if not issue_text or _blank(issue_text):
        raise UsageError(
            "the issue text is empty",
            hint="give the issue's title and description as the text to locate",
        )
    require_words("\n".join([issue_text, *extra_terms]), "the issue text")
    return _locate(
        issue_text, root=root, sha=sha, top=top, extra_terms=tuple(extra_terms), started=started
    )


def _blank(text: str) -> bool:
    """Nothing but whitespace, byte-order marks and NULs."""
    return not text.replace("\ufeff", "").replace("\x00", "").strip()


def require_words(text: str, what: str) -> None:
    """An issue that is only a template comment, or only an environment section, has
    nothing to rank by (or to solve): a UsageError naming `what`."""
    from agent_cli.search.issue import clean_issue

    if not any(c.isalnum() for c in clean_issue(text)):
        raise UsageError(
            f"{what} has no words outside template comments and environment details",
            hint="describe what goes wrong (a title line, then the details) and run again",
        )


def _check_top(top: int) -> None:
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise UsageError(
            f"--top must be a positive number of files, got {top!r}",
            hint="use e.g. --top 10",
        )


def _check_repo(repo: Path, commit: str | None) -> tuple[Path, str]:
    """The repository's root and the commit to index, or a UsageError saying which
    of the two is missing and how to get it."""
    from agent_cli.search import gitrepo

    if not repo.is_dir():
        raise UsageError(
            f"repository directory not found: {repo}",
            hint="pass an existing git checkout with --repo DIR",
        )
    root, sha = gitrepo.toplevel_and_commit(repo, commit or "HEAD")
    if root is None:
        raise UsageError(
            f"not a git repository: {repo}",
            hint="pass a git checkout with --repo DIR, or make one with: "
            "git init && git add -A && git commit -m init",
        )
    if sha is None and commit is None:
        raise UsageError(
            f"the repository at {root} has no commits yet",
            hint="commit the code first: git add -A && git commit -m init",
        )
    if sha is None:
        raise UsageError(
            f"unknown commit {commit!r} in {root}",
            hint=f"pass a commit that exists, see: git -C {root} log --oneline",
        )
    return root, sha


def _locate(
    text: str, *, root: Path, sha: str, top: int, extra_terms: tuple[str, ...], started: float
) -> LocateResult:
    import sqlite3

    from agent_cli.cache import cache_error, open_cache
    from agent_cli.search.history import prefetch_history, referenced_files, similar_files
    from agent_cli.search.index import load_details, load_index
    from agent_cli.search.issue import parse_issue
    from agent_cli.search.rank import PastChanges, rank

    agent_dir = root / ".agent"
    if not (agent_dir / "cache" / "index").is_dir():
        _exclude_agent_dir(root)  # first use only: a warm call spends no git call on it
    cache = open_cache(agent_dir, "index")
    log = None
    try:
        log = prefetch_history(root, sha, cache)  # git reads the log meanwhile
        index = load_index(root, cache, sha)
        mentions = parse_issue(text, extra_terms)
        referenced = referenced_files(root, sha, text, cache)
        similar = similar_files(root, sha, mentions.query, cache, log)
        past = PastChanges(
            referenced=referenced.scores,
            similar=similar.scores,
            referenced_by=referenced.why,
            similar_to=similar.why,
        )
        ranking = rank(index, mentions, top, lambda fs: load_details(cache, index, fs), past)
    except sqlite3.DatabaseError as exc:  # pages damaged past what opening it checks,
        # or a disk that is full or read-only
        raise cache_error(exc, agent_dir / "cache" / "index") from exc
    finally:
        if log is not None:
            log.close()
        cache.close()

    files = []
    for f, score, reasons in ranking.files:
        rows = index.symbols(f)
        files.append(
            RankedFile(
                path=index.paths[f],
                score=round(score, 4),
                reasons=reasons,
                symbols=[_symbol(rows[s]) for s in ranking.per_file_symbols.get(f, [])],
                imports=[index.paths[g] for g in index.imports(f)],
                imported_by=[index.paths[g] for g in index.imported_by(f)],
            )
        )
    symbols = [
        RankedSymbol(
            **_symbol(index.symbols(f)[s]).model_dump(),
            path=index.paths[f],
            score=round(score, 4),
            reasons=reasons,
        )
        for f, s, score, reasons in ranking.symbols[: max(10, 2 * top)]
    ]
    return LocateResult(
        files=files, symbols=symbols, seconds=round(time.perf_counter() - started, 4), commit=sha
    )


def _symbol(row: list) -> Symbol:
    name, kind, line, end = row
    return Symbol(name=name, kind=kind, line=line, end_line=end)


def _exclude_agent_dir(root: Path) -> None:
    """Keep `.agent/` out of `git status` (DESIGN.md: excluded via .git/info/exclude)."""
    from agent_cli.search import gitrepo

    try:
        exclude = gitrepo.git_common_dir(root) / "info" / "exclude"
        text = exclude.read_text() if exclude.exists() else ""
        if not any(
            ln.strip() in (".agent", ".agent/", "/.agent", "/.agent/") for ln in text.splitlines()
        ):
            exclude.parent.mkdir(parents=True, exist_ok=True)
            with exclude.open("a") as fh:
                fh.write(("\n" if text and not text.endswith("\n") else "") + ".agent/\n")
    except (OSError, gitrepo.GitError):
        pass  # an unwritable .git only means `.agent/` shows up as untracked
