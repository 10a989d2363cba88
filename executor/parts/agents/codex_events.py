"""How a Codex CLI run ended, read from its own records: the `codex exec --json` event stream,
and the session log (`rollout-*.jsonl`) for the number of model calls.

Events (Codex CLI 0.171.0): `thread.started` first; per turn `turn.started`, items
(`item.started` / `item.updated` / `item.completed`, each item with a `type`: agent_message,
reasoning, command_execution, file_change, mcp_tool_call, web_search, todo_list, error), and
the turn's end: `turn.completed` with `usage` (input_tokens, cached_input_tokens,
output_tokens, reasoning_output_tokens) or `turn.failed` with `error.message`. A top-level
`error` event carries a fatal message too. An `error` *item* is a warning (e.g. no model
metadata for a custom model name) and ends nothing. The session log holds one
`token_usage_record` per model response.

Endings, never from the exit code (a failed turn and a crash both exit 1):
  * last turn `turn.completed`  -> finished;
  * last turn `turn.failed`     -> error, named by its message (a provider's refusal, the
    gateway's budget, a wrong key...); unnamed, and the last tool item failed -> tool error;
  * no `thread.started`         -> crashed at start-up (from stderr when it names a cause);
  * started, no turn end        -> stopped mid-turn (the last `error` event names it if any).
A run the controller killed at its budget is a timeout whatever the events say.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from executor.core.errors import (
    AGENT_TIMEOUT,
    ErrorSignature,
    classify_text,
    signature,
    unclassified,
)
from executor.core.journal import Usage
from executor.engine.sandbox import ExecResult
from executor.parts.agents.base import AgentEnding, AgentRun, AgentTask
from executor.parts.agents.ending_rules import (
    AGENT_STARTUP_FAILED,
    AGENT_STOPPED_MID_TURN,
    AGENT_TOOL_ERROR,
)

SOURCE = "codex_events"
TOOL_ITEMS = ("command_execution", "file_change", "mcp_tool_call", "web_search")


class CodexOutcome(BaseModel):
    """What a Codex event stream shows about the run."""

    ending: AgentEnding = Field(description="finished or error.")
    turn_end: str = Field(default="", description="turn.completed, turn.failed or ''.")
    started: bool = Field(default=False, description="thread.started was seen.")
    steps: int = Field(default=0, description="Tool items completed (commands, edits...).")
    usage: Usage = Field(default_factory=Usage, description="Summed turn usage (no cost).")
    last_message: str = Field(default="", description="The last agent_message text.")
    error: str = Field(default="", description="The message that ended the run, if any.")
    signature: ErrorSignature | None = Field(default=None,
                                             description="Why it failed; None when finished.")


def _lines(data: str | bytes | None) -> list[dict[str, Any]]:
    if data is None:
        return []
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    events = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue  # Codex prints a few plain warnings on stdout before --json starts
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def model_calls(session: str | bytes | None) -> int:
    """Model responses in the session log (one token_usage_record each)."""
    return sum(1 for record in _lines(session) if record.get("type") == "token_usage_record")


def read_codex_events(events: str | bytes | None, session: str | bytes | None = None,
                      stderr: str = "") -> CodexOutcome:
    """The outcome of one `codex exec --json` run (see the module docstring)."""
    outcome = CodexOutcome(ending=AgentEnding.ERROR)
    totals = dict.fromkeys(("input", "cached", "output", "reasoning", "turns"), 0)
    last_tool: dict[str, Any] | None = None
    last_error = ""
    for event in _lines(events):
        kind = event.get("type")
        if kind == "thread.started":
            outcome.started = True
        elif kind == "item.completed":
            item = event.get("item") or {}
            if item.get("type") in TOOL_ITEMS:
                outcome.steps += 1
                last_tool = item
            elif item.get("type") == "agent_message":
                outcome.last_message = str(item.get("text") or "")
        elif kind == "turn.completed":
            outcome.turn_end, last_error = kind, ""
            usage = event.get("usage") or {}
            totals["turns"] += 1
            totals["input"] += int(usage.get("input_tokens") or 0)
            totals["cached"] += int(usage.get("cached_input_tokens") or 0)
            totals["output"] += int(usage.get("output_tokens") or 0)
            totals["reasoning"] += int(usage.get("reasoning_output_tokens") or 0)
        elif kind == "turn.failed":
            outcome.turn_end = kind
            last_error = str((event.get("error") or {}).get("message") or "turn failed")
        elif kind == "error":
            last_error = str(event.get("message") or "error")
    calls = model_calls(session) or totals["turns"]
    outcome.usage = Usage(input_tokens=totals["input"], output_tokens=totals["output"],
                          cached_input_tokens=totals["cached"],
                          reasoning_tokens=totals["reasoning"], llm_calls=calls)
    outcome.error = last_error
    outcome.ending, outcome.signature = _ending(outcome, last_error, last_tool, stderr)
    return outcome


def _ending(outcome: CodexOutcome, error: str, last_tool: dict[str, Any] | None,
            stderr: str) -> tuple[AgentEnding, ErrorSignature | None]:
    if outcome.turn_end == "turn.completed":
        return AgentEnding.FINISHED, None
    if outcome.turn_end == "turn.failed":
        named = classify_text(error, SOURCE)
        if named is not None:
            return AgentEnding.ERROR, named
        if last_tool is not None and last_tool.get("status") == "failed":
            return AgentEnding.ERROR, signature(AGENT_TOOL_ERROR, f"{error} (after a failed "
                                                f"{last_tool.get('type')})", SOURCE)
        return AgentEnding.ERROR, unclassified(error, SOURCE)
    if not outcome.started:
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        named = classify_text(tail, "agent_stderr")
        return AgentEnding.ERROR, named or signature(
            AGENT_STARTUP_FAILED, tail.splitlines()[-1] if tail else "no event at all",
            "agent_stderr")
    if error:
        return AgentEnding.ERROR, classify_text(error, SOURCE) or signature(
            AGENT_STOPPED_MID_TURN, error, SOURCE)
    return AgentEnding.ERROR, signature(AGENT_STOPPED_MID_TURN,
                                        "no turn.completed or turn.failed", SOURCE)


def read_codex_run(result: ExecResult, task: AgentTask, events: bytes | None,
                   session: bytes | None, *, artifacts: list[str],
                   cost: Callable[[Usage], Usage]) -> AgentRun:
    """The adapter's report: a timeout when the controller killed it, else the events'."""
    outcome = read_codex_events(events, session, result.stderr)
    common = {"usage": cost(outcome.usage), "exit_code": result.exit_code,
              "duration_s": result.duration_s, "steps": outcome.steps, "artifacts": artifacts}
    if result.timed_out:
        return AgentRun(ending=AgentEnding.TIMEOUT, detail="used its whole budget",
                        signature=signature(AGENT_TIMEOUT, f"killed after {task.budget_s}s",
                                            "controller"), **common)
    detail = f"codex: {outcome.turn_end or 'no turn end'}"
    if outcome.error:
        detail += f": {outcome.error[:200]}"
    return AgentRun(ending=outcome.ending, signature=outcome.signature, detail=detail,
                    **common)
