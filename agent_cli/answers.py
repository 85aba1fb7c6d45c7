"""The answer a human gives to any wait (plan approval, budget, fix attempts)."""

from __future__ import annotations

from typing import Any

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


class PlanAnswer(Answer):
    """An answer at the plan gate, which may also send the plan back: re-plan with the
    reviewer's words (`agent revise`), or take the reviewer's own plan (`agent edit`).
    Either way the run comes back to the gate with the new plan."""

    feedback: str | None = Field(
        default=None, description="Plan again with these words (agent revise).")
    plan: dict[str, Any] | None = Field(
        default=None, description="The reviewer's edited plan, a PlanDraft (agent edit).")
