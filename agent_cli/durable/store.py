"""The run directory: `.agent/runs/<id>/` with run.json, steps/, calls/, events.jsonl.

`RunStore` finds and creates runs; `Run` is one run's directory. Nothing here knows
what a step computes: records are plain dicts written through `fsio`, and the engine
(`engine.py`) decides what goes in them.

One process executes a run at a time. It holds an exclusive `flock` on `lock` for the
whole execution and writes who it is into the file, so a second executor can be told
who holds it. The kernel drops the lock when the holder dies, however it dies, so a
run whose run.json still says `running` while the lock is free was interrupted.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

from agent_cli.durable import fsio
from agent_cli.durable.errors import CorruptRecord, RunLocked, RunNotFound, UsageError

ACTIVE = "running"
FINAL_STATUSES = ("succeeded", "failed", "rejected")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_run_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}"


class Run:
    """One run's directory. Reading is free; writing is for the lock holder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.id = path.name
        self.steps_dir = path / "steps"
        self.calls_dir = path / "calls"
        self.events_path = path / "events.jsonl"
        self.run_json = path / "run.json"
        self.lock_path = path / "lock"

    def __repr__(self) -> str:
        return f"Run({self.id})"

    # run.json -------------------------------------------------------------
    def load(self) -> dict[str, Any]:
        if not self.run_json.exists():
            raise CorruptRecord(f"{self.run_json} is missing: {self.path} is not a complete run")
        return fsio.read_json(self.run_json)

    def save(self, data: dict[str, Any]) -> None:
        data["updated_at"] = now_iso()
        fsio.write_json(self.run_json, data)

    def update(self, **fields: Any) -> dict[str, Any]:
        data = self.load()
        data.update(fields)
        self.save(data)
        return data

    # steps ----------------------------------------------------------------
    def record_files(self) -> list[Path]:
        if not self.steps_dir.is_dir():
            return []
        files = [p for p in self.steps_dir.iterdir() if p.suffix == ".json" and p.is_file()]
        return sorted(files, key=_seq_of_filename)

    def records(self) -> list[dict[str, Any]]:
        """Every current step record, in execution order; a bad file is an error."""
        out = []
        for path in self.record_files():
            try:
                rec = fsio.read_json(path)
            except FileNotFoundError:
                continue  # moved aside by the executor between listing and reading
            rec["_file"] = path.name
            out.append(rec)
        return out

    def record_path(self, seq: int, key: str) -> Path:
        return self.steps_dir / f"{seq:02d}-{key}.json"

    def write_record(self, record: dict[str, Any]) -> Path:
        path = self.record_path(record["seq"], record["key"])
        fsio.write_json(path, {k: v for k, v in record.items() if not k.startswith("_")})
        return path

    def supersede(self, filename: str) -> None:
        """Move a record that no longer describes this run aside, keeping its history."""
        src = self.steps_dir / filename
        if not src.exists():
            return
        dest_dir = self.steps_dir / "superseded"
        dest_dir.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        os.replace(src, dest_dir / f"{stamp}-{filename}")
        fsio.fsync_dir(self.steps_dir)

    # events ---------------------------------------------------------------
    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        ev = {"schema_version": fsio.SCHEMA_VERSION, "ts": now_iso(), "event": kind, **fields}
        fsio.append_line(self.events_path, ev)
        return ev

    def events(self) -> list[dict[str, Any]]:
        return fsio.read_lines(self.events_path)

    # lock -----------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's executor lock, or raise `RunLocked` naming the holder."""
        with hold_lock(self.lock_path, f"run {self.id}",
                       "wait for it to finish, or stop it; then: agent resume " + self.id):
            yield

    def is_locked(self) -> bool:
        """True while another process holds the executor lock; changes nothing."""
        return is_locked(self.lock_path)

    def status(self, data: dict[str, Any] | None = None) -> str:
        """The run's status as users should see it: `running` with a free lock is
        `interrupted` (the executor died)."""
        data = data if data is not None else self.load()
        status = data.get("status", "unknown")
        if status == ACTIVE and not self.is_locked():
            return "interrupted"
        return status


@contextmanager
def hold_lock(path: Path, what: str, hint: str) -> Iterator[None]:
    """Hold an exclusive executor lock on `path` (a run's, a batch's), or raise
    `RunLocked` naming `what` and the holder. The kernel drops it when we die."""
    # O_NOFOLLOW: a planted symlink must not make us truncate a file elsewhere.
    fd = _open_nofollow(path, os.O_RDWR | os.O_CREAT)
    try:
        if not _try_flock(fd):
            holder = _read_holder(path)
            raise RunLocked(f"{what} is being executed by another process ({holder})",
                            hint=hint) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_line().encode(), 0)
        yield
    finally:
        # Closing the descriptor releases the flock.
        os.close(fd)


def is_locked(path: Path) -> bool:
    """True while another process holds the lock on `path`; changes nothing."""
    if not path.exists():
        return False
    try:
        fd = _open_nofollow(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _open_nofollow(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        if path.is_symlink():
            raise CorruptRecord(f"{path} is a symlink; refusing to follow it",
                                hint=f"remove it with: rm {path}") from exc
        raise


def _try_flock(fd: int) -> bool:
    # A reader checking `is_locked` holds a shared lock for microseconds; retry
    # briefly so that a concurrent `agent runs` is not mistaken for an executor.
    for attempt in range(10):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            time.sleep(0.02 * (attempt + 1) / 5)
    return False


def _holder_line() -> str:
    cmd = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
    return f"pid {os.getpid()} on {socket.gethostname()} since {now_iso()}: {cmd}"


def _read_holder(path: Path) -> str:
    for _ in range(5):
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        if text:
            return text
        time.sleep(0.01)  # the holder is between truncate and write
    return "holder unknown"


def _seq_of_filename(path: Path) -> tuple[int, str]:
    head = path.name.split("-", 1)[0]
    return (int(head) if head.isdigit() else 1 << 30, path.name)


class RunStore:
    """All runs under `<agent_dir>/runs/`."""

    def __init__(self, agent_dir: Path) -> None:
        self.agent_dir = Path(agent_dir)
        self.runs_dir = self.agent_dir / "runs"

    def create(self, data: dict[str, Any], run_id: str | None = None, *,
               staged: bool = False) -> Run:
        """A new run directory. `staged`: built under a hidden name, to be made
        visible all at once with `publish`."""
        run_id = run_id or new_run_id()
        while (self.runs_dir / run_id).exists():
            run_id = new_run_id()
        path = self.runs_dir / (f".{run_id}.staged" if staged else run_id)
        (path / "steps").mkdir(parents=True)
        (path / "calls").mkdir()
        run = Run(path)
        run.id = run_id
        stamp = now_iso()
        run.save({"id": run_id, "status": "created", "created_at": stamp, **data})
        return run

    def publish(self, run: Run) -> Run:
        final = self.runs_dir / run.id
        os.rename(run.path, final)
        fsio.fsync_dir(self.runs_dir)
        return Run(final)

    def ids(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        return sorted(p.name for p in self.runs_dir.iterdir()
                      if not p.name.startswith(".") and (p / "run.json").exists())

    def get(self, run_id: str) -> Run:
        path = self.runs_dir / run_id
        if not (path / "run.json").exists():
            raise RunNotFound(
                f"no run {run_id!r} in {self.runs_dir}", hint="list runs with: agent runs"
            )
        return Run(path)

    def resolve(self, ref: str | None, *, waiting: bool = False) -> Run:
        """A run from an id, a unique prefix, or nothing (the latest run; with
        `waiting`, the latest run waiting for an answer)."""
        ids = self.ids()
        if not ids:
            raise RunNotFound(
                f"no runs yet in {self.runs_dir}", hint="start one with: agent solve ISSUE.md"
            )
        if ref is None:
            if not waiting:
                return Run(self.runs_dir / ids[-1])
            for run_id in reversed(ids):
                run = Run(self.runs_dir / run_id)
                if run.load().get("status") == "waiting":
                    return run
            raise UsageError(
                "no run is waiting for an answer", hint="see each run's status with: agent runs"
            )
        if ref in ids:
            return Run(self.runs_dir / ref)
        matches = [i for i in ids if i.startswith(ref)]
        if not matches:
            raise RunNotFound(f"no run matches {ref!r}", hint="list runs with: agent runs")
        if len(matches) > 1:
            shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
            raise UsageError(
                f"{ref!r} matches {len(matches)} runs: {shown}",
                hint="give more characters of the run id",
            )
        return Run(self.runs_dir / matches[0])
