"""The exception tree.

Every error the project raises on purpose descends from `AgentError`. It lives here,
in `durable`, because `durable` imports nothing else of `agent_cli`; the rest of the
package imports it from `agent_cli.errors`. Only `cli.py` turns these into text and
exit codes: each carries the exit code it maps to and, where one exists, the command
that fixes or continues (`hint`).
"""

from __future__ import annotations


class AgentError(Exception):
    """Root of every deliberate error. `exit_code` follows DESIGN.md's contract."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class UsageError(AgentError):
    """Bad input from the user: exit 2, and nothing was changed on disk."""

    exit_code = 2


class RunNotFound(UsageError):
    pass


class CorruptRecord(AgentError):
    """A run file that cannot be read back: truncated, not JSON, or of an unknown schema."""


class StorageError(AgentError):
    """`.agent/` cannot be written: its disk is full, it is read-only or not ours to
    write, or a file stands where a directory should. Not the run's fault and not bad
    input: exit 74 (EX_IOERR), resumable once the cause is gone. `errno` is the
    operating system's code (ENOSPC, EROFS, ...) when there is one."""

    exit_code = 74

    def __init__(self, message: str, *, hint: str | None = None,
                 errno: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.errno = errno


class RunLocked(AgentError):
    """Another process is executing this run."""


class Suspended(BaseException):
    """Unwinds the flow at a wait. A BaseException so that `except Exception` in step
    code cannot swallow it; the engine catches it and the CLI exits 75."""

    exit_code = 75

    def __init__(self, key: str, question: str) -> None:
        super().__init__(question)
        self.key = key
        self.question = question


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised by the CLI's handler where the signal lands: the run
    ends as Ctrl-C ends it (`interrupted`, resumable), with exit code 128 + signal."""

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(f"interrupted by {name}")
        self.signum = signum
        self.reason = f"interrupted by {name}"
