"""The fake Anthropic service, exercised through the real ``anthropic`` SDK.

These tests also pin the SDK's wire behaviour the client code relies on (auth
header, retry counting, retry-after handling, error classes).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import anthropic
import pytest

from .anthropic_server import (
    FakeAnthropic,
    FakeRequest,
    approx_tokens,
    delay,
    error_reply,
    message_reply,
    text_reply,
    tool_reply,
)

# The fixtures; the top-level conftest enables the same plugin for every test.
pytest_plugins = ["tests.fakes.plugin"]

ROOT = Path(__file__).resolve().parents[2]
MODEL = "claude-sonnet-4-6"
SUBMIT = {
    "name": "submit_plan",
    "description": "Submit the plan.",
    "input_schema": {
        "type": "object",
        "properties": {"steps": {"type": "array"}},
        "required": ["steps"],
    },
}
OTHER = {"name": "submit_edits", "input_schema": {"type": "object", "properties": {}}}


_HTTP: list[Any] = []


def client(server: FakeAnthropic, **options: Any) -> anthropic.Anthropic:
    # One shared connection pool: building the SDK's default one costs ~20 ms each.
    if not _HTTP:
        _HTTP.append(anthropic.DefaultHttpxClient())
    options.setdefault("http_client", _HTTP[0])
    options.setdefault("max_retries", 0)
    options.setdefault("api_key", "test-key")
    return anthropic.Anthropic(base_url=server.base_url, **options)


def ask(c: anthropic.Anthropic, text: str = "hello", **params: Any) -> anthropic.types.Message:
    params.setdefault("model", MODEL)
    params.setdefault("max_tokens", 1024)
    return c.messages.create(messages=[{"role": "user", "content": text}], **params)


def raw_post(
    server: FakeAnthropic, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict]:
    """POST without the SDK, to send what the SDK itself would refuse to."""
    hdrs = {"content-type": "application/json", "x-api-key": "k", "anthropic-version": "2023-06-01"}
    hdrs.update(headers or {})
    hdrs = {k: v for k, v in hdrs.items() if v is not None}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        server.base_url + "/v1/messages", data=data, headers=hdrs, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# ------------------------------------------------------------------ replies


def test_tool_reply_is_parsed_by_the_sdk_into_a_tool_use_block(
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.script(tool_reply({"steps": ["a", "b"]}))
    msg = ask(
        client(fake_anthropic),
        tools=[SUBMIT, OTHER],
        tool_choice={"type": "tool", "name": "submit_plan"},
    )

    assert msg.stop_reason == "tool_use"
    (block,) = msg.content
    assert isinstance(block, anthropic.types.ToolUseBlock)
    assert block.name == "submit_plan"  # defaulted to the forced tool
    assert block.input == {"steps": ["a", "b"]}
    assert block.id.startswith("toolu_") and msg.id.startswith("msg_")
    assert msg.model == MODEL
    assert msg._request_id and msg._request_id.startswith("req_")
    assert msg.usage.output_tokens == approx_tokens("submit_plan" + '{"steps":["a","b"]}')

    (rec,) = fake_anthropic.requests
    assert (rec.method, rec.path, rec.status, rec.tool, rec.model, rec.retry_count) == (
        "POST", "/v1/messages", 200, "submit_plan", MODEL, 0,
    )  # fmt: skip
    assert rec.body["tool_choice"] == {"type": "tool", "name": "submit_plan"}
    assert rec.response is not None and rec.response["content"][0]["input"] == {"steps": ["a", "b"]}


def test_text_reply_and_usage_counts(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(text_reply("Hi there, I am a fake."))
    msg = ask(client(fake_anthropic), "x" * 41, system="be brief")

    assert isinstance(msg.content[0], anthropic.types.TextBlock)
    assert msg.content[0].text == "Hi there, I am a fake."
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert msg.usage.input_tokens == math.ceil(len("be brief") / 4) + math.ceil(41 / 4)
    assert msg.usage.output_tokens == math.ceil(len("Hi there, I am a fake.") / 4)
    assert msg.usage.cache_creation_input_tokens == 0 and msg.usage.cache_read_input_tokens == 0


def test_message_reply_and_explicit_output_tokens(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(
        message_reply(
            [
                {"type": "text", "text": "Two calls."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "submit_plan",
                    "input": {"steps": []},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "submit_edits", "input": {}},
            ],
            stop_reason="tool_use",
            output_tokens=77,
        )
    )
    msg = ask(client(fake_anthropic), tools=[SUBMIT, OTHER])
    assert [b.type for b in msg.content] == ["text", "tool_use", "tool_use"]
    assert msg.usage.output_tokens == 77


def test_reply_longer_than_max_tokens_is_cut_off(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(text_reply("word " * 100), tool_reply({"steps": ["x" * 200]}))
    c = client(fake_anthropic)

    cut = ask(c, max_tokens=10)
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 10
    assert cut.content[0].text == ("word " * 100)[:40]

    cut_tool = ask(
        c, max_tokens=10, tools=[SUBMIT], tool_choice={"type": "tool", "name": "submit_plan"}
    )
    assert cut_tool.stop_reason == "max_tokens"
    assert cut_tool.content[0].type == "tool_use" and cut_tool.content[0].input == {}


def test_callable_reply_sees_the_request(fake_anthropic: FakeAnthropic) -> None:
    seen: list[FakeRequest] = []

    def echo(req: FakeRequest) -> Any:
        seen.append(req)
        return text_reply(f"you said {req.last_user_text!r} to {req.model}")

    fake_anthropic.script(echo)
    msg = ask(client(fake_anthropic), "ping")
    assert msg.content[0].text == f"you said 'ping' to {MODEL}"
    assert seen[0].retry_count == 0 and seen[0].index == 0


# ------------------------------------------------------------------ prompt caching


def _cached_call(
    c: anthropic.Anthropic, system: str, question: str, **params: Any
) -> anthropic.types.Message:
    return ask(
        c,
        question,
        system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
        **params,
    )


def test_shared_system_prefix_is_written_then_read(fake_anthropic_factory: Any) -> None:
    server = fake_anthropic_factory(min_cacheable_tokens=50)
    server.script(text_reply("one"), text_reply("two"))
    c = client(server)
    system = "You are a meticulous engineer. " * 20
    prefix_tokens = approx_tokens(system)

    first = _cached_call(c, system, "first question")
    second = _cached_call(c, system, "second, longer question here")

    assert first.usage.cache_creation_input_tokens == prefix_tokens
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == prefix_tokens
    assert second.usage.cache_read_input_tokens == prefix_tokens
    assert second.usage.cache_creation_input_tokens == 0
    assert (
        second.usage.input_tokens
        < first.usage.input_tokens + first.usage.cache_creation_input_tokens
    )
    assert second.usage.input_tokens == approx_tokens("second, longer question here")


def test_prefix_below_minimum_is_not_cached(fake_anthropic: FakeAnthropic) -> None:
    # Default min_cacheable_tokens is 1024, as for Sonnet.
    fake_anthropic.script(text_reply("a"), text_reply("b"))
    c = client(fake_anthropic)
    for _ in range(2):
        msg = _cached_call(c, "short system prompt", "q")
        assert msg.usage.cache_creation_input_tokens == 0 and msg.usage.cache_read_input_tokens == 0


def test_growing_conversation_reads_old_prefix_and_writes_the_rest(
    fake_anthropic_factory: Any,
) -> None:
    server = fake_anthropic_factory(min_cacheable_tokens=10)
    server.script(text_reply("answer one"), text_reply("answer two"))
    c = client(server)
    cc = {"type": "ephemeral"}
    turn1 = [{"role": "user", "content": [{"type": "text", "text": "a" * 80, "cache_control": cc}]}]
    first = c.messages.create(model=MODEL, max_tokens=100, messages=turn1)
    assert first.usage.cache_creation_input_tokens == 20

    # The next turn moves the breakpoint to the new last block (the usual pattern);
    # the service finds the earlier prefix by looking back from the new breakpoint.
    turn2 = [
        {"role": "user", "content": [{"type": "text", "text": "a" * 80}]},
        {"role": "assistant", "content": "answer one"},
        {"role": "user", "content": [{"type": "text", "text": "b" * 40, "cache_control": cc}]},
    ]
    second = c.messages.create(model=MODEL, max_tokens=100, messages=turn2)
    assert second.usage.cache_read_input_tokens == 20
    assert second.usage.cache_creation_input_tokens == approx_tokens("answer one") + 10
    assert second.usage.input_tokens == 0


def test_tool_choice_change_invalidates_message_cache_but_not_system(
    fake_anthropic_factory: Any,
) -> None:
    server = fake_anthropic_factory(min_cacheable_tokens=10)
    server.script(tool_reply({"steps": []}), tool_reply({}))
    c = client(server)
    cc = {"type": "ephemeral"}
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "tools": [SUBMIT, OTHER],
        "system": [{"type": "text", "text": "s" * 80, "cache_control": cc}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "m" * 80, "cache_control": cc}]}
        ],
    }
    first = c.messages.create(tool_choice={"type": "tool", "name": "submit_plan"}, **params)
    second = c.messages.create(tool_choice={"type": "tool", "name": "submit_edits"}, **params)
    tools_and_system = first.usage.cache_creation_input_tokens - 20
    assert second.usage.cache_read_input_tokens == tools_and_system
    assert second.usage.cache_creation_input_tokens == 20  # the message block again


def test_cache_is_per_model(fake_anthropic_factory: Any) -> None:
    server = fake_anthropic_factory(min_cacheable_tokens=10)
    server.script(text_reply("a"), text_reply("b"))
    c = client(server)
    _cached_call(c, "p" * 100, "q", model="claude-haiku-4-5")
    other = _cached_call(c, "p" * 100, "q", model="claude-opus-4-6")
    assert (
        other.usage.cache_read_input_tokens == 0 and other.usage.cache_creation_input_tokens == 25
    )
    assert server.models() == ["claude-haiku-4-5", "claude-opus-4-6"]


def test_max_tokens_zero_prewarms_without_consuming_the_script(fake_anthropic_factory: Any) -> None:
    server = fake_anthropic_factory(min_cacheable_tokens=10)
    server.script(text_reply("real answer"))
    c = client(server)
    warm = _cached_call(c, "p" * 100, "q", max_tokens=0)
    assert warm.content == [] and warm.usage.cache_creation_input_tokens == 25
    real = _cached_call(c, "p" * 100, "q")
    assert real.content[0].text == "real answer" and real.usage.cache_read_input_tokens == 25


def test_creation_is_split_by_breakpoint_ttl(fake_anthropic_factory: Any) -> None:
    server = fake_anthropic_factory(min_cacheable_tokens=10)
    server.script(text_reply("ok"))
    msg = client(server).messages.create(
        model=MODEL,
        max_tokens=10,
        system=[
            {"type": "text", "text": "s" * 80, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
        ],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "m" * 40}]},
        ],
        cache_control={"type": "ephemeral"},  # top level: lands on the last block
    )
    assert msg.usage.cache_creation.ephemeral_1h_input_tokens == 20
    assert msg.usage.cache_creation.ephemeral_5m_input_tokens == 10
    assert msg.usage.input_tokens == 0


# ------------------------------------------------------------------ errors and retries


def test_529_then_success_through_the_sdks_own_retry(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(
        error_reply(529, retry_after=0, retry_after_ms=1), text_reply("recovered")
    )
    msg = ask(client(fake_anthropic, max_retries=2))
    assert msg.content[0].text == "recovered"
    assert [(r.status, r.retry_count) for r in fake_anthropic.requests] == [(529, 0), (200, 1)]
    assert fake_anthropic.requests[0].error_type == "overloaded_error"


def test_retry_after_zero_does_not_skip_the_sdk_backoff(fake_anthropic: FakeAnthropic) -> None:
    # anthropic 2.14 obeys only a positive retry-after; 0 means "use exponential
    # backoff", whose first wait is 0.5 s x jitter in [0.75, 1].
    fake_anthropic.script(error_reply(529, retry_after=0), text_reply("ok"))
    started = time.monotonic()
    ask(client(fake_anthropic, max_retries=1))
    assert time.monotonic() - started >= 0.35


def test_persistent_529_raises_overloaded_after_max_retries_plus_one(
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.route(reply=error_reply(529, retry_after_ms=1))
    with pytest.raises(anthropic.OverloadedError) as info:
        ask(client(fake_anthropic, max_retries=2))
    assert isinstance(info.value, anthropic.InternalServerError)
    assert info.value.status_code == 529 and info.value.type == "overloaded_error"
    assert [r.retry_count for r in fake_anthropic.requests] == [0, 1, 2]


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (403, anthropic.PermissionDeniedError),
        (404, anthropic.NotFoundError),
        (413, anthropic.ContentTooLargeError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.OverloadedError),
    ],
)
def test_error_status_maps_to_sdk_exception(
    fake_anthropic: FakeAnthropic, status: int, exc: type
) -> None:
    fake_anthropic.script(error_reply(status, message="scripted failure"))
    with pytest.raises(exc) as info:
        ask(client(fake_anthropic))
    assert info.value.api_message == "scripted failure"
    assert info.value.request_id and info.value.request_id.startswith("req_")


def test_wrong_api_key_is_a_401_and_is_not_retried(fake_anthropic_factory: Any) -> None:
    server = fake_anthropic_factory(api_key="right-key")
    server.script(text_reply("never served"))
    with pytest.raises(anthropic.AuthenticationError, match="invalid x-api-key"):
        ask(client(server, api_key="wrong-key", max_retries=2))
    assert server.count() == 1 and server.pending()  # the script was not consumed
    assert ask(client(server, api_key="right-key")).content[0].text == "never served"


def test_prompt_too_long(fake_anthropic_factory: Any) -> None:
    server = fake_anthropic_factory(context_window=100)
    server.script(text_reply("unused"))
    with pytest.raises(
        anthropic.BadRequestError, match=r"prompt is too long: 101 tokens > 100 maximum"
    ):
        ask(client(server), "x" * 404)
    assert server.pending()


def test_unknown_model_is_a_404(fake_anthropic_factory: Any) -> None:
    server = fake_anthropic_factory(known_models=[MODEL])
    with pytest.raises(anthropic.NotFoundError, match="model: claude-nope"):
        ask(client(server), model="claude-nope")


def test_unscripted_request_is_a_loud_500_without_retries(fake_anthropic: FakeAnthropic) -> None:
    with pytest.raises(anthropic.InternalServerError, match="no scripted reply"):
        ask(client(fake_anthropic, max_retries=3), "what now?")
    (rec,) = fake_anthropic.requests  # x-should-retry: false stopped the SDK retrying
    assert rec.status == 500 and rec.unmatched
    assert fake_anthropic.unmatched == [rec]


def test_delay_lets_the_client_time_out_and_retry(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(delay(3, then=text_reply("too late")), text_reply("on time"))
    msg = ask(client(fake_anthropic, max_retries=1, timeout=0.2))
    assert msg.content[0].text == "on time"
    assert [r.retry_count for r in fake_anthropic.requests] == [0, 1]
    started = time.monotonic()
    fake_anthropic.stop()  # must not wait for the sleeping handler
    assert time.monotonic() - started < 1.5


def test_in_flight_call_is_visible_and_stop_drops_it(fake_anthropic: FakeAnthropic) -> None:
    # The crash-test pattern: hold a call open, wait until it has arrived, act.
    fake_anthropic.script(delay(30, then=text_reply("never")))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            ask(client(fake_anthropic))
        except BaseException as err:  # noqa: BLE001 - collected for the assertion below
            errors.append(err)

    worker = threading.Thread(target=call)
    worker.start()
    (rec,) = fake_anthropic.wait_for_requests(1, timeout=5)
    assert rec.status is None  # arrived, not answered
    fake_anthropic.stop()
    worker.join(timeout=5)
    assert len(errors) == 1 and isinstance(errors[0], anthropic.APIConnectionError)


def test_broken_route_predicate_is_a_loud_500(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.route(when=lambda req: 1 / 0, reply=text_reply("unused"))
    with pytest.raises(anthropic.InternalServerError, match="ZeroDivisionError"):
        ask(client(fake_anthropic, max_retries=2))
    assert fake_anthropic.count(status=500) == 1


def test_sdk_timeout_error_when_retries_are_exhausted(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(delay(3, then=text_reply("too late")))
    with pytest.raises(anthropic.APITimeoutError):
        ask(client(fake_anthropic, timeout=0.2))


# ------------------------------------------------------------------ validation


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_body(max_tokens=None), "max_tokens: Field required"),
        (_body(max_tokens="10"), "max_tokens: Input should be a valid integer"),
        (_body(model=None), "model: Field required"),
        (_body(messages=[]), "messages: List should have at least 1 item"),
        (
            _body(messages=[{"role": "assistant", "content": "hi"}]),
            'first message must use the "user" role',
        ),
        (
            _body(messages=[{"role": "bot", "content": "hi"}]),
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            _body(messages=[{"role": "user", "content": 5}]),
            "messages.0.content: Input should be a valid string",
        ),
        (_body(messages=[{"role": "user", "content": ""}]), "must have non-empty content"),
        (
            _body(messages=[{"role": "user", "content": [{"type": "txt", "text": "a"}]}]),
            "Input tag 'txt'",
        ),
        (_body(temprature=0.5), "temprature: Extra inputs are not permitted"),
        (_body(tools=[{"name": "t"}]), "tools.0.custom.input_schema: Field required"),
        (
            _body(tools=[{"input_schema": {"type": "object"}}]),
            "tools.0.custom.name: Field required",
        ),
        (
            _body(tools=[SUBMIT], tool_choice={"type": "tool", "name": "nope"}),
            "Tool 'nope' not found",
        ),
        (
            _body(tool_choice={"type": "any"}),
            "tool_choice may only be specified while providing tools",
        ),
        (_body(stream=True), "streaming is not supported by this fake"),
        (
            _body(
                messages=[
                    {"role": "user", "content": "go"},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "tool_use", "id": "toolu_9", "name": "t", "input": {}}
                        ],
                    },
                    {"role": "user", "content": "and?"},
                ]
            ),
            "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_9",
        ),
        (
            _body(
                messages=[
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]}
                ]
            ),
            "unexpected `tool_use_id` found in `tool_result` blocks: toolu_x",
        ),
        (
            _body(
                system=[
                    {"type": "text", "text": f"s{i}", "cache_control": {"type": "ephemeral"}}
                    for i in range(5)
                ]
            ),
            "A maximum of 4 blocks with cache_control may be provided. Found 5.",
        ),
    ],
)
def test_malformed_requests_are_400s(
    fake_anthropic: FakeAnthropic, body: dict, message: str
) -> None:
    fake_anthropic.script(text_reply("unused"))
    status, payload = raw_post(fake_anthropic, body)
    assert status == 400, payload
    assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    assert message in payload["error"]["message"]
    assert fake_anthropic.pending()  # rejected requests never consume the script


def test_consecutive_same_role_messages_are_accepted_and_merged(
    fake_anthropic: FakeAnthropic,
) -> None:
    # Documented: consecutive user (or assistant) turns are combined into one turn.
    fake_anthropic.script(text_reply("fine"))
    status, _ = raw_post(
        fake_anthropic,
        _body(messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]),
    )
    assert status == 200


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({"x-api-key": None}, 401, "x-api-key header is required"),
        ({"x-api-key": None, "authorization": "Bearer k"}, 200, None),
        ({"anthropic-version": None}, 400, "anthropic-version: header is required"),
    ],
)
def test_required_headers(
    fake_anthropic: FakeAnthropic, headers: dict, status: int, message: str | None
) -> None:
    fake_anthropic.script(text_reply("ok"))
    got, payload = raw_post(fake_anthropic, _body(), headers)
    assert got == status
    if message:
        assert payload["error"]["message"] == message


def test_unparseable_body_and_unknown_path(fake_anthropic: FakeAnthropic) -> None:
    status, payload = raw_post(fake_anthropic, b"{not json")
    assert status == 400 and "parsing the body" in payload["error"]["message"]
    req = urllib.request.Request(
        fake_anthropic.base_url + "/v1/complete", data=b"{}", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=5)
    assert info.value.code == 404


# ------------------------------------------------------------------ routing


def test_routes_by_forced_tool_and_last_user_message(fake_anthropic: FakeAnthropic) -> None:
    c = client(fake_anthropic)
    plan = fake_anthropic.route(tool="submit_plan", reply=tool_reply({"steps": ["route"]}))
    app = fake_anthropic.route(
        tool="submit_edits", contains="src/app.py", reply=tool_reply({"file": "app"}), times=1
    )
    fake_anthropic.route(tool="submit_edits", reply=tool_reply({"file": "other"}))
    fake_anthropic.script(text_reply("from the queue"))

    def edits(path: str) -> Any:
        return ask(
            c,
            f"edit {path}",
            tools=[SUBMIT, OTHER],
            tool_choice={"type": "tool", "name": "submit_edits"},
        )

    assert edits("src/app.py").content[0].input == {"file": "app"}
    assert edits("src/app.py").content[0].input == {"file": "other"}  # the one-shot route is spent
    assert edits("src/lib.py").content[0].input == {"file": "other"}
    for _ in range(2):  # a route without times= repeats
        msg = ask(
            c, "plan", tools=[SUBMIT, OTHER], tool_choice={"type": "tool", "name": "submit_plan"}
        )
        assert msg.content[0].input == {"steps": ["route"]}
    assert ask(c, "no tool").content[0].text == "from the queue"

    assert (plan.hits, app.hits, app.exhausted) == (2, 1, True)
    assert (
        fake_anthropic.count(tool="submit_edits") == 3
        and fake_anthropic.count(tool="submit_plan") == 2
    )
    assert fake_anthropic.pending() == []


def test_route_with_a_sequence_of_replies(fake_anthropic: FakeAnthropic) -> None:
    route = fake_anthropic.route(
        tool="submit_plan",
        replies=[error_reply(429, retry_after_ms=1), tool_reply({"steps": ["s"]})],
    )
    msg = ask(
        client(fake_anthropic, max_retries=1),
        tools=[SUBMIT],
        tool_choice={"type": "tool", "name": "submit_plan"},
    )
    assert msg.content[0].input == {"steps": ["s"]}
    assert route.exhausted
    assert [r.status for r in fake_anthropic.find(tool="submit_plan")] == [429, 200]


def test_tool_reply_naming_a_tool_the_request_lacks_is_a_loud_500(
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.script(tool_reply("not_offered", {}))
    with pytest.raises(anthropic.InternalServerError, match="offers tools"):
        ask(client(fake_anthropic, max_retries=2), tools=[SUBMIT])
    assert fake_anthropic.count() == 1


def test_count_tokens_endpoint(fake_anthropic: FakeAnthropic) -> None:
    result = client(fake_anthropic).messages.count_tokens(
        model=MODEL, system="abcd" * 3, messages=[{"role": "user", "content": "x" * 8}]
    )
    assert result.input_tokens == 3 + 2
    assert fake_anthropic.requests[0].path == "/v1/messages/count_tokens"


def test_concurrent_clients_are_all_recorded(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.route(reply=lambda req: text_reply(req.last_user_text.upper()))
    c = client(fake_anthropic)
    results: dict[int, str] = {}

    def worker(i: int) -> None:
        results[i] = ask(c, f"call {i}").content[0].text

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: f"CALL {i}" for i in range(8)}
    assert sorted(r.index for r in fake_anthropic.requests) == list(range(8))


# ------------------------------------------------------------------ SDK facts the client relies on


def test_sdk_wire_facts(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(text_reply("ok"))
    ask(client(fake_anthropic, api_key="sk-test"))
    headers = fake_anthropic.requests[0].headers
    assert headers["authorization"] == "Bearer sk-test" and "x-api-key" not in headers
    assert headers["anthropic-version"] and headers["x-stainless-retry-count"] == "0"

    # Non-streaming calls whose max_tokens implies > 10 minutes are refused client-side
    # (expected = 3600 s x max_tokens / 128000 > 600 s, i.e. max_tokens > 21333) unless
    # a timeout is passed explicitly.
    with pytest.raises(ValueError, match="Streaming is required"):
        ask(client(fake_anthropic), max_tokens=21_334)
    with pytest.raises(TypeError):  # sampling params are gone from messages.create in 2.14
        ask(client(fake_anthropic), temperature=0)
    assert fake_anthropic.count() == 1


# ------------------------------------------------------------------ other processes


@pytest.mark.usefixtures("fake_anthropic_env")
def test_env_fixture_points_a_default_client_at_the_fake(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(text_reply("via env"))
    assert ask(anthropic.Anthropic(max_retries=0)).content[0].text == "via env"
    assert fake_anthropic.requests[0].headers["authorization"] == "Bearer test-key"


def test_client_in_a_subprocess(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.route(tool="submit_plan", reply=tool_reply({"steps": ["from parent"]}))
    code = (
        "import anthropic, json\n"
        "c = anthropic.Anthropic(max_retries=0)\n"
        f"m = c.messages.create(model={MODEL!r}, max_tokens=50, tools=[{SUBMIT!r}],"
        " tool_choice={'type': 'tool', 'name': 'submit_plan'}, messages=[{'role': 'user', 'content': 'go'}])\n"
        "print(json.dumps(m.content[0].input))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env={**env, **fake_anthropic.env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"steps": ["from parent"]}
    assert fake_anthropic.wait_for_requests(1, tool="submit_plan")[0].status == 200


def test_standalone_process_with_a_script_file(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            {
                "script": [{"text": "scripted hello"}],
                "routes": [{"tool": "t", "reply": {"input": {}}}],
            }
        )
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.anthropic_server",
            "--port",
            "0",
            "--script",
            str(script),
            "--quiet",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        c = anthropic.Anthropic(api_key="k", base_url=base_url, max_retries=0)
        msg = c.messages.create(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        assert msg.content[0].text == "scripted hello"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
