"""What the repository's own history says about an issue.

Two signals, both read with plain `git` from the indexed commit's ancestry (never a
later commit: the ranking stays a function of the commit), both cached in the index
cache so a second call runs no git command:

- references: an issue that says "broke in #7428", links a pull request or names a
  commit (`2a0c5c6f`) points at the code that change touched. Commits whose message
  names the number (`Fix #7428`, `Merge pull request #7428 from ...`, at most a few
  per number) and named commits that are ancestors give their changed files.
- past changes like this one: the issue's words against the messages of the last
  `HISTORY_COMMITS` commits (BM25 over the same code-aware tokens as the files); the
  files changed by the best-matching commits get a share of each commit's score
  (a commit touching many files gives each less). Sphinx issues about "typehints"
  and "None" find the commits that fixed the same words before, and the file they
  changed: `domains/python.py`, which no identifier of the issue names.

Each file's reason names the commit that gave it the most credit (`a1b2c3d4e5 "Fix
#41: tabs vanish"`), so a user can check it with `git show`. The ids and subjects are
stored in entries of `COMMIT_CHUNK` commits, read only for the commits named; a lost
one costs the name, not a rebuild. They about double the history's cache (sympy's
40,000 commits: ~1.7 MB of postings and changed files, ~1.9 MB of ids and subjects).

Commits touching more than `MAX_CHANGED` files (reformatting, renames, releases) say
nothing about any one file and are skipped, as are commits without a parent (a root
commit, the cut-off end of a shallow clone: they "add" the whole tree). Merges are
not documents (their pull request's commits are), but `#N` finds them.

Measured on bench/localize.py's dev set, the two signals took file Acc@5 from 78.7%
to 81.7% and Acc@1 from 58.0% to 60.4%; history alone ranks the gold file first for
about a third of the issues, plain BM25 over the files for a fifth.
"""

from __future__ import annotations

import heapq
import math
import re
import subprocess
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_cli.search.index import (
    POSTING_BUCKETS,
    bucket_of,
    find_posting,
    pack_ints,
    unpack_ints,
)
from agent_cli.search.tokens import tokenize

HISTORY_VERSION = 8
HISTORY_COMMITS = 40_000
MAX_CHANGED = 30
TOP_COMMITS = 30
COMMITS_PER_REF = 5
MAX_REFS = 8
K1, B = 1.2, 0.75
MAX_DF = 0.2
MAX_TERMS = 80
SUBJECT_CHARS = 60
COMMIT_CHUNK = 1024  # commits per cache entry of ids and subjects


@dataclass
class Credit:
    """History's credit to files, and the commit behind each file's credit."""

    scores: dict[str, float] = field(default_factory=dict)
    """path -> weight"""
    why: Mapping[str, str] = field(default_factory=dict)
    """path -> the commit that gave it the most, `a1b2c3d4e5 "Fix #41: tabs vanish"`"""


class _Described(Mapping[str, str]):
    """path -> its best commit, described only when asked: the ranking names the
    commits of three files, and each description may cost a cache read."""

    def __init__(self, history: History, best: dict[str, int]) -> None:
        self._history = history
        self._best = best
        self._said: dict[str, str | None] = {}

    def _describe(self, path: str) -> str | None:
        if path not in self._said:
            c = self._best.get(path)
            self._said[path] = None if c is None else self._history.describe(c)
        return self._said[path]

    def __getitem__(self, path: str) -> str:
        said = self._describe(path)
        if said is None:
            raise KeyError(path)
        return said

    def __iter__(self) -> Iterator[str]:
        return (p for p in self._best if self._describe(p) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def describe(sha: str, subject: str) -> str:
    """`a1b2c3d4e5 "Fix #41: tab characters vanish from…"`: a commit as a reason."""
    subject = " ".join(subject.split())
    if len(subject) > SUBJECT_CHARS:
        subject = subject[: SUBJECT_CHARS - 1].rstrip() + "…"
    return f'{sha[:10]} "{subject}"' if subject else sha[:10]


# `#7428`, `/pull/7428`, `/issues/7428`; not `&#1234;`, `a#12`, `color: #333`, `#0f0`.
_NUMBER = re.compile(r"(?<![\w&/#])#([1-9]\d{1,5})\b")
_URL_NUMBER = re.compile(r"github\.com/([\w.-]+/[\w.-]+)/(?:pull|issues)/([1-9]\d{1,5})\b")
_NOT_AN_ISSUE = re.compile(r"[:=\"'(]\s*$")  # `color: #333`, `fill="#123456"`
# A commit id: 7 to 40 hex digits with at least one letter and one digit, alone or
# in a commit link (`.../commit/2a0c5c6f`, `.../pull/9/commits/2a0c5c6f`).
_SHA = re.compile(
    r"(?:(?<![\w/.-])|(?<=/commit/)|(?<=/commits/))"
    r"(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])([0-9a-f]{7,40})(?![\w-])"
)


def references(text: str, own: set[str] | None = None) -> tuple[list[str], list[str]]:
    """(issue or pull request numbers, commit-like hex ids) the text mentions, in
    order of first mention, at most `MAX_REFS` of each. Links to issues of another
    repository count only when `own` (this repository's `owner/name`s, from its
    remotes) is unknown or empty."""
    found: list[tuple[int, str]] = []
    for m in _NUMBER.finditer(text):
        if not _NOT_AN_ISSUE.search(text[max(0, m.start() - 3) : m.start()]):
            found.append((m.start(), m.group(1)))
    for m in _URL_NUMBER.finditer(text):
        repo = m.group(1).lower().removesuffix(".git")
        if not own or repo in own:
            found.append((m.start(), m.group(2)))
    numbers = list(dict.fromkeys(n for _, n in sorted(found)))[:MAX_REFS]
    shas = list(dict.fromkeys(_SHA.findall(text)))[:MAX_REFS]
    return numbers, shas


def own_repositories(root: Path) -> set[str]:
    """`owner/name` of each GitHub-style remote of the repository (lower-cased)."""
    out = _git(root, "remote", "-v") or ""
    names = set()
    for url in re.findall(r"\S+[:/]([\w.-]+/[\w.-]+?)(?:\.git)?\s", out):
        names.add(url.lower())
    return names


# Paths as the index has them (`héllo.py`, not `"h\303\251llo.py"`), and no
# signature lines in the log however the user configured it.
_GIT = ("-c", "core.quotePath=false", "-c", "log.showSignature=false")


def _git(root: Path, *args: str, input: str | None = None) -> str | None:
    """Output of a git command, or None when it fails: history is a bonus, a
    shallow clone or a missing object must not fail `agent locate`."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *_GIT, *args],
            input=input,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
    except OSError:
        return None
    return proc.stdout if proc.returncode == 0 else None


def referenced_files(root: Path, commit: str, text: str, cache: Any) -> Credit:
    """Files changed by the changes the issue refers to, each with a weight: one per
    reference that touched it, divided by the square root of the files it touched;
    `why` names the change that gave the most."""
    numbers, shas = references(text)
    if not numbers and not shas:
        return Credit()
    if _URL_NUMBER.search(text):  # links to other repositories do not count
        numbers, shas = references(text, own_repositories(root))
        if not numbers and not shas:
            return Credit()
    key = f"refs:{HISTORY_VERSION}:{commit}:{','.join(numbers)}:{','.join(shas)}"
    cached = cache.get(key)
    if (
        isinstance(cached, dict)
        and isinstance(cached.get("scores"), dict)
        and isinstance(cached.get("why"), dict)
    ):
        return Credit(
            {str(k): float(v) for k, v in cached["scores"].items()},
            {str(k): str(v) for k, v in cached["why"].items()},
        )

    commits: list[str] = []
    for sha in shas:
        full = _git(root, "rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}")
        if full and _git(root, "merge-base", "--is-ancestor", full.strip(), commit) is not None:
            commits.append(full.strip())
    complete = True  # nothing failed: the answer may be cached
    if numbers:
        pattern = "#(" + "|".join(numbers) + ")([^0-9]|$)"
        out = _git(root, "log", "-E", f"--grep={pattern}", "--format=%H%x00%B%x01", commit)
        complete = out is not None
        per_number: Counter[str] = Counter()
        for record in (out or "").split("\x01"):
            sha, _, message = record.strip().partition("\x00")
            if not sha:
                continue
            said = {m.group(1) for m in _NUMBER.finditer(message)} & set(numbers)
            if said and all(per_number[n] < COMMITS_PER_REF for n in said):
                per_number.update(said)
                commits.append(sha)
    changed = _changed_files(root, list(dict.fromkeys(commits)))
    scores: dict[str, float] = defaultdict(float)
    why: dict[str, str] = {}
    best: dict[str, float] = {}
    for sha, (subject, files) in (changed or {}).items():
        if 0 < len(files) <= MAX_CHANGED:
            share = 1.0 / math.sqrt(len(files))
            for path in files:
                scores[path] += share
                if share > best.get(path, 0.0):
                    best[path] = share
                    why[path] = describe(sha, subject)
    if complete and changed is not None:
        cache.set(key, {"scores": dict(scores), "why": why})
    return Credit(dict(scores), why)


def _changed_files(root: Path, commits: list[str]) -> dict[str, tuple[str, list[str]]] | None:
    """Subject and files changed of each commit (a merge: against its first parent,
    i.e. the whole pull request), in one `git log --no-walk`; None when git failed."""
    if not commits:
        return {}
    out = _git(
        root,
        "log",
        "--no-walk=unsorted",
        "-m",
        "--first-parent",
        "--name-only",
        "--format=%x00%H%x02%s",
        *commits,
    )
    if out is None:
        return None
    changed: dict[str, tuple[str, list[str]]] = {}
    for record in (out or "").split("\x00")[1:]:
        head, _, names = record.partition("\n")
        sha, _, subject = head.partition("\x02")
        changed[sha.strip()] = (subject, [n for n in names.splitlines() if n.strip()])
    return changed


class StaleHistory(Exception):
    """A bucket of a cached history is gone (evicted): rebuild it."""


class History:
    """The commits' messages as BM25 documents, and the files each changed.

    One cache entry holds the commits (message lengths, changed files) as packed
    strings; the postings live in `POSTING_BUCKETS` entries of their own (the file
    index's layout), read only for the query's words: sympy's 37,000 commits cost
    a warm call ~25 ms."""

    def __init__(
        self,
        data: dict[str, Any],
        bucket: Callable[[int], str | None],
        chunk: Callable[[int], str | None] = lambda k: None,
    ) -> None:
        self._data = data
        self._bucket = bucket
        self._chunk = chunk
        self._buckets: dict[int, str] = {}
        self.paths: list[str] = data["paths"].split("\n") if data["paths"] else []
        self._changed: list[str] = data["changed"].split("\n") if data["changed"] else []
        self._lens: list[str] = data["lens"].split(",") if data["lens"] else []
        self.size = len(self._lens)

    def changed(self, c: int) -> list[int]:
        return unpack_ints(self._changed[c])

    def postings(self, term: str) -> str:
        """The term's commits as gaps ("3,1,40"), or "" when no message says it."""
        b = bucket_of(term)
        text = self._buckets.get(b)
        if text is None:
            text = self._bucket(b)
            if text is None:
                raise StaleHistory(f"history bucket {b} is missing")
            self._buckets[b] = text
        return find_posting(text, term)

    def describe(self, c: int) -> str | None:
        """Commit `c` as `a1b2c3d4e5 "subject"`, or None if its entry is gone (only
        the explanation suffers: no rebuild for it)."""
        text = self._chunk(c // COMMIT_CHUNK)
        lines = text.split("\n") if text else []
        if c % COMMIT_CHUNK >= len(lines):
            return None
        sha, _, subject = lines[c % COMMIT_CHUNK].partition(" ")
        return describe(sha, subject) if sha else None

    def credit(self, query: dict[str, float]) -> Credit:
        """The files changed by the commits whose messages best match `query`, and
        for each file the commit that gave it the most."""
        n = self.size
        if not n:
            return Credit()
        # BM25 with every term counted once per message (messages are short: a word
        # said twice is not twice the evidence), so a commit's factor depends on its
        # length alone.
        a = 1.0 + K1 * (1.0 - B)
        b = K1 * B / float(self._data["avg"])
        lens = self._lens
        # The query's most telling terms only: a word in a fifth of all commit
        # messages ("fix", the project's name) costs the most to decode and moves
        # nothing. Document frequency comes from the packed string without decoding.
        weighted: list[tuple[float, str, str]] = []
        for term, qw in query.items():
            packed = self.postings(term)
            if not packed:
                continue
            df = packed.count(",") + 1
            if df > n * MAX_DF and df > 100:
                continue
            idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
            weighted.append((qw * idf * (K1 + 1.0), term, packed))
        weighted.sort(reverse=True)
        per_commit: dict[int, float] = defaultdict(float)
        for w, _, packed in weighted[:MAX_TERMS]:
            c = 0
            for delta in map(int, packed.split(",")):
                c += delta
                per_commit[c] += w / (a + b * int(lens[c]))
        best = heapq.nsmallest(TOP_COMMITS, per_commit, key=lambda c: (-per_commit[c], c))
        scores: dict[str, float] = defaultdict(float)
        top: dict[str, tuple[float, int]] = {}
        for c in best:
            files = self.changed(c)
            share = per_commit[c] / math.sqrt(len(files))
            for p in files:
                path = self.paths[p]
                scores[path] += share
                if path not in top or share > top[path][0]:
                    top[path] = (share, c)
        return Credit(dict(scores), _Described(self, {p: c for p, (_, c) in top.items()}))


def similar_files(
    root: Path,
    commit: str,
    query: dict[str, float],
    cache: Any,
    prefetched: LogReader | None = None,
) -> Credit:
    """`History.credit` of `commit`'s history, rebuilt once if the cache lost a
    part of it."""
    try:
        return load_history(root, commit, cache, prefetched).credit(query)
    except StaleHistory:
        cache.delete(_history_key(commit))
        return load_history(root, commit, cache).credit(query)


def _history_key(commit: str) -> str:
    return f"history:{HISTORY_VERSION}:{HISTORY_COMMITS}:{commit}"


class LogReader:
    """`git log` of the commits a history is built from, running in the background
    (into a temporary file: a pipe would stall git once full) so that a cold call
    reads the log while it builds the file index."""

    def __init__(self, root: Path, commit: str) -> None:
        # Closed by text() or close(): it outlives this call by design.
        self._out = tempfile.TemporaryFile()  # noqa: SIM115
        args = ["log", "--no-merges", f"--max-count={HISTORY_COMMITS}", "--name-only"]
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                ["git", "-C", str(root), *_GIT, *args, "--format=%x00%H %P%x02%B%x01", commit],
                stdout=self._out,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            self._proc = None

    def text(self) -> str | None:
        """The log, or None when git failed (no history to speak of)."""
        with self._out:
            if self._proc is None:
                return None
            try:
                code = self._proc.wait()
            except BaseException:  # Ctrl-C while waiting: git must not outlive us
                self._proc.kill()
                self._proc.wait()
                raise
            if code != 0:
                return None
            self._out.seek(0)
            return self._out.read().decode("utf-8", errors="replace")

    def close(self) -> None:
        """Stop git if the log was never read (the call failed before it)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._out.close()


def prefetch_history(root: Path, commit: str, cache: Any) -> LogReader | None:
    """Start `git log` now if `commit`'s history is not cached; pass the reader to
    `similar_files` later."""
    return None if _well_formed(cache.get(_history_key(commit))) else LogReader(root, commit)


def load_history(
    root: Path, commit: str, cache: Any, prefetched: LogReader | None = None
) -> History:
    """The history index of `commit`, from the cache or built from `git log` (a
    repository without history, or a shallow one, gives what it has)."""
    key = _history_key(commit)

    def entry(name: str) -> str | None:
        text = cache.get(f"{key}:{name}")
        return text if isinstance(text, str) else None

    def bucket(b: int) -> str | None:
        return entry(str(b))

    def chunk(k: int) -> str | None:
        return entry(f"m{k}")

    data = cache.get(key)
    if _well_formed(data):
        return History(data, bucket, chunk)
    out = (prefetched or LogReader(root, commit)).text()
    if out is None:
        # git failed (a missing object, a full disk): no history this time, and
        # nothing cached, so the next call tries again.
        return History(_EMPTY, lambda b: "")
    path_ids: dict[str, int] = {}
    changed: list[list[int]] = []
    lens: list[int] = []
    said: list[str] = []  # per commit: "sha subject"
    postings: dict[str, list[int]] = defaultdict(list)
    last: dict[str, int] = defaultdict(int)
    for record in out.split("\x00")[1:]:
        ids, _, rest = record.partition("\x02")
        sha, _, parents = ids.partition(" ")
        message, _, names = rest.partition("\x01")
        files = [n for n in names.splitlines() if n.strip()]
        # A root commit, or the cut-off end of a shallow clone, "adds" the whole tree.
        if not parents.strip() or not files or len(files) > MAX_CHANGED:
            continue
        tokens = tokenize(message)
        if not tokens:
            continue
        c = len(changed)
        changed.append([path_ids.setdefault(p, len(path_ids)) for p in files])
        lens.append(len(tokens))
        subject = " ".join(message.strip().split("\n\n", 1)[0].split())  # as git's %s
        said.append(f"{sha[:10]} {subject[: SUBJECT_CHARS + 1]}")
        for term in set(tokens):
            postings[term].append(c - last[term])  # ascending commits, stored as gaps
            last[term] = c
    buckets: list[list[str]] = [[] for _ in range(POSTING_BUCKETS)]
    for term, post in postings.items():
        buckets[bucket_of(term)].append(f";{term}:{pack_ints(post)}")
    data = {
        "v": HISTORY_VERSION,
        "paths": "\n".join(path_ids),
        "changed": "\n".join(pack_ints(c) for c in changed),
        "lens": pack_ints(lens),
        "avg": (sum(lens) / len(lens)) if lens else 1.0,
    }
    texts = {str(b): "".join(items) for b, items in enumerate(buckets)}
    for k in range(0, len(said), COMMIT_CHUNK):
        texts[f"m{k // COMMIT_CHUNK}"] = "\n".join(said[k : k + COMMIT_CHUNK])
    with cache.transact():
        for name, text in texts.items():
            cache.set(f"{key}:{name}", text)
        cache.set(key, data)  # last: a present commit entry means complete buckets
    return History(data, lambda b: texts.get(str(b)), lambda k: texts.get(f"m{k}"))


_EMPTY = {"v": HISTORY_VERSION, "paths": "", "changed": "", "lens": "", "avg": 1.0}


def _well_formed(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and data.get("v") == HISTORY_VERSION
        and all(isinstance(data.get(k), str) for k in ("paths", "changed", "lens"))
        and isinstance(data.get("avg"), (int, float))
        and data["avg"] > 0
    )
