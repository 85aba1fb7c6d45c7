"""Which slow tests a change leaves out: those whose definitions it does not edit."""

from __future__ import annotations

import difflib
from pathlib import Path

from agent_cli.pipeline.testing import changed_lines, untouched

OLD = """\
import time


def test_alone():
    time.sleep(60)


class TestGroup:
    limit = 2

    def test_one(self):
        time.sleep(60)

    def test_two(self):
        time.sleep(60)
"""

NEW = (OLD.replace("import time\n", "import time\nimport math\n")
       .replace("limit = 2", "limit = 3") + "\n\ndef test_new():\n    assert True\n")
DIFF = "".join(difflib.unified_diff(OLD.splitlines(True), NEW.splitlines(True),
                                    "a/tests/test_x.py", "b/tests/test_x.py", n=1))


def test_changed_lines_are_the_new_files_lines() -> None:
    n = len(NEW.splitlines())  # import math (2), the removed and added `limit` (10), test_new
    assert changed_lines(DIFF) == {"tests/test_x.py": [2, 10, 10, n - 3, n - 2, n - 1, n]}
    deleted = "--- a/gone.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x = 1\n"
    assert changed_lines(deleted) == {}


def test_a_slow_test_is_left_out_unless_its_definition_or_class_changed(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(NEW)
    slow = ["tests/test_x.py::test_alone", "tests/test_x.py::TestGroup::test_one[1]",
            "tests/test_x.py::TestGroup::test_two", "tests/test_y.py::test_other"]
    # The import is module level and edits no test; the class attribute edits the class.
    assert untouched(slow, DIFF, [], tmp_path) == ["tests/test_x.py::test_alone",
                                                   "tests/test_y.py::test_other"]
    assert untouched(slow, DIFF, ["tests/test_y.py"], tmp_path) == ["tests/test_x.py::test_alone"]
    assert untouched(slow, "", [], tmp_path) == slow
