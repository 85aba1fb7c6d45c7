"""Dollars for a call, from genai-prices or a per-model override in settings.

Anthropic reports `input_tokens` as the uncached part only; genai-prices expects the
total input with the cached parts inside it, so the two are added up here. A model
nobody can price is not an error: its cost is recorded as unknown (None) and the
cost views say so.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from agent_cli.llm.models import ALIASES

TOKEN_KINDS = ("input", "cache_write", "cache_read", "output")


def price_call(model: str, usage: dict[str, int], overrides: dict[str, Any]) -> tuple[float | None, str]:
    """(cost in USD or None, where the price came from)."""
    override = _override_for(model, overrides)
    if override is not None:
        per_m = {
            "input": override["input"],
            "output": override["output"],
            "cache_write": override.get("cache_write") if override.get("cache_write") is not None
            else override["input"] * 1.25,
            "cache_read": override.get("cache_read") if override.get("cache_read") is not None
            else override["input"] * 0.1,
        }
        cost = sum(Decimal(str(per_m[k])) * usage.get(k, 0) for k in TOKEN_KINDS) / 1_000_000
        return float(cost), "settings"
    try:
        from genai_prices import Usage, calc_price

        result = calc_price(
            Usage(
                input_tokens=usage.get("input", 0) + usage.get("cache_write", 0)
                + usage.get("cache_read", 0),
                cache_write_tokens=usage.get("cache_write", 0),
                cache_read_tokens=usage.get("cache_read", 0),
                output_tokens=usage.get("output", 0),
            ),
            model_ref=model,
            provider_id="anthropic",
        )
    except LookupError:
        return None, "unknown"
    return float(result.total_price), "genai-prices"


def estimate_cost(model: str, input_tokens: int, output_tokens: int,
                  overrides: dict[str, Any]) -> float | None:
    """A conservative price for a call not yet made: nothing cached, full output."""
    cost, _ = price_call(model, {"input": input_tokens, "output": output_tokens}, overrides)
    return cost


def _override_for(model: str, overrides: dict[str, Any]) -> dict[str, Any] | None:
    if model in overrides:
        return overrides[model]
    for alias, model_id in ALIASES.items():
        if model_id == model and alias in overrides:
            return overrides[alias]
    return None
