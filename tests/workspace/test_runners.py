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
import random
import shutil
import subprocess
import time
import tracemalloc
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
        # a shell string: the first tool, unless its output is piped to another program
        ("cd svc && CGO_ENABLED=0 go test -json ./... 2>&1", "go"),
        ("go vet ./... && cargo test -q 2>&1", "cargo"),
        ("go test -run 'TestA|TestB' ./...", "go"),
        ("cd svc && CGO_ENABLED=0 go test -v ./... 2>&1 | tee log", None),
        ("go test -v ./... | go-junit-report > report.xml", None),
        ("cd web && npm test", None),
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
        ("jest --coverage && eslint .", None),  # several commands: no runner
        ("tsc -p . && node --test dist/", None),
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
    # the words of a shell string stay as the user wrote them
    assert instrument("""GOFLAGS="-count=1" go test -run 'Test A' $PKGS""", tmp_path) == (
        """GOFLAGS="-count=1" go test -json -run 'Test A' $PKGS""", {})
    # a quote inside a word: quoted again, which changes nothing for sh; unless it holds
    # something sh expands
    assert instrument("""RUSTFLAGS='-D warnings' cargo test a\\ b""", tmp_path) == (
        """RUSTFLAGS='-D warnings' cargo test --no-fail-fast 'a b'""", {})
    assert instrument("""GOFLAGS="-tags=$TAGS x" go test""", tmp_path) == (
        """GOFLAGS="-tags=$TAGS x" go test""", {})


@pytest.mark.parametrize("command", [
    "go test -v ./... | go-junit-report > report.xml",  # the pipe must keep its input
    "go test ./... 2>&1 | tee log",
    "cd sub && go test ./...",
    "go test -run 'A|B' ./...",
    "go test ./... > log 2>&1",
    "cargo test && cargo clippy",
    "npx jest --ci; echo done",
    "node --test\nnode --test other",
])
def test_a_shell_string_with_operators_is_not_instrumented(command: str, tmp_path: Path) -> None:
    runner = runner_for(command.split(" | ")[0].split(" > ")[0], tmp_path)
    assert runner is not None
    assert runner.instrument(command, tmp_path / "report") == (command, {})
    assert runner.select(command, ["a/a_test.go", "tests/it.rs", "a.test.js"]) is None


def test_cargo_instrument_adds_no_fail_fast_and_drops_quiet(tmp_path: Path) -> None:
    assert instrument("cargo test --all", tmp_path) == ("cargo test --no-fail-fast --all", {})
    assert instrument(["cargo", "test", "--no-fail-fast"], tmp_path) == (
        ["cargo", "test", "--no-fail-fast"], {})
    # cargo's -q hides the `Running <file>` lines the ids take their file from
    assert instrument(["cargo", "test", "-q", "--", "--nocapture"], tmp_path) == (
        ["cargo", "test", "--no-fail-fast", "--", "--nocapture"], {})
    assert instrument("cargo -q test --quiet", tmp_path) == ("cargo test --no-fail-fast", {})
    # libtest's own -q prints a dot per test: a line each instead, unless a format is chosen
    assert instrument("cargo test -- -q", tmp_path) == (
        "cargo test --no-fail-fast -- -q --format=pretty", {})
    assert instrument("cargo test -- -q --format terse", tmp_path) == (
        "cargo test --no-fail-fast -- -q --format terse", {})


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
    # a script of several commands gives no runner (args after `npm test --` reach the last)
    package.write_text(json.dumps({"scripts": {"test": "jest && eslint ."}}))
    assert runner_for("npm test", tmp_path) is None


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
        "go", "test", "-run", "TestA", "./a/b", ".", "-count=1"]
    assert select("go test -v -race ./... -args -x", ["p/p_test.go", "p/testdata/q_test.go"],
                  tmp_path) == "go test -v -race ./p -args -x"
    assert select("go test ./...", ["README.md"], tmp_path) is None


@pytest.mark.parametrize("command", [
    "cd sub && go test ./...",  # paths from the root would be wrong in sub (review bug 7)
    "go test ./... 2>&1 | tee log",
    "go test ./internal/...",  # the user's own narrowing
    "go test",  # the current directory's package only
    "go test -C sub ./...",
    "go test -frobnicate x ./...",  # a flag we do not know: is x its value?
])
def test_go_select_keeps_the_users_command(command: str, tmp_path: Path) -> None:
    assert runners.GoRunner(tmp_path).select(command, ["internal/a/a_test.go"]) is None


def test_cargo_select_uses_integration_test_targets(tmp_path: Path) -> None:
    write(tmp_path, {"Cargo.toml": '[workspace]\nmembers = ["crates/b"]\n',
                     "crates/b/Cargo.toml": '[package]\nname = "b-crate"\nversion = "0.1.0"\n'})
    assert select("cargo test -j 2 --offline", ["tests/it.rs"], tmp_path) == (
        "cargo test --test it -j 2 --offline")
    assert select(["cargo", "test", "--", "--nocapture"],
                  ["crates/b/tests/it.rs", "crates/b/tests/more/main.rs"], tmp_path) == [
        "cargo", "test", "-p", "b-crate", "--test", "it", "--test", "more", "--", "--nocapture"]
    assert select("cargo test", ["src/lib.rs"], tmp_path) is None
    assert select("cargo test", ["tests/it.rs", "src/lib.rs"], tmp_path) is None
    # a root package runs only its own tests, unless --workspace (then -p replaces it)
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "top"\nversion = "0.1.0"\n'
                                         '[workspace]\nmembers = ["crates/b"]\n')
    assert select("cargo test", ["crates/b/tests/it.rs"], tmp_path) is None
    assert select("cargo test --workspace --release", ["crates/b/tests/it.rs"], tmp_path) == (
        "cargo test -p b-crate --test it --release")


@pytest.mark.parametrize("command", [
    "cargo test --lib", "cargo test --doc", "cargo test --test x", "cargo test --test=x",
    "cargo test --bins", "cargo test -p foo", "cargo test -pfoo", "cargo test --package=foo",
    "cargo test --manifest-path sub/Cargo.toml", "cargo test my_filter",
    "cargo test --frobnicate x", "cd sub && cargo test", "cargo nextest run --lib",
    "cargo nextest run my_filter",
])
def test_cargo_select_keeps_the_users_command(command: str, tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "top"\nversion = "0.1.0"\n')
    assert select(command, ["tests/it.rs"], tmp_path) is None


def test_js_select_puts_the_files_where_no_flag_takes_them(tmp_path: Path) -> None:
    assert select("npx jest --ci", ["test/a.test.js"], tmp_path) == (
        "npx jest --runTestsByPath test/a.test.js --ci")
    # right after `run`: --coverage.enabled may or may not take a value
    assert select(["vitest", "run", "--coverage.enabled", "--reporter=dot"], ["src/a.test.ts"],
                  tmp_path) == ["vitest", "run", "src/a.test.ts", "--coverage.enabled",
                                "--reporter=dot"]
    assert select("node --test", ["test/a.test.js", "test/b.test.mjs"], tmp_path) == (
        "node --test test/a.test.js test/b.test.mjs")
    assert select("node --import tsx --test --test-reporter=dot", ["a.test.ts"], tmp_path) == (
        "node --import tsx --test --test-reporter=dot a.test.ts")


@pytest.mark.parametrize("command", [
    "npx jest --ci test/",  # files or patterns of the user's
    "npx jest -c jest.config.js src",
    "npx jest --config jest.config.js",  # a value or a pattern? do not guess
    "npx jest --frobnicate x",
    "npx jest -- a.test.js",
    "npx vitest run src",
    "npx vitest run --coverage.enabled --root packages/a",  # review bug 11
    "npx vitest run --project unit",
    "node --test test/a.test.js",
    "node --test --frobnicate x",
    "node --test -- test/",
    "npx jest --ci && eslint .",
])
def test_js_select_keeps_the_users_command(command: str, tmp_path: Path) -> None:
    assert select(command, ["test/a.test.js"], tmp_path) is None


def test_npm_select_only_when_the_script_names_no_files(tmp_path: Path) -> None:
    package = tmp_path / "package.json"
    package.write_text(json.dumps({"scripts": {"test": "jest --ci"}}))
    assert select("npm test", ["test/a.test.js"], tmp_path) == (
        "npm test -- --runTestsByPath test/a.test.js")
    assert select("npm test -- -t slow", ["test/a.test.js"], tmp_path) is None
    assert select("npm --prefix . test", ["test/a.test.js"], tmp_path) is None
    package.write_text(json.dumps({"scripts": {"test": "node --test test/unit"}}))
    assert select("npm test", ["test/unit/a.test.js"], tmp_path) is None
    package.write_text(json.dumps({"scripts": {"test": "node --import tsx --test"}}))
    assert select("npm test", ["a.test.ts"], tmp_path) == "npm test -- a.test.ts"
    # the files would follow a flag whose arity we do not know
    package.write_text(json.dumps({"scripts": {"test": "vitest run --coverage"}}))
    assert select("npm test", ["a.test.ts"], tmp_path) is None
    package.write_text(json.dumps({"scripts": {"test": "vitest run --coverage.enabled=true"}}))
    assert select("npm test", ["a.test.ts"], tmp_path) == "npm test -- a.test.ts"


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


# `go test -v ./... 2>&1` is not instrumented (it has operators): plain output, in which
# a line that looks like a test2json event is a test's own print
GO_PLAIN_OUTPUT = """=== RUN   TestPass
{"Action":"pass","Package":"example.com/m/x","Test":"Fake"}
--- PASS: TestPass (0.00s)
=== RUN   TestFail
    a_test.go:5: boom
--- FAIL: TestFail (0.00s)
FAIL
FAIL	example.com/m/a	0.002s
# example.com/m/c [example.com/m/c.test]
c/c_test.go:3:30: undefined: undefined
FAIL	example.com/m/c [build failed]
FAIL
"""


def test_go_results_none_for_plain_go_test_output(tmp_path: Path) -> None:
    runner = runner_for("go test -v ./... 2>&1", tmp_path)
    assert runner is not None
    assert runner.results(GO_PLAIN_OUTPUT, tmp_path, tmp_path) is None


def go_event(**fields: object) -> str:
    return json.dumps({"Package": "example.com/m/big", **fields})


def test_go_results_read_a_whole_large_output_in_little_memory(tmp_path: Path) -> None:
    # results() gets the command's whole output (up to 64 MB): a failing test in the
    # middle of megabytes of output is found, and what it printed is not all kept
    (tmp_path / "go.mod").write_text("module example.com/m\n\ngo 1.19\n")
    lines = []
    for i in range(300):
        lines += [go_event(Action="run", Test=f"TestA{i}"),
                  go_event(Action="output", Test=f"TestA{i}", Output="log\n"),
                  go_event(Action="pass", Test=f"TestA{i}")]
    lines.append(go_event(Action="output", Test="TestMiddle", Output="FIRST\n"))
    lines += [go_event(Action="output", Test="TestMiddle", Output=f"line {j} {'y' * 80}\n")
              for j in range(40_000)]
    lines += [go_event(Action="output", Test="TestMiddle", Output="LAST\n"),
              go_event(Action="fail", Test="TestMiddle")]
    lines += [go_event(Action="pass", Test=f"TestB{i}") for i in range(300)]
    lines.append(go_event(Action="fail"))
    output = "\r\n".join(lines) + "\n"
    assert len(output) > 5_000_000
    runner = runner_for("go test ./...", tmp_path)
    assert runner is not None
    tracemalloc.start()
    try:
        tests = runner.results(output, tmp_path, tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    got = outcomes(tests)
    assert len(got) == 601 and got["big::TestMiddle"] == "failed"
    assert {o for i, o in got.items() if i != "big::TestMiddle"} == {"passed"}
    message = by_id(tests)["big::TestMiddle"].message or ""
    assert message.startswith("FIRST") and message.endswith("LAST") and len(message) < 4_100
    assert peak < 2_000_000, peak  # not a list of the output's lines, nor the test's output


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


def test_cargo_quiet_keeps_the_file_in_ids(tmp_path: Path, cargo_env: dict[str, str]) -> None:
    # review bug 3: -q hid cargo's `Running <file>` lines, so ids lost their file, and
    # src/main.rs's passing tests::same overwrote src/lib.rs's failing one
    root = write(tmp_path / "probe", {
        **CARGO_CRATE,
        "src/lib.rs": CARGO_CRATE["src/lib.rs"].replace(
            "    #[test]\n    fn adds()", "    #[test]\n    fn same() { panic!(\"lib\") }\n"
            "    #[test]\n    fn adds()"),
        "src/main.rs": "fn main() {}\n#[cfg(test)]\nmod tests { #[test] fn same() {} }\n",
    })
    _, output, tests = run(root, "cargo test -q --offline --lib --bins -- -q",
                           tmp_path / "report", cargo_env)
    assert outcomes(tests) == {
        "src/lib.rs::tests::adds": "passed", "src/lib.rs::tests::fails": "failed",
        "src/lib.rs::tests::ignored": "skipped", "src/lib.rs::tests::panics": "passed",
        "src/lib.rs::tests::same": "failed", "src/main.rs::tests::same": "passed"}, output


CARGO_QUIET_OUTPUT = """
running 2 tests
test tests::same ... FAILED
test tests::adds ... ok

failures:

---- tests::same stdout ----
lib same fails

failures:
    tests::same

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out

running 1 test
test tests::same ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out
"""


def test_cargo_results_keep_the_worst_outcome_of_an_id(tmp_path: Path) -> None:
    # without `Running <file>` lines (a command we may not change: `cargo test -q 2>&1`),
    # two targets' tests::same are one id: its FAILED is not overwritten by an `ok`
    runner = runner_for("cargo test", tmp_path)
    assert runner is not None
    tests = runner.results(CARGO_QUIET_OUTPUT, tmp_path, tmp_path)
    assert outcomes(tests) == {"tests::same": "failed", "tests::adds": "passed"}
    assert by_id(tests)["tests::same"].message == "lib same fails"


def test_cargo_results_are_linear_in_hostile_lines(tmp_path: Path) -> None:
    # a test may print anything: lines that almost look like cargo's must not take
    # quadratic time (these took 18 s with a lazy `Running (.+?) \((.+)\)` pattern)
    runner = runner_for("cargo test", tmp_path)
    assert runner is not None
    lines = ["     Running " + " (" * 4000 + "x", "test " + " ... ok!" * 1000,
             "---- " + " stdout ----x" * 600]
    output = "running 1 test\n" + "\n".join(lines * 200) + "\n"
    start = time.monotonic()
    runner.results(output, tmp_path, tmp_path)
    assert time.monotonic() - start < 2


def test_cargo_results_none_for_a_format_without_a_line_per_test(tmp_path: Path) -> None:
    runner = runner_for("cargo test", tmp_path)
    assert runner is not None
    terse = "\nrunning 3 tests\n..F\nfailures:\n    tests::x\n\ntest result: FAILED. 2 passed\n"
    assert runner.results(terse, tmp_path, tmp_path) is None


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
    runner = runner_for("node --test", node_project)
    assert runner is not None
    narrowed = runner.select("node --test", ["test/other.test.mjs"])
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
    narrowed = runner.select("npx jest --ci", ["test/other.test.js"])
    assert narrowed == "npx jest --runTestsByPath test/other.test.js --ci"
    _, output, tests = run(root, narrowed, tmp_path / "report3")
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
    narrowed = runner.select([vitest, "run", "--passWithNoTests"], ["test/other.test.js"])
    assert narrowed == [vitest, "run", "test/other.test.js", "--passWithNoTests"]
    _, output, tests = run(root, narrowed, tmp_path / "report3", {"CI": "1"})
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


# -- hostile reports and output --------------------------------------------------------------------


def report_runners(root: Path) -> dict[str, tuple[runners.Runner, str | None]]:
    """Every runner, with the report file it reads (None: it reads the output)."""
    out: dict[str, tuple[runners.Runner, str | None]] = {}
    for command, report in [("go test ./...", None), ("cargo test", None),
                            ("cargo nextest run", "nextest-junit.xml"),
                            ("npx jest", "jest-results.json"),
                            ("npx vitest run", "vitest-results.json"),
                            ("node --test", "node-tests.jsonl")]:
        runner = runner_for(command, root)
        assert runner is not None
        out[runner.name] = (runner, report)
    return out


def read_back(runner: runners.Runner, report: str | None, data: str | bytes,
              root: Path) -> list[TestCase] | None:
    reports = root / "reports"
    reports.mkdir(exist_ok=True)
    if report is None:
        output = data if isinstance(data, str) else data.decode("utf-8", "replace")
        tests = runner.results(output, reports, root)
    else:
        (reports / report).write_bytes(data.encode("utf-8", "surrogatepass")
                                       if isinstance(data, str) else data)
        tests = runner.results("", reports, root)
    for t in tests or []:
        t.model_dump_json()  # it can be recorded
        assert t.message is None or len(t.message) <= 4_000 + len("\n[...]\n")
    return tests


def test_reports_with_fields_of_the_wrong_type_are_skipped(tmp_path: Path) -> None:
    # review bug 10: a test may write anything into the report directory
    (tmp_path / "go.mod").write_text("module example.com/m\n\ngo 1.19\n")
    jest = json.dumps({"testResults": [
        {"name": ["a"], "assertionResults": [{"title": "t", "status": "passed"}]},
        {"name": str(tmp_path / "bad\x00.test.js"), "status": "failed", "message": "m"},
        {"name": str(tmp_path / "a.test.js"), "status": "failed", "message": {"not": "text"},
         "assertionResults": [
             {"ancestorTitles": 5, "title": "t", "status": "passed"},
             {"ancestorTitles": ["d", 7], "title": "t", "status": "passed"},
             {"ancestorTitles": None, "title": 5, "status": "passed"},
             "not a dict",
             {"title": "lone \ud800", "status": "passed"},
             {"title": "odd messages", "status": "failed",
              "failureMessages": [None, {"a": 1}, "real one", "x" * 100_000]},
             {"title": "no messages", "status": "failed", "failureMessages": 5},
         ]},
        {"name": str(tmp_path / "b.test.js"), "status": "failed", "message": 7},
    ]})
    node = "\n".join(json.dumps(e) for e in [
        {"event": "test:pass", "name": "ok", "nesting": 0, "file": ["a"]},
        {"event": "test:pass", "name": 5, "nesting": 0, "file": str(tmp_path / "a.js")},
        {"event": "test:pass", "name": "n", "nesting": "0", "file": str(tmp_path / "a.js")},
        {"event": "test:fail", "name": "f", "nesting": 0, "file": str(tmp_path / "\x00.js")},
        {"event": "test:stderr", "file": str(tmp_path / "a.js"), "message": 5},
        {"event": "test:fail", "name": "g", "nesting": 0, "file": str(tmp_path / "a.js"),
         "error": {"not": "text"}, "skip": [], "todo": {}, "type": 3, "failureType": []},
    ])
    go = "\n".join(json.dumps(e) for e in [
        {"Action": "output", "Package": "example.com/m/p", "Test": 5, "Output": "x"},
        {"Action": ["fail"], "Package": "example.com/m/p", "Test": "TestA"},
        {"Action": "build-output", "ImportPath": 5, "Output": 5},
        {"Action": "fail", "Package": {"a": 1}},
        {"Action": "output", "Package": "example.com/m/p", "Test": "TestB", "Output": 7},
        {"Action": "fail", "Package": "example.com/m/p", "Test": "TestB", "FailedBuild": 3},
    ]) + "\n" + "{" * 100_000 + "\n"
    got = report_runners(tmp_path)
    tests = read_back(*got["jest"], jest, tmp_path)
    assert outcomes(tests) == {"a.test.js::lone ?": "passed", "a.test.js::odd messages": "failed",
                               "a.test.js::no messages": "failed", "b.test.js": "error"}
    message = by_id(tests)["a.test.js::odd messages"].message or ""
    assert message.startswith("real one\n") and len(message) < 4_100
    assert by_id(tests)["b.test.js"].message is None
    tests = read_back(*got["node"], node, tmp_path)
    assert outcomes(tests) == {"a.js::g": "failed"}
    assert by_id(tests)["a.js::g"].message is None
    assert outcomes(read_back(*got["go"], go, tmp_path)) == {"p::TestB": "failed"}


def test_deeply_nested_reports_do_not_overflow_the_stack(tmp_path: Path) -> None:
    got = report_runners(tmp_path)
    # node reports subtests first: a chain 20,000 deep, innermost first
    chain = "\n".join(json.dumps({"event": "test:pass", "name": f"t{n}", "nesting": n,
                                  "file": str(tmp_path / "a.js")})
                      for n in range(20_000, -1, -1))
    tests = read_back(*got["node"], chain, tmp_path)
    assert tests is not None and tests[0].id == "a.js::t0" and 50 < len(tests) <= 100
    assert read_back(*got["jest"], "[" * 100_000, tmp_path) is None
    assert read_back(*got["nextest"], "<a>" * 100_000, tmp_path) is None


def test_reports_are_read_up_to_16_mb(tmp_path: Path) -> None:
    assert runners._REPORT_CAP == 16 * 1024 * 1024
    runner, report = report_runners(tmp_path)["node"]
    first = json.dumps({"event": "test:pass", "name": "first", "nesting": 0, "file": "a.js"})
    last = json.dumps({"event": "test:fail", "name": "last", "nesting": 0, "file": "a.js"})
    data = f"{first}\n{'x' * runners._REPORT_CAP}\n{last}\n"
    assert outcomes(read_back(runner, report, data, tmp_path)) == {"a.js::first": "passed"}


FUZZ_WORDS = ["Action", "Package", "Test", "Output", "ImportPath", "FailedBuild", "pass",
              "fail", "skip", "output", "build-output", "example.com/m", "testResults", "name",
              "assertionResults", "ancestorTitles", "title", "status", "failed", "passed",
              "failureMessages", "message", "event", "test:pass", "test:fail", "test:stderr",
              "nesting", "file", "error", "type", "suite", "skip", "todo", "failureType",
              "hookFailed", "/abs/a.test.js", "a\x00b", "\ud800", "../..", "", "::"]

# A well-formed report (or output) of each runner, for the fuzzer to damage.
FUZZ_SAMPLES: dict[str, object] = {
    "go": [{"Action": "run", "Package": "example.com/m/p", "Test": "TestA"},
           {"Action": "output", "Package": "example.com/m/p", "Test": "TestA", "Output": "x\n"},
           {"Action": "fail", "Package": "example.com/m/p", "Test": "TestA"},
           {"ImportPath": "example.com/m/q [example.com/m/q.test]", "Action": "build-output",
            "Output": "q.go:1: bad\n"},
           {"Action": "fail", "Package": "example.com/m/q", "FailedBuild": "example.com/m/q"}],
    "cargo": ["     Running unittests src/lib.rs (target/debug/deps/x-1)", "running 2 tests",
              "test a ... ok", "test b ... FAILED", "failures:", "---- b stdout ----", "boom",
              "failures:", "test result: FAILED. 1 passed; 1 failed", "   Doc-tests x",
              "running 1 test", "test src/lib.rs - f (line 3) ... ignored, why",
              "test result: ok.", "error: test failed"],
    "nextest": ['<testsuites><testsuite name="x::it"><testcase classname="x::it" name="a">',
                '<failure message="m">boom</failure><system-out>o</system-out></testcase>',
                '<testcase name="b"><skipped/></testcase></testsuite></testsuites>'],
    "jest": {"testResults": [
        {"name": "/abs/a.test.js", "status": "failed", "message": "m", "assertionResults": [
            {"ancestorTitles": ["d"], "title": "t", "status": "failed",
             "failureMessages": ["boom"]},
            {"ancestorTitles": [], "title": "u", "status": "passed"}]}]},
    "node": [{"event": "test:stderr", "file": "/abs/a.js", "message": "e"},
             {"event": "test:pass", "name": "c", "nesting": 1, "file": "/abs/a.js"},
             {"event": "test:fail", "name": "s", "nesting": 0, "file": "/abs/a.js",
              "type": "suite", "error": "e", "failureType": "hookFailed"},
             {"event": "test:fail", "name": "/abs/b.js", "nesting": 0, "file": "/abs/b.js",
              "skip": "why", "todo": False}],
}
FUZZ_SAMPLES["vitest"] = FUZZ_SAMPLES["jest"]


def fuzz_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(9 if depth < 4 else 5)
    if kind == 0:
        return rng.choice(FUZZ_WORDS)
    if kind == 1:
        return rng.choice([0, -1, 1, 2**70, 1.5, True, None])
    if kind == 2:
        return "".join(chr(rng.randrange(0, 0x3000)) for _ in range(rng.randrange(8)))
    if kind in (3, 4):
        return str(Path("/abs") / rng.choice(FUZZ_WORDS))
    if kind in (5, 6):
        return {rng.choice(FUZZ_WORDS): fuzz_value(rng, depth + 1) for _ in range(rng.randrange(6))}
    return [fuzz_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def damaged(rng: random.Random, value: object) -> object:
    """`value` with some of its parts (of any depth) replaced by random values."""
    if rng.random() < 0.15:
        return fuzz_value(rng)
    if isinstance(value, dict):
        return {k: damaged(rng, v) for k, v in value.items()}
    if isinstance(value, list):
        return [damaged(rng, v) for v in value]
    if isinstance(value, str) and value and rng.random() < 0.2:
        cut = rng.randrange(len(value))
        return value[:cut] + rng.choice(FUZZ_WORDS) + value[cut + 1:]
    return value


def fuzz_data(rng: random.Random, name: str) -> str | bytes:
    sample = FUZZ_SAMPLES[name]
    kind = rng.randrange(6)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
    if kind == 1:
        return json.dumps(fuzz_value(rng))
    if isinstance(sample, dict):  # one JSON document
        return json.dumps(damaged(rng, sample))
    assert isinstance(sample, list)
    items = damaged(rng, sample * rng.randrange(1, 3))
    items = items if isinstance(items, list) else [items]
    lines = [x if isinstance(x, str) and name in ("cargo", "nextest") else json.dumps(x)
             for x in items]
    text = "\n".join(lines)
    return text[: rng.randrange(len(text) + 1)] if kind == 2 else text


def test_results_never_raise_whatever_a_test_writes(tmp_path: Path) -> None:
    rng = random.Random(1234)
    got = report_runners(tmp_path)
    for _ in range(300):
        for name, (runner, report) in got.items():
            read_back(runner, report, fuzz_data(rng, name), tmp_path)
