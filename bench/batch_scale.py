"""How `agent batch` scales: N issues against a fake model with realistic latencies.

Each issue is the demo's bug (a real git repository, real pytest); the model is the
fake Anthropic server of the tests, answering each call after a random 2-8 s
(seeded), as a hosted model does. For each executor the script starts a fresh
repository and times one `agent batch --auto-approve` over all issues, then prints
the wall time next to the sum of the runs' own times (what one worker would need if
nothing overlapped), the speed-up (sum / wall) and the efficiency (speed-up /
workers), with where the time of an average run went (model wait vs the rest).

    python bench/batch_scale.py [--issues 20] [--workers 1,2,4] [--ray 2,4]
                                [--latency 2 8] [--seed 1]

Not part of the test suite: 20 issues take minutes per configuration.

At 52792fa on the shared 2-core machine, `--issues 20 --workers 2,4 --ray 4`, 2-8 s
per call (all 20 runs succeeded in each):

    executor  workers   wall    sum of runs  speed-up  efficiency  model wait/run  rest/run
    local           2   247.1s       473.0s     1.91x        96%           21.1s      2.5s
    local           4   126.5s       475.6s     3.76x        94%           21.3s      2.5s
    ray             4   132.1s       485.3s     3.67x        92%           21.4s      2.9s

One worker needs about the sum of the runs' own times (at 9848ca2, 8 issues: 261 s
wall for 257 s of runs, 98 %). The model wait overlaps fully; what does not is the
rest of a run (interpreter and SDK start, git worktree, pytest twice), CPU work on 2
cores, and the last round waits for its slowest run (20 runs over 4 workers: 5
rounds). Ray adds its start (5-8 s) and per task the bundle, the clone and the run
directory's return. At 9848ca2 (8 issues, load 4-10) the rest per run was 8.5-16.7 s
and Ray's efficiency 84 %.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.scenario import (
    ANALYSIS,
    BUGGY,
    FIXED,
    PR,
    agent_env,
    edits,
    make_repo,
    plan,
)
from tests.fakes.anthropic_server import FakeAnthropic, delay, tool_reply

REPLIES = {"submit_analysis": ANALYSIS, "submit_plan": plan(),
           "submit_edits": edits("shopcart/cart.py", BUGGY, FIXED), "submit_pr": PR}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--issues", type=int, default=20)
    ap.add_argument("--workers", default="1,2,4", help="local pool sizes, comma-separated")
    ap.add_argument("--ray", default="2,4", help="Ray cluster sizes ('' for none)")
    ap.add_argument("--latency", type=float, nargs=2, default=(2.0, 8.0), metavar=("LO", "HI"))
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    configs = [("local", int(n)) for n in args.workers.split(",") if n]
    configs += [("ray", int(n)) for n in args.ray.split(",") if n]
    rows = []
    for kind, workers in configs:
        rows.append(measure(kind, workers, args.issues, args.latency, args.seed))
        show(rows[-1])
    print("\nexecutor  workers   wall    sum of runs  speed-up  efficiency  model wait/run  "
          "rest/run")
    for r in rows:
        print(f"{r['kind']:8}  {r['workers']:7}  {r['wall']:6.1f}s  {r['sum']:10.1f}s  "
              f"{r['sum'] / r['wall']:7.2f}x  {r['sum'] / r['wall'] / r['workers']:9.0%}  "
              f"{r['model_per_run']:13.1f}s  {r['rest_per_run']:7.1f}s")


def measure(kind: str, workers: int, n: int, latency: tuple[float, float], seed: int) -> dict:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="batch-scale-") as tmp, FakeAnthropic() as server:
        server.min_cacheable_tokens = 100
        for tool, answer in REPLIES.items():
            server.route(tool=tool, reply=lambda r, a=answer: delay(rng.uniform(*latency),
                                                                     tool_reply(a)))
        base = Path(tmp)
        repo = make_repo(base)
        folder = base / "issues"
        folder.mkdir()
        text = (base / "ISSUE.md").read_text()
        for i in range(n):
            (folder / f"issue-{i:02d}.md").write_text(text.replace("\n", f" (report {i})\n", 1))
        env = agent_env(server, base)
        cmd = [sys.executable, "-m", "agent_cli", "batch", str(folder), "--workers", str(workers),
               "--auto-approve", "--json"] + (["--ray"] if kind == "ray" else [])
        started = time.monotonic()
        out = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        if out.returncode != 0:
            raise SystemExit(f"{kind} x{workers}: exit {out.returncode}\n{out.stderr[-2000:]}")
        report = json.loads(out.stdout)
        model = _model_from_journals(repo)  # each call's latency as the client saw it
        total = sum(r["seconds"] for r in report["runs"])
        return {"kind": kind, "workers": workers, "wall": wall, "sum": total,
                "runs": report["counts"], "model_per_run": model / n,
                "rest_per_run": (total - model) / n,
                "median_run": statistics.median(r["seconds"] for r in report["runs"])}


def _model_from_journals(repo: Path) -> float:
    return sum(json.loads(p.read_text()).get("latency_s") or 0.0
               for p in (repo / ".agent" / "runs").glob("*/calls/*.json"))


def show(r: dict) -> None:
    print(f"{r['kind']} x{r['workers']}: {r['runs']} in {r['wall']:.1f}s wall; runs' own "
          f"times sum to {r['sum']:.1f}s (median run {r['median_run']:.1f}s)", flush=True)


if __name__ == "__main__":
    main()
