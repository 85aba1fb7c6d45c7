"""One validated `Settings` from defaults, `.agentrc` files, the environment and flags.

Precedence, highest first: command-line flags > `AGENT_*` environment variables >
the repository's `.agentrc` > the user's `.agentrc` (in the platform's config
directory, or `$AGENT_CONFIG_DIR`) > defaults. `ANTHROPIC_API_KEY` and
`ANTHROPIC_BASE_URL` fill `api_key` and `base_url` when nothing above sets them.

Every layer is checked on its own before merging, so an unknown key or a value of
the wrong type is reported with the file (or variable) it came from. The API key is
never part of what a run records (`Settings.for_run()`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from agent_cli.errors import UsageError

RC_NAME = ".agentrc"


class ModelPrice(BaseModel):
    """USD per million tokens, for a model genai-prices does not know or to override it."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0, description="Uncached input tokens.")
    output: float = Field(ge=0, description="Output tokens.")
    cache_write: float | None = Field(
        default=None, ge=0, description="Tokens written to the prompt cache (default 1.25 x input)."
    )
    cache_read: float | None = Field(
        default=None, ge=0, description="Tokens read from the prompt cache (default 0.1 x input)."
    )


class Settings(BaseModel):
    """Everything a run can be configured with. `.agentrc.example` documents each key."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: str = Field(default="sonnet", description="Model alias (sonnet, opus, haiku) or id.")
    max_cost: float | None = Field(
        default=None, gt=0, description="Budget in USD; the run waits for approval before passing it."
    )
    max_attempts: int = Field(default=3, ge=0, description="Fix attempts before asking a human.")
    auto_approve: bool = Field(default=False, description="Skip the plan approval gate.")
    test_cmd: str | None = Field(default=None, description="Test command; detected when unset.")
    test_timeout: float = Field(default=900, gt=0, description="Seconds before a test run is stopped.")
    test_output_cap: int = Field(default=200_000, gt=0, description="Bytes of test output kept.")
    api_key: SecretStr | None = Field(default=None, description="Anthropic API key.")
    base_url: str | None = Field(
        default=None, description="Anthropic-compatible endpoint (LiteLLM, Ollama, vLLM)."
    )
    request_timeout: float = Field(default=600, gt=0, description="Seconds per model request.")
    max_retries: int = Field(default=4, ge=0, description="Retries of a failed model request.")
    max_tokens: int = Field(default=8192, gt=0, description="Output token limit per model call.")
    context_tokens: int = Field(
        default=30_000, gt=0, description="Token budget for code shown to the model when planning."
    )
    locate_top: int = Field(default=10, gt=0, description="Files the exploration stage ranks.")
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="Per-model price overrides, by model id or alias."
    )
    push: bool = Field(default=False, description="Push the branch and open a draft PR with gh.")
    keep_worktree: bool = Field(default=False, description="Keep the worktree after success.")

    def for_run(self) -> dict[str, Any]:
        """What a run records: everything but the key."""
        return self.model_dump(mode="json", exclude={"api_key"})


def user_config_dir() -> Path:
    if os.environ.get("AGENT_CONFIG_DIR"):
        return Path(os.environ["AGENT_CONFIG_DIR"])
    import platformdirs

    return Path(platformdirs.user_config_dir("agent"))


# A repository is someone else's code: its .agentrc may say how to run its tests, but
# not where to send the user's API key, what models cost, or to skip the user's consent.
NOT_FROM_REPO = ("api_key", "base_url", "prices", "push", "auto_approve")


def load_settings(repo: Path | None, flags: dict[str, Any] | None = None) -> Settings:
    """Merge every layer; raise `UsageError` naming the key and its source."""
    layers: list[tuple[str, dict[str, Any]]] = []
    user_rc = user_config_dir() / RC_NAME
    if user_rc.is_file():
        layers.append((str(user_rc), _read_rc(user_rc)))
    if repo is not None and (repo / RC_NAME).is_file():
        repo_rc = repo / RC_NAME
        values = _read_rc(repo_rc)
        for key in NOT_FROM_REPO:
            if key in values:
                raise UsageError(
                    f"{repo_rc} sets {key!r}, which a repository's .agentrc may not set "
                    "(it could send your key elsewhere, change prices or skip your approval)",
                    hint=f"remove it there; set it in {user_rc}, an AGENT_* variable or a flag")
        layers.append((str(repo_rc), values))
    layers.append(("the environment", _from_env()))
    layers.append(("the command line", {k: v for k, v in (flags or {}).items() if v is not None}))
    merged: dict[str, Any] = {}
    for source, values in layers:
        _check_layer(source, values)
        merged.update(values)
    for key, var in (("api_key", "ANTHROPIC_API_KEY"), ("base_url", "ANTHROPIC_BASE_URL")):
        if merged.get(key) is None and os.environ.get(var):
            merged[key] = os.environ[var]
    return Settings.model_validate(merged)


def _read_rc(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as f:  # a stream, so YAML's errors name the file
            data = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"{path} is not valid YAML: {exc}", hint=f"fix or remove {path}"
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(
            f"{path} must be a YAML mapping of settings, not a {type(data).__name__}",
            hint="see .agentrc.example for every key",
        )
    return data


def _from_env() -> dict[str, Any]:
    # Only AGENT_<setting>: CI systems set AGENT_ID, AGENT_NAME and the like for their own use.
    out: dict[str, Any] = {}
    for name, value in os.environ.items():
        key = name[len("AGENT_"):].lower()
        if not name.startswith("AGENT_") or key not in Settings.model_fields:
            continue
        if key == "prices":
            try:
                out[key] = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise UsageError(f"{name} is not valid YAML: {exc}") from exc
        else:
            out[key] = value
    return out


def _check_layer(source: str, values: dict[str, Any]) -> None:
    fields = Settings.model_fields
    for key, value in values.items():
        shown = f"AGENT_{str(key).upper()}" if source == "the environment" else key
        if key not in fields:
            raise UsageError(
                f"unknown setting {shown!r} in {source}",
                hint="known settings: " + ", ".join(fields) + " (see .agentrc.example)",
            )
        try:
            Settings.model_validate({key: value})
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"][1:])
            detail = f" at {where}" if where else ""
            got = "" if key == "api_key" else f" (got {value!r})"
            raise UsageError(
                f"bad value for {shown!r} in {source}{detail}: {problem['msg']}{got}",
                hint="see .agentrc.example for the expected type of each key",
            ) from None
