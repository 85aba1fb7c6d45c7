"""Makes the demo's recording: `python -m tests.e2e.demo_recording`.

The demo (`agent demo`) runs offline with a `replay:` model that serves a call
journal bundled in agent_cli/demo/recording/. This script produces that journal the
honest way: it runs the real pipeline on the demo project against the loopback fake
(tests/fakes) scripted with the answers below, and keeps each call's response,
usage and cost (requests are dropped: the replay model matches by step and call
index, and they would only make the package bigger).

The story: the first fix forgets to divide by 100, the tests catch it, the fix loop
repairs it, the tests pass, and the change is committed on a branch.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from tests.e2e.scenario import ANALYSIS, BUGGY, FIXED, PR, TARGET, WRONG, agent, agent_env, fix
from tests.fakes.anthropic_server import FakeAnthropic, tool_reply

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "agent_cli" / "demo" / "recording"
NEW_TEST = "tests/test_cart.py::test_percentage_coupon_rounds_to_cents"

PLAN = {
    "summary": "Cart.total subtracts a coupon's amount as currency for every coupon kind. "
               "Take SAVE coupons as a percentage of the subtotal, keep FLAT coupons as they "
               "are, and add a test for a percentage that needs rounding.",
    "changes": [
        {"path": "shopcart/cart.py", "action": "modify",
         "description": "In Cart.total, compute the discount as subtotal * amount / 100 for "
                        "percent coupons; keep the flat amount for flat coupons."},
        {"path": "tests/test_cart.py", "action": "modify",
         "description": "Add test_percentage_coupon_rounds_to_cents: SAVE15 on 3 x 3.33 "
                        "gives 8.49."},
    ],
    "tests": [
        {"id": TARGET, "kind": "existing", "reason": "the failing test from the issue"},
        {"id": NEW_TEST, "kind": "new", "reason": "percentages round to cents"},
    ],
}
ANCHOR = "def test_negative_price_is_refused():\n"
NEW_TEST_CODE = (
    "def test_percentage_coupon_rounds_to_cents():\n"
    "    cart = Cart()\n"
    "    cart.add(\"pen\", 3.33, qty=3)\n"
    "    cart.apply_coupon(\"SAVE15\")\n"
    "    assert cart.total() == 8.49\n\n\n")


def edit(path: str, old: str, new: str, note: str) -> dict:
    return {"edits": [{"path": path, "action": "replace", "old": old, "new": new}], "note": note}


def script(server: FakeAnthropic) -> None:
    server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
    server.route(tool="submit_plan", reply=tool_reply(PLAN))
    server.route(tool="submit_edits", when=lambda r: "one file: `shopcart/cart.py`" in r.last_user_text,
                 reply=tool_reply(edit("shopcart/cart.py", BUGGY, WRONG,
                                       "percent coupons now scale with the subtotal")))
    server.route(tool="submit_edits", when=lambda r: "one file: `tests/test_cart.py`" in r.last_user_text,
                 reply=tool_reply(edit("tests/test_cart.py", ANCHOR, NEW_TEST_CODE + ANCHOR,
                                       "regression test for rounding")))
    server.route(tool="submit_fix", reply=tool_reply(fix(
        "shopcart/cart.py", WRONG, FIXED,
        "The percentage was applied as a fraction of 1 instead of 100: SAVE10 took "
        "10 x the subtotal off, and max() clamped the total to 0. Divide by 100.")))
    server.route(tool="submit_pr", reply=tool_reply(PR))


def record(out: Path) -> list[dict]:
    from agent_cli.demo.run import prepare

    tmp = Path(tempfile.mkdtemp(prefix="agent-demo-recording-"))
    try:
        repo, issue = prepare(tmp / "demo")
        with FakeAnthropic() as server:
            script(server)
            done = agent(["solve", str(issue), "--auto-approve", "--json"], repo,
                         agent_env(server, tmp))
        if done.returncode != 0:
            raise SystemExit(f"the recording run did not succeed:\n{done.stdout}\n{done.stderr}")
        run_id = json.loads(done.stdout)["run_id"]
        calls = sorted((repo / ".agent" / "runs" / run_id / "calls").glob("*.json"))
        records = []
        for path in calls:
            rec = json.loads(path.read_text())
            rec.pop("request", None)
            rec["note"] = "recorded against tests/fakes by tests/e2e/demo_recording.py"
            records.append(rec)
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for rec in records:
            (out / f"{rec['number']:04d}.json").write_text(json.dumps(rec, indent=2) + "\n")
        return records
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    written = record(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
    print(f"wrote {len(written)} calls: " + ", ".join(f"{r['step']}#{r['call_index']}" for r in written))
