"""Agent adapters, by name. Adding an agent is one module and one line in `AGENTS`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, Field, model_validator

from executor.parts.agents.base import Agent
from executor.core.errors import UserInputError
from executor.core.pricing import DEFAULT_PRICES, PriceTable

AgentName = Literal["replay", "script", "trae", "mini-swe-agent", "claude-code", "codex",
                    "openhands"]
AGENTS: tuple[str, ...] = get_args(AgentName)
LLM_AGENTS = ("trae", "mini-swe-agent", "claude-code", "codex", "openhands")  # take --model


class AgentChoice(BaseModel):
    """Which agent an attempt runs, its input file and its bounds: the `--agent...` flags of
    run-commit and run (executor/cli/options.py makes the flags from the fields)."""

    agent: AgentName = Field(default="replay", json_schema_extra={"flag": "--agent"},
                             description="Agent adapter to run.")
    patch_file: Path | None = Field(
        default=None, json_schema_extra={"flag": "--patch", "path": {"dir_okay": False}},
        description="Patch for the replay agent (the demo ships a default).")
    script_file: Path | None = Field(
        default=None, json_schema_extra={"flag": "--agent-script", "path": {"dir_okay": False}},
        description="Shell script for the script agent (runs in the repo, in the sandbox; "
                    "$ISOBENCH_ITEM_ID names the item).")
    budget_min: int = Field(default=120, ge=1, json_schema_extra={"flag": "--agent-budget"},
                            description="Agent wall-clock budget in minutes.")
    max_steps: int | None = Field(default=None, ge=1, json_schema_extra={"flag": "--max-steps"},
                                  description="Agent step limit.")
    network: str = Field(default="bridge", json_schema_extra={"flag": "--agent-network"},
                         description="Network mode of the agent sandbox (bridge, host, none).")


class LlmAgentOptions(BaseModel):
    """Settings shared by the LLM agents (no secrets: the key stays in the env); the flagged
    fields are run-commit's and run's `--model ...` options."""

    model: str | None = Field(default=None, json_schema_extra={"flag": "--model"},
                              description="LLM agents: model name served by the endpoint.")
    base_url: str | None = Field(
        default=None, json_schema_extra={"flag": "--base-url"},
        description="LLM agents: OpenAI-compatible endpoint URL (a loopback URL puts the agent "
                    "sandbox on the host network).")
    api_key_env: str = Field(default="OPENAI_API_KEY", json_schema_extra={"flag": "--api-key-env"},
                             description="LLM agents: host environment variable holding the "
                                         "API key.")
    source: str | None = Field(default=None, json_schema_extra={"flag": "--agent-source",
                                                                "path_or_url": True},
                               description="trae: local checkout/mirror path or git URL.")
    revision: str | None = Field(default=None, json_schema_extra={"flag": "--agent-revision"},
                                 description="trae: source revision; mini-swe-agent: version.")
    python: Path | None = Field(
        default=None,
        json_schema_extra={"flag": "--agent-python",
                           "path": {"exists": True, "file_okay": False}},
        description="trae (>= 3.12), openhands (3.12): a relocatable CPython install prefix for "
                    "its bundle.")
    must_patch: bool = Field(
        default=False, json_schema_extra={"flag": "--must-patch"},
        description="trae: pass TRAE's --must-patch (it rejects an empty `git diff`; committed "
                    "work then dies with a 400: README, Agents).")
    price_table: Path | None = Field(
        default=None, json_schema_extra={"flag": "--price-table",
                           "path": {"exists": True, "dir_okay": False}},
        description="TOML/JSON prices added to the defaults, for the cost in the journal.")
    max_steps: int | None = Field(default=None, description="Agent step limit (AgentChoice's).")
    prices: PriceTable | None = Field(default=None, description="Prices for the cost in usage.")
    verbose: bool = Field(default=False, description="Stream the agent's output to the console.")
    key_on_controller: bool = Field(
        default=False, description="The key is not needed where the agent is built: its model "
        "calls are replayed (--gateway-replay) or go through the gateway of a Ray batch's "
        "driver, which holds the key.")

    @model_validator(mode="after")
    def _load_price_table(self) -> "LlmAgentOptions":
        # Read where the flag is given, once: the table (not the path) travels to Ray nodes.
        if self.price_table is not None and self.prices is None:
            try:
                table = PriceTable.load(self.price_table)
            except (OSError, ValueError) as exc:  # TOML, JSON and schema errors are ValueErrors
                raise ValueError(f"--price-table {self.price_table}: not a price table "
                                 f"({str(exc).splitlines()[0]})") from exc
            self.prices = DEFAULT_PRICES.merged(table)
        return self

    def check_model(self, agent: str) -> None:
        """--model goes with the LLM agents and only with them (bad input otherwise)."""
        if agent in LLM_AGENTS and not self.model:
            raise UserInputError(f"the {agent} agent needs --model")
        if agent not in LLM_AGENTS and self.model:
            raise UserInputError(f"--model {self.model}: the {agent} agent uses no model")


def _placeholder_environ(llm: "LlmAgentOptions | None") -> dict[str, str] | None:
    """Where the controller's gateway holds the key (or replays), agents are built with a
    placeholder instead of the environment's key; routing replaces it by the attempt token."""
    if llm is None or not llm.key_on_controller:
        return None
    return {llm.api_key_env: "isobench-key-on-controller"}


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserInputError(f"cannot read {what} {path}: {exc.strerror}") from exc


def make_agent(name: str, *, patch_file: Path | None = None, script_file: Path | None = None,
               default_patch: tuple[bytes, str] | None = None,
               llm: LlmAgentOptions | None = None) -> Agent:
    """Build the adapter named on the command line.

    `default_patch` is the task's own reference patch (the demo ships one), used by the
    replay agent when no --patch is given.
    """
    if name == "replay":
        from executor.parts.agents.replay import ReplayAgent

        if patch_file is not None:
            return ReplayAgent(_read(patch_file, "patch"), str(patch_file))
        if default_patch is None:
            raise UserInputError("the replay agent needs --patch FILE for this task")
        return ReplayAgent(*default_patch)
    if name == "script":
        from executor.parts.agents.script import ScriptAgent

        if script_file is None:
            raise UserInputError("the script agent needs --agent-script FILE")
        endpoint = None
        if llm is not None and (llm.base_url or llm.key_on_controller):
            from executor.parts.agents.llm_common import Endpoint

            endpoint = Endpoint(model=llm.model or "none", base_url=llm.base_url,
                                api_key_env=llm.api_key_env)
        return ScriptAgent(_read(script_file, "script"), str(script_file), endpoint,
                           environ=_placeholder_environ(llm))
    if name == "claude-code":
        from executor.parts.agents.claude_code_make import make_claude_code

        return make_claude_code(llm or LlmAgentOptions(), _placeholder_environ)
    if name in ("codex", "openhands"):
        from executor.parts.agents.cli_agents import make_cli_agent

        return make_cli_agent(name, llm or LlmAgentOptions(), _placeholder_environ(llm))
    if name in ("trae", "mini-swe-agent"):
        llm = llm or LlmAgentOptions()
        if llm.must_patch and name != "trae":
            raise UserInputError(f"--must-patch is TRAE's option; the {name} agent has none")
        if not llm.model:
            raise UserInputError(f"the {name} agent needs --model")
        if name == "mini-swe-agent":
            return _mini_swe(llm)
        return _trae(llm)
    raise UserInputError(f"unknown agent {name!r}; choose one of: {', '.join(AGENTS)}")


def _mini_swe(llm: LlmAgentOptions) -> Agent:
    from executor.parts.agents.llm_common import Endpoint
    from executor.parts.agents.mini_swe import MINI_SWE_VERSION, MiniSweAgent, MiniSweSettings

    settings = MiniSweSettings(
        endpoint=Endpoint(model=llm.model, base_url=llm.base_url, api_key_env=llm.api_key_env),
        version=llm.revision or MINI_SWE_VERSION, step_limit=llm.max_steps)
    return MiniSweAgent(settings, prices=llm.prices, verbose=llm.verbose,
                        environ=_placeholder_environ(llm))


def agent_source_pin(name: str, llm: LlmAgentOptions) -> tuple[str, str] | None:
    """(source, revision) an agent's bundle is exported from, as its adapter will resolve
    them; None for agents installed from a registry."""
    if name != "trae":
        return None
    from executor.parts.agents.trae import TRAE_REVISION, TRAE_SOURCE

    return llm.source or TRAE_SOURCE, llm.revision or TRAE_REVISION


def _trae(llm: LlmAgentOptions) -> Agent:
    from executor.parts.agents.trae import TRAE_REVISION, TRAE_SOURCE, TraeSettings
    from executor.parts.agents.trae_adapter import TraeAgent

    settings = TraeSettings(model=llm.model, base_url=llm.base_url,
                            source=llm.source or TRAE_SOURCE,
                            revision=llm.revision or TRAE_REVISION,
                            # TRAE retries every exception with 3-30 s sleeps; the controller
                            # retries only what its classification says a retry can fix.
                            max_retries=0, must_patch=llm.must_patch,
                            **({"max_steps": llm.max_steps} if llm.max_steps else {}))
    return TraeAgent(settings, api_key_env=llm.api_key_env, python=llm.python,
                     prices=llm.prices, verbose=llm.verbose, environ=_placeholder_environ(llm))
