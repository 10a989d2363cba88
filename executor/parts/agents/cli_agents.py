"""Making the adapters of the agents installed from registries as pinned CLIs (Codex CLI,
OpenHands) from the shared `--model ...` options: one place for their option rules, so the
agent registry (agents/__init__.py) stays one line per agent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from executor.core.errors import UserInputError
from executor.parts.agents.base import Agent

if TYPE_CHECKING:
    from executor.parts.agents import LlmAgentOptions


def make_cli_agent(name: str, llm: LlmAgentOptions, environ: dict[str, str] | None) -> Agent:
    from executor.parts.agents.llm_common import Endpoint

    if not llm.model:
        raise UserInputError(f"the {name} agent needs --model")
    if llm.must_patch:
        raise UserInputError(f"--must-patch is TRAE's option; the {name} agent has none")
    if llm.source:
        raise UserInputError(f"--agent-source is TRAE's; the {name} agent is installed from "
                             "its registry, pinned")
    if llm.python and name != "openhands":
        raise UserInputError(f"--agent-python: the {name} agent is a native binary and needs "
                             "no Python")
    endpoint = Endpoint(model=llm.model, base_url=llm.base_url, api_key_env=llm.api_key_env)
    if name == "codex":
        from executor.parts.agents.codex import CODEX_VERSION, CodexAgent, CodexSettings

        if llm.max_steps:
            raise UserInputError("--max-steps: codex exec has no step limit (bound it with "
                                 "--agent-budget or a token budget)")
        settings = CodexSettings(endpoint=endpoint, version=llm.revision or CODEX_VERSION)
        return CodexAgent(settings, prices=llm.prices, verbose=llm.verbose, environ=environ)
    if name == "openhands":
        from executor.parts.agents.openhands import (
            OPENHANDS_VERSION,
            OpenHandsAgent,
            OpenHandsSettings,
        )

        settings = OpenHandsSettings(endpoint=endpoint,
                                     version=llm.revision or OPENHANDS_VERSION,
                                     max_iterations=llm.max_steps)
        return OpenHandsAgent(settings, prices=llm.prices, verbose=llm.verbose,
                              environ=environ, python=llm.python)
    raise UserInputError(f"unknown agent {name!r}")
