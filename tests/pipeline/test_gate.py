"""The plan as a document a person edits: what comes back is checked before anything
is recorded, and a plan nobody touched fingerprints as it did before the gate could
change it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent_cli.durable.fingerprint import digest
from agent_cli.pipeline.artifacts import Estimate, ImplementationPlan, PlannedChange, PlannedTest
from agent_cli.pipeline.gate import BadPlanEdit, plan_document, read_plan_document

PLAN = ImplementationPlan(
    summary="Take SAVE coupons as a percentage.\nKeep FLAT coupons: they are right.",
    changes=[PlannedChange(path="cart.py", action="modify", description="In Cart.total: use %"),
             PlannedChange(path="tests/test_new.py", action="create", description="a: test")],
    tests=[PlannedTest(id="tests/test_new.py::test_pct", kind="new", reason="the bug")],
    estimate=Estimate(input_tokens=1, output_tokens=2, calls=3, cost_usd=None))


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "cart.py").write_text("x = 1\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return tmp_path, git("rev-parse", "HEAD")


def test_a_document_read_back_unchanged_is_the_same_plan(repo: tuple[Path, str]) -> None:
    text = plan_document(PLAN, "run-1")
    assert text.startswith("# The plan of run run-1.")
    draft = read_plan_document(text, *repo)
    assert draft is not None
    assert (draft.summary, draft.changes, draft.tests) == (PLAN.summary, PLAN.changes, PLAN.tests)


@pytest.mark.parametrize(("edit", "said"), [
    (lambda t: t.replace("action: modify", "action: rewrite"), "changes[1].action: Input should be"),
    (lambda t: t + "reviewer: me\n", "reviewer: Extra inputs are not permitted"),
    (lambda t: t.replace("changes:", "changes: [oops"), "not valid YAML at line"),
    (lambda t: t.replace("path: cart.py", "path: ../outside.py"), "changes[1].path: refused"),
    (lambda t: t.replace("path: cart.py", "path: carts.py"), "carts.py does not exist at the base"),
    (lambda t: t.replace("path: tests/test_new.py", "path: cart.py"), "already exists"),
])
def test_a_bad_edit_says_where(repo: tuple[Path, str], edit, said: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadPlanEdit) as caught:
        read_plan_document(edit(plan_document(PLAN, "r")), *repo)
    assert said in caught.value.message


def test_an_emptied_document_cancels(repo: tuple[Path, str]) -> None:
    assert read_plan_document("# only comments\n\n", *repo) is None


def test_an_untouched_plan_fingerprints_as_before_and_a_comment_changes_it() -> None:
    before = {"summary": PLAN.summary, "changes": [c.model_dump() for c in PLAN.changes],
              "tests": [t.model_dump() for t in PLAN.tests], "estimate": PLAN.estimate.model_dump()}
    assert digest(PLAN) == digest(before)  # runs made before the gate could edit resume as they were
    assert digest(PLAN.model_copy(update={"review": "keep FLAT"})) != digest(PLAN)
    assert digest(PLAN.model_copy(update={"author": "human"})) != digest(PLAN)
