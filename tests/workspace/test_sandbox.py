"""The one door for project code, rule by rule, with real processes under real bwrap."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_cli.workspace import sandbox as sandboxing
from agent_cli.workspace.sandbox import Sandbox, SandboxUnavailable, project_env, reap
from agent_cli.workspace.testrun import run_tests
from tests.e2e.scenario import processes_with
from tests.workspace.conftest import make_repo


def run(box: Sandbox, code: str, cwd: Path, **kwargs: object) -> tuple[int, str]:
    proc = box.start([sys.executable, "-c", code], cwd=cwd, **kwargs)  # type: ignore[arg-type]
    out, _ = proc.popen.communicate(timeout=60)
    proc.kill()
    proc.close()
    return proc.popen.returncode, out.decode()


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, Path]:
    """A user's checkout with uncommitted secrets, and a worktree inside it."""
    repo = make_repo(tmp_path / "checkout")
    (repo / ".env").write_text("DB_PASSWORD=uncommitted-secret\n")
    worktree = repo / ".agent" / "worktrees" / "run1"
    worktree.mkdir(parents=True)
    return repo, worktree


def test_the_environment_is_an_allowlist() -> None:
    environ = {"PATH": "/usr/bin", "LANG": "C.UTF-8", "LC_TIME": "de_DE", "HOME": "/home/u",
               "ANTHROPIC_API_KEY": "sk-ant-x", "AGENT_MODEL": "opus", "GITHUB_TOKEN": "ghp_x",
               "AWS_REGION": "eu-west-1", "DATABASE_URL": "postgres://u:p@h/db",
               "VIRTUAL_ENV": "/v", "PGHOST": "db", "MY_API_KEY": "k"}
    env = project_env(environ, ("PGHOST", "MY_API_KEY", "NOT_SET"), home="/tmp/home")
    assert env["PATH"] == "/usr/bin" and env["LC_TIME"] == "de_DE" and env["VIRTUAL_ENV"] == "/v"
    assert env["HOME"] == "/tmp/home" and env["TMPDIR"] == "/tmp"
    assert env["PGHOST"] == "db" and env["MY_API_KEY"] == "k"  # listed by the user: passed
    for name in ("ANTHROPIC_API_KEY", "AGENT_MODEL", "GITHUB_TOKEN", "AWS_REGION",
                 "DATABASE_URL", "NOT_SET"):
        assert name not in env


def test_bwrap_hides_the_checkout_and_home_and_keeps_git_read_only(
        checkout: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        needs_bwrap: None) -> None:
    repo, worktree = checkout
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("PRIVATE")
    monkeypatch.setenv("HOME", str(home))
    code = f"""
import os, pathlib
def attempt(what, f):
    try:
        f(); print(what, "ok")
    except OSError as e:
        print(what, type(e).__name__)
attempt("read .env", lambda: pathlib.Path({str(repo / '.env')!r}).read_text())
attempt("read key", lambda: pathlib.Path({str(home / '.ssh/id_rsa')!r}).read_text())
attempt("read git", lambda: pathlib.Path({str(repo / '.git/HEAD')!r}).read_text())
attempt("write git", lambda: pathlib.Path({str(repo / '.git/hooks/pre-commit')!r}).write_text("x"))
attempt("write checkout", lambda: pathlib.Path({str(repo / 'x.py')!r}).write_text("x"))
attempt("write worktree", lambda: pathlib.Path("made.txt").write_text("x"))
attempt("write tmp", lambda: pathlib.Path("/tmp/scratch").write_text("x"))
attempt("write usr", lambda: pathlib.Path("/usr/x").write_text("x"))
print("home", os.environ["HOME"], sorted(os.listdir(os.environ["HOME"])))
print("caps", [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")])
"""
    code_, out = run(Sandbox(repo=repo, tag="t"), code, worktree)
    assert code_ == 0, out
    assert "read .env FileNotFoundError" in out and "read key FileNotFoundError" in out
    assert "read git ok" in out and "write git OSError" in out
    assert "write checkout OSError" in out and "write usr OSError" in out
    assert "write worktree ok" in out and "write tmp ok" in out
    assert "home /tmp/home []" in out and "caps ['0000000000000000']" in out
    assert (worktree / "made.txt").exists() and not (repo / "x.py").exists()
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()


def test_bwrap_has_no_network_unless_the_user_allows_it(tmp_path: Path,
                                                        needs_bwrap: None) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    code = f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).close(); print("connected")
except OSError as e:
    print("refused", e)
"""
    assert "refused" in run(Sandbox(), code, tmp_path)[1]
    assert "connected" in run(Sandbox(network=True), code, tmp_path)[1]
    server.close()


def test_sandbox_read_opens_a_hidden_path_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    needs_bwrap: None) -> None:
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    (home / "data" / "fixture.csv").write_text("a,b\n")
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    code = f"print(open({str(home / 'data/fixture.csv')!r}).read())"
    assert "No such file" in run(Sandbox(), code, work)[1]
    assert "a,b" in run(Sandbox(read_paths=(str(home / "data"),)), code, work)[1]


def test_a_timed_out_suite_under_bwrap_still_writes_its_report(tmp_path: Path,
                                                               needs_bwrap: None) -> None:
    (tmp_path / "test_hang.py").write_text(
        "import time\n\ndef test_fast():\n    pass\n\ndef test_hang():\n"
        "    print('about to hang', flush=True)\n    time.sleep(60)\n")
    started = time.monotonic()
    result = run_tests(tmp_path, [sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider"],
                       timeout=3)
    assert time.monotonic() - started < 15
    assert result.timed_out and result.sandbox == "bwrap"
    # SIGINT reached pytest (not bwrap, whose death would take the namespace along):
    assert "KeyboardInterrupt" in result.output_tail and "about to hang" in result.output_tail
    assert [t.outcome for t in result.tests if t.id.endswith("test_fast")] == ["passed"]


def test_required_without_bwrap_is_refused_and_auto_says_unconfined(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap there
    sandboxing.probe.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable) as err:
            Sandbox(mode="required").confinement()
        assert "bwrap not found" in err.value.message and "apt install bubblewrap" in err.value.hint
        assert err.value.exit_code == 2
        auto = Sandbox().confinement()
        assert auto.kind == "none" and auto.detail.startswith("UNCONFINED: bwrap not found")
    finally:
        sandboxing.probe.cache_clear()
    assert Sandbox(mode="off").confinement().detail.startswith("UNCONFINED: sandbox is off")


def test_unconfined_children_die_with_the_agent_even_after_setsid(tmp_path: Path) -> None:
    """The supervisor (_reaper.py): SIGKILL the process that started the command, and
    a setsid'd grandchild dies too."""
    marker = f"reaper-test-{os.getpid()}-{time.monotonic_ns()}"
    half = len(marker) // 2  # the launcher's own command line must not hold the marker
    launcher = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from pathlib import Path
from agent_cli.workspace.sandbox import Sandbox
marker = {marker[:half]!r} + {marker[half:]!r}
code = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
        f"'import time; time.sleep(60)', {{marker!r}}], start_new_session=True); time.sleep(60)")
proc = Sandbox(mode="off").start([sys.executable, "-c", code, marker], cwd=Path({str(tmp_path)!r}))
print("started", flush=True)
time.sleep(60)
"""
    parent = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE)
    assert parent.stdout is not None and parent.stdout.readline() == b"started\n"
    deadline = time.monotonic() + 10
    while len(processes_with(marker)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(processes_with(marker)) == 3  # the supervisor, the command, its setsid child
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker) == []


def test_reap_kills_what_carries_the_runs_tag(tmp_path: Path) -> None:
    tagged = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                              env={**os.environ, sandboxing.TAG_VAR: "run-42"},
                              start_new_session=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             env={**os.environ, sandboxing.TAG_VAR: "run-420"})
    try:
        assert reap("run-42") == [tagged.pid]
        assert tagged.wait(timeout=5) == -signal.SIGKILL
        assert other.poll() is None
    finally:
        other.kill()
        tagged.kill()


# -- what the red team found (each of these failed before its fix) ------------------


def test_no_global_sysctl_is_writable_even_as_root(tmp_path: Path, needs_bwrap: None) -> None:
    """As root, a test wrote kernel.core_pattern and had the host run its script as
    root. Here it writes back the value it read: harmless where it would succeed."""
    code = """
p = "/proc/sys/kernel/core_pattern"
value = open(p).read()
try:
    open(p, "w").write(value); print("WRITABLE")
except OSError as e:
    print("refused", e.errno)
"""
    assert "refused" in run(Sandbox(), code, tmp_path)[1]


def test_words_of_a_test_command_open_no_hole(checkout: tuple[Path, Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              needs_bwrap: None) -> None:
    """`cat ~/.ssh/id_rsa` in a test command (which a repository's .agentrc may set)
    made its directory readable; so did a path through /proc/self/cwd."""
    repo, worktree = checkout
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("PRIVATE-KEY-CANARY")
    monkeypatch.setenv("HOME", str(home))
    command = (f"cat {home}/.ssh/id_rsa /proc/self/cwd/../../../.env {repo}/.env; "
               "ls ~ ; true")
    result = run_tests(worktree, command, sandbox=Sandbox(repo=repo), timeout=60)
    assert "PRIVATE-KEY-CANARY" not in result.output_tail
    assert "uncommitted-secret" not in result.output_tail


def test_the_worktree_git_link_and_the_credentials_in_git_config_are_covered(
        checkout: tuple[Path, Path], needs_bwrap: None) -> None:
    repo, _ = checkout
    subprocess.run(["git", "remote", "add", "origin", "https://alice:ghp_CANARY123@github.com/o/r"],
                   cwd=repo, check=True)
    subprocess.run(["git", "config", "http.https://github.com/.extraheader",
                    "AUTHORIZATION: basic CANARY456"], cwd=repo, check=True)
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(repo / ".agent" / "wt2")],
                   cwd=repo, check=True)
    code = """
import subprocess
print(open(".git").read())
try:
    open(".git", "w").write("gitdir: elsewhere\\n"); print("REWROTE")
except OSError as e:
    print("link refused", e.errno)
print(subprocess.run(["git", "config", "--list"], capture_output=True, text=True).stdout)
"""
    _, out = run(Sandbox(repo=repo), code, repo / ".agent" / "wt2")
    assert "link refused" in out and "REWROTE" not in out
    assert "remote.origin.url=https://github.com/o/r" in out  # still a usable config
    assert "CANARY" not in out
    assert "gitdir:" in (repo / ".agent" / "wt2" / ".git").read_text()


def test_root_only_host_files_are_covered(tmp_path: Path, needs_bwrap: None) -> None:
    if not Path("/etc/shadow").is_file():
        pytest.skip("no /etc/shadow here")
    out = run(Sandbox(), "print('READ', repr(open('/etc/shadow').read()))", tmp_path)[1]
    assert "READ ''" in out or "PermissionError" in out, out


def test_unconfined_a_test_that_kills_its_supervisor_leaves_nothing_behind(
        tmp_path: Path) -> None:
    marker = f"orphan-test-{os.getpid()}-{time.monotonic_ns()}"
    code = (f"import os, signal, subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}],"
            f" start_new_session=True, env={{}})\n"
            f"os.kill(os.getppid(), signal.SIGKILL)\n"
            f"time.sleep(60)\n")
    started = time.monotonic()
    run_tests(tmp_path, [sys.executable, "-c", code], sandbox=Sandbox(mode="off"), timeout=3)
    assert time.monotonic() - started < 20
    deadline = time.monotonic() + 5
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker) == []


def test_a_junit_report_that_is_a_link_is_not_read(tmp_path: Path) -> None:
    from agent_cli.workspace.testrun import _parse_junit

    elsewhere = tmp_path / "secret.xml"
    elsewhere.write_text('<testsuite><testcase classname="t" name="SECRET"/></testsuite>')
    (tmp_path / "junit.xml").symlink_to(elsewhere)
    assert _parse_junit(tmp_path / "junit.xml", tmp_path) is None
    assert _parse_junit(elsewhere, tmp_path) is not None


def test_a_virtualenv_the_repository_ships_is_not_the_projects_python(tmp_path: Path) -> None:
    from agent_cli.pipeline.testing import project_environment

    repo = make_repo(tmp_path / "repo")
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "python").symlink_to(sys.executable)
    (repo / ".venv" / "pyvenv.cfg").write_text("home = ../../..\n")
    assert project_environment(repo)[0] == str(repo / ".venv" / "bin" / "python")  # the user's
    subprocess.run(["git", "add", "-f", ".venv"], cwd=repo, check=True)
    assert project_environment(repo)[0] == sys.executable  # shipped by the repository


def test_choosing_the_projects_python_runs_nothing_of_the_repository(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`poetry env info` loads plugins from the project (`.poetry/plugins/*.pth`): it
    ran the repository's code unconfined, with the API key in its environment."""
    from agent_cli.pipeline.testing import project_environment

    marker = tmp_path / "poetry-ran"
    fake = tmp_path / "bin" / "poetry"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\ntouch {marker}\necho {tmp_path}/venv\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    repo = make_repo(tmp_path / "repo")
    (repo / "poetry.lock").write_text("")
    python, said = project_environment(repo)
    assert not marker.exists() and python == sys.executable
    assert "poetry.lock present" in said and "VIRTUAL_ENV" in said
