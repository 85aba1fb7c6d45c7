"""Ranking files and symbols for an issue: explicit pointers first, words second.

A file's score is a weighted sum of signals, then priors, then a re-rank of the head,
then the head's callees:

    base  = W_PATH*path + W_FRAME*frame + W_FRAME_LAST*innermost + W_MODULE*module
          + W_SYMBOL*named + W_BM25*bm25 + W_PATHTOK*pathwords*bm25 + neighbours
          + W_REFERENCED*referenced + W_SIMILAR*similar
    final = base * kind prior * language prior  (+ W_SYMLEX*best definition, head only)
    final += W_CALLEE*callee, up to CALLEE_CAP of the caller's final

- path, frame, module: the issue names the file: a path (also inside URLs and diff
  headers), a traceback frame (the innermost one inside the repository weighs most:
  that is usually where the behaviour is), a dotted module named in prose (a module
  merely used in a snippet, or its package `__init__`, counts less); a compound
  name whose words spell a module's dotted tail (`autodoc_typehints`) names it too,
  and so do bare words listed together that name sibling modules ("str, pretty,
  and latex").
- named: identifiers of the issue that name definitions in the file. Each counts by
  how code-like its mention is (code block > snake/camel shaped > prose word), how
  few files define the name (IDF over defining files: `__init__` says nothing) and
  how rare the word is in the tree (`Sphinx` in Sphinx, `DataArray` in xarray name
  real classes that every file mentions). Exact beats case-insensitive beats partial
  (`Subs` -> `_print_Subs`); a qualified mention matching a qualified definition
  (`Quaternion.to_rotation_matrix`) is added on top, uncapped.
- bm25: Okapi BM25 over code-aware tokens (tokens.py), normalised by the best file.
- pathwords: query words in the file's path (`linkcheck`, `mock`, `typehints`),
  weighed by rarity among paths and contents, and only as far as BM25 agrees.
- neighbours: files importing, or imported by, the strongest explicit hits, scaled by
  their own BM25: the named module's helpers come up, random importers do not.
- referenced, similar: history (history.py): files changed by the issues, pull
  requests and commits the issue refers to, and files changed by past commits whose
  messages read like the issue; each square-rooted against its best file. These find
  the file an issue describes only by behaviour ("the None in the signature is not a
  link"), which no identifier names but earlier fixes of the same words changed.
- priors: tests x0.3 unless the issue is about tests, docs/config/examples less,
  code in a language other than the tree's main one x0.5.
- re-rank: the best `RERANK` files gain by their best single definition's BM25 (an
  issue is usually about one function).

- callee: functions and classes that the best symbols of the best three files use,
  defined in a file their file imports (`Dataset.chunks` -> `get_chunksizes` in
  common.py, `lambdify` -> the printer classes of pycode.py), weighed by how few
  files say the name. The fix of an issue about one function is often in what that
  function calls; a callee never passes its caller.

Symbols are then scored inside the best files: named in the issue, owner of a
traceback frame, BM25 of their own token bag; times the file's relative score, so
a named method in the second file can beat an unnamed one in the first.

The weights were set on bench/localize.py (SWE-bench dev instances, general signals
only: no repository or instance is special-cased); moving any one of them by half
changes the top-1 rate by a point or two, not more.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise

from agent_cli.search.index import Detail, RepoIndex, unpack_ints
from agent_cli.search.issue import Frame, Mentions
from agent_cli.search.langs import language
from agent_cli.search.tokens import ident_tokens, split_words, stem

W_PATH = 4.5
W_FRAME = 1.0
W_FRAME_LAST = 2.5
W_MODULE = 1.5
W_SYMBOL = 2.25
W_QUALIFIED = 2.0
W_PARTIAL = 0.15
W_BM25 = 3.0
W_PATHTOK = 2.5
W_NEIGHBOUR = 0.65
W_SYMLEX = 1.5
W_REFERENCED = 3.0
W_SIMILAR = 2.0
W_CALLEE = 6.0
SPELLED_MODULE = 1.0  # `autodoc_typehints` counts as naming ext/autodoc/typehints.py
LISTED_MODULE = 1.0  # "str, pretty, and latex" counts as naming printing/str.py and latex.py
CALLEE_FILES = 3  # callers: the best files' ...
CALLEE_SYMBOLS = 3  # ... best symbols
CALLEE_MAX_DEFINING = 6  # a name defined in more files than this resolves nowhere
CALLEE_CAP = 0.95  # a callee stays below its caller
SYMBOL_CAP = 1.1  # several names in one file add up, to a point
CODE_MODULE_W = 0.5  # a module used in a snippet vs named in prose
PACKAGE_W = 0.4  # a package's __init__ named, vs a module: it says little
PARTIAL_MIN_W = 0.8  # partial matches only for code-like mentions
MAX_DEFINING_FILES = 60  # a name defined in more files than this points nowhere
RERANK = 20
MAX_FRAME_REASONS = 3
MAX_MODULE_PARTS = 12  # no module path is deeper; a 40,000-part dotted name is data
PARTIAL_PER_WORD = 16  # code-like names sharing a word, matched partially
PARTIAL_FILES = 40
TITLE_RARITY = 0.3
W_API = 0.75
HUB = 0.5
PRIOR = {"code": 1.0, "test": 0.3, "aux": 0.4, "doc": 0.3, "config": 0.4, "skip": 0.0}
K1, B = 1.2, 0.75
_SYMBOL_FILES = 12  # files whose symbols are scored in detail


@dataclass
class FileScore:
    reasons: list[str] = field(default_factory=list)
    named: dict[int, tuple[float, str]] = field(default_factory=dict)
    """symbol index -> (weight of its mention, reason)"""
    frames: list[tuple[int | None, str | None, bool]] = field(default_factory=list)
    """(line, function, innermost) of traceback frames in this file"""


@dataclass
class Signals:
    """Each explicit signal's unweighted value per file."""

    path: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    frame: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    innermost: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    module: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    named: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    api: dict[int, float] = field(default_factory=lambda: defaultdict(float))

    def explicit(self) -> dict[int, float]:
        files = set(self.path) | set(self.frame) | set(self.module) | set(self.named)
        files |= set(self.api)
        return {
            f: W_PATH * self.path.get(f, 0.0)
            + W_FRAME * self.frame.get(f, 0.0)
            + W_FRAME_LAST * self.innermost.get(f, 0.0)
            + W_MODULE * self.module.get(f, 0.0)
            + W_SYMBOL * self.named.get(f, 0.0)
            + W_API * self.api.get(f, 0.0)
            for f in files
        }


@dataclass
class Ranking:
    files: list[tuple[int, float, list[str]]]
    symbols: list[tuple[int, int, float, list[str]]]
    """(file, symbol index, score, reasons), best first"""
    per_file_symbols: dict[int, list[int]]
    signals: dict[int, dict[str, float]] = field(default_factory=dict)
    """file -> each signal's value before weighting (for diagnosis and the bench)"""


def bm25_scores(index: RepoIndex, query: dict[str, float]) -> dict[int, float]:
    n = len(index.paths)
    avg = index.avg_len or 1.0
    lens = index.lens
    out: dict[int, float] = defaultdict(float)
    for term, qw in query.items():
        post = index.postings(term)
        if not post:
            continue
        df = len(post) // 2
        idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        for k in range(0, len(post), 2):
            f, tf = post[k], post[k + 1]
            norm = K1 * (1.0 - B + B * lens[f] / avg)
            out[f] += qw * idf * tf * (K1 + 1.0) / (tf + norm)
    return out


def match_path(index: RepoIndex, raw: str) -> list[tuple[int, int]]:
    """Repository files a mentioned path can mean, with the number of matching trailing
    components; only the best matches. `/site-packages/pkg/a.py` means `src/pkg/a.py`."""
    comps = [c for c in raw.replace("\\", "/").split("/") if c not in ("", ".", "~")]
    if not comps:
        return []
    best: list[tuple[int, int]] = []
    for f in index.basenames.get(comps[-1], ()):
        pcomps = index.paths[f].split("/")
        k = 0
        while k < len(comps) and k < len(pcomps) and comps[-1 - k] == pcomps[-1 - k]:
            k += 1
        whole_raw = k == len(comps)
        # The unmatched head of the repository path may be a non-package root (`src/`).
        whole_pkg = k >= len(pcomps) - _root_depth(index, f) and (k >= 2 or len(comps) == 1)
        if not (whole_raw or whole_pkg):
            continue
        if not best or k > best[0][1]:
            best = [(f, k)]
        elif k == best[0][1]:
            best.append((f, k))
    if best and best[0][1] == 1 and (len(best) > 3 or comps[-1] == "__init__.py"):
        return []
    return best


def _root_depth(index: RepoIndex, f: int) -> int:
    roots = index.__dict__.get("_roots")
    if roots is None:
        roots = [0] * len(index.paths)
        for name, g in index.modules.items():
            depth = index.paths[g].count("/") - name.count(".")
            if index.paths[g].endswith("/__init__.py"):
                depth -= 1
            roots[g] = max(roots[g], depth)
        index.__dict__["_roots"] = roots
    return roots[f]


def _term_rarity(index: RepoIndex, ident: str) -> float:
    """How rare the identifier is as a word of the tree, 0..1 (IDF / max IDF).

    `Sphinx` in Sphinx or `DataArray` in xarray name real classes, but every file
    says them: naming them points nowhere. `minversion` is said by a handful."""
    toks = ident_tokens(ident)
    if not toks:
        return 0.0
    n = len(index.paths)
    df = len(index.postings(toks[0])) // 2
    return math.log((n + 1) / (df + 1)) / math.log(n + 1) if df else 1.0


def _path_tokens(index: RepoIndex) -> tuple[list[dict[str, float]], dict[str, float]]:
    """Per file, the stemmed tokens of its path (file name 1.0, directories 0.5), and
    each token's IDF over paths: `linkcheck` names one file, `core` a hundred."""
    cached = index.__dict__.get("_path_tokens")
    if cached is None:
        per_file: list[dict[str, float]] = []
        df: Counter[str] = Counter()
        for words in index.path_words:
            folder, _, name = words.partition("|")
            toks = dict.fromkeys(folder.split(), 0.5) | dict.fromkeys(name.split(), 1.0)
            per_file.append(toks)
            df.update(toks.keys())
        n = len(index.paths) + 1
        idf = {t: math.log(n / c) for t, c in df.items()}
        cached = index.__dict__["_path_tokens"] = (per_file, idf)
    return cached


def path_token_scores(index: RepoIndex, query: dict[str, float]) -> dict[int, float]:
    """Query words in file paths, each weighed by its rarity among paths and among
    contents: "python" names `checkers/python3.py` but is said by every file."""
    per_file, idf = _path_tokens(index)
    n = len(index.paths) + 1
    q: dict[str, float] = {}
    for term, w in query.items():
        st = stem(term)
        if st not in idf:
            continue
        df = len(index.postings(term)) // 2
        w *= math.log(n / (df + 1)) / math.log(n)
        if w > q.get(st, 0.0):
            q[st] = w
    out: dict[int, float] = {}
    if not q:
        return out
    for f, toks in enumerate(per_file):
        score = sum(q[t] * idf[t] * where for t, where in toks.items() if t in q)
        if score:
            out[f] = score
    return out


def _contains(parts: list[str], sub: list[str]) -> bool:
    k = len(sub)
    return any(parts[i : i + k] == sub for i in range(len(parts) - k + 1))


def _language_prior(index: RepoIndex, m: Mentions) -> Callable[[int], float]:
    """Code in the tree's main language counts fully; other languages (bundled
    JavaScript in a Python project, say) half, unless the issue names such a file."""
    langs = index.__dict__.get("_langs")
    if langs is None:
        langs = [language(p) for p in index.paths]
        index.__dict__["_langs"] = langs
    counts = Counter(lang for lang, kind in zip(langs, index.kinds, strict=True) if kind == "code")
    counts.pop("text", None)
    main = counts.most_common(1)[0][0] if counts else None
    named = {language(p) for p in m.paths}
    return lambda f: 1.0 if langs[f] in (main, "text") or langs[f] in named else 0.5


@dataclass
class PastChanges:
    """What history says (history.py), by repository path."""

    referenced: dict[str, float] = field(default_factory=dict)
    """files changed by the issues, pull requests and commits the issue refers to"""
    similar: dict[str, float] = field(default_factory=dict)
    """files changed by past commits whose messages read like the issue"""
    referenced_by: Mapping[str, str] = field(default_factory=dict)
    similar_to: Mapping[str, str] = field(default_factory=dict)
    """path -> the commit behind its credit (`a1b2c3d4e5 "subject"`), for the reasons"""


def rank(
    index: RepoIndex,
    m: Mentions,
    top: int,
    load_details: Callable[[list[int]], dict[int, Detail]],
    past: PastChanges | None = None,
) -> Ranking:
    fs: dict[int, FileScore] = defaultdict(FileScore)
    sig = Signals()
    _paths(index, m, sig, fs)
    _frames(index, m.frames, sig, fs)
    idents, qualified = _modules(index, m, sig, fs)
    named: dict[int, dict[str, float]] = defaultdict(dict)
    qualified_hits: dict[int, float] = defaultdict(float)
    _exact_names(index, idents, m.title_idents, qualified, named, qualified_hits, fs)
    bm = _normalized(bm25_scores(index, m.query))
    head = sorted(bm, key=bm.__getitem__, reverse=True)[:PARTIAL_FILES]
    _partial_names(index, idents, head, named, fs)
    for f, per_name in named.items():
        sig.named[f] = min(sum(per_name.values()), SYMBOL_CAP) + W_QUALIFIED * qualified_hits[f]
        best = sorted(fs[f].named.values(), reverse=True)[:2]
        fs[f].reasons.extend(r for _, r in best)
    explicit = sig.explicit()

    for f in head[:5]:
        fs[f].reasons.append(f"bm25 {bm[f]:.2f}")
    pathwords = _normalized(path_token_scores(index, m.query))
    for f in sorted(pathwords, key=pathwords.__getitem__, reverse=True)[:3]:
        fs[f].reasons.append("path words match the issue")
    base = {
        f: explicit.get(f, 0.0)
        + W_BM25 * bm.get(f, 0.0)
        + W_PATHTOK * pathwords.get(f, 0.0) * bm.get(f, 0.0)
        for f in set(explicit) | set(bm)
    }
    neighbours = _neighbours(index, explicit, bm, fs)
    for f, gain in neighbours.items():
        base[f] = base.get(f, 0.0) + gain
    past = past or PastChanges()
    referenced = _by_file(index, past.referenced)
    similar = _by_file(index, past.similar)
    for f, v in referenced.items():
        base[f] = base.get(f, 0.0) + W_REFERENCED * v
        if v > 0.5:
            why = past.referenced_by.get(index.paths[f])
            fs[f].reasons.append(
                "changed by a change the issue refers to" + (f": {why}" if why else "")
            )
    for f, v in similar.items():
        base[f] = base.get(f, 0.0) + W_SIMILAR * v
    for f in sorted(similar, key=similar.__getitem__, reverse=True)[:3]:
        why = past.similar_to.get(index.paths[f])
        fs[f].reasons.append(
            "changed by past commits that read like the issue" + (f", such as {why}" if why else "")
        )
    final = _priors(index, m, base, fs)
    prior = {f: final[f] / base[f] if base.get(f) else 0.0 for f in final}

    details: dict[int, Detail] = {}

    def cached_details(files: list[int]) -> dict[int, Detail]:
        missing = [f for f in files if f not in details]
        if missing:
            details.update(load_details(missing))
            details.update({f: Detail([], {}) for f in missing if f not in details})
        return {f: details[f] for f in files}

    symlex = _rerank_by_definition(index, m, final, base, cached_details)

    order = sorted((f for f in final if final[f] > 0), key=lambda f: (-final[f], index.paths[f]))
    detailed = max(_SYMBOL_FILES, min(top, 30))  # each costs one cache read
    callees = _callees(index, m, final, order, fs, cached_details)
    if callees:
        order = sorted(
            (f for f in final if final[f] > 0), key=lambda f: (-final[f], index.paths[f])
        )
    chosen = order[: max(top, detailed)]
    files = [(f, final[f], _dedupe(fs[f].reasons)) for f in chosen]
    symbols, per_file = _rank_symbols(index, m, files[:detailed], fs, cached_details)
    signals = {
        f: {
            "path": sig.path.get(f, 0.0),
            "frame": sig.frame.get(f, 0.0),
            "innermost": sig.innermost.get(f, 0.0),
            "module": sig.module.get(f, 0.0),
            "symbol": sig.named.get(f, 0.0),
            "api": sig.api.get(f, 0.0),
            "bm25": bm.get(f, 0.0),
            "pathtok": pathwords.get(f, 0.0),
            "neighbour": neighbours.get(f, 0.0),
            "referenced": referenced.get(f, 0.0),
            "similar": similar.get(f, 0.0),
            "symlex": symlex.get(f, 0.0),
            "callee": callees.get(f, 0.0),
            "prior": prior.get(f, 0.0),
            "final": final.get(f, 0.0),
        }
        for f in order[:50]
    }
    return Ranking(files=files[:top], symbols=symbols, per_file_symbols=per_file, signals=signals)


def _by_file(index: RepoIndex, scores: dict[str, float]) -> dict[int, float]:
    """Path scores as file scores, square-rooted against the best (one commit more
    or less should not swing a file far), for files that exist at this commit."""
    ids = index.path_ids
    top = max(scores.values(), default=0.0)
    if top <= 0:
        return {}
    return {ids[p]: math.sqrt(v / top) for p, v in scores.items() if p in ids and v > 0}


def _normalized(scores: dict[int, float]) -> dict[int, float]:
    top = max(scores.values(), default=0.0) or 1.0
    return {f: s / top for f, s in scores.items()}


def _paths(index: RepoIndex, m: Mentions, sig: Signals, fs: dict[int, FileScore]) -> None:
    """Paths named in the issue: the best mention of each file counts. A frame's path
    is the frame's evidence, not a second mention."""
    frame_paths = {fr.path for fr in m.frames}
    for raw, w in m.paths.items():
        if raw in frame_paths:
            continue
        hits = match_path(index, raw)
        for f, _k in hits:
            sig.path[f] = max(sig.path[f], w / len(hits))
            fs[f].reasons.append(f"path `{raw}` named in the issue")


def _frames(index: RepoIndex, frames: list[Frame], sig: Signals, fs: dict[int, FileScore]) -> None:
    """Traceback frames: every frame inside the repository, the innermost one more."""
    in_repo: list[tuple[int, Frame]] = []
    for fr in frames:
        hits = match_path(index, fr.path)
        if len(hits) == 1:
            in_repo.append((hits[0][0], fr))
    if not in_repo:
        return
    innermost = in_repo[-1][1].index
    shown: Counter[int] = Counter()
    for f, fr in reversed(in_repo):
        last = fr.index == innermost
        fs[f].frames.append((fr.line, fr.func, last))
        sig.frame[f] = 1.0
        if last:
            sig.innermost[f] = 1.0
        shown[f] += 1
        if shown[f] > MAX_FRAME_REASONS:  # the innermost few say where; more is noise
            continue
        where = f"line {fr.line}" if fr.line else "frame"
        fs[f].reasons.append(
            f"traceback frame {where}"
            + (f" in {fr.func}" if fr.func else "")
            + (" (innermost)" if last else "")
        )


def _modules(
    index: RepoIndex, m: Mentions, sig: Signals, fs: dict[int, FileScore]
) -> tuple[dict[str, float], dict[str, float]]:
    """Dotted names: the longest prefix that is a module of the repository is a module
    mention; the parts after it are identifiers, and consecutive parts qualified names
    (`Quaternion.to_rotation_matrix`). Returns (identifiers, qualified names)."""
    qualified: dict[str, float] = {}
    idents = dict(m.idents)
    resolved: list[tuple[int, str, float]] = []
    api: list[tuple[int, str, float]] = []
    for name, w in m.imported.items():
        module, _, attr = name.rpartition(".")
        f = index.modules.get(module)
        if f is not None:
            api.append((f, attr, w))
    for name, w in m.dotted.items():
        parts = name.split(".")
        consumed = 0
        for k in range(min(len(parts), MAX_MODULE_PARTS), 0, -1):
            f = index.modules.get(".".join(parts[:k]))
            if f is None:
                continue
            if k >= 2:
                # A package's __init__ says little; a module used in a snippet
                # (`xr.tutorial.load_dataset(...)`) less than one named in prose.
                weak = PACKAGE_W if index.paths[f].endswith("__init__.py") else 1.0
                used = 1.0 if name in m.dotted_prose else CODE_MODULE_W
                resolved.append((f, ".".join(parts[:k]), w * weak * used))
            consumed = k
            if k < len(parts):
                api.append((f, parts[k], w))
            break
        rest = parts[consumed:]
        for i, part in enumerate(rest):
            # `np.array`, `ds.attrs`: a leading part that is no module is usually a
            # local variable or an alias; the parts after it are attribute names.
            wi = w * (0.5 if i == 0 and not consumed and len(rest) > 1 else 1.0)
            if len(part) > 2 and wi > idents.get(part, 0.0):
                idents[part] = wi
        for a, b in pairwise(rest):
            qualified[f"{a}.{b}"] = max(qualified.get(f"{a}.{b}", 0.0), w)
    # A list of twenty extensions in a conf.py says less about each than one import.
    spread = math.sqrt(len({f for f, _, _ in resolved}) or 1)
    for f, mod, w in resolved:
        sig.module[f] = max(sig.module[f], w / spread)
        fs[f].reasons.append(f"module `{mod}` named in the issue")
    _api_definitions(index, api, sig, fs)
    if SPELLED_MODULE:
        _spelled_modules(index, m, sig, fs)
    if LISTED_MODULE:
        _listed_modules(index, m, sig, fs)
    return idents, qualified


def _listed_modules(index: RepoIndex, m: Mentions, sig: Signals, fs: dict[int, FileScore]) -> None:
    """Bare words listed together that are the names of two or more modules of one
    package name those modules: "I tried three printers: str, pretty, and latex" is
    about sympy/printing/str.py and latex.py. One such word alone is only a word
    (`str`, `core`); the list is what makes it a module.

    A word that also names a definition of its module (`latex()` in latex.py,
    `Variable` in variable.py) is left to the symbol signals, which already credit
    it and better know whether the object or its module is meant; it still counts
    as a sibling."""
    if not m.listed:
        return
    stems = _module_stems(index)
    for items, w in m.listed:
        by_package: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for word in dict.fromkeys(items):
            for package, f in stems.get(word, ()):
                by_package[package].append((f, word))
        for package, hits in by_package.items():
            if len(hits) < 2:
                continue
            # Twenty modules listed say less about each than three.
            weight = LISTED_MODULE * w / math.sqrt(max(1.0, len(hits) / 3))
            for f, word in hits:
                if any(g == f for defs in index.definitions(word).values() for g, _ in defs):
                    continue
                sig.module[f] = max(sig.module[f], weight)
                fs[f].reasons.append(f"`{word}` listed with its sibling modules of `{package}`")


def _module_stems(index: RepoIndex) -> dict[str, list[tuple[str, int]]]:
    """A code module's last name component -> (its package's dotted name, file), for
    modules that are not a package's __init__."""
    stems = index.__dict__.get("_module_stems")
    if stems is None:
        stems = defaultdict(list)
        seen: set[int] = set()
        for name, f in sorted(index.modules.items(), key=lambda item: len(item[0])):
            if f in seen or index.kinds[f] != "code" or index.paths[f].endswith("__init__.py"):
                continue
            package, _, stem = name.rpartition(".")
            if package:
                seen.add(f)
                stems[stem].append((package, f))
        index.__dict__["_module_stems"] = stems
    return stems


def _spelled_modules(index: RepoIndex, m: Mentions, sig: Signals, fs: dict[int, FileScore]) -> None:
    """A compound name said like code whose words spell the tail of a module's dotted
    path names that module: `autodoc_typehints` is the option of
    sphinx/ext/autodoc/typehints.py, `assertion_rewrite` means
    _pytest/assertion/rewrite.py. At least two components must match, so a one-word
    module (`util`) is never spelled by accident."""
    wanted = {
        ident: (parts, w)
        for ident, w in m.idents.items()
        if w >= PARTIAL_MIN_W and len(parts := split_words(ident)) >= 2
    }
    if not wanted:
        return
    tails = _module_tails(index)
    for ident, (parts, w) in wanted.items():
        for k in (3, 2):
            for i in range(len(parts) - k + 1):
                for f, module in tails.get(tuple(parts[i : i + k]), ()):
                    weak = PACKAGE_W if index.paths[f].endswith("__init__.py") else 1.0
                    sig.module[f] = max(sig.module[f], SPELLED_MODULE * w * weak)
                    fs[f].reasons.append(f"`{ident}` spells module `{module}`")


def _module_tails(index: RepoIndex) -> dict[tuple[str, ...], list[tuple[int, str]]]:
    """The last two and last three components of every code module's dotted name ->
    (file, dotted name)."""
    tails = index.__dict__.get("_module_tails")
    if tails is None:
        tails = {}
        seen: set[tuple[tuple[str, ...], int]] = set()
        # A file can have two names (`_pytest.config`, `src._pytest.config`): the
        # shorter, canonical one is shown.
        for name, f in sorted(index.modules.items(), key=lambda item: len(item[0])):
            if index.kinds[f] != "code":
                continue
            comps = tuple(name.lower().split("."))
            for k in range(2, min(3, len(comps)) + 1):
                if (comps[-k:], f) not in seen:
                    seen.add((comps[-k:], f))
                    tails.setdefault(comps[-k:], []).append((f, name))
        index.__dict__["_module_tails"] = tails
    return tails


def _api_definitions(
    index: RepoIndex, api: list[tuple[int, str, float]], sig: Signals, fs: dict[int, FileScore]
) -> None:
    """`xarray.where`, `from sympy import Rational`: the public name, followed through
    the package's imports (two hops: `sympy/__init__` -> `core/__init__` ->
    `core/numbers.py`) to the file that defines it."""
    for mod_file, name, w in api:
        defs = index.definitions(name).get(name, [])
        files = {f for f, _ in defs}
        if not files or len(files) > MAX_DEFINING_FILES:
            continue
        if mod_file in files:
            owners = {mod_file}
        else:
            hop1 = set(index.imports(mod_file))
            owners = files & hop1
            if not owners:
                hop2 = {g for h in hop1 for g in index.imports(h)}
                owners = files & hop2
        if not 1 <= len(owners) <= 3:
            continue
        for f in owners:
            sig.api[f] = max(sig.api[f], w / len(owners))
            fs[f].reasons.append(f"defines `{name}` of `{index.paths[mod_file]}`'s API")


def _definition_idf(index: RepoIndex, files: int) -> float:
    n = len(index.paths)
    idf = math.log(1.0 + n / max(files, 1)) / math.log(1.0 + n)
    return idf * idf


def _exact_names(
    index: RepoIndex,
    idents: dict[str, float],
    in_title: set[str],
    qualified: dict[str, float],
    named: dict[int, dict[str, float]],
    qualified_hits: dict[int, float],
    fs: dict[int, FileScore],
) -> None:
    """Identifiers that are the name of a definition (any case; exact case counts
    double): code-like mention x rare definition x rare word."""
    for ident, w in idents.items():
        spellings = index.definitions(ident)
        if not spellings:
            continue
        rarity = _term_rarity(index, ident)
        if ident in in_title:
            # The title's subject is the subject, however often the tree says it.
            rarity = max(rarity, TITLE_RARITY)
        for name, defs in spellings.items():
            # "Posify ignores ..." starts a sentence: `posify` is meant, not another case.
            case_w = 1.0 if name == ident or ident == name.capitalize() else 0.5
            files = {f for f, _ in defs}
            if len(files) > MAX_DEFINING_FILES:
                continue
            idf = _definition_idf(index, len(files))
            for f, s in defs:
                qual, kind = index.symbol(f, s)[:2]
                q_bonus = 1.0
                for pair, qw in qualified.items():
                    if qual == pair or qual.endswith("." + pair):
                        q_bonus = max(q_bonus, 1.0 + qw)
                kind_w = 0.8 if kind == "method" and q_bonus == 1.0 else 1.0
                c = w * case_w * idf * kind_w * rarity
                if q_bonus > 1.0:
                    qualified_hits[f] = max(qualified_hits[f], w * case_w * (q_bonus - 1.0))
                if c > named[f].get(name, 0.0):
                    named[f][name] = c
                prev = fs[f].named.get(s)
                if prev is None or c * q_bonus > prev[0]:
                    fs[f].named[s] = (c * q_bonus, f"names symbol `{qual}`")


def _partial_names(
    index: RepoIndex,
    idents: dict[str, float],
    candidates: list[int],
    named: dict[int, dict[str, float]],
    fs: dict[int, FileScore],
) -> None:
    """`Subs` in the issue, `_print_Subs` in the printer: weaker than exact, only for
    code-like mentions (prose words meet too many names by accident), and only among
    files the words already point at (`candidates`), which keeps it cheap."""
    if not W_PARTIAL:
        return
    by_part: dict[str, list[tuple[str, list[str], float]]] = defaultdict(list)
    for ident, w in idents.items():
        xp = split_words(ident)
        if xp and len(ident) >= 4 and w >= PARTIAL_MIN_W:
            by_part[max(xp, key=len)].append((ident, xp, w))
    if not by_part:
        return
    for part, entries in by_part.items():
        # A pasted script naming func1..func3000 would match every one against every
        # symbol with the word: the strongest few speak for the word.
        if len(entries) > PARTIAL_PER_WORD:
            entries.sort(key=lambda e: (-e[2], e[0]))
            del entries[PARTIAL_PER_WORD:]
    rarity: dict[str, float] = {}
    idf: dict[str, float] = {}  # leaf -> IDF of its definitions, 0 when too common
    for f in candidates:
        for s, row in enumerate(index.symbols(f)):
            leaf = row[0].rsplit(".", 1)[-1]
            parts = split_words(leaf)
            if len(parts) < 2:
                continue
            for part in by_part.keys() & set(parts):
                for ident, xp, w in by_part[part]:
                    if leaf.lower() == ident.lower() or len(xp) > 1 and not _contains(parts, xp):
                        continue
                    if leaf not in idf:
                        n = len({g for g, _ in index.definitions(leaf).get(leaf, [])})
                        idf[leaf] = _definition_idf(index, n) if n <= MAX_DEFINING_FILES else 0.0
                    if ident not in rarity:
                        rarity[ident] = _term_rarity(index, ident)
                    c = W_PARTIAL * w * idf[leaf] * rarity[ident]
                    if not c:
                        continue
                    if c > named[f].get(leaf, 0.0):
                        named[f][leaf] = c
                    prev = fs[f].named.get(s)
                    if prev is None or c > prev[0]:
                        fs[f].named[s] = (c, f"symbol `{row[0]}` contains `{ident}`")


def _neighbours(
    index: RepoIndex, explicit: dict[int, float], bm: dict[int, float], fs: dict[int, FileScore]
) -> dict[int, float]:
    """Import-graph neighbours of the strongest explicit hits, by their own BM25."""
    # A test that names the function is no reason to lift what the test imports.
    weight = {f: s * PRIOR.get(index.kinds[f], 0.3) for f, s in explicit.items()}
    strong = sorted(weight, key=weight.__getitem__, reverse=True)[:5]
    top_explicit = max(weight.values(), default=0.0) or 1.0
    bonus: dict[int, float] = defaultdict(float)
    for h in strong:
        share = weight[h] / top_explicit
        for nb in set(index.imports(h)) | set(index.imported_by(h)):
            # A hub (imported by half the tree) is everyone's neighbour: says nothing.
            degree = index.degree(nb)
            gain = W_NEIGHBOUR * share * bm.get(nb, 0.0) / (1.0 + HUB * math.log1p(degree))
            if gain > bonus[nb]:
                bonus[nb] = gain
                if gain > 0.3:
                    fs[nb].reasons.append(f"import neighbour of {index.paths[h]}")
    return bonus


def _priors(
    index: RepoIndex, m: Mentions, base: dict[int, float], fs: dict[int, FileScore]
) -> dict[int, float]:
    lang_prior = _language_prior(index, m)
    final: dict[int, float] = {}
    for f, s in base.items():
        kind = index.kinds[f]
        prior = PRIOR.get(kind, 0.3)
        if kind == "test" and m.about_tests or kind == "doc" and m.about_docs:
            prior = 1.0
        if prior == 0.0:
            continue
        final[f] = s * prior * lang_prior(f)
        if prior < 1.0 and s > 0:
            label = "code outside the package (docs, examples)" if kind == "aux" else f"{kind} file"
            fs[f].reasons.append(f"{label} (down-weighted)")
    return final


def _rerank_by_definition(
    index: RepoIndex,
    m: Mentions,
    final: dict[int, float],
    base: dict[int, float],
    details: Callable[[list[int]], dict[int, Detail]],
) -> dict[int, float]:
    """The head gains by its best single definition's BM25: a file whose one function
    says what the issue says beats one that says it over two thousand lines."""
    if not W_SYMLEX or not final:
        return {}
    head = sorted(final, key=lambda f: -final[f])[:RERANK]
    idf = _query_idf(index, m.query)
    best = {
        f: max(_symbol_bm25(det, m.query, idf).values(), default=0.0)
        for f, det in details(head).items()
    }
    best = _normalized(best)
    for f in head:
        prior = final[f] / base[f] if base[f] else 0.0
        final[f] += W_SYMLEX * best[f] * prior
    return best


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _rank_symbols(
    index: RepoIndex,
    m: Mentions,
    files: list[tuple[int, float, list[str]]],
    fs: dict[int, FileScore],
    load_details: Callable[[list[int]], dict[int, Detail]],
) -> tuple[list[tuple[int, int, float, list[str]]], dict[int, list[int]]]:
    if not files:
        return [], {}
    top_score = files[0][1] or 1.0
    details = load_details([f for f, _, _ in files])
    idf = _query_idf(index, m.query)

    raw: list[tuple[int, int, float, float, list[str]]] = []  # file, sym, explicit, bm25
    for f, _score, _ in files:
        rows = index.symbols(f)
        lex = _symbol_bm25(details.get(f), m.query, idf)
        fscore = fs.get(f, FileScore())
        by_func: dict[str, list[int]] = defaultdict(list)
        for k, (_, func, _) in enumerate(fscore.frames):
            if func and func != "<module>":
                by_func[func].append(k)
        by_line = sorted((line, k) for k, (line, _, _) in enumerate(fscore.frames) if line)
        frame_lines = [line for line, _ in by_line]
        for s, row in enumerate(rows):
            reasons: list[str] = []
            ex = 0.0
            if s in fscore.named:
                w, why = fscore.named[s]
                ex += 2.0 * w
                reasons.append(why.replace("names symbol", "named in the issue:"))
            leaf = row[0].rsplit(".", 1)[-1]
            # The frames in this symbol: by function name, or by a line in its span.
            hits = set(by_func.get(leaf, ()))
            if row[1] != "class" and by_line:
                lo = bisect_left(frame_lines, row[2])
                hi = bisect_right(frame_lines, row[3])
                hits.update(k for _, k in by_line[lo:hi])
            for k in sorted(hits):
                line, _, last = fscore.frames[k]
                ex += 1.5 if last else 0.8
                if len(reasons) < MAX_FRAME_REASONS:
                    reasons.append(f"traceback frame{' line ' + str(line) if line else ''}")
            raw.append((f, s, ex, lex.get(s, 0.0), reasons))
    top_lex = max((r[3] for r in raw), default=0.0) or 1.0
    scored: list[tuple[int, int, float, list[str]]] = []
    file_rel = {f: max(score, 0.0) / top_score for f, score, _ in files}
    for f, s, ex, own, reasons in raw:
        kind_w = 0.6 if index.symbols(f)[s][1] == "class" else 1.0
        sc = math.sqrt(file_rel[f]) * kind_w * (ex + own / top_lex)
        if sc <= 0:
            continue
        if own / top_lex > 0.3:
            reasons = [*reasons, f"bm25 {own / top_lex:.2f}"]
        scored.append((f, s, sc, reasons))
    scored.sort(key=lambda r: (-r[2], index.paths[r[0]], r[1]))
    per_file: dict[int, list[int]] = defaultdict(list)
    for f, s, _, _ in scored:
        if len(per_file[f]) < 5:
            per_file[f].append(s)
    return scored, per_file


def _query_idf(index: RepoIndex, query: dict[str, float]) -> dict[str, float]:
    n = len(index.paths)
    idf: dict[str, float] = {}
    for term in query:
        post = index.postings(term)
        if post:
            df = len(post) // 2
            idf[term] = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
    return idf


def _symbol_bm25(
    detail: Detail | None, query: dict[str, float], idf: dict[str, float]
) -> dict[int, float]:
    """BM25 of each symbol's own token bag, with the tree's IDF; length-normalised
    against a typical function (60 tokens) rather than the file's average."""
    out: dict[int, float] = defaultdict(float)
    if detail is None:
        return out
    for term, qw in query.items():
        if term not in detail.packed:
            continue
        post = detail.postings(term)
        for k in range(0, len(post), 2):
            s, tf = post[k], post[k + 1]
            norm = K1 * (1.0 - B + B * detail.lens[s] / 60.0)
            out[s] += qw * idf.get(term, 0.0) * tf * (K1 + 1.0) / (tf + norm)
    return out


def _callees(
    index: RepoIndex,
    m: Mentions,
    final: dict[int, float],
    order: list[int],
    fs: dict[int, FileScore],
    details: Callable[[list[int]], dict[int, Detail]],
) -> dict[int, float]:
    """Where the behaviour continues: functions and classes that the best symbols of
    the best files call, lifted in `final` (returned: each lifted file's gain).

    `Dataset.chunks` ranks first, the bug is in `get_chunksizes` of common.py which
    it calls; `ModuleDocumenter.get_object_members` calls `get_module_members` of
    importer.py. A used name counts when it names a function or class defined in a
    few files, one of them imported by the caller's file (so the name resolves
    there), weighed by the caller's and the symbol's standing and by how few files
    say the name (`sympify` is called everywhere and points nowhere). A callee stays
    below its caller: it is where the behaviour goes, not what the issue is about."""
    if not W_CALLEE or not order:
        return {}
    head = order[:CALLEE_FILES]
    top = final[head[0]] or 1.0
    dets = details(head)
    rows: list[tuple[int, float, list[str]]] = [(f, final[f], []) for f in head]
    ranked, per_file = _rank_symbols(index, m, rows, fs, lambda files: dets)
    score = {(f, s): sc for f, s, sc, _ in ranked}
    best = max(score.values(), default=0.0) or 1.0
    n = len(index.paths)
    # callee file -> (credit, caller file, name as defined, calling symbol)
    credit: dict[int, tuple[float, int, str, str]] = {}
    rarity: dict[str, float] = {}
    for t in head:
        wanted = {s: score[(t, s)] for s in per_file.get(t, [])[:CALLEE_SYMBOLS]}
        det = dets.get(t)
        if not wanted or det is None:
            continue
        imported = set(index.imports(t))
        used: dict[int, list[str]] = defaultdict(list)
        defined = index.packed_defs
        for term, packed in det.packed.items():
            if term not in defined and "_" + term not in defined:
                continue  # most tokens name no definition: skip decoding them
            nums = unpack_ints(packed)
            for s in nums[::2]:
                if s in wanted:
                    used[s].append(term)
        # Tokens stand for names: whole identifiers lower-cased, without edge
        # underscores, single words plural-folded, parts of compound names too. So a
        # name said in a docstring, or a part (`loader` of `config_loader`), can match
        # a definition; the import edge and the rarity weight keep that rare.
        for s, terms in used.items():
            share = final[t] / top * wanted[s] / best
            for term in terms:
                for name in (term, "_" + term):  # tokens drop a leading underscore
                    for spelled, defs in index.definitions(name).items():
                        if len({g for g, _ in defs}) > CALLEE_MAX_DEFINING:
                            continue
                        for g, sym in defs:
                            if g == t or g not in imported or index.kinds[g] != "code":
                                continue
                            if index.symbol(g, sym)[1] == "method":
                                continue
                            if term not in rarity:
                                df = len(index.postings(term)) // 2
                                rarity[term] = math.log((n + 1) / (df + 1)) / math.log(n + 1)
                            c = share * rarity[term] ** 2
                            if c > credit.get(g, (0.0,))[0]:
                                caller = index.symbol(t, s)[0]
                                credit[g] = (c, t, spelled, caller)
    lifts: dict[int, float] = {}
    for g, (c, t, name, caller) in credit.items():
        before = final.get(g, 0.0)
        lifted = min(before + W_CALLEE * c, CALLEE_CAP * final[t])
        if lifted > before:  # the cap never lowers a score
            final[g] = lifted
            lifts[g] = lifted - before
            if lifted - before > 0.5:
                fs[g].reasons.append(f"`{name}` is used by `{caller}` ({index.paths[t]})")
    return lifts
