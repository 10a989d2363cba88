"""Read how a mini-swe-agent run ended from its trajectory (format `mini-swe-agent-1.1`).

mini-swe-agent (2.4.6) saves the trajectory after every step, and once more when an exception
ends the run. `info.exit_status` names the ending: `Submitted` (the agent ran
`echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT`), `LimitsExceeded` (step or cost limit),
`TimeExceeded`, `RepeatedFormatError`, or the class name of the exception that stopped it, whose
text is in the last message's `extra.exception_str`. Token usage is per model response, in the
message's `extra.response.usage` (Chat Completions field names); there is no run total.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from executor.parts.agents.base import AgentEnding
from executor.parts.agents.trae_trajectory import json_object
from executor.core.errors import (AGENT_TIMEOUT, MAX_STEPS, REPEATED_FORMAT_ERROR,
                             ErrorSignature, classify_text, signature, unclassified)
from executor.core.journal import Usage

SOURCE = "trajectory"
TRAJECTORY_FORMAT = "mini-swe-agent-1.1"


class MiniSweOutcome(BaseModel):
    """What a mini-swe-agent trajectory shows about the run."""

    ending: AgentEnding = Field(description="finished, max_steps, timeout or error.")
    exit_status: str = Field(description="mini-swe-agent's own info.exit_status, verbatim.")
    steps: int = Field(description="Model calls made (info.model_stats.api_calls).")
    usage: Usage = Field(description="Tokens summed over model responses (cost not set).")
    signature: ErrorSignature | None = Field(default=None,
                                             description="Why it failed; None when finished.")


def read_mini_trajectory(data: str | bytes | dict[str, Any]) -> MiniSweOutcome:
    """Outcome, usage and failure signature of one mini-swe-agent trajectory."""
    data = json_object(data)
    if isinstance(data, str):
        return _unreadable(data)
    info = data.get("info") or {}
    messages = [m for m in data.get("messages") or [] if isinstance(m, dict)]
    status = str(info.get("exit_status") or "")
    usage = _usage(messages)
    steps = int((info.get("model_stats") or {}).get("api_calls") or usage.llm_calls)
    ending, sig = _ending(status, messages[-1] if messages else {})
    return MiniSweOutcome(ending=ending, exit_status=status, steps=steps, usage=usage,
                          signature=sig)


def _ending(status: str, last: dict[str, Any]) -> tuple[AgentEnding, ErrorSignature | None]:
    if status == "Submitted":
        return AgentEnding.FINISHED, None
    if status == "LimitsExceeded":
        # isobench sets no cost limit in mini-swe-agent (cost is tracked, not capped there).
        return AgentEnding.MAX_STEPS, signature(MAX_STEPS, "exit_status LimitsExceeded", SOURCE)
    if status == "TimeExceeded":
        return AgentEnding.TIMEOUT, signature(AGENT_TIMEOUT, "exit_status TimeExceeded", SOURCE)
    if status == "RepeatedFormatError":
        return AgentEnding.ERROR, signature(REPEATED_FORMAT_ERROR,
                                            "exit_status RepeatedFormatError", SOURCE)
    if not status:
        return AgentEnding.ERROR, unclassified(
            "mini-swe-agent wrote no exit_status (killed, crashed or still running)", SOURCE)
    extra = last.get("extra") or {}
    text = str(extra.get("exception_str") or last.get("content") or status)
    return AgentEnding.ERROR, (classify_text(f"{status}: {text}", SOURCE)
                               or unclassified(f"{status}: {text}", SOURCE))


def _usage(messages: list[dict[str, Any]]) -> Usage:
    totals = dict.fromkeys(("input", "output", "cached", "reasoning", "calls"), 0)
    for message in messages:
        response = (message.get("extra") or {}).get("response")
        usage = response.get("usage") if isinstance(response, dict) else None
        if not isinstance(usage, dict):
            continue
        totals["calls"] += 1
        totals["input"] += int(usage.get("prompt_tokens") or 0)
        totals["output"] += int(usage.get("completion_tokens") or 0)
        totals["cached"] += int((usage.get("prompt_tokens_details") or {}).get("cached_tokens")
                                or 0)
        totals["reasoning"] += int((usage.get("completion_tokens_details") or {})
                                   .get("reasoning_tokens") or 0)
    return Usage(input_tokens=totals["input"], output_tokens=totals["output"],
                 cached_input_tokens=totals["cached"], reasoning_tokens=totals["reasoning"],
                 llm_calls=totals["calls"])


def _unreadable(reason: str) -> MiniSweOutcome:
    return MiniSweOutcome(ending=AgentEnding.ERROR, exit_status="", steps=0, usage=Usage(),
                          signature=unclassified(reason, SOURCE))
