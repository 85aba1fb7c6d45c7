"""Running git as a subprocess, the same careful way every time.

We call the `git` binary rather than GitPython: every operation here is one or two
plumbing commands whose output we parse, GitPython would add 66 ms of import time
and its own object model, and subprocess gives us exact control of the environment,
which is where the safety of this package lives:

* `GIT_DIR`, `GIT_WORK_TREE`, `GIT_INDEX_FILE` and friends are removed from the
  inherited environment. If `agent` runs from inside a git hook (or a shell that set
  them), they would silently point every command at the user's repository.
* Hooks are disabled (`core.hooksPath=/dev/null`): `git worktree add` would run the
  user's post-checkout hook in our worktree, and commits are ours to describe.
* `GIT_TERMINAL_PROMPT=0` so a push never blocks on a password prompt, `LC_ALL=C` so
  the messages we show or parse are not translated.
* Commands that act inside a run's worktree get `GIT_CEILING_DIRECTORIES` set to the
  worktree's parent: if the worktree's `.git` file were ever missing, git must fail
  rather than walk up and find the user's checkout (then `reset --hard` would wipe
  the user's uncommitted work).
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from agent_cli.errors import UsageError
from agent_cli.workspace.errors import GitFailed

# Variables that tell git (or a test suite that runs git) which repository to use.
_REPO_LOCATING_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES",
)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without repository-locating git variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in _REPO_LOCATING_VARS}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    if extra:
        env.update(extra)
    return env


def run_git(
    cwd: Path,
    *args: str,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `git args...` in `cwd`; raise `GitFailed` on a non-zero exit when `check`."""
    command = ["git", "-c", f"core.hooksPath={os.devnull}", *args]
    try:
        result = subprocess.run(
            command,
            check=False,
            cwd=cwd,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            env=clean_env(env),
            timeout=timeout,
        )
    except FileNotFoundError as exc:
        if not Path(cwd).is_dir():
            raise UsageError(f"not a directory: {cwd}") from exc
        raise UsageError("git is not installed — install git and retry") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitFailed(["git", *args], f"timed out after {timeout:g}s") from exc
    if check and result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace")
        for words, code in (("No space left on device", errno.ENOSPC),
                            ("Disk quota exceeded", errno.EDQUOT),
                            ("Read-only file system", errno.EROFS)):
            if words in stderr:  # the disk's fault: say so, as the run store does
                from agent_cli.durable.fsio import as_storage_error

                raise as_storage_error(OSError(code, words), cwd) from GitFailed(
                    ["git", *args], stderr)
        raise GitFailed(["git", *args], stderr)
    return result


def git(
    cwd: Path,
    *args: str,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """stdout of `git args...` as text, without the trailing newline."""
    out = run_git(cwd, *args, input=input, env=env).stdout
    return out.decode("utf-8", "surrogateescape").rstrip("\n")


def split_z(out: bytes) -> list[str]:
    """Paths from a `-z` listing; undecodable bytes survive as surrogates for round trips."""
    return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]
