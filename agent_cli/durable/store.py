"""The run directory: `.agent/runs/<id>/` with run.json, steps/, calls/, events.jsonl.

`RunStore` finds and creates runs; `Run` is one run's directory. Nothing here knows
what a step computes: records are plain dicts written through `fsio`, and the engine
(`engine.py`) decides what goes in them.

One process executes a run at a time. It holds an exclusive `flock` on `lock` for the
whole execution and writes who it is into the file, so a second executor can be told
who holds it. The kernel drops the lock when the holder dies, however it dies, so a
run whose run.json still says `running` while the lock is free was interrupted.

A run directory appears whole or not at all: it is built under a hidden name
(`.<id>.staged`, its creator holding the flock of its `lock` file) and renamed into
place. Whatever a killed process leaves (a staged directory nobody holds, the
`.NAME.XXXX.tmp` of a write it did not finish in a run nobody executes) is removed
by `sweep`, which the first listing of each command runs; a run directory that has
no readable run.json is reported by the listings as damaged, never executed.

`.agent/reserve` is disk space held back (see `keep_reserve`): on a full disk the
engine gives it back to record why the run stopped.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent_cli.durable import fsio
from agent_cli.durable.errors import CorruptRecord, RunLocked, RunNotFound, UsageError
from agent_cli.durable.runids import matching, new_run_id, sorted_ids

ACTIVE = "running"
FINAL_STATUSES = ("succeeded", "failed", "rejected")


_STATES = {"succeeded": "has succeeded", "failed": "has failed", "rejected": "was rejected",
           "interrupted": "was interrupted", "created": "has not started"}


def state(status: str) -> str:
    """A status in a sentence: "run X has succeeded", "run X is waiting"."""
    return _STATES.get(status, f"is {status}")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Journaled:
    """A record with an append-only `events.jsonl` and an executor lock: a run, a batch."""

    events_path: Path
    lock_path: Path

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        ev = {"schema_version": fsio.SCHEMA_VERSION, "ts": now_iso(), "event": kind, **fields}
        fsio.append_line(self.events_path, ev)
        return ev

    def events(self) -> list[dict[str, Any]]:
        return fsio.read_lines(self.events_path)

    def is_locked(self) -> bool:
        """True while another process holds the executor lock; changes nothing."""
        return is_locked(self.lock_path)


class Run(Journaled):
    """One run's directory. Reading is free; writing is for the lock holder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.id = path.name
        self.steps_dir = path / "steps"
        self.calls_dir = path / "calls"
        self.events_path = path / "events.jsonl"
        self.run_json = path / "run.json"
        self.lock_path = path / "lock"
        self._staging: int | None = None  # the creator's hold on a staged directory

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
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        try:
            dest_dir.mkdir(exist_ok=True)
            os.replace(src, dest_dir / f"{stamp}-{filename}")
        except OSError as exc:
            raise fsio.as_storage_error(exc, dest_dir) from exc
        fsio.fsync_dir(self.steps_dir)

    # lock -----------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's executor lock, or raise `RunLocked` naming the holder."""
        with hold_lock(self.lock_path, f"run {self.id}",
                       "wait for it to finish, or stop it; then: agent resume " + self.id):
            yield

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
    try:
        fd = _open_nofollow(path, os.O_RDWR | os.O_CREAT)
    except OSError as exc:
        raise fsio.as_storage_error(exc, path) from exc
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


def _release_staging(run: Run) -> None:
    if run._staging is not None:
        os.close(run._staging)
        run._staging = None


@contextmanager
def _holding(lock: Path) -> Iterator[bool]:
    """Hold the flock of `lock` for a moment if nobody else does; yields whether we
    do (a missing lock file: no)."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _abandoned(staged: Path) -> bool:
    """A staged directory whose creator is gone: its lock is free, or it has none a
    minute after it was made (the creator dies between mkdir and taking the lock)."""
    if (staged / "lock").exists():
        with _holding(staged / "lock") as free:
            return free
    return time.time() - staged.stat().st_mtime > 60


def _remove_tmp_files(run_dir: Path) -> None:
    """The temporary files of writes nobody will finish: only while holding the run's
    lock, so no executor is between writing one and renaming it."""
    if not any(run_dir.glob(f"*/.*{fsio.TMP_SUFFIX}")) and \
            not any(run_dir.glob(f".*{fsio.TMP_SUFFIX}")) and \
            not any(run_dir.glob(f"steps/superseded/.*{fsio.TMP_SUFFIX}")):
        return
    with _holding(run_dir / "lock") as ours:
        if not ours:
            return
        for pattern in (f".*{fsio.TMP_SUFFIX}", f"*/.*{fsio.TMP_SUFFIX}",
                        f"steps/superseded/.*{fsio.TMP_SUFFIX}"):
            for tmp in run_dir.glob(pattern):
                tmp.unlink(missing_ok=True)


RESERVE_BYTES = 2 << 20
"""Room for a failed step's record and a rewrite of run.json, which holds the issue
text (up to about 1 MB)."""


def keep_reserve(agent_dir: Path) -> None:
    """Hold `RESERVE_BYTES` of disk in `.agent/reserve`, allocated for real, so that a
    full disk still leaves room to record why a run stopped (see `release_reserve`).
    Best effort: on a disk already full there is none to hold."""
    path = Path(agent_dir) / "reserve"
    size = RESERVE_BYTES
    try:
        if path.is_file() and path.stat().st_size >= size:
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                os.pwrite(fd, b"\0" * size, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        with _quiet():
            path.unlink(missing_ok=True)  # half a reserve would only take space


def release_reserve(agent_dir: Path) -> bool:
    """Give the reserve back to a full disk; whether there was one."""
    path = Path(agent_dir) / "reserve"
    try:
        path.unlink()
    except OSError:
        return False
    return True


@contextmanager
def _quiet() -> Iterator[None]:
    try:
        yield
    except OSError:
        pass


def _seq_of_filename(path: Path) -> tuple[int, str]:
    head = path.name.split("-", 1)[0]
    return (int(head) if head.isdigit() else 1 << 30, path.name)


class RunStore:
    """All runs under `<agent_dir>/runs/`."""

    def __init__(self, agent_dir: Path) -> None:
        self.agent_dir = Path(agent_dir)
        self.runs_dir = self.agent_dir / "runs"
        self.warnings: list[str] = []
        """One line per damaged run a listing skipped (the CLI prints them)."""
        self._swept = False

    def create(self, data: dict[str, Any], run_id: str | None = None, *,
               staged: bool = False) -> Run:
        """A new run directory, built under a hidden name and renamed into place, so
        that a crash never leaves a run without its run.json. `staged`: left hidden
        (and held) until `publish`, for a run made of more than one write (a fork)."""
        run_id = run_id or new_run_id()
        while (self.runs_dir / run_id).exists():
            run_id = new_run_id()
        path = self.runs_dir / f".{run_id}.staged"
        try:
            (path / "steps").mkdir(parents=True)
            (path / "calls").mkdir()
        except OSError as exc:
            raise fsio.as_storage_error(exc, path) from exc
        run = Run(path)
        run.id = run_id
        # Held until published: `sweep` removes a staged directory nobody holds.
        run._staging = _open_nofollow(path / "lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(run._staging, fcntl.LOCK_EX)
        try:
            run.save({"id": run_id, "status": "created", "created_at": now_iso(), **data})
            keep_reserve(self.agent_dir)
        except BaseException:
            _release_staging(run)
            shutil.rmtree(path, ignore_errors=True)
            raise
        return run if staged else self.publish(run)

    def publish(self, run: Run) -> Run:
        final = self.runs_dir / run.id
        try:
            os.rename(run.path, final)
        except OSError as exc:
            raise fsio.as_storage_error(exc, final) from exc
        finally:
            _release_staging(run)
        fsio.fsync_dir(self.runs_dir)
        return Run(final)

    def ids(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        self.sweep()
        return sorted_ids(p.name for p in self.runs_dir.iterdir()
                          if not p.name.startswith(".") and (p / "run.json").exists())

    def sweep(self) -> None:
        """Remove what killed processes left: staged run directories whose creator is
        gone, and unfinished temporary files in runs that no process executes. Once
        per store; a directory that cannot be written (a read-only disk) is left as is.
        A run directory without run.json is not ours to guess about: listings warn."""
        if self._swept or not self.runs_dir.is_dir():
            return
        self._swept = True
        for path in self.runs_dir.iterdir():
            try:
                if path.name.startswith(".") and path.name.endswith(".staged"):
                    if _abandoned(path):
                        shutil.rmtree(path)
                elif path.is_dir() and not path.name.startswith("."):
                    if not (path / "run.json").exists():
                        self.warnings.append(
                            f"skipped {path}: it has no run.json (a run that never started, "
                            f"or damaged); remove it with: rm -rf {path}")
                    else:
                        _remove_tmp_files(path)
            except OSError:
                continue

    def damaged(self, run_id: str, exc: CorruptRecord) -> None:
        """Note a run a listing skips because one of its files cannot be read."""
        self.warnings.append(f"skipped run {run_id}: {exc.message}")

    def get(self, run_id: str) -> Run:
        path = self.runs_dir / run_id
        if not (path / "run.json").exists():
            raise RunNotFound(
                f"no run {run_id!r} in {self.runs_dir}", hint="list runs with: agent runs"
            )
        return Run(path)

    def resolve(self, ref: str | None, *, waiting: bool = False) -> Run:
        """A run from an id, a unique prefix or suffix of one, or nothing (the latest run; with
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
                try:
                    if run.load().get("status") == "waiting":
                        return run
                except CorruptRecord:
                    continue  # a damaged neighbour does not hide the run asked for
            raise UsageError(
                "no run is waiting for an answer", hint="see each run's status with: agent runs"
            )
        matches = matching(ref, ids)
        if not matches:
            raise RunNotFound(f"no run matches {ref!r}", hint="list runs with: agent runs")
        if len(matches) > 1:
            shown = "\n".join(f"  {m}" for m in reversed(matches[-10:]))
            more = f"\n  ... and {len(matches) - 10} more" if len(matches) > 10 else ""
            raise UsageError(
                f"{ref!r} matches {len(matches)} runs:\n{shown}{more}",
                hint="give more characters of the run id, from its start or its end",
            )
        return Run(self.runs_dir / matches[0])
