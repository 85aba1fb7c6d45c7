"""Run ids people can type (issue 15): short and sorted by time, named by any unique
prefix or suffix, ambiguity listed, old long ids still working, shell completion of
ids and step names without the SDK, and `agent runs` never cutting an id.

One real run through the fake model server; the older id form is made by copying
that run's directory under an old-style name, as an .agent directory of an earlier
version would hold it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.test_read_commands import _run_in_pty
from tests.e2e import scenario
from tests.fakes.anthropic_server import FakeAnthropic

OLD_A = "20200101-093000-a1b2"
OLD_B = "20200101-120000-c3d4"


@dataclass
class Repo:
    path: Path
    env: dict[str, str]
    new: str


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    base = tmp_path_factory.mktemp("ids")
    path = scenario.make_repo(base)
    with FakeAnthropic() as server:
        env = scenario.agent_env(server, base)
        scenario.script_happy(server)
        proc = scenario.agent(["solve", scenario.issue(path), "--auto-approve", "--json"],
                              path, env)
        assert proc.returncode == 0, proc.stderr
        new = json.loads(proc.stdout)["run_id"]
    runs = path / ".agent" / "runs"
    for old in (OLD_A, OLD_B):  # runs an earlier version made, with long ids
        shutil.copytree(runs / new, runs / old)
        data = json.loads((runs / old / "run.json").read_text())
        data["id"] = old
        (runs / old / "run.json").write_text(json.dumps(data))
    yield Repo(path, env, new)


def agent(repo: Repo, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return scenario.agent(list(args), repo.path, repo.env, **kw)  # type: ignore[arg-type]


def snapshot(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in (root / ".agent").rglob("*")}


def test_a_new_id_is_a_date_and_five_letters(repo: Repo) -> None:
    assert re.fullmatch(r"\d{8}-[0-9a-z]{5}", repo.new), repo.new
    assert len(repo.new) <= 14


def test_newest_run_is_the_default_whatever_the_id_form(repo: Repo) -> None:
    """New ids sort after old ones of earlier days: RUN omitted is the newest run."""
    proc = agent(repo, "inspect", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["run"]["id"] == repo.new
    rows = json.loads(agent(repo, "runs", "--json").stdout)
    assert [r["id"] for r in rows] == [repo.new, OLD_B, OLD_A]


@pytest.mark.parametrize("part", ["suffix", "prefix", "old suffix", "old prefix", "whole old"])
def test_a_unique_part_names_the_run(repo: Repo, part: str) -> None:
    ref, expected = {
        "suffix": (repo.new[-3:], repo.new), "prefix": (repo.new[:12], repo.new),
        "old suffix": ("c3d4", OLD_B), "old prefix": ("20200101-09", OLD_A),
        "whole old": (OLD_A, OLD_A),
    }[part]
    proc = agent(repo, "inspect", ref, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["run"]["id"] == expected
    assert agent(repo, "cost", ref, "--json").returncode == 0


def test_an_ambiguous_part_lists_the_candidates(repo: Repo) -> None:
    before = snapshot(repo.path)
    proc = agent(repo, "resume", "20200101")
    assert proc.returncode == 2, proc.stderr
    assert "matches 2 runs" in proc.stderr
    assert OLD_A in proc.stderr and OLD_B in proc.stderr
    assert "from its start or its end" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(repo.path) == before, "an ambiguous RUN must change nothing"


def _complete(repo: Repo, words: str, *, python_flags: tuple[str, ...] = ()
              ) -> subprocess.CompletedProcess[str]:
    env = {**repo.env, "_AGENT_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    return subprocess.run([sys.executable, *python_flags, "-m", "agent_cli"], cwd=repo.path,
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def test_completion_offers_run_ids_newest_first(repo: Repo) -> None:
    proc = _complete(repo, "agent inspect ")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [repo.new, OLD_B, OLD_A]
    assert _complete(repo, "agent approve 2020").stdout.split() == [OLD_B, OLD_A]


def test_completion_offers_the_steps_of_the_named_run(repo: Repo) -> None:
    proc = _complete(repo, f"agent inspect {repo.new[-4:]} --step ")
    assert proc.returncode == 0, proc.stderr
    steps = proc.stdout.split()
    assert steps[:3] == ["analyze_issue", "explore_codebase", "create_plan"], steps
    assert "create_pr" in steps
    assert _complete(repo, f"agent replay {OLD_A} --from wr").stdout.split() == ["write_code"]


def test_completion_does_not_import_the_sdk(repo: Repo) -> None:
    proc = _complete(repo, "agent inspect --step ", python_flags=("-X", "importtime"))
    assert proc.returncode == 0
    assert not any(line.rstrip().endswith(" anthropic") for line in proc.stderr.splitlines())


def test_runs_at_60_columns_shows_whole_ids(repo: Repo) -> None:
    env = {**repo.env, "COLUMNS": "60", "LINES": "40", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    _, out = _run_in_pty(["runs"], repo.path, env)
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out)
    for run_id in (repo.new, OLD_A, OLD_B):
        assert run_id in text, f"{run_id} cut at 60 columns:\n{text}"
    assert max(len(line) for line in text.splitlines()) <= 60, text
