"""Faults around the durable core (issue 16), each through real `agent` processes.

A full disk and a read-only `.agent` are small tmpfs mounts (skipped where mounting
is not permitted), and also a `.agent` path the run cannot write otherwise (a file
where a directory should be). Torn writes are a SIGKILL right before the rename of
a durable write (tests/e2e/crashpoint.py). The model service is the only fake.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.scenario import (
    ANALYSIS,
    BUGGY,
    FIXED,
    PR,
    REPO,
    agent,
    edits,
    git,
    issue,
    only_run,
    plan,
    run_json,
    script_happy,
)
from tests.fakes.anthropic_server import FakeAnthropic, delay, error_reply, tool_reply

Mount = Callable[..., Path]


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Mount]:
    """mount(path, size, *options): a tmpfs at `path`, unmounted after the test."""
    mounted: list[Path] = []

    def do(path: Path, size: str = "64m", *options: str) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        opts = ",".join([f"size={size}", *options])
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(path)
        return path

    yield do
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """Write into `directory` until its disk is full; the file that holds the space."""
    filler = directory / "filler"
    with open(filler, "wb") as f:
        chunk = b"\0" * (1 << 16)
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError:
            pass
    return filler


def solve_held_at_write_code(repo: Path, env: dict, server: FakeAnthropic
                             ) -> subprocess.Popen[str]:
    """`agent solve --auto-approve`, its write_code call held open by the server for
    three seconds once it arrives (the test breaks the disk meanwhile)."""
    server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
    server.route(tool="submit_plan", reply=tool_reply(plan()))
    answer = tool_reply(edits("shopcart/cart.py", BUGGY, FIXED))
    server.route(tool="submit_edits", replies=[delay(3, answer), answer])
    server.route(tool="submit_pr", reply=tool_reply(PR))
    proc = subprocess.Popen([sys.executable, "-m", "agent_cli", "solve", issue(repo),
                             "--auto-approve"], cwd=repo, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    server.wait_for_requests(1, timeout=90, tool="submit_edits")
    return proc


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, flat(out + err)


def flat(text: str) -> str:
    """Output with the terminal's line wrapping undone."""
    return " ".join(text.split())


# -- a full disk, a read-only disk ---------------------------------------------------


def test_disk_full_mid_run_is_one_message_recorded_and_resumable(
        repo: Path, env: dict, server: FakeAnthropic, mount: Mount) -> None:
    agent_dir = mount(repo / ".agent", "64m")
    proc = solve_held_at_write_code(repo, env, server)
    filler = fill(agent_dir)
    code, said = finish(proc)

    assert code == 74, said
    assert "Traceback" not in said and "no space left" in said
    assert "free some space" in said
    run_id = only_run(repo)
    assert f"agent resume {run_id}" in said
    # Recorded, although the disk was full: runs and inspect tell the truth.
    data = run_json(repo, run_id)
    assert data["status"] == "failed" and data["error"]["type"] == "StorageError"
    assert data["error"]["step"] == "write_code"
    listed = agent(["runs", "--json"], repo, env)
    assert json.loads(listed.stdout)[0]["status"] == "failed"

    filler.unlink()
    resumed = agent(["resume", run_id], repo, env)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    change = git(repo, "diff", "main", f"agent/{run_id}", "--", "shopcart/cart.py")
    assert "discount = subtotal * self.coupon.amount / 100" in change
    assert not list((agent_dir / "runs").rglob("*.tmp"))


def test_read_only_agent_dir_solve_and_locate_say_so(
        repo: Path, env: dict, server: FakeAnthropic, mount: Mount) -> None:
    script_happy(server)
    mount(repo / ".agent", "16m", "ro")

    solved = agent(["solve", issue(repo)], repo, env)
    said = flat(solved.stdout + solved.stderr)
    assert solved.returncode == 74, said
    assert "Traceback" not in said and "read-only file system" in said
    assert "then run the command again" in said
    assert server.count() == 0  # found before anything was paid for

    located = agent(["locate", issue(repo)], repo, env)
    said = flat(located.stdout + located.stderr)
    assert located.returncode == 74, said
    assert "read-only file system" in said and "corrupt" not in said.lower()
    assert "delete" not in said


def test_a_full_cache_is_not_called_corrupt(repo: Path, env: dict, mount: Mount) -> None:
    agent_dir = mount(repo / ".agent", "1m")
    filler = fill(agent_dir)
    located = agent(["locate", issue(repo)], repo, env)
    said = flat(located.stdout + located.stderr)
    assert located.returncode == 74, said
    assert "no space left" in said and "Traceback" not in said
    assert "corrupt" not in said.lower() and "rm -rf" not in said

    filler.unlink()
    again = agent(["locate", issue(repo), "--json"], repo, env)
    assert again.returncode == 0, again.stderr
    assert "shopcart/cart.py" in again.stdout


def test_a_file_where_the_call_journal_should_be_is_recorded_and_resumable(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    proc = solve_held_at_write_code(repo, env, server)
    run_id = only_run(repo)
    calls = repo / ".agent" / "runs" / run_id / "calls"
    calls.rename(calls.with_name("calls.aside"))
    calls.write_text("not a directory\n")
    code, said = finish(proc)

    assert code == 74, said
    assert "Traceback" not in said
    assert f"{calls} is a file where agent keeps a directory" in said
    assert f"mv {calls} {calls}.bak" in said
    data = run_json(repo, run_id)
    assert data["status"] == "failed" and data["error"]["type"] == "StorageError"

    calls.unlink()
    calls.with_name("calls.aside").rename(calls)
    resumed = agent(["resume", run_id], repo, env)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout


def test_agent_path_a_file_is_one_message(repo: Path, env: dict, server: FakeAnthropic
                                          ) -> None:
    script_happy(server)
    (repo / ".agent").write_text("a file\n")
    solved = agent(["solve", issue(repo)], repo, env)
    said = flat(solved.stdout + solved.stderr)
    assert solved.returncode == 74, said
    assert "Traceback" not in said
    assert f"{repo / '.agent'} is a file where agent keeps a directory" in said
    assert (repo / ".agent").read_text() == "a file\n"


# -- a damaged neighbour ---------------------------------------------------------------


def test_listings_skip_a_damaged_run_with_one_warning(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    script_happy(server)
    assert agent(["solve", issue(repo)], repo, env).returncode == 75
    good = only_run(repo)
    runs = repo / ".agent" / "runs"
    bad_json, bad_call = "20000101-000000-aaaa", "20000101-000000-bbbb"
    for other in (bad_json, bad_call):
        shutil.copytree(runs / good, runs / other)
    (runs / bad_json / "run.json").write_text('{"schema_version": 1, "id": ')
    (runs / bad_call / "calls" / "0001.json").write_text("garbage")

    listed = agent(["runs", "--json"], repo, env)
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [good]
    warnings = listed.stderr.strip().splitlines()
    assert len(warnings) == 2 and all(w.startswith("warning: skipped run") for w in warnings)
    assert any(bad_json in w for w in warnings) and any(bad_call in w for w in warnings)
    assert agent(["runs"], repo, env).returncode == 0

    costs = agent(["cost", "--json"], repo, env)
    assert costs.returncode == 0, costs.stderr
    assert json.loads(costs.stdout)["runs"] == 2  # the good run and the one with a bad call
    assert bad_call in costs.stderr
    assert agent(["cost"], repo, env).returncode == 0

    # The hint for a damaged run.json: deleting it drops the run, it does not re-run a step.
    inspected = agent(["inspect", bad_json], repo, env)
    assert inspected.returncode == 1
    assert "run again" not in inspected.stderr
    assert f"rm -rf {runs / bad_json}" in inspected.stderr
    # approve finds the waiting run past its damaged neighbours
    assert agent(["reject", "--reason", "no"], repo, env).returncode == 0


# -- torn writes -----------------------------------------------------------------------


def crash(repo: Path, env: dict, pattern: str, nth: int, *args: str) -> int:
    """An `agent` process SIGKILLed right before the nth rename onto `pattern`."""
    done = subprocess.run([sys.executable, "-m", "tests.e2e.crashpoint", pattern, str(nth),
                           *args], cwd=repo, env={**env, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=180, check=False)
    return done.returncode


def litter(repo: Path) -> list[str]:
    runs = repo / ".agent" / "runs"
    return sorted(str(p.relative_to(runs)) for p in runs.rglob("*")
                  if p.name.endswith(".tmp") or p.name.endswith(".staged"))


def test_a_kill_during_the_first_run_json_write_leaves_no_run_behind(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    script_happy(server)
    assert crash(repo, env, "*/run.json", 1, "solve", issue(repo)) == -signal.SIGKILL
    assert litter(repo)  # the kill left something

    listed = agent(["runs", "--json"], repo, env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    assert os.listdir(repo / ".agent" / "runs") == []  # cleaned by the next command
    assert agent(["solve", issue(repo)], repo, env).returncode == 75


def test_a_kill_during_a_call_write_leaves_no_temp_file_and_resumes(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    script_happy(server)
    code = crash(repo, env, "*/calls/0002.json", 1, "solve", issue(repo), "--auto-approve")
    assert code == -signal.SIGKILL
    run_id = only_run(repo)
    assert litter(repo) == [f"{run_id}/calls/" + n for n in sorted(
        os.listdir(repo / ".agent" / "runs" / run_id / "calls")) if n.endswith(".tmp")]
    assert litter(repo)

    listed = agent(["runs", "--json"], repo, env)
    assert json.loads(listed.stdout)[0]["status"] == "interrupted"
    assert litter(repo) == []
    resumed = agent(["resume", run_id], repo, env)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout


# -- .agent/ never shows in git status ---------------------------------------------------


def test_agent_dir_is_excluded_when_the_run_fails_in_analyze(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    server.route(tool="submit_analysis", reply=error_reply(529))
    solved = agent(["solve", issue(repo)], repo, {**env, "AGENT_MAX_RETRIES": "0"})
    assert solved.returncode == 1, solved.stderr + solved.stdout
    assert (repo / ".agent" / "runs").is_dir()
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
