"""`isobench rerun --agent` of an LLM agent: the agent runs again, built as the recorded command
built it, and its model calls are answered from the item's recorded traffic (the bundle's
model_calls.jsonl) by the controller's gateway in replay mode: no provider, no key.

What a replay proves: the same agent, given the same answers, makes the same requests and leaves
the same patch (compared with the recorded sha256 by `isobench compare`). A request the record
does not hold ends the attempt `replay_mismatch`, never a wrong answer. The recording host's
paths (a TRAE checkout, a CPython prefix) are used when they exist here; `--agent-source` and
`--agent-python` name this host's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from executor.core.errors import UserInputError
from executor.parts.agents import LlmAgentOptions, make_agent
from executor.parts.gateway.options import GatewayFlags, controller_gateway
from executor.runs.pipeline import AgentLimits, RunOptions


class AgentPaths(BaseModel):
    """This host's paths for what the recording host's command named."""

    python: Path | None = Field(default=None, description="--agent-python: a CPython prefix.")
    source: str | None = Field(default=None, description="--agent-source: a TRAE checkout.")


class RecordedAgent(BaseModel):
    """How the recorded command built and bounded its agent (the manifest's command options)."""

    name: str
    llm: LlmAgentOptions
    limits: AgentLimits


def _here(recorded: Any, given: Any) -> Any:
    """The path given on this host, else the recorded one if it exists here, else None."""
    if given:
        return given
    return recorded if recorded and Path(str(recorded)).exists() else None


def recorded_agent(command_options: dict | None, paths: AgentPaths) -> RecordedAgent:
    """The agent of the recorded command, from its resolved options (tables by help heading,
    keys by flag, as a job file has them)."""
    values = (command_options or {}).get("values") or {}
    agent, model = values.get("agent") or {}, values.get("model-and-gateway") or {}
    if not agent.get("agent") or not model.get("model"):
        raise UserInputError("the bundle's manifest does not record the command's agent "
                             "options (made before isobench recorded them): rerun without "
                             "--agent to re-measure the recorded patches")
    python = _here(agent.get("agent-python"), paths.python)
    llm = LlmAgentOptions(
        model=model["model"], base_url=model.get("base-url"),
        api_key_env=model.get("api-key-env") or "OPENAI_API_KEY",
        source=_here(agent.get("agent-source"), paths.source),
        revision=agent.get("agent-revision"), python=Path(python) if python else None,
        must_patch=bool(agent.get("must-patch")), max_steps=agent.get("max-steps"),
        key_on_controller=True)
    limits = AgentLimits(budget_s=int(agent.get("agent-budget") or 120) * 60,
                         max_steps=agent.get("max-steps"),
                         network=agent.get("agent-network") or "bridge")
    return RecordedAgent(name=agent["agent"], llm=llm, limits=limits)


def check_host(recorded: RecordedAgent) -> None:
    """What this host needs to build the agent (a CPython, a TRAE checkout), before any item
    runs: exit 2 naming the flag that fixes it."""
    from executor.core.resources import GpuRequest
    from executor.parts.agents import agent_source_pin
    from executor.runs.preflight import needs_for, preflight

    preflight(needs_for(None, gpus=GpuRequest(), agent=recorded.name,
                        agent_python=recorded.llm.python,
                        agent_source=agent_source_pin(recorded.name, recorded.llm)))


def rerun_llm_agent(job, recorded: RecordedAgent, model_calls: Path, run_options: RunOptions,
                    log):
    """One item's agent again on its recorded traffic, through the one-commit pipeline."""
    from executor.runs.pipeline import run_commit

    adapter = make_agent(recorded.name, llm=recorded.llm)
    options = run_options.model_copy(update={"agent": recorded.limits})
    with controller_gateway(adapter, GatewayFlags(gateway_replay=model_calls)):
        return run_commit(job, adapter, options, log)
