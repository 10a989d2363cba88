"""Read how a Claude Code run ended from its own record: the `--output-format stream-json`
lines it prints, whose last object is `type: result`.

Facts (Claude Code 2.1.332, checked against the scripted Messages server):
  * a finished run: `subtype: success`, `is_error: false`, `terminal_reason: completed`;
  * the turn limit: `subtype: error_max_turns`, `terminal_reason: max_turns`, `errors:
    ["Reached maximum number of turns (N)"]`;
  * a provider error after its own retries: `subtype: success` (sic) with `is_error: true`,
    `terminal_reason: api_error`, `api_error_status` (429, 529, 400...) and the message in
    `result` ("API Error: 529 Overloaded. ...", "API Error: Request rejected (429) · ...",
    "Credit balance is too low", "API Error: 400 <the body's message>");
  * its own dollar cap (`--max-budget-usd`, not used by isobench): `error_max_budget_usd`;
  * a failure inside the run: `error_during_execution` (a tool or the process failed);
  * no result line at all: it died at start-up (or was killed); its stderr says why.
The exit code (1 for every failure above) is never the evidence.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from executor.core.errors import (BUDGET_EXHAUSTED, MAX_STEPS, ErrorClass, ErrorSignature,
                                  classify_text, signature, unclassified)
from executor.core.journal import Usage
from executor.parts.agents.base import AgentEnding

SOURCE = "claude_code_result"
EXECUTION_ERROR = ("agent_execution_error", ErrorClass.PERMANENT,
                   "Claude Code stopped with error_during_execution: a tool or the agent itself "
                   "failed mid-run; read its stdout record.")
STARTUP_CRASH = ("agent_startup_crash", ErrorClass.PERMANENT,
                 "Claude Code printed no result: it died at start-up (bad flag, missing "
                 "library, unreachable endpoint at init) or was killed; read its stderr.")


class ClaudeCodeOutcome(BaseModel):
    """What Claude Code's result line shows about the run."""

    ending: AgentEnding = Field(description="finished, max_steps or error.")
    subtype: str = Field(default="", description="The result's subtype, verbatim.")
    terminal_reason: str = Field(default="", description="The result's terminal_reason.")
    api_error_status: int | None = Field(default=None, description="HTTP status of the "
                                                                   "provider error, if any.")
    turns: int = Field(default=0, description="num_turns.")
    usage: Usage = Field(default_factory=Usage, description="Its usage total (cost not set).")
    result: str = Field(default="", description="Its final message or error text.")
    signature: ErrorSignature | None = Field(default=None,
                                             description="Why it failed; None when finished.")
    has_result: bool = Field(default=True, description="A result line was found.")


def result_object(stdout: str) -> dict[str, Any] | None:
    """The last `type: result` object among the stream-json lines (None when none)."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("type") == "result":
            return data
    return None


def read_claude_result(stdout: str, stderr: str = "") -> ClaudeCodeOutcome:
    """Outcome, usage and failure signature of one `claude -p --output-format stream-json`."""
    data = result_object(stdout)
    if data is None:
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        sig = classify_text(tail, "agent_stderr") or signature(
            STARTUP_CRASH, tail.splitlines()[-1] if tail else "no result line, no stderr",
            "agent_stderr")
        return ClaudeCodeOutcome(ending=AgentEnding.ERROR, signature=sig, has_result=False)
    subtype = str(data.get("subtype") or "")
    reason = str(data.get("terminal_reason") or "")
    status = data.get("api_error_status")
    errors = data.get("errors") if isinstance(data.get("errors"), list) else []
    text = str(data.get("result") or "; ".join(map(str, errors)) or subtype)
    common = dict(subtype=subtype, terminal_reason=reason, result=text,
                  api_error_status=status if isinstance(status, int) else None,
                  turns=int(data.get("num_turns") or 0), usage=_usage(data))
    if subtype == "success" and not data.get("is_error"):
        return ClaudeCodeOutcome(ending=AgentEnding.FINISHED, **common)
    if subtype == "error_max_turns" or reason == "max_turns":
        return ClaudeCodeOutcome(ending=AgentEnding.MAX_STEPS,
                                 signature=signature(MAX_STEPS, text, SOURCE), **common)
    if subtype == "error_max_budget_usd":
        return ClaudeCodeOutcome(ending=AgentEnding.ERROR,
                                 signature=signature(BUDGET_EXHAUSTED, text, SOURCE), **common)
    if subtype == "error_during_execution":
        return ClaudeCodeOutcome(ending=AgentEnding.ERROR, signature=classify_text(
            text, SOURCE) or signature(EXECUTION_ERROR, text, SOURCE), **common)
    # An API error (or a new ending): the message names it; the status backs it up.
    evidence = text if status is None else f"{text} (api_error_status {status})"
    return ClaudeCodeOutcome(ending=AgentEnding.ERROR, signature=classify_text(
        evidence, SOURCE) or unclassified(evidence, SOURCE), **common)


def _usage(data: dict[str, Any]) -> Usage:
    raw = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    count = lambda key: int(raw.get(key) or 0)
    turns = data.get("num_turns")
    return Usage(input_tokens=count("input_tokens"), output_tokens=count("output_tokens"),
                 cached_input_tokens=count("cache_read_input_tokens"),
                 cache_creation_input_tokens=count("cache_creation_input_tokens"),
                 llm_calls=int(turns) if isinstance(turns, int) else 0)
