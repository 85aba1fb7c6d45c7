"""`agent locate` as a table: rank, path, score, why, and where to look inside.

rich is imported inside the function: importing this module (the CLI does it for
every `locate`) costs nothing when `--json` is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent_cli.search.models import LocateResult

_MAX_REASONS = 3
_MAX_SYMBOLS = 3


def render_locate(result: LocateResult) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if not result.files:
        console.print("No indexed file matches this issue.")
        return
    table = Table(
        title=f"Where the issue lives (commit {result.commit[:12]}, {result.seconds:.2f}s)",
        title_justify="left",
    )
    table.add_column("#", justify="right", style="dim")
    table.add_column("path", style="bold", overflow="fold")
    table.add_column("score", justify="right")
    table.add_column("why", overflow="fold")
    table.add_column("symbols", overflow="fold")
    for rank, f in enumerate(result.files, start=1):
        reasons = f.reasons[:_MAX_REASONS]
        more = len(f.reasons) - len(reasons)
        why = "\n".join(reasons) + (f"\n(+{more} more)" if more > 0 else "")
        symbols = "\n".join(f"{s.name} L{s.line}-{s.end_line}" for s in f.symbols[:_MAX_SYMBOLS])
        # Text, not markup: paths, issue words and commit subjects say `[/x]` too.
        table.add_row(str(rank), Text(f.path), f"{f.score:.2f}", Text(why), Text(symbols))
    console.print(table)
    if result.symbols:
        console.print("Top symbols:", style="bold")
        for s in result.symbols[:5]:
            console.print(
                f"  {s.path}:{s.line}-{s.end_line}  {s.name} ({s.kind})",
                markup=False,
                highlight=False,
            )
