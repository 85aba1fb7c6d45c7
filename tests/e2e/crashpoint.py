"""Run the real `agent` CLI and SIGKILL it at a chosen write (issue 16's torn writes).

Usage: python -m tests.e2e.crashpoint GLOB N AGENT-ARGS...

Every durable file is written to a temporary file, fsynced, then renamed into place
(`durable.fsio`). This kills the process, with SIGKILL, right before the N-th rename
onto a path matching GLOB: the temporary file is whole on disk and the target is not
written, the state a kill in the middle of that write leaves. Nothing else changes.
"""

from __future__ import annotations

import fnmatch
import os
import signal
import sys


def main() -> None:
    pattern, nth, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    real_replace = os.replace
    seen = 0

    def replace(src, dst, *rest, **kw):  # type: ignore[no-untyped-def]
        nonlocal seen
        if fnmatch.fnmatch(os.fspath(dst), pattern):
            seen += 1
            if seen == nth:
                os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst, *rest, **kw)

    os.replace = replace  # type: ignore[assignment]
    sys.argv = ["agent", *args]
    from agent_cli.cli import main as agent_main

    agent_main()


if __name__ == "__main__":
    main()
