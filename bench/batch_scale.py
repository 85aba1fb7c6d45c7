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

At 9848ca2 (a4d4188, the same behaviour, from 2 workers on) on the shared 2-core
machine (load 4-10), `--issues 8 --workers 1,2,4 --ray 4` (8, not 20: the time it
takes here), 2-8 s per call:

    executor  workers   wall    sum of runs  speed-up  efficiency  model wait/run  rest/run
    local           1   261.4s       257.4s     0.98x        98%           23.7s      8.5s
    local           2   150.6s       289.3s     1.92x        96%           25.5s     10.7s
    local           4    82.3s       303.0s     3.68x        92%           28.4s      9.5s
    ray             4    97.2s       327.7s     3.37x        84%           24.3s     16.7s

Against one worker's wall time: 1.74x with 2, 3.18x with 4, 2.69x on Ray with 4. The
model wait overlaps fully; what does not is the rest of a run (interpreter and SDK
start, git worktree, pytest twice), CPU work on 2 cores: with 4 at once each run
takes longer (median 30 s alone, 37 s at 4), and the last of 2 rounds waits for its
slowest run. Ray adds its start (5-8 s) and per task the bundle, clone and the run
directory's return (rest/run 16.7 s against 9.5 s).
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
