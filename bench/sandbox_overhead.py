"""What confinement costs a test run: the same command started plain, through the
unconfined supervisor (_reaper.py), and under bubblewrap.

    python bench/sandbox_overhead.py [--runs N]

Two commands: `python -c pass` (start-up cost alone) and the demo project's pytest
suite through `run_tests` (what a run pays per test stage, JUnit parsing included).
Prints min / median / max seconds per way. Figures, not a pass/fail target: a test
stage on a real repository takes seconds to minutes, so tens of milliseconds of
set-up are the number to watch.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent_cli.workspace.sandbox import Sandbox, probe  # noqa: E402
from agent_cli.workspace.testrun import run_tests  # noqa: E402


def timed(fn, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    fn()  # warm-up: file cache, probe
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def show(label: str, xs: list[float]) -> None:
    print(f"  {label:<28} min {min(xs) * 1000:7.1f} ms   median "
          f"{statistics.median(xs) * 1000:7.1f} ms   max {max(xs) * 1000:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    bwrap = probe()[0] is not None
    ways: dict[str, Sandbox | None] = {"plain subprocess": None,
                                       "unconfined (supervisor)": Sandbox(mode="off")}
    if bwrap:
        ways["bubblewrap"] = Sandbox(mode="required")
    else:
        print(f"bubblewrap unavailable ({probe()[2]}): its rows are missing")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"python -c pass, {runs} runs")
        for label, box in ways.items():
            def once(box: Sandbox | None = box) -> None:
                if box is None:
                    subprocess.run([sys.executable, "-c", "pass"], cwd=work, check=True)
                else:
                    proc = box.start([sys.executable, "-c", "pass"], cwd=work)
                    proc.popen.communicate()
                    proc.kill()
                    proc.close()
            show(label, timed(once, runs))

        project = work / "shop"
        shutil.copytree(ROOT / "agent_cli" / "demo" / "project", project)
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        print(f"the demo project's pytest suite through run_tests, {runs} runs")
        for label, box in ways.items():
            if box is None:
                continue
            result = run_tests(project, pytest, sandbox=box)
            assert result.junit and result.tests, result.output_tail
            show(label, timed(lambda box=box: run_tests(project, pytest, sandbox=box), runs))


if __name__ == "__main__":
    main()
