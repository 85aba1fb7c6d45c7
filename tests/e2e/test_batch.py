"""`agent batch` end to end: real `agent` processes, real git and pytest; only the model
is fake. Each issue is the demo's bug, so every run can end on a branch."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.e2e.scenario import (
    ANALYSIS, BUGGY, FIXED, PR, WRONG, agent, edits, fix, git, plan, script_happy,
)
from tests.fakes.anthropic_server import FakeAnthropic, tool_reply


def issues(tmp_path: Path, n: int) -> Path:
    folder = tmp_path / "issues"
    folder.mkdir()
    text = (Path(__file__).resolve().parents[2] / "agent_cli/demo/ISSUE.md").read_text()
    for i in range(n):
        (folder / f"issue-{i}.md").write_text(text.replace("\n", f" (report {i})\n", 1))
    return folder


def status(repo: Path, env: dict, batch: str) -> dict:
    out = agent(["batch", "--status", batch, "--json"], repo, env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def batch_id(repo: Path) -> str:
    (path,) = (repo / ".agent" / "batches").glob("*.json")
    return path.stem


def paid(server: FakeAnthropic) -> int:
    return len([r for r in server.requests if r.status == 200])


def test_a_batch_of_6_issues_over_2_workers_ends_with_6_branches(
        tmp_path: Path, repo: Path, env: dict, server: FakeAnthropic) -> None:
    script_happy(server)
    out = agent(["batch", str(issues(tmp_path, 6)), "--workers", "2", "--auto-approve", "--json"],
                repo, env, timeout=240)
    assert out.returncode == 0, out.stderr + out.stdout
    report = json.loads(out.stdout)
    assert report["counts"] == {"succeeded": 6} and report["status"] == "finished"
    branches = git(repo, "branch", "--list", "agent/*").split()
    assert sorted(branches) == sorted(f"agent/{r['run_id']}" for r in report["runs"])
    assert all(r["branch"] and r["seconds"] > 0 and r["cost_usd"] > 0 for r in report["runs"])
    assert report["cost_usd"] == round(sum(r["cost_usd"] for r in report["runs"]), 6)
    # never more than 2 runs at once: the batch's own timeline says when each ran
    events = [json.loads(line) for line in (repo / ".agent" / "batches" / report["batch"]
                                            / "events.jsonl").read_text().splitlines()]
    live, most = 0, 0
    for ev in events:
        live += {"run_started": 1, "run_ended": -1}.get(ev["event"], 0)
        most = max(most, live)
    assert most == 2
    # each run is an ordinary run
    run_id = report["runs"][0]["run_id"]
    assert agent(["inspect", run_id], repo, env).returncode == 0
    costs = json.loads(agent(["cost", "--batch", report["batch"], "--json"], repo, env).stdout)
    assert round(costs["total"]["cost_usd"], 6) == report["cost_usd"]
