"""Per-test results for Go, Cargo, node --test, Jest and Vitest (agent_cli.workspace.runners).

The tool tests build small real projects in tmp_path and run the real toolchains
(no mocks); a missing toolchain skips with a reason naming it. Jest and Vitest are
installed from the npm registry once per session (marked slow; skipped without
network). One Go test reads a fixture in the format of Go 1.24+ (`build-output`
events), newer than the Go installed here; nextest's test runs only where
cargo-nextest is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agent_cli.workspace import runners
from agent_cli.workspace.runners import runner_for
from agent_cli.workspace.testrun import TestCase


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    return path


def run(root: Path, command: list[str] | str, report_dir: Path,
        env: dict[str, str] | None = None) -> tuple[int, str, list[TestCase] | None]:
    """Instrument `command` with its runner, run it as the test stage would (stdout and
    stderr in one stream), and read the results back."""
    runner = runner_for(command, root)
    assert runner is not None, command
    report_dir.mkdir(parents=True, exist_ok=True)
    argv, extra = runner.instrument(command, report_dir)
    if isinstance(argv, str):
        argv = ["/bin/sh", "-c", argv]
    proc = subprocess.run(argv, cwd=root, env={**os.environ, **(env or {}), **extra},
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240,
                          check=False)
    output = proc.stdout.decode("utf-8", "replace")
    return proc.returncode, output, runner.results(output, report_dir, root)


def outcomes(tests: list[TestCase] | None) -> dict[str, str]:
    assert tests is not None
    return {t.id: t.outcome for t in tests}


def by_id(tests: list[TestCase] | None) -> dict[str, TestCase]:
    assert tests is not None
    return {t.id: t for t in tests}


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


# -- recognising the tool -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("go test ./...", "go"),
        (["go", "test", "-race", "./..."], "go"),
        ("cd svc && CGO_ENABLED=0 go test -v ./... 2>&1 | tee log", "go"),
        ("env CI=1 go test ./...", "go"),
        ("cargo test --all", "cargo"),
        ("cargo +nightly test", "cargo"),
        ("cargo --locked t", "cargo"),
        ("cargo nextest run --workspace", "nextest"),
        ("npx jest --ci", "jest"),
        (["node_modules/.bin/jest"], "jest"),
        ("node node_modules/jest/bin/jest.js", "jest"),
        ("npx vitest run", "vitest"),
        ("npx --yes vitest", "vitest"),
        ("node --test", "node"),
        (["node", "--import", "tsx", "--test", "test/"], "node"),
        ("time node --test", "node"),
        ("go vet ./...", None),
        ("cargo build", None),
        ("npx vitest bench", None),
        ("node app.js", None),
        ("node --test-only x.js", None),
        ("python -m pytest", None),
        ("make test", None),
        ("echo $(go test ./...)", None),
        ("", None),
        ([], None),
    ],
)
def test_runner_for_recognises_the_tool(command: list[str] | str, name: str | None,
                                        tmp_path: Path) -> None:
    runner = runner_for(command, tmp_path)
    assert (runner.name if runner else None) == name


@pytest.mark.parametrize(
    ("script", "name"),
    [
        ("jest", "jest"),
        ("jest --coverage && eslint .", "jest"),
        ("vitest run", "vitest"),
        ("cross-env NODE_ENV=test vitest", "vitest"),
        ("node --test test/", "node"),
        ("NODE_ENV=test node --test", "node"),
        ('echo "Error: no test specified" && exit 1', None),
        ("mocha", None),
    ],
)
def test_runner_for_npm_test_reads_the_test_script(script: str, name: str | None,
                                                   tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"scripts": {"test": script}}))
    for command in ("npm test", ["npm", "run", "test"], "npm t -- --ci"):
        runner = runner_for(command, tmp_path)
        assert (runner.name if runner else None) == name, command


def test_runner_for_npm_without_package_json_is_none(tmp_path: Path) -> None:
    assert runner_for("npm test", tmp_path) is None


# -- instrumenting: what the command becomes ---------------------------------------------------


def instrument(command: list[str] | str, tmp_path: Path) -> tuple[list[str] | str, dict[str, str]]:
    runner = runner_for(command, tmp_path)
    assert runner is not None
    return runner.instrument(command, tmp_path / "report")


def test_go_instrument_adds_json_once_and_keeps_the_rest(tmp_path: Path) -> None:
    assert instrument(["go", "test", "-race", "./..."], tmp_path) == (
        ["go", "test", "-json", "-race", "./..."], {})
    assert instrument("go test -json ./...", tmp_path) == ("go test -json ./...", {})
    # a shell string is spliced, not re-quoted: the rest stays as the user wrote it
    assert instrument("cd 'my svc' && go test -run 'Test A' ./... 2>&1 | tee log", tmp_path) == (
        "cd 'my svc' && go test -json -run 'Test A' ./... 2>&1 | tee log", {})


def test_cargo_instrument_adds_no_fail_fast_and_pretty_lines_under_quiet(tmp_path: Path) -> None:
    assert instrument("cargo test --all", tmp_path) == ("cargo test --no-fail-fast --all", {})
    assert instrument(["cargo", "test", "--no-fail-fast"], tmp_path) == (
        ["cargo", "test", "--no-fail-fast"], {})
    assert instrument(["cargo", "test", "-q", "--", "--nocapture"], tmp_path) == (
        ["cargo", "test", "--no-fail-fast", "-q", "--", "--nocapture", "--format=pretty"], {})
    assert instrument("cargo -q test", tmp_path) == (
        "cargo -q test --no-fail-fast -- --format=pretty", {})


def test_nextest_instrument_points_junit_into_the_report_dir(tmp_path: Path) -> None:
    command, env = instrument(["cargo", "nextest", "run", "--workspace"], tmp_path)
    config = tmp_path / "report" / "agent-nextest.toml"
    assert command == ["cargo", "nextest", "run", "--tool-config-file", f"agent:{config}",
                       "--no-fail-fast", "--workspace"]
    assert env == {}
    assert str(tmp_path / "report" / "nextest-junit.xml") in config.read_text()


def test_js_instrument_adds_json_reports(tmp_path: Path) -> None:
    report = tmp_path / "report"
    assert instrument(["npx", "jest", "--ci"], tmp_path) == (
        ["npx", "jest", "--json", f"--outputFile={report}/jest-results.json", "--ci"], {})
    assert instrument(["npx", "vitest", "run", "src"], tmp_path) == (
        ["npx", "vitest", "run", "--reporter=default", "--reporter=json",
         f"--outputFile.json={report}/vitest-results.json", "src"], {})
    # the user's reporter stays the one people see
    assert instrument("vitest run --reporter=dot", tmp_path) == (
        (f"vitest run --reporter=json --outputFile.json={report}/vitest-results.json"
         " --reporter=dot"),
        {},
    )
    # the user's own JSON report: left alone (results will be None)
    assert instrument("jest --json --outputFile=out.json", tmp_path) == (
        "jest --json --outputFile=out.json", {})


def test_npm_instrument_passes_flags_after_dashdash_only_when_they_reach_the_tool(
        tmp_path: Path) -> None:
    report = tmp_path / "report"
    package = tmp_path / "package.json"
    package.write_text(json.dumps({"scripts": {"test": "jest --ci"}}))
    assert instrument("npm test", tmp_path) == (
        f"npm test -- --json --outputFile={report}/jest-results.json", {})
    assert instrument(["npm", "test", "--", "-t", "x"], tmp_path) == (
        ["npm", "test", "--", "-t", "x", "--json", f"--outputFile={report}/jest-results.json"],
        {})
    # args after `npm test --` would land on eslint, not on jest
    package.write_text(json.dumps({"scripts": {"test": "jest && eslint ."}}))
    assert instrument("npm test", tmp_path) == ("npm test", {})


def test_node_instrument_pairs_reporters_with_destinations(tmp_path: Path) -> None:
    need("node")
    report = tmp_path / "report"
    ours = [f"--test-reporter={report}/agent-node-reporter.mjs",
            f"--test-reporter-destination={report}/node-tests.jsonl"]
    assert instrument(["node", "--test", "test/"], tmp_path) == (
        ["node", "--test", *ours, "--test-reporter=spec", "--test-reporter-destination=stdout",
         "test/"], {})
    assert (report / "agent-node-reporter.mjs").is_file()
    # node pairs reporters with destinations by position: ours go after the user's
    # options; a reporter of the user's without a destination gets stdout
    assert instrument(["node", "--test-reporter=dot", "--test", "--", "a.js"], tmp_path) == (
        ["node", "--test-reporter=dot", "--test", ours[0], "--test-reporter-destination=stdout",
         ours[1], "--", "a.js"], {})
    assert instrument("node --test --test-name-pattern x a.js", tmp_path) == (
        (f"node --test --test-name-pattern x {ours[0]} {ours[1]} --test-reporter=spec"
         " --test-reporter-destination=stdout a.js"),
        {},
    )
    # through npm, the script's command line is not ours: NODE_OPTIONS reaches it
    (tmp_path / "package.json").write_text(json.dumps({"scripts": {"test": "node --test"}}))
    command, env = instrument("npm test", tmp_path)
    assert command == "npm test"
    assert env == {"NODE_OPTIONS": " ".join(
        [*ours, "--test-reporter=spec", "--test-reporter-destination=stdout"])}


# -- selecting: narrowing to test files ----------------------------------------------------------


def select(command: list[str] | str, files: list[str], root: Path) -> list[str] | str | None:
    runner = runner_for(command, root)
    assert runner is not None
    return runner.select(command, files)


def test_go_select_runs_the_packages_of_the_files(tmp_path: Path) -> None:
    assert select("go test ./...", ["calc/calc_test.go"], tmp_path) == "go test ./calc"
    assert select(["go", "test", "-run", "TestA", "./...", "-count=1"],
                  ["a/b/x_test.go", "a/b/y_test.go", "root_test.go"], tmp_path) == [
        "go", "test", "-run", "TestA", "-count=1", "./a/b", "."]
    assert select("go test ./... 2>&1 | tee log", ["p/p_test.go"], tmp_path) == (
        "go test ./p 2>&1 | tee log")
    assert select("go test ./...", ["README.md"], tmp_path) is None


def test_cargo_select_uses_integration_test_targets(tmp_path: Path) -> None:
    write(tmp_path, {"crates/b/Cargo.toml": '[package]\nname = "b-crate"\nversion = "0.1.0"\n'})
    assert select("cargo test --lib --offline", ["tests/it.rs"], tmp_path) == (
        "cargo test --test it --offline")
    assert select(["cargo", "test", "--", "--nocapture"],
                  ["crates/b/tests/it.rs", "crates/b/tests/more/main.rs"], tmp_path) == [
        "cargo", "test", "-p", "b-crate", "--test", "it", "--test", "more", "--", "--nocapture"]
    assert select("cargo test", ["src/lib.rs"], tmp_path) is None
    assert select("cargo test", ["tests/it.rs", "src/lib.rs"], tmp_path) is None


def test_js_select_replaces_file_arguments(tmp_path: Path) -> None:
    assert select("npx jest --ci test/", ["test/a.test.js"], tmp_path) == (
        "npx jest --ci --runTestsByPath test/a.test.js")
    assert select("npx jest --config jest.config.js", ["test/a.test.js"], tmp_path) == (
        "npx jest --config jest.config.js --runTestsByPath test/a.test.js")
    # an option we do not know, followed by a word: a value or a pattern? do not guess
    assert select("npx jest --frobnicate x", ["test/a.test.js"], tmp_path) is None
    assert select(["vitest", "run", "src", "--reporter", "dot"], ["src/a.test.ts"], tmp_path) == [
        "vitest", "run", "--reporter", "dot", "src/a.test.ts"]
    assert select("node --test test/", ["test/a.test.js", "test/b.test.mjs"], tmp_path) == (
        "node --test test/a.test.js test/b.test.mjs")


def test_npm_select_only_when_the_script_names_no_files(tmp_path: Path) -> None:
    package = tmp_path / "package.json"
    package.write_text(json.dumps({"scripts": {"test": "jest --ci"}}))
    assert select("npm test", ["test/a.test.js"], tmp_path) == (
        "npm test -- --runTestsByPath test/a.test.js")
    package.write_text(json.dumps({"scripts": {"test": "node --test test/unit"}}))
    assert select("npm test", ["test/unit/a.test.js"], tmp_path) is None


# -- Go (real toolchain) ----------------------------------------------------------------------------

GO_PROJECT = {
    "go.mod": "module example.com/probe\n\ngo 1.19\n",
    "calc/calc.go": "package calc\n\nfunc Add(a, b int) int { return a + b }\n",
    "calc/calc_test.go": """package calc

import (
\t"fmt"
\t"testing"
)

func TestAdd(t *testing.T) {
\tif Add(1, 2) != 3 {
\t\tt.Fatal("bad")
\t}
}

func TestFail(t *testing.T) {
\tfmt.Println("printed by the test")
\tt.Errorf("Add(2, 2) = %d, want 5", Add(2, 2))
}

func TestSkip(t *testing.T) { t.Skip("not today") }

func TestSub(t *testing.T) {
\tt.Run("ok", func(t *testing.T) {})
\tt.Run("bad case", func(t *testing.T) { t.Error("sub failed") })
}

func TestPanic(t *testing.T) {
\tvar m map[string]int
\tm["x"] = 1
}
""",
    "broken/broken.go": "package broken\n",
    "broken/broken_test.go": (
        'package broken\n\nimport "testing"\n\n'
        'func TestX(t *testing.T) { var y int = "s"; _ = y }\n'),
    "root_test.go": 'package probe\n\nimport "testing"\n\nfunc TestRoot(t *testing.T) {}\n',
    "notests/a.go": "package notests\n",
}


@pytest.fixture
def go_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    need("go")
    return {"GOTOOLCHAIN": "local", "GOPROXY": "off", "GOFLAGS": "-mod=mod",
            "GOCACHE": os.environ.get("GOCACHE") or str(Path.home() / ".cache" / "go-build")}


def test_go_results_from_a_real_run(tmp_path: Path, go_env: dict[str, str]) -> None:
    root = write(tmp_path / "proj", GO_PROJECT)
    code, output, tests = run(root, "go test ./...", tmp_path / "report", go_env)
    assert code != 0, output
    assert outcomes(tests) == {
        "broken": "error",
        "calc::TestAdd": "passed",
        "calc::TestFail": "failed",
        "calc::TestSkip": "skipped",
        "calc::TestSub": "failed",
        "calc::TestSub/ok": "passed",
        "calc::TestSub/bad_case": "failed",
        "calc::TestPanic": "failed",
        ".::TestRoot": "passed",
    }, output
    got = by_id(tests)
    assert got["calc::TestFail"].message is not None
    assert "printed by the test" in got["calc::TestFail"].message
    assert "Add(2, 2) = 4, want 5" in got["calc::TestFail"].message
    assert "=== RUN" not in got["calc::TestFail"].message
    assert "not today" in (got["calc::TestSkip"].message or "")
    assert "assignment to entry in nil map" in (got["calc::TestPanic"].message or "")
    assert 'cannot use "s"' in (got["broken"].message or "")
    assert got["calc::TestAdd"].message is None


def test_go_select_narrows_a_real_run(tmp_path: Path, go_env: dict[str, str]) -> None:
    root = write(tmp_path / "proj", GO_PROJECT)
    runner = runner_for("go test ./...", root)
    assert runner is not None
    narrowed = runner.select("go test ./...", ["calc/calc_test.go"])
    assert narrowed == "go test ./calc"
    _, output, tests = run(root, narrowed, tmp_path / "report", go_env)
    assert {i.split("::")[0] for i in outcomes(tests)} == {"calc"}, output


def test_go_test_that_outlives_its_timeout_is_failed_with_the_panic(
        tmp_path: Path, go_env: dict[str, str]) -> None:
    root = write(tmp_path / "proj", {
        "go.mod": "module example.com/slow\n\ngo 1.19\n",
        "slow_test.go": 'package slow\n\nimport (\n\t"testing"\n\t"time"\n)\n\n'
                        "func TestQuick(t *testing.T) {}\n"
                        "func TestSlow(t *testing.T) { time.Sleep(20 * time.Second) }\n",
    })
    _, output, tests = run(root, ["go", "test", "-timeout", "1s", "./..."],
                           tmp_path / "report", go_env)
    assert outcomes(tests) == {".::TestQuick": "passed", ".::TestSlow": "failed"}, output
    assert "test timed out after 1s" in (by_id(tests)[".::TestSlow"].message or "")


# Go 1.24+ reports compiler output as `build-output` events keyed by ImportPath, and the
# package's `fail` event names the failed build (cmd/go `go help buildjson`); the Go
# installed here is older, so this is the documented shape written out by hand.
GO_124_OUTPUT = "\n".join(json.dumps(e) for e in [
    {"ImportPath": "example.com/m/bad [example.com/m/bad.test]", "Action": "build-output",
     "Output": "# example.com/m/bad [example.com/m/bad.test]\n"},
    {"ImportPath": "example.com/m/bad [example.com/m/bad.test]", "Action": "build-output",
     "Output": "bad/bad_test.go:5:9: undefined: Missing\n"},
    {"ImportPath": "example.com/m/bad [example.com/m/bad.test]", "Action": "build-fail"},
    {"ImportPath": "example.com/m/syntax.test", "Action": "build-output",
     "Output": "syntax/s_test.go:3:1: expected declaration, found oops\n"},
    {"ImportPath": "example.com/m/syntax.test", "Action": "build-fail"},
    {"Action": "start", "Package": "example.com/m/bad"},
    {"Action": "output", "Package": "example.com/m/bad",
     "Output": "FAIL\texample.com/m/bad [build failed]\n"},
    {"Action": "fail", "Package": "example.com/m/bad", "Elapsed": 0,
     "FailedBuild": "example.com/m/bad [example.com/m/bad.test]"},
    {"Action": "start", "Package": "example.com/m/syntax"},
    {"Action": "output", "Package": "example.com/m/syntax",
     "Output": "FAIL\texample.com/m/syntax [setup failed]\n"},
    {"Action": "fail", "Package": "example.com/m/syntax", "Elapsed": 0,
     "FailedBuild": "example.com/m/syntax.test"},
    {"Action": "start", "Package": "example.com/m/good"},
    {"Action": "run", "Package": "example.com/m/good", "Test": "TestOK"},
    {"Action": "output", "Package": "example.com/m/good", "Test": "TestOK",
     "Output": "=== RUN   TestOK\n"},
    {"Action": "output", "Package": "example.com/m/good", "Test": "TestOK",
     "Output": "--- PASS: TestOK (0.00s)\n"},
    {"Action": "pass", "Package": "example.com/m/good", "Test": "TestOK", "Elapsed": 0},
    {"Action": "pass", "Package": "example.com/m/good", "Elapsed": 0.01},
    {"Action": "output", "Package": "example.com/other/lib", "Test": "TestLong",
     "Output": "HEAD" + "x" * 10_000 + "TAIL\n"},
    {"Action": "fail", "Package": "example.com/other/lib", "Test": "TestLong", "Elapsed": 0},
    {"Action": "fail", "Package": "example.com/other/lib", "Elapsed": 0},
]) + "\n"


def test_go_results_from_go_1_24_build_events(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module example.com/m\n\ngo 1.24\n")
    runner = runner_for("go test ./...", tmp_path)
    assert runner is not None
    tests = runner.results(GO_124_OUTPUT, tmp_path / "report", tmp_path)
    assert outcomes(tests) == {
        "bad": "error",
        "syntax": "error",
        "good::TestOK": "passed",
        "example.com/other/lib::TestLong": "failed",  # outside the module: import path
    }
    got = by_id(tests)
    assert "undefined: Missing" in (got["bad"].message or "")
    assert "expected declaration" in (got["syntax"].message or "")
    assert "undefined: Missing" not in (got["syntax"].message or "")
    long = got["example.com/other/lib::TestLong"].message or ""
    assert len(long) <= 4_000 + len("\n[...]\n")
    assert long.startswith("HEAD") and long.endswith("TAIL") and "[...]" in long


def test_go_results_none_without_test_events(tmp_path: Path) -> None:
    runner = runner_for("go test ./...", tmp_path)
    assert runner is not None
    assert runner.results("go: go.mod file not found in current directory\n",
                          tmp_path, tmp_path) is None


# -- Cargo (real toolchain) -------------------------------------------------------------------------

CARGO_CRATE = {
    "Cargo.toml": '[package]\nname = "probe"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n',
    "src/lib.rs": """/// Adds.
///
/// ```
/// assert_eq!(probe::add(1, 1), 2);
/// ```
pub fn add(a: i32, b: i32) -> i32 { a + b }

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn adds() { assert_eq!(add(1, 2), 3); }
    #[test]
    fn fails() { println!("printed\ntest looks_like_a_result ... ok"); assert_eq!(add(2, 2), 5); }
    #[test]
    #[ignore = "needs a database"]
    fn ignored() {}
    #[test]
    #[should_panic]
    fn panics() { panic!("boom") }
}
""",
    "tests/it.rs": """#[test]
fn it_passes() { assert_eq!(probe::add(1, 1), 2); }
#[test]
fn it_fails() { assert!(probe::add(1, 1) == 3, "custom message {}", 7); }
""",
}


@pytest.fixture
def cargo_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    need("cargo")
    target = tmp_path_factory.getbasetemp() / "cargo-target"
    return {"CARGO_TARGET_DIR": str(target), "RUST_BACKTRACE": "0", "CARGO_TERM_COLOR": "never"}


def test_cargo_results_from_a_real_run(tmp_path: Path, cargo_env: dict[str, str]) -> None:
    root = write(tmp_path / "probe", CARGO_CRATE)
    code, output, tests = run(root, ["cargo", "test", "--offline"], tmp_path / "report",
                              cargo_env)
    assert code != 0
    assert outcomes(tests) == {
        "src/lib.rs::tests::adds": "passed",
        "src/lib.rs::tests::fails": "failed",
        "src/lib.rs::tests::ignored": "skipped",
        "src/lib.rs::tests::panics": "passed",
        # --no-fail-fast: the failing unit tests do not hide the integration tests
        "tests/it.rs::it_passes": "passed",
        "tests/it.rs::it_fails": "failed",
        "src/lib.rs::add (line 3)": "passed",
    }, output
    got = by_id(tests)
    assert "printed\ntest looks_like_a_result ... ok" in (got["src/lib.rs::tests::fails"].message or "")
    assert "left: 4" in (got["src/lib.rs::tests::fails"].message or "")
    assert "custom message 7" in (got["tests/it.rs::it_fails"].message or "")
    assert "custom message" not in (got["src/lib.rs::tests::fails"].message or "")
    assert got["src/lib.rs::tests::ignored"].message == "needs a database"


def test_cargo_quiet_still_gives_a_line_per_test(tmp_path: Path,
                                                 cargo_env: dict[str, str]) -> None:
    root = write(tmp_path / "probe", CARGO_CRATE)
    _, output, tests = run(root, "cargo test -q --offline --lib", tmp_path / "report",
                           cargo_env)
    # -q hides cargo's `Running <file>` lines, so ids carry no file
    assert outcomes(tests) == {"tests::adds": "passed", "tests::fails": "failed",
                               "tests::ignored": "skipped", "tests::panics": "passed"}, output


def test_cargo_select_narrows_a_real_run(tmp_path: Path, cargo_env: dict[str, str]) -> None:
    root = write(tmp_path / "probe", CARGO_CRATE)
    runner = runner_for("cargo test --offline", root)
    assert runner is not None
    narrowed = runner.select("cargo test --offline", ["tests/it.rs"])
    assert narrowed == "cargo test --test it --offline"
    _, output, tests = run(root, narrowed, tmp_path / "report", cargo_env)
    assert outcomes(tests) == {"tests/it.rs::it_passes": "passed",
                               "tests/it.rs::it_fails": "failed"}, output


def test_cargo_workspace_ids_and_a_crashing_test_binary(tmp_path: Path,
                                                        cargo_env: dict[str, str]) -> None:
    member = '[package]\nname = "{}"\nversion = "0.1.0"\nedition = "2021"\n'
    root = write(tmp_path / "ws", {
        "Cargo.toml": '[workspace]\nmembers = ["crates/a", "crates/b"]\nresolver = "2"\n',
        "crates/a/Cargo.toml": member.format("a"),
        "crates/a/src/lib.rs": "#[cfg(test)]\nmod tests {\n"
                               "    #[test] fn aborts() { std::process::abort(); }\n}\n",
        "crates/b/Cargo.toml": member.format("b"),
        "crates/b/src/lib.rs": "#[cfg(test)]\nmod tests { #[test] fn b_ok() {} }\n",
        "crates/b/tests/it.rs": "#[test] fn b_it() {}\n",
    })
    _, output, tests = run(root, "cargo test --offline", tmp_path / "report", cargo_env)
    assert outcomes(tests) == {
        "crates/a/src/lib.rs": "error",
        "crates/b/src/lib.rs::tests::b_ok": "passed",
        "crates/b/tests/it.rs::b_it": "passed",
    }, output
    assert "SIGABRT" in (by_id(tests)["crates/a/src/lib.rs"].message or "")


def test_cargo_results_none_when_it_does_not_build(tmp_path: Path,
                                                   cargo_env: dict[str, str]) -> None:
    root = write(tmp_path / "probe", {**CARGO_CRATE, "src/lib.rs": "pub fn add( {}\n"})
    code, output, tests = run(root, "cargo test --offline", tmp_path / "report", cargo_env)
    assert code != 0 and "error" in output
    assert tests is None


def test_nextest_results_from_a_real_run(tmp_path: Path, cargo_env: dict[str, str]) -> None:
    probe = subprocess.run(["cargo", "nextest", "--version"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("cargo-nextest is not installed")
    root = write(tmp_path / "probe", CARGO_CRATE)
    _, output, tests = run(root, "cargo nextest run --offline", tmp_path / "report", cargo_env)
    got = outcomes(tests)
    assert got["src/lib.rs::tests::adds"] == "passed", output
    assert got["src/lib.rs::tests::fails"] == "failed"
    assert got["tests/it.rs::it_fails"] == "failed"


# -- node --test (real node) ---------------------------------------------------------------------

NODE_PROJECT = {
    "package.json": json.dumps({"name": "probe", "version": "1.0.0",
                                "scripts": {"test": "node --test"}}),
    "test/math.test.js": """const { test, describe, it, before } = require('node:test');
const assert = require('node:assert');
test('adds', () => { assert.strictEqual(1 + 1, 2); });
test('fails', () => { assert.strictEqual(1 + 1, 3); });
test('skipped', { skip: 'not today' }, () => {});
test.todo('later');
describe('group', () => {
  it('inner ok', () => {});
  it('inner bad', () => { throw new Error('inner boom'); });
});
describe('with a bad hook', () => {
  before(() => { throw new Error('hook boom'); });
  it('never runs', () => {});
});
test('parent', async (t) => {
  await t.test('child', () => {});
});
""",
    "test/other.test.mjs": "import test from 'node:test';\ntest('other ok', () => {});\n",
    "test/broken.test.js": "const x = ;\n",
}

NODE_EXPECTED = {
    "test/math.test.js::adds": "passed",
    "test/math.test.js::fails": "failed",
    "test/math.test.js::skipped": "skipped",
    "test/math.test.js::later": "skipped",
    "test/math.test.js::group::inner ok": "passed",
    "test/math.test.js::group::inner bad": "failed",
    "test/math.test.js::with a bad hook": "error",
    "test/math.test.js::with a bad hook::never runs": "error",
    "test/math.test.js::parent": "passed",
    "test/math.test.js::parent::child": "passed",
    "test/other.test.mjs::other ok": "passed",
    "test/broken.test.js": "error",
}


@pytest.fixture
def node_project(tmp_path: Path) -> Path:
    need("node")
    return write(tmp_path / "proj", NODE_PROJECT)


def test_node_results_from_a_real_run(node_project: Path, tmp_path: Path) -> None:
    code, output, tests = run(node_project, ["node", "--test"], tmp_path / "report")
    assert code != 0
    assert outcomes(tests) == NODE_EXPECTED, output
    got = by_id(tests)
    assert "2 !== 3" in (got["test/math.test.js::fails"].message or "")
    assert "inner boom" in (got["test/math.test.js::group::inner bad"].message or "")
    assert "hook boom" in (got["test/math.test.js::with a bad hook"].message or "")
    assert got["test/math.test.js::skipped"].message == "not today"
    assert "SyntaxError" in (got["test/broken.test.js"].message or "")
    # the spec reporter still prints for people
    assert "✖ fails" in output


def test_node_results_through_npm_test(node_project: Path, tmp_path: Path) -> None:
    need("npm")
    npm_env = {"npm_config_update_notifier": "false"}
    _, output, tests = run(node_project, "npm test", tmp_path / "report", npm_env)
    assert outcomes(tests) == NODE_EXPECTED, output

    runner = runner_for("npm test", node_project)
    assert runner is not None
    narrowed = runner.select("npm test", ["test/other.test.mjs"])
    assert narrowed == "npm test -- test/other.test.mjs"
    _, output, tests = run(node_project, narrowed, tmp_path / "report2", npm_env)
    assert outcomes(tests) == {"test/other.test.mjs::other ok": "passed"}, output


def test_node_keeps_the_users_reporter(node_project: Path, tmp_path: Path) -> None:
    _, output, tests = run(node_project, "node --test-reporter=tap --test test/other.test.mjs",
                           tmp_path / "report")
    assert outcomes(tests) == {"test/other.test.mjs::other ok": "passed"}, output
    assert "TAP version 13" in output


def test_node_select_narrows_a_real_run(node_project: Path, tmp_path: Path) -> None:
    runner = runner_for("node --test test/", node_project)
    assert runner is not None
    narrowed = runner.select("node --test test/", ["test/other.test.mjs"])
    assert narrowed == "node --test test/other.test.mjs"
    _, output, tests = run(node_project, narrowed, tmp_path / "report")
    assert outcomes(tests) == {"test/other.test.mjs::other ok": "passed"}, output


def test_node_results_none_without_a_report(tmp_path: Path) -> None:
    runner = runner_for("node --test", tmp_path)
    assert runner is not None
    assert runner.results("node: bad option: --test-reporter\n", tmp_path, tmp_path) is None


def test_results_are_testrun_test_cases(node_project: Path, tmp_path: Path) -> None:
    # testrun may import runners at its top: runners must import TestCase lazily.
    source = Path(runners.__file__).read_text()
    assert "\nfrom agent_cli.workspace.testrun import" not in source
    _, _, tests = run(node_project, "node --test test/other.test.mjs", tmp_path / "report")
    assert tests and all(type(t) is TestCase for t in tests)


# -- Jest and Vitest (installed from the npm registry, once per session) ---------------------------


@pytest.fixture(scope="session")
def js_tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """node_modules with jest and vitest, or a skip saying why not."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the Jest and Vitest tests")
    where = tmp_path_factory.mktemp("js-tools")
    (where / "package.json").write_text('{"name": "js-tools", "private": true}')
    try:
        proc = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefer-offline",
             "--ignore-scripts",
             "jest@30", "vitest@4"],
            cwd=where, capture_output=True, text=True, timeout=240, check=False,
            env={**os.environ, "npm_config_update_notifier": "false"})
    except subprocess.TimeoutExpired:
        pytest.skip("npm could not install jest and vitest within 240s (no network?)")
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        pytest.skip(f"npm could not install jest and vitest (no network?): {' | '.join(tail)}")
    return where / "node_modules"


JS_TESTS = """{imports}
test('adds', () => {{ expect(1 + 2).toBe(3); }});
test('fails', () => {{ expect(2 + 2).toBe(5); }});
test.skip('skipped', () => {{}});
test.todo('later');
describe('group', () => {{
  describe('deeper', () => {{
    test('inner ok', () => {{}});
    test('inner bad > x', () => {{ throw new Error('inner boom'); }});
  }});
}});
"""

JS_EXPECTED = {
    "test/math.test.js::adds": "passed",
    "test/math.test.js::fails": "failed",
    "test/math.test.js::skipped": "skipped",
    "test/math.test.js::later": "skipped",
    "test/math.test.js::group::deeper::inner ok": "passed",
    "test/math.test.js::group::deeper::inner bad > x": "failed",
    "test/other.test.js::other ok": "passed",
    "test/broken.test.js": "error",
}


def js_project(root: Path, node_modules: Path, script: str, imports: str) -> Path:
    write(root, {
        "package.json": json.dumps({"name": "probe", "version": "1.0.0",
                                    "type": "module" if imports else "commonjs",
                                    "scripts": {"test": script}}),
        "test/math.test.js": JS_TESTS.format(imports=imports),
        "test/other.test.js": f"{imports}\ntest('other ok', () => {{}});\n",
        "test/broken.test.js": f"{imports}\nconst x = ;\n",
    })
    (root / "node_modules").symlink_to(node_modules)
    return root


@pytest.mark.slow
def test_jest_results_and_select(js_tools: Path, tmp_path: Path) -> None:
    root = js_project(tmp_path / "proj", js_tools, "jest --ci", "")
    _, output, tests = run(root, "npm test", tmp_path / "report",
                           {"npm_config_update_notifier": "false"})
    assert outcomes(tests) == JS_EXPECTED, output
    got = by_id(tests)
    assert "Expected: 5" in (got["test/math.test.js::fails"].message or "")
    assert "\x1b[" not in (got["test/math.test.js::fails"].message or "")
    assert "Test suite failed to run" in (got["test/broken.test.js"].message or "")

    runner = runner_for("npm test", root)
    assert runner is not None
    narrowed = runner.select("npm test", ["test/other.test.js"])
    assert narrowed == "npm test -- --runTestsByPath test/other.test.js"
    _, output, tests = run(root, narrowed, tmp_path / "report2",
                           {"npm_config_update_notifier": "false"})
    assert outcomes(tests) == {"test/other.test.js::other ok": "passed"}, output


@pytest.mark.slow
def test_vitest_results_and_select(js_tools: Path, tmp_path: Path) -> None:
    root = js_project(tmp_path / "proj", js_tools, "vitest run",
                      "import { test, expect, describe } from 'vitest';")
    vitest = str(root / "node_modules" / ".bin" / "vitest")
    _, output, tests = run(root, [vitest, "run"], tmp_path / "report", {"CI": "1"})
    assert outcomes(tests) == JS_EXPECTED, output
    assert "expected 4 to be 5" in (by_id(tests)["test/math.test.js::fails"].message or "")

    runner = runner_for("npm test", root)
    assert runner is not None and runner.name == "vitest"
    narrowed = runner.select("npm test", ["test/other.test.js"])
    assert narrowed == "npm test -- test/other.test.js"
    _, output, tests = run(root, narrowed, tmp_path / "report2",
                           {"CI": "1", "npm_config_update_notifier": "false"})
    assert outcomes(tests) == {"test/other.test.js::other ok": "passed"}, output


def test_jest_results_none_without_a_report(tmp_path: Path) -> None:
    runner = runner_for("npx jest", tmp_path)
    assert runner is not None
    assert runner.results("Error: Cannot find module 'jest'\n", tmp_path, tmp_path) is None
    (tmp_path / "jest-results.json").write_text('{"truncated": ')
    assert runner.results("", tmp_path, tmp_path) is None


def test_a_report_left_by_an_earlier_run_is_not_read(tmp_path: Path) -> None:
    runner = runner_for("npx jest", tmp_path)
    assert runner is not None
    report = tmp_path / "jest-results.json"
    report.write_text(json.dumps({"testResults": [{
        "name": str(tmp_path / "a.test.js"), "status": "passed",
        "assertionResults": [{"ancestorTitles": [], "title": "old", "status": "passed"}]}]}))
    assert outcomes(runner.results("", tmp_path, tmp_path)) == {"a.test.js::old": "passed"}
    runner.instrument("npx jest", tmp_path)  # a new run that then writes nothing
    assert runner.results("", tmp_path, tmp_path) is None


def test_a_linked_report_is_not_followed(tmp_path: Path) -> None:
    # the report directory is writable by the tests; a planted link must not be read
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"testResults": [{"name": "x", "assertionResults": [
        {"ancestorTitles": [], "title": "secret", "status": "passed"}]}]}))
    reports = tmp_path / "report"
    reports.mkdir()
    (reports / "vitest-results.json").symlink_to(secret)
    runner = runner_for("npx vitest run", tmp_path)
    assert runner is not None
    assert runner.results("", reports, tmp_path) is None
