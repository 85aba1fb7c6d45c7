"""Settings: layers, precedence and errors that name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent_cli.errors import UsageError
from agent_cli.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    import os

    for name in list(os.environ):
        if name.startswith(("AGENT_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    user = tmp_path / "user"
    user.mkdir()
    monkeypatch.setenv("AGENT_CONFIG_DIR", str(user))
    return user


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults() -> None:
    s = load_settings(None)
    assert s.model == "sonnet" and s.max_attempts == 3 and s.max_cost is None


def test_precedence_flags_env_repo_user(tmp_path: Path, clean_env: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    write(clean_env / ".agentrc", {"model": "haiku", "max_attempts": 1, "max_cost": 1.0,
                                   "test_timeout": 5})
    write(repo / ".agentrc", {"model": "opus", "max_attempts": 2, "max_cost": 2.0})
    monkeypatch.setenv("AGENT_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("AGENT_MAX_COST", "3.5")
    s = load_settings(repo, {"max_cost": 9.0, "model": None})
    assert s.test_timeout == 5  # user file
    assert s.model == "haiku"  # the user chose a model: the repository's is not taken
    assert s.max_attempts == 2  # the repository's limit is lower than the env's 4
    assert s.max_cost == 2.0  # ... and than the flag's 9.0; a None flag is "not given"
    assert load_settings(None, {"max_cost": 9.0}).max_cost == 9.0  # flag beats env
    assert load_settings(None).max_attempts == 4  # env beats the user's file


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    rc = write(tmp_path / ".agentrc", {"modle": "opus"})
    with pytest.raises(UsageError) as err:
        load_settings(tmp_path)
    assert "unknown setting 'modle'" in err.value.message and str(rc) in err.value.message


def test_wrong_type_names_key_and_file(tmp_path: Path) -> None:
    rc = write(tmp_path / ".agentrc", {"max_attempts": "many"})
    with pytest.raises(UsageError) as err:
        load_settings(tmp_path)
    assert f"bad value for 'max_attempts' in {rc}" in err.value.message


def test_bad_env_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_MAX_COST", "lots")
    with pytest.raises(UsageError) as err:
        load_settings(None)
    assert "'AGENT_MAX_COST' in the environment" in err.value.message


def test_malformed_yaml(tmp_path: Path) -> None:
    (tmp_path / ".agentrc").write_text("model: [unclosed\n")
    with pytest.raises(UsageError) as err:
        load_settings(tmp_path)
    assert "is not valid YAML" in err.value.message


def test_anthropic_variables_fill_key_and_url_and_key_is_never_recorded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-secret")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://localhost:4000")
    s = load_settings(None)
    assert s.api_key is not None and s.api_key.get_secret_value() == "sk-secret"
    assert s.base_url == "http://localhost:4000"
    assert "sk-secret" not in str(s.for_run()) and "api_key" not in s.for_run()


def test_example_file_documents_every_key_with_its_default() -> None:
    example = yaml.safe_load((REPO / ".agentrc.example").read_text())
    assert set(example) == set(Settings.model_fields)
    defaults = Settings().model_dump(mode="json")
    for key, value in example.items():
        assert value == defaults[key], key
    Settings.model_validate(example)


@pytest.mark.parametrize("key,value", [("base_url", "http://evil.example"), ("api_key", "x"),
                                       ("prices", {"sonnet": {"input": 0, "output": 0}}),
                                       ("push", True), ("auto_approve", True)])
def test_a_repository_cannot_set_what_needs_the_users_trust(tmp_path: Path, key: str,
                                                            value: object) -> None:
    rc = write(tmp_path / ".agentrc", {key: value})
    with pytest.raises(UsageError) as err:
        load_settings(tmp_path)
    assert f"{rc} sets {key!r}" in err.value.message


def test_the_user_config_may_set_them(clean_env: Path) -> None:
    write(clean_env / ".agentrc", {"base_url": "http://localhost:4000", "push": True})
    s = load_settings(None)
    assert s.base_url == "http://localhost:4000" and s.push is True


def test_unrelated_agent_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_ID", "42")  # Azure Pipelines and others set these
    monkeypatch.setenv("AGENT_NAME", "build-host")
    assert load_settings(None).model == "sonnet"


def test_a_repository_cannot_raise_the_users_limits_or_pick_a_costlier_model(
        tmp_path: Path, clean_env: Path) -> None:
    write(clean_env / ".agentrc", {"max_cost": 0.001, "model": "haiku"})
    write(tmp_path / ".agentrc", {"max_cost": 100000, "model": "opus", "max_attempts": 1000,
                                  "test_timeout": 100000, "max_tokens": 64000})
    s = load_settings(tmp_path)
    assert (s.max_cost, s.model, s.max_attempts, s.test_timeout, s.max_tokens) == \
        (0.001, "haiku", 3, 900, 8192)
    report = s.from_repository()
    assert set(report) == {"max_cost", "model", "max_attempts", "test_timeout", "max_tokens"}
    assert not any(r["applied"] for r in report.values())
    assert "yours is 0.001" in report["max_cost"]["note"]
    assert "you chose haiku" in report["model"]["note"]


def test_a_repository_can_make_a_run_cheaper_or_stricter(tmp_path: Path) -> None:
    write(tmp_path / ".agentrc", {"max_cost": 2.5, "max_attempts": 1, "test_timeout": 60,
                                  "model": "haiku", "sandbox": "required",
                                  "sandbox_network": False, "test_cmd": "make check"})
    s = load_settings(tmp_path)
    assert (s.max_cost, s.max_attempts, s.test_timeout, s.model, s.sandbox, s.test_cmd) == \
        (2.5, 1, 60, "haiku", "required", "make check")
    assert all(r["applied"] for r in s.from_repository().values())
    assert s.from_repository()["max_cost"]["note"] == "you set no limit"


def test_a_repository_cannot_loosen_the_sandbox(tmp_path: Path, clean_env: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / ".agentrc", {"sandbox": "off", "sandbox_network": True})
    s = load_settings(tmp_path)
    assert s.sandbox == "auto" and s.sandbox_network is False
    assert not any(r["applied"] for r in s.from_repository().values())
    write(clean_env / ".agentrc", {"sandbox_network": True})  # the user may
    monkeypatch.setenv("AGENT_SANDBOX", "off")
    s = load_settings(tmp_path)
    assert s.sandbox == "off" and s.sandbox_network is True


@pytest.mark.parametrize("key,value", [("test_env", ["ANTHROPIC_API_KEY"]),
                                       ("sandbox_read", ["~/.ssh"])])
def test_a_repository_cannot_reach_the_users_secrets(tmp_path: Path, key: str,
                                                     value: object) -> None:
    write(tmp_path / ".agentrc", {key: value})
    with pytest.raises(UsageError) as err:
        load_settings(tmp_path)
    assert f"sets {key!r}" in err.value.message


def test_list_settings_from_the_environment_are_comma_separated(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_TEST_ENV", "PGHOST, PGPORT,")
    monkeypatch.setenv("AGENT_SANDBOX_READ", "/opt/data")
    s = load_settings(None)
    assert s.test_env == ["PGHOST", "PGPORT"] and s.sandbox_read == ["/opt/data"]
