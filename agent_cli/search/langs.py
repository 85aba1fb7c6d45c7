"""Which language a file is in, from its name: the one fact about a file that both
the indexer (which parser to use) and the ranker (which language the tree is mostly
written in) need, kept apart so the ranker does not import the parsers."""

from __future__ import annotations

_LANGS = {
    "py": "python", "pyi": "python", "pyx": "cython", "pxd": "cython",
    "js": "javascript", "jsx": "javascript", "mjs": "javascript", "cjs": "javascript",
    "ts": "typescript", "tsx": "typescript", "go": "go", "rs": "rust", "rb": "ruby",
    "java": "java", "kt": "kotlin", "scala": "scala", "c": "c", "h": "c", "cc": "cpp",
    "cpp": "cpp", "cxx": "cpp", "hpp": "cpp", "hh": "cpp", "cs": "csharp", "swift": "swift",
    "php": "php", "lua": "lua", "sh": "shell", "bash": "shell", "r": "r", "jl": "julia",
    "m": "objc", "mm": "objc", "sql": "sql", "pl": "perl", "ex": "elixir", "exs": "elixir",
}  # fmt: skip


def language(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _LANGS.get(ext, "text")
