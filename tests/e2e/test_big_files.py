"""End-to-end: a file too big to show whole is shown in windows; the model reads the
lines it needs with read_file, and a kill between the read and the submit costs one
request on resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.scenario import (
    ANALYSIS,
    BUGGY,
    FIXED,
    PR,
    TARGET,
    agent,
    edits,
    git,
    make_repo,
    record,
    run_json,
    solve_killed_at,
    write_call_for,
)
from tests.fakes.anthropic_server import FakeAnthropic, FakeRequest, delay, tool_reply

CATALOG = "shopcart/catalog.py"
OLD = "    return round(price * 0.183, 2)  # rate 183\n"
NEW = "    return round(price * 0.183 + 0.005, 2)  # rate 183, rounded half up\n"


def catalog() -> str:
    parts = ['"""Rate tables: one function per rate."""\n\n']
    for i in range(500):
        parts.append(f"def rate_{i}(price):\n    \"\"\"Rate {i}.\"\"\"\n"
                     + "".join(f"    step_{j} = price + {j}\n" for j in range(5))
                     + f"    return round(price * 0.{i:03d}, 2)  # rate {i}\n\n\n")
    return "".join(parts)


def line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path)
    (repo / CATALOG).write_text(catalog())
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "rate tables")
    return repo


def first_text(request: FakeRequest) -> str:
    first = request.body["messages"][0]["content"]
    return "\n".join(b.get("text", "") for b in first if b.get("type") == "text")


def writes(path: str):  # type: ignore[no-untyped-def]
    """The write_code calls for `path`, the follow-ups after a read included."""
    return lambda r: f"one file: `{path}`" in first_text(r)


PLAN = {"summary": "Apply percentage coupons as a percentage of the subtotal.",
        "changes": [{"path": "shopcart/cart.py", "action": "modify",
                     "description": "fix the coupon math"},
                    {"path": CATALOG, "action": "modify",
                     "description": "round the rate tables half up"}],
        "tests": [{"id": TARGET, "kind": "existing", "reason": "reproduces the issue"}]}


def test_the_model_reads_a_window_it_was_not_shown_and_a_kill_costs_one_request(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    text = catalog()
    target = line_of(text, OLD)
    assert target > 1800 and len(text) > 100_000
    read = {"path": CATALOG, "start_line": target - 8, "end_line": target + 2}
    server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
    server.route(tool="submit_plan", reply=tool_reply(PLAN))
    server.route(tool="submit_edits", when=write_call_for("shopcart/cart.py"),
                 reply=tool_reply(edits("shopcart/cart.py", BUGGY, FIXED)))
    server.route(tool="submit_edits", when=writes(CATALOG), replies=[
        tool_reply("read_file", read), delay(120, tool_reply(edits(CATALOG, OLD, NEW)))])
    server.route(tool="submit_edits", when=writes(CATALOG),
                 reply=tool_reply(edits(CATALOG, OLD, NEW)))
    server.route(tool="submit_pr", reply=tool_reply(PR))

    run_id = solve_killed_at(repo, env, server, 3, "submit_edits")

    # What the model was shown first: the outline names the function, its body is not there.
    asked = [r for r in server.requests if r.tool == "submit_edits" and writes(CATALOG)(r)]
    first, after_read = asked[0].body, asked[1].body
    assert first["tool_choice"] == {"type": "any"}
    assert {"read_file", "find"} <= {t["name"] for t in first["tools"]}
    shown = first_text(asked[0])
    assert f"{line_of(text, 'def rate_183('):5d}: function rate_183" in shown
    assert OLD.strip() not in shown
    result = after_read["messages"][2]["content"][0]
    assert result["type"] == "tool_result" and f"{target:5d}| {OLD.rstrip()}" in result["content"]

    resumed = agent(["resume", run_id], repo, env)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert server.count(tool="submit_edits") == 4  # the in-flight submit, made again
    remade = [r for r in server.requests if r.tool == "submit_edits" and writes(CATALOG)(r)]
    assert len(remade) == 3 and remade[-1].body == after_read  # the same request, once more
    rec = record(repo, run_id, "write_code")
    assert [c["served_from"] is not None for c in rec["calls"]] == [True, True, False]
    diff = git(repo, "diff", "main", f"agent/{run_id}")
    assert NEW.strip() in diff and "subtotal * self.coupon.amount / 100" in diff
    views = rec["output"]["shown"]
    assert {"path": CATALOG, "call_for": CATALOG, "via": "read_file", "lines": text.count("\n"),
            "ranges": [[target - 8, target + 2]], "whole": False} in views
    prompt_view = next(v for v in views if v["path"] == CATALOG and v["via"] == "prompt")
    assert not prompt_view["whole"] and not any(a <= target <= b for a, b in prompt_view["ranges"])

    shown_out = agent(["inspect", run_id, "--step", "write_code"], repo, env)
    assert shown_out.returncode == 0, shown_out.stderr
    assert f"read {target - 8}-{target + 2}" in shown_out.stdout
    assert f"{CATALOG} ({text.count(chr(10)):,} lines)" in shown_out.stdout
    assert run_json(repo, run_id)["status"] == "succeeded"
    cost = json.loads(agent(["cost", run_id, "--json"], repo, env).stdout)
    assert cost  # every round trip is a priced call like any other
