"""An `agent` process on a pseudo-terminal, as a person at a keyboard drives it.

Standard library only (`pty`): stdin, stdout and stderr are the terminal, so the
process sees a TTY exactly as it would in a shell; the test reads what it prints
and types answers.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]|\r")


class Terminal:
    def __init__(self, args: list[str], repo: Path, env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        self.master = master
        self.proc = subprocess.Popen([sys.executable, "-m", "agent_cli", *args], cwd=repo,
                                     env={**env, "COLUMNS": "120", "LINES": "50"},
                                     stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.text = ""  # everything printed so far, without control codes
        self.seen = 0  # where the next expect() starts looking

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the other side is closed
            return False
        if not chunk:
            return False
        self.text += _ANSI.sub("", chunk.decode("utf-8", "replace"))
        return True

    def expect(self, wanted: str, timeout: float = 90) -> str:
        """Wait until `wanted` is printed (after what earlier expects consumed); the
        text up to and including it. Fails at once if the process ends without it."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.text.find(wanted, self.seen)
            if found >= 0:
                start, self.seen = self.seen, found + len(wanted)
                return self.text[start:self.seen]
            alive = self._read(0.2)
            if not alive or time.monotonic() > deadline:
                try:
                    code: int | None = self.proc.wait(timeout=0 if alive else 5)
                except subprocess.TimeoutExpired:
                    code = None
                raise AssertionError(f"{wanted!r} not printed (exit {code}); output:\n{self.text}")

    def send(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def wait(self, timeout: float = 120) -> int:
        """Read until the process ends; its exit code."""
        deadline = time.monotonic() + timeout
        while self._read(0.2) and time.monotonic() < deadline:
            if self.proc.poll() is not None and not select.select([self.master], [], [], 0)[0]:
                break
        code = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        os.close(self.master)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
