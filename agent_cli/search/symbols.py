"""What one file defines and imports, and the token bag of each definition.

Python goes through `ast`: classes, functions and methods (nested classes too, as
`Outer.Inner.method`) with exact line spans, and every `import` anywhere in the file
(function-local imports are real dependencies too). Functions nested in functions
are not symbols of their own: a patch to one is a patch to its outer function, and
that is the name a reader looks for.

Other languages go through a tree-sitter grammar where one is installed (see
`treesit`). Without one, and for Python that does not parse (Python 2 files in old
trees), a line-regex fallback: definition keywords of the common languages, nesting
and span ends from indentation. It is approximate and says so only by being
regex-shaped.

Each symbol also gets the bag of tokens on the lines it owns (its body minus the
bodies of nested symbols), so the ranker can score symbols inside a top file without
re-reading it. Decorator lines belong to the symbol they decorate.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from typing import Any

from agent_cli.search.langs import language
from agent_cli.search.tokens import IDENT, ident_tokens

# symbol: [qualified name, kind, line, end_line]
SymbolRow = list[Any]


def analyze(path: str, text: str, exact: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """(core, detail) JSON entries for one file.

    `exact=False` skips `ast` for Python (and the grammars of other languages) and
    uses the regex fallback: the index does that for test files and examples, which
    are half of a typical tree and rarely the answer, to halve the cold build; and
    generated files skip it by themselves.

    core: `lang`, `symbols`, `imports` ([module, level, [names]] for Python), `tf`
    (term frequencies of the whole file) and `len` (token count). detail: `lens`
    (token count per symbol) and `post`, per-symbol postings of each term.
    """
    lines = lines_of(text)
    lang = language(path)
    symbols, starts, imports = _definitions(path, text, lines, lang, exact)
    owner = _owners(symbols, starts, len(lines))
    # Count raw identifiers per run of lines with one owner (Counter over findall runs
    # in C), then expand each distinct identifier into tokens once: identifiers repeat
    # a lot, so this is several times faster than tokenizing line by line.
    sym_tf: list[Counter[str]] = [Counter() for _ in symbols]
    module_tf: Counter[str] = Counter()
    run_start = 1
    for ln in range(2, len(lines) + 2):
        if ln <= len(lines) and owner[ln] == owner[run_start]:
            continue
        o = owner[run_start]
        target = sym_tf[o] if o >= 0 else module_tf
        chunk = "\n".join(lines[run_start - 1 : ln - 1])
        for ident, count in Counter(IDENT.findall(chunk)).items():
            for tok in ident_tokens(ident):
                target[tok] += count
        run_start = ln
    tf = module_tf.copy()
    for c in sym_tf:
        tf.update(c)
    core = {
        "lang": lang,
        "symbols": symbols,
        "imports": imports,
        "tf": dict(tf),
        "len": sum(tf.values()),
    }
    # Inverted per file (term -> "symbol,tf,...") so a query decodes only its own terms.
    post: dict[str, list[str]] = {}
    for s, counts in enumerate(sym_tf):
        for term, n in counts.items():
            post.setdefault(term, []).extend((str(s), str(n)))
    detail = {
        "lens": [sum(c.values()) for c in sym_tf],
        "post": {term: ",".join(v) for term, v in post.items()},
    }
    return core, detail


def definitions(path: str, text: str) -> list[SymbolRow]:
    """What `text` (the file `path`) defines: [qualified name, kind, line, end_line]
    rows in document order, parents before children, as the index has them."""
    return _definitions(path, text, lines_of(text), language(path), True)[0]


def _definitions(path: str, text: str, lines: list[str], lang: str, exact: bool
                 ) -> tuple[list[SymbolRow], list[int], list[list[Any]]]:
    """(symbols, the line each symbol's span starts at, imports)."""
    symbols: list[SymbolRow] = []
    starts: list[int] = []
    imports: list[list[Any]] = []
    parsed = False
    if lang == "python" and exact and not _looks_generated(text, lines):
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            tree = None
        if tree is not None:
            _py_symbols(tree.body, "", False, symbols, starts)
            imports = _py_imports(tree)
            parsed = True
    grammar = exact and lang not in ("python", "cython") and not _looks_generated(text, lines)
    if grammar:
        from agent_cli.search.treesit import symbols as grammar_symbols

        found = grammar_symbols(text, lang, path)
        if found is not None:
            (symbols, starts), parsed = found, True
    if not parsed:
        symbols, starts = _regex_symbols(lines, lang)
        if lang in ("python", "cython"):
            imports = _regex_imports(text)
    return symbols, starts, imports


def _owners(symbols: list[SymbolRow], starts: list[int], n_lines: int) -> list[int]:
    """The symbol each line belongs to (-1: module level), by index, for lines 1 to
    `n_lines`: the innermost whose span holds it. Spans come in document order with
    parents before children, so that is the last one holding the line."""
    owner = [-1] * (n_lines + 1)
    spans = [(starts[i], min(row[3], n_lines)) for i, row in enumerate(symbols)]
    if sum(max(end - start + 1, 0) for start, end in spans) <= 8 * n_lines:
        # Real code nests a few deep: each span overwrites its parent's claim, in C.
        for i, (start, end) in enumerate(spans):
            if start <= end:
                owner[start : end + 1] = [i] * (end - start + 1)
        return owner
    # Deep nesting (thousands of definitions, each holding the next) made that
    # O(lines x depth). Claimed from the last symbol back instead, each line once:
    # `skip` leads past the lines claimed already (by later, inner symbols), so a
    # parent jumps over its children's bodies instead of walking them.
    skip = list(range(n_lines + 2))  # ln: unclaimed; else lines ln..skip[ln]-1 are claimed
    for i in range(len(spans) - 1, -1, -1):
        ln, end = spans[i]
        seen: list[int] = []
        while ln <= end:
            if skip[ln] == ln:
                owner[ln] = i
                skip[ln] = ln + 1
            seen.append(ln)
            ln = skip[ln]
        for claimed in seen:  # lines from the span's start to ln are all claimed now
            skip[claimed] = ln
    return owner


# Line breaks that `str.splitlines` honours and `ast` and tree-sitter do not: a form
# feed between sections (GNU style) would shift every line number after it.
_OTHER_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_NEWLINE = re.compile(r"\r\n|\r|\n")


def lines_of(text: str) -> list[str]:
    """The lines of `text` as the parsers number them: LF, CRLF and CR end a line."""
    if not any(c in text for c in _OTHER_BREAKS):  # a memchr each: 7 ms for sympy
        return text.splitlines()
    lines = _NEWLINE.split(text)
    if lines and not lines[-1]:
        lines.pop()
    return lines


def _looks_generated(text: str, lines: list[str]) -> bool:
    """Machine-written code (rule tables, parser tables): long lines of deeply nested
    expressions that cost `ast` seconds per file and are never where a fix goes."""
    return len(text) > 100_000 and (
        len(text) / max(len(lines), 1) > 100 or max(map(len, lines)) > 2000
    )


def _py_symbols(
    body: list[ast.stmt],
    prefix: str,
    in_class: bool,
    out: list[SymbolRow],
    starts: list[int],
    scope: dict[str, str] | None = None,
) -> None:
    """Definitions of one scope, into `out`. A second name given to a class or
    function of the same scope (`Eq = Equality`; in a printer class,
    `_print_MatrixSymbol = _print_Symbol`) is a definition too, of the same kind,
    spanning its assignment: it is the name users and callers say."""
    scope = {} if scope is None else scope  # name -> kind, defined so far
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = prefix + node.name
            is_class = isinstance(node, ast.ClassDef)
            kind = "class" if is_class else ("method" if in_class else "function")
            end = node.end_lineno or node.lineno
            scope[node.name] = kind
            out.append([name, kind, node.lineno, end])
            starts.append(min([node.lineno, *(d.lineno for d in node.decorator_list)]))
            if is_class:
                _py_symbols(node.body, name + ".", True, out, starts)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Name):
            original = node.value.id
            for target in node.targets if original in scope else ():
                # `f = g` after `def f` is a rebinding, not a second name of `g`'s.
                if isinstance(target, ast.Name) and target.id not in scope:
                    scope[target.id] = scope[original]
                    end = node.end_lineno or node.lineno
                    out.append([prefix + target.id, scope[original], node.lineno, end])
                    starts.append(node.lineno)
        elif isinstance(node, (ast.If, ast.Try, ast.With, ast.AsyncWith, ast.For, ast.While)):
            # Conditional definitions (`if PY3: def f(): ...`, `try: ... except: ...`) are
            # still definitions of this scope.
            for field in ("body", "orelse", "finalbody"):
                _py_symbols(getattr(node, field, []), prefix, in_class, out, starts, scope)
            for handler in getattr(node, "handlers", []):
                _py_symbols(handler.body, prefix, in_class, out, starts, scope)
        elif hasattr(ast, "TryStar") and isinstance(node, ast.TryStar):
            _py_symbols(node.body, prefix, in_class, out, starts, scope)


def _py_imports(tree: ast.Module) -> list[list[Any]]:
    # Statements only: imports are statements, and skipping the expression nodes makes
    # this ~10x cheaper than ast.walk.
    seen: set[tuple[str, int, tuple[str, ...]]] = set()
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            for alias in node.names:
                seen.add((alias.name, 0, ()))
        elif isinstance(node, ast.ImportFrom):
            names = tuple(a.name for a in node.names if a.name != "*")
            seen.add((node.module or "", node.level, names))
        else:
            for attr in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, attr, None)
                if isinstance(children, list):
                    stack.extend(children)
    return [[m, lvl, list(names)] for m, lvl, names in sorted(seen)]


# The module starts with a word character: `(\.*)([\w.]*)` could split a run of dots
# every way, quadratic in its length. The names after `import` are read by hand (see
# `_regex_imports`).
_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+(\.*)(\w[\w.]*)?[ \t]+import[ \t]+", re.MULTILINE)
_IMPORT = re.compile(
    r"^[ \t]*import[ \t]+([\w.]+(?:[ \t]+as[ \t]+\w+)?(?:[ \t]*,[ \t]*[\w.]+(?:[ \t]+as[ \t]+\w+)?)*)",
    re.MULTILINE,
)


def _regex_imports(text: str) -> list[list[Any]]:
    seen: set[tuple[str, int, tuple[str, ...]]] = set()
    # The names: `(...)` up to the next `)` however many lines on, else the rest of the
    # line. As the regex `\([^)]*\)|[^\n]*` did, but that scanned to the end of the text
    # for every `(` left open (quadratic); the next `)` is looked up once per stretch.
    pos, close = 0, -1  # close: the last `)` found; len(text) when there is none left
    while (m := _FROM_IMPORT.search(text, pos)) is not None:
        start = m.end()
        paren = text.startswith("(", start)
        if paren and close < start:
            close = text.find(")", start)
            close = len(text) if close < 0 else close
        if paren and close < len(text):
            pos = close + 1
        else:
            pos = text.find("\n", start)
            pos = len(text) if pos < 0 else pos
        names = []
        for part in text[start:pos].strip("()").split(","):
            name = part.split("#", 1)[0].strip().split(" as ")[0].strip()
            if name.isidentifier():
                names.append(name)
        seen.add((m.group(2) or "", len(m.group(1)), tuple(names)))
    for m in _IMPORT.finditer(text):
        for part in m.group(1).split(","):
            seen.add((part.strip().split(" as ")[0].strip(), 0, ()))
    return [[m, lvl, list(names)] for m, lvl, names in sorted(seen)]


# Definition patterns of the fallback: (regex, kind). Group 1 is the name. Patterns
# are tried in order per line; the first match wins.
_COMMON = [
    (
        re.compile(r"^\s*(?:export\s+)?(?:default\s+)?(?:abstract\s+)?class\s+([A-Za-z_]\w*)"),
        "class",
    ),
]
_FALLBACK: dict[str, list[tuple[re.Pattern[str], str]]] = {
    "python": [
        (re.compile(r"^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)"), "function"),
        (re.compile(r"^\s*class\s+([A-Za-z_]\w*)"), "class"),
    ],
    "cython": [
        (re.compile(r"^\s*(?:async\s+)?c?p?def\s+(?:[\w\[\]\*\.]+\s+)*?([A-Za-z_]\w*)\s*\("), "function"),
        (re.compile(r"^\s*(?:cdef\s+)?class\s+([A-Za-z_]\w*)"), "class"),
    ],
    "javascript": [
        *_COMMON,
        (re.compile(r"^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*)"), "function"),
        (re.compile(r"^\s*(?:export\s+)?(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=\s*(?:async\s*)?(?:function\b|\([^)]*\)\s*=>|[A-Za-z_$][\w$]*\s*=>)"), "function"),
        (re.compile(r"^\s+(?:static\s+)?(?:async\s+)?(?:get\s+|set\s+)?([A-Za-z_$][\w$]*)\s*\([^)]*\)\s*\{"), "method"),
    ],
    "go": [
        (re.compile(r"^func\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)"), "function"),
        (re.compile(r"^type\s+([A-Za-z_]\w*)\s+(?:struct|interface)"), "class"),
    ],
    "rust": [
        (re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+([A-Za-z_]\w*)"), "function"),
        (re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:struct|enum|trait|union)\s+([A-Za-z_]\w*)"), "class"),
        (re.compile(r"^\s*impl(?:<[^>]*>)?\s+(?:[\w:<>]+\s+for\s+)?([A-Za-z_]\w*)"), "class"),
    ],
    "ruby": [
        (re.compile(r"^\s*def\s+(?:self\.)?([A-Za-z_]\w*[?!=]?)"), "function"),
        (re.compile(r"^\s*(?:class|module)\s+([A-Z]\w*)"), "class"),
    ],
    "c": [
        (re.compile(r"^(?:struct|union|enum)\s+([A-Za-z_]\w*)\s*\{"), "class"),
        (re.compile(r"^(?!(?:if|for|while|switch|return|else)\b)[A-Za-z_][\w\s\*]*?\b([A-Za-z_]\w*)\s*\([^;]*$"), "function"),
    ],
}  # fmt: skip
_FALLBACK["typescript"] = _FALLBACK["javascript"]
_FALLBACK["cpp"] = [
    (re.compile(r"^\s*(?:class|struct|namespace)\s+([A-Za-z_]\w*)"), "class"),
    *_FALLBACK["c"],
]
_GENERIC = [
    *_COMMON,
    (re.compile(r"^\s*(?:(?:public|private|protected|internal|static|final|override|open|suspend|inline)\s+)*(?:def|fun|func|function|fn|sub)\s+([A-Za-z_]\w*)"), "function"),
    (re.compile(r"^\s*(?:(?:public|private|protected|internal|static|final|abstract|sealed|data|open)\s+)*(?:class|interface|struct|enum|trait|object|module|record)\s+([A-Za-z_]\w*)"), "class"),
]  # fmt: skip


def _regex_symbols(lines: list[str], lang: str) -> tuple[list[SymbolRow], list[int]]:
    if lang == "text":
        return [], []
    patterns = _FALLBACK.get(lang, _GENERIC)
    found: list[tuple[int, int, str, str]] = []  # (line, indent, name, kind)
    for ln, line in enumerate(lines, start=1):
        stripped = line.lstrip()
        if not stripped or stripped[0] in "#/*":
            continue
        for pattern, kind in patterns:
            m = pattern.match(line)
            if m:
                found.append((ln, len(line) - len(stripped), m.group(1), kind))
                break
    # A definition ends before the next one indented no deeper. Found from the back with
    # a stack of the definitions that can still end one (indents strictly rising from the
    # top): one pass, where a scan forward from each definition was quadratic.
    ends = [len(lines)] * len(found)
    following: list[tuple[int, int]] = []  # (indent, line)
    for i in range(len(found) - 1, -1, -1):
        ln, indent = found[i][0], found[i][1]
        while following and following[-1][0] > indent:
            following.pop()
        if following:
            ends[i] = following[-1][1] - 1
        following.append((indent, ln))
    out: list[SymbolRow] = []
    trimmed: dict[int, int] = {}  # end -> that end without the blank lines before it
    stack: list[tuple[int, str, str]] = []  # (indent, qualified name, kind) of open scopes
    for i, (ln, indent, name, kind) in enumerate(found):
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1] if stack else None
        if parent and parent[2] in ("function", "method") and lang in ("python", "cython"):
            continue  # a nested def is part of its outer function, as with ast
        if kind == "function" and parent and parent[2] == "class":
            kind = "method"
        qual = f"{parent[1]}.{name}" if parent and parent[2] == "class" else name
        end = ends[i]
        if end in trimmed:  # nested definitions share an end: trim its blank lines once
            end = trimmed[end]
        else:
            last = end
            while end > ln and not lines[end - 1].strip():
                end -= 1
            trimmed[last] = end
        out.append([qual, kind, ln, end])
        stack.append((indent, qual, kind))
    return out, [row[2] for row in out]
