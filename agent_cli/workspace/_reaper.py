"""Supervisor of an unconfined test run: nothing the test command starts outlives agent.

Used by `sandbox.py` on Linux when there is no bubblewrap (under bubblewrap, a pid
namespace that dies with the agent does this job). Run as a script, not imported:

    python -I -S _reaper.py AGENT_PID -- ARGV...

It makes itself a child subreaper (orphaned descendants are re-parented to it, not to
init, even after `setsid` or a double fork) and asks the kernel for SIGTERM when the
agent dies (parent-death signal). Then it runs ARGV as its child and waits. When the
child exits, or the agent dies, or the agent sends SIGTERM (a timeout), it SIGKILLs
every descendant it still has, reaps them, and exits as its child did (after SIGTERM:
by SIGKILL, as a killed group would). SIGINT is left to the children: the agent sends
it to the whole group so that pytest writes its report before it is stopped.

It imports only the standard library, so starting it costs a bare interpreter.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(option, value, 0, 0, 0)


def processes(*, group: int | None = None, parent: int | None = None,
              zombies: bool = False) -> list[tuple[int, int]]:
    """(pid, parent pid) of each live (or also zombie) process in process group
    `group` or whose parent is `parent`, from /proc. Shared with sandbox.py."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        state, ppid, pgrp = stat[stat.rindex(b")") + 2:].split()[:3]
        if state == b"Z" and not zombies:
            continue
        if (group is not None and int(pgrp) == group) or (parent is not None
                                                            and int(ppid) == parent):
            found.append((int(entry), int(ppid)))
    return found


def descendants(root: int) -> list[int]:
    """Live descendants of `root`."""
    found, stack = [], [root]
    while stack:
        children = [pid for pid, _ in processes(parent=stack.pop())]
        found += children
        stack += children
    return found


def _reap_zombies() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_descendants() -> None:
    me = os.getpid()
    for _ in range(200):  # a fork bomb gets 200 rounds, then we stop trying
        alive = descendants(me)
        if not alive:
            return
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.005)
        _reap_zombies()


def _stop(*_: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    kill_descendants()
    os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> int:
    agent_pid = int(argv[0])
    command = argv[argv.index("--") + 1:]
    signal.signal(signal.SIGINT, lambda *_: None)  # a handler, not SIG_IGN: exec resets it
    signal.signal(signal.SIGTERM, _stop)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != agent_pid:  # the agent died before the death signal was armed
        _stop()
    child = os.fork()
    if child == 0:
        try:
            os.execvp(command[0], command)
        except OSError as exc:
            os.write(2, f"agent: cannot run {command[0]}: {exc.strerror}\n".encode())
        os._exit(127)
    status = 0
    while True:
        try:
            pid, status = os.waitpid(-1, 0)  # also reaps re-parented orphans
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == child:
            break
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    kill_descendants()
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    return os.waitstatus_to_exitcode(status) if not os.WIFSIGNALED(status) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
