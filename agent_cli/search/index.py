"""The repository index: one per commit, assembled from one entry per blob.

Layout in `<repo>/.agent/cache/index` (a JSON-only diskcache, see agent_cli.cache):

- `file:<V>:<blob>:<ext>` -> core facts of one file content: symbols with spans,
  raw imports, term frequencies, length. Keyed by the blob id, so a file that did not
  change between two commits is never parsed twice, whatever its path.
- `detail:<V>:<blob>:<ext>` -> per-symbol postings. Only read for the few files that
  rank high, so they stay out of the commit entry.
- `commit:<V>:<sha>` -> everything ranking needs at once: paths, lengths, symbols,
  the import graph resolved to file numbers, definitions by name, and an inverted
  index for BM25, packed into strings (see `RepoIndex`). A warm `agent locate` is
  one read of this entry plus a few `detail` reads.
- `stats` -> build counters (`commits_built`, `files_parsed`), so a caller (and the
  tests) can see whether a call built anything.

A new commit costs one `git ls-tree`, a `cat-file --batch` of the blobs not seen
before, parsing those, and re-assembling the commit entry from the cached file
entries. Parsing a large cold tree is spread over worker processes. `<V>` is
INDEX_VERSION: entries of another version are never read, so a format change
needs no migration, only a rebuild.

Files indexed: tracked regular files under 1 MB, not binary (NUL in the first 8 KB),
not in vendored trees or bundled copies (`jquery-3.5.1.js`), with a source, config
or documentation extension. Data files (.csv, .dat, .fits...) stay out: they are not
where an issue is fixed and their vocabulary drowns BM25. What can be derived from
the paths alone (file kinds, module names, path words) is derived once, at assembly,
and stored with the commit: a warm query should only decode, not recompute.
"""

from __future__ import annotations

import os
import re
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from agent_cli.search import gitrepo, treesit
from agent_cli.search.langs import language
from agent_cli.search.tokens import ident_tokens, stem, words

INDEX_VERSION = 11
_SEPARATORS = re.compile(r"[,|;]")
MAX_BYTES = 1_000_000
_PARALLEL_MIN_FILES = 200

VENDORED = words(
    """
    vendor vendored _vendor vendors third_party thirdparty third-party 3rdparty 3rd_party
    node_modules bower_components extern externals cextern site-packages .git .agent
    """
)  # not `external`: sympy/external is sympy's own code
_DOC_EXT = words("md rst txt adoc")
_CONFIG_EXT = words("cfg toml ini yaml yml json")
_CODE_EXT = words(
    """
    py pyi pyx pxd js jsx mjs cjs ts tsx go rs rb java kt scala c h cc cpp cxx hpp hh cs
    swift php lua sh bash r jl m mm sql pl ex exs html css scss jinja j2
    """
)
_BARE_NAMES = words("Makefile Dockerfile CMakeLists.txt setup.cfg tox.ini pyproject.toml")
_TEST_DIRS = words("test tests testing __tests__ spec specs")
# Code that documents, demonstrates or measures the project rather than being it.
_AUX_DIRS = words("doc docs example examples demo demos benchmark benchmarks asv_bench")
# jquery-3.5.1.js, underscore-1.13.1.min.js: a bundled copy of someone else's library.
_BUNDLE = re.compile(r"[-.]v?\d+\.\d+(?:\.\d+)?(?:\.min)?\.(?:js|css)$")
_TEST_FILE = re.compile(r"^(test_.*|.*_tests?\.[^.]+|conftest\.py|.*\.(test|spec)\.[jt]sx?)$")


def file_kind(path: str) -> str | None:
    """`code`, `test`, `aux` (code under doc/, examples/...), `doc` or `config` for
    files we index; None for the rest. Stored per commit: changing these rules means
    bumping INDEX_VERSION."""
    folder, _, name = path.rpartition("/")
    where = _folder_kind(folder)
    if where == "vendored" or name.endswith((".min.js", ".min.css")) or _BUNDLE.search(name):
        return None
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext in _CODE_EXT:
        if where == "test" or _TEST_FILE.match(name):
            return "test"
        return "aux" if where == "aux" else "code"
    if name in _BARE_NAMES or ext in _CONFIG_EXT:
        return "config"
    if ext in _DOC_EXT or name.upper().startswith(("README", "CHANGES", "CHANGELOG")):
        return "doc"
    return None


@lru_cache(maxsize=20_000)
def _folder_kind(folder: str) -> str:
    # Per folder, not per file: a tree has ten times fewer of them.
    parts = folder.split("/") if folder else []
    if any(p in VENDORED for p in parts):
        return "vendored"
    if any(p in _TEST_DIRS for p in parts):
        return "test"
    return "aux" if any(p in _AUX_DIRS for p in parts) else ""


@dataclass
class BuildStats:
    """What one `load_index` call did: reuse or build, and how much it parsed."""

    commit_cached: bool
    files_parsed: int
    files_reused: int
    commits_built_total: int = 0
    files_parsed_total: int = 0


def unpack_ints(packed: str) -> list[int]:
    """ "3,1,40" -> [3, 1, 40]; "" -> []."""
    return [int(x) for x in packed.split(",")] if packed else []


POSTING_BUCKETS = 512


def bucket_of(term: str) -> int:
    # crc32, not hash(): the bucket must be the same in every process.
    return zlib.crc32(term.encode()) % POSTING_BUCKETS


def find_posting(bucket: str, term: str) -> str:
    """Term `term`'s postings inside a bucket string ";term:f,tf,...;term2:...".

    A substring search in C over a few KB beats decoding tens of thousands of dict
    entries of which a query needs a few hundred."""
    start = bucket.find(";" + term + ":")
    if start < 0:
        return ""
    start += len(term) + 2
    end = bucket.find(";", start)
    return bucket[start : end if end >= 0 else len(bucket)]


def pack_ints(values: list[int]) -> str:
    """[3, 1, 40] -> "3,1,40"."""
    return ",".join(map(str, values))


_KINDS = {"c": "class", "f": "function", "m": "method"}
_KIND_NAMES = {"c": "code", "t": "test", "a": "aux", "d": "doc", "g": "config"}
_KIND_CODES = {v: k for k, v in _KIND_NAMES.items()}
_KIND_LETTERS = {v: k for k, v in _KINDS.items()}

# What the commit entry holds, in this order; RepoIndex's other fields are derived.
_STORED = (
    "commit",
    "paths",
    "blobs",
    "lens",
    "packed_symbols",
    "packed_imports",
    "packed_importers",
    "packed_postings",
    "packed_defs",
    "packed_kinds",
    "module_names",
    "path_words",
)


@dataclass
class RepoIndex:
    """One commit's index, as loaded from the cache.

    Bulky parts stay packed in strings (postings as "file,tf,file,tf", symbol tables as
    tab-separated lines) and are unpacked on first use: a query touches a few hundred
    terms and a few dozen files out of thousands, and JSON-decoding one string is far
    cheaper than decoding the lists it stands for. This is what keeps a warm locate on
    a 1,500-file tree within a few tens of milliseconds.
    """

    commit: str
    paths: list[str]
    blobs: list[str]
    lens: list[int]
    packed_symbols: list[str]
    """per file: one "qualified name\tkind\tline\tend_line" line per symbol"""
    packed_imports: list[str]
    packed_importers: list[str]
    packed_postings: list[str]
    """per bucket (`bucket_of(term)`): `;term:file,tf,...` over the whole tree, file
    numbers as gaps"""
    packed_defs: dict[str, str]
    """lower-cased leaf name -> "Name|file,sym,file,sym;Other|file,sym" (exact spellings;
    an empty spelling is the key itself)"""
    packed_kinds: str
    """one letter per file (see `_KIND_CODES`)"""
    module_names: dict[str, int]
    """dotted module name -> file (see `module_map`)"""
    path_words: list[str]
    """per file: stemmed words of its folders, "|", words of its name (see `path_words`)"""
    stats: BuildStats | None = field(default=None, compare=False)
    _symbols: dict[int, list[list[Any]]] = field(default_factory=dict, repr=False)
    _rows: dict[int, list[str]] = field(default_factory=dict, repr=False)
    _postings: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"v": INDEX_VERSION, **{k: getattr(self, k) for k in _STORED}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RepoIndex:
        return cls(**{k: data[k] for k in _STORED})

    def symbols(self, f: int) -> list[list[Any]]:
        """[qualified name, kind, line, end_line] rows of file `f`, in file order."""
        rows = self._symbols.get(f)
        if rows is None:
            rows = [self._row(line) for line in self._split(f)]
            self._symbols[f] = rows
        return rows

    def symbol(self, f: int, s: int) -> list[Any]:
        """Row `s` of file `f`; parses that row only (names match in many files)."""
        rows = self._symbols.get(f)
        return rows[s] if rows is not None else self._row(self._split(f)[s])

    def _split(self, f: int) -> list[str]:
        split = self._rows.get(f)
        if split is None:
            packed = self.packed_symbols[f]
            split = self._rows[f] = packed.split("|") if packed else []
        return split

    @staticmethod
    def _row(line: str) -> list[Any]:
        name, kind, start, end = line.split(",")
        return [name, _KINDS.get(kind, kind), int(start), int(end)]

    def postings(self, term: str) -> list[int]:
        post = self._postings.get(term)
        if post is None:
            bucket = self.packed_postings[bucket_of(term)]
            post = unpack_ints(find_posting(bucket, term))
            for k in range(2, len(post), 2):  # file numbers are stored as gaps
                post[k] += post[k - 2]
            self._postings[term] = post
        return post

    def definitions(self, ident: str) -> dict[str, list[tuple[int, int]]]:
        """Exact spellings of leaf symbol names equal to `ident` ignoring case ->
        their definitions as (file, symbol index)."""
        packed = self.packed_defs.get(ident.lower())
        out: dict[str, list[tuple[int, int]]] = {}
        for group in packed.split(";") if packed else ():
            name, _, refs = group.partition("|")
            nums = unpack_ints(refs)
            out[name or ident.lower()] = list(zip(nums[::2], nums[1::2], strict=True))
        return out

    def imports(self, f: int) -> list[int]:
        return unpack_ints(self.packed_imports[f])

    def degree(self, f: int) -> int:
        """Import edges of `f`, counted without unpacking them."""
        a, b = self.packed_imports[f], self.packed_importers[f]
        return (a.count(",") + 1 if a else 0) + (b.count(",") + 1 if b else 0)

    def imported_by(self, f: int) -> list[int]:
        return unpack_ints(self.packed_importers[f])

    @cached_property
    def kinds(self) -> list[str]:
        """File kinds (`file_kind`), decided when the commit was indexed."""
        return [_KIND_NAMES.get(c, "skip") for c in self.packed_kinds]

    @cached_property
    def path_ids(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.paths)}

    @property
    def modules(self) -> dict[str, int]:
        """Dotted module name -> file, for Python files (see `module_map`)."""
        return self.module_names

    @cached_property
    def avg_len(self) -> float:
        return (sum(self.lens) / len(self.lens)) if self.lens else 1.0

    @cached_property
    def basenames(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(self.paths):
            out[p.rsplit("/", 1)[-1]].append(i)
        return out


def module_map(paths: list[str]) -> dict[str, int]:
    """Dotted module names of the Python files.

    A file's canonical name starts at its top-level package, the highest directory
    of an unbroken chain of `__init__.py` above it (`src/_pytest/config/__init__.py`
    is `_pytest.config`). The full path as dotted name is registered too, for trees
    that import through namespace packages or from the repository root.
    """
    py = [p for p in paths if p.endswith((".py", ".pyi", ".pyx"))]
    packages = {p.rsplit("/", 1)[0] for p in py if p.rsplit("/", 1)[-1] == "__init__.py"}
    out: dict[str, int] = {}
    ids = {p: i for i, p in enumerate(paths)}
    for p in py:
        parts = p.rsplit(".", 1)[0].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
            if not parts:
                continue
        dirs = p.split("/")[:-1]
        start = len(dirs)
        while start > 0 and "/".join(dirs[:start]) in packages:
            start -= 1
        canonical = ".".join(parts[start:])
        full = ".".join(parts)
        # .py wins over a .pyi/.pyx of the same module; canonical beats a full alias.
        for name in (canonical, full):
            if name and (name not in out or paths[out[name]].endswith((".pyi", ".pyx"))):
                out[name] = ids[p]
    return out


def _resolve_imports(
    paths: list[str], modules: dict[str, int], raw: list[list[list[Any]]]
) -> list[list[int]]:
    inverse: dict[int, str] = {}
    for name, i in modules.items():
        # The canonical (shorter, package-rooted) name is what relative imports count from.
        if i not in inverse or len(name) < len(inverse[i]):
            inverse[i] = name
    out: list[list[int]] = []
    for i, imports in enumerate(raw):
        found: set[int] = set()
        me = inverse.get(i, "")
        is_pkg = paths[i].endswith("/__init__.py")
        package = me.split(".") if is_pkg else me.split(".")[:-1]
        for module, level, names in imports:
            if level:
                base = package[: len(package) - (level - 1)] if level - 1 <= len(package) else []
                full = ".".join([*base, *([module] if module else [])])
            else:
                full = module
            hit = False
            for name in names:
                target = modules.get(f"{full}.{name}" if full else name)
                if target is not None:
                    found.add(target)
                    hit = True
            if full and (not hit or names):
                # `from pkg import name` depends on pkg/__init__ as well as on a
                # submodule `name`; `import a.b.c` on a/b/c.
                target = modules.get(full)
                while target is None and "." in full and not level:
                    full = full.rsplit(".", 1)[0]  # `import a.b.func`: the module is a.b
                    target = modules.get(full)
                if target is not None:
                    found.add(target)
        found.discard(i)
        out.append(sorted(found))
    return out


def _is_binary(data: bytes) -> bool:
    return b"\0" in data[:8192]


Progress = Callable[[int, int], None]
_progress: ContextVar[Progress | None] = ContextVar("index_progress", default=None)


@contextmanager
def reporting(progress: Progress) -> Iterator[None]:
    """While this is open, a cold build tells `progress(files parsed, files to parse)`
    how far it has got, a few times a second (a 4,000-file tree takes half a minute)."""
    token = _progress.set(progress)
    try:
        yield
    finally:
        _progress.reset(token)


def _reported(results: Iterator[Any], total: int) -> Iterator[Any]:
    report = _progress.get()
    if report is None or not total:
        yield from results
        return
    report(0, total)
    last = time.monotonic()
    for done, res in enumerate(results, 1):
        yield res
        if time.monotonic() - last >= 0.2 or done == total:
            report(done, total)
            last = time.monotonic()


def _analyze_one(item: tuple[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    # Imported here: the parsers (two dozen regexes, ast) are for building only.
    from agent_cli.search.symbols import analyze

    path, text = item
    return analyze(path, text, exact=file_kind(path) not in ("test", "aux"))


def _analyze_many(items: list[tuple[str, str]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    workers = min(os.cpu_count() or 1, 8)
    if len(items) < _PARALLEL_MIN_FILES or workers < 2:
        return list(_reported(map(_analyze_one, items), len(items)))
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    try:
        # fork, not spawn: spawn would re-import `python -m agent_cli`'s __main__ in each
        # worker, and the workers only run pure functions of their arguments.
        ctx = multiprocessing.get_context("fork")
    except ValueError:
        return list(_reported(map(_analyze_one, items), len(items)))
    # Largest first, so one huge file does not finish alone at the end.
    order = sorted(range(len(items)), key=lambda k: -len(items[k][1]))
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        done = list(_reported(pool.map(_analyze_one, [items[k] for k in order], chunksize=8),
                              len(items)))
    out: list[Any] = [None] * len(items)
    for k, res in zip(order, done, strict=True):
        out[k] = res
    return out


def _file_key(blob: str, path: str) -> str:
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    # A file a tree-sitter grammar parses is another entry than its regex parse: a
    # grammar installed (or removed) later re-parses those files, and only those.
    grammar = treesit.fingerprint(language(path), path)
    return f"file:{INDEX_VERSION}:{blob}:{ext}{'+ts' + grammar if grammar else ''}"


def detail_key(blob: str, path: str) -> str:
    return "detail:" + _file_key(blob, path).split(":", 1)[1]


def commit_key(commit: str) -> str:
    grammars = treesit.installed()
    parsers = "+ts=" + ",".join(f"{k}{v}" for k, v in sorted(grammars.items())) if grammars else ""
    return f"commit:{INDEX_VERSION}{parsers}:{commit}"


def load_index(repo: Path, cache: Any, commit: str) -> RepoIndex:
    """The index of `commit`, from the cache or built (incrementally) and cached."""
    data = cache.get(commit_key(commit))
    if _well_formed(data):
        index = RepoIndex.from_json(data)
        index.stats = BuildStats(True, 0, len(index.paths), **_totals(cache))
        return index

    entries = [
        e for e in gitrepo.ls_tree(repo, commit) if e.size <= MAX_BYTES and file_kind(e.path)
    ]
    cores: dict[str, dict[str, Any]] = {}
    missing: list[gitrepo.TreeEntry] = []
    for e in entries:
        core = cache.get(_file_key(e.blob, e.path))
        if core is None:
            missing.append(e)
        else:
            cores[e.path] = core
    contents = gitrepo.read_blobs(repo, sorted({e.blob for e in missing}))
    todo: list[tuple[gitrepo.TreeEntry, str]] = []
    for e in missing:
        data_bytes = contents.get(e.blob)
        if data_bytes is None or _is_binary(data_bytes):
            continue
        todo.append((e, data_bytes.decode("utf-8", errors="replace")))
    results = _analyze_many([(e.path, text) for e, text in todo])
    with cache.transact():
        for (e, _), (core, detail) in zip(todo, results, strict=True):
            cache.set(_file_key(e.blob, e.path), core)
            cache.set(detail_key(e.blob, e.path), detail)
            cores[e.path] = core

    index = _assemble(commit, [e for e in entries if e.path in cores], cores)
    with cache.transact():
        cache.set(commit_key(commit), index.to_json())
        totals = _totals(cache)
        totals["commits_built_total"] += 1
        totals["files_parsed_total"] += len(todo)
        cache.set(
            "stats",
            {
                "commits_built": totals["commits_built_total"],
                "files_parsed": totals["files_parsed_total"],
            },
        )
    index.stats = BuildStats(False, len(todo), len(index.paths) - len(todo), **totals)
    return index


def _well_formed(data: Any) -> bool:
    """A commit entry of this version with every field; anything else (an older
    layout, a half-written or foreign row) is rebuilt rather than trusted."""
    return (
        isinstance(data, dict)
        and data.get("v") == INDEX_VERSION
        and all(k in data for k in _STORED)
        and len(data["paths"]) == len(data["packed_symbols"]) == len(data["lens"])
        and len(data["paths"]) == len(data["packed_kinds"]) == len(data["path_words"])
        and len(data["paths"]) == len(data["packed_imports"]) == len(data["packed_importers"])
        and len(data["packed_postings"]) == POSTING_BUCKETS
    )


def _totals(cache: Any) -> dict[str, int]:
    stats = cache.get("stats") or {}
    return {
        "commits_built_total": int(stats.get("commits_built", 0)),
        "files_parsed_total": int(stats.get("files_parsed", 0)),
    }


def _assemble(
    commit: str, entries: list[gitrepo.TreeEntry], cores: dict[str, dict[str, Any]]
) -> RepoIndex:
    paths = [e.path for e in entries]
    postings: dict[str, list[int]] = defaultdict(list)
    defs: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    packed_symbols = []
    for i, p in enumerate(paths):
        core = cores[p]
        for term, tf in core["tf"].items():
            lst = postings[term]
            lst.append(i)
            lst.append(tf)
        # "," "|" and ";" separate the packed fields: no parser should put them in a
        # name, and if one does, the name loses them, not the index its shape.
        rows = [[_SEPARATORS.sub("_", row[0]), *row[1:]] for row in core["symbols"]]
        for s, (name, *_rest) in enumerate(rows):
            leaf = name[name.rfind(".") + 1 :]
            refs = defs[leaf.lower()][leaf]
            refs.append(i)
            refs.append(s)
        packed_symbols.append(
            "|".join(
                f"{name},{_KIND_LETTERS.get(kind, kind)},{start},{end}"
                for name, kind, start, end in rows
            )
        )
    modules = module_map(paths)
    imports = _resolve_imports(paths, modules, [cores[p]["imports"] for p in paths])
    importers: list[list[int]] = [[] for _ in paths]
    for i, deps in enumerate(imports):
        for j in deps:
            importers[j].append(i)
    return RepoIndex(
        commit=commit,
        paths=paths,
        blobs=[e.blob for e in entries],
        lens=[cores[p]["len"] for p in paths],
        packed_symbols=packed_symbols,
        packed_imports=[pack_ints(deps) for deps in imports],
        packed_importers=[pack_ints(deps) for deps in importers],
        packed_kinds="".join(_KIND_CODES.get(file_kind(p) or "", "s") for p in paths),
        module_names=modules,
        path_words=[path_words(p) for p in paths],
        packed_postings=_bucket_postings(postings),
        packed_defs={
            # The spelling is left out when it is the key itself (most Python names).
            low: ";".join(
                f"{'' if name == low else name}|{pack_ints(refs)}"
                for name, refs in spellings.items()
            )
            for low, spellings in defs.items()
        },
    )


def path_words(path: str) -> str:
    """The stemmed words of a path's folders and of its file name, "dir words|name
    words": what `linkcheck`, `mocked` or `typehints` in an issue can meet."""
    folder, _, name = path.rpartition("/")
    dirs = {stem(t) for d in folder.split("/") if d for t in ident_tokens(d)}
    names = {stem(t) for t in ident_tokens(name.rsplit(".", 1)[0])}
    return " ".join(sorted(dirs - names)) + "|" + " ".join(sorted(names))


def _bucket_postings(postings: dict[str, list[int]]) -> list[str]:
    buckets: list[list[str]] = [[] for _ in range(POSTING_BUCKETS)]
    for term, lst in postings.items():
        # Gaps between file numbers are short numbers: a third less to decompress.
        gaps = [lst[k] - lst[k - 2] if k >= 2 and k % 2 == 0 else lst[k] for k in range(len(lst))]
        buckets[bucket_of(term)].append(f";{term}:{pack_ints(gaps)}")
    return ["".join(b) for b in buckets]


def load_details(cache: Any, index: RepoIndex, files: list[int]) -> dict[int, Detail]:
    """Per-symbol postings of `files` (missing entries, e.g. evicted, are left out)."""
    out: dict[int, Detail] = {}
    for f in files:
        data = cache.get(detail_key(index.blobs[f], index.paths[f]))
        if data is not None:
            out[f] = Detail(data["lens"], data["post"])
    return out


@dataclass
class Detail:
    """Symbol-level postings of one file: which of its symbols use a term, how often."""

    lens: list[int]
    packed: dict[str, str]
    """term -> "symbol,tf,symbol,tf" within this file"""

    def postings(self, term: str) -> list[int]:
        return unpack_ints(self.packed.get(term, ""))
