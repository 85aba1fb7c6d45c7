"""Ranking files and symbols for an issue: explicit pointers first, words second.

Each file's score is a weighted sum of signals, then a prior:

    score = W_PATH*path + W_FRAME*frame + W_MODULE*module + W_SYMBOL*symbols
            + W_BM25*bm25/max_bm25 + neighbours,   times 0.3 for tests (unless the
            issue is about tests), docs and config files.

- path, frame, module: the issue names the file (a path, a traceback frame, a dotted
  module). The innermost frame inside the repository weighs more: that is usually
  where the behaviour is, the outer ones are the way in.
- symbols: identifiers of the issue that name definitions in the file, each weighed
  by how code-like its mention is (code block > snake/camel shaped > prose word) and
  by how rare the name is as a definition (`__init__` says nothing, `minversion` a
  lot; IDF over defining files). A qualified mention (`Quaternion.to_rotation_matrix`)
  that matches the qualified definition counts more than the bare leaf name.
- bm25: Okapi BM25 over code-aware tokens (see tokens.py), computed here from the
  postings in the index; normalised by the best file so the weight means the same
  on every repository.
- neighbours: a file that imports, or is imported by, one of the strongest hits
  gets a share of that hit's score, scaled by its own lexical match. Helpers of the
  named module come up; random importers do not.

Symbols are then scored inside the best files: named in the issue, owner of a
traceback frame, and BM25 of their own token bag; times the file's relative score,
so a named method in the second file can beat an unnamed one in the first.

The weights are few and were set against bench/localize.py on SWE-bench instances
(general signals only: no repository or instance is special-cased).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from agent_cli.search.index import Detail, RepoIndex
from agent_cli.search.issue import Mentions
from agent_cli.search.symbols import language
from agent_cli.search.tokens import ident_tokens, split_words, stem

W_PATH = 4.5
W_FRAME = 1.0
W_FRAME_LAST = 2.5
W_MODULE = 1.5
W_SYMBOL = 2.25
W_BM25 = 3.0
W_NEIGHBOUR = 0.65
W_PATHTOK = 2.5
W_PARTIAL = 0.15
W_SYMLEX = 1.5
W_QUALIFIED = 2.0
RERANK = 20
CODE_MODULE_W = 0.5
RARITY_EXP = 1.0
PARTIAL_MIN_W = 0.8
PT_MIX = 0.0
SYMBOL_CAP = 1.1
PRIOR = {"code": 1.0, "test": 0.3, "aux": 0.4, "doc": 0.3, "config": 0.4, "skip": 0.0}
K1, B = 1.2, 0.75
_SYMBOL_FILES = 12  # files whose symbols are scored in detail


@dataclass
class FileScore:
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)
    named: dict[int, tuple[float, str]] = field(default_factory=dict)
    """symbol index -> (weight of its mention, reason)"""
    frames: list[tuple[int | None, str | None, bool]] = field(default_factory=list)
    """(line, function, innermost) of traceback frames in this file"""


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
    return (math.log((n + 1) / (df + 1)) / math.log(n + 1)) ** RARITY_EXP if df else 1.0


def _path_tokens(index: RepoIndex) -> tuple[list[dict[str, float]], dict[str, float]]:
    """Per file, the stemmed tokens of its path (file name 1.0, directories 0.5), and
    each token's IDF over paths: `linkcheck` names one file, `core` a hundred."""
    cached = index.__dict__.get("_path_tokens")
    if cached is None:
        per_file: list[dict[str, float]] = []
        df: Counter[str] = Counter()
        for p in index.paths:
            *dirs, name = p.split("/")
            toks: dict[str, float] = {}
            for d in dirs:
                for t in ident_tokens(d):
                    toks[stem(t)] = 0.5
            for t in ident_tokens(name.rsplit(".", 1)[0]):
                toks[stem(t)] = 1.0
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


def _part_index(index: RepoIndex) -> dict[str, list[str]]:
    """Lower-cased name part -> compound symbol names that contain it."""
    cached = index.__dict__.get("_parts")
    if cached is None:
        cached = defaultdict(list)
        for packed in index.packed_defs.values():
            for group in packed.split(";"):
                name = group.split("|", 1)[0]
                parts = split_words(name)
                if len(parts) > 1:
                    for p in set(parts):
                        if len(p) > 2:
                            cached[p].append(name)
        index.__dict__["_parts"] = cached
    return cached


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


def rank(
    index: RepoIndex,
    m: Mentions,
    top: int,
    load_details: Callable[[list[int]], dict[int, Detail]],
) -> Ranking:
    n = len(index.paths)
    fs: dict[int, FileScore] = defaultdict(FileScore)
    path_s: dict[int, float] = defaultdict(float)
    frame_s: dict[int, float] = defaultdict(float)
    last_s: dict[int, float] = defaultdict(float)
    module_s: dict[int, float] = defaultdict(float)
    symbol_s: dict[int, float] = defaultdict(float)

    # Paths named in the issue: the best mention of each file counts. A frame's path
    # is the frame's evidence, not a second mention.
    frame_paths = {fr.path for fr in m.frames}
    for raw, w in m.paths.items():
        if raw in frame_paths:
            continue
        hits = match_path(index, raw)
        for f, _k in hits:
            path_s[f] = max(path_s[f], w / len(hits))
            fs[f].reasons.append(f"path `{raw}` named in the issue")

    # Traceback frames: every in-repo frame, the innermost one more.
    in_repo: list[tuple[int, Any]] = []
    for fr in m.frames:
        hits = match_path(index, fr.path)
        if len(hits) == 1:
            in_repo.append((hits[0][0], fr))
    if in_repo:
        innermost = in_repo[-1][1].index
        for f, fr in in_repo:
            last = fr.index == innermost
            fs[f].frames.append((fr.line, fr.func, last))
            frame_s[f] = 1.0
            if last:
                last_s[f] = 1.0
            where = f"line {fr.line}" if fr.line else "frame"
            fs[f].reasons.append(
                f"traceback frame {where}"
                + (f" in {fr.func}" if fr.func else "")
                + (" (innermost)" if last else "")
            )

    # Dotted names: modules of the repository, then what follows them as symbols. A
    # list of twenty extensions in a conf.py says less about each than one import.
    qualified: dict[str, float] = {}
    idents = dict(m.idents)
    resolved: list[tuple[int, str, float]] = []
    for name, w in m.dotted.items():
        parts = name.split(".")
        consumed = 0
        for k in range(len(parts), 0, -1):
            f = index.modules.get(".".join(parts[:k]))
            if f is None:
                continue
            if k >= 2:
                # A package's __init__ says little; a module used in a snippet
                # (`xr.tutorial.load_dataset(...)`) less than one named in prose.
                weak = 0.4 if index.paths[f].endswith("__init__.py") else 1.0
                used = 1.0 if name in m.dotted_prose else CODE_MODULE_W
                resolved.append((f, ".".join(parts[:k]), w * weak * used))
            consumed = k
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
    spread = math.sqrt(len({f for f, _, _ in resolved}) or 1)
    for f, mod, w in resolved:
        module_s[f] = max(module_s[f], w / spread)
        fs[f].reasons.append(f"module `{mod}` named in the issue")

    # Identifiers that name definitions: code-like mention x rare definition x rare word.
    log_n = math.log(1.0 + n)
    named_score: dict[int, dict[str, float]] = defaultdict(dict)
    qual_score: dict[int, float] = defaultdict(float)
    for ident, w in idents.items():
        spellings = index.definitions(ident)
        if not spellings:
            continue
        rarity = _term_rarity(index, ident)
        for name, defs in spellings.items():
            case_w = 1.0 if name == ident else 0.5
            files = {f for f, _ in defs}
            if len(files) > 60:  # `__init__`, `get`, `_print_Symbol`: not a pointer
                continue
            idf = math.log(1.0 + n / len(files)) / log_n
            for f, s in defs:
                row = index.symbols(f)[s]
                qual = row[0]
                q_bonus = 1.0
                for pair, qw in qualified.items():
                    if qual == pair or qual.endswith("." + pair):
                        q_bonus = max(q_bonus, 1.0 + qw)
                kind_w = 0.8 if row[1] == "method" and q_bonus == 1.0 else 1.0
                c = w * case_w * idf * idf * kind_w * rarity
                if q_bonus > 1.0:
                    # `Quaternion.to_rotation_matrix` names one definition in one
                    # file; it is not one more word, so it is not capped with them.
                    qual_score[f] = max(qual_score[f], w * case_w * (q_bonus - 1.0))
                if c > named_score[f].get(name, 0.0):
                    named_score[f][name] = c
                prev = fs[f].named.get(s)
                if prev is None or c * q_bonus > prev[0]:
                    fs[f].named[s] = (c * q_bonus, f"names symbol `{qual}`")
    # Partial: `Subs` in the issue, `_print_Subs` in the printer. Weaker than exact.
    if W_PARTIAL:
        parts_index = _part_index(index)
        for ident, w in idents.items():
            xp = split_words(ident)
            if not xp or len(ident) < 4 or w < PARTIAL_MIN_W:
                continue  # prose words match too many names by accident
            rarity = _term_rarity(index, ident)
            key = max(xp, key=len)
            for name in parts_index.get(key, ())[:200]:
                if name.lower() == ident.lower() or not _contains(split_words(name), xp):
                    continue
                defs = index.definitions(name).get(name, [])
                files = {f for f, _ in defs}
                if not files or len(files) > 60:
                    continue
                idf = math.log(1.0 + n / len(files)) / log_n
                c = W_PARTIAL * w * idf * idf * rarity
                for f, s in defs:
                    if c > named_score[f].get(name, 0.0):
                        named_score[f][name] = c
                    prev = fs[f].named.get(s)
                    if prev is None or c > prev[0]:
                        fs[f].named[s] = (
                            c,
                            f"symbol `{index.symbols(f)[s][0]}` contains `{ident}`",
                        )
    for f, per_name in named_score.items():
        symbol_s[f] = min(sum(per_name.values()), SYMBOL_CAP) + W_QUALIFIED * qual_score[f]
        best = sorted(fs[f].named.values(), reverse=True)[:2]
        fs[f].reasons.extend(r for _, r in best)

    explicit: dict[int, float] = defaultdict(float)
    for f in set(path_s) | set(frame_s) | set(module_s) | set(symbol_s):
        explicit[f] = (
            W_PATH * path_s.get(f, 0.0)
            + W_FRAME * frame_s.get(f, 0.0)
            + W_FRAME_LAST * last_s.get(f, 0.0)
            + W_MODULE * module_s.get(f, 0.0)
            + W_SYMBOL * symbol_s.get(f, 0.0)
        )

    # Lexical match.
    bm = bm25_scores(index, m.query)
    top_bm = max(bm.values(), default=0.0) or 1.0
    bm_norm = {f: s / top_bm for f, s in bm.items()}
    for f in sorted(bm_norm, key=bm_norm.__getitem__, reverse=True)[:5]:
        fs[f].reasons.append(f"bm25 {bm_norm[f]:.2f}")

    pt = path_token_scores(index, m.query)
    top_pt = max(pt.values(), default=0.0) or 1.0
    pt_norm = {f: s / top_pt for f, s in pt.items()}
    for f in sorted(pt_norm, key=pt_norm.__getitem__, reverse=True)[:3]:
        fs[f].reasons.append("path words match the issue")

    base: dict[int, float] = defaultdict(float)
    for f in set(explicit) | set(bm_norm):
        base[f] = (
            explicit.get(f, 0.0)
            + W_BM25 * bm_norm.get(f, 0.0)
            + W_PATHTOK * pt_norm.get(f, 0.0) * (PT_MIX + (1 - PT_MIX) * bm_norm.get(f, 0.0))
        )

    # Import-graph neighbours of the strongest explicit hits.
    strong = sorted(explicit, key=explicit.__getitem__, reverse=True)[:5]
    top_explicit = max(explicit.values(), default=0.0) or 1.0
    bonus: dict[int, float] = defaultdict(float)
    for h in strong:
        share = explicit[h] / top_explicit
        for nb in set(index.imports(h)) | set(index.imported_by(h)):
            gain = W_NEIGHBOUR * share * bm_norm.get(nb, 0.0)
            if gain > bonus[nb]:
                bonus[nb] = gain
                if gain > 0.3:
                    fs[nb].reasons.append(f"import neighbour of {index.paths[h]}")
    for f, g in bonus.items():
        base[f] += g

    # Priors by kind of file and language.
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

    # Re-rank the head by its best single definition: an issue is usually about one
    # function, and a file whose one function says what the issue says beats a file
    # that says it spread over two thousand lines.
    details: dict[int, Detail] = {}

    def cached_details(files: list[int]) -> dict[int, Detail]:
        missing = [f for f in files if f not in details]
        if missing:
            details.update(load_details(missing))
            details.update({f: Detail([], {}) for f in missing if f not in details})
        return {f: details[f] for f in files}

    symlex: dict[int, float] = {}
    if W_SYMLEX and final:
        head = sorted(final, key=lambda f: -final[f])[:RERANK]
        idf = _query_idf(index, m.query)
        for f, det in cached_details(head).items():
            symlex[f] = max(_symbol_bm25(det, m.query, idf).values(), default=0.0)
        top_sl = max(symlex.values(), default=0.0) or 1.0
        for f in head:
            symlex[f] /= top_sl
            prior = final[f] / base[f] if base[f] else 0.0
            final[f] += W_SYMLEX * symlex[f] * prior

    order = sorted(final, key=lambda f: (-final[f], index.paths[f]))
    chosen = order[: max(top, _SYMBOL_FILES)]
    files = [(f, final[f], _dedupe(fs[f].reasons)) for f in chosen]
    symbols, per_file = _rank_symbols(index, m, files[:_SYMBOL_FILES], fs, cached_details)
    signals = {
        f: {
            "path": path_s.get(f, 0.0),
            "frame": frame_s.get(f, 0.0),
            "innermost": last_s.get(f, 0.0),
            "module": module_s.get(f, 0.0),
            "symbol": symbol_s.get(f, 0.0),
            "bm25": bm_norm.get(f, 0.0),
            "pathtok": pt_norm.get(f, 0.0),
            "neighbour": bonus.get(f, 0.0),
            "symlex": symlex.get(f, 0.0),
            "final": final.get(f, 0.0),
        }
        for f in base
    }
    return Ranking(files=files[:top], symbols=symbols, per_file_symbols=per_file, signals=signals)


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
        for s, row in enumerate(rows):
            reasons: list[str] = []
            ex = 0.0
            if s in fscore.named:
                w, why = fscore.named[s]
                ex += 2.0 * w
                reasons.append(why.replace("names symbol", "named in the issue:"))
            leaf = row[0].rsplit(".", 1)[-1]
            for line, func, last in fscore.frames:
                hit = func == leaf if func and func != "<module>" else False
                if not hit and line and row[2] <= line <= row[3] and row[1] != "class":
                    hit = True
                if hit:
                    ex += 1.5 if last else 0.8
                    reasons.append(f"traceback frame{' line ' + str(line) if line else ''}")
            raw.append((f, s, ex, lex.get(s, 0.0), reasons))
    top_lex = max((r[3] for r in raw), default=0.0) or 1.0
    scored: list[tuple[int, int, float, list[str]]] = []
    file_rel = {f: max(score, 0.0) / top_score for f, score, _ in files}
    for f, s, ex, lex, reasons in raw:
        kind_w = 0.6 if index.symbols(f)[s][1] == "class" else 1.0
        sc = math.sqrt(file_rel[f]) * kind_w * (ex + lex / top_lex)
        if sc <= 0:
            continue
        if lex / top_lex > 0.3:
            reasons = [*reasons, f"bm25 {lex / top_lex:.2f}"]
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
