"""A pytest plugin that writes each test's result the moment it is known.

pytest writes its JUnit report when the session ends; a suite stopped at its timeout
often ends without one, and the fix stage then had no per-test results at all. This
plugin appends one JSON line per report phase (setup, call, teardown) and per failed
collection to the file named by $AGENT_PYTEST_STREAM, flushed each time, so what
finished before the stop is known. `testrun` copies this file next to the run's
report as `agent_pytest_stream.py` and loads it with `-p agent_pytest_stream`.

Standard library only: it runs inside the project's interpreter and sandbox.
"""

from __future__ import annotations

import json
import os
from typing import Any

_PATH = os.environ.get("AGENT_PYTEST_STREAM")


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


def pytest_runtest_logreport(report: Any) -> None:
    outcome = report.outcome
    if report.when == "call" and hasattr(report, "wasxfail"):
        outcome = "skipped"  # xfail and xpass count as skipped, as in JUnit
    _write({"id": report.nodeid, "when": report.when, "outcome": outcome,
            "message": _text(report) if outcome != "passed" else None})


def pytest_collectreport(report: Any) -> None:
    if report.failed:
        _write({"id": report.nodeid, "when": "collect", "outcome": "failed",
                "message": _text(report)})
