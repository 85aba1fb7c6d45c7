"""The typed artifacts the stages pass along, stored as JSON in each step record.

Models the model fills in (through a forced tool) carry a docstring per field: it
becomes the tool's schema description, so it is written for the model as much as
for us. Everything is `extra="forbid"`: an unexpected field is a validation error
that goes back to the model in a repair turn, not something silently dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from agent_cli.workspace.edits import Edit


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Issue(Strict):
    """The issue being solved."""

    title: str
    text: str
    path: str | None = None


class RepoRef(Strict):
    """The checkout a run works on, pinned to the commit it started from."""

    path: str
    base_commit: str


# -- 1. analyze ---------------------------------------------------------------


class AnalysisPlan(Strict):
    """Your analysis of the issue, before looking at code."""

    problem: str = Field(description="What is wrong, in one or two sentences.")
    symptoms: list[str] = Field(description="What the user observes; error text quoted exactly.")
    suspected_areas: list[str] = Field(
        description="Modules, files, classes or functions that probably hold the cause."
    )
    search_terms: list[str] = Field(
        description="Identifiers, file names and phrases to search the code for."
    )
    acceptance_criteria: list[str] = Field(
        description="Observable conditions that hold once the issue is fixed."
    )


# -- 2. explore ---------------------------------------------------------------


class SymbolRef(Strict):
    name: str
    line: int
    end_line: int


class RankedPath(Strict):
    path: str
    score: float
    reasons: list[str]
    symbols: list[SymbolRef] = []


class ContextFile(Strict):
    path: str
    why: str = Field(description="Why this file is shown (rank, reasons, neighbour of ...).")
    content: str = Field(description="The whole file, or its outline and windows, numbered.")
    whole: bool = Field(description="True when content is the whole file.")
    tokens: int
    lines: int | None = Field(default=None, description="The file's line count.")
    ranges: list[tuple[int, int]] = Field(
        default=[], description="The line ranges shown (inclusive).")


class FileView(Strict):
    """What the model was shown of one file in one call of a stage: `inspect` answers
    "did the model see line 1,840 of latex.py?" from these."""

    path: str
    call_for: str = Field(description="The file the call was writing ('' for a fix).")
    via: Literal["prompt", "read_file", "find"]
    lines: int = Field(description="The file's line count when it was shown.")
    ranges: list[tuple[int, int]] = Field(description="Line ranges shown (inclusive).")
    whole: bool = False


class ExplorationResult(Strict):
    ranked: list[RankedPath]
    files: list[ContextFile]
    neighbours: list[str] = Field(description="Import neighbours of the top files.")
    tokens: int
    seconds: float


# -- 3. plan -----------------------------------------------------------------


class PlannedChange(Strict):
    """One file to change."""

    path: str = Field(description="Path relative to the repository root.")
    action: Literal["modify", "create", "delete"]
    description: str = Field(description="Precisely what changes in this file and why.")


class PlannedTest(Strict):
    """A test that proves the fix."""

    id: str = Field(description="pytest node id (tests/test_x.py::test_y) or a test file path.")
    kind: Literal["existing", "new"] = Field(description="Run an existing test or add a new one.")
    reason: str = Field(description="What this test shows.")


class PlanDraft(Strict):
    """The plan for the change."""

    summary: str = Field(description="What the change does and why it fixes the issue.")
    changes: list[PlannedChange] = Field(min_length=1, description="Files to change, in order.")
    tests: list[PlannedTest] = Field(description="Tests that prove the fix.")


class Estimate(Strict):
    input_tokens: int
    output_tokens: int
    calls: int
    cost_usd: float | None = Field(description="None when the model has no known price.")


class ImplementationPlan(Strict):
    summary: str
    changes: list[PlannedChange]
    tests: list[PlannedTest]
    estimate: Estimate
    author: Literal["model", "human"] = Field(
        default="model", description="human: the reviewer wrote this plan (agent edit).")
    review: str | None = Field(
        default=None, description="The reviewer's comment given with the approval.")

    @model_serializer(mode="wrap")
    def _without_defaults_of_the_gate(self, dump: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A plan nobody edited or commented on dumps, and so fingerprints, as it did
        # before these fields existed: runs made earlier resume without re-running.
        data: dict[str, Any] = dump(self)
        if data.get("author") == "model":
            del data["author"]
        if data.get("review") is None:
            data.pop("review", None)
        return data


# -- 5./7. write and fix --------------------------------------------------------


class FileEdits(Strict):
    """Edits to one file."""

    edits: list[Edit] = Field(description="The edits, applied in order.")
    note: str = Field(default="", description="Anything the reviewer should know.")


class ReadFile(Strict):
    """Read lines of a file as it is now (the base commit plus the edits made so far in
    this run), numbered. At most 200 lines a call, and a few calls before you submit:
    ask for the range you need. Call this only when the text you must replace is not
    shown above."""

    path: str = Field(description="File path relative to the repository root.")
    start_line: int = Field(description="First line to read (1-based).")
    end_line: int = Field(description="Last line to read (inclusive).")


class Find(Strict):
    """The lines that contain `text` (exact, case-sensitive), with their numbers, in one
    file or in every file under a directory (`.` for the whole repository). At most 40
    matches are listed."""

    path: str = Field(description="A file or directory relative to the repository root.")
    text: str = Field(description="The text to look for, e.g. a function name.")


class FixEdits(Strict):
    """Edits that make the failing tests pass."""

    edits: list[Edit] = Field(description="The edits, applied in order, against current files.")
    explanation: str = Field(description="What was wrong and how the edits fix it.")
    targets: list[str] | None = Field(
        default=None, description="Only when target tests were not found: their corrected "
        "pytest node ids (file::test). Leave out otherwise.")


class AppliedEdit(Strict):
    path: str
    action: str
    applied: bool
    how: str | None = None
    error: str | None = None


class CodeChanges(Strict):
    diff: str = Field(description="The whole change against the base commit (git diff --binary).")
    files: list[str]
    edits: list[AppliedEdit]
    notes: list[str] = []
    targets: list[str] | None = Field(
        default=None, description="Target tests as the fix stage corrected them, when the "
        "plan's could not be found; None: the plan's.")
    shown: list[FileView] = Field(
        default=[], description="What the model was shown of each file it wrote (this "
        "step's calls only): windows in the prompt, and what it read.")


# -- 6. tests ----------------------------------------------------------------


class Failure(Strict):
    id: str
    message: str


class SelectedTest(Strict):
    """A test file the run's tests ran, and why it was chosen."""

    path: str
    reasons: list[str]
    certain: bool = Field(default=True, description="The change touches it or the plan "
                          "targets it (always run); else inferred (within related_budget).")


class Selection(Strict):
    """Which tests a test run covers (`test_scope`), and the command that runs them."""

    scope: Literal["related", "full"]
    command: str = Field(description="The command as run, narrowed to `files` when it could be.")
    files: list[SelectedTest] = Field(
        default=[], description="Test files related to the change; empty: the whole suite.")
    note: str = Field(default="", description="Why the whole suite runs, when it does.")
    environment: str = Field(default="", description="Where the interpreter came from (.venv, "
                             "VIRTUAL_ENV, poetry...), and tox/nox files noticed.")
    left_out: list[SelectedTest] = Field(
        default=[], description="Inferred files the base commit did not finish within "
        "related_budget: not run for this change.")
    slow: list[str] = Field(
        default=[], description="Tests of the selected files that ran past related_budget "
        "on the base commit (each was stopped there): not run on the change unless it edits "
        "them or the plan targets them; test_scope: full runs them.")


class TestBaseline(Strict):
    """The selected tests on the base commit, before any code is written: what already
    fails, and proof that the test command works (a broken one stops the run here)."""

    __test__ = False
    selection: Selection
    total: int
    failing: list[str] = Field(description="Ids failing on the base commit already.")
    timed_out: bool
    seconds: float
    from_cache: bool = False
    sandbox: str = ""
    summary: str = Field(description="One line for the gate, e.g. 'baseline: 104 tests, "
                         "2 already failing, 14 s'.")


class TestResult(Strict):
    __test__ = False
    passed: bool
    command: str
    exit_code: int | None
    timed_out: bool
    seconds: float
    total: int
    failures: list[Failure] = Field(
        description="What counts against the change: new failures and failing target tests.")
    new_failures: list[str]
    preexisting_failures: list[str]
    failing_targets: list[str]
    missing_targets: list[str]
    summary: str
    output_tail: str
    sandbox: str = Field(default="", description="What confined the test command (bubblewrap, "
                         "or UNCONFINED and why).")
    selection: Selection | None = Field(default=None, description="What ran, and why.")
    timeout: Literal["baseline", "tests"] | None = Field(
        default=None, description="Which run hit test_timeout: its verdict says nothing about "
        "the change, and no fix is attempted on it.")
    baseline_seconds: float = Field(default=0.0, description="Seconds the baseline took now "
                                    "(0 when it came from the cache).")
    resolved_targets: dict[str, str] = Field(
        default={}, description="Targets found, by name, in another file than the plan said.")


# -- 8. pull request -----------------------------------------------------------


class PullRequestDraft(Strict):
    """The pull request text."""

    title: str = Field(description="Imperative summary under 70 characters.")
    commit_message: str = Field(description="Subject line, blank line, body wrapped at 72.")
    body: str = Field(description="Markdown description for reviewers.")


class PullRequest(Strict):
    branch: str
    commit: str
    title: str
    body: str
    files: list[str]
    pr_path: str
    pushed: bool
    url: str | None = None
    push_commands: list[str] = []
    push_skipped: str | None = None
    """With `push: true`: why nothing was pushed (no remote, no gh)."""


class Stopped(Strict):
    """How a run ends without a pull request."""

    run_status: Literal["rejected", "failed"]
    reason: str
    diff: str | None = None
