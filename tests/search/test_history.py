"""History signals of agent_cli.search: changes the issue refers to, and past commits
whose messages read like the issue, on a real git history made in tmp_path."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent_cli.cache import open_cache
from agent_cli.search import LocateResult, history, locate_text
from agent_cli.search.history import load_history, referenced_files, references, similar_files
from agent_cli.search.index import bucket_of
from tests.search.conftest import git, write


def paths(result: LocateResult) -> list[str]:
    return [f.path for f in result.files]


def reasons(result: LocateResult, path: str) -> list[str]:
    return next(f.reasons for f in result.files if f.path == path)


def reason(result: LocateResult, path: str, start: str) -> str:
    """The reason of `path` that starts with `start` (the rest names a commit)."""
    found = [r for r in reasons(result, path) if r.startswith(start)]
    assert found, f"no reason starting {start!r} for {path}: {reasons(result, path)}"
    return found[0]


def change(repo: Path, path: str, line: str, message: str) -> str:
    target = repo / path
    target.write_text(target.read_text() + line + "\n")
    git(repo, "commit", "-q", "-am", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def storied(repo: Path) -> Path:
    """The synthetic repository with a few fixes behind it."""
    change(
        repo,
        "pkg/util/strings.py",
        "# 1",
        "Fix #41: tab characters vanish from rendered titles\n\nTabs were collapsed too.",
    )
    change(repo, "pkg/client.py", "# 2", "Retry budget counted the first attempt (#57)")
    change(repo, "pkg/storage.py", "# 3", "Store: accept generators as rows")
    return repo


def test_references_are_numbers_links_and_commit_ids() -> None:
    text = (
        "Broke in #41, see https://github.com/o/r/pull/57 and https://github.com/o/r/issues/58.\n"
        "Bisected to 2a0c5c6f5b982a76615c544854cd6e7d35c67c7f, also "
        "https://github.com/o/r/commit/9f8e7d6c5b4a; not `&#1234;`, a#12, "
        '`color: #333;`, `fill="#123456"`, #0f0 or #007, deadbeef (no digit) '
        "or 12345678 (no letter)."
    )
    numbers, shas = references(text)
    assert numbers == ["41", "57", "58"]
    assert shas == ["2a0c5c6f5b982a76615c544854cd6e7d35c67c7f", "9f8e7d6c5b4a"]
    # Once the repository's own name is known, other repositories' links drop out.
    other = "Same as https://github.com/numpy/numpy/issues/123 and #41"
    assert references(other, {"o/r"})[0] == ["41"]
    assert references(other, {"numpy/numpy"})[0] == ["123", "41"]


def test_a_referenced_issue_number_lifts_the_file_its_fix_changed(storied: Path) -> None:
    # No word of this issue names strings.py; the fix of #41 changed it.
    issue = "Titles lose their indentation again\n\nThis looks like a regression of #41."
    result = locate_text(issue, repo=storied)
    assert paths(result)[0] == "pkg/util/strings.py"
    fix = git(storied, "rev-parse", "HEAD~2")
    why = reason(result, "pkg/util/strings.py", "changed by a change the issue refers to")
    assert why == (
        f'changed by a change the issue refers to: {fix[:10]} "Fix #41: tab characters'
        ' vanish from rendered titles"'
    )


def test_a_commit_named_by_id_counts_only_if_it_is_in_the_history(storied: Path) -> None:
    later = change(storied, "pkg/parser.py", "# 4", "Parser: later change")
    base = git(storied, "rev-parse", "HEAD~1")
    issue = f"Something broke after {later[:10]}"
    at_base = locate_text(issue, repo=storied, commit=base)
    assert all("refers to" not in r for f in at_base.files for r in f.reasons)
    at_head = locate_text(issue, repo=storied)
    assert paths(at_head)[0] == "pkg/parser.py"
    why = reason(at_head, "pkg/parser.py", "changed by a change the issue refers to")
    assert why.endswith(f'{later[:10]} "Parser: later change"')


def test_past_commits_with_the_same_words_lift_what_they_changed(storied: Path) -> None:
    issue = "Rendered titles drop tab characters"
    result = locate_text(issue, repo=storied)
    assert paths(result)[0] == "pkg/util/strings.py"
    fix = git(storied, "rev-parse", "HEAD~2")
    why = reason(result, "pkg/util/strings.py", "changed by past commits that read like the")
    assert why == (
        "changed by past commits that read like the issue, such as "
        f'{fix[:10]} "Fix #41: tab characters vanish from rendered titles"'
    )


def test_history_is_cached_per_commit_and_git_is_not_run_again(
    storied: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    issue = "Rendered titles drop tab characters, a regression of #41"
    first = locate_text(issue, repo=storied)

    def no_git(*args: object, **kwargs: object) -> None:
        raise AssertionError("history ran git on a warm call")

    monkeypatch.setattr(history, "_git", no_git)
    second = locate_text(issue, repo=storied)
    assert paths(second) == paths(first)
    assert [f.reasons for f in second.files] == [f.reasons for f in first.files]


def test_commits_touching_many_files_say_nothing(repo: Path) -> None:
    for i in range(history.MAX_CHANGED + 1):
        write(repo, f"pkg/gen/mod{i}.py", f"VALUE = {i}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Reformat everything for #77")
    cache = open_cache(repo / ".agent", "index")
    try:
        head = git(repo, "rev-parse", "HEAD")
        assert referenced_files(repo, head, "see #77", cache).scores == {}
        assert load_history(repo, head, cache).credit({"reformat": 1.0}).scores == {}
    finally:
        cache.close()


def test_no_history_to_speak_of_is_not_an_error(tmp_path: Path) -> None:
    root = tmp_path / "one"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, "a.py", "def compute():\n    return 1\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "a")
    result = locate_text("compute() returns 1, see #3 and abc1234", repo=root)
    assert paths(result) == ["a.py"]


def test_a_lost_history_bucket_rebuilds_the_history(storied: Path) -> None:
    head = git(storied, "rev-parse", "HEAD")
    query = {"tab": 1.0, "titles": 1.0}
    cache = open_cache(storied / ".agent", "index")
    try:
        first = similar_files(storied, head, query, cache)
        assert next(iter(first.scores)) == "pkg/util/strings.py"
        key = history._history_key(head)
        bucket = bucket_of("tab")
        assert cache.delete(f"{key}:{bucket}")  # as an eviction would
        assert similar_files(storied, head, query, cache) == first
        assert isinstance(cache.get(f"{key}:{bucket}"), str)
    finally:
        cache.close()


def test_a_link_to_another_repositorys_issue_is_not_ours(storied: Path) -> None:
    git(storied, "remote", "add", "origin", "https://github.com/acme/pkg.git")
    theirs = "Titles lose their indentation, like https://github.com/other/lib/issues/41"
    assert all(
        "refers to" not in r for f in locate_text(theirs, repo=storied).files for r in f.reasons
    )
    ours = "Titles lose their indentation, like https://github.com/acme/pkg/issues/41"
    assert paths(locate_text(ours, repo=storied))[0] == "pkg/util/strings.py"


def test_non_ascii_paths_get_history_credit(repo: Path) -> None:
    write(repo, "pkg/héllo.py", "def greet():\n    return 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Add greeting")
    change(repo, "pkg/héllo.py", "# 1", "Fix #41: tab characters vanish from rendered titles")
    result = locate_text("Titles lose indentation, regression of #41", repo=repo)
    assert paths(result)[0] == "pkg/héllo.py"


def test_a_failed_git_log_is_not_cached(storied: Path, tmp_path: Path) -> None:
    head = git(storied, "rev-parse", "HEAD")
    cache = open_cache(storied / ".agent", "index")
    try:
        broken = tmp_path / "not-a-repo"  # git fails there, as with a missing object
        broken.mkdir()
        assert load_history(broken, head, cache).credit({"tab": 1.0}).scores == {}
        assert cache.get(history._history_key(head)) is None
        assert similar_files(storied, head, {"tab": 1.0}, cache).scores  # built now, from git
    finally:
        cache.close()


def test_a_long_subject_is_cut_and_a_lost_subject_entry_only_loses_the_name(
    storied: Path,
) -> None:
    long = "Titles: zebra " + "tab characters vanish again " * 5
    sha = change(storied, "pkg/util/strings.py", "# 5", long.strip())
    cache = open_cache(storied / ".agent", "index")
    try:
        credit = similar_files(storied, sha, {"zebra": 1.0}, cache)
        why = credit.why["pkg/util/strings.py"]
        assert why.startswith(f'{sha[:10]} "Titles: zebra tab characters')
        assert why.endswith('…"') and len(why) <= 10 + 3 + history.SUBJECT_CHARS
        key = history._history_key(sha)
        assert cache.delete(f"{key}:m0")  # as an eviction would
        again = similar_files(storied, sha, {"zebra": 1.0}, cache)
        assert again.scores == credit.scores and again.why == {}
        assert cache.get(f"{key}:m0") is None  # not rebuilt for an explanation
    finally:
        cache.close()


def test_ctrl_c_while_waiting_for_the_log_stops_git(storied: Path) -> None:
    reader = history.LogReader(storied, git(storied, "rev-parse", "HEAD"))
    assert reader._proc is not None
    reader._proc.wait()
    slow = subprocess.Popen(["sleep", "30"])  # a git log that takes its time
    waits: list[object] = []
    real_wait = slow.wait

    def interrupted_wait(timeout: float | None = None) -> int:
        if not waits:
            waits.append(timeout)
            raise KeyboardInterrupt
        return real_wait(timeout)

    slow.wait = interrupted_wait  # type: ignore[method-assign]
    reader._proc = slow
    with pytest.raises(KeyboardInterrupt):
        reader.text()
    assert slow.poll() is not None  # killed, not left running


def test_each_commit_keeps_its_own_name_across_entries(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "COMMIT_CHUNK", 2)  # a commit per line, entries of two
    made = {}
    for i, word in enumerate(["alpha", "bravo", "charlie", "delta", "echo"]):
        write(repo, f"pkg/w{i}.py", f"X = {i}\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"Add {word} module")
        made[f"pkg/w{i}.py"] = (git(repo, "rev-parse", "HEAD"), word)
    # Skipped commits (too many files) must not shift the names of the others.
    for i in range(history.MAX_CHANGED + 1):
        write(repo, f"pkg/gen/m{i}.py", f"V = {i}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Generate alpha bravo charlie delta echo tables")
    head = git(repo, "rev-parse", "HEAD")
    cache = open_cache(repo / ".agent", "index")
    try:
        for built in (True, False):  # as built, then as read back from the cache
            h = load_history(repo, head, cache)
            # Not the initial commit (no parent) nor the generator (too many files).
            assert h.size == 5
            for path, (sha, word) in made.items():
                why = h.credit({word: 1.0}).why
                assert why[path] == f'{sha[:10]} "Add {word} module"', (built, path)
    finally:
        cache.close()
