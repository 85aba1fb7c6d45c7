"""What the read-only commands show, computed from the run directory alone.

`inspect`, `cost`, `runs` and `diff` must start fast and must not import the SDK,
pydantic models of the stages, or git libraries: everything here reads JSON files
through `durable` and returns plain dicts for `views/` to render.

Money comes from the call journal (`calls/`), which has every call ever paid for in
a run, including those of attempts that were later superseded; a step record only
describes its latest attempt. Steps copied from a parent run by `replay` cost this
run nothing: their original cost is shown as saved.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from agent_cli.durable import CorruptRecord, Run, RunStore, fsio

KINDS = ("input", "cache_write", "cache_read", "output")


def calls(run: Run) -> list[dict[str, Any]]:
    if not run.calls_dir.is_dir():
        return []
    return [fsio.read_json(p) for p in sorted(run.calls_dir.glob("[0-9]*.json"))]


def spent_usd(run: Run) -> float:
    """Dollars this run paid (served and failed calls cost nothing; unknown counts 0)."""
    return sum(c.get("cost_usd") or 0.0 for c in calls(run))


def unpriced(run: Run) -> bool:
    """Whether a call this run paid for has no known price (a model genai-prices does
    not know, without `prices:`): its spending is then unknown, not $0."""
    return any(c.get("status", "ok") == "ok" and not c.get("served_from")
               and c.get("cost_usd") is None and c.get("usage") for c in calls(run))


def complete(totals: dict[str, Any]) -> dict[str, Any]:
    """A totals dict in its documented shape, whatever was added to it: every token
    kind, `cost_usd` (None when every call was unpriced) and `unknown_cost`."""
    unknown = bool(totals.get("unknown_cost"))
    known = totals.get("cost_usd")
    return {**{k: int(totals.get(k, 0)) for k in KINDS},
            "cost_usd": None if unknown and known is None else float(known or 0.0),
            "unknown_cost": unknown}


def _add(total: dict[str, Any], usage: dict[str, int], cost: float | None) -> None:
    for k in KINDS:
        total[k] = total.get(k, 0) + int(usage.get(k, 0))
    if cost is None:
        total["unknown_cost"] = True
    else:
        total["cost_usd"] = total.get("cost_usd", 0.0) + cost


def timeline(run: Run) -> dict[str, Any]:
    data = run.load()
    by_step: dict[str, dict[str, Any]] = defaultdict(dict)
    served: dict[str, int] = defaultdict(int)
    for c in calls(run):
        if c.get("served_from"):
            served[c["step"]] += 1
        if _counts(c):
            _add(by_step[c["step"]], c.get("usage") or {}, c.get("cost_usd"))
    steps = []
    for rec in run.records():
        totals = by_step.get(rec["key"], {})
        reused = rec.get("reused_from")
        is_step = rec.get("kind", "step") == "step"
        steps.append({
            "key": rec["key"], "kind": rec.get("kind", "step"), "status": rec.get("status"),
            "seconds": rec.get("seconds"), "model": _model_of(rec) or rec.get("model"),
            "tokens": sum(totals.get(k, 0) for k in KINDS),
            "cost_usd": None if totals.get("unknown_cost") else totals.get("cost_usd", 0.0),
            "reused_from": reused, "saved_usd": rec.get("cost_usd") if reused and is_step else None,
            "served_calls": served.get(rec["key"], 0), "rerun_reason": rec.get("rerun_reason"),
            "error": (rec.get("error") or {}).get("message"),
            "question": rec.get("question"), "answer": rec.get("answer"),
        })
    return {"run": _summary(run, data), "steps": steps, "pending_wait": data.get("pending_wait"),
            "error": data.get("error"), "result": data.get("result")}


def _counts(call: dict[str, Any]) -> bool:
    """Whether a call's tokens count: a call served again from this run's own journal
    (a resumed step) repeats tokens already counted; one served from a recording
    (the replay: model) is this run's only record of them."""
    return not str(call.get("served_from") or "").startswith("journal/")


def _model_of(rec: dict[str, Any]) -> str | None:
    models = {c.get("model") for c in rec.get("calls") or []}
    return ", ".join(sorted(m for m in models if m)) or None


def _summary(run: Run, data: dict[str, Any]) -> dict[str, Any]:
    result = data.get("result") or {}
    return {
        "id": run.id, "status": run.status(data), "created_at": data.get("created_at"),
        "updated_at": data.get("updated_at"), "issue": (data.get("issue") or {}).get("title"),
        "model": (data.get("settings") or {}).get("model"),
        "overrides": (data.get("overrides") or {}).get("values"),
        "parent": data.get("parent"), "reason": data.get("reason"),
        "branch": result.get("branch") if isinstance(result, dict) else None,
        "base_commit": (data.get("repo") or {}).get("base_commit"),
        "sandbox": sandbox_detail(run, data),
    }


def sandbox_detail(run: Run, data: dict[str, Any]) -> str | None:
    """What confined the run's tests: as the last test run recorded it, else as
    checked when the run started (runs made before the sandbox existed: None)."""
    for rec in reversed(run.records()):
        output = rec.get("output")
        if rec.get("name") == "run_tests" and isinstance(output, dict) and output.get("sandbox"):
            return str(output["sandbox"])
    return (data.get("sandbox") or {}).get("detail")


def step_record(run: Run, step: str) -> dict[str, Any] | None:
    records = run.records()
    return next((r for r in records if r["key"] == step), None) or next(
        (r for r in reversed(records) if r.get("name") == step), None)


def run_cost(run: Run) -> dict[str, Any]:
    per_step: dict[str, dict[str, Any]] = {}
    per_model: dict[str, dict[str, Any]] = defaultdict(dict)
    total: dict[str, Any] = {}
    recorded = 0.0
    for c in calls(run):
        if not _counts(c):
            continue
        usage, cost = c.get("usage") or {}, c.get("cost_usd")
        _add(per_step.setdefault(c["step"], {}), usage, cost)
        _add(per_model[c.get("model") or "?"], usage, cost)
        _add(total, usage, cost)
        recorded += c.get("original_cost_usd") or 0.0 if c.get("served_from") else 0.0
    saved = 0.0
    reused = []
    for rec in run.records():
        if rec.get("reused_from") and rec.get("kind", "step") == "step":
            saved += rec.get("cost_usd") or 0.0
            reused.append({"key": rec["key"], "from": rec["reused_from"],
                           "cost_usd": rec.get("cost_usd")})
    return {"run": run.id, "steps": {k: complete(v) for k, v in per_step.items()},
            "models": {k: complete(v) for k, v in per_model.items()}, "total": complete(total),
            "reused": reused, "saved_usd": saved, "served_recorded_usd": recorded}


def all_costs(store: RunStore) -> dict[str, Any]:
    """Every run's calls by day and model. A run whose files cannot be read is left
    out and noted in `store.warnings`: one damaged run must not hide the others."""
    rows: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    total: dict[str, Any] = {}
    counted = 0
    for run_id in store.ids():
        try:
            its_calls = calls(store.get(run_id))
        except CorruptRecord as exc:
            store.damaged(run_id, exc)
            continue
        counted += 1
        for c in filter(_counts, its_calls):
            day = (c.get("started_at") or "")[:10]
            _add(rows[(day, c.get("model") or "?")], c.get("usage") or {}, c.get("cost_usd"))
            _add(total, c.get("usage") or {}, c.get("cost_usd"))
    out = [{"day": d, "model": m, **complete(v)} for (d, m), v in sorted(rows.items())]
    return {"rows": out, "total": complete(total), "runs": counted}


def list_runs(store: RunStore) -> list[dict[str, Any]]:
    """A summary per run, newest first; a damaged run is skipped as in `all_costs`."""
    out = []
    for run_id in reversed(store.ids()):
        run = store.get(run_id)
        try:
            data = run.load()
            spent = spent_usd(run)
            summary = _summary(run, data)
            summary["cost_unknown"] = unpriced(run)
        except CorruptRecord as exc:
            store.damaged(run_id, exc)
            continue
        summary["cost_usd"] = spent
        summary["age"] = _age(data.get("created_at"))
        out.append(summary)
    return out


def _age(stamp: str | None) -> int | None:
    """Whole seconds since `stamp` (an ISO time), for `runs --json`; views shorten it."""
    if not stamp:
        return None
    return int((datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds())


def run_diff(run: Run) -> str | None:
    """The latest change the run produced (write_code or a fix), or a stopped run's diff."""
    result = run.load().get("result")
    if isinstance(result, dict) and result.get("diff"):
        return result["diff"]
    for rec in reversed(run.records()):
        output = rec.get("output")
        if isinstance(output, dict) and "diff" in output:
            return output["diff"]
    return None


def pr_text(run: Run) -> str | None:
    path = run.path / "pr.md"
    return path.read_text(encoding="utf-8") if path.exists() else None
