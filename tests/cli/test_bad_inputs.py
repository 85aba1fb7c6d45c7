"""Every bad input through a real `agent` process: exit 2, one clear message on stderr
that names the problem and the fix, and nothing changed on disk (DESIGN.md: "2 usage
or input error, nothing changed").

"Nothing changed" is checked strictly: the whole repository tree (every file's bytes
and every directory, `.git/` and `.agent/` included) is snapshotted before and after
the command, and must be identical. Where there was no `.agent/` before, there must
be none after.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_cli.durable import RunStore
from tests.e2e import scenario
from tests.fakes.anthropic_server import FakeAnthropic

Snapshot = dict[str, bytes | None]

ANSI = re.compile(r"\x1b\[")
PROGRESS = re.compile(r"[a-z_]+(-\d+)?: (started( \(.*\))?|reused( from .*)?|failed in .*)")


# -- helpers -------------------------------------------------------------------------


def snapshot(*roots: Path) -> Snapshot:
    """Every file's bytes (and every directory, as None; symlinks as their target)."""
    out: Snapshot = {}
    for root in roots:
        if not root.exists():
            out[f"{root}"] = b"<absent>"
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            base = Path(dirpath)
            out[f"{base}/"] = None
            for name in filenames + [d for d in dirnames if (base / d).is_symlink()]:
                path = base / name
                if path.is_symlink():
                    out[str(path)] = b"-> " + os.readlink(path).encode()
                else:
                    out[str(path)] = path.read_bytes()
    return out


def diff_of(before: Snapshot, after: Snapshot) -> list[str]:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return ([f"+ {k}" for k in added] + [f"- {k}" for k in removed]
            + [f"~ {k}" for k in changed])


def run_agent(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent_cli", *args], cwd=cwd, env=env,
                          check=False, capture_output=True, text=True, timeout=120)


def expect_usage_error(args: list[str], cwd: Path, env: dict[str, str], *,
                       watch: list[Path], phrases: list[str],
                       no_agent_dir: Path | None = None) -> str:
    """Run `agent ARGS`; assert exit 2, one `error:` message naming `phrases` (case-
    insensitive, each a regex), no traceback, and the `watch`ed trees byte-identical."""
    if no_agent_dir is not None:
        assert not (no_agent_dir / ".agent").exists(), "precondition: no .agent/ yet"
    before = snapshot(*watch)
    proc = run_agent(args, cwd, env)
    after = snapshot(*watch)
    shown = (f"agent {' '.join(args)}\nexit {proc.returncode}\nstdout:\n{proc.stdout}"
             f"\nstderr:\n{proc.stderr}")
    problems = []
    if proc.returncode != 2:
        problems.append(f"exit code {proc.returncode}, want 2")
    if "Traceback" in proc.stderr + proc.stdout:
        problems.append("a traceback was printed")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"error:", line, re.IGNORECASE)]
    if len(errors) != 1:
        problems.append(f"want exactly one 'error:' line on stderr, got {len(errors)}")
    # One message: nothing before the error line but Typer's own "Usage:/Try"
    # preamble, and the plain progress lines of a step that was under way when the
    # service refused its first call (issue 15: each is printed as it happens).
    preamble = [line for line in lines[: lines.index(errors[0])]] if errors else []
    if any(not line.startswith(("Usage:", "Try ")) and not PROGRESS.fullmatch(line)
           for line in preamble):
        problems.append(f"lines before the error message: {preamble}")
    if ANSI.search(proc.stderr):
        problems.append("ANSI escape codes in the message")
    for phrase in phrases:
        if not re.search(phrase, proc.stderr, re.IGNORECASE):
            problems.append(f"{phrase!r} not in stderr")
    changes = diff_of(before, after)
    if changes:
        problems.append("disk changed:\n" + "\n".join(changes[:40]))
    if no_agent_dir is not None and (no_agent_dir / ".agent").exists():
        problems.append(".agent/ was created")
    assert not problems, "\n".join(problems) + "\n---\n" + shown
    return proc.stderr


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        scenario.script_happy(fake)
        yield fake


@pytest.fixture(scope="module")
def finished(server: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, str, dict[str, str]]:
    """A repository with one succeeded happy-path run: (repo, run id, env)."""
    base = tmp_path_factory.mktemp("finished")
    repo = scenario.make_repo(base)
    env = scenario.agent_env(server, base)
    proc = run_agent(["solve", str(base / "ISSUE.md"), "--auto-approve", "--json"], repo, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = RunStore(repo / ".agent").ids()
    assert len(runs) == 1
    return repo, runs[0], env


@pytest.fixture
def fresh(tmp_path: Path, server: FakeAnthropic) -> tuple[Path, Path, dict[str, str]]:
    """A new repository with no `.agent/`: (repo, issue path, env)."""
    repo = scenario.make_repo(tmp_path)
    env = scenario.agent_env(server, tmp_path)
    # git must not find a repository above tmp_path (for "not a git repository").
    env["GIT_CEILING_DIRECTORIES"] = str(tmp_path)
    return repo, tmp_path / "ISSUE.md", env


# -- solve: the issue and the repository ------------------------------------------------


def test_solve_missing_issue_file(fresh: tuple[Path, Path, dict[str, str]]) -> None:
    repo, issue, env = fresh
    missing = issue.parent / "NO-SUCH-ISSUE.md"
    expect_usage_error(["solve", str(missing)], repo, env, watch=[repo, issue.parent],
                       phrases=[r"issue file not found", re.escape("NO-SUCH-ISSUE.md"),
                                r"markdown file"], no_agent_dir=repo)


@pytest.mark.parametrize("blank", ["   \n\n\t  \n", "\ufeff\n", "\x00\n"])
def test_solve_empty_issue_file(fresh: tuple[Path, Path, dict[str, str]], blank: str) -> None:
    repo, issue, env = fresh
    issue.write_text(blank)
    expect_usage_error(["solve", str(issue)], repo, env, watch=[repo, issue.parent],
                       phrases=[r"empty", re.escape(issue.name), r"write"], no_agent_dir=repo)


def test_solve_issue_of_only_a_template_comment(fresh: tuple[Path, Path, dict[str, str]]) -> None:
    repo, issue, env = fresh
    issue.write_text("<!-- Describe the bug. Steps to reproduce. -->\n")
    expect_usage_error(["solve", str(issue)], repo, env, watch=[repo, issue.parent],
                       phrases=[r"no words", re.escape(issue.name), r"describe"],
                       no_agent_dir=repo)


def test_solve_outside_a_git_repository(fresh: tuple[Path, Path, dict[str, str]]) -> None:
    _, issue, env = fresh
    plain = issue.parent / "plain"
    plain.mkdir()
    (plain / "app.py").write_text("print('hi')\n")
    shutil.copy(issue, plain / "ISSUE.md")
    expect_usage_error(["solve", "ISSUE.md"], plain, env, watch=[plain],
                       phrases=[r"not a git repository", r"--repo"], no_agent_dir=plain)


def test_solve_repo_option_not_a_git_repository(fresh: tuple[Path, Path, dict[str, str]]) -> None:
    repo, issue, env = fresh
    plain = issue.parent / "plain"
    plain.mkdir()
    (plain / "app.py").write_text("print('hi')\n")
    expect_usage_error(["solve", str(issue), "--repo", str(plain)], repo, env,
                       watch=[plain, repo], phrases=[r"not a git repository", re.escape("plain"),
                                                     r"--repo|git checkout"],
                       no_agent_dir=plain)
    assert not (repo / ".agent").exists()


def test_solve_repo_option_missing_directory(fresh: tuple[Path, Path, dict[str, str]]) -> None:
    repo, issue, env = fresh
    gone = issue.parent / "gone"
    expect_usage_error(["solve", str(issue), "--repo", str(gone)], repo, env,
                       watch=[repo, issue.parent],
                       phrases=[r"not a git repository|does not exist|no such", re.escape("gone")],
                       no_agent_dir=repo)
    assert not gone.exists()


# -- run references ------------------------------------------------------------------


@pytest.mark.parametrize("command", ["inspect", "approve", "reject", "resume", "cost", "diff",
                                     "replay"])
def test_unknown_run_id(command: str, finished: tuple[Path, str, dict[str, str]]) -> None:
    repo, _, env = finished
    args = [command, "nope"] + (["--from", "write_code"] if command == "replay" else [])
    expect_usage_error(args, repo, env, watch=[repo],
                       phrases=[r"no run matches 'nope'", r"agent runs"])


def test_ambiguous_prefix(fresh: tuple[Path, Path, dict[str, str]]) -> None:
    repo, _, env = fresh
    store = RunStore(repo / ".agent")
    for suffix in ("aaaa", "aaab", "bbbb"):
        store.create({"issue": {"title": f"run {suffix}"}, "status": "interrupted"},
                     run_id=f"20261125-120000-{suffix}")
    for args in (["inspect", "2026"], ["cost", "20261125-120000"], ["resume", "20261125-120000-aa"]):
        n = "3" if args[1] != "20261125-120000-aa" else "2"
        expect_usage_error(args, repo, env, watch=[repo],
                           phrases=[rf"matches {n} runs", r"20261125-120000-aaaa",
                                    r"more characters"])


def test_no_runs_yet(fresh: tuple[Path, Path, dict[str, str]]) -> None:
    repo, _, env = fresh
    for command in ("inspect", "diff", "resume", "approve"):  # `cost` alone is every run
        expect_usage_error([command], repo, env, watch=[repo],
                           phrases=[r"no run", r"agent solve|agent runs"], no_agent_dir=repo)


def test_approve_a_run_that_is_not_waiting(finished: tuple[Path, str, dict[str, str]]) -> None:
    repo, run_id, env = finished
    for command in ("approve", "reject"):
        expect_usage_error([command, run_id], repo, env, watch=[repo],
                           phrases=[rf"run {run_id} is not waiting", r"succeeded",
                                    rf"agent inspect {run_id}"])


def test_approve_with_no_run_waiting(finished: tuple[Path, str, dict[str, str]]) -> None:
    repo, _, env = finished
    for command in ("approve", "reject"):
        expect_usage_error([command], repo, env, watch=[repo],
                           phrases=[r"no run is waiting", r"agent runs"])


def test_resume_a_finished_run(finished: tuple[Path, str, dict[str, str]]) -> None:
    repo, run_id, env = finished
    expect_usage_error(["resume", run_id], repo, env, watch=[repo],
                       phrases=[r"already succeeded", r"agent replay"])


def test_replay_from_unknown_step(finished: tuple[Path, str, dict[str, str]]) -> None:
    repo, run_id, env = finished
    before = RunStore(repo / ".agent").ids()
    err = expect_usage_error(["replay", run_id, "--from", "nosuchstep"], repo, env, watch=[repo],
                             phrases=[r"nosuchstep"])
    for step in ("analyze_issue", "explore_codebase", "create_plan", "write_code", "run_tests",
                 "create_pr"):
        assert step in err, f"the message should list the steps; {step} missing:\n{err}"
    assert RunStore(repo / ".agent").ids() == before


def test_inspect_unknown_step(finished: tuple[Path, str, dict[str, str]]) -> None:
    repo, run_id, env = finished
    err = expect_usage_error(["inspect", run_id, "--step", "nosuchstep"], repo, env,
                             watch=[repo], phrases=[r"no step 'nosuchstep'"])
    assert "create_plan" in err and "write_code" in err


# -- settings ------------------------------------------------------------------------


def test_agentrc_invalid_yaml(fresh: tuple[Path, Path, dict[str, str]]) -> None:
    repo, issue, env = fresh
    (repo / ".agentrc").write_text("model: [sonnet\nmax_attempts: 2\n")
    expect_usage_error(["solve", str(issue)], repo, env, watch=[repo],
                       phrases=[r"not valid YAML", re.escape(str(repo / ".agentrc")),
                                r"fix or remove"], no_agent_dir=repo)


def test_agentrc_unknown_key(fresh: tuple[Path, Path, dict[str, str]]) -> None:
    repo, issue, env = fresh
    (repo / ".agentrc").write_text("model: sonnet\nmax_atempts: 2\n")
    expect_usage_error(["solve", str(issue)], repo, env, watch=[repo],
                       phrases=[r"unknown setting 'max_atempts'", re.escape(str(repo / ".agentrc")),
                                r"max_attempts"], no_agent_dir=repo)


def test_agentrc_wrong_type(fresh: tuple[Path, Path, dict[str, str]]) -> None:
    repo, issue, env = fresh
    (repo / ".agentrc").write_text("max_attempts: many\n")
    expect_usage_error(["solve", str(issue)], repo, env, watch=[repo],
                       phrases=[r"'max_attempts'", re.escape(str(repo / ".agentrc")), r"many",
                                r"integer"], no_agent_dir=repo)


def test_user_agentrc_unknown_key(fresh: tuple[Path, Path, dict[str, str]]) -> None:
    repo, issue, env = fresh
    config = Path(env["AGENT_CONFIG_DIR"])
    config.mkdir(parents=True)
    (config / ".agentrc").write_text("colour: blue\n")
    expect_usage_error(["solve", str(issue)], repo, env, watch=[repo, config],
                       phrases=[r"unknown setting 'colour'", re.escape(str(config / ".agentrc"))],
                       no_agent_dir=repo)


def test_bad_env_var(fresh: tuple[Path, Path, dict[str, str]]) -> None:
    repo, issue, env = fresh
    expect_usage_error(["solve", str(issue)], repo, {**env, "AGENT_MAX_COST": "lots"},
                       watch=[repo], phrases=[r"AGENT_MAX_COST", r"environment", r"lots"],
                       no_agent_dir=repo)


def test_bad_flag_values(fresh: tuple[Path, Path, dict[str, str]]) -> None:
    repo, issue, env = fresh
    for args, phrase in ((["--max-cost", "0"], r"max_cost|max-cost"),
                         (["--max-attempts", "-1"], r"max_attempts|max-attempts"),
                         (["--max-cost", "lots"], r"--max-cost")):
        expect_usage_error(["solve", str(issue), *args], repo, env, watch=[repo],
                           phrases=[phrase], no_agent_dir=repo)


# -- the model service -----------------------------------------------------------------


def test_no_api_key(fresh: tuple[Path, Path, dict[str, str]]) -> None:
    repo, issue, env = fresh
    bare = {k: v for k, v in env.items() if k not in ("ANTHROPIC_API_KEY", "AGENT_API_KEY")}
    expect_usage_error(["solve", str(issue)], repo, bare, watch=[repo],
                       phrases=[r"no API key", r"ANTHROPIC_API_KEY"], no_agent_dir=repo)


def test_model_the_service_does_not_know(tmp_path: Path) -> None:
    with FakeAnthropic(known_models=["claude-sonnet-5-5"]) as fake:
        scenario.script_happy(fake)
        repo = scenario.make_repo(tmp_path)
        env = scenario.agent_env(fake, tmp_path)
        expect_usage_error(["solve", str(tmp_path / "ISSUE.md"), "--model", "claude-nonexistent-9"],
                           repo, env, watch=[repo],
                           phrases=[r"claude-nonexistent-9",
                                    r"does not know|doesn't know|unknown model|not found",
                                    r"--model"],
                           no_agent_dir=repo)
        assert fake.models() == ["claude-nonexistent-9"] or set(fake.models()) == {
            "claude-nonexistent-9"}, "only the rejected call should have been made"
        # The repository is clean: no branch, no worktree registered with git.
        assert scenario.git(repo, "branch", "--list").split() == ["*", "main"]
        assert scenario.git(repo, "worktree", "list").count("\n") == 1


@pytest.mark.parametrize("command", ["solve", "replay"])
def test_unknown_model_leaves_existing_runs_alone(
        command: str, server: FakeAnthropic, finished: tuple[Path, str, dict[str, str]]) -> None:
    repo, run_id, env = finished
    args = ([command, str(repo.parent / "ISSUE.md")] if command == "solve"
            else [command, run_id, "--from", "write_code"])
    ids = RunStore(repo / ".agent").ids()
    server.known_models = ["claude-sonnet-5-5"]
    try:
        expect_usage_error([*args, "--model", "claude-nonexistent-9"], repo, env, watch=[repo],
                           phrases=[r"claude-nonexistent-9",
                                    r"does not know|doesn't know|unknown model|not found"])
    finally:
        server.known_models = None
    assert RunStore(repo / ".agent").ids() == ids


# -- locate ----------------------------------------------------------------------------


def test_locate_top_zero(fresh: tuple[Path, Path, dict[str, str]]) -> None:
    repo, issue, env = fresh
    expect_usage_error(["locate", str(issue), "--top", "0"], repo, env, watch=[repo],
                       phrases=[r"--top", r"positive", r"--top 10"], no_agent_dir=repo)


def test_locate_missing_issue(fresh: tuple[Path, Path, dict[str, str]]) -> None:
    repo, issue, env = fresh
    expect_usage_error(["locate", str(issue.parent / "nope.md")], repo, env, watch=[repo],
                       phrases=[r"nope\.md"], no_agent_dir=repo)
