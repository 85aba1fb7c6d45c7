"""One budget for all the runs of a batch (`agent batch --max-cost USD`).

Each run checks its own calls against its own budget (llm/service.py); a batch's
budget is shared by runs executing at the same time in other processes, so two of
them must not both spend the last dollar. The ledger is one JSON file,
`.agent/batches/<id>/budget.json`, changed only under an exclusive `flock` on its
lock file: `{run_id: {"spent": USD, "reserved": USD}}`. Before a model call a run
takes the lock, adds up what the other runs spent and hold reserved, its own
spending so far and the estimate of this call (the same conservative estimate as the
run's own budget); when that fits, it records the estimate as its reservation and
calls; otherwise it waits, as a run at its own budget does. A run holds at most one
reservation (its calls are sequential): the next check replaces it with what the
journal says was paid, and the batch settles it when the run's process ends. So the
ledger over-counts, never under-counts, and the budget holds across runs.

The ledger is a file, so the runs must share its filesystem: a local pool, or Ray on
this machine (`agent batch --ray` without an address).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent_cli.durable import fsio


class Ledger:
    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / "budget.json"
        self.lock_path = Path(directory) / "budget.lock"

    @contextmanager
    def _held(self) -> Iterator[dict[str, Any]]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held for a few milliseconds by anyone
            data = fsio.read_json(self.path) if self.path.exists() else {"runs": {}}
            yield data
        finally:
            os.close(fd)

    def reserve(self, run_id: str, spent: float, estimate: float, limit: float
                ) -> tuple[bool, float]:
        """Reserve `estimate` for `run_id`'s next call if the batch stays within
        `limit`. Returns (fits, what the batch has spent or reserved besides it)."""
        with self._held() as data:
            others = sum(e.get("spent", 0.0) + e.get("reserved", 0.0)
                         for rid, e in data["runs"].items() if rid != run_id)
            fits = others + spent + estimate <= limit
            data["runs"][run_id] = {"spent": spent, "reserved": estimate if fits else 0.0}
            fsio.write_json(self.path, data)
        return fits, others + spent

    def settle(self, run_id: str, spent: float) -> None:
        """The run's process ended: it holds no reservation, it spent `spent`."""
        with self._held() as data:
            data["runs"][run_id] = {"spent": spent, "reserved": 0.0}
            fsio.write_json(self.path, data)

    def total(self) -> float:
        if not self.path.exists():
            return 0.0
        runs = fsio.read_json(self.path)["runs"].values()
        return sum(e.get("spent", 0.0) + e.get("reserved", 0.0) for e in runs)
