"""`agent show`: a run's conversation with the model, from its call journal alone.

Each journaled call (`calls/NNNN.json`) becomes one entry: what the model was shown
(the system prompt, the context blocks and the instruction; for a later turn of the
same conversation, a helper's answer or a repair, only what is new), what it answered
(the blocks of its response), and what the call cost: model, tokens, dollars, latency,
retries, and whether it was served from the journal or a recording. Plain dicts for
`views/transcript.py`; like `reports.py`, nothing here imports the SDK or the stages.
"""

from __future__ import annotations

from typing import Any

from agent_cli.durable import Run
from agent_cli.errors import UsageError
from agent_cli.pipeline.reports import calls


def transcript(run: Run, step: str | None = None) -> dict[str, Any]:
    """The run's calls in order (those of `step` only, when given)."""
    every = calls(run)
    if step is not None:
        chosen = [c for c in every if c.get("step") == step]
        if not chosen:
            steps = list(dict.fromkeys(c.get("step") for c in every))
            raise UsageError(f"run {run.id} has no model call in step {step!r}",
                             hint="steps with calls: " + (", ".join(map(str, steps)) or "none"))
    else:
        chosen = every
    data = run.load()
    return {"run_id": run.id, "issue": (data.get("issue") or {}).get("title", ""),
            "parent": data.get("parent"), "calls": [_entry(c) for c in chosen]}


def _entry(call: dict[str, Any]) -> dict[str, Any]:
    request = call.get("request")
    return {
        "number": call.get("number"), "step": call.get("step"),
        "call_index": call.get("call_index"), "model": call.get("model"),
        "status": call.get("status"), "usage": call.get("usage") or {},
        "cost_usd": call.get("cost_usd"), "latency_s": call.get("latency_s"),
        "retries": call.get("retries") or 0, "served_from": call.get("served_from"),
        "error": call.get("error"),
        "shown": _shown(request) if isinstance(request, dict) else None,
        "answer": ((call.get("response") or {}).get("content") or []),
    }


def _shown(request: dict[str, Any]) -> dict[str, Any]:
    """What this call showed the model. The first turn: system prompt, tools and the
    user's blocks. A later turn of the same conversation (after helper calls, or a
    repair turn) repeats all of that: only its newest user message is new."""
    messages = request.get("messages") or []
    system = request.get("system") or []
    system_text = "\n".join(b.get("text", "") for b in system) if isinstance(system, list) \
        else str(system)
    choice = request.get("tool_choice") or {}
    last = messages[-1] if messages else {"content": []}
    content = last.get("content")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
    return {
        "system": system_text if len(messages) <= 1 else None,
        "tools": [t.get("name") for t in request.get("tools") or []],
        "forced": choice.get("name") if choice.get("type") == "tool" else None,
        "earlier_messages": max(len(messages) - 1, 0),
        "blocks": [_block(b) for b in blocks],
    }


def _block(block: dict[str, Any]) -> dict[str, Any]:
    if block.get("type") == "tool_result":
        content = block.get("content")
        text = content if isinstance(content, str) else "\n".join(
            b.get("text", "") for b in content or [] if isinstance(b, dict))
        return {"type": "tool_result", "text": text, "is_error": bool(block.get("is_error"))}
    return {"type": block.get("type", "text"), "text": block.get("text", "")}


def answers(run: Run, key: str) -> list[dict[str, Any]]:
    """What the model submitted in step `key` (the input of each `submit_*` call, in
    order; helper calls left out): `inspect --step fix_code` shows the explanation."""
    found = []
    for call in calls(run):
        if call.get("step") != key or call.get("status") != "ok":
            continue
        for block in (call.get("response") or {}).get("content") or []:
            if block.get("type") == "tool_use" and str(block.get("name")).startswith("submit_"):
                found.append({"tool": block["name"], "input": block.get("input") or {}})
    return found
