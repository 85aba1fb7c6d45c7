"""Where the benchmarks find their data, the fetched mirrors and their cache.

Each is a command-line option of the scripts, defaulting to an environment variable,
defaulting to a place next to the project checkout (its parent directory holds
`shared/` with the data set, `.mirror/` with fetched repositories, `.benchcache/`):

    AGENT_BENCH_DATA     <parent>/shared/bench/swebench_dev.jsonl
    AGENT_BENCH_MIRRORS  <parent>/.mirror    (a mirror per repository: <owner>+<name>/repo)
    AGENT_BENCH_CACHE    <parent>/.benchcache  (must be outside the checkout)
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
_PARENT = CHECKOUT.parent


def _from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else default


DATA = _from_env("AGENT_BENCH_DATA", _PARENT / "shared" / "bench" / "swebench_dev.jsonl")
MIRRORS = _from_env("AGENT_BENCH_MIRRORS", _PARENT / ".mirror")
CACHE = _from_env("AGENT_BENCH_CACHE", _PARENT / ".benchcache")


def check_cache(cache: Path) -> None:
    """Stop if `cache` is inside the project checkout (trees, venvs and runs would
    land in the project's working tree)."""
    if cache.resolve().is_relative_to(CHECKOUT):
        raise SystemExit(f"--cache must be outside the project checkout ({CHECKOUT}): {cache}")
