"""Every `--json` output has the shape the README's "JSON output" section lists.

The key lists are read from README.md itself, so the documentation and the code
cannot drift apart: a renamed or dropped key fails here, and so does a README that
names a key the code does not print.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.e2e import scenario
from tests.fakes.anthropic_server import FakeAnthropic

README = scenario.REPO / "README.md"


def documented() -> dict[str, list[set[str]]]:
    text = README.read_text()
    section = text.split("## JSON output", 1)[1].split("\n## ", 1)[0]
    shapes = {}
    for line in section.splitlines():
        m = re.match(r"^- (.*?): ", line)
        if m and "`{" in line:
            shapes[m.group(1)] = [set(map(str.strip, g.split(",")))
                                  for g in re.findall(r"`\{([a-z_, ]+)\}`", line)]
    return shapes


@dataclass
class Outputs:
    solve: dict
    timeline: dict
    wait: dict
    run_cost: dict
    all_costs: dict
    runs: list
    clean: list
    locate: dict


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outputs]:
    base = tmp_path_factory.mktemp("shapes")
    repo = scenario.make_repo(base)
    with FakeAnthropic() as server:
        scenario.script_happy(server)
        env = scenario.agent_env(server, base)

        def get(*args: str) -> object:
            proc = scenario.agent([*args, "--json"], repo, env)
            assert proc.returncode == 0, f"{args}: {proc.stderr}"
            return json.loads(proc.stdout)

        solve = get("solve", scenario.issue(repo), "--auto-approve")
        run_id = solve["run_id"]  # type: ignore[index]
        yield Outputs(solve=solve, timeline=get("inspect", run_id),  # type: ignore[arg-type]
                      wait=get("inspect", run_id, "--step", "approve_plan"),  # type: ignore[arg-type]
                      run_cost=get("cost", run_id), all_costs=get("cost"),  # type: ignore[arg-type]
                      runs=get("runs"), clean=get("clean", run_id),  # type: ignore[arg-type]
                      locate=get("locate", scenario.issue(repo)))  # type: ignore[arg-type]


def shape(label: str) -> list[set[str]]:
    shapes = documented()
    assert label in shapes, f"README's JSON output section lists no {label!r}: {sorted(shapes)}"
    return shapes[label]


def test_the_readme_section_parses() -> None:
    assert len(documented()) == 11  # batch's: tests/e2e/test_batch.py


def test_commands_that_execute(out: Outputs) -> None:
    (keys,) = shape("`solve`, `approve`, `reject`, `resume`, `replay`")
    assert set(out.solve) == keys


def test_inspect(out: Outputs) -> None:
    (keys,) = shape("`inspect RUN`")
    assert set(out.timeline) == keys
    run_keys, runs_adds = shape("`inspect RUN` `run`, and each item of `runs`")
    assert set(out.timeline["run"]) == run_keys
    assert all(set(r) == run_keys | runs_adds for r in out.runs)
    (step_keys,) = shape("`inspect RUN` each of `steps`")
    assert out.timeline["steps"] and all(set(s) == step_keys for s in out.timeline["steps"])


def test_inspect_a_wait(out: Outputs) -> None:
    (keys,) = shape("`inspect RUN --step STEP`")
    assert keys <= set(out.wait)
    assert not [k for k in out.wait if k.startswith("_")]


def test_costs(out: Outputs) -> None:
    (totals,) = shape("totals")
    (keys,) = shape("`cost RUN`")
    assert set(out.run_cost) == keys
    assert set(out.run_cost["total"]) == totals
    for group in (out.run_cost["steps"], out.run_cost["models"]):
        assert group and all(set(v) == totals for v in group.values())
    keys, row_adds = shape("`cost`")
    assert set(out.all_costs) == keys
    assert set(out.all_costs["total"]) == totals
    assert all(set(r) == totals | row_adds for r in out.all_costs["rows"])


def test_clean_and_locate(out: Outputs) -> None:
    (keys,) = shape("`clean`")
    assert out.clean and all(set(r) == keys for r in out.clean)
    (keys,) = shape("`locate`")
    assert set(out.locate) == keys


def test_runs_age_is_a_number(out: Outputs) -> None:
    assert all(isinstance(r["age"], int) for r in out.runs)
