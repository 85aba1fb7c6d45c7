"""Structured model calls from inside durable steps: journaled, priced, budgeted.

`ModelService.ask(OutputType, tool=..., ...)` sends one request whose answer must be
a call of the forced tool `tool`, validates the tool input into `OutputType`, and on
a validation error gives the model one repair turn that says exactly what was wrong.

Every request passes through `_call`, in this order:
0. redaction: no secret this process knows (the API key, secret-named variables'
   values) is sent, hashed or journaled, whether it came from test output, a file
   or the issue (`durable.redact`);
1. the journal: the same step key, call index and request hash already answered
   (a step re-executing after a crash) is served from `calls/` at zero cost;
2. the budget: when the run has `max_cost` and what was paid plus a conservative
   estimate of this call would pass it (plus what humans granted since), the run
   suspends with a `budget` wait;
3. the transport: the SDK, or a recording for `replay:<run>` models;
4. the record: `calls/NNNN.json`, and a summary into the step record.

A tool input larger than MAX_TOOL_INPUT_CHARS (as JSON) is not taken: it is
replaced, before anything records it, by a marker of its size, so neither the
journal nor a following request carries it, and the model gets one repair turn
saying how large it was and what is allowed, as for an input that fails its schema.

Prompt caching: every request carries all of the flow's tools (so that tools and
system prompt form one prefix shared by every call of a run), a breakpoint on the
system prompt, and one on the last stable context block (issue, plan, files), so
the calls of a stage and the stages after it read that prefix from the cache.

Helper tools (`ask(..., helpers=H)`): the model may call the tools `H` offers (the
read tools of write_code and fix_code) before the answer tool. The request then lets
the model choose (`tool_choice: any`); each helper call is run here and its result
goes back as a `tool_result` in the next request of the same conversation, at most
`H.max_calls` times, after which the answer tool is forced. Every round trip is one
journaled call like any other, so a step re-executed after a crash is served the
answers it already paid for and re-runs the (deterministic) helpers in between. A
result is cut to what keeps the request under MAX_PROMPT_TOKENS. Two more
breakpoints, on the instruction and on the newest tool result, let each round trip
read the conversation so far from the cache.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from agent_cli import durable
from agent_cli.answers import Answer
from agent_cli.durable import redact
from agent_cli.durable.fingerprint import digest
from agent_cli.durable.store import now_iso
from agent_cli.llm.client import AnthropicTransport, Connection, ReplayTransport, Sent, Transport
from agent_cli.llm.errors import ModelError, StructuredOutputError
from agent_cli.llm.journal import Journal
from agent_cli.llm.models import REPLAY_PREFIX, is_replay, resolve_model
from agent_cli.llm.pricing import estimate_cost, price_call

T = TypeVar("T", bound=BaseModel)

CACHE = {"type": "ephemeral"}
MAX_PROMPT_TOKENS = 60_000  # helper results are cut to stay under this (estimated)
MAX_TOOL_INPUT_CHARS = 256_000
"""About 64k tokens, eight times the default max_tokens: an answer past it is a model
(or a server) gone wrong, and taken whole it would be journaled, then sent again in
every later prompt until one is too long to send (PromptTooLong, which resume cannot
fix)."""
OVERSIZED = "omitted_oversized_input_chars"


class Helpers(Protocol):
    """Tools the model may call before it answers (see the module docstring)."""

    names: frozenset[str]
    max_calls: int

    def run(self, name: str, tool_input: dict[str, Any], room_chars: int) -> tuple[str, bool]:
        """The result text (at most `room_chars` characters) and whether it is an error."""
        ...


class ModelService:
    def __init__(self, conn: Connection, runs_dir: Path) -> None:
        self.conn = conn
        self.runs_dir = runs_dir
        self._journals: dict[Path, Journal] = {}
        self._transports: dict[str, Transport] = {}

    # -- public ------------------------------------------------------------
    def ask(
        self,
        output: type[T],
        *,
        tool: str,
        tools: dict[str, type[BaseModel]],
        system: str,
        context: list[str],
        instruction: str,
        helpers: Helpers | None = None,
    ) -> T:
        """One structured answer of type `output`, through the tool `tool` (forced,
        or after up to `helpers.max_calls` calls of the helper tools)."""
        cfg = durable.config()
        request = build_request(
            model=resolve_model(cfg.get("model") or "sonnet"),
            max_tokens=int(cfg.get("max_tokens") or 8192),
            tool=tool, tools=tools, system=system, context=context, instruction=instruction,
            choose=helpers is not None,
        )
        response = self._call(request)
        used = 0
        while helpers is not None and _helper_turn(response, tool, helpers.names) \
                and used < helpers.max_calls:
            results = []
            room = MAX_PROMPT_TOKENS * 4 - len(json.dumps(request, ensure_ascii=False)) - 2_000
            for block in _tool_uses(response):  # every call gets its result, even past the limit
                used += 1
                if used > helpers.max_calls:
                    text, is_error = f"Not run: at most {helpers.max_calls} reads.", True
                else:
                    text, is_error = helpers.run(block["name"], block.get("input") or {},
                                                 max(room, 0))
                room -= len(text) + 200
                results.append({"type": "tool_result", "tool_use_id": block["id"],
                                "content": text, **({"is_error": True} if is_error else {})})
            last = used >= helpers.max_calls or room < 8_000
            if last:
                results.append({"type": "text", "text": f"That was the last read for this "
                                f"answer. Call {tool} now."})
            request = _next_turn(request, response, results, force=tool if last else None)
            response = self._call(request)
        if helpers is not None:  # a repair turn forces the answer tool
            request = {**request, "tool_choice": {"type": "tool", "name": tool}}
        try:
            return _parse(output, tool, response)
        except _Invalid as first:
            repair = _repair_request(request, response, tool, first.problem)
            response = self._call(repair)
            try:
                return _parse(output, tool, response)
            except _Invalid as second:
                step = durable.current_step()
                raise StructuredOutputError(
                    f"{step.key if step else tool}: the model's {tool} input did not validate "
                    f"after one repair turn: {second.problem}",
                    hint="resume the run to try again, or replay this step with another --model",
                ) from None

    # -- one call ----------------------------------------------------------
    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        scope = durable.current_step()
        if scope is None:
            raise ModelError("a model call must happen inside a durable step")
        request = redact.data(request)
        cfg = durable.config()
        model_name = cfg.get("model") or "sonnet"
        journal = self._journal(scope.run.calls_dir)
        index = scope.next_call_index()
        request_hash = digest(request)
        base = {"step": scope.key, "call_index": index, "model": request["model"],
                "request_hash": request_hash, "started_at": now_iso()}

        # After an invalid answer, resuming must ask again, not replay the same answer.
        fresh = scope.previous_error == "StructuredOutputError"
        prior = None if fresh else journal.find(scope.key, index, request_hash)
        if prior is not None:
            sent = Sent(prior["response"], 0, served_from=f"journal/{prior['number']:04d}",
                        original_cost_usd=prior.get("cost_usd"))
            return self._record(journal, scope, base, request, sent, 0.0, cost_known=True)

        if not is_replay(model_name):
            self._check_budget(scope, cfg, journal, request, index)
        transport = self._transport(model_name)
        t0 = time.monotonic()
        try:
            sent = transport.send(request, scope.key, index)
        except ModelError as exc:
            journal.write({**base, "status": "error", "request": request, "response": None,
                           "usage": {}, "cost_usd": 0.0, "latency_s": round(time.monotonic() - t0, 3),
                           "error": {"type": type(exc).__name__, "message": exc.message}})
            raise
        sent = dataclasses.replace(sent, response=_cap_tool_inputs(sent.response))
        return self._record(journal, scope, base, request, sent, time.monotonic() - t0,
                            cost_known=False)

    def _record(self, journal: Journal, scope: durable.StepScope, base: dict[str, Any],
                request: dict[str, Any], sent: Sent, latency: float, *, cost_known: bool
                ) -> dict[str, Any]:
        usage = usage_of(sent.response)
        model = sent.response.get("model") or request["model"]
        cost: float | None
        if sent.served_from:
            cost, source = 0.0, "served"
        else:
            overrides = durable.config().get("prices") or {}
            cost, source = price_call(model, usage, overrides)
        rec = journal.write({
            **base, "status": "ok", "request": request, "response": sent.response,
            "usage": usage, "cost_usd": cost, "price_source": source,
            "original_cost_usd": sent.original_cost_usd, "served_from": sent.served_from,
            "latency_s": round(latency, 3), "retries": sent.retries,
        })
        scope.add_call({"call": rec["number"], "model": model, "usage": usage, "cost_usd": cost,
                        "served_from": sent.served_from, "retries": sent.retries,
                        "original_cost_usd": sent.original_cost_usd})
        durable.emit("model_call", key=scope.key, model=model, usage=usage, cost_usd=cost,
                     served_from=sent.served_from, retries=sent.retries)
        return sent.response

    def _check_budget(self, scope: durable.StepScope, cfg: dict[str, Any], journal: Journal,
                      request: dict[str, Any], index: int) -> None:
        max_cost = cfg.get("max_cost")
        batch = scope.run.load().get("batch") or {}
        if not max_cost and not batch.get("max_cost"):
            return
        estimate = estimate_cost(request["model"], estimate_tokens(request),
                                 int(request["max_tokens"]), cfg.get("prices") or {}) or 0.0
        spent = journal.spent()
        if max_cost:
            limit = float(max_cost) + _granted(scope.run)
            if spent + estimate > limit:
                self._ask_budget(scope, spent, limit, estimate, index)
        if batch.get("max_cost"):
            # One budget for every run of the batch (agent_cli/llm/ledger.py).
            from agent_cli.llm.ledger import Ledger

            limit = float(batch["max_cost"]) + _granted(scope.run)
            fits, used = Ledger(Path(batch["dir"])).reserve(scope.run.id, spent, estimate, limit)
            if not fits:
                self._ask_budget(scope, used, limit, estimate, f"{index}-batch",
                                 f" by the runs of batch {batch['id']}")

    def _ask_budget(self, scope: durable.StepScope, spent: float, limit: float,
                    estimate: float, index: int | str, whose: str = "") -> None:
        answer = durable.wait(
            "budget",
            f"budget reached: ${spent:.2f} of ${limit:.2f} spent{whose}, and the next call "
            f"({scope.key}) may cost up to ${estimate:.2f}. Continue?",
            Answer,
            {"spent_usd": round(spent, 4), "max_cost_usd": limit,
             "next_call_estimate_usd": round(estimate, 4), "step": scope.key},
            position=index,
        )
        if not answer.approved:
            raise durable.Stop("rejected", answer.reason or
                               f"budget of ${limit:.2f} reached in {scope.key} and not raised")

    # -- plumbing ----------------------------------------------------------
    def _journal(self, calls_dir: Path) -> Journal:
        if calls_dir not in self._journals:
            self._journals[calls_dir] = Journal(calls_dir)
        return self._journals[calls_dir]

    def _transport(self, model_name: str) -> Transport:
        if model_name not in self._transports:
            if is_replay(model_name):
                ref = model_name[len(REPLAY_PREFIX):]
                path = Path(ref) if "/" in ref else self.runs_dir / ref
                self._transports[model_name] = ReplayTransport(path, model_name)
            else:
                self._transports[model_name] = AnthropicTransport(self.conn, _announce_retry)
        return self._transports[model_name]


def _announce_retry(info: dict[str, Any]) -> None:
    """A retry the SDK is about to wait for, on the run's timeline as it happens."""
    step = durable.current_step()
    durable.emit("model_retry", key=step.key if step else "", **info)


def _granted(run: durable.Run) -> float:
    """USD humans added with `approve --budget` to this run (run.json keeps every
    answer given, even when the wait's record was later moved aside)."""
    return sum(float((a.get("answer") or {}).get("budget") or 0.0)
               for a in run.load().get("answers") or [])


# -- requests and responses ------------------------------------------------


def build_request(*, model: str, max_tokens: int, tool: str, tools: dict[str, type[BaseModel]],
                  system: str, context: list[str], instruction: str,
                  choose: bool = False) -> dict[str, Any]:
    """The first request of a call. `choose`: the model may call helper tools before
    `tool` (tool_choice any, and a breakpoint on the instruction for the turns after)."""
    if tool not in tools:
        raise ModelError(f"tool {tool!r} is not among the tools offered: {sorted(tools)}")
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text} for text in context if text]
    if blocks:
        blocks[-1]["cache_control"] = CACHE
    blocks.append({"type": "text", "text": instruction, **({"cache_control": CACHE} if choose else {})})
    return {
        "model": model,
        "max_tokens": max_tokens,
        "system": [{"type": "text", "text": system, "cache_control": CACHE}],
        "tools": [tool_spec(name, cls) for name, cls in sorted(tools.items())],
        "tool_choice": {"type": "any"} if choose else {"type": "tool", "name": tool},
        "messages": [{"role": "user", "content": blocks}],
    }


def _tool_uses(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in response.get("content") or [] if b.get("type") == "tool_use"]


def _helper_turn(response: dict[str, Any], tool: str, helpers: frozenset[str]) -> bool:
    """The model called helper tools only (an answer, if any, wins)."""
    uses = _tool_uses(response)
    return bool(uses) and all(b.get("name") in helpers for b in uses) \
        and not any(b.get("name") == tool for b in uses)


def _next_turn(request: dict[str, Any], response: dict[str, Any], results: list[dict[str, Any]],
               *, force: str | None) -> dict[str, Any]:
    """The conversation so far plus the helper results. The cache breakpoint on tool
    results moves to the newest (the API allows four: system, context, instruction,
    newest result)."""
    messages = []
    for message in request["messages"]:
        content = message["content"]
        if message["role"] == "user" and any(b.get("type") == "tool_result" for b in content):
            content = [{k: v for k, v in b.items() if k != "cache_control"} for b in content]
        messages.append({**message, "content": content})
    results = [*results[:-1], {**results[-1], "cache_control": CACHE}]
    messages += [{"role": "assistant", "content": response.get("content") or []},
                 {"role": "user", "content": results}]
    choice = {"type": "tool", "name": force} if force else request["tool_choice"]
    return {**request, "tool_choice": choice, "messages": messages}


def tool_spec(name: str, cls: type[BaseModel]) -> dict[str, Any]:
    doc = (cls.__doc__ or "").strip() or f"Submit a {cls.__name__}."
    return {"name": name, "description": doc, "input_schema": cls.model_json_schema()}


def usage_of(response: dict[str, Any]) -> dict[str, int]:
    u = response.get("usage") or {}
    return {
        "input": int(u.get("input_tokens") or 0),
        "cache_write": int(u.get("cache_creation_input_tokens") or 0),
        "cache_read": int(u.get("cache_read_input_tokens") or 0),
        "output": int(u.get("output_tokens") or 0),
    }


def estimate_tokens(request: dict[str, Any]) -> int:
    """About four characters a token; generous on purpose (budgets err high)."""
    return len(json.dumps(request, ensure_ascii=False)) // 3


class _Invalid(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _cap_tool_inputs(response: dict[str, Any]) -> dict[str, Any]:
    """`response` with every tool input over MAX_TOOL_INPUT_CHARS replaced by its size."""
    content = response.get("content")
    if not isinstance(content, list):
        return response
    capped, changed = [], False
    for block in content:
        if isinstance(block, dict) and block.get("type") == "tool_use":
            size = len(json.dumps(block.get("input"), ensure_ascii=False))
            if size > MAX_TOOL_INPUT_CHARS:
                block, changed = {**block, "input": {OVERSIZED: size}}, True
        capped.append(block)
    return {**response, "content": capped} if changed else response


def _parse(output: type[T], tool: str, response: dict[str, Any]) -> T:
    uses = _tool_uses(response)
    if not uses:
        return_text = " ".join(b.get("text", "") for b in response.get("content") or [])[:200]
        raise _Invalid(f"no call of the tool {tool} in the answer (it said: {return_text!r})")
    block = next((b for b in uses if b.get("name") == tool), uses[0])
    if block.get("name") != tool:
        raise _Invalid(f"called the tool {block.get('name')!r} instead of {tool!r}")
    size = (block.get("input") or {}).get(OVERSIZED)
    if isinstance(size, int):
        raise _Invalid(f"the input was {size:,} characters of JSON; at most "
                       f"{MAX_TOOL_INPUT_CHARS:,} are taken, so it was not read. Answer "
                       "with less: only what the schema asks for, and for edits only the "
                       "lines that change with a few of context, never whole files")
    try:
        return output.model_validate(block.get("input") or {})
    except ValidationError as exc:
        lines = [
            f"- {'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()[:20]
        ]
        raise _Invalid("the input does not match the schema:\n" + "\n".join(lines)) from None


def _repair_request(request: dict[str, Any], response: dict[str, Any], tool: str,
                    problem: str) -> dict[str, Any]:
    content = response.get("content") or []
    uses = _tool_uses(response)
    messages = list(request["messages"])
    messages.append({"role": "assistant", "content": content or [{"type": "text", "text": "(no answer)"}]})
    fix = f"{problem}\nCall the tool {tool} again with corrected input."
    if uses:
        results = [{"type": "tool_result", "tool_use_id": b["id"], "is_error": True,
                    "content": fix} for b in uses]
        messages.append({"role": "user", "content": results})
    else:
        messages.append({"role": "user", "content": [{"type": "text", "text": fix}]})
    return {**request, "messages": messages}
