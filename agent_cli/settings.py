"""One validated `Settings` from defaults, `.agentrc` files, the environment and flags.

Precedence, highest first: command-line flags > `AGENT_*` environment variables >
the repository's `.agentrc` > the user's `.agentrc` (in the platform's config
directory, or `$AGENT_CONFIG_DIR`) > defaults. `ANTHROPIC_API_KEY` and
`ANTHROPIC_BASE_URL` fill `api_key` and `base_url` when nothing above sets them.

The repository is someone else's code, so its file is weighed, not obeyed (DESIGN.md,
trust boundary): it can make a run cheaper or stricter than the user's own settings,
never costlier or looser. A limit it sets counts only when lower than the user's
(`LOWER_ONLY`); its `model` only when the user chose none; its `sandbox` only when
stricter; `sandbox_network` only to turn the network off; and it may not set at all
what could send the key elsewhere, skip consent, or let secrets into tests
(`NOT_FROM_REPO`). `Settings.from_repository()` says what the file asked and what
was applied, for the approval gate.

Every layer is checked on its own before merging, so an unknown key or a value of
the wrong type is reported with the file (or variable) it came from. The API key is
never part of what a run records (`Settings.for_run()`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError

from agent_cli.durable import redact
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
    test_scope: Literal["related", "full"] = Field(
        default="related", description="related: the test files related to the change; full: "
        "those, then the whole suite when they pass.")
    related_budget: float = Field(
        default=15, gt=0, description="Seconds of base-commit test time for inferred test "
        "files (by name, imports, history); the changed and target ones always run. Also "
        "the longest one test may run there: a slower one the change does not edit is "
        "left out.")
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
    sandbox: Literal["auto", "required", "off"] = Field(
        default="auto", description="Confine test runs with bubblewrap: auto (when present), "
        "required (refuse without it), off.")
    sandbox_network: bool = Field(default=False, description="Let sandboxed tests use the network.")
    sandbox_read: list[str] = Field(
        default_factory=list, description="Host paths sandboxed tests may read besides the defaults.")
    test_env: list[str] = Field(
        default_factory=list, description="Names of environment variables passed to tests.")

    _from_repo: dict[str, dict[str, Any]] = PrivateAttr(default_factory=dict)

    def for_run(self) -> dict[str, Any]:
        """What a run records: everything but the key."""
        return self.model_dump(mode="json", exclude={"api_key"})

    def from_repository(self) -> dict[str, dict[str, Any]]:
        """Each key the repository's `.agentrc` set: `{"value", "applied", "note"}`."""
        return dict(self._from_repo)


def user_config_dir() -> Path:
    if os.environ.get("AGENT_CONFIG_DIR"):
        return Path(os.environ["AGENT_CONFIG_DIR"])
    import platformdirs

    return Path(platformdirs.user_config_dir("agent"))


# A repository is someone else's code: its .agentrc may say how to run its tests, but
# not where to send the user's API key, what models cost, to skip the user's consent,
# or which of the user's variables and files its tests may read.
NOT_FROM_REPO = ("api_key", "base_url", "prices", "push", "auto_approve", "test_env",
                 "sandbox_read")
# Limits where a repository's value counts only when it is lower than the user's.
LOWER_ONLY = ("max_cost", "max_attempts", "max_tokens", "context_tokens", "test_timeout",
              "test_output_cap", "request_timeout", "max_retries", "locate_top", "related_budget")
_STRICTNESS = {"off": 0, "auto": 1, "required": 2}
_LISTS = ("test_env", "sandbox_read")


def load_settings(repo: Path | None, flags: dict[str, Any] | None = None) -> Settings:
    """Merge every layer; raise `UsageError` naming the key and its source."""
    user_rc = user_config_dir() / RC_NAME
    user = _read_rc(user_rc) if user_rc.is_file() else {}
    _check_layer(str(user_rc), user)
    repo_values: dict[str, Any] = {}
    if repo is not None and (repo / RC_NAME).is_file():
        repo_rc = repo / RC_NAME
        repo_values = _read_rc(repo_rc)
        for key in NOT_FROM_REPO:
            if key in repo_values:
                raise UsageError(
                    f"{repo_rc} sets {key!r}, which a repository's .agentrc may not set "
                    "(it could send your key elsewhere, change prices, skip your approval "
                    "or hand your secrets to its tests)",
                    hint=f"remove it there; set it in {user_rc}, an AGENT_* variable or a flag")
        _check_layer(str(repo_rc), repo_values)
    env = _from_env()
    _check_layer("the environment", env)
    cli = {k: v for k, v in (flags or {}).items() if v is not None}
    _check_layer("the command line", cli)

    overriding = {**env, **cli}  # above the repository's file in precedence
    trusted = {**user, **overriding}
    mine = Settings.model_validate(trusted)
    merged = dict(trusted)
    report: dict[str, dict[str, Any]] = {}
    for key, raw in repo_values.items():
        value = getattr(Settings.model_validate({key: raw}), key)
        applied, note = _weigh(key, value, getattr(mine, key), key in overriding,
                               key in trusted)
        if applied:
            merged[key] = value
        report[key] = {"value": value, "applied": applied, "note": note}
    for key, var in (("api_key", "ANTHROPIC_API_KEY"), ("base_url", "ANTHROPIC_BASE_URL")):
        if merged.get(key) is None and os.environ.get(var):
            merged[key] = os.environ[var]
    settings = Settings.model_validate(merged)
    settings._from_repo = report
    if settings.api_key is not None:  # from a file too: never written, never sent
        redact.register(settings.api_key.get_secret_value())
    return settings


def _weigh(key: str, theirs: Any, mine: Any, overridden: bool, chosen: bool) -> tuple[bool, str]:
    """Whether the repository's value for `key` applies, and a note for people."""
    if key in LOWER_ONLY:
        if theirs is not None and (mine is None or theirs < mine):
            return True, "lower than yours" if mine is not None else "you set no limit"
        return False, f"ignored: yours is {mine} (a repository can only lower a limit)"
    if key == "model":
        if chosen:
            return False, f"ignored: you chose {mine}"
        return True, "you chose no model"
    if key == "sandbox":
        if _STRICTNESS[theirs] > _STRICTNESS[mine]:
            return True, "stricter than yours"
        return (theirs == mine), ("same as yours" if theirs == mine else
                                  f"ignored: yours is {mine} (a repository cannot loosen it)")
    if key == "sandbox_network":
        if not theirs:
            return True, "network off"
        return (mine is True), ("same as yours" if mine else
                                "ignored: a repository cannot open the sandbox's network")
    if overridden:
        return False, "ignored: set by a flag or AGENT_* variable"
    return True, "applied"


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
        elif key in _LISTS:  # AGENT_TEST_ENV=PGHOST,PGPORT
            out[key] = [item.strip() for item in value.split(",") if item.strip()]
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
