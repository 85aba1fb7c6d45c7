"""A toy flow driven as a real process by the durable engine's tests.

Usage: python -m tests.durable.toyflow ROOT COMMAND [options]
Each executed checkpoint appends its key to $TOY_COUNTS. When the executing step's
key equals $TOY_BLOCK_AT, it touches $TOY_MARKER and sleeps, so a test can SIGKILL
the process inside that step. Step 2's input comes from $TOY_STEP2 (default "b").
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from pydantic import BaseModel

from agent_cli.durable import (
    RunStore,
    checkpoint,
    config,
    create,
    current_step,
    execute,
    exit_code,
    flow,
    fork,
    wait,
)


class Out(BaseModel):
    key: str
    value: str
    model: str | None = None


class Approval(BaseModel):
    approved: bool
    comment: str | None = None


class Stopped(BaseModel):
    run_status: str = "rejected"
    reason: str = "rejected at the gate"


def _side_effect() -> str:
    scope = current_step()
    key = scope.key if scope else "?"
    with open(os.environ["TOY_COUNTS"], "a") as f:
        f.write(key + "\n")
    if os.environ.get("TOY_BLOCK_AT") == key:
        Path(os.environ["TOY_MARKER"]).write_text(str(os.getpid()))
        time.sleep(600)
    if os.environ.get("TOY_FAIL_AT") == key:
        raise RuntimeError(f"scripted failure in {key}")
    return key


def _make_step(name: str):
    @checkpoint(name=name, uses_model=True)
    def step(value: str) -> Out:
        key = _side_effect()
        return Out(key=key, value=f"{value}>{name}", model=config().get("model"))

    return step


s1, s2, s3, s4, s5 = (_make_step(f"s{i}") for i in range(1, 6))


@checkpoint
def iterate(i: int) -> Out:
    key = _side_effect()
    return Out(key=key, value=str(i))


@flow
def five(x: str, with_wait: bool = False) -> Out | Stopped:
    a = s1(x)
    b = s2(a.value + "|" + os.environ.get("TOY_STEP2", "b"))
    if with_wait:
        answer = wait("approve", "go on?", Approval, {"so_far": b.value})
        if not answer.approved:
            return Stopped()
    c = s3(b.value + "|" + str(config().get("model")))  # flow code reading a setting
    d = s4(c.value)
    return s5(d.value)


@flow
def loop(n: int) -> Out:
    last = Out(key="none", value="")
    for i in range(n):
        last = iterate(i)
    return last


FLOWS = {"five": five, "loop": loop}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("root", type=Path)
    p.add_argument("command", choices=["start", "resume", "approve", "reject", "replay"])
    p.add_argument("--flow", default="five")
    p.add_argument("--run")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--model", default=None)
    p.add_argument("--from", dest="from_step")
    args = p.parse_args()
    store = RunStore(args.root)
    fn = FLOWS[args.flow]
    if args.command == "start":
        inputs = {"x": "start", "with_wait": args.wait} if args.flow == "five" else {"n": args.n}
        run = create(store, fn, inputs, settings={"model": args.model or "m1"})
        print(run.id, flush=True)
        outcome = execute(run, fn)
    elif args.command == "replay":
        child = fork(store, store.resolve(args.run), args.from_step, {"model": args.model})
        print(child.id, flush=True)
        outcome = execute(child, fn)
    else:
        run = store.resolve(args.run)
        answer = None
        if args.command in ("approve", "reject"):
            answer = {"approved": args.command == "approve"}
        outcome = execute(run, fn, answer=answer)
    print(outcome.status, outcome.reason or "", flush=True)
    return exit_code(outcome)


if __name__ == "__main__":
    from agent_cli.errors import AgentError

    try:
        sys.exit(main())
    except AgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
