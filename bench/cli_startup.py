"""Start-up time of the read-side CLI: how long `agent --help`, `agent runs` and
`agent inspect RUN` take from exec to exit, next to a bare `python -c pass`.

The run inspected is a real finished run: the script builds a sample repository in a
temporary directory and solves its issue with `agent solve --auto-approve` against the
loopback fake Anthropic server (tests/fakes), in this process. Then each command is
timed N times (after warm-ups) and the median is printed, with whether the process
imported the `anthropic` SDK (checked with PYTHONPROFILEIMPORTTIME, i.e. -X importtime).

Targets (DESIGN.md: the SDK is imported only when a model call is about to happen):
`agent --help` <= 0.25 s, `agent inspect RUN` <= 0.35 s.

    python bench/cli_startup.py [--runs 15] [--warmup 2] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e import scenario
from tests.fakes.anthropic_server import FakeAnthropic

TARGETS = {"agent --help": 0.25, "agent inspect RUN": 0.35}


def launcher() -> tuple[list[str], str]:
    """The `agent` console script of this interpreter, else the one on PATH, else -m."""
    here = Path(sysconfig.get_path("scripts")) / "agent"
    if here.is_file() and os.access(here, os.X_OK):
        on_path = shutil.which("agent")
        note = f"console script {here}"
        if on_path and Path(on_path).resolve() != here.resolve():
            note += f" (PATH's `agent` is {on_path}, a wrapper; not used)"
        return [str(here)], note
    on_path = shutil.which("agent")
    if on_path:
        return [on_path], f"console script on PATH: {on_path}"
    return [sys.executable, "-m", "agent_cli"], f"{sys.executable} -m agent_cli (no `agent` on PATH)"


def finished_run(base: Path) -> tuple[Path, str, dict[str, str]]:
    repo = scenario.make_repo(base)
    with FakeAnthropic() as server:
        scenario.script_happy(server)
        env = scenario.agent_env(server, base)
        proc = scenario.agent(["solve", str(base / "ISSUE.md"), "--auto-approve", "--json"],
                              repo, env)
    if proc.returncode != 0:
        sys.exit(f"could not make a finished run (exit {proc.returncode}):\n{proc.stderr}")
    import json

    run_id = json.loads(proc.stdout)["run_id"]
    # The read commands need no model service; drop its variables.
    env = {k: v for k, v in env.items() if not k.startswith("ANTHROPIC_")}
    return repo, run_id, env


def time_once(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, check=False, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed (exit {proc.returncode}):\n{proc.stderr.decode()}")
    return elapsed


def imports_anthropic(argv: list[str], cwd: Path, env: dict[str, str]) -> bool:
    proc = subprocess.run(argv, cwd=cwd, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, check=False,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return any(line.rstrip().endswith(" anthropic") for line in proc.stderr.splitlines())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the temporary repository")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="cli-startup-"))
    try:
        repo, run_id, env = finished_run(base)
        agent, how = launcher()
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "agent --help": [*agent, "--help"],
            "agent runs": [*agent, "runs"],
            "agent inspect RUN": [*agent, "inspect", run_id],
            "agent cost RUN": [*agent, "cost", run_id],
        }
        print(f"python:   {sys.executable} ({sys.version.split()[0]})")
        print(f"agent:    {how}")
        print(f"run:      {run_id} (succeeded) in {repo}")
        print(f"samples:  median of {args.runs} runs after {args.warmup} warm-ups, "
              f"stdout to /dev/null")
        print()
        rows = []
        for name, argv in commands.items():
            for _ in range(args.warmup):
                time_once(argv, repo, env)
            samples = [time_once(argv, repo, env) for _ in range(args.runs)]
            sdk = "-" if name.startswith("python") else (
                "yes" if imports_anthropic(argv, repo, env) else "no")
            target = TARGETS.get(name)
            median = statistics.median(samples)
            verdict = "" if target is None else ("ok" if median <= target else "OVER")
            rows.append((name, median, min(samples), max(samples), sdk,
                         f"<= {target:.2f} s" if target else "", verdict))
        header = ("command", "median s", "min s", "max s", "imports anthropic", "target", "")
        widths = [max(len(str(r[i])) if not isinstance(r[i], float) else 6
                      for r in [*rows, header]) for i in range(len(header))]

        def fmt(row: tuple) -> str:
            cells = [f"{c:.3f}" if isinstance(c, float) else str(c) for c in row]
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        print(fmt(header))
        print(fmt(tuple("-" * w for w in widths)))
        for row in rows:
            print(fmt(row))
        over = [r[0] for r in rows if r[6] == "OVER"]
        sdk = [r[0] for r in rows if r[4] == "yes"]
        print()
        print("targets: " + ("all met" if not over else "missed by " + ", ".join(over)))
        print("anthropic imported by: " + (", ".join(sdk) if sdk else "none of the agent commands"))
        return 1 if over or sdk else 0
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
