"""End-to-end: the plan gate with a person at it. Real `agent` processes on a
pseudo-terminal (tests/e2e/terminal.py) or without one, the model faked at HTTP; what
the person says must reach the model's requests, and the records must say whose plan
the code was written from."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.scenario import (
    ANALYSIS,
    BUGGY,
    FIXED,
    PR,
    agent,
    edits,
    git,
    issue,
    only_run,
    plan,
    record,
    run_json,
    script_happy,
)
from tests.e2e.terminal import Terminal
from tests.fakes.anthropic_server import FakeAnthropic, tool_reply

PROMPT = "[d]etails · [q]uit ›"

# An $EDITOR: rewrites the plan file it is given. Its first run writes what
# EDITOR_FIRST says ("bad": an action that does not exist), later runs the good edit.
EDITOR = r'''
import sys, yaml
from pathlib import Path
path, count = Path(sys.argv[1]), Path(sys.argv[0]).with_suffix(".count")
n = int(count.read_text()) + 1 if count.exists() else 1
count.write_text(str(n))
doc = yaml.safe_load(path.read_text())
if n == 1 and "BAD_FIRST" in sys.argv[0]:
    doc["changes"][0]["action"] = "rewrite"
else:
    doc["summary"] = "EDITED BY HAND: percentages of the subtotal, FLAT coupons untouched."
    doc["changes"][0].update(action="modify",
                             description="EDITED: in Cart.total divide percent coupons by 100")
path.write_text(yaml.safe_dump(doc))
'''


def editor(tmp_path: Path, bad_first: bool = False) -> str:
    script = tmp_path / ("editor_BAD_FIRST.py" if bad_first else "editor.py")
    script.write_text(EDITOR)
    return f"{sys.executable} {script}"


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    made: list[Terminal] = []
    yield made
    for term in made:
        term.close()


def on_terminal(terminals: list[Terminal], args: list[str], repo: Path, env: dict) -> Terminal:
    term = Terminal(args, repo, env)
    terminals.append(term)
    return term


def write_request(server: FakeAnthropic) -> str:
    (first,) = server.find(tool="submit_edits")
    return json.dumps(first.body)


def keys(repo: Path, run_id: str) -> list[str]:
    files = sorted((repo / ".agent" / "runs" / run_id / "steps").glob("*.json"),
                   key=lambda p: int(p.name.split("-")[0]))
    return [json.loads(p.read_text())["key"] for p in files]


def test_approve_with_a_comment_at_the_terminal_reaches_write_code(
        repo: Path, env: dict, server: FakeAnthropic, terminals: list[Terminal]) -> None:
    script_happy(server)
    term = on_terminal(terminals, ["solve", issue(repo)], repo, env)
    term.expect("plan ready for approval")
    term.expect(PROMPT)
    term.send("d")
    details = term.expect(PROMPT)
    assert "done when: FLAT coupons unchanged" in details and "estimate:" in details
    term.send("x")
    assert "not a choice: 'x'" in term.expect(PROMPT)
    term.send("a keep FLAT coupons untouched")
    assert term.wait() == 0, term.text
    run_id = only_run(repo)
    assert run_json(repo, run_id)["status"] == "succeeded"
    assert "keep FLAT coupons untouched" in write_request(server)
    assert record(repo, run_id, "approve_plan")["answer"]["comment"] == \
        "keep FLAT coupons untouched"


def test_reject_at_the_terminal_says_how_to_plan_again(
        repo: Path, env: dict, server: FakeAnthropic, terminals: list[Terminal]) -> None:
    script_happy(server)
    term = on_terminal(terminals, ["solve", issue(repo)], repo, env)
    term.expect(PROMPT)
    term.send("r")
    term.expect("reason (Enter for none):")
    term.send("also handle negative totals")
    assert term.wait() == 0, term.text
    run_id = only_run(repo)
    data = run_json(repo, run_id)
    assert data["status"] == "rejected" and data["reason"] == "also handle negative totals"
    assert (f"agent replay {run_id} --from create_plan --feedback "
            "'also handle negative totals'") in term.text
    assert server.count(tool="submit_edits") == 0


def test_feedback_at_the_terminal_plans_again_and_asks_again(
        repo: Path, env: dict, server: FakeAnthropic, terminals: list[Terminal]) -> None:
    second = {**plan(), "summary": "REVISED: percent coupons as a share of the subtotal."}
    server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
    server.route(tool="submit_plan", replies=[tool_reply(plan()), tool_reply(second)])
    server.route(tool="submit_edits", reply=tool_reply(edits("shopcart/cart.py", BUGGY, FIXED)))
    server.route(tool="submit_pr", reply=tool_reply(PR))
    term = on_terminal(terminals, ["solve", issue(repo)], repo, env)
    term.expect(PROMPT)
    term.send("f round to cents and leave FLAT coupons alone")
    term.expect("REVISED: percent coupons")  # the new plan, at the gate again
    term.expect(PROMPT)
    term.send("a")
    assert term.wait() == 0, term.text
    first, again = server.find(tool="submit_plan")
    assert "round to cents and leave FLAT coupons alone" in json.dumps(again.body)
    assert "round to cents" not in json.dumps(first.body)
    run_id = only_run(repo)
    assert keys(repo, run_id)[2:8] == ["create_plan", "check_tests", "approve_plan",
                                       "create_plan-2", "check_tests-2", "approve_plan-2"]
    assert "REVISED" in write_request(server)


def test_edit_at_the_terminal_a_bad_edit_then_a_good_one_becomes_the_plan(
        repo: Path, env: dict, server: FakeAnthropic, terminals: list[Terminal],
        tmp_path: Path) -> None:
    script_happy(server)
    term = on_terminal(terminals, ["solve", issue(repo)], repo,
                       {**env, "EDITOR": editor(tmp_path, bad_first=True)})
    term.expect(PROMPT)
    term.send("e")
    said = term.expect("[e]dit again or [q] cancel")
    assert "changes[1].action" in said
    term.send("e")
    term.expect("your plan, ready for approval")
    term.expect("EDITED BY HAND")  # the gate shows the person's plan
    term.expect(PROMPT)
    term.send("a")
    assert term.wait() == 0, term.text
    run_id = only_run(repo)
    assert "EDITED: in Cart.total divide percent coupons by 100" in write_request(server)
    assert "written by the human reviewer" in write_request(server)
    assert record(repo, run_id, "edit_plan")["output"]["author"] == "human"
    assert keys(repo, run_id)[4:8] == ["approve_plan", "edit_plan", "check_tests-2",
                                       "approve_plan-2"]
    assert server.count(tool="submit_plan") == 1  # an edit pays for no model call


def test_detach_on_a_terminal_and_no_terminal_both_exit_75(
        repo: Path, env: dict, server: FakeAnthropic, terminals: list[Terminal]) -> None:
    script_happy(server)
    term = on_terminal(terminals, ["solve", issue(repo), "--detach"], repo, env)
    assert term.wait() == 75, term.text
    assert "plan ready for approval" in term.text and PROMPT not in term.text
    piped = agent(["revise", "plan it again"], repo, env)  # alone: the latest waiting run
    assert piped.returncode == 75, piped.stderr + piped.stdout
    assert "plan it again" in json.dumps(server.find(tool="submit_plan")[1].body)
    assert PROMPT not in piped.stdout and "plan ready for approval" in piped.stdout


def test_approve_command_with_a_comment_reaches_write_code(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    script_happy(server)
    assert agent(["solve", issue(repo)], repo, env).returncode == 75
    run_id = only_run(repo)
    done = agent(["approve", run_id, "--comment", "keep FLAT coupons untouched"], repo, env)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "keep FLAT coupons untouched" in write_request(server)
    # A replay from write_code reuses the answer, and the comment still reaches the model.
    again = agent(["replay", run_id, "--from", "write_code"], repo, env)
    assert again.returncode == 0, again.stderr + again.stdout
    assert "keep FLAT coupons untouched" in json.dumps(server.find(tool="submit_edits")[1].body)


def test_revise_command_on_a_waiting_run_then_the_terminal_gate(
        repo: Path, env: dict, server: FakeAnthropic, terminals: list[Terminal]) -> None:
    second = {**plan(), "summary": "REVISED: percent coupons as a share of the subtotal."}
    server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
    server.route(tool="submit_plan", replies=[tool_reply(plan()), tool_reply(second)])
    server.route(tool="submit_edits", reply=tool_reply(edits("shopcart/cart.py", BUGGY, FIXED)))
    server.route(tool="submit_pr", reply=tool_reply(PR))
    assert agent(["solve", issue(repo)], repo, env).returncode == 75
    run_id = only_run(repo)
    term = on_terminal(terminals, ["revise", run_id, "use Decimal for the money"], repo, env)
    term.expect("REVISED: percent coupons")
    term.expect(PROMPT)
    term.send("a")
    assert term.wait() == 0, term.text
    assert "use Decimal for the money" in json.dumps(server.find(tool="submit_plan")[1].body)
    assert run_json(repo, run_id)["status"] == "succeeded"


def test_edit_command_on_a_waiting_run_records_the_plan_write_code_uses(
        repo: Path, env: dict, server: FakeAnthropic, tmp_path: Path) -> None:
    script_happy(server)
    assert agent(["solve", issue(repo)], repo, env).returncode == 75
    run_id = only_run(repo)
    edited = agent(["edit", run_id], repo, {**env, "EDITOR": editor(tmp_path)})
    assert edited.returncode == 75, edited.stderr + edited.stdout
    assert "EDITED BY HAND" in edited.stdout  # the gate again, with the person's plan
    assert run_json(repo, run_id)["pending_wait"]["key"] == "approve_plan-2"
    done = agent(["approve", run_id], repo, env)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "EDITED: in Cart.total" in write_request(server)


def test_bad_gate_inputs_say_what_is_wrong_exit_2_and_write_nothing(
        repo: Path, env: dict, server: FakeAnthropic, tmp_path: Path) -> None:
    script_happy(server)
    assert agent(["solve", issue(repo)], repo, env).returncode == 75
    run_id = only_run(repo)
    run_dir = repo / ".agent" / "runs" / run_id

    def snapshot() -> dict[str, bytes]:
        return {str(p.relative_to(run_dir)): p.read_bytes()
                for p in run_dir.rglob("*") if p.is_file() and p.name != "lock"}

    before = snapshot()
    bad_edit = agent(["edit", run_id], repo, {**env, "EDITOR": editor(tmp_path, True)})
    assert bad_edit.returncode == 2, bad_edit.stderr + bad_edit.stdout
    assert "changes[1].action" in bad_edit.stderr
    unchanged = agent(["edit", run_id], repo, {**env, "EDITOR": "true"})
    assert unchanged.returncode == 2 and "nothing recorded" in unchanged.stderr
    empty = agent(["revise", run_id, "  "], repo, env)
    assert empty.returncode == 2 and "feedback is empty" in empty.stderr
    assert snapshot() == before
    assert server.count(tool="submit_plan") == 1

    assert agent(["reject", run_id], repo, env).returncode == 0
    late = agent(["revise", run_id, "again"], repo, env)
    assert late.returncode == 2 and "waiting" in late.stderr, late.stderr


def test_gate_mentions_uncommitted_changes_to_planned_files_and_a_base_that_moved(
        repo: Path, env: dict, server: FakeAnthropic) -> None:
    script_happy(server)
    cart = repo / "shopcart" / "cart.py"
    cart.write_text(cart.read_text() + "\n# my work in progress\n")
    first = agent(["solve", issue(repo)], repo, env)
    assert first.returncode == 75, first.stderr
    assert "uncommitted changes in your checkout to shopcart/cart.py" in first.stdout
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "NOTES.md").write_text("a commit made while the run waited\n")
    git(repo, "add", "NOTES.md")
    git(repo, "commit", "-q", "-m", "meanwhile")
    done = agent(["approve", only_run(repo)], repo, env)
    assert done.returncode == 0, done.stderr + done.stdout
    said = done.stdout.replace("\n", " ")
    assert "main moved while the run waited (1 new commit(s)" in said
    assert f"still uses its base commit {base[:12]}" in said
    assert "# my work in progress" in cart.read_text()  # never touched
