"""`agent batch` end to end: real `agent` processes, real git and pytest; only the model
is fake. Each issue is the demo's bug, so every run can end on a branch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from agent_cli.batch.record import Batch
from tests.e2e.scenario import (
    ANALYSIS,
    BUGGY,
    FIXED,
    PR,
    WRONG,
    agent,
    edits,
    git,
    plan,
    script_happy,
)
from tests.fakes.anthropic_server import FakeAnthropic, _forced_tool, delay, tool_reply


# Where the tests' outcome is not the point, a test command that passes at once keeps
# the suite short (pytest runs for real in the gates test, where a change fails).
FAST_TESTS = {"AGENT_TEST_CMD": "true"}


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


def report_of(request) -> str:  # type: ignore[no-untyped-def]
    """Which issue a request is for: its text names the report."""
    return report_of_body(request.body)


def report_of_body(body: dict) -> str:
    text = json.dumps(body)
    return next(f"report {i}" for i in range(20) if f"(report {i})" in text)


def journaled(repo: Path) -> list[tuple[str, str]]:
    """(issue, tool) of every call paid for and journaled in any run."""
    out = []
    for path in (repo / ".agent" / "runs").glob("*/calls/*.json"):
        call = json.loads(path.read_text())
        if call["status"] == "ok" and not call.get("served_from"):
            out.append((report_of_body(call["request"]), _forced_tool(call["request"])))
    return out


def test_a_batch_of_6_over_2_workers_killed_midway_resumes_to_6_branches_paying_each_call_once(
        tmp_path: Path, repo: Path, env: dict, server: FakeAnthropic) -> None:
    script_happy(server)
    env = {**env, **FAST_TESTS}
    proc = subprocess.Popen([sys.executable, "-m", "agent_cli", "batch", str(issues(tmp_path, 6)),
                             "--workers", "2", "--auto-approve"], cwd=repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # midway: two runs have ended, and the next ones are making calls
        server.wait_for_requests(2, timeout=180, tool="submit_pr")
        server.wait_for_requests(11, timeout=180)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    batch = batch_id(repo)
    deadline = time.monotonic() + 30  # the runs saw their parent die and stop
    while (before := status(repo, env, batch))["counts"].get("running"):
        assert time.monotonic() < deadline, before
        time.sleep(0.2)
    assert before["status"] == "interrupted"
    answered = journaled(repo)
    assert 2 <= before["counts"].get("succeeded", 0) < 6

    out = agent(["batch", "--resume", batch, "--json"], repo, env, timeout=240)
    assert out.returncode == 0, out.stderr + out.stdout
    report = json.loads(out.stdout)
    assert report["counts"] == {"succeeded": 6}
    from tests.cli.test_json_shapes import shape  # the README's JSON output section

    (keys,) = shape("`batch`, `batch --status BATCH`")
    assert set(report) == keys
    branches = git(repo, "branch", "--list", "agent/*").split()
    assert sorted(branches) == sorted(f"agent/{r['run_id']}" for r in report["runs"])
    assert all(r["branch"] and r["seconds"] > 0 and r["cost_usd"] > 0 for r in report["runs"])
    # every call paid for before the kill was made once: resume served it from the journal
    made = [(report_of(r), r.tool) for r in server.requests if r.status == 200]
    assert len(answered) >= 11 - 2 and [k for k in answered if made.count(k) != 1] == []
    assert len(set(made)) == 6 * 4 and len(made) - len(set(made)) <= 2  # at most the in-flight ones
    paid_for = journaled(repo)  # each call paid for once, in its run's journal
    assert len(paid_for) == 6 * 4 and set(paid_for) == set(made)
    # never more than 2 runs at once: the batch's own timeline says when each ran
    events = [json.loads(line) for line in (repo / ".agent" / "batches" / batch
                                            / "events.jsonl").read_text().splitlines()]
    live, most = 0, 0
    for ev in events:
        live += {"run_started": 1, "run_ended": -1, "batch_started": -live}.get(ev["event"], 0)
        most = max(most, live)
    assert most == 2
    # each run is an ordinary run
    assert agent(["inspect", report["runs"][0]["run_id"]], repo, env).returncode == 0
    costs = json.loads(agent(["cost", "--batch", batch, "--json"], repo, env).stdout)
    assert round(costs["total"]["cost_usd"], 6) == report["cost_usd"]


def for_report(n: int):  # type: ignore[no-untyped-def]
    return lambda r: f"(report {n})" in json.dumps(r.body)


def test_gates_reviewed_with_approve_batch_and_an_issue_whose_tests_never_pass_stops_no_other(
        tmp_path: Path, repo: Path, env: dict, server: FakeAnthropic) -> None:
    server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
    server.route(tool="submit_plan", reply=tool_reply(plan()))
    server.route(tool="submit_edits", when=for_report(0),
                 reply=tool_reply(edits("shopcart/cart.py", BUGGY, WRONG)))
    server.route(tool="submit_edits", reply=tool_reply(edits("shopcart/cart.py", BUGGY, FIXED)))
    server.route(tool="submit_pr", reply=tool_reply(PR))
    env = {**env, "AGENT_MAX_ATTEMPTS": "0"}

    gated = agent(["batch", str(issues(tmp_path, 2)), "--json"], repo, env, timeout=180)
    assert gated.returncode == 75, gated.stderr + gated.stdout
    report = json.loads(gated.stdout)
    assert report["counts"] == {"waiting": 2} and report["status"] == "waiting"
    assert {r["waiting_for"] for r in report["runs"]} == {"approve_plan"}
    assert server.count(tool="submit_edits") == 0  # nothing written before the gates
    batch = report["batch"]
    with Batch(repo / ".agent", batch).lock():  # another process executes the batch
        second = agent(["batch", "--resume", batch], repo, env)
    assert second.returncode == 1, second.stderr
    assert f"batch {batch} is being executed by another process (pid {os.getpid()}" in second.stderr
    refused = agent(["approve", "--batch", batch], repo, env)  # no terminal to ask on
    assert refused.returncode == 2 and f"agent approve --batch {batch} --all" in refused.stderr

    out = agent(["approve", "--batch", batch, "--all", "--json"], repo, env, timeout=180)
    assert out.returncode == 75, out.stderr + out.stdout
    report = json.loads(out.stdout)
    failing, other = sorted(report["runs"], key=lambda r: r["item"])
    assert failing["status"] == "waiting" and failing["waiting_for"] == "tests_failing"
    assert not failing["branch"]
    assert other["status"] == "succeeded" and other["branch"]
    shown = agent(["batch", "--status", batch], repo, env).stdout
    assert "tests_failing" in shown and other["branch"] in shown


def test_one_budget_holds_across_the_runs_of_a_batch(
        tmp_path: Path, repo: Path, env: dict, server: FakeAnthropic) -> None:
    script_happy(server)
    env = {**env, **FAST_TESTS}
    rc = Path(env["AGENT_CONFIG_DIR"])
    rc.mkdir(parents=True, exist_ok=True)
    # Output costs $1 a token and input nothing: a call is estimated at $1,000 (its
    # max_tokens) and costs $50-150. Each run needs about $320 and $1,000 of room for
    # each call, so whatever the order, not both fit in $1,500, and a run that waits
    # has spent far less than $1,500 itself: it waits for what the other spent.
    (rc / ".agentrc").write_text(yaml.safe_dump(
        {"max_tokens": 1000, "prices": {"claude-sonnet-5-5": {
            "input": 0, "output": 1_000_000, "cache_write": 0, "cache_read": 0}}}))
    out = agent(["batch", str(issues(tmp_path, 2)), "--workers", "2", "--auto-approve",
                 "--max-cost", "1500", "--json"], repo, env, timeout=180)
    assert out.returncode == 75, out.stderr + out.stdout
    report = json.loads(out.stdout)
    assert 0 < report["cost_usd"] <= 1500
    waiting = [r for r in report["runs"] if r["status"] == "waiting"]
    assert waiting and all(r["waiting_for"].startswith("budget") for r in waiting)
    assert all(r["cost_usd"] < 500 for r in waiting)
    assert report["counts"].get("succeeded", 0) >= 1
    question = json.loads((repo / ".agent" / "runs" / waiting[0]["run_id"] / "run.json")
                          .read_text())["pending_wait"]["question"]
    assert f"spent by the runs of batch {report['batch']}" in question


def test_the_batch_on_a_local_ray_cluster_survives_a_killed_worker(
        tmp_path: Path, repo: Path, env: dict, server: FakeAnthropic) -> None:
    pytest.importorskip("ray")  # in the test extra: CI runs this
    from agent_cli.batch.onray import scratch

    script_happy(server)  # report 0's edits are held until its worker is killed
    server.route(tool="submit_edits", when=for_report(0), times=1,
                 reply=delay(60, tool_reply(edits("shopcart/cart.py", BUGGY, FIXED))))
    server._routes.insert(0, server._routes.pop())
    env = {**env, **FAST_TESTS}
    proc = subprocess.Popen([sys.executable, "-m", "agent_cli", "batch", str(issues(tmp_path, 4)),
                             "--workers", "2", "--auto-approve", "--json", "--ray"], cwd=repo,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not [r for r in server.find(tool="submit_edits") if report_of(r) == "report 0"]:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        pid = int((scratch(batch_id(repo), "issue-0") / "worker.pid").read_text())
        os.kill(pid, signal.SIGKILL)  # the Ray worker executing issue 0
        out, err = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 0, err + out
    report = json.loads(out)
    assert report["counts"] == {"succeeded": 4} and report["executor"]["kind"] == "ray"
    branches = git(repo, "branch", "--list", "agent/*").split()
    assert sorted(branches) == sorted(f"agent/{r['run_id']}" for r in report["runs"])
    run_id = next(r["run_id"] for r in report["runs"] if r["item"] == "issue-0")
    events = [json.loads(line) for line in
              (repo / ".agent" / "runs" / run_id / "events.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("run_finished") == 1 and "run_resumed" in kinds  # retried, ended once
    made = [(report_of(r), r.tool) for r in server.requests if r.status == 200]
    assert made.count(("report 0", "submit_analysis")) == 1  # resumed from its checkpoints
    assert made.count(("report 0", "submit_plan")) == 1
    assert len(journaled(repo)) == 4 * 4
    assert not scratch(report["batch"], "issue-0").exists()  # cleaned once the run ended


def test_bad_batch_inputs_are_refused_naming_the_fix_with_nothing_written(
        tmp_path: Path, repo: Path, env: dict, server: FakeAnthropic) -> None:
    folder = issues(tmp_path, 1)
    empty = tmp_path / "empty"
    empty.mkdir()
    rows = tmp_path / "rows.jsonl"
    hide_ray = tmp_path / "no-ray"  # a Python where Ray is not installed
    hide_ray.mkdir()
    (hide_ray / "sitecustomize.py").write_text("import sys\nsys.modules['ray'] = None\n")
    cases = [
        ([], {}, "give one of ISSUES, --resume BATCH or --status BATCH"),
        ([str(folder), "--status", "x"], {}, "not ISSUES and --status"),
        ([str(tmp_path / "nope.md")], {}, "issue file not found"),
        ([str(empty)], {}, f"no *.md issue files in {empty}"),
        ([str(folder), str(folder)], {}, "two issues have the id 'issue-0'"),
        ([str(folder), "--workers", "0"], {}, "--workers must be 1 or more"),
        ([str(folder), "--max-cost", "0"], {}, "--max-cost must be more than 0"),
        ([str(rows)], {"rows": '{"id": "a", "issue": "x"'}, f"{rows}:1 is not valid JSON"),
        ([str(rows)], {"rows": '{"id": "a", "text": "Totals are wrong"}'}, "unknown keys: text"),
        ([str(rows)], {"rows": '{"id": "a", "issue": "Totals are wrong", "base_commit": "f00d"}'},
         "no commit 'f00d'"),
        ([str(folder), "--ray=127.0.0.1:6379", "--max-cost", "5"], {}, "--max-cost with a Ray"),
        ([str(folder), "--ray"], {"PYTHONPATH": f"{hide_ray}:{env['PYTHONPATH']}"},
         "pip install 'agent-cli[ray]'"),
        (["--resume", "nope"], {}, "no batches yet"),
    ]
    for args, extra, phrase in cases:
        if "rows" in extra:
            rows.write_text(extra.pop("rows") + "\n")
        out = agent(["batch", *args], repo, {**env, **extra})
        assert out.returncode == 2 and phrase in out.stderr, (args, out.stderr)
        assert not (repo / ".agent").exists(), args
    assert server.requests == []


def test_ray_is_imported_by_no_command_but_a_ray_batch(repo: Path, env: dict) -> None:
    for args in (["--help"], ["batch", "--help"], ["runs"], ["batch", "--status", "x"]):
        out = subprocess.run([sys.executable, "-X", "importtime", "-m", "agent_cli", *args],
                             cwd=repo, env=env, capture_output=True, text=True, check=False)
        imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()
                    if line.startswith("import time:")}
        assert "agent_cli.cli" in imported and "ray" not in imported, args
