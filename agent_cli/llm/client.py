"""Transports: how a request reaches a model. The SDK, or a recording.

`Transport` is the seam (a Protocol, no inheritance): `send(request, step, index)`
returns the response message as plain JSON and how many retries it took.
`AnthropicTransport` is the official SDK, imported on the first call and never
before (it costs about a second); its own retries cover 408/409/429/5xx/529 and
timeouts, with backoff and `retry-after`. We do not stream, so there is no
overloaded error arriving mid-stream to retry ourselves. Every SDK error becomes
one of ours, with a message that names the cause and what to do.
`ReplayTransport` serves the responses a run recorded, by step key and call index.

Retries are shown as they happen ("overloaded, retry 2/4 in 4 s"): the SDK retries
inside one `create` call and tells nobody but its debug log, so the client here is a
subclass whose `_sleep_for_retry` (the SDK's method that computes the wait and
sleeps) reports each retry to `on_retry` first. With an SDK without that method the
retries still happen, only unseen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agent_cli.llm.errors import (
    AuthError,
    BadRequest,
    ModelRejected,
    PromptTooLong,
    ReplayMissing,
    ServiceUnavailable,
)
from agent_cli.llm.journal import Journal


@dataclass
class Sent:
    response: dict[str, Any]
    retries: int
    served_from: str | None = None
    original_cost_usd: float | None = None


class Transport(Protocol):
    def send(self, request: dict[str, Any], step: str, index: int) -> Sent: ...


@dataclass
class Connection:
    """How to reach the service; taken from the current invocation, never recorded."""

    api_key: str | None
    base_url: str | None
    timeout: float = 600
    max_retries: int = 4


RetryHook = Callable[[dict[str, Any]], None]

# What a retried status means to a person watching.
_RETRY_REASONS = {408: "request timeout", 409: "conflict", 429: "rate limited",
                  529: "overloaded"}


class AnthropicTransport:
    def __init__(self, conn: Connection, on_retry: RetryHook | None = None) -> None:
        self.conn = conn
        self.on_retry = on_retry
        self._client: Any = None

    def _sdk(self) -> Any:
        if self._client is None:
            self._client = _client_class()(
                on_retry=self.on_retry,
                api_key=self.conn.api_key,
                base_url=self.conn.base_url,
                timeout=self.conn.timeout,
                max_retries=self.conn.max_retries,
            )
        return self._client

    def send(self, request: dict[str, Any], step: str, index: int) -> Sent:
        import anthropic

        try:
            raw = self._sdk().messages.with_raw_response.create(**request)
        except anthropic.APIStatusError as exc:
            raise _status_error(exc, request, step, self.conn) from exc
        except anthropic.APITimeoutError as exc:
            raise ServiceUnavailable(
                f"{step}: the model request timed out after {self.conn.timeout:.0f} s "
                f"and {self.conn.max_retries} retries",
                hint="resume the run (agent resume RUN); if it keeps timing out, start a "
                "new run with a larger request_timeout",
            ) from exc
        except anthropic.APIConnectionError as exc:
            where = self.conn.base_url or "https://api.anthropic.com"
            raise ServiceUnavailable(
                f"{step}: cannot reach the model service at {where} "
                f"after {self.conn.max_retries} retries ({exc})",
                hint="check the network or ANTHROPIC_BASE_URL, then resume the run",
            ) from exc
        message = raw.parse()
        return Sent(response=message.model_dump(mode="json", exclude_none=False),
                    retries=raw.retries_taken)


def _client_class() -> type:
    import anthropic

    class Client(anthropic.Anthropic):
        def __init__(self, *, on_retry: RetryHook | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._on_retry = on_retry

        def _sleep_for_retry(self, *, retries_taken: int, max_retries: int, options: Any,
                             response: Any, **rest: Any) -> None:
            headers = response.headers if response is not None else None
            wait = self._calculate_retry_timeout(max_retries - retries_taken, options, headers)
            if self._on_retry is not None:
                self._on_retry({"attempt": retries_taken + 1, "max_retries": max_retries,
                                "delay_s": round(wait, 2), **retry_cause(response)})
            time.sleep(wait)

    return Client


def retry_cause(response: Any) -> dict[str, Any]:
    """The status and a few words on why a request is retried (None: no response,
    the connection failed or timed out)."""
    if response is None:
        return {"status": None, "reason": "no response (connection failed or timed out)"}
    status = int(response.status_code)
    reason = _RETRY_REASONS.get(status) or ("server error" if status >= 500 else "error")
    return {"status": status, "reason": reason}


def _status_error(exc: Any, request: dict[str, Any], step: str, conn: Connection) -> Exception:
    status = exc.status_code
    body = exc.body if isinstance(exc.body, dict) else {}
    said_error = body.get("error")
    err = said_error if isinstance(said_error, dict) else {}
    kind = err.get("type", "error")
    text = err.get("message") or str(exc)
    said = f"{status} {kind}: {text}"
    if status in (401, 403):
        return AuthError(
            f"{step}: the model service refused the API key ({said})",
            hint="set a valid key in ANTHROPIC_API_KEY (or api_key in .agentrc), "
            "then resume the run",
        )
    if status == 404 and "model" in text.lower():
        return ModelRejected(
            f"{step}: the model service does not know model {request.get('model')!r} ({said})",
            hint="pick another with --model (aliases: sonnet, opus, haiku)",
        )
    if status == 413 or "prompt is too long" in text.lower():
        size = len(str(request.get("messages", ""))) // 4
        return PromptTooLong(
            f"{step}: the prompt is too long for {request.get('model')} "
            f"(about {size:,} tokens of messages; {said})",
            hint="replay from this step with a model that has a longer context "
            "(agent replay RUN --from STEP --model M), or start a new run with a lower "
            "context_tokens (e.g. AGENT_CONTEXT_TOKENS=15000 agent solve ...)",
        )
    if status in (408, 409, 429) or status >= 500:
        return ServiceUnavailable(
            f"{step}: the model service kept failing ({said}) after {conn.max_retries} retries",
            hint="wait a little, then resume the run",
        )
    return BadRequest(f"{step}: the model service rejected the request ({said})")


class ReplayTransport:
    """Serves a recorded run's responses. `source` is a run directory (or its
    calls/ directory)."""

    def __init__(self, source: Path, label: str) -> None:
        calls = source / "calls" if (source / "calls").is_dir() else source
        if not calls.is_dir():
            raise ReplayMissing(
                f"no recording at {source}",
                hint="replay:<run-id> needs a run of this repository (see agent runs)",
            )
        self.journal = Journal(calls)
        self.label = label

    def send(self, request: dict[str, Any], step: str, index: int) -> Sent:
        rec = self.journal.answered(step, index)
        if rec is None:
            raise ReplayMissing(
                f"{step}: the recording {self.label} has no call #{index} for step {step}",
                hint="replay a run that reached this step, or use a real model",
            )
        return Sent(response=rec["response"], retries=0,
                    served_from=f"{self.label}/{rec['number']:04d}",
                    original_cost_usd=rec.get("cost_usd") or rec.get("original_cost_usd"))
