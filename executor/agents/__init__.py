"""Agent adapters, by name. Adding an agent is one module and one line in `AGENTS`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from executor.agents.base import Agent
from executor.errors import UserInputError
from executor.pricing import PriceTable

AGENTS = ("replay", "script", "trae", "mini-swe-agent")


class LlmAgentOptions(BaseModel):
    """Command-line settings shared by the LLM agents (no secrets: the key stays in the env)."""

    model: str | None = Field(default=None, description="Model name served by the endpoint.")
    base_url: str | None = Field(default=None, description="OpenAI-compatible endpoint URL.")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="Host variable with the key.")
    source: str | None = Field(default=None, description="Agent source: checkout path or git URL.")
    revision: str | None = Field(default=None, description="Source revision or package version.")
    python: Path | None = Field(default=None, description="Relocatable CPython for the bundle.")
    max_steps: int | None = Field(default=None, description="Agent step limit.")
    prices: PriceTable | None = Field(default=None, description="Prices for the cost in usage.")
    verbose: bool = Field(default=False, description="Stream the agent's output to the console.")
    key_on_controller: bool = Field(
        default=False, description="The key is not needed where the agent is built: its model "
        "calls are replayed (--gateway-replay) or go through the gateway of a Ray batch's "
        "driver, which holds the key.")


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
        from executor.agents.replay import ReplayAgent

        if patch_file is not None:
            return ReplayAgent(_read(patch_file, "patch"), str(patch_file))
        if default_patch is None:
            raise UserInputError("the replay agent needs --patch FILE for this task")
        return ReplayAgent(*default_patch)
    if name == "script":
        from executor.agents.script import ScriptAgent

        if script_file is None:
            raise UserInputError("the script agent needs --agent-script FILE")
        endpoint = None
        if llm is not None and (llm.base_url or llm.key_on_controller):
            from executor.agents.llm_common import Endpoint

            endpoint = Endpoint(model=llm.model or "none", base_url=llm.base_url,
                                api_key_env=llm.api_key_env)
        return ScriptAgent(_read(script_file, "script"), str(script_file), endpoint,
                           environ=_placeholder_environ(llm))
    if name in ("trae", "mini-swe-agent"):
        llm = llm or LlmAgentOptions()
        if not llm.model:
            raise UserInputError(f"the {name} agent needs --model")
        if name == "mini-swe-agent":
            return _mini_swe(llm)
        return _trae(llm)
    raise UserInputError(f"unknown agent {name!r}; choose one of: {', '.join(AGENTS)}")


def _mini_swe(llm: LlmAgentOptions) -> Agent:
    from executor.agents.llm_common import Endpoint
    from executor.agents.mini_swe import MINI_SWE_VERSION, MiniSweAgent, MiniSweSettings

    settings = MiniSweSettings(
        endpoint=Endpoint(model=llm.model, base_url=llm.base_url, api_key_env=llm.api_key_env),
        version=llm.revision or MINI_SWE_VERSION, step_limit=llm.max_steps)
    return MiniSweAgent(settings, prices=llm.prices, verbose=llm.verbose,
                        environ=_placeholder_environ(llm))


def _trae(llm: LlmAgentOptions) -> Agent:
    from executor.agents.trae import TRAE_REVISION, TRAE_SOURCE, TraeSettings
    from executor.agents.trae_adapter import TraeAgent

    settings = TraeSettings(model=llm.model, base_url=llm.base_url,
                            source=llm.source or TRAE_SOURCE,
                            revision=llm.revision or TRAE_REVISION,
                            # TRAE retries every exception with 3-30 s sleeps; the controller
                            # retries only what its classification says a retry can fix.
                            max_retries=0,
                            **({"max_steps": llm.max_steps} if llm.max_steps else {}))
    return TraeAgent(settings, api_key_env=llm.api_key_env, python=llm.python,
                     prices=llm.prices, verbose=llm.verbose, environ=_placeholder_environ(llm))
