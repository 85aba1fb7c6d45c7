"""Helper tools: the model reads before it answers; every round trip is journaled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from agent_cli.durable import RunStore, checkpoint, create, execute, flow
from agent_cli.llm import service as llm_service
from tests.fakes.anthropic_server import FakeAnthropic, message_reply, text_reply, tool_reply
from tests.llm import llmflow
from tests.llm.llmflow import Echo

KEY = "sk-ant-test-key"


class Look(BaseModel):
    """Look something up."""

    model_config = ConfigDict(extra="forbid")
    what: str


TOOLS = {"submit_echo": Echo, "look": Look}


class Lookups:
    names = frozenset({"look"})
    max_calls = 2

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict, int]] = []

    def run(self, name: str, tool_input: dict[str, Any], room_chars: int) -> tuple[str, bool]:
        self.seen.append((name, tool_input, room_chars))
        if "what" not in tool_input:
            return "look: `what` is required", True
        return f"the answer to {tool_input['what']} is 42", False


HELPERS = Lookups()


@checkpoint(uses_model=True)
def ask_with_lookups() -> Echo:
    assert llmflow.SERVICE is not None
    return llmflow.SERVICE.ask(Echo, tool="submit_echo", tools=TOOLS, system=llmflow.SYSTEM,
                               context=["shared context " * 50],
                               instruction="You may call look first. Then call submit_echo.",
                               helpers=HELPERS)


@flow
def lookups() -> Echo:
    return ask_with_lookups()


@pytest.fixture
def server(fake_anthropic: FakeAnthropic) -> FakeAnthropic:
    fake_anthropic.min_cacheable_tokens = 50
    fake_anthropic.api_key = KEY
    HELPERS.seen.clear()
    return fake_anthropic


def run_lookups(tmp_path: Path, server: FakeAnthropic):
    root = tmp_path / ".agent"
    llmflow.SERVICE = llmflow.service_for(root, server.base_url, KEY)
    run = create(RunStore(root), lookups, {}, settings={"model": "sonnet"})
    return run, execute(run, lookups)


def breakpoints(body: dict) -> int:
    blocks = [*body["system"], *[b for m in body["messages"] for b in m["content"]
                                 if isinstance(m["content"], list)]]
    return sum(1 for b in blocks if "cache_control" in b)


def test_the_model_looks_twice_then_answers_and_each_turn_is_a_journaled_call(
        tmp_path: Path, server: FakeAnthropic) -> None:
    server.route(tool="submit_echo", replies=[
        tool_reply("look", {"what": "a"}), tool_reply("look", {"what": "b"}),
        tool_reply({"text": "done", "n": 42})])
    run, outcome = run_lookups(tmp_path, server)
    assert outcome.status == "succeeded", outcome
    assert outcome.result == Echo(text="done", n=42)
    bodies = [r.body for r in server.requests]
    assert [b["tool_choice"] for b in bodies] == [{"type": "any"}, {"type": "any"},
                                                   {"type": "tool", "name": "submit_echo"}]
    last = bodies[2]["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "user", "assistant", "user"]
    assert last[2]["content"][0]["content"] == "the answer to a is 42"
    assert last[4]["content"][0]["content"] == "the answer to b is 42"
    assert "That was the last read" in last[4]["content"][-1]["text"]
    assert all(breakpoints(b) <= 4 for b in bodies)
    assert "cache_control" not in last[2]["content"][0]  # moved to the newest result
    assert server.requests[2].usage["cache_read_input_tokens"] > 0  # turn 1 read from cache
    calls = [json.loads(p.read_text()) for p in sorted(run.calls_dir.glob("*.json"))]
    assert [c["call_index"] for c in calls] == [1, 2, 3]
    assert HELPERS.seen[0][2] > HELPERS.seen[1][2] > 100_000  # room shrinks as text is added


def test_a_helper_error_goes_back_as_an_error_result(tmp_path: Path, server: FakeAnthropic) -> None:
    server.route(tool="submit_echo", replies=[tool_reply("look", {"wat": 1}),
                                              tool_reply({"text": "ok", "n": 1})])
    _, outcome = run_lookups(tmp_path, server)
    assert outcome.status == "succeeded"
    result = server.requests[1].body["messages"][2]["content"][0]
    assert result["is_error"] is True and "required" in result["content"]


def test_an_invalid_answer_after_reads_gets_a_forced_repair_turn(
        tmp_path: Path, server: FakeAnthropic) -> None:
    server.route(tool="submit_echo", replies=[tool_reply("look", {"what": "a"}),
                                              text_reply("I think 42"),
                                              tool_reply({"text": "ok", "n": 42})])
    _, outcome = run_lookups(tmp_path, server)
    assert outcome.status == "succeeded", outcome
    assert server.requests[2].body["tool_choice"] == {"type": "tool", "name": "submit_echo"}


def test_requests_without_helpers_still_force_the_tool(tmp_path: Path, server: FakeAnthropic) -> None:
    request = llm_service.build_request(model="m", max_tokens=10, tool="submit_echo", tools=TOOLS,
                                        system="s", context=["c"], instruction="i")
    assert request["tool_choice"] == {"type": "tool", "name": "submit_echo"}
    assert breakpoints(request) == 2


def test_reads_past_the_limit_in_one_turn_are_answered_but_not_run(
        tmp_path: Path, server: FakeAnthropic) -> None:
    many = [{"type": "tool_use", "id": f"toolu_{i}", "name": "look", "input": {"what": str(i)}}
            for i in range(6)]
    server.route(tool="submit_echo", replies=[message_reply(many, stop_reason="tool_use"),
                                              tool_reply({"text": "ok", "n": 1})])
    _, outcome = run_lookups(tmp_path, server)
    assert outcome.status == "succeeded", outcome
    assert len(HELPERS.seen) == 2  # max_calls
    results = server.requests[1].body["messages"][2]["content"]
    assert [r["tool_use_id"] for r in results if r["type"] == "tool_result"] == \
        [f"toolu_{i}" for i in range(6)]
    assert sum(1 for r in results if r.get("is_error")) == 4
    assert server.requests[1].body["tool_choice"] == {"type": "tool", "name": "submit_echo"}
