"""Shared pieces of the end-to-end tests: the sample repository and scripted replies.

The sample project is the demo's (agent_cli/demo/project): a cart whose percentage
coupons take a flat amount off. The replies below are what a model would answer at
each stage; tests route them by the forced tool name.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.fakes.anthropic_server import FakeAnthropic, tool_reply

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "agent_cli" / "demo"
TARGET = "tests/test_cart.py::test_percentage_coupon_takes_percent_off"

BUGGY = "        discount = self.coupon.amount\n"
FIXED = ("        if self.coupon.kind == \"percent\":\n"
         "            discount = subtotal * self.coupon.amount / 100\n"
         "        else:\n"
         "            discount = self.coupon.amount\n")
WRONG = ("        if self.coupon.kind == \"percent\":\n"
         "            discount = subtotal * self.coupon.amount\n"
         "        else:\n"
         "            discount = self.coupon.amount\n")

ANALYSIS = {
    "problem": "Cart.total subtracts a percentage coupon's amount as currency.",
    "symptoms": ["assert 150.0 == 144.0"],
    "suspected_areas": ["shopcart/cart.py Cart.total"],
    "search_terms": ["total", "apply_coupon", "percent"],
    "acceptance_criteria": ["SAVE10 on 160.0 gives 144.0", "FLAT coupons unchanged"],
}


def plan(*paths: str) -> dict:
    changes = [{"path": p, "action": "modify", "description": f"fix the coupon math in {p}"}
               for p in (paths or ("shopcart/cart.py",))]
    return {"summary": "Apply percentage coupons as a percentage of the subtotal.",
            "changes": changes,
            "tests": [{"id": TARGET, "kind": "existing", "reason": "reproduces the issue"}]}


def edits(path: str, old: str, new: str) -> dict:
    return {"edits": [{"path": path, "action": "replace", "old": old, "new": new}], "note": ""}


def fix(path: str, old: str, new: str, explanation: str = "the fix") -> dict:
    return {"edits": [{"path": path, "action": "replace", "old": old, "new": new}],
            "explanation": explanation}


PR = {"title": "Apply percentage coupons as percentages",
      "commit_message": "Apply percentage coupons as percentages\n\nSAVE coupons took a flat amount off.",
      "body": "Fixes percentage coupons.\n\nTested with the existing suite."}


def make_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "shop"
    shutil.copytree(DEMO / "project", repo)
    shutil.copy(DEMO / "ISSUE.md", tmp_path / "ISSUE.md")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def agent_env(server: FakeAnthropic, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "ANTHROPIC_"))}
    env.update(server.env(), PYTHONPATH=str(REPO), NO_COLOR="1",
               AGENT_CONFIG_DIR=str(tmp_path / "user-config"))
    return env


def agent(args: list[str], repo: Path, env: dict[str, str], timeout: float = 120
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent_cli", *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=timeout)


def issue(repo: Path) -> str:
    """The issue file make_repo writes next to the repository."""
    return str(repo.parent / "ISSUE.md")


def only_run(repo: Path) -> str:
    (run_id,) = os.listdir(repo / ".agent" / "runs")
    return run_id


def run_json(repo: Path, run_id: str) -> dict:
    return json.loads((repo / ".agent" / "runs" / run_id / "run.json").read_text())


def record(repo: Path, run_id: str, key: str) -> dict:
    """A step's record by key."""
    path = next((repo / ".agent" / "runs" / run_id / "steps").glob(f"[0-9]*-{key}.json"))
    return json.loads(path.read_text())


def solve_killed_at(repo: Path, env: dict[str, str], server: FakeAnthropic, calls: int,
                    tool: str) -> str:
    """`agent solve --auto-approve`, SIGKILLed once `calls` requests for `tool` have
    arrived (the last one still in flight when the server holds it); the run's id."""
    proc = subprocess.Popen([sys.executable, "-m", "agent_cli", "solve", issue(repo),
                             "--auto-approve"], cwd=repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        server.wait_for_requests(calls, timeout=90, tool=tool)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    return only_run(repo)


def write_call_for(path: str):  # type: ignore[no-untyped-def]
    """A route predicate: the write_code call for `path`."""
    return lambda r: f"one file: `{path}`" in r.last_user_text


def without_bwrap(tmp_path: Path) -> str:
    """A PATH with git but no bwrap: agent's `auto` sandbox falls back to unconfined."""
    bin_dir = tmp_path / "bin-without-bwrap"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("git", "sh"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def processes_with(marker: str) -> list[int]:
    """Live processes (not this one) whose command line contains `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker.encode() in cmdline and state != "Z" and int(entry) != os.getpid():
            found.append(int(entry))
    return found


def script_happy(server: FakeAnthropic) -> None:
    server.route(tool="submit_analysis", reply=tool_reply(ANALYSIS))
    server.route(tool="submit_plan", reply=tool_reply(plan()))
    server.route(tool="submit_edits", reply=tool_reply(edits("shopcart/cart.py", BUGGY, FIXED)))
    server.route(tool="submit_pr", reply=tool_reply(PR))


def run_on_pty(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120
                ) -> tuple[int, str, list[tuple[float, str]]]:
    """`agent ARGS` with stdout and stderr on a pseudo-terminal: (exit code, everything
    it wrote, and each chunk with when it was read)."""
    leader, follower = pty.openpty()
    chunks: list[tuple[float, str]] = []
    try:
        proc = subprocess.Popen([sys.executable, "-m", "agent_cli", *args], cwd=cwd, env=env,
                                stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
        os.close(follower)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1)
            if not ready:
                continue
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append((time.monotonic(), data.decode("utf-8", "replace")))
        proc.wait(timeout=30)
        return proc.returncode, "".join(c for _, c in chunks), chunks
    finally:
        os.close(leader)
