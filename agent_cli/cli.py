"""The `agent` command line: parse, call one function, render.

No logic lives here. Library code raises `AgentError`s; `main()` is the one place
that turns them into a message on stderr and an exit code (DESIGN.md: 0 done,
1 failed, 2 usage, 75 waiting, 130 interrupted). Heavy modules (the anthropic SDK,
GitPython, the search index) are imported inside the commands that need them, so
`agent --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from agent_cli.errors import AgentError

app = typer.Typer(
    name="agent",
    help="A durable coding agent: issue in, tested branch out. Every stage is a checkpoint.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

RepoOpt = Annotated[
    Path, typer.Option("--repo", help="The git checkout to work on.", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.command()
def locate(
    issue: Annotated[Path, typer.Argument(help="The issue, a Markdown file.")],
    repo: RepoOpt = Path("."),
    top: Annotated[int, typer.Option(help="How many files to show.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Rank the files and symbols of a repository for an issue; no model call."""
    from agent_cli.search import locate_issue
    from agent_cli.views.locate import render_locate

    result = locate_issue(issue, repo=repo, top=top)
    if as_json:
        _print_json(result.model_dump(mode="json"))
    else:
        render_locate(result)


def main() -> None:
    # Typer handles its own usage errors (exit 2); ours arrive here as AgentErrors.
    try:
        app()
    except AgentError as exc:
        _print_error(exc.message, exc.hint)
        sys.exit(exc.exit_code)


def _print_error(message: str, hint: str | None) -> None:
    sys.stderr.write(f"error: {message}\n")
    if hint:
        sys.stderr.write(f"{hint}\n")
