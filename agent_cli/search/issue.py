"""Reading an issue for what it points at, before looking at any repository.

An issue names code in a few recognisable ways, and each becomes a typed mention:

- traceback frames, in the three shapes people paste: CPython (`File "x.py", line
  N, in f`), IPython (`/site-packages/pkg/mod.py in f(args)` then `---> N`), and
  pytest (`pkg/mod.py:42: in f`);
- paths (`sympy/core/mod.py`, `core/mod.py`, `quaternion.py`, also inside URLs and
  diff headers);
- dotted names (`astropy.io.fits.Card`, `u.quantity_input`, `from a.b import C`);
- identifiers, weighted by how code-like their context is: inside a code block or
  backticks, or shaped like code (snake_case, camelCase, `name(`, `.attr`) counts
  more than a plain prose word that happens to name a symbol.

The words of the issue also become the BM25 query, the title counted twice: titles
are short and say what the issue is about. Mentions in the title weigh more too.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field

from agent_cli.search.tokens import IDENT, STOPWORDS, ident_tokens

_EXTS = (
    "py|pyi|pyx|pxd|js|jsx|mjs|ts|tsx|go|rs|rb|java|kt|scala|c|h|cc|cpp|cxx|hpp|cs|swift|php|"
    "lua|sh|r|jl|sql|html|css|md|rst|txt|cfg|toml|ini|yaml|yml|json"
)
# A path starts where a run of path characters starts: starting inside a run of `+`,
# `@` or `~` (a pasted `1+1+...`) retried the whole run from every position.
_PATH = re.compile(rf"(?<![\w/.\\@+~-])((?:[~\w.@+-]*[/\\])*[\w.@+-]*\w\.(?:{_EXTS}))(?![\w/])")
MAX_FRAMES = 500
_CPY_FRAME = re.compile(r'File "([^"\n]+)", line (\d+)(?:, in ([\w<>.]+))?')
_CODE_EXTS = (
    "py|pyx|pyi|js|jsx|mjs|ts|tsx|go|rs|rb|java|kt|scala|c|h|cc|cpp|cxx|hpp|cs|swift|php|lua"
)
_IPY_FRAME = re.compile(rf"^[ \t]*(\S+\.(?:{_CODE_EXTS})) in ([\w<>.]+)\(", re.MULTILINE)
_IPY_ARROW = re.compile(r"^[ \t]*-*>\s*(\d+)", re.MULTILINE)
_PYTEST_FRAME = re.compile(
    rf"^[ \t]*(\S+\.(?:{_CODE_EXTS})):(\d+):(?: in ([\w<>.]+))?", re.MULTILINE
)
# IPython 8: `File ~/env/site-packages/pkg/mod.py:313, in Class.method(self, x)`.
_IPY8_FRAME = re.compile(rf"^[ \t]*File (\S+\.(?:{_CODE_EXTS})):(\d+), in ([\w<>.]+)", re.MULTILINE)
_DOTTED = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)")
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
# Fenced blocks in a language other than Python (reST, shell, YAML, HTML...): their
# words are markup and options, `:width:` is not a reference to `TableCell.width`.
FOREIGN_W = 0.7
_FOREIGN_FENCE = re.compile(
    r"```[ \t]*(?!(?:python[23]?|py[23]?|pycon|ipython3?|pytb|diff|patch)?[ \t]*\n)[\w+-]+[^\n]*(?:\n|\Z).*?"
    r"(?:```|\Z)",
    re.DOTALL | re.IGNORECASE,
)
_ITEM = r"`?[A-Za-z_][A-Za-z0-9_]*`?"
# "a, b, and c", "a, b or c", "a and b": a list of bare words (no dotted names, no calls).
# At most 12 items: a pasted array of 30,000 names without an "and" must not make the
# search quadratic.
_LIST = re.compile(
    rf"(?<![\w.`/-]){_ITEM}(?:[ \t]*,[ \t]*{_ITEM}){{0,11}},?[ \t]+(?:and|or)[ \t]+{_ITEM}(?![\w.(/-])"
)
_INLINE = re.compile(r"`([^`\n]+)`")
_PROMPT_LINE = re.compile(r"^[ \t]*(?:>>>|\.\.\.|In \[\d+\]:)[^\n]*$", re.MULTILINE)
# Shell lines in code blocks (`$ git clone ...`, `pip install -e .`): their words are
# commands and paths, not identifiers of the project.
_SHELL_LINE = re.compile(
    r"^[ \t]*(?:\$ ?|> )?(?:git|pip3?|cd|make|conda|mkdir|echo|cat|ls|rm|cp|mv|source|export|"
    r"python3?(?= +-m| +[\w/.-]+\.py| +setup)|tox|sudo|apt(?:-get)?|brew|curl|wget|npm|docker|"
    r"poetry|uv|virtualenv)\b[^\n]*$",
    re.MULTILINE,
)
_ABOUT_TESTS = re.compile(
    r"\b(?:add(?:ing)?|missing|fix(?:ing)?|flaky|failing|broken|improve|more|rewrite|new)"
    r"\s+(?:unit\s+|regression\s+)?tests?\b|\btests?\s+(?:is\s+|are\s+)?(?:flaky|broken|missing)"
    r"|\btest\s+(?:suite|coverage|file)s?\b|\btest_\w+",
    re.IGNORECASE,
)
_ABOUT_DOCS = re.compile(
    r"\btypos?\b|\bdocumentation\b|\bdocs\b|\breadme\b|\bchangelog\b", re.IGNORECASE
)
_IMPORT_LINE = re.compile(
    r"^[ \t]*(?:>>>[ \t]*)?(?:from[ \t]+[\w.]+[ \t]+import|import)[ \t][^\n]*$", re.MULTILINE
)
_FROM_IMPORT = re.compile(r"\bfrom[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n]+)")
_ALIAS = re.compile(r"\bimport[ \t]+([\w.]+)[ \t]+as[ \t]+(\w+)")
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_DETAILS = re.compile(r"<details>(.*?)(?:</details>|\Z)", re.DOTALL | re.IGNORECASE)
_ENV_WORDS = re.compile(
    r"versions?\b|environment|show_versions|installed|pip (?:list|freeze)|conda (?:list|info)"
    r"|system info|platform",
    re.IGNORECASE,
)
_INSTALLED = re.compile(r"INSTALLED VERSIONS.*?(?=</details>|```|\Z)", re.DOTALL)
_HEADING = re.compile(r"^(?:#{1,6}[ \t]+(.*)|\*\*([^*\n]+)\*\*:?)[ \t]*$", re.MULTILINE)
_ENV_HEADING = re.compile(
    r"^\W*(?:os|operating system|python version|\w+ version|versions?|environment(?: info)?"
    r"|platform|system(?: info)?|installed versions|screenshots?|extra tools)\W*$",
    re.IGNORECASE,
)
_ENV_LINE = re.compile(
    r"^[ \t]*[-*]?[ \t]*(?:os|python(?: version)?|[\w-]+ version|sphinx extensions?|extra tools"
    r"|platform|operating system)[ \t]*:[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
_NOT_DOTTED_TAIL = re.compile(rf"\.(?:{_EXTS}|com|org|io|net|html?|e|g)$", re.IGNORECASE)


@dataclass
class Frame:
    path: str
    line: int | None
    func: str | None
    index: int
    """Position among all frames of the issue, first = outermost."""


@dataclass
class Mentions:
    title: str
    frames: list[Frame] = field(default_factory=list)
    paths: dict[str, float] = field(default_factory=dict)
    dotted: dict[str, float] = field(default_factory=dict)
    dotted_prose: set[str] = field(default_factory=set)
    title_idents: set[str] = field(default_factory=set)
    imported: dict[str, float] = field(default_factory=dict)
    """`from a.b import C` in the issue's code, as "a.b.C": public API the reporter used"""
    """dotted names written in prose ("the bug is in astropy.io.fits.card"), not code"""
    idents: dict[str, float] = field(default_factory=dict)
    query: dict[str, float] = field(default_factory=dict)
    listed: list[tuple[list[str], float]] = field(default_factory=list)
    """bare words listed together in prose ("str, pretty, and latex"), with the weight of
    where the list is: the ranker sees whether they name sibling modules"""
    about_tests: bool = False
    about_docs: bool = False


def _bump(d: dict[str, float], key: str, w: float) -> None:
    if w > d.get(key, 0.0):
        d[key] = w


class Spans:
    """Half-open character ranges, for "is this position inside one?" in log time: an
    issue can have thousands of inline code spans and tens of thousands of words."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for a, b in sorted(spans):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            elif a < b:
                merged.append([a, b])
        self._starts = [a for a, _ in merged]
        self._ends = [b for _, b in merged]

    def __contains__(self, pos: int) -> bool:
        i = bisect_right(self._starts, pos) - 1
        return i >= 0 and pos < self._ends[i]


def code_regions(text: str) -> list[tuple[int, int]]:
    spans = [m.span() for m in _FENCE.finditer(text)]
    spans += [m.span(1) for m in _INLINE.finditer(text)]
    spans += [m.span() for m in _PROMPT_LINE.finditer(text)]
    return sorted(spans)


def clean_issue(text: str) -> str:
    """The issue without what every issue of a project says: template comments and
    headings, environment and version dumps (`xr.show_versions()`, "### OS"), which
    otherwise make `print_versions.py` and `Sphinx` the answer to everything."""
    text = text.replace("\r\n", "\n").strip()
    text = _COMMENT.sub("", text)

    def details(m: re.Match[str]) -> str:
        body = m.group(1)
        return "" if _ENV_WORDS.search(body[:300]) or "INSTALLED VERSIONS" in body else body

    text = _DETAILS.sub(details, text)
    text = _INSTALLED.sub("", text)
    first, _, rest = text.partition("\n")
    out: list[str] = []
    skipping = False
    pos = 0
    fences = Spans([fm.span() for fm in _FENCE.finditer(rest)])
    for hm in _HEADING.finditer(rest):
        if not skipping:
            out.append(rest[pos : hm.start()])
        pos = hm.end()
        if hm.start() in fences:
            # A comment line of pasted code goes too (a pasted conf.py is mostly
            # sphinx-quickstart's boilerplate comments), but it is no heading: a
            # `# Python version` comment must not drop the code after it.
            continue
        heading = hm.group(1) or hm.group(2) or ""
        skipping = bool(_ENV_HEADING.match(heading.strip()))
    if not skipping:
        out.append(rest[pos:])
    rest = _ENV_LINE.sub("", "".join(out)).replace("_No response_", "")
    return first.lstrip("# ").strip() + "\n" + rest


def parse_issue(text: str, extra_terms: list[str] | tuple[str, ...] = ()) -> Mentions:
    text = clean_issue(text)
    title = text.split("\n", 1)[0]
    m = Mentions(title=title)
    _frames(text, m)

    # Extra terms (from the analysis stage) are code-like by construction: treat them
    # as an inline-code appendix, weighted like the title.
    appendix = "\n".join(f"`{t}`" for t in extra_terms if t.strip())
    body = text + ("\n\n" + appendix if appendix else "")
    title_end = len(title)
    extra_start = len(text)
    regions = Spans(code_regions(body))
    foreign = Spans([fm.span() for fm in _FOREIGN_FENCE.finditer(body)])
    shell = Spans([sm.span() for sm in _SHELL_LINE.finditer(body)])

    def weight_at(pos: int) -> float:
        return 1.6 if pos < title_end or pos >= extra_start else 1.0

    def in_code(pos: int) -> bool:
        return pos in regions

    for pm in _PATH.finditer(body):
        raw = pm.group(1)
        if "/" in raw or "\\" in raw or in_code(pm.start()) or raw.count(".") == 1:
            # A path inside a URL may well be another project's file.
            in_url = raw.startswith("//") or body[max(0, pm.start() - 8) : pm.start()].endswith(":")
            if "/_modules/" in raw and raw.endswith(".html"):
                # Sphinx's page of a module's source: `.../_modules/astropy/io/fits/header.html`.
                raw = raw.split("/_modules/", 1)[1][: -len(".html")] + ".py"
            _bump(m.paths, raw, weight_at(pm.start()) * (0.7 if in_url else 1.0))

    # Dotted names own their parts: the ranker decides which prefix is a module of the
    # repository and which parts are symbols, so the parts are not identifiers here
    # (a conf.py listing `sphinx.ext.ifconfig` does not name a function `ifconfig`).
    # An import in the reporter's snippet says which public module they used, not
    # where the bug is: half weight. `import xarray as xr` makes `xr.where` mean
    # `xarray.where`.
    imports = Spans([im.span() for im in _IMPORT_LINE.finditer(body)])
    aliases = {al.group(2): al.group(1) for al in _ALIAS.finditer(body)}
    for fm in _FROM_IMPORT.finditer(body):
        w = weight_at(fm.start()) * (1.0 if in_code(fm.start()) else 0.8)
        for part in fm.group(2).strip("()").split(","):
            name = part.strip().split(" as ")[0].strip()
            if name.isidentifier():
                _bump(m.imported, f"{fm.group(1)}.{name}", w)
    dotted_spans: list[tuple[int, int]] = []
    for dm in _DOTTED.finditer(body):
        name = dm.group(1)
        if (
            name.endswith(".html")
            and name.count(".") >= 2
            and body[dm.start() - 1 : dm.start()] == "/"
        ):
            # An API page of Sphinx docs: `.../api/astropy.io.ascii.write.html`.
            name = name[: -len(".html")]
        elif _NOT_DOTTED_TAIL.search(name) or body[dm.end() : dm.end() + 1] == "/":
            continue
        dotted_spans.append(dm.span(1))
        pos = dm.start()
        w = 0.2 if pos in shell else (1.0 if in_code(pos) else 0.8)
        if pos in imports:
            w *= 0.5
        head, _, tail = name.partition(".")
        if head in aliases:
            name = f"{aliases[head]}.{tail}"
        _bump(m.dotted, name, weight_at(pos) * w)
        if not in_code(pos):
            m.dotted_prose.add(name)

    dotted = Spans(dotted_spans)
    for im in IDENT.finditer(body):
        ident = im.group(0)
        if len(ident) < 3 or ident.lower() in STOPWORDS or ident.isupper() and len(ident) < 4:
            continue
        pos = im.start()
        if pos in dotted or body[pos - 3 : pos] == "```":
            continue  # part of a dotted name, or a fence's language tag
        before = body[pos - 1] if pos else ""
        after = body[im.end() : im.end() + 1]
        if pos in shell:
            w = 0.2
        elif pos in foreign:
            w = FOREIGN_W
        elif in_code(pos):
            w = 1.0
        elif "_" in ident.strip("_") or _is_camel(ident) or after == "(" or before == ".":
            w = 0.8
        else:
            w = 0.3
        _bump(m.idents, ident, w * weight_at(pos))
        if pos < title_end:
            m.title_idents.add(ident)

    fenced = Spans([fm.span() for fm in _FENCE.finditer(body)])
    for lm in _LIST.finditer(body):
        if lm.start() in fenced:
            continue
        words = [w.strip("`") for w in re.findall(_ITEM, lm.group(0))]
        items = [w for w in words if w not in ("and", "or")]
        m.listed.append((items, 0.8 * weight_at(lm.start())))

    counts: Counter[str] = Counter()
    for im in IDENT.finditer(body):
        toks = ident_tokens(im.group(0))
        w = 2 if weight_at(im.start()) > 1 else 1
        for t in toks:
            counts[t] += w
    # Saturate: an issue that pastes a 200-line log should not be a query about "line".
    m.query = {t: 1.0 + math.log(c) for t, c in counts.items()}

    m.about_tests = bool(_ABOUT_TESTS.search(title)) or any(
        _looks_like_test_path(p) for p in m.paths if title and p in title
    )
    m.about_docs = bool(_ABOUT_DOCS.search(title))
    return m


def _is_camel(ident: str) -> bool:
    core = ident.strip("_")
    return any(c.isupper() for c in core[1:]) and any(c.islower() for c in core)


def _looks_like_test_path(path: str) -> bool:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return name.startswith("test_") or "/tests/" in f"/{path}" or name == "conftest.py"


def _frames(text: str, m: Mentions) -> None:
    found: list[tuple[int, str, int | None, str | None]] = []
    for fm in _CPY_FRAME.finditer(text):
        found.append((fm.start(), fm.group(1), int(fm.group(2)), fm.group(3)))
    for fm in _IPY_FRAME.finditer(text):
        arrow = _IPY_ARROW.search(text, fm.end(), fm.end() + 2000)
        line = int(arrow.group(1)) if arrow else None
        found.append((fm.start(), fm.group(1), line, fm.group(2)))
    for fm in _PYTEST_FRAME.finditer(text):
        found.append((fm.start(), fm.group(1), int(fm.group(2)), fm.group(3)))
    for fm in _IPY8_FRAME.finditer(text):
        found.append((fm.start(), fm.group(1), int(fm.group(2)), fm.group(3).rsplit(".", 1)[-1]))
    found.sort()
    # A recursion repeats its frames a thousand times, and a pasted log can hold many
    # tracebacks: each distinct frame counts once, where it last appears (the innermost
    # is what matters), and only the last MAX_FRAMES of them.
    last: dict[tuple[str, int | None, str | None], int] = {}
    for pos, p, ln, fn in found:
        last.pop((p, ln, fn), None)
        last[(p, ln, fn)] = pos
    kept = list(last)[-MAX_FRAMES:]
    m.frames = [Frame(p, ln, fn, i) for i, (p, ln, fn) in enumerate(kept)]
