"""Issues from anywhere (issue 15): `agent solve ISSUE.md | - | --text TEXT | URL | '#N'`,
GitHub through a fake `gh` on PATH, and the limits on an issue's text (at most 1 MB,
UTF-8, no NUL bytes). Every bad source: exit 2, one message naming the problem and
the way round it, nothing written.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import scenario
from tests.fakes.anthropic_server import FakeAnthropic

GH = """#!{python}
import json, os, sys
with open(os.environ["FAKE_GH_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_GH_FAIL"):
    sys.stderr.write(os.environ["FAKE_GH_FAIL"] + "\\n")
    sys.exit(1)
print(json.dumps({{"title": "Percentage coupons take off a flat amount",
                  "body": "SAVE10 on 160.0 gives 150.0, not 144.0. GH-BODY-MARK",
                  "comments": [{{"author": {{"login": "carol"}},
                                "body": "Also FLAT coupons must stay. GH-COMMENT-MARK"}}]}}))
"""


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def setup(server: FakeAnthropic, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    server.reset()
    scenario.script_happy(server)
    repo = scenario.make_repo(tmp_path)
    env = scenario.agent_env(server, tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(GH.format(python=sys.executable))
    (bin_dir / "gh").chmod(0o755)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    env["FAKE_GH_LOG"] = str(tmp_path / "gh.log")
    return repo, env


def gh_calls(env: dict[str, str]) -> list[list[str]]:
    log = Path(env["FAKE_GH_LOG"])
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def analysis_prompt(server: FakeAnthropic) -> str:
    (request,) = server.find(tool="submit_analysis")
    return json.dumps(request.body)


def solve_to_gate(repo: Path, env: dict[str, str], *args: str, stdin: str | None = None
                  ) -> dict:
    proc = subprocess.run([sys.executable, "-m", "agent_cli", "solve", *args, "--json"],
                          cwd=repo, env=env, input=stdin, capture_output=True, text=True, check=False,
                          timeout=120)
    assert proc.returncode == 75, proc.stderr
    return scenario.run_json(repo, json.loads(proc.stdout)["run_id"])


def refused(repo: Path, env: dict[str, str], *args: str, stdin: bytes | None = None,
            says: tuple[str, ...]) -> str:
    proc = subprocess.run([sys.executable, "-m", "agent_cli", "solve", *args], cwd=repo,
                          env=env, input=stdin, capture_output=True, timeout=120, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "Traceback" not in err, err
    for phrase in says:
        assert phrase in err, f"{phrase!r} not in: {err}"
    assert not (repo / ".agent").exists(), "a refused issue must write nothing"
    return err


def test_a_github_issue_url_is_fetched_with_gh(server: FakeAnthropic,
                                               setup: tuple[Path, dict[str, str]]) -> None:
    repo, env = setup
    url = "https://github.com/acme/shop/issues/12"
    data = solve_to_gate(repo, env, url)
    assert gh_calls(env) == [["issue", "view", "12", "--repo", "acme/shop", "--json",
                              "title,body,comments"]]
    assert data["issue"] == {"title": "Percentage coupons take off a flat amount", "path": url}
    prompt = analysis_prompt(server)
    assert "GH-BODY-MARK" in prompt and "GH-COMMENT-MARK" in prompt and "@carol" in prompt


def test_hash_n_uses_the_checkouts_github_remote(server: FakeAnthropic,
                                                 setup: tuple[Path, dict[str, str]]) -> None:
    repo, env = setup
    scenario.git(repo, "remote", "add", "origin", "git@github.com:acme/shop-fork.git")
    data = solve_to_gate(repo, env, "#7")
    assert gh_calls(env)[0][:5] == ["issue", "view", "7", "--repo", "acme/shop-fork"]
    assert data["issue"]["path"] == "https://github.com/acme/shop-fork/issues/7"


def test_issue_from_stdin(server: FakeAnthropic, setup: tuple[Path, dict[str, str]]) -> None:
    repo, env = setup
    text = Path(scenario.issue(repo)).read_text() + "\nSTDIN-MARK\n"
    data = solve_to_gate(repo, env, "-", stdin=text)
    assert data["issue"]["title"] == "Percentage coupons take off a flat amount"
    assert "STDIN-MARK" in analysis_prompt(server)
    assert gh_calls(env) == []


def test_issue_from_text(server: FakeAnthropic, setup: tuple[Path, dict[str, str]]) -> None:
    repo, env = setup
    data = solve_to_gate(repo, env, "--text",
                         "SAVE coupons take off a flat amount\n\nTEXT-MARK in Cart.total")
    assert data["issue"]["title"] == "SAVE coupons take off a flat amount"
    assert "TEXT-MARK" in analysis_prompt(server)


def test_gh_missing(setup: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    repo, env = setup
    env = {**env, "PATH": scenario.without_bwrap(tmp_path)}  # git and sh, no gh
    refused(repo, env, "https://github.com/acme/shop/issues/12",
            says=("`gh` is not installed", "https://cli.github.com", "agent solve ISSUE.md"))


def test_gh_failing(setup: tuple[Path, dict[str, str]]) -> None:
    repo, env = setup
    env = {**env, "FAKE_GH_FAIL": "GraphQL: Could not resolve to an issue (repository.issue)"}
    refused(repo, env, "https://github.com/acme/shop/issues/99",
            says=("gh could not fetch issue #99 of acme/shop", "Could not resolve",
                  "gh auth status"))


def test_hash_n_without_a_github_remote(setup: tuple[Path, dict[str, str]]) -> None:
    repo, env = setup
    refused(repo, env, "#3", says=("no GitHub remote", "https://github.com/OWNER/REPO/issues/N"))
    assert gh_calls(env) == []


def test_not_a_github_issue_url(setup: tuple[Path, dict[str, str]]) -> None:
    repo, env = setup
    refused(repo, env, "https://gitlab.com/acme/shop/-/issues/4",
            says=("not a GitHub issue URL",))


def test_issue_and_text_together(setup: tuple[Path, dict[str, str]]) -> None:
    repo, env = setup
    refused(repo, env, scenario.issue(repo), "--text", "x", says=("give the issue once",))


def test_an_issue_over_1_mb(setup: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    repo, env = setup
    big = tmp_path / "BIG.md"
    big.write_text("# Huge log\n" + "line of a log that goes on\n" * 40_000)
    refused(repo, env, str(big), says=("larger than 1 MB", "cut it"))
    refused(repo, env, "-", stdin=big.read_bytes(), says=("stdin is larger than 1 MB",))


@pytest.mark.parametrize("content", [b"# Title\n\x00\x01\x02binary", b"# Title\n\xff\xfe bad"])
def test_a_binary_issue(setup: tuple[Path, dict[str, str]], tmp_path: Path,
                        content: bytes) -> None:
    repo, env = setup
    path = tmp_path / "ISSUE.bin"
    path.write_bytes(content)
    err = refused(repo, env, str(path), says=(str(path),))
    assert "NUL bytes" in err or "not UTF-8" in err
    shutil.rmtree(repo / ".agent", ignore_errors=True)
