"""The answer a human gives to any wait (plan approval, budget, fix attempts)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Answer(BaseModel):
    """What `agent approve` / `agent reject` record for a pending wait."""

    model_config = ConfigDict(extra="forbid")

    approved: bool = Field(description="Yes (approve) or no (reject).")
    comment: str | None = Field(default=None, description="Free text given with --comment.")
    reason: str | None = Field(default=None, description="Why it was rejected (--reason).")
    budget: float | None = Field(
        default=None, ge=0, description="USD added to the run's max_cost (--budget)."
    )
