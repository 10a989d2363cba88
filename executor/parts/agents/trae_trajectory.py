"""Read how a TRAE run ended from its trajectory JSON, never from its exit code.

TRAE catches LLM errors inside its loop and usually exits 0 (FIELD_NOTES section 3), so the
trajectory is the evidence: `success`, `final_result`, and each step's `error`. A failing step's
`state` is written as `completed` (TRAE finalizes every step that way), so only `error` tells.

The must-patch death is recognised by its two halves: TRAE injected "ERROR! Your Patch is empty"
after a task_done call, then the next request carried that call unanswered and the API refused it
("No tool output found for function call ..."). That is not a tool-pairing bug of the model nor a
parallel-tool-call problem: the diff TRAE looked at was empty because the work was committed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, TypedDict

from pydantic import BaseModel, Field

from executor.parts.agents.base import AgentEnding
from executor.core.errors import (MAX_STEPS, MUST_PATCH_NO_TOOL_OUTPUT, ErrorSignature, classify_text,
                             signature, unclassified)
from executor.core.journal import Usage

SOURCE = "trajectory"
MAX_STEPS_RESULT = "Task execution exceeded maximum steps without completion."
MUST_PATCH_NUDGE = "ERROR! Your Patch is empty"
NO_TOOL_OUTPUT = re.compile(r"No tool output found for function call", re.IGNORECASE)


class _StepFields(TypedDict, total=False):
    error: Any
    llm_messages: Any


class ResponseFields(TypedDict, total=False):
    usage: Any


class InteractionFields(TypedDict, total=False):
    response: ResponseFields | None


class OutcomeFields(TypedDict, total=False):
    """What read_trajectory reads of a trajectory (core/json_fields.py parses only this: the
    conversation each llm_interaction repeats is most of the file). A reader that parses a
    trajectory for more than the outcome names these fields too."""

    start_time: Any
    end_time: Any
    success: Any
    final_result: Any
    execution_time: Any
    agent_steps: list[_StepFields] | None
    llm_interactions: list[InteractionFields] | None


class TraeOutcome(BaseModel):
    """What a TRAE trajectory shows about the run."""

    ending: AgentEnding = Field(description="finished, max_steps or error.")
    finalized: bool = Field(description="TRAE wrote end_time (False: killed, crashed, running).")
    success: bool = Field(description="TRAE's own flag: task_done accepted. Never enough alone.")
    steps: int = Field(description="Number of agent steps recorded.")
    usage: Usage = Field(description="Tokens summed over llm_interactions (cost not set).")
    last_error: str | None = Field(default=None, description="The last step's error, verbatim.")
    final_result: str | None = Field(default=None, description="TRAE's final_result.")
    must_patch_nudges: int = Field(default=0,
                                   description="Times TRAE injected 'ERROR! Your Patch is empty'.")
    signature: ErrorSignature | None = Field(default=None,
                                             description="Why it failed; None when finished.")
    start_time: str | None = Field(default=None, description="ISO time, as TRAE wrote it.")
    end_time: str | None = Field(default=None, description="ISO time, as TRAE wrote it.")
    execution_time_s: float | None = Field(default=None, description="TRAE's execution_time.")


def load_trajectory(path: Path) -> TraeOutcome:
    return read_trajectory(Path(path).read_bytes())


def json_object(data: str | bytes | dict[str, Any]) -> dict[str, Any] | str:
    """A trajectory as a dict, or why it is not one. Agents rewrite the file in place after
    every step, so a kill mid-write leaves it cut: that is evidence, not a crash."""
    if isinstance(data, dict):
        return data
    try:
        data = json.loads(data)
    except ValueError as exc:
        return f"trajectory is not valid JSON: {exc}"
    return data if isinstance(data, dict) else "trajectory is not a JSON object"


def read_trajectory(data: str | bytes | dict[str, Any]) -> TraeOutcome:
    """Outcome, usage and failure signature of one TRAE trajectory."""
    data = json_object(data)
    if isinstance(data, str):
        return _unreadable(data)
    steps: list[dict[str, Any]] = data.get("agent_steps") or []
    errors = [(i, str(step["error"])) for i, step in enumerate(steps) if step.get("error")]
    nudge_steps = [i for i, step in enumerate(steps) if _mentions_nudge(step.get("llm_messages"))]
    outcome = TraeOutcome(
        ending=AgentEnding.ERROR,
        finalized=bool(data.get("end_time")),
        success=bool(data.get("success")),
        steps=len(steps),
        usage=_usage(data.get("llm_interactions") or []),
        last_error=errors[-1][1] if errors else None,
        final_result=data.get("final_result"),
        # A step records the messages it queued for the next call: the nudge shows on the
        # task_done step that caused it, and again on a next step that then failed.
        must_patch_nudges=len(set(nudge_steps) - {i for i, _ in errors}),
        start_time=data.get("start_time") or None,
        end_time=data.get("end_time") or None,
        execution_time_s=data.get("execution_time"),
    )
    outcome.ending, outcome.signature = _ending(outcome, errors, nudge_steps)
    return outcome


def _ending(outcome: TraeOutcome, errors: list[tuple[int, str]],
            nudge_steps: list[int]) -> tuple[AgentEnding, ErrorSignature | None]:
    if errors:
        index, text = errors[-1]
        line = _error_line(text)
        if NO_TOOL_OUTPUT.search(text) and any(n <= index for n in nudge_steps):
            nudged = min(n for n in nudge_steps if n <= index) + 1
            evidence = f"step {index + 1}: {line} (after '{MUST_PATCH_NUDGE}' at step {nudged})"
            return AgentEnding.ERROR, signature(MUST_PATCH_NO_TOOL_OUTPUT, evidence, SOURCE)
        return AgentEnding.ERROR, (classify_text(text, SOURCE) or unclassified(line, SOURCE))
    if outcome.success:
        return AgentEnding.FINISHED, None
    if outcome.final_result == MAX_STEPS_RESULT:
        return AgentEnding.MAX_STEPS, signature(MAX_STEPS, MAX_STEPS_RESULT, SOURCE)
    if not outcome.finalized:
        return AgentEnding.ERROR, unclassified(
            f"TRAE did not finalize its trajectory after {outcome.steps} steps "
            "(killed, crashed or still running)", SOURCE)
    result = outcome.final_result or "(no final_result and no step error)"
    return AgentEnding.ERROR, classify_text(result, SOURCE) or unclassified(result, SOURCE)


def _usage(interactions: list[dict[str, Any]]) -> Usage:
    totals = dict.fromkeys(("input_tokens", "output_tokens", "cache_creation_input_tokens",
                            "cache_read_input_tokens", "reasoning_tokens"), 0)
    for interaction in interactions:
        usage = (interaction.get("response") or {}).get("usage") or {}
        for key in totals:
            totals[key] += int(usage.get(key) or 0)  # TRAE writes null for unknown counts
    return Usage(input_tokens=totals["input_tokens"], output_tokens=totals["output_tokens"],
                 cached_input_tokens=totals["cache_read_input_tokens"],
                 cache_creation_input_tokens=totals["cache_creation_input_tokens"],
                 reasoning_tokens=totals["reasoning_tokens"], llm_calls=len(interactions))


def _mentions_nudge(messages: Any) -> bool:
    return any(MUST_PATCH_NUDGE in str(m.get("content") or "")
               for m in messages or [] if isinstance(m, dict))


def _error_line(text: str) -> str:
    """The line of a (possibly multi-line) error that names it."""
    lines = [line for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if classify_text(line, SOURCE):
            return line
    return lines[-1] if lines else text


def _unreadable(reason: str) -> TraeOutcome:
    return TraeOutcome(ending=AgentEnding.ERROR, finalized=False, success=False, steps=0,
                       usage=Usage(), signature=unclassified(reason, SOURCE))
