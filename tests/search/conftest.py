"""A small real git repository with known answers, built once per test."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

FILES = {
    "pkg/__init__.py": """
        from pkg.client import Client
        from pkg.parser import parse_header
        """,
    "pkg/parser.py": '''
        """Header parsing."""


        def parse_header(line):
            """Split one header line into name and value."""
            name, _, value = line.partition(":")
            return name.strip(), value.strip()


        class HeaderParser:
            def __init__(self, strict=False):
                self.strict = strict

            def split_fields(self, raw):
                fields = [f for f in raw.split(";")]
                return [f.strip() for f in fields if f]

            def merge_continuations(self, lines):
                out = []
                for line in lines:
                    if line.startswith(" ") and out:
                        out[-1] += line.strip()
                    else:
                        out.append(line)
                return out
        ''',
    "pkg/client.py": """
        from pkg.parser import HeaderParser, parse_header
        from pkg import storage


        class Client:
            def __init__(self, base_url):
                self.base_url = base_url
                self.parser = HeaderParser()

            def send(self, request):
                headers = [parse_header(h) for h in request.headers]
                return storage.Store().flush(headers)

            def retry_budget(self, attempts):
                return max(0, 3 - attempts)
        """,
    "pkg/storage.py": """
        class Store:
            def __init__(self):
                self.rows = []

            def flush(self, rows):
                self.rows.extend(rows)
                total = len(self.rows)
                return total / len(rows)
        """,
    "pkg/util/__init__.py": "",
    "pkg/util/strings.py": """
        def normalize_whitespace(text):
            return " ".join(text.split())


        def collapse_blank_lines(text):
            return "\\n".join(line for line in text.splitlines() if line.strip())
        """,
    "tests/test_parser.py": """
        from pkg.parser import HeaderParser, parse_header


        def test_parse_header_empty():
            assert parse_header("") == ("", "")


        def test_split_fields():
            assert HeaderParser().split_fields("a; b") == ["a", "b"]
        """,
    "README.md": "# pkg\n\nA tiny HTTP header toolkit: parse headers, send requests, store rows.\n",
}


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=Test",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def symbols(path: str, text: str) -> list[list]:
    """The symbol rows the index keeps for one file (`text` dedented)."""
    from agent_cli.search.symbols import analyze

    core, _ = analyze(path, textwrap.dedent(text).lstrip("\n"))
    return core["symbols"]


def write(repo: Path, path: str, text: str) -> None:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(textwrap.dedent(text).lstrip("\n"))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for path, text in FILES.items():
        write(root, path, text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root
