"""The batch on disk: `.agent/batches/<id>.json` and `.agent/batches/<id>/`.

The record lists the batch's runs (item id, run id, repository) and how they are
executed; it is written once when the batch is made and again only to add what a
resumer must know. What each run did is read from the run's own directory, the one
source of truth, so the record never disagrees with `agent runs`. The directory
holds the batch's timeline (`events.jsonl`), its executor lock, the shared budget's
ledger and one log per run process. Files go through `durable.fsio` (atomic JSON,
appended events) and the lock is the runs' lock (`durable.store.hold_lock`): a
second `agent batch --resume` is refused as a second `agent resume` is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent_cli.durable import fsio
from agent_cli.durable.runids import new_run_id
from agent_cli.durable.store import Journaled, Run, hold_lock, now_iso
from agent_cli.errors import RunNotFound, UsageError

FINAL = ("succeeded", "failed", "rejected")


class Batch(Journaled):
    def __init__(self, agent_dir: Path, batch_id: str) -> None:
        self.agent_dir = agent_dir
        self.id = batch_id
        self.json_path = agent_dir / "batches" / f"{batch_id}.json"
        self.dir = agent_dir / "batches" / batch_id
        self.events_path = self.dir / "events.jsonl"
        self.lock_path = self.dir / "lock"
        self.logs = self.dir / "logs"

    @classmethod
    def create(cls, agent_dir: Path, data: dict[str, Any]) -> Batch:
        batch_id = new_run_id()
        while (agent_dir / "batches" / f"{batch_id}.json").exists():
            batch_id = new_run_id()
        batch = cls(agent_dir, batch_id)
        batch.logs.mkdir(parents=True)
        batch.save({"id": batch_id, "created_at": now_iso(), **data})
        return batch

    def load(self) -> dict[str, Any]:
        return fsio.read_json(self.json_path)

    def save(self, data: dict[str, Any]) -> None:
        data["updated_at"] = now_iso()
        fsio.write_json(self.json_path, data)

    @contextmanager
    def lock(self) -> Iterator[None]:
        with hold_lock(self.lock_path, f"batch {self.id}",
                       f"wait for it to finish, or stop it; then: agent batch --resume {self.id}"):
            yield

    def run(self, entry: dict[str, Any]) -> Run:
        return Run(Path(entry["agent_dir"]) / "runs" / entry["run_id"])


def find(agent_dir: Path, ref: str | None) -> Batch:
    """A batch from its id, a unique prefix, or nothing (the latest)."""
    folder = agent_dir / "batches"
    ids = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    if not ids:
        raise RunNotFound(f"no batches yet in {folder}",
                          hint="start one with: agent batch ISSUES...")
    if ref is None:
        return Batch(agent_dir, ids[-1])
    matches = [i for i in ids if i == ref] or [i for i in ids if i.startswith(ref)]
    if not matches:
        raise RunNotFound(f"no batch matches {ref!r} in {folder}",
                          hint="the batch ids are the names of the files there")
    if len(matches) > 1:
        raise UsageError(f"{ref!r} matches {len(matches)} batches: {', '.join(matches[:5])}",
                         hint="give more characters of the batch id")
    return Batch(agent_dir, matches[0])
