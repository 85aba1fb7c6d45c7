"""The model layer through the real anthropic SDK against the loopback fake."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from agent_cli.durable import RunStore, checkpoint, create, execute, flow
from agent_cli.llm.pricing import price_call
from tests.fakes.anthropic_server import FakeAnthropic, error_reply, text_reply, tool_reply
from tests.llm import llmflow
from tests.llm.llmflow import Echo

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-ant-test-key"


@pytest.fixture
def server(fake_anthropic: FakeAnthropic) -> FakeAnthropic:
    fake_anthropic.min_cacheable_tokens = 50
    fake_anthropic.api_key = KEY
    return fake_anthropic


def run_calls(tmp_path: Path, server: FakeAnthropic, n: int, *, model: str = "sonnet",
              retries: int = 2, key: str = KEY, settings: dict | None = None):
    root = tmp_path / ".agent"
    llmflow.SERVICE = llmflow.service_for(root, server.base_url, key, retries)
    store = RunStore(root)
    run = create(store, llmflow.calls, {"n": n}, settings={"model": model, **(settings or {})})
    return run, execute(run, llmflow.calls)


def calls_of(run) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(run.calls_dir.glob("*.json"))]


def test_structured_output_with_one_repair_turn(tmp_path: Path, server: FakeAnthropic) -> None:
    server.script(tool_reply({"text": "hi"}), tool_reply({"text": "hi", "n": 1}))
    run, outcome = run_calls(tmp_path, server, 1)
    assert outcome.status == "succeeded", outcome
    assert outcome.result == [Echo(text="hi", n=1)]
    repair = server.requests[1].body
    last = repair["messages"][-1]["content"][0]
    assert last["type"] == "tool_result" and last["is_error"] is True
    assert "n: Field required" in last["content"]
    assert [c["call_index"] for c in calls_of(run)] == [1, 2]


def test_invalid_twice_is_a_typed_error_naming_the_step(tmp_path: Path, server: FakeAnthropic) -> None:
    server.script(text_reply("no tool"), tool_reply({"text": "still no n"}))
    run, outcome = run_calls(tmp_path, server, 1)
    assert outcome.status == "failed"
    assert outcome.error["type"] == "StructuredOutputError"
    assert "ask_n: the model's submit_echo input did not validate" in outcome.error["message"]


def test_second_call_reads_the_cached_prefix_and_costs_less(tmp_path: Path, server: FakeAnthropic) -> None:
    server.script(tool_reply({"text": "a", "n": 1}), tool_reply({"text": "b", "n": 2}))
    run, outcome = run_calls(tmp_path, server, 2)
    assert outcome.status == "succeeded"
    first, second = calls_of(run)
    assert first["usage"]["cache_write"] > 0 and first["usage"]["cache_read"] == 0
    assert second["usage"]["cache_read"] > 0 and second["usage"]["cache_write"] == 0
    assert second["usage"]["cache_read"] == first["usage"]["cache_write"]
    assert second["cost_usd"] < first["cost_usd"]
    assert first["cost_usd"] == pytest.approx(price_call("claude-sonnet-5-5", first["usage"], {})[0])
    step = json.loads(next(run.steps_dir.glob("*ask_n.json")).read_text())
    assert step["usage"]["cache_read"] == second["usage"]["cache_read"]
    assert step["cost_usd"] == pytest.approx(first["cost_usd"] + second["cost_usd"])


def test_529_then_200_succeeds_and_records_the_retry(tmp_path: Path, server: FakeAnthropic) -> None:
    server.script(error_reply(529, retry_after_ms=1), tool_reply({"text": "ok", "n": 1}))
    run, outcome = run_calls(tmp_path, server, 1)
    assert outcome.status == "succeeded"
    assert [r.status for r in server.requests] == [529, 200]
    assert calls_of(run)[0]["retries"] == 1


def test_persistent_529_leaves_a_resumable_failed_run(tmp_path: Path, server: FakeAnthropic) -> None:
    server.script(*[error_reply(529, retry_after_ms=1)] * 3)
    run, outcome = run_calls(tmp_path, server, 1, retries=2)
    assert outcome.status == "failed"
    assert len(server.requests) == 3
    assert outcome.error["type"] == "ServiceUnavailable"
    assert "529 overloaded_error" in outcome.error["message"]
    assert "resume" in outcome.error["hint"]
    assert run.load()["status"] == "failed"

    server.script(tool_reply({"text": "back", "n": 1}))
    again = execute(run, llmflow.calls)
    assert again.status == "succeeded" and again.result == [Echo(text="back", n=1)]


def test_401_names_the_key_variable(tmp_path: Path, server: FakeAnthropic) -> None:
    run, outcome = run_calls(tmp_path, server, 1, key="sk-ant-wrong")
    assert outcome.status == "failed"
    assert outcome.error["type"] == "AuthError"
    assert "ANTHROPIC_API_KEY" in outcome.error["hint"]
    assert len(server.requests) == 1  # a 401 is not retried


def test_unknown_model_without_price_records_unknown_cost(tmp_path: Path, server: FakeAnthropic) -> None:
    server.script(tool_reply({"text": "a", "n": 1}))
    run, outcome = run_calls(tmp_path, server, 1, model="my-local-llama")
    assert outcome.status == "succeeded"
    call = calls_of(run)[0]
    assert call["model"] == "my-local-llama"
    assert call["cost_usd"] is None and call["price_source"] == "unknown"
    step = json.loads(next(run.steps_dir.glob("*ask_n.json")).read_text())
    assert step["cost_usd"] is None


def test_price_override_prices_an_unknown_model(tmp_path: Path, server: FakeAnthropic) -> None:
    server.script(tool_reply({"text": "a", "n": 1}))
    prices = {"my-local-llama": {"input": 1.0, "output": 2.0}}
    run, outcome = run_calls(tmp_path, server, 1, model="my-local-llama",
                             settings={"prices": prices})
    call = calls_of(run)[0]
    u = call["usage"]
    expected = (u["input"] * 1.0 + u["output"] * 2.0 + u["cache_write"] * 1.25
                + u["cache_read"] * 0.1) / 1e6
    assert call["cost_usd"] == pytest.approx(expected) and call["price_source"] == "settings"


def test_budget_suspends_before_the_call_that_would_pass_it(tmp_path: Path, server: FakeAnthropic) -> None:
    # Input is free and an output token costs $0.001, so a call is estimated at $0.01
    # (all 10 max_tokens) and really costs a few tokens' worth.
    settings = {"max_cost": 0.012, "max_tokens": 10,
                "prices": {"m-test": {"input": 0, "output": 1000, "cache_write": 0, "cache_read": 0}}}
    server.script(*(tool_reply({"text": "a", "n": i}, output_tokens=4) for i in (1, 2, 3)))
    run, outcome = run_calls(tmp_path, server, 3, model="m-test", settings=settings)
    # call 1: $0 + $0.01 fits in $0.012; call 2: $0.004 paid + $0.01 would not
    assert outcome.status == "waiting", outcome
    pending = run.load()["pending_wait"]
    assert pending["key"] == "budget@ask_n#2" and pending["within"] == "ask_n"
    assert pending["question"].startswith("budget reached: $0.00 of $0.01 spent")
    assert len(server.requests) == 1

    # +$0.005 lets call 2 through ($0.014 <= $0.017) but not call 3 ($0.018): asked again,
    # at call 3, not answered with the old yes.
    again = execute(run, llmflow.calls, answer={"approved": True, "budget": 0.005})
    assert again.status == "waiting", again
    assert run.load()["pending_wait"]["key"] == "budget@ask_n#3"
    assert len(server.requests) == 2

    done = execute(run, llmflow.calls, answer={"approved": True, "budget": 1.0})
    assert done.status == "succeeded", done
    assert len(server.requests) == 3  # answered calls came from the journal
    paid = [(c["call_index"], c["served_from"] is None) for c in calls_of(run)]
    assert paid == [(1, True), (1, False), (2, True), (1, False), (2, False), (3, True)]
    assert [a["answer"]["budget"] for a in run.load()["answers"]] == [0.005, 1.0]


def test_rejecting_the_budget_ends_the_run_rejected(tmp_path: Path, server: FakeAnthropic) -> None:
    settings = {"max_cost": 0.012, "max_tokens": 10,
                "prices": {"m-test": {"input": 0, "output": 1000, "cache_write": 0, "cache_read": 0}}}
    server.script(tool_reply({"text": "a", "n": 1}, output_tokens=4))
    run, outcome = run_calls(tmp_path, server, 2, model="m-test", settings=settings)
    assert outcome.status == "waiting"
    stopped = execute(run, llmflow.calls, answer={"approved": False, "reason": "too dear"})
    assert stopped.status == "rejected" and stopped.reason == "too dear"
    assert run.load()["status"] == "rejected"


def test_resume_after_an_invalid_answer_asks_the_model_again(tmp_path: Path, server: FakeAnthropic) -> None:
    server.script(text_reply("no tool"), tool_reply({"text": "still no n"}))
    run, outcome = run_calls(tmp_path, server, 1)
    assert outcome.error["type"] == "StructuredOutputError"
    server.script(tool_reply({"text": "ok", "n": 1}))
    again = execute(run, llmflow.calls)
    assert again.status == "succeeded" and again.result == [Echo(text="ok", n=1)]
    assert len(server.requests) == 3


def test_killed_after_2_of_4_calls_resume_makes_exactly_2_more(tmp_path: Path, server: FakeAnthropic) -> None:
    server.route(tool="submit_echo", when=lambda r: True,
                 reply=lambda r: tool_reply({"text": r.last_user_text.splitlines()[-1], "n": 1}))
    root = tmp_path / ".agent"
    env = {**os.environ, **server.env(KEY), "LLM_MARKER": str(tmp_path / "marker"),
           "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "tests.llm.llmflow", str(root)]
    proc = subprocess.Popen([*cmd, "start", "--n", "4"], env={**env, "LLM_BLOCK_AFTER": "2"},
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "marker").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    run_id = proc.stdout.readline().strip()  # type: ignore[union-attr]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert len(server.requests) == 2

    resumed = subprocess.run([*cmd, "resume", "--run", run_id], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert len(server.requests) == 4
    result = json.loads((root / "runs" / run_id / "run.json").read_text())["result"]
    assert [r["text"] for r in result] == ["call 1", "call 2", "call 3", "call 4"]


def test_replay_model_reproduces_a_recorded_run(tmp_path: Path, server: FakeAnthropic) -> None:
    server.script(tool_reply({"text": "x", "n": 1}), tool_reply({"text": "y", "n": 2}),
                  tool_reply({"text": "z", "n": 3}))
    recorded, first = run_calls(tmp_path, server, 3)
    assert first.status == "succeeded"

    replayed, again = run_calls(tmp_path, server, 3, model=f"replay:{recorded.id}")
    assert again.status == "succeeded"
    assert again.result == first.result
    assert len(server.requests) == 3  # nothing new reached the service
    calls = calls_of(replayed)
    assert all(c["cost_usd"] == 0 and c["served_from"].startswith(f"replay:{recorded.id}/")
               for c in calls)
    assert sum(c["original_cost_usd"] for c in calls) == pytest.approx(
        sum(c["cost_usd"] for c in calls_of(recorded)))


def test_replay_model_without_the_call_is_a_clear_error(tmp_path: Path, server: FakeAnthropic) -> None:
    server.script(tool_reply({"text": "x", "n": 1}))
    recorded, _ = run_calls(tmp_path, server, 1)
    _, outcome = run_calls(tmp_path, server, 2, model=f"replay:{recorded.id}")
    assert outcome.status == "failed"
    assert outcome.error["type"] == "ReplayMissing"
    assert "has no call #2 for step ask_n" in outcome.error["message"]


def test_canary_key_is_written_nowhere_under_agent_dir(tmp_path: Path, server: FakeAnthropic) -> None:
    canary = "sk-ant-CANARY-7f3a9c"
    server.api_key = canary
    server.script(error_reply(529, retry_after_ms=1), tool_reply({"text": "a", "n": 1}))
    run, outcome = run_calls(tmp_path, server, 1, key=canary)
    assert outcome.status == "succeeded"
    sent = server.requests[0].headers
    assert canary in (sent.get("x-api-key", "") + sent.get("authorization", ""))  # it was used
    for path in (tmp_path / ".agent").rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path


class Small(BaseModel):
    value: int


@checkpoint
def outside_model() -> Small:
    assert llmflow.SERVICE is not None
    return llmflow.SERVICE.ask(Small, tool="submit_small", tools={"submit_small": Small},
                               system="s", context=[], instruction="go")


@flow
def small_flow() -> Small:
    return outside_model()


def test_prompt_too_long_names_the_step(tmp_path: Path, server: FakeAnthropic) -> None:
    server.context_window = 10
    root = tmp_path / ".agent"
    llmflow.SERVICE = llmflow.service_for(root, server.base_url, KEY)
    run = create(RunStore(root), small_flow, {}, settings={"model": "sonnet"})
    outcome = execute(run, small_flow)
    assert outcome.status == "failed"
    assert outcome.error["type"] == "PromptTooLong"
    assert outcome.error["message"].startswith("outside_model: the prompt is too long")
