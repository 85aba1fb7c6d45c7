"""Which test files exercise a change: the test stage's selection, without a model.

A whole suite on a real repository runs for many minutes (sympy: 3,000 tests in 15);
the tests that matter for a change are a few files. They are found from the index of
the base commit (`index.py`) and the repository's history, each with its reasons:

1. test files the change itself adds or edits, and the files of the plan's target
   tests;
2. test files named for a changed file by the ecosystem's conventions
   (`test_<module>.py`, `<module>_test.py`, `<module>_test.go`, `<name>.test.ts`,
   `<name>.spec.js`, `tests/<name>.rs`), the nearest in the tree when several share
   a name;
3. test files that import a changed module (unless they import everything);
4. test files that changed together with the changed files in past focused commits.

An empty list means none was found, and the caller runs the whole suite.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# A file a test runner collects (conftest.py and __init__.py are not run on their own).
_RUNNABLE = re.compile(r"^(test_.+\.py|.+_test\.py|.+_test\.go|.+\.(test|spec)\.[cm]?[jt]sx?)$")
_COCHANGE_COMMITS = 300
_COCHANGE_WEIGHT = 1.0
# A commit of more files than this is a sweep (a rename, a style pass), not a change
# whose tests belong together: sympy's 300-550-file commits paired point.py with
# test_integrals.py.
_FOCUSED_COMMIT = 20
# A test file importing more modules than this tests everything (sympy's test_args.py
# imports 178, test_pickling.py 64; the median test file imports 4, the 99th
# percentile 21): it is no more related to one module than to the others.
_BROAD_IMPORTS = 25


@dataclass
class Related:
    path: str
    reasons: list[str] = field(default_factory=list)

    @property
    def certain(self) -> bool:
        """The change touches it, or the plan targets it: not an inference."""
        return any(why == "changed by this run" or why.startswith("holds the target test")
                   for why in self.reasons)


def is_test_file(path: str) -> bool:
    """Whether a runner would run `path` as a test file."""
    p = PurePosixPath(path)
    return bool(_RUNNABLE.match(p.name)) or (p.suffix == ".rs" and "tests" in p.parts[:-1])


def related_tests(repo: Path, commit: str, changed: Sequence[str], targets: Sequence[str] = (),
                  *, inferred: int = 8) -> list[Related]:
    """Test files related to `changed` (paths relative to the root of `repo`) at
    `commit`, most certain first: every test file the change touches or the plan
    targets, then at most `inferred` found by name, imports or history. A change to
    twenty modules would otherwise select most of the suite (sympy-13091: 2m45s)."""
    from agent_cli.cache import open_cache
    from agent_cli.search.index import load_index

    root = Path(repo)
    with open_cache(root / ".agent", "index") as cache:
        index = load_index(root, cache, commit)
    known = set(index.paths)
    found: dict[str, Related] = {}

    def add(path: str, why: str) -> None:
        entry = found.setdefault(path, Related(path))
        if why not in entry.reasons:
            entry.reasons.append(why)

    changed_set = set(changed)
    for path in changed:
        if is_test_file(path):
            add(path, "changed by this run")
    for target in targets:
        path = target.split("::", 1)[0]
        if is_test_file(path) and (path in known or path in changed_set):
            add(path, f"holds the target test {target}")
    code = [p for p in changed if not is_test_file(p) and p in known]
    for path in code:
        for test in _named_for(path, index.basenames, index.paths):
            add(test, f"named for {path}")
        for g in index.imported_by(index.path_ids[path]):
            if is_test_file(index.paths[g]) and len(index.imports(g)) <= _BROAD_IMPORTS:
                add(index.paths[g], f"imports {path}")
    for test, (count, partner) in _changed_together(root, commit, code, known).items():
        if len(index.imports(index.path_ids[test])) <= _BROAD_IMPORTS:
            add(test, f"changed together with {partner} in {count} commits")
    certain = [r for r in found.values() if r.certain]
    others = [r for r in found.values() if not r.certain]
    return certain + others[:inferred]


def _named_for(path: str, basenames: dict[str, list[int]], paths: list[str]) -> list[str]:
    """Test files named for `path` by convention, the nearest of each name."""
    p = PurePosixPath(path)
    stem = p.parent.name if p.stem == "__init__" else p.stem
    if not stem:
        return []
    names = {f"test_{stem}.py", f"{stem}_test.py", f"{stem}_test.go", f"{stem}.rs",
             *(f"{stem}.{kind}.{ext}" for kind in ("test", "spec")
               for ext in ("ts", "tsx", "js", "jsx", "mjs", "cjs"))}
    out = []
    for name in sorted(names):
        candidates = [paths[i] for i in basenames.get(name, []) if is_test_file(paths[i])]
        if candidates:
            best = min(_distance(path, c) for c in candidates)
            out += [c for c in candidates if _distance(path, c) == best]
    return out


def _distance(a: str, b: str) -> int:
    """Steps up from a's directory and down to b's in the tree."""
    da, db = PurePosixPath(a).parts[:-1], PurePosixPath(b).parts[:-1]
    shared = 0
    for x, y in zip(da, db, strict=False):
        if x != y:
            break
        shared += 1
    return len(da) + len(db) - 2 * shared


def _changed_together(root: Path, commit: str, code: list[str],
                      known: set[str]) -> dict[str, tuple[int, str]]:
    """Test files changed in the same focused commits as `code`, in the last few
    hundred commits that touched it: {test: (commits, one of the code files)}. Each
    commit weighs 1/(its files - 1): a fix and its test alone weigh 1, an 11-file
    change 0.1; a file needs the weight of one such pair."""
    if not code:
        return {}
    out = subprocess.run(
        ["git", "-C", str(root), "-c", "core.quotePath=false", "log", f"-n{_COCHANGE_COMMITS}",
         "--format=%x00",
         "--name-only", "--full-diff", "--no-renames", commit, "--", *code],
        capture_output=True, check=False)
    weight: dict[str, float] = {}
    counts: Counter[str] = Counter()
    partner: dict[str, str] = {}
    for chunk in out.stdout.decode("utf-8", "replace").split("\0"):
        files = [f for f in chunk.splitlines() if f]
        touched = [f for f in files if f in code]
        if not touched or len(files) > _FOCUSED_COMMIT:
            continue
        for f in files:
            if f in known and is_test_file(f):
                weight[f] = weight.get(f, 0.0) + 1 / max(1, len(files) - 1)
                counts[f] += 1
                partner.setdefault(f, touched[0])
    strong = sorted((f for f, w in weight.items() if w >= _COCHANGE_WEIGHT),
                    key=lambda f: -weight[f])
    return {f: (counts[f], partner[f]) for f in strong[:5]}
