"""Overhead of the durable engine: 1,000 trivial checkpoints, with fsync.

Prints the median (and p90) wall time a checkpoint call adds over calling the bare
function, and the time to resume the finished run (every checkpoint reused).
Targets (issue 2): median <= 2 ms per checkpoint; resume <= 1 s.

    python bench/durable_overhead.py [--n 1000] [--dir PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from agent_cli.durable import RunStore, checkpoint, create, execute, flow


class Item(BaseModel):
    i: int
    doubled: int


def bare(i: int) -> Item:
    return Item(i=i, doubled=2 * i)


step = checkpoint(name="step")(bare)
TIMES: list[float] = []


@flow
def thousand(n: int) -> int:
    total = 0
    for i in range(n):
        t = time.perf_counter()
        total += step(i).doubled
        TIMES.append(time.perf_counter() - t)
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--dir", type=Path, default=None, help="where to put the run (default: a temp dir on /work's disk)")
    args = p.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="durable-bench-", dir=Path(__file__).resolve().parents[1]))
    try:
        bare_times = []
        for i in range(args.n):
            t = time.perf_counter()
            bare(i)
            bare_times.append(time.perf_counter() - t)
        bare_median = statistics.median(bare_times)

        store = RunStore(base / ".agent")
        run = create(store, thousand, {"n": args.n})
        t0 = time.perf_counter()
        outcome = execute(run, thousand)
        first = time.perf_counter() - t0
        assert outcome.status == "succeeded", outcome
        overheads = sorted(x - bare_median for x in TIMES)
        median_ms = statistics.median(overheads) * 1000
        p90_ms = overheads[int(len(overheads) * 0.9)] * 1000

        TIMES.clear()
        run.update(status="interrupted")  # make the finished run resumable again
        t0 = time.perf_counter()
        again = execute(run, thousand)
        resume_s = time.perf_counter() - t0
        assert again.status == "succeeded" and again.result == outcome.result
        reused = sum(1 for e in run.events() if e["event"] == "step_reused")
        assert reused == args.n, reused

        print(f"checkpoints:                    {args.n} (fsync on every record)")
        print(f"first run, whole flow:          {first:.3f} s")
        print(f"overhead per checkpoint median: {median_ms:.3f} ms   (target <= 2 ms)")
        print(f"overhead per checkpoint p90:    {p90_ms:.3f} ms")
        print(f"resume, all {args.n} reused:     {resume_s:.3f} s   (target <= 1 s)")
        ok = median_ms <= 2 and resume_s <= 1
        print("targets met" if ok else "TARGETS MISSED")
        sys.exit(0 if ok else 1)
    finally:
        if args.dir is None:
            import shutil

            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
