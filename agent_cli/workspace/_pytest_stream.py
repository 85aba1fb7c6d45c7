"""A pytest plugin that writes each test's result the moment it is known.

pytest writes its JUnit report when the session ends; a suite stopped at its timeout
often ends without one, and the fix stage then had no per-test results at all. This
plugin appends one JSON line per report phase (setup, call, teardown) and per failed
collection to the file named by $AGENT_PYTEST_STREAM, flushed each time, so what
finished before the stop is known. `testrun` copies this file next to the run's
report as `agent_pytest_stream.py` and loads it with `-p agent_pytest_stream`.

With $AGENT_PYTEST_BUDGET (seconds), a test whose body runs longer is stopped there
(SIGALRM, in the main thread, as pytest-timeout's signal method does) and streamed as
`over_budget`: on the base commit of a related-tests run, one slow test the change does
not touch (sympy's `test_sqrtdenest3_slow`: a minute) would otherwise cost its minute
twice. The node ids (or their prefixes) on the lines of $AGENT_PYTEST_KEEP are never
stopped: the plan's target tests.

Standard library and pytest only: it runs inside the project's interpreter (as old
as Python 3.6) and sandbox.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from typing import Any

import pytest

_PATH = os.environ.get("AGENT_PYTEST_STREAM")
try:
    _BUDGET = max(0.0, float(os.environ.get("AGENT_PYTEST_BUDGET") or 0))
except ValueError:
    _BUDGET = 0.0
_KEEP = [k for k in os.environ.get("AGENT_PYTEST_KEEP", "").splitlines() if k]
_stopped: set = set()


class OverBudget(BaseException):
    """Raised into a test at the budget. Not an Exception, so a test's own `except
    Exception` does not swallow it; pytest records the test as failed, and the stream
    says why."""


def _write(line: dict[str, Any]) -> None:
    if not _PATH:
        return
    with open(_PATH, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
        f.flush()


def _text(report: Any) -> str | None:
    if report.longrepr is None:
        return None
    text = str(report.longrepr)
    return text if len(text) <= 4000 else f"{text[:1000]}\n[...]\n{text[-3000:]}"


def _kept(nodeid: str) -> bool:
    return any(nodeid == k or nodeid.startswith((k + "::", k + "[")) for k in _KEEP)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: Any) -> Any:
    armed = (_BUDGET > 0 and not _kept(item.nodeid) and hasattr(signal, "setitimer")
             and threading.current_thread() is threading.main_thread()
             and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None))
    if not armed:
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        _stopped.add(item.nodeid)
        raise OverBudget(f"stopped at the agent's per-test budget of {_BUDGET:g} s")

    signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, _BUDGET)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


def pytest_runtest_logreport(report: Any) -> None:
    if report.when == "call" and report.nodeid in _stopped:
        _write({"id": report.nodeid, "when": "budget", "outcome": "over_budget",
                "message": None})
        return
    outcome = report.outcome
    if report.when == "call" and hasattr(report, "wasxfail"):
        outcome = "skipped"  # xfail and xpass count as skipped, as in JUnit
    _write({"id": report.nodeid, "when": report.when, "outcome": outcome,
            "message": _text(report) if outcome != "passed" else None})


def pytest_collectreport(report: Any) -> None:
    if report.failed:
        _write({"id": report.nodeid, "when": "collect", "outcome": "failed",
                "message": _text(report)})
