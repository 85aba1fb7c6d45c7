"""A loopback HTTP server that speaks the Anthropic Messages API, scripted per test.

Why a server and not a mock: the project's tests fake only the model service, and
they fake it at the HTTP boundary, so the real ``anthropic`` SDK (its headers, its
retries, its error classes, its response parsing) and our own parsing all run. The
client may also be a *separate process* (``agent ...`` started by a test with
``ANTHROPIC_BASE_URL`` pointing here), so every bit of state -- the script, the
routes, the prompt cache, the request log -- lives in this object, in the test
process, and is guarded by one lock because each connection is served on its own
thread.

How a request is answered (``POST /v1/messages``):

1. Checks the real service would make, in roughly its order: credentials (401),
   ``anthropic-version`` header (400), the body's schema (400
   ``invalid_request_error`` with pydantic-style ``field: problem`` messages),
   ``known_models`` (404), ``stream: true`` (400, this fake does not stream) and
   the context window (400 ``prompt is too long: N tokens > M maximum``). A request
   the service would reject never consumes a scripted reply.
2. The reply: the first matching, unexhausted *route* in registration order, else
   the head of the *script* queue, else a loud 500 saying nothing was scripted
   (with ``x-should-retry: false`` so the SDK fails at once instead of retrying
   into the same hole). ``max_tokens: 0`` (the documented cache pre-warm) is
   answered with no content and consumes nothing.
3. Usage is computed honestly: a part's tokens are ``ceil(chars / 4)`` of its
   canonical text, and prompt caching follows the documented semantics (see
   ``_PromptCache``). Output tokens come from the scripted reply; a reply longer
   than ``max_tokens`` is cut off with ``stop_reason: "max_tokens"`` as the real
   model would be.

Everything is recorded in ``server.requests`` (one ``RequestRecord`` per HTTP
request, appended on arrival so a test can wait for an in-flight call).

Run standalone for demos: ``python -m tests.fakes.anthropic_server --port 0
--script FILE.json`` prints the base URL on the first line of stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import math
import re
import secrets
import signal
import socket
import string
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self, TextIO, TypeAlias

__all__ = [
    "Delay",
    "ErrorReply",
    "FakeAnthropic",
    "FakeRequest",
    "MessageReply",
    "Reply",
    "RequestRecord",
    "Route",
    "TextReply",
    "ToolReply",
    "approx_tokens",
    "delay",
    "error_reply",
    "message_reply",
    "reply_from_json",
    "text_reply",
    "tool_reply",
]


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class ToolReply:
    """The model calls a tool. ``name=None`` means "the tool the request forces"."""

    name: str | None
    input: Mapping[str, Any]
    text: str | None = None  # optional text block before the tool_use block
    stop_reason: str = "tool_use"
    output_tokens: int | None = None  # None: ceil(chars/4) of what is returned


@dataclass(frozen=True)
class TextReply:
    text: str
    stop_reason: str = "end_turn"
    output_tokens: int | None = None


@dataclass(frozen=True)
class MessageReply:
    """Raw assistant content blocks, for shapes the two helpers above don't cover
    (several tool calls in one turn, an empty turn, ...)."""

    content: tuple[Mapping[str, Any], ...]
    stop_reason: str = "end_turn"
    output_tokens: int | None = None


@dataclass(frozen=True)
class ErrorReply:
    status: int
    error_type: str
    message: str
    retry_after: float | None = None  # seconds, sent as `retry-after`
    retry_after_ms: float | None = None  # sent as `retry-after-ms` (the SDK prefers it)
    should_retry: bool | None = None  # sent as `x-should-retry: true|false`
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds`` before answering with ``then`` (for client timeouts and for
    holding a call open while a test kills the client). ``stop()`` cuts it short."""

    seconds: float
    then: Reply


ReplyFn: TypeAlias = Callable[["FakeRequest"], "Reply | None"]
Reply: TypeAlias = ToolReply | TextReply | MessageReply | ErrorReply | Delay | ReplyFn

_DEFAULT_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_DEFAULT_ERROR_MESSAGES = {
    "invalid_request_error": "invalid request",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "overloaded_error": "Overloaded",
}


def tool_reply(
    name: str | Mapping[str, Any] | None = None,
    input: Mapping[str, Any] | None = None,
    *,
    text: str | None = None,
    stop_reason: str = "tool_use",
    output_tokens: int | None = None,
) -> ToolReply:
    """A ``tool_use`` turn. ``tool_reply({"a": 1})`` is short for ``tool_reply(None, {...})``."""
    if isinstance(name, Mapping):
        name, input = None, name
    return ToolReply(name, dict(input or {}), text, stop_reason, output_tokens)


def text_reply(
    text: str, *, stop_reason: str = "end_turn", output_tokens: int | None = None
) -> TextReply:
    return TextReply(text, stop_reason, output_tokens)


def message_reply(
    content: Sequence[Mapping[str, Any]],
    *,
    stop_reason: str = "end_turn",
    output_tokens: int | None = None,
) -> MessageReply:
    return MessageReply(tuple(content), stop_reason, output_tokens)


def error_reply(
    status: int,
    error_type: str | None = None,
    message: str | None = None,
    *,
    retry_after: float | None = None,
    retry_after_ms: float | None = None,
    should_retry: bool | None = None,
    headers: Mapping[str, str] | None = None,
) -> ErrorReply:
    """An error response ``{"type":"error","error":{...}}``; type/message default by status.

    Note for fast tests: anthropic 2.14 treats ``retry-after: 0`` as "no advice" and
    falls back to its exponential backoff (0.5 s, 1 s, ... with jitter); only a
    positive value is obeyed. ``retry_after_ms=1`` makes SDK retries near-instant.
    """
    etype = error_type or _DEFAULT_ERROR_TYPES.get(status, "api_error")
    msg = message if message is not None else _DEFAULT_ERROR_MESSAGES.get(etype, etype)
    return ErrorReply(
        status, etype, msg, retry_after, retry_after_ms, should_retry, dict(headers or {})
    )


def delay(seconds: float, then: Reply) -> Delay:
    return Delay(float(seconds), then)


def reply_from_json(spec: Any) -> Reply:
    """Build a reply from its JSON form (used by ``--script`` files).

    ``{"tool": name|null, "input": {...}}`` · ``{"text": "..."}`` ·
    ``{"error": 529, "type": ..., "message": ..., "retry_after": 0, "retry_after_ms": 1}`` ·
    ``{"delay": 2.5, "then": {...}}`` · ``{"content": [...], "stop_reason": "..."}``.
    """
    if not isinstance(spec, Mapping):
        raise TypeError(f"a reply must be a JSON object, got {spec!r}")
    common = {k: spec[k] for k in ("stop_reason", "output_tokens") if k in spec}
    if "delay" in spec:
        return delay(float(spec["delay"]), reply_from_json(spec["then"]))
    if "error" in spec:
        return error_reply(
            int(spec["error"]),
            spec.get("type"),
            spec.get("message"),
            retry_after=spec.get("retry_after"),
            retry_after_ms=spec.get("retry_after_ms"),
            should_retry=spec.get("should_retry"),
            headers=spec.get("headers"),
        )
    if "tool" in spec or "input" in spec:
        return tool_reply(
            spec.get("tool"), spec.get("input") or {}, text=spec.get("text"), **common
        )
    if "content" in spec:
        return message_reply(spec["content"], **common)
    if "text" in spec:
        return text_reply(spec["text"], **common)
    raise ValueError(f"unrecognised reply spec: {spec!r}")


# --------------------------------------------------------------------------- requests


def _canon(value: Any) -> str:
    # One spelling per JSON value, so equal content always hashes and counts the same.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def approx_tokens(text: str) -> int:
    """The fake's tokenizer: ceil(chars / 4)."""
    return math.ceil(len(text) / 4)


def _blocks_of(content: Any) -> list[dict[str, Any]]:
    # A string is shorthand for one text block; the API treats them as equal.
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def _block_text(block: Mapping[str, Any]) -> str:
    """The text a block contributes to the prompt, for counting and matching."""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_use":
        return str(block.get("name", "")) + _canon(block.get("input", {}))
    if kind == "tool_result":
        inner = block.get("content")
        if isinstance(inner, str):
            return inner
        return "".join(_block_text(b) for b in _blocks_of(inner))
    if kind in ("thinking", "redacted_thinking"):
        return str(block.get("thinking", block.get("data", "")))
    return _canon(_without_cache_control(block))


def _without_cache_control(block: Mapping[str, Any]) -> dict[str, Any]:
    # A breakpoint marks where to cache; it is not part of the cached content.
    return {k: v for k, v in block.items() if k != "cache_control"}


@dataclass(frozen=True)
class FakeRequest:
    """What a route predicate or a reply function sees."""

    index: int  # position in server.requests
    path: str
    headers: Mapping[str, str]  # lower-cased names
    body: Mapping[str, Any]
    retry_count: int | None

    @property
    def model(self) -> str | None:
        return self.body.get("model")

    @property
    def tool(self) -> str | None:
        """The tool this request asks for: the forced one (``tool_choice: {"type":
        "tool", "name": X}``), or, when the model may choose (``any``/``auto``), the one
        a scripted model would pick as asked (see ``_forced_tool``)."""
        return _forced_tool(self.body)

    @property
    def tool_names(self) -> list[str]:
        return [t.get("name", "") for t in self.body.get("tools") or [] if isinstance(t, dict)]

    @property
    def system_text(self) -> str:
        return "\n".join(_block_text(b) for b in _blocks_of(self.body.get("system")))

    @property
    def last_user_text(self) -> str:
        """Text of the last user message (text blocks and tool_result contents)."""
        for message in reversed(self.body.get("messages") or []):
            if isinstance(message, dict) and message.get("role") == "user":
                return "\n".join(_block_text(b) for b in _blocks_of(message.get("content")))
        return ""


def _forced_tool(body: Any) -> str | None:
    """The forced tool's name; with ``tool_choice`` ``any`` or ``auto``, the offered tool
    that the user's text names last (text blocks only, not tool results): a prompt that
    offers helper tools ends by saying which tool finishes the turn, and a scripted
    model does as it is told. Routes by ``tool=`` therefore keep working when a client
    lets the model choose; a reply that calls another tool names it (``tool_reply(name,
    ...)``)."""
    if not isinstance(body, dict):
        return None
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool":
        name = choice.get("name")
        return name if isinstance(name, str) else None
    if isinstance(choice, dict) and choice.get("type") in ("any", "auto"):
        offered = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
        last = None  # messages, blocks and words in order: the last named tool wins
        for message in body.get("messages") or []:
            if not isinstance(message, dict) or message.get("role") != "user":
                continue
            for block in _blocks_of(message.get("content")):
                if block.get("type") == "text":
                    for word in re.findall(r"[A-Za-z_][A-Za-z0-9_-]*", str(block.get("text", ""))):
                        last = word if word in offered else last
        return last
    return None


@dataclass
class RequestRecord:
    """One HTTP request as the server saw it. Appended on arrival; ``status`` stays
    ``None`` until the response is written (or forever, if ``stop()`` cut a delay)."""

    index: int
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or the raw text when it was not JSON
    tool: str | None  # forced tool name
    model: str | None
    retry_count: int | None  # from the SDK's x-stainless-retry-count
    status: int | None = None
    response: dict[str, Any] | None = None  # the JSON body sent back
    unmatched: bool = False  # no route or script item answered it
    error: str | None = None  # error message sent, if status >= 400
    client_disconnected: bool = False  # the client had gone when we answered
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None

    @property
    def usage(self) -> dict[str, Any] | None:
        return (self.response or {}).get("usage")

    @property
    def error_type(self) -> str | None:
        return ((self.response or {}).get("error") or {}).get("type")


class Route:
    """Replies for requests matching every given criterion (``tool``: forced tool name;
    ``contains``: substring of the last user message; ``model``; ``when``: predicate).

    ``reply=`` is served ``times`` times (``None``: for ever); ``replies=[...]`` are
    served once each, in order. ``hits`` counts the requests it answered.
    """

    def __init__(
        self,
        *,
        tool: str | None = None,
        contains: str | None = None,
        model: str | None = None,
        when: Callable[[FakeRequest], bool] | None = None,
        reply: Reply | None = None,
        replies: Sequence[Reply] | None = None,
        times: int | None = None,
    ) -> None:
        if (reply is None) == (replies is None):
            raise ValueError("give exactly one of reply= or replies=")
        if replies is not None and times is not None:
            raise ValueError("times= applies to reply=, not replies=")
        self.tool, self.contains, self.model, self.when = tool, contains, model, when
        self._replies: list[Reply] = list(replies) if replies is not None else [reply]  # type: ignore[list-item]
        self._sequence = replies is not None
        self.times = len(self._replies) if self._sequence else times
        self.hits = 0

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def matches(self, request: FakeRequest) -> bool:
        if self.exhausted:
            return False
        if self.tool is not None and request.tool != self.tool:
            return False
        if self.model is not None and request.model != self.model:
            return False
        if self.contains is not None and self.contains not in request.last_user_text:
            return False
        return self.when is None or bool(self.when(request))

    def _take(self) -> Reply:
        reply = self._replies[self.hits] if self._sequence else self._replies[0]
        self.hits += 1
        return reply

    def __repr__(self) -> str:
        crit = {
            k: v
            for k, v in (("tool", self.tool), ("contains", self.contains), ("model", self.model))
            if v
        }
        if self.when is not None:
            crit["when"] = getattr(self.when, "__name__", "predicate")
        return f"Route({crit}, hits={self.hits}, times={self.times})"


# --------------------------------------------------------------------------- validation


class _ApiError(Exception):
    """A response the real service would send instead of a message."""

    def __init__(self, status: int, error_type: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message
        self.headers: dict[str, str] = extra.get("headers", {})
        self.unmatched: bool = extra.get("unmatched", False)


def _invalid(message: str) -> _ApiError:
    return _ApiError(400, "invalid_request_error", message)


class _ScriptError(Exception):
    """The test's script cannot answer this request (a test bug, reported as a 500)."""


_TOP_LEVEL_FIELDS = {
    "model", "messages", "max_tokens", "system", "tools", "tool_choice", "stream",
    "stop_sequences", "metadata", "thinking", "cache_control", "container",
    "diagnostics", "inference_geo", "output_config", "service_tier", "speed",
    "temperature", "top_p", "top_k", "context_management", "mcp_servers",
}  # fmt: skip
_BLOCK_TYPES = (
    "text", "image", "document", "search_result", "thinking", "redacted_thinking",
    "tool_use", "tool_result", "server_tool_use", "web_search_tool_result",
    "container_upload",
)  # fmt: skip
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_MAX_BREAKPOINTS = 4


def _check_cache_control(value: Any, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or value.get("type") != "ephemeral":
        raise _invalid(f"{where}.cache_control.ephemeral.type: Input should be 'ephemeral'")
    if "ttl" in value and value["ttl"] not in ("5m", "1h"):
        raise _invalid(f"{where}.cache_control.ephemeral.ttl: Input should be '5m' or '1h'")


def _validate_body(body: Any, *, count_only: bool, max_output_tokens: int | None) -> None:
    """Raise ``_ApiError`` for what the real service rejects with a 400."""
    if not isinstance(body, dict):
        raise _invalid("Input should be a valid dictionary or object to extract fields from")
    required = ("model", "messages") if count_only else ("max_tokens", "messages", "model")
    for name in required:
        if name not in body:
            raise _invalid(f"{name}: Field required")
    allowed = _TOP_LEVEL_FIELDS - ({"max_tokens", "stream"} if count_only else set())
    for name in body:
        if name not in allowed:
            raise _invalid(f"{name}: Extra inputs are not permitted")

    if not isinstance(body["model"], str) or not body["model"]:
        raise _invalid("model: Input should be a valid string")
    if not count_only:
        max_tokens = body["max_tokens"]
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            raise _invalid("max_tokens: Input should be a valid integer")
        # 0 is legal: it pre-warms the prompt cache without generating (SDK 2.14 docs).
        if max_tokens < 0:
            raise _invalid("max_tokens: Input should be greater than or equal to 0")
        if max_output_tokens is not None and max_tokens > max_output_tokens:
            raise _invalid(
                f"max_tokens: {max_tokens} > {max_output_tokens}, which is the maximum "
                f"allowed number of output tokens for {body['model']}"
            )
    if "stop_sequences" in body and not (
        isinstance(body["stop_sequences"], list)
        and all(isinstance(s, str) for s in body["stop_sequences"])
    ):
        raise _invalid("stop_sequences: Input should be a valid list of strings")

    _validate_system(body.get("system"))
    tool_names = _validate_tools(body.get("tools"))
    _validate_tool_choice(body.get("tool_choice"), tool_names, has_tools="tools" in body)
    _validate_messages(body["messages"])
    _check_cache_control(body.get("cache_control"), "cache_control")

    breakpoints = sum(1 for *_, cc in _prefix_parts(body) if cc is not None)
    if breakpoints > _MAX_BREAKPOINTS:
        raise _invalid(
            f"A maximum of {_MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {breakpoints}."
        )


def _validate_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise _invalid("system: Input should be a valid string or a valid list")
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _invalid(f"system.{i}.type: Input should be 'text'")
        if not isinstance(block.get("text"), str):
            raise _invalid(f"system.{i}.text: Field required")
        if not block["text"]:
            raise _invalid("system: text content blocks must be non-empty")
        _check_cache_control(block.get("cache_control"), f"system.{i}")


def _validate_tools(tools: Any) -> list[str]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _invalid("tools: Input should be a valid list")
    names: list[str] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _invalid(f"tools.{i}: Input should be a valid dictionary")
        kind = tool.get("type")
        custom = kind in (None, "custom")
        where = f"tools.{i}.custom" if custom else f"tools.{i}.{kind}"
        if "name" not in tool:
            raise _invalid(f"{where}.name: Field required")
        name = tool["name"]
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise _invalid(f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
        if custom:
            if "input_schema" not in tool:
                raise _invalid(f"{where}.input_schema: Field required")
            schema = tool["input_schema"]
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise _invalid(f"{where}.input_schema.type: Input should be 'object'")
        _check_cache_control(tool.get("cache_control"), f"tools.{i}")
        names.append(name)
    if len(set(names)) != len(names):
        raise _invalid("tools: Tool names must be unique.")
    return names


def _validate_tool_choice(choice: Any, tool_names: list[str], *, has_tools: bool) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise _invalid(
            "tool_choice: Input tag found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
        )
    if choice["type"] in ("any", "tool") and not has_tools:
        raise _invalid("tool_choice: tool_choice may only be specified while providing tools.")
    if choice["type"] == "tool":
        name = choice.get("name")
        if not isinstance(name, str):
            raise _invalid("tool_choice.tool.name: Field required")
        if name not in tool_names:
            raise _invalid(
                f"tool_choice.tool.name: Tool '{name}' not found in the provided tools: {tool_names}"
            )


def _validate_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise _invalid("messages: Input should be a valid list")
    if not messages:
        raise _invalid("messages: List should have at least 1 item after validation, not 0")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid(f"messages.{i}: Input should be a valid dictionary")
        for key in ("role", "content"):
            if key not in message:
                raise _invalid(f"messages.{i}.{key}: Field required")
        for key in message:
            if key not in ("role", "content"):
                raise _invalid(f"messages.{i}.{key}: Extra inputs are not permitted")
        if message["role"] not in ("user", "assistant"):
            raise _invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message["content"]
        if not isinstance(content, (str, list)):
            raise _invalid(f"messages.{i}.content: Input should be a valid string or a valid list")
        final_assistant = i == len(messages) - 1 and message["role"] == "assistant"
        if not content and not final_assistant:
            raise _invalid(
                f"messages.{i}: all messages must have non-empty content except for the optional final assistant message"
            )
        if isinstance(content, list):
            for j, block in enumerate(content):
                _validate_block(block, f"messages.{i}.content.{j}")
        texts = [b.get("text", "") for b in _blocks_of(content) if b.get("type") == "text"]
        if any(t == "" for t in texts):
            raise _invalid("messages: text content blocks must be non-empty")
        if any(not t.strip() for t in texts):
            raise _invalid("messages: text content blocks must contain non-whitespace text")
        if final_assistant and texts and texts[-1] != texts[-1].rstrip():
            raise _invalid("messages: final assistant content cannot end with trailing whitespace")
    if messages[0]["role"] != "user":
        raise _invalid('messages: first message must use the "user" role')
    _validate_tool_pairing(messages)


def _validate_block(block: Any, where: str) -> None:
    if not isinstance(block, dict) or "type" not in block:
        raise _invalid(f"{where}: Unable to extract tag using discriminator 'type'")
    kind = block["type"]
    if kind not in _BLOCK_TYPES:
        expected = ", ".join(f"'{t}'" for t in _BLOCK_TYPES)
        raise _invalid(
            f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected tags: {expected}"
        )
    needs = {
        "text": ("text",),
        "tool_use": ("id", "name", "input"),
        "tool_result": ("tool_use_id",),
    }
    for key in needs.get(kind, ()):
        if key not in block:
            raise _invalid(f"{where}.{kind}.{key}: Field required")
    if kind == "text" and not isinstance(block["text"], str):
        raise _invalid(f"{where}.text.text: Input should be a valid string")
    if kind == "tool_use" and not isinstance(block["input"], dict):
        raise _invalid(f"{where}.tool_use.input: Input should be a valid dictionary")
    _check_cache_control(block.get("cache_control"), where)


def _validate_tool_pairing(messages: list[dict[str, Any]]) -> None:
    # The API merges consecutive same-role messages into one turn (documented), then
    # requires every tool_use to be answered by a tool_result in the very next turn.
    turns: list[tuple[str, int, list[tuple[int, int, dict[str, Any]]]]] = []
    for i, message in enumerate(messages):
        located = [(i, j, b) for j, b in enumerate(_blocks_of(message["content"]))]
        if turns and turns[-1][0] == message["role"]:
            turns[-1][2].extend(located)
        else:
            turns.append((message["role"], i, located))
    for t, (role, _first, blocks) in enumerate(turns):
        if role == "assistant" and t + 1 < len(turns):
            used = [b["id"] for _, _, b in blocks if b.get("type") == "tool_use"]
            answered = {
                b.get("tool_use_id")
                for _, _, b in turns[t + 1][2]
                if b.get("type") == "tool_result"
            }
            missing = [u for u in used if u not in answered]
            if missing:
                raise _invalid(
                    f"messages.{turns[t + 1][1] - 1}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                    "corresponding `tool_result` block in the next message."
                )
        if role == "user":
            offered = (
                {b.get("id") for _, _, b in turns[t - 1][2] if b.get("type") == "tool_use"}
                if t > 0
                else set()
            )
            for i, j, b in blocks:
                if b.get("type") == "tool_result" and b.get("tool_use_id") not in offered:
                    raise _invalid(
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{b.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message."
                    )


# --------------------------------------------------------------------------- tokens & caching


def _prefix_parts(
    body: Mapping[str, Any],
) -> Iterator[tuple[str, str | None, dict[str, Any], dict | None]]:
    """The prompt in the API's cache order: tools, then system, then messages.

    Yields ``(section, role, block, cache_control)``; the top-level ``cache_control``
    lands on the last block, as documented ("the last cacheable block").
    """
    parts: list[tuple[str, str | None, dict[str, Any], dict | None]] = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            parts.append(("tools", None, tool, tool.get("cache_control")))
    for block in _blocks_of(body.get("system")):
        parts.append(("system", None, block, block.get("cache_control")))
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            for block in _blocks_of(message.get("content")):
                parts.append(("messages", message.get("role"), block, block.get("cache_control")))
    top = body.get("cache_control")
    if isinstance(top, dict) and parts and parts[-1][3] is None:
        section, role, block, _ = parts[-1]
        parts[-1] = (section, role, block, top)
    yield from parts


@dataclass
class _Prefix:
    tokens: list[int]  # per part
    cumulative: list[int]  # tokens up to and including part i
    hashes: list[str]  # identity of the prefix ending at part i
    breakpoints: list[tuple[int, str]]  # (part index, ttl)

    @property
    def total(self) -> int:
        return self.cumulative[-1] if self.cumulative else 0


def _analyze(body: Mapping[str, Any]) -> _Prefix:
    hasher = hashlib.sha256(_canon({"model": body.get("model")}).encode())
    tokens: list[int] = []
    cumulative: list[int] = []
    hashes: list[str] = []
    breakpoints: list[tuple[int, str]] = []
    in_messages = False
    running = 0
    for section, role, block, cache_control in _prefix_parts(body):
        if section == "messages" and not in_messages:
            # Documented: changing tool_choice (or thinking) invalidates the message
            # cache but not the tools/system cache, so they key message prefixes only.
            in_messages = True
            hasher.update(
                _canon(
                    {"tool_choice": body.get("tool_choice"), "thinking": body.get("thinking")}
                ).encode()
            )
        text = _canon(_without_cache_control(block)) if section == "tools" else _block_text(block)
        count = approx_tokens(text)
        running += count
        tokens.append(count)
        cumulative.append(running)
        hasher.update(
            _canon(
                {"section": section, "role": role, "block": _without_cache_control(block)}
            ).encode()
        )
        hashes.append(hasher.copy().hexdigest())
        if cache_control is not None:
            breakpoints.append((len(tokens) - 1, str(cache_control.get("ttl", "5m"))))
    return _Prefix(tokens, cumulative, hashes, breakpoints)


class _PromptCache:
    """Prompt-cache bookkeeping, per server, keyed by prefix hash (model included).

    Mirrors the documented semantics: every block carrying ``cache_control`` is a
    breakpoint; at each breakpoint the service looks back (about 20 blocks) for the
    longest prefix it has already cached and reads it; everything after that, up to
    the last breakpoint, is written (``cache_creation``) and remembered at every
    breakpoint. Prefixes under ``min_tokens`` are never cached. Entries don't expire
    (tests are shorter than the 5-minute TTL); ``clear()`` forgets them.
    """

    LOOKBACK = 20

    def __init__(self) -> None:
        self._entries: set[str] = set()

    def clear(self) -> None:
        self._entries.clear()

    def account(self, prefix: _Prefix, min_tokens: int, *, commit: bool) -> dict[str, Any]:
        eligible = [(i, ttl) for i, ttl in prefix.breakpoints if prefix.cumulative[i] >= min_tokens]
        read_end = -1
        for bp, _ in eligible:
            for j in range(bp, max(bp - self.LOOKBACK, -1), -1):
                if prefix.hashes[j] in self._entries:
                    read_end = max(read_end, j)
                    break
        read = prefix.cumulative[read_end] if read_end >= 0 else 0
        by_ttl = {"5m": 0, "1h": 0}
        start = read
        for bp, ttl in eligible:
            if bp > read_end:
                by_ttl[ttl if ttl in by_ttl else "5m"] += prefix.cumulative[bp] - start
                start = prefix.cumulative[bp]
        created = sum(by_ttl.values())
        if commit:
            self._entries.update(prefix.hashes[bp] for bp, _ in eligible)
        return {
            "input_tokens": prefix.total - read - created,
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": by_ttl["5m"],
                "ephemeral_1h_input_tokens": by_ttl["1h"],
            },
        }


# --------------------------------------------------------------------------- ids

_BASE62 = string.digits + string.ascii_letters


def _new_id(prefix: str) -> str:
    # Shaped like the real ones: msg_01..., toolu_01..., req_01... (24 base62 chars).
    return prefix + "01" + "".join(secrets.choice(_BASE62) for _ in range(22))


# --------------------------------------------------------------------------- HTTP


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in a delay must not block interpreter exit
    fake: FakeAnthropic


class _Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive, as the SDK's pooled client expects from the real service.
    protocol_version = "HTTP/1.1"
    server_version = "fake-anthropic"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without NODELAY, Nagle plus the
        # client's delayed ACK stalls every response by ~40 ms on loopback.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._track_connection(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track_connection(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is server.requests, not stderr noise

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        raw = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        outcome = self.server.fake._handle(method, self.path, headers, raw)
        if outcome is None:  # the server is stopping: drop the connection unanswered
            self.close_connection = True
            return
        record, status, extra_headers, payload = outcome
        data = json.dumps(payload).encode()
        try:
            self.send_response(status, _REASONS.get(status))
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in extra_headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            # The client timed out or was killed while we were delaying: that is the
            # scenario under test, not a server failure.
            record.client_disconnected = True
            self.close_connection = True


_REASONS = {413: "Request Entity Too Large", 529: "Overloaded"}


# --------------------------------------------------------------------------- server


class FakeAnthropic:
    """The fake service. See the module docstring; construct, ``start()`` (or use as a
    context manager), point a client at ``base_url``, script replies, assert on
    ``requests``. All options may also be changed as attributes while running."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        known_models: Sequence[str] | None = None,
        context_window: int = 200_000,
        min_cacheable_tokens: int = 1024,
        max_output_tokens: int | None = None,
        enforce_max_tokens: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        echo: TextIO | None = None,
    ) -> None:
        self.api_key = api_key  # when set, any other key gets a 401
        self.known_models = list(known_models) if known_models is not None else None
        self.context_window = context_window
        self.min_cacheable_tokens = min_cacheable_tokens
        self.max_output_tokens = max_output_tokens
        self.enforce_max_tokens = enforce_max_tokens
        self.organization_id = "00000000-0000-4000-8000-00000000fa4e"
        self._host, self._port = host, port
        self._echo = echo
        self._lock = threading.RLock()
        self._arrived = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._records: list[RequestRecord] = []
        self._queue: deque[Reply] = deque()
        self._routes: list[Route] = []
        self._cache = _PromptCache()
        self._connections: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _Server((self._host, self._port), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-anthropic",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a Delay
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            live = list(self._connections)
        for conn in live:
            # Keep-alive connections would otherwise be served by their threads after
            # stop(); a stopped server must look like a dead one.
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeAnthropic is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def env(self, api_key: str | None = None) -> dict[str, str]:
        """Environment for a client process: ``ANTHROPIC_BASE_URL`` and ``ANTHROPIC_API_KEY``."""
        return {
            "ANTHROPIC_BASE_URL": self.base_url,
            "ANTHROPIC_API_KEY": api_key or self.api_key or "test-key",
        }

    def _track_connection(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    # -- scripting ---------------------------------------------------------------------

    def script(self, *replies: Reply) -> Self:
        """Queue replies, served in order to requests that no route claims."""
        with self._lock:
            self._queue.extend(replies)
        return self

    def route(
        self,
        *,
        tool: str | None = None,
        contains: str | None = None,
        model: str | None = None,
        when: Callable[[FakeRequest], bool] | None = None,
        reply: Reply | None = None,
        replies: Sequence[Reply] | None = None,
        times: int | None = None,
    ) -> Route:
        """Register a routed reply (checked before the queue, in registration order)."""
        new = Route(
            tool=tool,
            contains=contains,
            model=model,
            when=when,
            reply=reply,
            replies=replies,
            times=times,
        )
        with self._lock:
            self._routes.append(new)
        return new

    def pending(self) -> list[str]:
        """Descriptions of queued replies not yet served and routes with replies left
        (``times=None`` routes never count as pending)."""
        with self._lock:
            left = [f"script[{i}]: {reply!r}" for i, reply in enumerate(self._queue)]
            left += [repr(r) for r in self._routes if r.times is not None and not r.exhausted]
        return left

    def reset(self) -> None:
        """Forget script, routes, recorded requests and the prompt cache."""
        with self._lock:
            self._queue.clear()
            self._routes.clear()
            self._records.clear()
            self._cache.clear()

    def clear_cache(self) -> None:
        """Forget cached prefixes (as if the 5-minute TTL had passed)."""
        with self._lock:
            self._cache.clear()

    # -- inspection --------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot list of every request so far, in arrival order."""
        with self._lock:
            return list(self._records)

    @property
    def unmatched(self) -> list[RequestRecord]:
        return [r for r in self.requests if r.unmatched]

    def find(
        self,
        *,
        tool: str | None = None,
        status: int | None = None,
        model: str | None = None,
        path: str | None = None,
    ) -> list[RequestRecord]:
        return [
            r
            for r in self.requests
            if (tool is None or r.tool == tool)
            and (status is None or r.status == status)
            and (model is None or r.model == model)
            and (path is None or r.path == path)
        ]

    def count(self, **filters: Any) -> int:
        """Number of recorded requests matching ``tool=``, ``status=``, ``model=``, ``path=``."""
        return len(self.find(**filters))

    def models(self) -> list[str]:
        """Distinct models requested, in order of first use."""
        seen: dict[str, None] = {}
        for r in self.requests:
            if r.model:
                seen.setdefault(r.model, None)
        return list(seen)

    def wait_for_requests(
        self, n: int, timeout: float = 10.0, **filters: Any
    ) -> list[RequestRecord]:
        """Block until at least ``n`` matching requests have *arrived* (answered or not)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.find(**filters)) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"saw {len(self.find(**filters))} of {n} requests matching {filters}"
                    )
                self._arrived.wait(remaining)
            return self.find(**filters)

    # -- request handling ----------------------------------------------------------------

    def _handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[RequestRecord, int, dict[str, str], dict[str, Any]] | None:
        body: Any
        try:
            body = json.loads(raw) if raw else None
            parsed = True
        except ValueError:
            body, parsed = raw.decode("utf-8", "replace"), False
        retry = headers.get("x-stainless-retry-count")
        with self._lock:
            record = RequestRecord(
                index=len(self._records),
                method=method,
                path=path.split("?", 1)[0],
                headers=headers,
                body=body,
                tool=_forced_tool(body),
                model=body.get("model")
                if isinstance(body, dict) and isinstance(body.get("model"), str)
                else None,
                retry_count=int(retry) if retry and retry.isdigit() else None,
            )
            self._records.append(record)
            self._arrived.notify_all()

        request_id = _new_id("req_")
        base_headers = {"request-id": request_id, "anthropic-organization-id": self.organization_id}
        try:
            try:
                payload = self._respond(record, headers, body, parsed)
            except (_Stopped, _ApiError):
                raise
            except Exception:  # noqa: BLE001 - a bug in the fake must not look like a network error
                raise _ApiError(
                    500,
                    "api_error",
                    "fake anthropic crashed: " + traceback.format_exc(limit=-3),
                    headers={"x-should-retry": "false"},
                ) from None
        except _Stopped:
            return None
        except _ApiError as err:
            status = err.status
            payload = {
                "type": "error",
                "error": {"type": err.error_type, "message": err.message},
                "request_id": request_id,
            }
            record.unmatched = err.unmatched
            record.error = err.message
            base_headers.update(err.headers)
        else:
            status = 200
        record.status = status
        record.response = payload
        record.finished_at = time.monotonic()
        if self._echo is not None:
            print(
                f"{method} {record.path} tool={record.tool} retry={record.retry_count} -> {status}"
                + (f" {record.error}" if record.error else ""),
                file=self._echo,
                flush=True,
            )
        return record, status, base_headers, payload

    def _respond(
        self, record: RequestRecord, headers: dict[str, str], body: Any, parsed: bool
    ) -> dict[str, Any]:
        if record.method != "POST" or record.path not in (
            "/v1/messages",
            "/v1/messages/count_tokens",
        ):
            raise _ApiError(404, "not_found_error", "Not Found")
        self._check_auth(headers)
        if "anthropic-version" not in headers:
            raise _invalid("anthropic-version: header is required")
        if not parsed or body is None:
            raise _invalid("There was an error parsing the body")
        count_only = record.path.endswith("/count_tokens")
        _validate_body(body, count_only=count_only, max_output_tokens=self.max_output_tokens)
        if self.known_models is not None and body["model"] not in self.known_models:
            raise _ApiError(404, "not_found_error", f"model: {body['model']}")
        if body.get("stream"):
            raise _invalid(
                "stream: streaming is not supported by this fake Anthropic server; send stream=false"
            )
        prefix = _analyze(body)
        if prefix.total > self.context_window:
            raise _invalid(
                f"prompt is too long: {prefix.total} tokens > {self.context_window} maximum"
            )
        if count_only:
            return {"input_tokens": prefix.total}

        request = FakeRequest(record.index, record.path, headers, body, record.retry_count)
        if body["max_tokens"] == 0:
            # Cache pre-warm: nothing is generated, so no scripted reply is consumed.
            return self._message(body, prefix, [], "max_tokens", 0)
        try:
            reply = self._match(request)
            if reply is None:
                raise _ApiError(
                    500,
                    "api_error",
                    "fake anthropic: no scripted reply for this request "
                    f"(tool={request.tool!r}, model={request.model!r}, "
                    f"last user message starts {request.last_user_text[:120]!r})",
                    headers={"x-should-retry": "false"},
                    unmatched=True,
                )
            while True:
                if isinstance(reply, Delay):
                    if self._stopping.wait(reply.seconds):
                        raise _Stopped
                    reply = reply.then
                elif isinstance(reply, (ToolReply, TextReply, MessageReply, ErrorReply)):
                    break
                elif callable(reply):
                    produced = reply(request)
                    if produced is None:
                        raise _ScriptError(f"reply function {reply!r} returned None")
                    reply = produced
                else:
                    raise _ScriptError(f"not a reply: {reply!r}")
            if isinstance(reply, ErrorReply):
                raise _ApiError(
                    reply.status, reply.error_type, reply.message, headers=_error_headers(reply)
                )
            content, stop_reason, output_tokens = self._render(reply, request)
        except _ScriptError as err:
            raise _ApiError(
                500, "api_error", f"fake anthropic: {err}", headers={"x-should-retry": "false"}
            ) from None
        except (_ApiError, _Stopped):
            raise
        except Exception as err:  # noqa: BLE001 - a broken predicate or reply function
            detail = "".join(traceback.format_exception_only(type(err), err)).strip()
            raise _ApiError(
                500,
                "api_error",
                f"fake anthropic: a route predicate or reply function raised {detail}",
                headers={"x-should-retry": "false"},
            ) from None
        return self._message(body, prefix, content, stop_reason, output_tokens)

    def _check_auth(self, headers: Mapping[str, str]) -> None:
        key = headers.get("x-api-key")
        auth = headers.get("authorization", "")
        if key is None and auth.lower().startswith("bearer "):
            key = auth[7:].strip()  # anthropic 2.14 sends api_key as a Bearer token
        if not key:
            raise _ApiError(401, "authentication_error", "x-api-key header is required")
        if self.api_key is not None and key != self.api_key:
            raise _ApiError(401, "authentication_error", "invalid x-api-key")

    def _match(self, request: FakeRequest) -> Reply | None:
        with self._lock:
            for candidate in self._routes:
                if candidate.matches(request):
                    return candidate._take()
            if self._queue:
                return self._queue.popleft()
        return None

    def _render(
        self, reply: ToolReply | TextReply | MessageReply, request: FakeRequest
    ) -> tuple[list[dict[str, Any]], str, int]:
        content: list[dict[str, Any]]
        if isinstance(reply, ToolReply):
            name = reply.name or request.tool
            offered = request.tool_names
            if name is None and len(offered) == 1:
                name = offered[0]
            if name is None:
                raise _ScriptError(
                    f"tool_reply() has no name and the request forces no tool (tools: {offered})"
                )
            if name not in offered:
                raise _ScriptError(
                    f"scripted tool_use of {name!r} but the request offers tools {offered}"
                )
            content = [{"type": "text", "text": reply.text}] if reply.text else []
            content.append(
                {
                    "type": "tool_use",
                    "id": _new_id("toolu_"),
                    "name": name,
                    "input": dict(reply.input),
                }
            )
        elif isinstance(reply, TextReply):
            content = [{"type": "text", "text": reply.text}]
        else:
            content = [dict(block) for block in reply.content]
        stop_reason = reply.stop_reason
        if reply.output_tokens is not None:
            return content, stop_reason, reply.output_tokens
        output_tokens = max(1, approx_tokens("".join(_block_text(b) for b in content)))
        max_tokens = int(request.body["max_tokens"])
        if self.enforce_max_tokens and output_tokens > max_tokens:
            return _truncate(content, max_tokens), "max_tokens", max_tokens
        return content, stop_reason, output_tokens

    def _message(
        self,
        body: Mapping[str, Any],
        prefix: _Prefix,
        content: list[dict[str, Any]],
        stop_reason: str,
        output_tokens: int,
    ) -> dict[str, Any]:
        with self._lock:
            # Only a successful call writes the cache, as with the real service.
            usage = self._cache.account(prefix, self.min_cacheable_tokens, commit=True)
        usage["output_tokens"] = output_tokens
        usage["service_tier"] = "standard"
        return {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }


class _Stopped(Exception):
    """The server stopped while a reply was delayed."""


def _error_headers(reply: ErrorReply) -> dict[str, str]:
    headers = dict(reply.headers)
    if reply.retry_after is not None:
        value = reply.retry_after
        headers["retry-after"] = str(int(value)) if float(value).is_integer() else str(value)
    if reply.retry_after_ms is not None:
        headers["retry-after-ms"] = str(reply.retry_after_ms)
    if reply.should_retry is not None:
        headers["x-should-retry"] = "true" if reply.should_retry else "false"
    return headers


def _truncate(content: list[dict[str, Any]], max_tokens: int) -> list[dict[str, Any]]:
    """What a generation cut off at ``max_tokens`` returns: text up to the budget; a
    tool call that did not finish comes back with an empty ``input``."""
    budget = max_tokens * 4
    kept: list[dict[str, Any]] = []
    for block in content:
        size = len(_block_text(block))
        if size <= budget:
            kept.append(block)
            budget -= size
            continue
        if block.get("type") == "text":
            if budget > 0:
                kept.append({**block, "text": block["text"][:budget]})
        else:
            kept.append({**block, "input": {}} if block.get("type") == "tool_use" else block)
        break
    return kept


# --------------------------------------------------------------------------- standalone


def _load_script(server: FakeAnthropic, path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        spec = json.load(handle)
    if isinstance(spec, list):
        spec = {"script": spec}
    server.script(*(reply_from_json(item) for item in spec.get("script", [])))
    for item in spec.get("routes", []):
        kwargs = {k: item[k] for k in ("tool", "contains", "model", "times") if k in item}
        if "replies" in item:
            server.route(replies=[reply_from_json(r) for r in item["replies"]], **kwargs)
        else:
            server.route(reply=reply_from_json(item["reply"]), **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.anthropic_server",
        description="Serve a scripted fake Anthropic Messages API; prints the base URL first.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--script",
        help='JSON file: a list of replies, or {"script": [...], "routes": [{"tool": ..., "reply": ...}]}',
    )
    parser.add_argument("--api-key", help="require this key (401 otherwise)")
    parser.add_argument(
        "--known-model", action="append", dest="known_models", help="404 for other models"
    )
    parser.add_argument("--min-cacheable-tokens", type=int, default=1024)
    parser.add_argument("--context-window", type=int, default=200_000)
    parser.add_argument("--quiet", action="store_true", help="don't log requests to stderr")
    args = parser.parse_args(argv)

    server = FakeAnthropic(
        api_key=args.api_key,
        known_models=args.known_models,
        min_cacheable_tokens=args.min_cacheable_tokens,
        context_window=args.context_window,
        host=args.host,
        port=args.port,
        echo=None if args.quiet else sys.stderr,
    )
    if args.script:
        _load_script(server, args.script)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with server:
        print(server.base_url, flush=True)
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
