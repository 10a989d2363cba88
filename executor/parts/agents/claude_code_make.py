"""`--agent claude-code`: the adapter from the LLM agents' shared options."""

from __future__ import annotations

from typing import TYPE_CHECKING
from collections.abc import Callable

from executor.core.errors import UserInputError
from executor.parts.agents.claude_code import (CLAUDE_CODE_NATIVE, CLAUDE_CODE_PACKAGE,
                                               KEY_VARIABLE, ClaudeCodeAgent,
                                               ClaudeCodeSettings)
from executor.parts.agents.llm_common import Endpoint

if TYPE_CHECKING:
    from executor.parts.agents import LlmAgentOptions


def make_claude_code(llm: LlmAgentOptions, placeholder: Callable) -> ClaudeCodeAgent:
    """The Anthropic key is read from $ANTHROPIC_API_KEY unless --api-key-env names another
    variable (the flag's default names OpenAI's)."""
    if not llm.model:
        raise UserInputError("the claude-code agent needs --model")
    if llm.must_patch:
        raise UserInputError("--must-patch is TRAE's option; the claude-code agent has none")
    if llm.revision and llm.revision != CLAUDE_CODE_PACKAGE.version:
        raise UserInputError(f"claude-code is pinned to {CLAUDE_CODE_PACKAGE.version} (its "
                             "integrity hashes are recorded); --agent-revision cannot change it")
    key_env = llm.api_key_env if "api_key_env" in llm.model_fields_set else KEY_VARIABLE
    llm = llm.model_copy(update={"api_key_env": key_env})
    settings = ClaudeCodeSettings(
        endpoint=Endpoint(model=llm.model, base_url=llm.base_url, api_key_env=key_env),
        package=CLAUDE_CODE_PACKAGE, native=CLAUDE_CODE_NATIVE, max_turns=llm.max_steps)
    return ClaudeCodeAgent(settings, prices=llm.prices, verbose=llm.verbose,
                           environ=placeholder(llm))
