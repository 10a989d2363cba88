"""Claude Code's endings read from its stream-json record (lines as 2.1.332 printed them
against the scripted Messages server), never from its exit code."""

import json

import pytest

from executor.core.journal import EXIT_PROVIDER_REFUSED, RunStatus, exit_code_for
from executor.parts.agents.base import AgentEnding
from executor.parts.agents.claude_code_record import read_claude_result

INIT = json.dumps({"type": "system", "subtype": "init", "model": "claude-sonnet-4-5"})


def result(**fields) -> str:
    base = {"type": "result", "subtype": "success", "is_error": False, "num_turns": 2,
            "terminal_reason": "completed", "api_error_status": None, "result": "Done.",
            "usage": {"input_tokens": 25382, "cache_creation_input_tokens": 100,
                      "cache_read_input_tokens": 900, "output_tokens": 44}}
    return "\n".join([INIT, json.dumps({**base, **fields})]) + "\n"


def test_finished_with_its_usage():
    outcome = read_claude_result(result())
    assert outcome.ending == AgentEnding.FINISHED and outcome.signature is None
    assert (outcome.usage.input_tokens, outcome.usage.cached_input_tokens,
            outcome.usage.cache_creation_input_tokens, outcome.usage.output_tokens,
            outcome.turns) == (25382, 900, 100, 44, 2)


def test_max_turns():
    outcome = read_claude_result(result(subtype="error_max_turns", is_error=True,
                                        terminal_reason="max_turns", result=None,
                                        errors=["Reached maximum number of turns (2)"]))
    assert outcome.ending == AgentEnding.MAX_STEPS
    assert outcome.signature.name == "max_steps" and "(2)" in outcome.signature.evidence


@pytest.mark.parametrize("status, text, name, exit_code", [
    (529, "API Error: 529 Overloaded. This is a server-side issue, usually temporary — try "
          "again in a moment.", "provider_unavailable", EXIT_PROVIDER_REFUSED),
    (429, "API Error: Request rejected (429) · This request would exceed the rate limit for "
          "your organization", "rate_limit", EXIT_PROVIDER_REFUSED),
    (400, "Credit balance is too low", "quota_exhausted", EXIT_PROVIDER_REFUSED),
    (400, "API Error: 400 isobench budget exhausted: this attempt has used 1100 of 1000 "
          "tokens", "budget_exhausted", 14),
    (400, "API Error: 400 messages.3: `tool_use` ids were found without `tool_result` blocks "
          "immediately after: toolu_2.", "tool_output_missing", 14),
])
def test_provider_errors_are_named_from_the_result_text(status, text, name, exit_code):
    # Claude Code calls these subtype "success" with is_error true: the flag decides.
    outcome = read_claude_result(result(is_error=True, terminal_reason="api_error",
                                        api_error_status=status, result=text))
    assert outcome.ending == AgentEnding.ERROR and outcome.api_error_status == status
    assert outcome.signature.name == name
    assert exit_code_for(RunStatus.AGENT_ERROR, outcome.signature) == exit_code


def test_error_during_execution_is_a_tool_error():
    outcome = read_claude_result(result(subtype="error_during_execution", is_error=True,
                                        terminal_reason="", result=None,
                                        errors=["Bash tool crashed"]))
    assert outcome.ending == AgentEnding.ERROR
    assert outcome.signature.name == "agent_execution_error"


def test_no_result_line_is_a_crash_at_start_up_named_from_stderr():
    outcome = read_claude_result(INIT + "\n", "error: unknown option '--bogus'\n")
    assert not outcome.has_result and outcome.ending == AgentEnding.ERROR
    assert outcome.signature.name == "agent_startup_crash"
    assert "--bogus" in outcome.signature.evidence
    assert read_claude_result("", "").signature.name == "agent_startup_crash"
