"""A second, larger check of `agent locate`: issues made from the repositories' own fixes.

bench/localize.py measures 169 SWE-bench issues. That is few: moving one constant
often flips two or three of them by chance (a word of a GitHub link matching an old
commit message, say), so a change that wins there may not win anywhere else. This
script builds a few hundred more instances from the same repositories' history and
measures the same way, to tell a real gain from a lucky one.

An instance is a fix that landed on the main line (a squashed pull request, a direct
commit, or the merge of a pull request):

- the issue is its title ("Fix Dataset.assign_coords overwriting multi-index"),
  without issue numbers; titles that do not read like a fix (fix, bug, crash, wrong,
  error...) or are under four words are skipped;
- the gold files are the Python code files it changed (1 to 3; tests, docs and
  examples excluded, by the index's own `file_kind`), and it must change a test
  too, as SWE-bench's fixes do;
- the base is its first parent, so nothing of the fix is in the history the ranking
  reads;
- pull requests that are instances of the dev set (`#<number>` in the title or the
  merge message) are left out.

Titles are shorter than issues (no snippet, no traceback), so the figures are lower
and the signals that read snippets (frames, fences, modules spelled by options) do
not fire. Compare two versions of the code on it, not its figures with the dev set's.

Instances are taken evenly from the first-parent history of the dev set's newest
base commit back to three years before its oldest, so a rerun selects the same ones.
Each repository gets one small git repository under --cache (the mirror's objects as
an alternate, no work tree), whose index cache all its instances share: a file seen
at one commit is parsed once.

    python bench/localize_history.py                     # 40 per repository
    python bench/localize_history.py --per-repo 100 --repo sympy
    python bench/localize_history.py --dump /tmp/h.jsonl # per-instance ranks
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import CACHE, DATA, MIRRORS, check_cache
from localize import (
    KS,
    baseline_ranking,
    file_metrics,
    mirror_for,
    save_results,
)

FIX_WORDS = re.compile(
    r"\b(?:fix|fixe[sd]|bug|crash(?:es)?|wrong|incorrect|broken|regression|error)\b", re.IGNORECASE
)
ISSUE_REF = re.compile(r"\(?(?:#|gh-)\d+\)?|\bissue\s+\d+", re.IGNORECASE)
YEAR = 365 * 86400


def git(gitdir: Path, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={gitdir}", *args],
        capture_output=True,
        text=True,
        errors="replace",
        check=True,
    ).stdout


def select(mirror: Path, repo: str, dev: list[dict], per_repo: int) -> list[dict]:
    """Up to `per_repo` fixes of `repo`, evenly spaced over its main line."""
    from agent_cli.search.index import file_kind

    bases = [r["base_commit"] for r in dev if r["repo"] == repo]
    if not bases:
        return []
    dates = {c: int(git(mirror, "show", "-s", "--format=%ct", c)) for c in bases}
    newest = max(dates, key=dates.__getitem__)
    since = min(dates.values()) - 3 * YEAR
    dev_prs = {r["instance_id"].rsplit("-", 1)[1] for r in dev if r["repo"] == repo}
    log = git(
        mirror,
        "log",
        "--first-parent",
        f"--since={since}",
        "--format=%x00%H %P%x01%s%x01%b",
        newest,
    )
    candidates: list[tuple[str, str, str]] = []
    for record in log.split("\x00")[1:]:
        ids, subject, body = record.split("\x01", 2)
        commits = ids.split()  # the commit, then its parents
        if len(commits) == 3 and subject.startswith("Merge pull request"):
            title = body.strip().split("\n", 1)[0]
        elif len(commits) == 2:
            title = subject
        else:
            continue
        numbers = set(re.findall(r"#(\d+)", subject + " " + title))
        if numbers & dev_prs or not FIX_WORDS.search(title):
            continue
        title = ISSUE_REF.sub("", title).strip(" :-")
        if len(title.split()) >= 4:
            candidates.append((commits[0], commits[1], title))
    step = max(1, len(candidates) // (2 * per_repo))
    chosen: list[dict] = []
    for sha, parent, title in candidates[::step]:
        changed = git(mirror, "diff", "--name-only", parent, sha).split()
        code = [p for p in changed if file_kind(p) == "code" and p.endswith(".py")]
        if not 1 <= len(code) <= 3 or not any(file_kind(p) == "test" for p in changed):
            continue
        chosen.append(
            {"id": f"{repo}@{sha[:10]}", "repo": repo, "base_commit": parent, "title": title,
             "gold": code}
        )  # fmt: skip
        if len(chosen) == per_repo:
            break
    return chosen


def workdir(cache: Path, mirror: Path, repo: str) -> Path:
    """A repository that sees the mirror's commits; the index reads commits, not files."""
    root = cache / "history-set" / repo.replace("/", "+")
    if not (root / ".git").is_dir():
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        alternates = root / ".git" / "objects" / "info" / "alternates"
        alternates.write_text(str((mirror / "objects").resolve()) + "\n")
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("mirrors", nargs="?", type=Path, default=MIRRORS, help="fetched mirrors")
    ap.add_argument("--data", type=Path, default=DATA, help="the dev set (repositories, dates)")
    ap.add_argument("--cache", type=Path, default=CACHE, help="where work repositories live")
    ap.add_argument("--repo", action="append", default=[], help="substring of repo; repeatable")
    ap.add_argument("--per-repo", type=int, default=40, help="instances per repository")
    ap.add_argument("--dump", type=Path, help="write per-instance results as JSON lines")
    args = ap.parse_args()
    check_cache(args.cache)

    from agent_cli.cache import open_cache
    from agent_cli.search import locate_text
    from agent_cli.search.index import load_index

    dev = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    repos = sorted({r["repo"] for r in dev})
    if args.repo:
        repos = [r for r in repos if any(x in r for x in args.repo)]
    results: list[dict] = []
    for repo in repos:
        mirror = mirror_for(args.mirrors, repo)
        instances = select(mirror, repo, dev, args.per_repo)
        root = workdir(args.cache, mirror, repo)
        started = time.perf_counter()
        for inst in instances:
            found = locate_text(inst["title"], repo=root, commit=inst["base_commit"], top=10)
            ranked = [f.path for f in found.files]
            cache = open_cache(root / ".agent", "index")
            try:
                index = load_index(root, cache, found.commit)
            finally:
                cache.close()
            base = file_metrics(baseline_ranking(index, inst["title"]), inst["gold"])
            results.append(
                {**inst, "ranked": ranked, **file_metrics(ranked, inst["gold"]), "baseline": base}
            )
        took = time.perf_counter() - started
        print(f"{repo}: {len(instances)} instances, {took:.0f} s", file=sys.stderr, flush=True)
    save_results(results, args.dump)
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        groups[r["repo"]].append(r)
    heads = " ".join(f"{'@' + str(k):>6}" for k in KS)
    print(f"{'repository':22} {'n':>4} {heads}    MRR | BM25@1    @5    MRR")
    for name, rows in [*sorted(groups.items(), key=lambda g: -len(g[1])), ("ALL", results)]:
        n = len(rows)
        accs = " ".join(f"{100 * sum(r[f'acc@{k}'] for r in rows) / n:5.1f}%" for k in KS)
        mrr = sum(r["mrr"] for r in rows) / n
        b1, b5, bm = (
            sum(r["baseline"][key] for r in rows) / n for key in ("acc@1", "acc@5", "mrr")
        )
        print(f"{name:22} {n:>4} {accs} {mrr:6.3f} | {100 * b1:5.1f}% {100 * b5:5.1f}% {bm:6.3f}")


if __name__ == "__main__":
    main()
