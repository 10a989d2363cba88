"""TRAE (bytedance/trae-agent): settings, its config file and its command line.

The pure half of the TRAE adapter: nothing here touches a sandbox. What matters (FIELD_NOTES
section 3):
  * the config file holds a placeholder, never a key: TRAE prefers `<PROVIDER>_API_KEY` from the
    environment over the file, and the controller passes that variable at exec time only;
  * `--must-patch` is off by default: the controller computes the patch itself, and TRAE's own
    check (plain `git diff`) is blind to committed work and kills runs with a 400 instead;
  * lakeview is off by default (extra LLM calls per step), and must be switched off explicitly
    because TRAE's own default is on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from executor.core.yaml_emit import dump_yaml

TraeProvider = Literal["openai", "anthropic", "azure", "ollama", "openrouter", "doubao", "google"]

# Tools TRAE registers (trae_agent/tools/__init__.py at the pinned revision).
TRAE_TOOLS = ("bash", "str_replace_based_edit_tool", "json_edit_tool", "sequentialthinking",
              "task_done", "ckg")
DEFAULT_TOOLS = ("bash", "str_replace_based_edit_tool", "sequentialthinking", "task_done")

TRAE_SOURCE = "https://github.com/bytedance/trae-agent"
# Upstream main of 2026-02-05, with PR #369 (tool outputs persisted in history).
TRAE_REVISION = "e839e559ac61bdd0e057c375dd1dee391fee797d"

AGENT_MODEL_KEY = "trae_agent_model"
LAKEVIEW_MODEL_KEY = "lakeview_model"


class TraeSettings(BaseModel):
    """Everything isobench decides about a TRAE run (no secrets: keys come from the env)."""

    model_config = ConfigDict(extra="forbid")

    provider: TraeProvider = Field(default="openai", description="TRAE model provider name.")
    model: str = Field(description="Model name sent to the provider, e.g. 'gpt-5'.")
    base_url: str | None = Field(default=None,
                                 description="OpenAI-compatible endpoint; None: provider default.")
    api_version: str | None = Field(default=None, description="Azure API version, if azure.")
    max_steps: int = Field(default=200, ge=1, description="TRAE step limit (--max-steps).")
    max_tokens: int | None = Field(
        default=None, ge=1,
        description="Output token cap; too low truncates tool-call JSON ('Unterminated string').")
    temperature: float = Field(default=0.5, description="Sampling temperature (TRAE omits it "
                               "for gpt-5/o3/o4-mini).")
    top_p: float = Field(default=1.0, description="Nucleus sampling; TRAE always sends it.")
    top_k: int = Field(default=0, description="Top-k (providers that support it).")
    parallel_tool_calls: bool = Field(
        default=False, description="TRAE runs a step's tool calls concurrently when true; "
        "upstream does not send this to the API.")
    max_retries: int = Field(
        default=3, ge=0, description="TRAE's own retries per LLM call (3-30 s random sleeps, "
        "every exception); the controller's retries are the classified ones.")
    tools: list[str] = Field(default_factory=lambda: list(DEFAULT_TOOLS),
                             description="TRAE tool names enabled for the agent.")
    lakeview: bool = Field(default=False, description="Step summaries (extra LLM calls).")
    lakeview_model: str | None = Field(default=None,
                                       description="Model for lakeview; None: same as model.")
    must_patch: bool = Field(default=False, description="Pass --must-patch (see module doc).")
    source: str = Field(default=TRAE_SOURCE, description="Git URL or local checkout of TRAE.")
    revision: str = Field(default=TRAE_REVISION, description="TRAE commit to build and record.")

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, tools: list[str]) -> list[str]:
        unknown = sorted(set(tools) - set(TRAE_TOOLS))
        if unknown:
            raise ValueError(f"unknown TRAE tools {unknown}; known: {list(TRAE_TOOLS)}")
        if "task_done" not in tools:
            raise ValueError("TRAE can only finish through task_done; keep it in tools")
        return tools

    @property
    def api_key_env(self) -> str:
        """The variable TRAE reads the key from (it wins over the config file)."""
        return f"{self.provider.upper()}_API_KEY"


class TraePaths(BaseModel):
    """Where a run's files live inside the sandbox."""

    cli: str = Field(default="trae-cli", description="The bundle's trae-cli executable.")
    task_file: str = Field(description="Task prompt (--file).")
    working_dir: str = Field(description="Repository the agent works in (--working-dir).")
    config_file: str = Field(description="Rendered trae_config.yaml (--config-file).")
    trajectory_file: str = Field(description="Where TRAE writes its trajectory JSON.")
    patch_path: str = Field(description="Where TRAE writes its own `git diff` (evidence only).")


def _model_entry(settings: TraeSettings, model: str) -> dict:
    entry = {
        "model_provider": settings.provider,
        "model": model,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "top_k": settings.top_k,
        "parallel_tool_calls": settings.parallel_tool_calls,
        "max_retries": settings.max_retries,
    }
    if settings.max_tokens is not None:
        entry["max_tokens"] = settings.max_tokens
    return entry


def trae_config(settings: TraeSettings) -> dict:
    """TRAE's config schema as a dict (unknown keys are rejected by TRAE, so none are added)."""
    provider: dict = {"api_key": f"set-at-run-time-via-{settings.api_key_env}",
                      "provider": settings.provider}
    if settings.base_url:
        provider["base_url"] = settings.base_url
    if settings.api_version:
        provider["api_version"] = settings.api_version
    models = {AGENT_MODEL_KEY: _model_entry(settings, settings.model)}
    config: dict = {
        "agents": {"trae_agent": {"model": AGENT_MODEL_KEY, "max_steps": settings.max_steps,
                                  "enable_lakeview": settings.lakeview,
                                  "tools": list(settings.tools)}},
        "model_providers": {settings.provider: provider},
        "models": models,
    }
    if settings.lakeview:
        models[LAKEVIEW_MODEL_KEY] = _model_entry(settings,
                                                  settings.lakeview_model or settings.model)
        config["lakeview"] = {"model": LAKEVIEW_MODEL_KEY}
    return config


def render_trae_config(settings: TraeSettings) -> str:
    """trae_config.yaml text. Holds a placeholder where TRAE wants an api_key."""
    header = (f"# Written by isobench for TRAE {settings.revision[:12]}. No API key here: TRAE\n"
              f"# reads {settings.api_key_env} from the environment, set at exec time only.\n")
    return header + dump_yaml(trae_config(settings))


def trae_command(settings: TraeSettings, paths: TraePaths) -> list[str]:
    """`trae-cli run` argv. Never carries the key (argv shows up in `ps` and in logs)."""
    argv = [paths.cli, "run",
            "--file", paths.task_file,
            "--working-dir", paths.working_dir,
            "--config-file", paths.config_file,
            "--trajectory-file", paths.trajectory_file,
            "--patch-path", paths.patch_path,
            "--max-steps", str(settings.max_steps),
            "--console-type", "simple"]
    if settings.must_patch:
        argv.append("--must-patch")
    return argv
