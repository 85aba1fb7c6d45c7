"""What a fix prompt focuses on: the lines the change wrote, read from its diff."""

from __future__ import annotations

from agent_cli.pipeline.artifacts import Estimate, ImplementationPlan, TestResult
from agent_cli.pipeline.context import fix_focus

DIFF = """diff --git a/notes.md b/notes.md
--- a/notes.md
+++ b/notes.md
@@ -1,2 +1,3 @@
 # notes
+++ an added line that starts with two plus signs
 end
@@ -40,2 +41,3 @@
 x
+y
 z
diff --git a/my file.py b/my file.py
--- a/my file.py\t
+++ b/my file.py\t
@@ -10,0 +11,2 @@
+a = 1
+b = 2
"""


def test_fix_focus_reads_every_hunk_of_every_file() -> None:
    plan = ImplementationPlan(summary="s", changes=[], tests=[],
                              estimate=Estimate(input_tokens=0, output_tokens=0, calls=0,
                                                cost_usd=0))
    result = TestResult.model_construct(failures=[], output_tail="")
    focus = fix_focus(DIFF, result, plan)
    assert sorted(focus) == ["my file.py", "notes.md"]
    assert focus["notes.md"].lines == [1, 41]  # the second hunk is not lost to the `++` line
    assert focus["my file.py"].lines == [11]
