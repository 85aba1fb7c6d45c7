"""Definitions in languages other than Python through tree-sitter, where it is
installed: the `treesitter` extra (`pip install -e '.[treesitter]'`: the bindings and the
grammars of JavaScript, TypeScript, Go, Rust, C, C++, Java and Ruby; any one grammar
package is enough for its language).

A grammar finds what the line regexes of `symbols` miss or get wrong: methods of
object literals (`const Search = {query: (q) => ...}` gives `Search.query`), Go
methods under their receiver (`Server.Serve`), Rust methods under their `impl`,
C++ `Foo::bar` definitions outside the class, and exact span ends instead of
indentation guesses. Without it, those languages go through the regexes, as before.

The same shape as the Python symbols: [qualified name, kind, line, end_line] in
document order, parents before children, and a function nested in a function is
part of its outer function, not a symbol of its own.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import zlib
from collections.abc import Callable
from functools import cache
from typing import Any

# grammar -> (module, function returning the language). Languages are those of
# `langs.language`; `tsx` is TypeScript's grammar for .tsx files (JSX inside).
GRAMMARS = {
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "java": ("tree_sitter_java", "language"),
    "ruby": ("tree_sitter_ruby", "language"),
}

_FUNCTION_VALUES = {
    "arrow_function",
    "function_expression",
    "function",
    "generator_function",
}
# What a symbol row may be called: identifiers joined by dots. The index packs rows
# as "name,kind,line,end|..."; C++ `operator|`, `Map<A, B>::insert` or a JS string
# key would break that, so names are reduced to this or dropped.
_NAME = re.compile(r"[A-Za-z_$~][\w$~]*(?:\.[A-Za-z_$~][\w$~]*)*")
_ANGLE = re.compile(r"[<>]|[^<>]+")


@cache
def installed() -> dict[str, str]:
    """Language -> a fingerprint of its grammar and of the bindings (their files'
    modification times), for the languages whose grammar is importable, looked up
    without importing anything. Index keys carry the fingerprint, so a grammar
    installed, removed, upgraded or repaired later re-parses that language."""
    try:
        core = importlib.util.find_spec("tree_sitter")
        if core is None:
            return {}
        out: dict[str, str] = {}
        for lang, (mod, _) in GRAMMARS.items():
            spec = importlib.util.find_spec(mod)
            if spec is not None:
                stamp = f"{_mtime(core.origin)}:{_mtime(spec.origin)}"
                out[lang] = f"{zlib.crc32(stamp.encode()):08x}"  # hashlib costs 4 ms to import
        return out
    except (ImportError, ValueError):
        return {}


def _mtime(path: str | None) -> int:
    try:
        return os.stat(path).st_mtime_ns if path else 0
    except OSError:
        return 0


def fingerprint(lang: str, path: str) -> str:
    """The grammar that parses `path` ("" for none): part of its cache key."""
    return installed().get(_grammar(lang, path), "")


def _grammar(lang: str, path: str) -> str:
    return "tsx" if lang == "typescript" and path.lower().endswith(".tsx") else lang


@cache
def _parser(grammar: str) -> Any:
    try:
        from tree_sitter import Language, Parser

        mod, func = GRAMMARS[grammar]
        return Parser(Language(getattr(importlib.import_module(mod), func)()))
    except Exception:  # noqa: BLE001 - a broken or mismatched install: use the regexes
        return None


def symbols(text: str, lang: str, path: str = "") -> tuple[list[list[Any]], list[int]] | None:
    """(rows, first line of each) for `text`, or None when `lang` has no grammar here
    (or it fails to load, or to parse)."""
    grammar = _grammar(lang, path)
    parser = _parser(grammar) if grammar in installed() else None
    if parser is None:
        return None
    data = text.encode("utf-8", "surrogatepass")
    try:
        tree = parser.parse(data)
        if grammar == "c" and tree.root_node.has_error and "cpp" in installed():
            # A .h file is C or C++; the C grammar reads `class Widget {` as a function.
            cpp = _parser("cpp")
            alt = cpp.parse(data) if cpp is not None else None
            if alt is not None and not alt.root_node.has_error:
                tree, grammar = alt, "cpp"
    except Exception:  # noqa: BLE001 - never let one file stop an index build
        return None
    rows: list[list[Any]] = []
    _walk(tree.root_node, _CLASSIFY[grammar], rows)
    return rows, [row[2] for row in rows]


# A classifier says what a node defines: ("class", name), ("function", name),
# ("scope", name) (qualifies what is inside it, no row of its own: a Rust `impl`),
# ("skip", "") (nothing inside is a symbol of the enclosing scope: a Java anonymous
# class), or None (not a definition: look inside). A name that is not an identifier
# (an anonymous class, `operator|`) gives no row, and what is inside still counts.
Classifier = Callable[[Any], "tuple[str, str] | None"]


# How many classes (and scopes) deep a definition is still a symbol of its own; deeper,
# it is part of the enclosing one, as a function nested in a function is. Real code
# rarely passes 5 or 6 (modules of a Ruby gem around a class, Java inner classes; in
# the C and JavaScript of the benchmark trees nothing is nested more than once), so 16
# changes no real file. Unbounded, `module A` 32,000 times over gave 32,000 rows each
# naming every enclosing class (`A.A.A...`): quadratic in time and memory.
MAX_DEPTH = 16


def _walk(root: Any, classify: Classifier, out: list[list[Any]]) -> None:
    # An explicit stack: generated code nests deeper than Python's recursion limit.
    # (node, prefix, how many classes and scopes the prefix names)
    stack: list[tuple[Any, str, int]] = [(c, "", 0) for c in reversed(root.named_children)]
    while stack:
        node, prefix, depth = stack.pop()
        what = classify(node)
        if what is not None and what[0] == "skip":
            continue
        name = _clean(what[1]) if what is not None else ""
        if what is None or not name:
            stack.extend((c, prefix, depth) for c in reversed(node.named_children))
            continue
        if depth >= MAX_DEPTH:
            continue  # part of the enclosing definition: no row, no descent
        role = what[0]
        qual = prefix + name
        start, end = node.start_point[0] + 1, node.end_point[0] + 1
        if role == "function":
            # A function nested in a function is part of it: no descent.
            out.append([qual, "method" if prefix or "." in name else "function", start, end])
            continue
        if role == "class":
            out.append([qual, "class", start, end])
        stack.extend((c, qual + ".", depth + 1) for c in reversed(node.named_children))


def _clean(name: str) -> str:
    """`ns::Map<A, B>::insert` -> `ns.Map.insert`; "" when no identifier is left."""
    if "<" in name:
        name = _strip_template_args(name)
    name = name.replace("::", ".").strip()
    return name if _NAME.fullmatch(name) else ""


def _strip_template_args(name: str) -> str:
    """`name` without its `<...>` groups, nested or not; a `<` or `>` left unpaired
    (`operator<`) stays. One pass: each `>` closes the latest open `<` and drops what
    was kept since it. (Deleting innermost `<[^<>]*>` until none was left gives the
    same, one nesting level per pass: quadratic in the depth.)"""
    kept: list[str] = []
    opened: list[int] = []  # where in `kept` each open `<` is
    for part in _ANGLE.findall(name):
        if part == "<":
            opened.append(len(kept))
            kept.append(part)
        elif part == ">" and opened:
            del kept[opened.pop() :]
        else:
            kept.append(part)
    return "".join(kept)


def _text(node: Any) -> str:
    return node.text.decode("utf-8", "replace") if node is not None else ""


def _field(node: Any, name: str) -> str:
    return _text(node.child_by_field_name(name))


def _javascript(node: Any) -> tuple[str, str] | None:
    t = node.type
    if t in ("class_declaration", "abstract_class_declaration", "interface_declaration"):
        return "class", _field(node, "name")
    if t in ("function_declaration", "generator_function_declaration"):
        return "function", _field(node, "name")
    if t in ("method_definition", "method_signature", "abstract_method_signature"):
        return "function", _field(node, "name")
    if t == "variable_declarator":
        value = node.child_by_field_name("value")
        if value is None:
            return None
        if value.type in _FUNCTION_VALUES:
            return "function", _field(node, "name")
        if value.type == "object" and any(_is_js_function(c) for c in value.named_children):
            return "class", _field(node, "name")  # an object of functions is a namespace
        return None
    if t == "pair" and _is_js_function(node):
        return "function", _field(node, "key")
    return None  # an anonymous function (`$(function () {...})`): its insides count


def _is_js_function(node: Any) -> bool:
    if node.type == "method_definition":
        return True
    value = node.child_by_field_name("value") if node.type == "pair" else None
    return value is not None and value.type in _FUNCTION_VALUES


def _go(node: Any) -> tuple[str, str] | None:
    t = node.type
    if t == "function_declaration":
        return "function", _field(node, "name")
    if t == "method_declaration":
        receiver = node.child_by_field_name("receiver")  # `(s *Server)`
        owner = _text(next(_descendants(receiver, "type_identifier"), None))
        name = _field(node, "name")
        return "function", f"{owner}.{name}" if owner and name else name
    if t == "type_spec":
        kind = node.child_by_field_name("type")
        if kind is not None and kind.type in ("struct_type", "interface_type"):
            return "class", _field(node, "name")
    return None


def _rust(node: Any) -> tuple[str, str] | None:
    t = node.type
    if t in ("function_item", "function_signature_item"):
        return "function", _field(node, "name")
    if t in ("struct_item", "enum_item", "union_item", "trait_item"):
        return "class", _field(node, "name")
    if t == "impl_item":
        target = node.child_by_field_name("type")
        while target is not None and target.type == "generic_type":
            target = target.child_by_field_name("type")
        return "scope", _text(target)
    return None


def _c_family(node: Any) -> tuple[str, str] | None:
    t = node.type
    if t == "function_definition":
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.child_by_field_name("declarator") is not None:
            declarator = declarator.child_by_field_name("declarator")
        return "function", _text(declarator)  # `ns::W::resize`: _clean dots it
    if t in ("struct_specifier", "union_specifier", "enum_specifier", "class_specifier"):
        if node.child_by_field_name("body") is None:
            return None  # `struct foo *p;`: a use, not a definition
        return "class", _field(node, "name")
    return None


def _java(node: Any) -> tuple[str, str] | None:
    t = node.type
    if t in (
        "class_declaration",
        "interface_declaration",
        "enum_declaration",
        "record_declaration",
        "annotation_type_declaration",
    ):
        return "class", _field(node, "name")
    if t in ("method_declaration", "constructor_declaration"):
        return "function", _field(node, "name")
    if t == "object_creation_expression":
        return "skip", ""  # `new Runnable() { public void run() ... }` in a field
    return None


def _ruby(node: Any) -> tuple[str, str] | None:
    t = node.type
    if t in ("class", "module"):
        return "class", _field(node, "name")
    if t in ("method", "singleton_method"):
        return "function", _field(node, "name")
    return None


def _descendants(node: Any, kind: str) -> Any:
    stack = [node] if node is not None else []
    while stack:
        n = stack.pop()
        if n.type == kind:
            yield n
        stack.extend(reversed(n.named_children))


_CLASSIFY: dict[str, Classifier] = {
    "javascript": _javascript,
    "typescript": _javascript,
    "tsx": _javascript,
    "go": _go,
    "rust": _rust,
    "c": _c_family,
    "cpp": _c_family,
    "java": _java,
    "ruby": _ruby,
}
