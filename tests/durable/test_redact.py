"""Redaction: what counts as a secret, and that the store never writes one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_cli.durable import fsio, redact


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "_registered", set())
    monkeypatch.setattr(redact, "_cache", None)


@pytest.mark.parametrize("name,secret", [
    ("ANTHROPIC_API_KEY", True), ("GITHUB_TOKEN", True), ("AWS_SECRET_ACCESS_KEY", True),
    ("AWS_REGION", True), ("DB_PASSWORD", True), ("GOOGLE_APPLICATION_CREDENTIALS", True),
    ("HF_AUTH", True), ("PATH", False), ("HOME", False), ("GIT_AUTHOR_NAME", False),
    ("GIT_AUTHOR_EMAIL", False), ("LANG", False)])
def test_names_that_look_secret(name: str, secret: bool) -> None:
    assert redact.looks_secret(name) is secret


def test_registered_values_and_secret_variables_are_redacted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-123456789")
    monkeypatch.setenv("SHORT_TOKEN", "1234")  # too short to redact without damage
    redact.register("sk-ant-registered-0001", None, "")
    text = "key sk-ant-registered-0001 and tok-123456789 and 1234"
    assert redact.text(text) == "key [redacted] and [redacted] and 1234"
    data = {"a": ["tok-123456789", 5, {"sk-ant-registered-0001": None}]}
    assert redact.data(data) == {"a": ["[redacted]", 5, {"[redacted]": None}]}
    assert data["a"][0] == "tok-123456789"  # not modified in place


def test_the_store_writes_no_secret_even_json_escaped(tmp_path: Path) -> None:
    secret = 'pa"ss\\wörd-987654'
    redact.register(secret)
    fsio.write_json(tmp_path / "record.json", {"output": f"the test printed {secret}"})
    fsio.append_line(tmp_path / "events.jsonl", {"said": secret})
    written = (tmp_path / "record.json").read_bytes() + (tmp_path / "events.jsonl").read_bytes()
    assert json.dumps(secret)[1:-1].encode() not in written and secret.encode() not in written
    assert fsio.read_json(tmp_path / "record.json")["output"] == "the test printed [redacted]"
