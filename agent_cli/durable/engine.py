"""Flows, checkpoints and waits: record before you return, look up before you run.

A flow is a plain Python function. Inside it, each `@checkpoint` call gets a key
(`name` for its first call in a run, `name-k` for its k-th), a position (`seq`) and
a fingerprint of what it depends on: its arguments as canonical JSON, the prompt
text it declares, and the model when it uses one. On execution the engine:

- looks up the record for that key: when it is `done`, at the same position, with
  the same fingerprint, and nothing before it re-ran in this execution, the stored
  output is rebuilt into the declared return type and returned without running;
- otherwise runs the body, after moving later records aside (they describe a future
  that no longer follows), and records the output, or the failure with its
  traceback, before returning. The new record says why the step ran again.

`wait()` is a checkpoint whose answer comes from a human: an unanswered wait records
itself as pending and raises `Suspended`, which unwinds the flow so the process can
exit 75 holding nothing. Answering writes the answer into the record; re-entering the
flow from the top then replays every record up to the wait and returns the answer.

Resuming, approving and replaying are all the same operation: run the flow again
from the top against the records on disk (`execute`). Replay is a new run whose
steps/ starts with copies of the parent's records before the named step (`fork`).
"""

from __future__ import annotations

import functools
import inspect
import signal
import time
import traceback
import typing
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from agent_cli.durable.errors import AgentError, StorageError, Suspended, UsageError
from agent_cli.durable.fingerprint import Unfingerprintable, digest, digest_text, to_jsonable
from agent_cli.durable.store import Run, RunStore, keep_reserve, now_iso, release_reserve, state

F = TypeVar("F", bound=Callable[..., Any])

_current: ContextVar[Execution | None] = ContextVar("agent_durable_execution", default=None)

EventSink = Callable[[dict[str, Any]], None]


class DurableError(AgentError):
    """The flow was used in a way the engine cannot record faithfully."""


class Stop(BaseException):
    """Ends the run from anywhere in the flow, a step included, with a final status
    (a human said no to a wait asked inside a step). Not an error: nothing to resume."""

    def __init__(self, run_status: str, reason: str) -> None:
        super().__init__(reason)
        self.run_status = run_status
        self.reason = reason


@dataclass
class StepScope:
    """What code inside a running checkpoint can see of it (the model layer uses
    this to journal its calls under the step key)."""

    key: str
    name: str
    seq: int
    run: Run
    previous_error: str | None = None  # the exception type of this step's last attempt
    calls: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _call_index: int = 0
    _record: dict[str, Any] = field(default_factory=dict)
    _write: Callable[[dict[str, Any]], None] | None = None

    def next_call_index(self) -> int:
        self._call_index += 1
        return self._call_index

    def add_call(self, summary: dict[str, Any]) -> None:
        self.calls.append(summary)

    def note(self, **fields: Any) -> None:
        """Write `fields` into the running step's record now, before the step ends:
        what a later process must know if this one dies mid-step (the id of a test
        process group to clean up). They stay in the finished record."""
        self._record.setdefault("notes", {}).update(to_jsonable(fields))
        if self._write is not None:
            self._write(self._record)


class Execution:
    """One process executing one run, from the top of the flow."""

    def __init__(self, run: Run, data: dict[str, Any], on_event: EventSink | None) -> None:
        self.run = run
        self.data = data
        self.on_event = on_event
        self.base_config: dict[str, Any] = dict(data.get("settings") or {})
        # Replay overrides, one layer per fork: each applies from the position of the
        # step it was forked at, so a replay of a replay sees, at every step, the
        # settings the step was computed with.
        self.layers: list[dict[str, Any]] = list((data.get("overrides") or {}).get("layers") or [])
        self.records = {r["key"]: r for r in run.records()}
        self.written: set[str] = set()
        self.counts: dict[str, int] = {}
        self.seq = 0
        self.between = True  # flow code between two steps (not at a step's call)
        self.diverged_at: str | None = None
        self.step: StepScope | None = None

    @property
    def config(self) -> dict[str, Any]:
        # Inside a step, settings are those of its position; between steps, those of
        # the next step (flow code reads e.g. max_attempts just before a fix_code).
        position = self.seq + 1 if self.between else self.seq
        merged = dict(self.base_config)
        for layer in self.layers:
            if position >= layer["from_seq"]:
                merged.update(layer["values"])
        return merged

    def next_key(self, name: str) -> str:
        n = self.counts.get(name, 0) + 1
        self.counts[name] = n
        self.seq += 1
        self.between = False
        return name if n == 1 else f"{name}-{n}"

    def emit(self, kind: str, **fields: Any) -> None:
        ev = self.run.event(kind, **fields)
        if self.on_event is not None:
            self.on_event(ev)

    def supersede_after(self, seq: int, key: str) -> None:
        """Move aside records that follow position `seq` (and this key's own old
        record): once a step re-runs, what came after it is no longer this run's
        future. Waits nested in the re-running step stay: their answers (a budget
        raise) still hold for the step they were asked in."""
        for rec in list(self.records.values()):
            later = rec["seq"] > seq and rec.get("within") != key
            if rec["key"] in self.written or not (later or rec["key"] == key):
                continue
            self.run.supersede(rec["_file"])
            rec["_superseded"] = True

    def write(self, record: dict[str, Any]) -> None:
        path = self.run.write_record(record)
        record["_file"] = path.name
        self.written.add(record["key"])


# -- checkpoints -------------------------------------------------------------


def checkpoint(
    fn: F | None = None,
    *,
    name: str | None = None,
    prompt: str | Callable[[], str] | None = None,
    uses_model: bool = False,
) -> Any:
    """Make `fn` a durable step. `prompt` is the template text (or a function
    returning it) that the step sends to a model; `uses_model` adds the configured
    model to the fingerprint. Outside a flow the function runs as plain Python."""

    def decorate(func: F) -> F:
        step_name = name or func.__name__
        sig = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ex = _current.get()
            if ex is None:
                return func(*args, **kwargs)
            if ex.step is not None:
                raise DurableError(
                    f"checkpoint {step_name} was called inside {ex.step.key}; "
                    "checkpoints do not nest"
                )
            key = ex.next_key(step_name)
            try:
                return _run_checkpoint(ex, func, key, step_name, sig, args, kwargs, prompt,
                                       uses_model)
            finally:
                ex.between = True

        wrapper.__durable_step__ = step_name  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate(fn) if fn is not None else decorate


def _run_checkpoint(ex: Execution, func: Callable[..., Any], key: str, step_name: str,
                    sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any],
                    prompt: str | Callable[[], str] | None, uses_model: bool) -> Any:
    seq = ex.seq
    parts = _fingerprint_parts(step_name, sig, args, kwargs, prompt, uses_model, ex)
    fingerprint = digest(parts)
    old = ex.records.get(key)
    if _reusable(ex, old, seq, fingerprint):
        try:
            output = _rebuild(func, old["output"])  # type: ignore[index]
        except Exception:
            pass  # the declared type changed: run it again
        else:
            ex.written.add(key)
            ex.emit("step_reused", key=key, reused_from=old.get("reused_from"))  # type: ignore[union-attr]
            return output
    return _execute(ex, func, key, step_name, seq, parts, fingerprint, old, args, kwargs)


def _fingerprint_parts(
    step_name: str,
    sig: inspect.Signature,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    prompt: str | Callable[[], str] | None,
    uses_model: bool,
    ex: Execution,
) -> dict[str, Any]:
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    try:
        inputs = digest(dict(bound.arguments))
    except Unfingerprintable as exc:
        raise DurableError(
            f"checkpoint {step_name}: an argument cannot be recorded: {exc}") from None
    text = prompt() if callable(prompt) else prompt
    return {
        "inputs": inputs,
        "prompt": digest_text(text) if text is not None else None,
        "model": ex.config.get("model") if uses_model else None,
    }


def _reusable(ex: Execution, old: dict[str, Any] | None, seq: int, fingerprint: str) -> bool:
    return (
        old is not None
        and not old.get("_superseded")
        and ex.diverged_at is None
        and old.get("status") == "done"
        and old.get("seq") == seq
        and old.get("fingerprint") == fingerprint
    )


def _rerun_reason(
    ex: Execution, old: dict[str, Any] | None, seq: int, parts: dict[str, Any]
) -> str | None:
    if old is None:
        return None
    status = old.get("status")
    if status == "failed":
        err = old.get("error") or {}
        return f"previous attempt failed ({err.get('type', 'error')})"
    if status == "running":
        return "interrupted: the previous process stopped inside this step"
    if status == "interrupted":
        return "interrupted (Ctrl-C)"
    if status == "suspended":
        return "resumed after a wait"
    old_parts = old.get("fingerprint_parts") or {}
    changed = [f"{what} changed" for what in ("inputs", "prompt", "model")
               if old_parts.get(what) != parts[what]]
    if changed:
        return ", ".join(changed)
    if ex.diverged_at:
        return f"an earlier step re-ran ({ex.diverged_at})"
    if old.get("seq") != seq:
        return "the flow's order of steps changed"
    return "its stored output no longer matches the declared type"


def _execute(
    ex: Execution,
    func: Callable[..., Any],
    key: str,
    step_name: str,
    seq: int,
    parts: dict[str, Any],
    fingerprint: str,
    old: dict[str, Any] | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    reason = _rerun_reason(ex, old, seq, parts)
    ex.supersede_after(seq, key)
    if ex.diverged_at is None:
        ex.diverged_at = key
    record: dict[str, Any] = {
        "kind": "step",
        "key": key,
        "name": step_name,
        "seq": seq,
        "status": "running",
        "started_at": now_iso(),
        "fingerprint": fingerprint,
        "fingerprint_parts": parts,
        "rerun_reason": reason,
        "model": ex.config.get("model") if parts["model"] is not None else None,
    }
    ex.write(record)
    ex.emit("step_started", key=key, reason=reason)
    previous_error = (old or {}).get("error", {}).get("type") if (old or {}).get("status") == "failed" else None
    scope = StepScope(key=key, name=step_name, seq=seq, run=ex.run, previous_error=previous_error,
                      _record=record, _write=ex.write)
    ex.step = scope
    try:
        result = func(*args, **kwargs)
        output = _dump(func, result)
    except Suspended:
        _finish(ex, record, scope, "suspended")
        raise
    except Stop:
        _finish(ex, record, scope, "stopped")
        raise
    except KeyboardInterrupt:
        _finish(ex, record, scope, "interrupted")
        ex.emit("step_interrupted", key=key)
        raise
    except BaseException as exc:
        record["error"] = {
            "type": type(exc).__name__,
            "message": exc.message if isinstance(exc, AgentError) else str(exc),
            "traceback": "".join(traceback.format_exception(exc)),
        }
        exc.__durable_step__ = key  # type: ignore[attr-defined]
        # On a full or read-only disk the record may not be writable either: the
        # disk's error is the one to report, and the run's record is tried next.
        if _despite_full_disk(ex.run, lambda: _finish(ex, record, scope, "failed")):
            _despite_full_disk(ex.run, lambda: ex.emit(
                "step_failed", key=key, error=record["error"]["message"]))
        raise
    finally:
        ex.step = None
    record["output"] = output
    _finish(ex, record, scope, "done")
    ex.emit("step_done", key=key, seconds=record["seconds"], cost_usd=record["cost_usd"])
    return result


def _finish(ex: Execution, record: dict[str, Any], scope: StepScope, status: str) -> None:
    record["status"] = status
    record["finished_at"] = now_iso()
    record["seconds"] = round(time.monotonic() - scope.started, 3)
    record["calls"] = scope.calls
    record["usage"] = _sum_usage(scope.calls)
    costs = [c.get("cost_usd") for c in scope.calls]
    record["cost_usd"] = None if any(c is None for c in costs) else sum(costs)
    ex.write(record)


def _sum_usage(calls: list[dict[str, Any]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for call in calls:
        for kind, n in (call.get("usage") or {}).items():
            if isinstance(n, int):
                total[kind] = total.get(kind, 0) + n
    return total


@functools.cache
def _adapter(func: Callable[..., Any]) -> Any:
    from pydantic import TypeAdapter

    hints = typing.get_type_hints(func)
    ret = hints.get("return")
    return TypeAdapter(ret) if ret is not None else None


def _dump(func: Callable[..., Any], value: Any) -> Any:
    adapter = _adapter(func)
    if adapter is None:
        return to_jsonable(value)
    return adapter.dump_python(value, mode="json")


def _rebuild(func: Callable[..., Any], stored: Any) -> Any:
    adapter = _adapter(func)
    return stored if adapter is None else adapter.validate_python(stored)


# -- waits -------------------------------------------------------------------


def wait(
    name: str,
    question: str,
    schema: type[Any],
    metadata: dict[str, Any] | None = None,
    *,
    auto: dict[str, Any] | None = None,
    position: str | int | None = None,
) -> Any:
    """Ask a human. Returns the answer (an instance of `schema`, a pydantic model)
    when there is one; otherwise records the question and suspends the run. With
    `auto`, answers itself with that value and records that it did."""
    ex = _current.get()
    if ex is None:
        if auto is None:
            raise DurableError(f"wait {name} outside a flow has nobody to ask")
        return schema.model_validate(auto)
    if ex.step is None:
        key, seq, within = ex.next_key(name), ex.seq, None
        ex.between = True  # a wait reads no settings; what follows is the next step's
    else:
        # A wait inside a step (a budget check before a model call) is named by the
        # step and the caller's position in it, and takes no place in the flow: on
        # re-execution the same question at the same point finds its answer, and a
        # question the step no longer asks leaves no gap in the numbering.
        if position is None:
            raise DurableError(f"wait {name} inside {ex.step.key} needs a position")
        key, seq, within = f"{name}@{ex.step.key}#{position}", ex.step.seq, ex.step.key
    old = ex.records.get(key)
    if (old is not None and not old.get("_superseded") and old.get("status") == "answered"
            and old.get("within") == within):
        ex.written.add(key)
        return schema.model_validate(old["answer"])
    pending = {
        "kind": "wait",
        "key": key,
        "name": name,
        "seq": seq,
        "within": within,
        "question": question,
        "schema": schema.model_json_schema(),
        "metadata": to_jsonable(metadata or {}),
        "asked_at": now_iso(),
    }
    if within is None:
        ex.supersede_after(seq, key)
    if auto is not None:
        answer = schema.model_validate(auto)
        pending.update(status="answered", answer=to_jsonable(answer),
                       answered_at=now_iso(), answered_by="auto")
        ex.write(pending)
        ex.emit("wait_answered", key=key, answered_by="auto")
        return answer
    pending["status"] = "pending"
    ex.write(pending)
    data = ex.run.load()
    data.update(status="waiting", pending_wait={
        k: pending[k] for k in ("key", "question", "schema", "metadata", "within", "asked_at")
    })
    ex.run.save(data)
    ex.emit("wait_pending", key=key, question=question)
    raise Suspended(key, question)


# -- flows -------------------------------------------------------------------


_FLOWS: dict[str, Callable[..., Any]] = {}


def flow(fn: F) -> F:
    """Register `fn` as a flow that runs can be started, resumed and replayed with."""
    fn.__durable_flow__ = fn.__name__  # type: ignore[attr-defined]
    _FLOWS[fn.__name__] = fn
    return fn


def current() -> Execution | None:
    return _current.get()


def config() -> dict[str, Any]:
    """The run's settings as the current step sees them (with replay overrides once
    the replayed-from step is reached). Empty outside a flow."""
    ex = _current.get()
    return ex.config if ex else {}


def current_step() -> StepScope | None:
    ex = _current.get()
    return ex.step if ex else None


def note(**fields: Any) -> None:
    """`StepScope.note` for the step running now (no-op outside a step)."""
    step = current_step()
    if step is not None:
        step.note(**fields)


def emit(kind: str, **fields: Any) -> None:
    """Append an event to the running flow's timeline (no-op outside a flow)."""
    ex = _current.get()
    if ex is not None:
        ex.emit(kind, **fields)


def progress(kind: str, **fields: Any) -> None:
    """Tell whoever watches the running flow how far a step has got (tests run, files
    indexed). Not written to the timeline: it changes many times a second and says
    nothing the step's record will not say. No-op outside a flow."""
    ex = _current.get()
    if ex is not None and ex.on_event is not None:
        if ex.step is not None:
            fields.setdefault("key", ex.step.key)
        ex.on_event({"event": kind, **fields})


@dataclass
class Outcome:
    """How an execution ended."""

    run_id: str
    status: str  # succeeded | waiting | failed | rejected | interrupted
    result: Any = None
    reason: str | None = None
    pending_wait: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    signal: int | None = None  # for `interrupted`: the signal that stopped it


def create(
    store: RunStore,
    flow_fn: Callable[..., Any],
    inputs: dict[str, Any],
    *,
    settings: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Run:
    return store.create({
        "flow": _flow_name(flow_fn),
        "inputs": to_jsonable(inputs),
        "settings": to_jsonable(settings or {}),
        "parent": None,
        "overrides": None,
        "pending_wait": None,
        "result": None,
        "reason": None,
        "error": None,
        **to_jsonable(meta or {}),
    })


def execute(
    run: Run,
    flow_fn: Callable[..., Any],
    *,
    answer: dict[str, Any] | None = None,
    on_event: EventSink | None = None,
) -> Outcome:
    """Run the flow from the top against the run's records, holding its lock.
    With `answer`, first record it as the answer to the pending wait."""
    _check_can_execute(run, run.load(), flow_fn, answer)  # before the lock writes anything
    with run.lock():
        keep_reserve(run.path.parent.parent)
        data = run.load()
        _check_can_execute(run, data, flow_fn, answer)
        if answer is not None:
            _record_answer(run, data, answer)
        resumed = data.get("status") != "created"
        data.update(status="running", pending_wait=None, error=None)
        run.save(data)
        ex = Execution(run, data, on_event)
        ex.emit("run_resumed" if resumed else "run_started", pid=_pid())
        token = _current.set(ex)
        try:
            return _drive(ex, flow_fn, data)
        finally:
            _current.reset(token)


def _drive(ex: Execution, flow_fn: Callable[..., Any], data: dict[str, Any]) -> Outcome:
    run = ex.run
    try:
        result = flow_fn(**_rebuild_inputs(flow_fn, data.get("inputs") or {}))
    except Suspended as s:
        ex.emit("run_waiting", key=s.key)
        data = run.load()
        return Outcome(run.id, "waiting", reason=s.question, pending_wait=data.get("pending_wait"))
    except Stop as stop:
        run.update(status=stop.run_status, reason=stop.reason)
        ex.emit("run_finished", status=stop.run_status)
        return Outcome(run.id, stop.run_status, reason=stop.reason)
    except KeyboardInterrupt as stop_signal:
        said = str(getattr(stop_signal, "reason", "interrupted by Ctrl-C"))
        run.update(status="interrupted", reason=said)
        ex.emit("run_interrupted", reason=said)
        return Outcome(run.id, "interrupted", reason=said,
                       signal=getattr(stop_signal, "signum", signal.SIGINT))
    except Exception as exc:
        step = getattr(exc, "__durable_step__", None)
        message = exc.message if isinstance(exc, AgentError) else str(exc)
        if isinstance(exc, StorageError):  # the run is there to be resumed
            exc.hint = (exc.hint or "").replace("run the command again",
                                                f"agent resume {run.id}")
        error = {
            "type": type(exc).__name__,
            "message": message,
            "step": step,
            "hint": getattr(exc, "hint", None),
            "exit_code": getattr(exc, "exit_code", 1),
            "traceback": "".join(traceback.format_exception(exc)),
        }
        where = f" in {step}" if step else ""
        reason = f"{type(exc).__name__}{where}: {message}"
        recorded = _despite_full_disk(
            run, lambda: run.update(status="failed", error=error, reason=reason))
        if recorded:
            _despite_full_disk(run, lambda: ex.emit("run_failed", step=step, error=message))
        else:
            error["hint"] = f"{error['hint'] or 'fix the disk'} (the failure could not be " \
                "recorded: until then, agent runs shows this run as interrupted)"
        return Outcome(run.id, "failed", reason=reason, error=error)
    status = getattr(result, "run_status", "succeeded")
    why: str | None = getattr(result, "reason", None)
    dumped = to_jsonable(result)
    run.update(status=status, result=dumped, reason=why)
    ex.emit("run_finished", status=status)
    return Outcome(run.id, status, result=result, reason=why)


def _check_can_execute(
    run: Run, data: dict[str, Any], flow_fn: Callable[..., Any], answer: dict[str, Any] | None
) -> None:
    if data.get("flow") != _flow_name(flow_fn):
        raise DurableError(f"run {run.id} is a {data.get('flow')} run, not {_flow_name(flow_fn)}")
    waiting = data.get("status") == "waiting" and data.get("pending_wait")
    if answer is not None and not waiting:
        raise UsageError(
            f"run {run.id} is not waiting for an answer: it {state(run.status(data))}",
            hint="see what it is doing with: agent inspect " + run.id,
        )
    if answer is None and waiting:
        raise UsageError(
            f"run {run.id} is waiting for an answer to {data['pending_wait']['key']}",
            hint=f"answer it with: agent approve {run.id}   or: agent reject {run.id}",
        )


def _record_answer(run: Run, data: dict[str, Any], answer: dict[str, Any]) -> None:
    key = data["pending_wait"]["key"]
    record = next((r for r in run.records() if r["key"] == key), None)
    if record is None:
        raise DurableError(f"run {run.id}: the pending wait {key} has no record")
    stamp = now_iso()
    record.update(status="answered", answer=answer, answered_at=stamp, answered_by="human")
    run.write_record(record)
    # Also kept in run.json: a record can be moved aside later, a given answer stays given.
    data["answers"] = [*(data.get("answers") or []), {"key": key, "answer": answer, "at": stamp}]
    run.save(data)
    run.event("wait_answered", key=key, answered_by="human")


def _rebuild_inputs(flow_fn: Callable[..., Any], stored: dict[str, Any]) -> dict[str, Any]:
    from pydantic import TypeAdapter

    hints = typing.get_type_hints(flow_fn)
    return {
        name: TypeAdapter(hints[name]).validate_python(value) if name in hints else value
        for name, value in stored.items()
    }


def _flow_name(flow_fn: Callable[..., Any]) -> str:
    name = getattr(flow_fn, "__durable_flow__", None)
    if name is None:
        raise DurableError(f"{flow_fn.__name__} is not a flow: decorate it with @flow")
    return name


def _despite_full_disk(run: Run, write: Callable[[], object]) -> bool:
    """Write a failure down even on a full disk: on ENOSPC, give back the reserve
    (`store.keep_reserve`) and try once more. Whether it was written; a disk that
    refuses for another reason (read-only) is not written to at all."""
    import errno

    for attempt in (1, 2):
        try:
            write()
            return True
        except StorageError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            if attempt == 2 or not full or not release_reserve(run.path.parent.parent):
                return False
    return False


def _pid() -> int:
    import os

    return os.getpid()


# -- replay ------------------------------------------------------------------


def fork(
    store: RunStore,
    parent: Run,
    from_step: str,
    overrides: dict[str, Any] | None = None,
) -> Run:
    """A new run whose records are copies of the parent's records that precede the
    first call of `from_step` (a step name or key), marked `reused_from`. The parent
    is only read."""
    data = parent.load()
    records = parent.records()
    target = next((r for r in records if from_step in (r["name"], r["key"])), None)
    if target is None:
        names = list(dict.fromkeys(r["name"] for r in records if r.get("kind") == "step"))
        raise UsageError(
            f"run {parent.id} has no step {from_step!r}",
            hint="steps of that run: " + (", ".join(names) or "none yet"),
        )
    values = {k: v for k, v in (overrides or {}).items() if v is not None}
    layers = [*((data.get("overrides") or {}).get("layers") or []),
              {"from_seq": target["seq"], "from_step": target["key"], "values": to_jsonable(values)}]
    # Built aside and renamed into place: a crash mid-copy leaves no half-made run.
    child = store.create({
        **{k: v for k, v in data.items() if k not in _RUN_STATE},
        "status": "created",
        "parent": {"run_id": parent.id, "from_step": target["key"]},
        "overrides": {"from_step": target["key"], "values": values, "layers": layers},
        "pending_wait": None,
        "result": None,
        "reason": None,
        "error": None,
    }, staged=True)
    for rec in records:
        if rec["seq"] >= target["seq"] or rec.get("status") not in ("done", "answered"):
            continue
        copy = {k: v for k, v in rec.items() if k != "_file"}
        copy["reused_from"] = rec.get("reused_from") or parent.id
        child.write_record(copy)
    child.event("run_forked", parent=parent.id, from_step=target["key"], overrides=values)
    return store.publish(child)


# Not inherited by a fork: its own identity and state, and the parent's answers
# (budget granted to the parent was for the parent's spending).
_RUN_STATE = ("id", "status", "created_at", "updated_at", "schema_version", "answers")


EXIT_CODES = {"succeeded": 0, "rejected": 0, "failed": 1, "waiting": 75, "interrupted": 130}


def exit_code(outcome: Outcome) -> int:
    """DESIGN.md's exit code for how an execution ended; an interruption by a signal
    other than SIGINT is 128 + its number, as a shell reports it (143 for SIGTERM)."""
    if outcome.status == "interrupted" and outcome.signal:
        return 128 + outcome.signal
    if outcome.status == "failed" and (outcome.error or {}).get("exit_code") in (2, 74):
        # Bad input found mid-run (a test command that does not work), or a disk
        # that refused a write.
        return int(outcome.error["exit_code"])  # type: ignore[index]
    return EXIT_CODES.get(outcome.status, 1)
