"""How well `agent locate` finds the files and functions an issue is about.

Runs `agent_cli.search.locate_text` on SWE-bench instances (problem statement at the
base commit, gold files and gold function spans from the reference patch) and
prints, overall and per repository:

- file Acc@1/@3/@5/@10: every gold file within the top k;
- MRR of the first gold file;
- sym@10: a gold function or method among the top 10 symbols (over instances whose
  gold spans name at least one function/method defined at the base commit);
- seconds per instance, cold (empty cache: the file index and the history index are
  built) and warm;
- next to a baseline computed here: plain BM25 over whole files, the issue's tokens
  as query, no other signal, every source file (tests included) a candidate.

Trees come from mirrors fetched into <mirrors>/<owner>+<name>/repo. The data set, the
mirrors and the cache default to $AGENT_BENCH_DATA, $AGENT_BENCH_MIRRORS and
$AGENT_BENCH_CACHE, else to shared/bench/swebench_dev.jsonl, .mirror/ and .benchcache/
next to this checkout (see bench/benchpaths.py); --data, MIRRORS and --cache override.
Each instance gets a small git repository under the cache:
`git init`, the mirror's object store as an alternate (nothing copied), HEAD at the
base commit, and the work tree from `git archive BASE | tar -x`. Nothing is written
inside the project checkout but the git-ignored bytecode of --wall's runs.

    python bench/localize.py                       # all instances, cold and warm
    python bench/localize.py --repo sympy --limit 10
    python bench/localize.py --warm-only           # reuse built indexes: ranking work
    python bench/localize.py --misses              # list instances where top-1 missed
    python bench/localize.py --warm-only --wall 5  # + warm CLI wall time, 5 slowest
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchpaths import CACHE, DATA, MIRRORS, check_cache

# A blob some snapshots lack; the index skips files over 1 MB anyway.
EXCLUDES = {"astropy/astropy": ["astropy/utils/iers/data/eopc04.1962-now"]}
KS = (1, 3, 5, 10)


def mirror_for(mirrors: Path, repo: str) -> Path:
    base = mirrors / repo.replace("/", "+")
    for candidate in (base / "repo", base / "repo" / ".git", base):
        if (candidate / "objects").is_dir():
            return candidate
    raise SystemExit(f"no mirror of {repo} under {mirrors}; fetch github:{repo} first")


def materialize(mirror: Path, repo: str, commit: str, cache: Path) -> Path:
    tree = cache / "trees" / repo.replace("/", "+") / commit[:12]
    if (tree / ".git" / "HEAD").exists() and (tree / ".bench-ok").exists():
        return tree
    tmp = tree.with_name(tree.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    git = ["git", "-C", str(tmp)]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp / ".git" / "objects" / "info" / "alternates").write_text(
        str((mirror / "objects").resolve()) + "\n"
    )
    subprocess.run([*git, "update-ref", "refs/heads/bench", commit], check=True)
    subprocess.run([*git, "symbolic-ref", "HEAD", "refs/heads/bench"], check=True)
    # Fills the git index so `git status` is meaningful; it fails (harmlessly: locate
    # reads the commit, not the index) where the snapshot lacks a blob.
    subprocess.run([*git, "read-tree", "HEAD"], check=False, capture_output=True)
    pathspec = ["--", "."] + [f":(exclude){p}" for p in EXCLUDES.get(repo, [])]
    archive = subprocess.Popen(
        ["git", f"--git-dir={mirror}", "archive", commit, *pathspec], stdout=subprocess.PIPE
    )
    subprocess.run(["tar", "-x", "-C", str(tmp)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive of {repo}@{commit} failed")
    (tmp / ".bench-ok").write_text("")
    shutil.rmtree(tree, ignore_errors=True)
    tmp.rename(tree)
    return tree


def gold_symbols(row: dict, index) -> set[tuple[str, str]]:
    """Gold spans that are functions or methods defined at the base commit."""
    out = set()
    for path, spans in row["expected_spans"].items():
        f = index.path_ids.get(path)
        if f is None:
            continue
        defined = {r[0]: r[1] for r in index.symbols(f)}
        for span in spans:
            if defined.get(span) in ("function", "method"):
                out.add((path, span))
    return out


def baseline_ranking(index, text: str) -> list[str]:
    """Plain BM25: the raw issue text as query (term counts), every source file of
    the index (any language, tests included; no docs or config) a candidate."""
    from agent_cli.search.rank import bm25_scores
    from agent_cli.search.tokens import tokenize

    query = Counter(tokenize(text))
    scores = bm25_scores(index, {t: float(c) for t, c in query.items()})
    source = [f for f in scores if index.kinds[f] in ("code", "test", "aux")]
    return [index.paths[f] for f in sorted(source, key=lambda f: -scores[f])[:10]]


def file_metrics(ranked: list[str], gold: list[str]) -> dict[str, float]:
    out = {f"acc@{k}": float(all(g in ranked[:k] for g in gold)) for k in KS}
    ranks = [ranked.index(g) + 1 for g in gold if g in ranked]
    out["mrr"] = 1.0 / min(ranks) if ranks else 0.0
    return out


def run_instance(row: dict, tree: Path, warm_only: bool) -> dict:
    from agent_cli.cache import open_cache
    from agent_cli.search import locate_text
    from agent_cli.search.index import load_index
    from agent_cli.search.tokens import ident_tokens

    cold = None
    if not warm_only:
        shutil.rmtree(tree / ".agent", ignore_errors=True)
        ident_tokens.cache_clear()  # no help from the previous instance's tokens
        t = time.perf_counter()
        locate_text(row["problem_statement"], repo=tree, top=10)
        cold = time.perf_counter() - t
    t = time.perf_counter()
    result = locate_text(row["problem_statement"], repo=tree, top=10)
    warm = time.perf_counter() - t

    cache = open_cache(tree / ".agent", "index")
    try:
        index = load_index(tree, cache, result.commit)
    finally:
        cache.close()
    ranked = [f.path for f in result.files]
    gold = row["gold_files"]
    out = {
        "id": row["instance_id"],
        "repo": row["repo"],
        "gold": gold,
        "ranked": ranked,
        "reasons": {f.path: f.reasons for f in result.files[:5]},
        "cold": cold,
        "warm": warm,
        **file_metrics(ranked, gold),
    }
    want = gold_symbols(row, index)
    got = [(s.path, s.name) for s in result.symbols[:10]]
    out["sym_eligible"] = bool(want)
    out["sym@10"] = float(bool(want & set(got))) if want else None
    out["top_symbols"] = [f"{p}::{n}" for p, n in got[:5]]
    base = baseline_ranking(index, row["problem_statement"])
    out["baseline"] = file_metrics(base, gold)
    out["files_indexed"] = len(index.paths)
    return out


def summarize(rows: list[dict]) -> dict[str, float]:
    n = len(rows)
    s: dict[str, float] = {"n": n}
    for key in [f"acc@{k}" for k in KS] + ["mrr"]:
        s[key] = sum(r[key] for r in rows) / n
        s["base_" + key] = sum(r["baseline"][key] for r in rows) / n
    elig = [r for r in rows if r["sym_eligible"]]
    s["sym_n"] = len(elig)
    s["sym@10"] = sum(r["sym@10"] for r in elig) / len(elig) if elig else math.nan
    colds = [r["cold"] for r in rows if r["cold"] is not None]
    s["cold"] = statistics.mean(colds) if colds else math.nan
    s["cold_max"] = max(colds) if colds else math.nan
    s["warm"] = statistics.mean(r["warm"] for r in rows)
    return s


def print_table(results: list[dict]) -> None:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        groups[r["repo"]].append(r)
    header = (
        f"{'repository':22} {'n':>4} {'Acc@1':>6} {'@3':>6} {'@5':>6} {'@10':>6} {'MRR':>6} "
        f"{'sym@10':>7} {'cold s':>7} {'warm s':>7} | {'BM25@1':>6} {'@5':>6} {'MRR':>6}"
    )
    print(header)
    print("-" * len(header))
    order = sorted(groups, key=lambda g: -len(groups[g]))
    for name, rows in [*((g, groups[g]) for g in order), ("ALL", results)]:
        s = summarize(rows)
        sym = f"{100 * s['sym@10']:6.1f}%" if s["sym_n"] else "      -"
        cold = f"{s['cold']:7.2f}" if not math.isnan(s["cold"]) else "      -"
        print(
            f"{name:22} {s['n']:>4} {100 * s['acc@1']:5.1f}% {100 * s['acc@3']:5.1f}% "
            f"{100 * s['acc@5']:5.1f}% {100 * s['acc@10']:5.1f}% {s['mrr']:6.3f} {sym} "
            f"{cold} {s['warm']:7.3f} | {100 * s['base_acc@1']:5.1f}% "
            f"{100 * s['base_acc@5']:5.1f}% {s['base_mrr']:6.3f}"
        )


def save_results(results: list[dict], dump: Path | None) -> None:
    """Stop if nothing ran; write one JSON line per instance to `dump` if given."""
    if not results:
        raise SystemExit("no instance selected")
    if dump:
        with dump.open("w") as fh:
            for r in results:
                fh.write(json.dumps(r) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("mirrors", nargs="?", type=Path, default=MIRRORS, help="fetched mirrors")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--cache", type=Path, default=CACHE, help="where trees are materialized")
    ap.add_argument("--repo", action="append", default=[], help="substring of repo; repeatable")
    ap.add_argument("--instance", action="append", default=[], help="substring of instance id")
    ap.add_argument("--limit", type=int, default=0, help="at most N instances")
    ap.add_argument("--warm-only", action="store_true", help="reuse existing indexes")
    ap.add_argument("--misses", action="store_true", help="list instances missed at top 1")
    ap.add_argument("--dump", type=Path, help="write per-instance results as JSON lines")
    ap.add_argument(
        "--wall", type=int, default=0, metavar="K", help="time warm CLI runs on the K slowest"
    )
    args = ap.parse_args()

    check_cache(args.cache)
    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    if args.repo:
        rows = [r for r in rows if any(x in r["repo"] for x in args.repo)]
    if args.instance:
        rows = [r for r in rows if any(x in r["instance_id"] for x in args.instance)]
    if args.limit:
        rows = rows[: args.limit]

    results = []
    for i, row in enumerate(rows, 1):
        mirror = mirror_for(args.mirrors, row["repo"])
        tree = materialize(mirror, row["repo"], row["base_commit"], args.cache)
        res = run_instance(row, tree, args.warm_only)
        results.append(res)
        mark = "ok " if res["acc@1"] else ("@5 " if res["acc@5"] else "-- ")
        cold = f"cold {res['cold']:.2f}s " if res["cold"] is not None else ""
        print(
            f"[{i}/{len(rows)}] {mark}{res['id']:38} {cold}warm {res['warm']:.3f}s "
            f"files {res['files_indexed']}",
            file=sys.stderr,
            flush=True,
        )
    save_results(results, args.dump)
    if args.misses:
        for r in results:
            if not r["acc@1"]:
                print(f"{r['id']}: gold {r['gold']}")
                for p in r["ranked"][:3]:
                    print(f"    {p}  {'; '.join(r['reasons'].get(p, []))}")
    print_table(results)
    print(
        f"({os.cpu_count()} CPUs; cold = empty cache, file and history indexes built; warm = second call)"
    )
    if args.wall:
        print_wall(rows, results, args.wall, args.cache, args.mirrors)


def print_wall(rows: list[dict], results: list[dict], k: int, cache: Path, mirrors: Path) -> None:
    """Warm `agent locate` as a user runs it: a new process (Python start-up, Typer,
    imports) on the k instances whose warm in-process call was slowest, 5 runs each."""
    # As on a machine that writes bytecode (the default): this sandbox sets
    # PYTHONDONTWRITEBYTECODE, which would time compiling agent_cli on every run. The
    # warm-up run writes it (agent_cli/__pycache__, git-ignored, as any run does).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    by_id = {r["instance_id"]: r for r in rows}
    biggest = sorted(results, key=lambda r: -r["warm"])[:k]
    issue = cache / "wall-issue.md"
    walls: list[float] = []
    for res in biggest:
        row = by_id[res["id"]]
        tree = materialize(mirror_for(mirrors, row["repo"]), row["repo"], row["base_commit"], cache)
        issue.write_text(row["problem_statement"])
        argv = [sys.executable, "-m", "agent_cli", "locate", str(issue), "--repo", str(tree)]
        subprocess.run([*argv, "--json"], capture_output=True, check=True, env=env)  # warm up
        for mode in (["--json"], []):
            times = []
            for _ in range(5):
                t = time.perf_counter()
                subprocess.run([*argv, *mode], capture_output=True, check=True, env=env)
                times.append(time.perf_counter() - t)
            walls.extend(times)
            label = "json " if mode else "table"
            print(
                f"wall {label} {res['id']:38} files {res['files_indexed']:5}  "
                f"median {statistics.median(times):.3f}s  max {max(times):.3f}s"
            )
    if walls:
        print(f"warm `agent locate` wall over {len(walls)} runs: max {max(walls):.3f}s")


if __name__ == "__main__":
    main()
