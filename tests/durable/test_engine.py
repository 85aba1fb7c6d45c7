"""The durable engine, exercised through real processes (tests/durable/toyflow.py)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


class Toy:
    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / ".agent"
        self.counts = tmp_path / "counts.txt"
        self.marker = tmp_path / "marker"
        self.env = {**os.environ, "TOY_COUNTS": str(self.counts), "TOY_MARKER": str(self.marker),
                    "PYTHONPATH": str(REPO)}

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "tests.durable.toyflow", str(self.root), *args]

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.cmd(*args), env={**self.env, **env}, cwd=REPO,
                              capture_output=True, text=True, timeout=60)

    def spawn(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.cmd(*args), env={**self.env, **env}, cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def executed(self) -> list[str]:
        return self.counts.read_text().split() if self.counts.exists() else []

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def records(self, run_id: str) -> dict[str, dict]:
        steps = self.run_dir(run_id) / "steps"
        return {json.loads(p.read_text())["key"]: json.loads(p.read_text())
                for p in steps.glob("*.json")}

    def run_json(self, run_id: str) -> dict:
        return json.loads((self.run_dir(run_id) / "run.json").read_text())

    def wait_for_marker(self, proc: subprocess.Popen[str], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            if proc.poll() is not None:
                raise AssertionError(f"process ended early: {proc.communicate()}")
            if time.monotonic() > deadline:
                raise AssertionError("the step never reached its marker")
            time.sleep(0.02)


@pytest.fixture
def toy(tmp_path: Path) -> Toy:
    return Toy(tmp_path)


def run_id_of(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout.split()[0]


def test_wait_suspends_with_75_then_answer_completes_each_step_once(toy: Toy) -> None:
    first = toy.run("start", "--wait")
    assert first.returncode == 75, first.stderr
    run_id = run_id_of(first)
    data = toy.run_json(run_id)
    assert data["status"] == "waiting"
    assert data["pending_wait"]["key"] == "approve"
    assert data["pending_wait"]["question"] == "go on?"
    assert toy.executed() == ["s1", "s2"]

    done = toy.run("approve", "--run", run_id)
    assert done.returncode == 0, done.stderr
    assert toy.run_json(run_id)["status"] == "succeeded"
    assert toy.executed() == ["s1", "s2", "s3", "s4", "s5"]
    records = toy.records(run_id)
    assert records["approve"]["status"] == "answered"
    assert records["approve"]["answer"] == {"approved": True}
    assert all(records[k]["status"] == "done" for k in ("s1", "s2", "s3", "s4", "s5"))
    assert toy.run_json(run_id)["result"]["value"] == "start>s1|b>s2|m1>s3>s4>s5"


def test_rejected_wait_ends_the_run_rejected(toy: Toy) -> None:
    run_id = run_id_of(toy.run("start", "--wait"))
    rejected = toy.run("reject", "--run", run_id)
    assert rejected.returncode == 0, rejected.stderr
    assert toy.run_json(run_id)["status"] == "rejected"
    assert toy.executed() == ["s1", "s2"]


def test_approving_a_run_that_is_not_waiting_is_a_usage_error(toy: Toy) -> None:
    run_id = run_id_of(toy.run("start"))
    before = snapshot(toy.run_dir(run_id))
    again = toy.run("approve", "--run", run_id)
    assert again.returncode == 2
    assert "not waiting" in again.stderr
    assert snapshot(toy.run_dir(run_id)) == before


def test_sigkill_inside_step_3_resumes_at_step_3(toy: Toy) -> None:
    proc = toy.spawn("start", TOY_BLOCK_AT="s3")
    toy.wait_for_marker(proc)
    run_id = proc.stdout.readline().strip()  # type: ignore[union-attr]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert toy.run_json(run_id)["status"] == "running"  # what the dead process left

    resumed = toy.run("resume", "--run", run_id)
    assert resumed.returncode == 0, resumed.stderr
    assert toy.executed() == ["s1", "s2", "s3", "s3", "s4", "s5"]
    records = toy.records(run_id)
    assert records["s3"]["rerun_reason"].startswith("interrupted")
    assert records["s1"]["rerun_reason"] is None
    assert toy.run_json(run_id)["status"] == "succeeded"


def test_interrupted_run_is_reported_as_interrupted(toy: Toy) -> None:
    from agent_cli.durable import RunStore

    proc = toy.spawn("start", TOY_BLOCK_AT="s2")
    toy.wait_for_marker(proc)
    run_id = proc.stdout.readline().strip()  # type: ignore[union-attr]
    run = RunStore(toy.root).get(run_id)
    assert run.status() == "running"  # the lock is held: it really is running
    proc.kill()
    proc.wait(timeout=10)
    assert run.status() == "interrupted"


def test_loop_checkpoint_killed_at_third_iteration_resumes_there(toy: Toy) -> None:
    proc = toy.spawn("start", "--flow", "loop", "--n", "5", TOY_BLOCK_AT="iterate-3")
    toy.wait_for_marker(proc)
    run_id = proc.stdout.readline().strip()  # type: ignore[union-attr]
    proc.kill()
    proc.wait(timeout=10)

    resumed = toy.run("resume", "--flow", "loop", "--run", run_id)
    assert resumed.returncode == 0, resumed.stderr
    assert toy.executed() == ["iterate", "iterate-2", "iterate-3",
                              "iterate-3", "iterate-4", "iterate-5"]
    names = sorted(p.name for p in (toy.run_dir(run_id) / "steps").glob("*.json"))
    assert names == ["01-iterate.json", "02-iterate-2.json", "03-iterate-3.json",
                     "04-iterate-4.json", "05-iterate-5.json"]


def test_replay_from_step_3_with_override_forks_and_leaves_parent_untouched(toy: Toy) -> None:
    parent = run_id_of(toy.run("start"))
    before = snapshot(toy.run_dir(parent))
    toy.counts.unlink()

    replay = toy.run("replay", "--run", parent, "--from", "s3", "--model", "m2")
    assert replay.returncode == 0, replay.stderr
    child = run_id_of(replay)
    assert child != parent
    assert toy.executed() == ["s3", "s4", "s5"]
    records = toy.records(child)
    assert records["s1"]["reused_from"] == parent
    assert records["s2"]["reused_from"] == parent
    for key in ("s3", "s4", "s5"):
        assert "reused_from" not in records[key]
        assert records[key]["output"]["model"] == "m2"
    assert records["s2"]["output"]["model"] == "m1"
    # flow code between s2 and s3 already sees the override
    assert records["s3"]["output"]["value"] == "start>s1|b>s2|m2>s3"
    assert toy.run_json(child)["parent"] == {"run_id": parent, "from_step": "s3"}
    assert snapshot(toy.run_dir(parent)) == before


def test_replay_of_a_replay_reuses_what_the_parent_computed_with_its_override(toy: Toy) -> None:
    parent = run_id_of(toy.run("start"))
    child = run_id_of(toy.run("replay", "--run", parent, "--from", "s3", "--model", "m2"))
    toy.counts.unlink()
    grandchild = toy.run("replay", "--run", child, "--from", "s5", "--model", "m3")
    assert grandchild.returncode == 0, grandchild.stderr
    assert toy.executed() == ["s5"]  # s3 and s4 (made with m2) are reused, not re-run
    records = toy.records(run_id_of(grandchild))
    assert records["s4"]["reused_from"] == child and records["s1"]["reused_from"] == parent
    assert records["s5"]["output"]["model"] == "m3"


def test_replay_from_unknown_step_is_a_usage_error(toy: Toy) -> None:
    parent = run_id_of(toy.run("start"))
    runs_before = sorted(os.listdir(toy.root / "runs"))
    bad = toy.run("replay", "--run", parent, "--from", "nope")
    assert bad.returncode == 2
    assert "no step 'nope'" in bad.stderr and "s1, s2, s3, s4, s5" in bad.stderr
    assert sorted(os.listdir(toy.root / "runs")) == runs_before


def test_changed_step_2_input_reruns_from_step_2(toy: Toy) -> None:
    run_id = run_id_of(toy.run("start", "--wait"))
    assert toy.executed() == ["s1", "s2"]
    done = toy.run("approve", "--run", run_id, TOY_STEP2="changed")
    # s2's input changed, so the answered wait after it was moved aside: ask again.
    assert done.returncode == 75, done.stderr
    assert toy.executed() == ["s1", "s2", "s2"]
    records = toy.records(run_id)
    assert records["s2"]["rerun_reason"] == "inputs changed"
    assert records["s1"]["rerun_reason"] is None
    superseded = list((toy.run_dir(run_id) / "steps" / "superseded").glob("*approve.json"))
    assert superseded, "the old answer is kept aside, not lost"

    assert toy.run("approve", "--run", run_id, TOY_STEP2="changed").returncode == 0
    assert toy.executed() == ["s1", "s2", "s2", "s3", "s4", "s5"]


def test_failed_step_is_recorded_and_resume_reruns_it(toy: Toy) -> None:
    failed = toy.run("start", TOY_FAIL_AT="s4")
    assert failed.returncode == 1
    run_id = run_id_of(failed)
    data = toy.run_json(run_id)
    assert data["status"] == "failed"
    assert data["error"]["step"] == "s4"
    record = toy.records(run_id)["s4"]
    assert record["status"] == "failed"
    assert record["error"]["type"] == "RuntimeError"
    assert "scripted failure in s4" in record["error"]["message"]
    assert "Traceback" in record["error"]["traceback"]

    resumed = toy.run("resume", "--run", run_id)
    assert resumed.returncode == 0, resumed.stderr
    assert toy.executed() == ["s1", "s2", "s3", "s4", "s4", "s5"]
    assert toy.records(run_id)["s4"]["rerun_reason"] == "previous attempt failed (RuntimeError)"


def test_two_resumers_exactly_one_executes(toy: Toy) -> None:
    proc = toy.spawn("start", TOY_BLOCK_AT="s2")
    toy.wait_for_marker(proc)
    run_id = proc.stdout.readline().strip()  # type: ignore[union-attr]
    proc.kill()
    proc.wait(timeout=10)
    toy.marker.unlink()
    toy.counts.unlink()

    # Both resume at once; the one that gets the lock blocks inside s2 again.
    first = toy.spawn("resume", "--run", run_id, TOY_BLOCK_AT="s2")
    second = toy.spawn("resume", "--run", run_id, TOY_BLOCK_AT="s2")
    toy.wait_for_marker(first if first.poll() is None else second)
    procs = [first, second]
    loser_out = None
    deadline = time.monotonic() + 30
    while loser_out is None and time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                loser_out = p.communicate()
                loser = p
        time.sleep(0.05)
    assert loser_out is not None, "neither process gave up"
    winner = first if loser is second else second
    assert winner.poll() is None, "the lock holder keeps executing"
    assert loser.returncode == 1
    holder_pid = toy.marker.read_text()
    assert f"run {run_id} is being executed by another process (pid {holder_pid}" in loser_out[1]
    assert toy.executed() == ["s2"]
    winner.kill()
    winner.wait(timeout=10)


def test_truncated_step_file_is_a_clear_error_naming_it(toy: Toy) -> None:
    run_id = run_id_of(toy.run("start"))
    path = toy.run_dir(run_id) / "steps" / "02-s2.json"
    path.write_text(path.read_text()[:40])
    resumed = toy.run("resume", "--run", run_id)
    assert resumed.returncode == 1
    assert f"cannot read {path}: it is not valid JSON" in resumed.stderr
    assert toy.executed() == ["s1", "s2", "s3", "s4", "s5"]  # nothing re-ran


def snapshot(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*")) if p.is_file()
    }
