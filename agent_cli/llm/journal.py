"""The call journal: `calls/NNNN.json`, one file per model call of a run.

Each file holds the step key, the call's index within the step, the model, the
request (there are no secrets in it: the key travels in a header, which is not
recorded), the response, usage, cost, latency and retries. It is both the audit of
what was paid and the memory that makes a re-executed step cheap: a call with the
same step key, index and request hash that was already answered is served from
here at zero cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_cli.durable import fsio


class Journal:
    def __init__(self, calls_dir: Path) -> None:
        self.dir = calls_dir
        self.records: list[dict[str, Any]] = []
        if calls_dir.is_dir():
            for path in sorted(calls_dir.glob("[0-9]*.json")):
                self.records.append(fsio.read_json(path))

    def find(self, step: str, call_index: int, request_hash: str) -> dict[str, Any] | None:
        for rec in self.records:
            if (rec.get("status") == "ok" and rec["step"] == step
                    and rec["call_index"] == call_index and rec["request_hash"] == request_hash):
                return rec
        return None

    def answered(self, step: str, call_index: int) -> dict[str, Any] | None:
        """The first answered original call at (step, index), whatever its request."""
        for rec in self.records:
            if (rec.get("status") == "ok" and rec["step"] == step
                    and rec["call_index"] == call_index and not rec.get("served_from")):
                return rec
        return None

    def spent(self) -> float:
        """Dollars actually paid in this run (served and failed calls cost nothing)."""
        return sum(rec.get("cost_usd") or 0.0 for rec in self.records)

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise fsio.as_storage_error(exc, self.dir) from exc
        number = max((r["number"] for r in self.records), default=0) + 1
        record = {"number": number, **record}
        fsio.write_json(self.dir / f"{number:04d}.json", record)
        self.records.append(record)
        return record
