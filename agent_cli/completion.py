"""Shell completion of run ids and step names (`agent --install-completion`).

The shell runs `agent` on every Tab, so these read the run directory and nothing
else: no git, no pipeline, no SDK. A run id completes from its
start, newest first, with its status and issue as the description. (Typer offers only
the candidates that begin with what was typed, so a suffix is not completed; typed,
it still names the run.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from agent_cli.durable.runids import matching, sorted_ids

_SHOWN = 50


def _runs_dir(ctx: click.Context) -> Path | None:
    start = Path(ctx.params.get("repo") or ".").resolve()
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            runs = candidate / ".agent" / "runs"
            return runs if runs.is_dir() else None
    return None


def _ids(runs: Path) -> list[str]:
    return sorted_ids(p.name for p in runs.iterdir()
                      if not p.name.startswith(".") and (p / "run.json").is_file())


def _describe(run: Path) -> str:
    try:
        data: dict[str, Any] = json.loads((run / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    title = str((data.get("issue") or {}).get("title") or "")[:50]
    # An issue's title (a GitHub issue's is anyone's) must not break the shell's protocol.
    return "".join(c if c.isprintable() else " " for c in f"{data.get('status', '?')}: {title}")


def run_ids(ctx: click.Context, incomplete: str) -> list[tuple[str, str]]:
    runs = _runs_dir(ctx)
    if runs is None:
        return []
    found = [i for i in _ids(runs) if i.startswith(incomplete)]
    return [(i, _describe(runs / i)) for i in reversed(found[-_SHOWN:])]


def step_names(ctx: click.Context, incomplete: str) -> list[str]:
    """The step keys of the RUN already on the command line (else the latest run)."""
    runs = _runs_dir(ctx)
    if runs is None:
        return []
    ids = _ids(runs)
    # While completing, click leaves the positional RUN among the unparsed args.
    ref = ctx.params.get("run") or next((a for a in ctx.args if not a.startswith("-")), None)
    chosen = matching(ref, ids) if ref else ids[-1:]
    if len(chosen) != 1:
        return []
    steps = runs / chosen[0] / "steps"
    keys = []
    files = sorted((p for p in steps.glob("[0-9]*-*.json") if p.name.split("-", 1)[0].isdigit()),
                   key=lambda p: int(p.name.split("-", 1)[0])) if steps.is_dir() else []
    for path in files:
        key = path.stem.split("-", 1)[1]
        if key.startswith(incomplete) and key not in keys:
            keys.append(key)
    return keys
