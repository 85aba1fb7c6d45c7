"""Flows that make model calls, for the model layer's tests (in-process and as a
real process: python -m tests.llm.llmflow ROOT start|resume ...).

`ask_n(n)` makes n structured calls in one step; with $LLM_BLOCK_AFTER=k it touches
$LLM_MARKER after its k-th call and sleeps, so a test can SIGKILL it there.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from agent_cli.durable import RunStore, checkpoint, create, execute, exit_code, flow
from agent_cli.llm import Connection, ModelService


class Echo(BaseModel):
    """Repeat what you were asked."""

    model_config = ConfigDict(extra="forbid")
    text: str
    n: int


TOOLS = {"submit_echo": Echo}
SYSTEM = "You are a test. " + "Stable system prompt text. " * 60
SERVICE: ModelService | None = None


def ask(i: int, context: str = "shared context " * 50) -> Echo:
    assert SERVICE is not None
    return SERVICE.ask(Echo, tool="submit_echo", tools=TOOLS, system=SYSTEM,
                       context=[context], instruction=f"call {i}")


@checkpoint(uses_model=True)
def ask_n(n: int) -> list[Echo]:
    out = []
    for i in range(1, n + 1):
        out.append(ask(i))
        if os.environ.get("LLM_BLOCK_AFTER") == str(i):
            Path(os.environ["LLM_MARKER"]).write_text(str(os.getpid()))
            time.sleep(600)
    return out


@flow
def calls(n: int) -> list[Echo]:
    return ask_n(n)


def service_for(root: Path, base_url: str | None, api_key: str | None, retries: int = 2) -> ModelService:
    return ModelService(Connection(api_key=api_key, base_url=base_url, timeout=10,
                                   max_retries=retries), root / "runs")


def main() -> int:
    global SERVICE
    p = argparse.ArgumentParser()
    p.add_argument("root", type=Path)
    p.add_argument("command", choices=["start", "resume"])
    p.add_argument("--run")
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--model", default="sonnet")
    args = p.parse_args()
    SERVICE = service_for(args.root, os.environ.get("ANTHROPIC_BASE_URL"),
                          os.environ.get("ANTHROPIC_API_KEY"))
    store = RunStore(args.root)
    if args.command == "start":
        run = create(store, calls, {"n": args.n}, settings={"model": args.model})
        print(run.id, flush=True)
    else:
        run = store.resolve(args.run)
    outcome = execute(run, calls)
    print(outcome.status, outcome.reason or "", flush=True)
    return exit_code(outcome)


if __name__ == "__main__":
    sys.exit(main())
