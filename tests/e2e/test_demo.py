"""`agent demo`: offline, no key, the whole pipeline on the bundled project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e import demo_recording
from tests.e2e.scenario import git


def demo_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "ANTHROPIC_"))}
    return {**env, "NO_COLOR": "1", "AGENT_CONFIG_DIR": str(tmp_path / "cfg"),
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}  # a closed port: any call would fail


def test_demo_runs_the_whole_pipeline_offline(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "agent_cli", "demo", str(target)],
                          env=demo_env(tmp_path), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    (run_id,) = os.listdir(target / ".agent" / "runs")
    data = json.loads((target / ".agent" / "runs" / run_id / "run.json").read_text())
    assert data["status"] == "succeeded"
    steps = [json.loads(p.read_text())["key"]
             for p in sorted((target / ".agent" / "runs" / run_id / "steps").glob("*.json"))]
    assert steps == ["analyze_issue", "explore_codebase", "create_plan", "check_tests", "approve_plan",
                     "write_code", "run_tests", "fix_code", "run_tests-2", "create_pr"]
    assert "plan ready for approval" in done.stdout and "The demo approves its own plan" in done.stdout
    assert f"agent replay {run_id} --from write_code" in done.stdout
    diff = git(target, "diff", "main", f"agent/{run_id}")
    assert "/ 100" in diff and "test_percentage_coupon_rounds_to_cents" in diff
    assert git(target, "status", "--porcelain").strip() == "?? ISSUE.md"
    cost = subprocess.run([sys.executable, "-m", "agent_cli", "cost", run_id, "--json"],
                          cwd=target, env=demo_env(tmp_path), capture_output=True, text=True)
    assert json.loads(cost.stdout)["total"]["cost_usd"] == 0


def test_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file.txt").write_text("mine\n")
    out = subprocess.run([sys.executable, "-m", "agent_cli", "demo", str(tmp_path / "busy")],
                         env=demo_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "is not empty" in out.stderr
    assert os.listdir(tmp_path / "busy") == ["file.txt"]


def test_bundled_recording_is_what_the_scripted_pipeline_produces(tmp_path: Path) -> None:
    fresh = demo_recording.record(tmp_path / "recording")
    bundled = [json.loads(p.read_text()) for p in sorted(demo_recording.OUT.glob("*.json"))]

    def essence(calls: list[dict]) -> list[tuple]:
        # what the model said, without the ids the service makes up per response
        return [(c["step"], c["call_index"],
                 [(b.get("name"), json.dumps(b.get("input"), sort_keys=True), b.get("text"))
                  for b in c["response"]["content"]]) for c in calls]

    assert essence(bundled) == essence(fresh), \
        "regenerate it with: python -m tests.e2e.demo_recording"
