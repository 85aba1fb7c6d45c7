"""One test's result, whatever runner reported it: the common currency of the test
runners (`runners`) and the test stage (`testrun`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict


class TestCase(BaseModel):
    """One test's result, from JUnit XML."""

    __test__: ClassVar[bool] = False
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    id: str
    """pytest node id, e.g. `tests/test_x.py::TestClass::test_name[param]`; a file path
    for an error while collecting that file."""
    outcome: Literal["passed", "failed", "error", "skipped"]
    """`error` is a failure outside the test body: fixture setup/teardown or collection."""
    message: str | None = None
    """Failure or skip message with the traceback (capped), for failed/error/skipped."""
