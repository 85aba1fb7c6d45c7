"""The read-side commands (`runs`, `inspect`, `cost`, `diff`) through real `agent`
processes, on one finished happy-path run and one replay of it from `write_code`.

Also: RUN omitted means the latest run, a unique prefix works, plain output carries
no ANSI escape codes when NO_COLOR=1 or stdout is not a terminal, and none of the
read commands imports the `anthropic` SDK (DESIGN.md: it is imported only when a
model call is about to happen).
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e import scenario
from tests.fakes.anthropic_server import FakeAnthropic, tool_reply

ANSI = re.compile(r"\x1b[\[\]()#;?0-9]")
STEPS = ["analyze_issue", "explore_codebase", "create_plan", "check_tests", "approve_plan",
         "write_code", "run_tests", "create_pr"]
MODEL_STEPS = ["analyze_issue", "create_plan", "write_code", "create_pr"]
REUSED = ["analyze_issue", "explore_codebase", "create_plan", "check_tests", "approve_plan"]
KINDS = ("input", "cache_write", "cache_read", "output")


@dataclass
class Runs:
    repo: Path
    env: dict[str, str]
    original: str
    replay: str


def run_agent(args: list[str], cwd: Path, env: dict[str, str], *, python_flags: tuple[str, ...] = ()
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *python_flags, "-m", "agent_cli", *args], cwd=cwd,
                          env=env, check=False, capture_output=True, text=True,
                          timeout=120)


def ok(runs: Runs, *args: str, env: dict[str, str] | None = None) -> str:
    proc = run_agent(list(args), runs.repo, env or runs.env)
    assert proc.returncode == 0, f"agent {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def ok_json(runs: Runs, *args: str) -> object:
    out = ok(runs, *args, "--json")
    try:
        return json.loads(out)
    except json.JSONDecodeError as exc:  # pragma: no cover - reported as a failure
        raise AssertionError(f"agent {' '.join(args)} --json is not one JSON document: {exc}\n"
                             f"{out[:2000]}") from None


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture(scope="module")
def runs(server: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    base = tmp_path_factory.mktemp("read")
    repo = scenario.make_repo(base)
    env = scenario.agent_env(server, base)
    scenario.script_happy(server)
    first = run_agent(["solve", str(base / "ISSUE.md"), "--auto-approve", "--json"], repo, env)
    assert first.returncode == 0, first.stdout + first.stderr
    original = json.loads(first.stdout)["run_id"]
    # The replay executes write_code and create_pr again: script them afresh.
    server.reset()
    server.route(tool="submit_edits", reply=tool_reply(
        scenario.edits("shopcart/cart.py", scenario.BUGGY, scenario.FIXED)))
    server.route(tool="submit_pr", reply=tool_reply(scenario.PR))
    second = run_agent(["replay", original, "--from", "write_code", "--json"], repo, env)
    assert second.returncode == 0, second.stdout + second.stderr
    replay = json.loads(second.stdout)["run_id"]
    assert replay != original
    assert server.count(tool="submit_analysis") == 0 and server.count(tool="submit_plan") == 0, \
        "the replay must not call the model for the reused steps"
    return Runs(repo=repo, env=env, original=original, replay=replay)


def unique_prefix(run_id: str, others: list[str]) -> str:
    for n in range(4, len(run_id)):
        if not any(o.startswith(run_id[:n]) for o in others if o != run_id):
            return run_id[:n]
    raise AssertionError(f"{run_id} has no unique proper prefix among {others}")


# -- runs ------------------------------------------------------------------------------


def test_runs_json_lists_both(runs: Runs) -> None:
    rows = ok_json(runs, "runs")
    assert isinstance(rows, list)
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {runs.original, runs.replay}
    assert [r["id"] for r in rows] == [runs.replay, runs.original], "newest first"
    for run_id in (runs.original, runs.replay):
        row = by_id[run_id]
        assert row["status"] == "succeeded"
        assert row["branch"] == f"agent/{run_id}"
        assert isinstance(row["cost_usd"], float) and row["cost_usd"] > 0
    assert by_id[runs.replay]["cost_usd"] < by_id[runs.original]["cost_usd"], \
        "the replay reuses three steps; it must cost less"
    parent = by_id[runs.replay]["parent"]
    assert runs.original in json.dumps(parent)


def test_runs_plain(runs: Runs) -> None:
    out = ok(runs, "runs")
    assert runs.original in out and runs.replay in out
    assert out.count("succeeded") == 2
    assert f"agent/{runs.original}" in out
    assert "$" in out


# -- inspect ---------------------------------------------------------------------------


def test_inspect_json_original(runs: Runs) -> None:
    data = ok_json(runs, "inspect", runs.original)
    assert data["run"]["id"] == runs.original and data["run"]["status"] == "succeeded"
    steps = {s["key"]: s for s in data["steps"]}
    assert list(steps) == STEPS
    for key, step in steps.items():
        assert step["status"] == ("answered" if key == "approve_plan" else "done"), step
        assert step["reused_from"] is None, step
    for key in MODEL_STEPS:
        assert steps[key]["tokens"] > 0 and steps[key]["cost_usd"] > 0, steps[key]
    assert data["result"]["branch"] == f"agent/{runs.original}"


def test_inspect_json_replay_marks_reused_steps(runs: Runs) -> None:
    data = ok_json(runs, "inspect", runs.replay)
    assert data["run"]["id"] == runs.replay and data["run"]["status"] == "succeeded"
    assert runs.original in json.dumps(data["run"]["parent"])
    assert "write_code" in json.dumps(data["run"]["parent"])
    steps = {s["key"]: s for s in data["steps"]}
    assert list(steps) == STEPS
    for key in REUSED:
        assert steps[key]["reused_from"] == runs.original, steps[key]
        assert steps[key]["cost_usd"] in (0, 0.0, None), "a reused step costs this run nothing"
    for key in ("write_code", "run_tests", "create_pr"):
        assert steps[key]["reused_from"] is None, steps[key]
        assert steps[key]["status"] == "done", steps[key]
    assert steps["write_code"]["cost_usd"] > 0 and steps["create_pr"]["cost_usd"] > 0
    for key in ("analyze_issue", "create_plan"):
        assert steps[key]["saved_usd"] and steps[key]["saved_usd"] > 0, steps[key]


def test_inspect_plain(runs: Runs) -> None:
    out = ok(runs, "inspect", runs.replay)
    assert runs.replay in out and "succeeded" in out
    for key in STEPS:
        assert key in out
    assert f"reused from {runs.original}" in out


def test_inspect_step_prints_the_plan(runs: Runs) -> None:
    data = ok_json(runs, "inspect", runs.original, "--step", "create_plan")
    assert isinstance(data, dict)
    artifact = data.get("output", data)
    expected = scenario.plan()
    assert artifact["summary"] == expected["summary"]
    assert [c["path"] for c in artifact["changes"]] == ["shopcart/cart.py"]
    assert [t["id"] for t in artifact["tests"]] == [scenario.TARGET]
    plain = ok(runs, "inspect", runs.original, "--step", "create_plan")
    assert expected["summary"] in plain and "shopcart/cart.py" in plain


def test_inspect_step_of_a_reused_step_on_the_replay(runs: Runs) -> None:
    data = ok_json(runs, "inspect", runs.replay, "--step", "create_plan")
    artifact = data.get("output", data)
    assert artifact["summary"] == scenario.plan()["summary"]


# -- cost ------------------------------------------------------------------------------


def _check_tokens(entry: dict, where: str) -> None:
    for kind in KINDS:
        assert isinstance(entry.get(kind), int) and entry[kind] >= 0, f"{where}: {kind} in {entry}"
    assert isinstance(entry.get("cost_usd"), float) and entry["cost_usd"] > 0, f"{where}: {entry}"


def test_cost_json_per_step(runs: Runs) -> None:
    data = ok_json(runs, "cost", runs.original)
    steps = data["steps"]
    assert set(steps) == set(MODEL_STEPS), steps
    for key in MODEL_STEPS:
        _check_tokens(steps[key], key)
        assert steps[key]["input"] + steps[key]["cache_write"] + steps[key]["cache_read"] > 0
        assert steps[key]["output"] > 0
    _check_tokens(data["total"], "total")
    assert data["total"]["cost_usd"] == pytest.approx(sum(s["cost_usd"] for s in steps.values()))
    for kind in KINDS:
        assert data["total"][kind] == sum(s[kind] for s in steps.values())
    # Prompt caching across stages shows up as cache reads on later stages.
    assert sum(s["cache_read"] for s in steps.values()) > 0
    assert set(data["models"]) == {"claude-sonnet-5-5"}
    runs_rows = {r["id"]: r for r in ok_json(runs, "runs")}
    assert data["total"]["cost_usd"] == pytest.approx(runs_rows[runs.original]["cost_usd"])


def test_cost_json_replay_shows_saved(runs: Runs) -> None:
    parent = ok_json(runs, "cost", runs.original)
    data = ok_json(runs, "cost", runs.replay)
    steps = data["steps"]
    assert set(steps) <= set(MODEL_STEPS)
    for key in ("write_code", "create_pr"):
        _check_tokens(steps[key], key)
    for key in ("analyze_issue", "create_plan"):
        assert key not in steps or steps[key].get("cost_usd", 0) == 0, steps.get(key)
    expected_saved = parent["steps"]["analyze_issue"]["cost_usd"] + \
        parent["steps"]["create_plan"]["cost_usd"]
    assert data["saved_usd"] == pytest.approx(expected_saved)
    assert {r["key"] for r in data["reused"]} >= {"analyze_issue", "create_plan"}
    assert data["total"]["cost_usd"] == pytest.approx(
        steps["write_code"]["cost_usd"] + steps["create_pr"]["cost_usd"])


def test_cost_plain(runs: Runs) -> None:
    out = ok(runs, "cost", runs.replay)
    assert "write_code" in out and "create_pr" in out
    assert "saved" in out
    assert "$" in out


def test_cost_all_runs_by_day_and_model(runs: Runs) -> None:
    data = ok_json(runs, "cost")
    per_run = [ok_json(runs, "cost", r)["total"] for r in (runs.original, runs.replay)]
    assert data["runs"] == 2
    rows = data["rows"]
    assert rows, data
    # One row per (UTC day, model): the runs were made moments ago, by one model.
    days = {r["created_at"][:10] for r in ok_json(runs, "runs")}
    days.add(datetime.now(UTC).strftime("%Y-%m-%d"))
    assert {r["model"] for r in rows} == {"claude-sonnet-5-5"}
    assert {r["day"] for r in rows} <= days, rows
    assert len({(r["day"], r["model"]) for r in rows}) == len(rows), "one row per day and model"
    today = rows[-1]["day"]
    for kind in KINDS:
        assert data["total"][kind] == sum(t[kind] for t in per_run)
        assert sum(r[kind] for r in rows) == data["total"][kind]
    assert data["total"]["cost_usd"] == pytest.approx(sum(t["cost_usd"] for t in per_run))
    plain = ok(runs, "cost")
    assert today in plain and "claude-sonnet-5-5" in plain


# -- diff ------------------------------------------------------------------------------


def test_diff_prints_the_change(runs: Runs) -> None:
    for run_id in (runs.original, runs.replay):
        out = ok(runs, "diff", run_id)
        assert "shopcart/cart.py" in out
        assert "-        discount = self.coupon.amount" in out
        assert "+            discount = subtotal * self.coupon.amount / 100" in out


# -- RUN omitted, prefixes -------------------------------------------------------------


def test_run_omitted_means_latest(runs: Runs) -> None:
    assert ok_json(runs, "inspect")["run"]["id"] == runs.replay
    assert ok(runs, "diff") == ok(runs, "diff", runs.replay)
    plain = ok(runs, "inspect")
    assert runs.replay in plain


def test_unique_prefix(runs: Runs) -> None:
    ids = [runs.original, runs.replay]
    for run_id in ids:
        prefix = unique_prefix(run_id, ids)
        assert ok_json(runs, "inspect", prefix)["run"]["id"] == run_id
        assert ok_json(runs, "cost", prefix)["run"] == run_id
        assert ok(runs, "diff", prefix) == ok(runs, "diff", run_id)


# -- plain output is plain -------------------------------------------------------------


def _plain_commands(runs: Runs) -> list[list[str]]:
    return [["--help"], ["runs"], ["inspect", runs.replay], ["inspect", runs.original],
            ["inspect", runs.original, "--step", "create_plan"], ["cost", runs.replay],
            ["cost"], ["diff", runs.original]]


def test_no_ansi_when_stdout_is_not_a_tty(runs: Runs) -> None:
    env = {k: v for k, v in runs.env.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm-256color"
    for args in _plain_commands(runs):
        out = ok(runs, *args, env=env)
        assert out.strip(), args
        assert not ANSI.search(out), f"agent {' '.join(args)} (stdout a pipe): {out[:500]!r}"


def _run_in_pty(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run `agent ARGS` with stdout on a pseudo-terminal; (exit code, what it printed)."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "agent_cli", *args], cwd=cwd, env=env,
                                stdin=subprocess.DEVNULL, stdout=follower,
                                stderr=subprocess.PIPE)
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=60)
        assert proc.stderr is not None
        err = proc.stderr.read().decode()
        assert proc.returncode == 0, f"agent {' '.join(args)}: {err}"
        return proc.returncode, b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(leader)


def test_no_ansi_with_no_color_on_a_tty(runs: Runs) -> None:
    env = {**runs.env, "NO_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "160"}
    env.pop("FORCE_COLOR", None)
    for args in _plain_commands(runs):
        _, out = _run_in_pty(args, runs.repo, env)
        assert out.strip(), args
        assert not ANSI.search(out), f"agent {' '.join(args)} (NO_COLOR=1, a tty): {out[:500]!r}"


# -- the SDK is not imported by read commands --------------------------------------------


def _imports_anthropic(runs: Runs, args: list[str]) -> bool:
    proc = run_agent(args, runs.repo, runs.env, python_flags=("-X", "importtime"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return any(line.rstrip().endswith(" anthropic") for line in proc.stderr.splitlines())


@pytest.mark.parametrize("which", ["--help", "runs", "inspect", "inspect --json", "cost",
                                   "cost all", "diff"])
def test_read_commands_do_not_import_the_sdk(runs: Runs, which: str) -> None:
    args = {
        "--help": ["--help"], "runs": ["runs"], "inspect": ["inspect", runs.replay],
        "inspect --json": ["inspect", runs.replay, "--json"], "cost": ["cost", runs.replay],
        "cost all": ["cost"], "diff": ["diff", runs.replay],
    }[which]
    assert not _imports_anthropic(runs, args), f"agent {' '.join(args)} imported anthropic"


def test_importtime_check_detects_the_sdk(runs: Runs) -> None:
    """The check above can fail: a process that does import anthropic is seen."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import anthropic"],
                          check=False, capture_output=True, text=True, timeout=60)
    assert any(line.rstrip().endswith(" anthropic") for line in proc.stderr.splitlines())
