"""How an OpenHands run ended, read from the conversation it persisted (OpenHands SDK 1.21.0,
as the `openhands` CLI 1.16.0 drives it).

The SDK keeps a conversation in a directory: `base_state.json` (the state, with
`execution_status` and `stats.usage_to_metrics.<usage id>.accumulated_token_usage`:
prompt_tokens, completion_tokens, cache_read_tokens, reasoning_tokens) and `events/` holding
one `event-<5-digit index>-<uuid>.json` per event, each with its class name under `kind`:
MessageEvent, ActionEvent (`tool_name`; the agent's `finish` tool ends the task),
ObservationEvent, AgentErrorEvent (a tool failed; the agent is told and may go on),
ConversationErrorEvent (`code`, `detail`: the run loop stopped: `MaxIterationsReached`, or the
exception that ended it, e.g. `LLMRateLimitError`, `LLMAuthenticationError`) and
ConversationStateUpdateEvent.

Endings, never from the exit code:
  * status `finished`, or a `finish` action with nothing after it failing -> finished;
  * ConversationErrorEvent `MaxIterationsReached`                        -> max steps;
  * any other ConversationErrorEvent -> error named by its code and detail (a provider's
    refusal, the gateway's budget, a wrong key...);
  * status `stuck` (the SDK's loop detector)                             -> error, stuck;
  * the last event an AgentErrorEvent and no ending                      -> tool error;
  * no conversation at all                                               -> crashed at start-up;
  * events but no ending                                                 -> stopped mid-turn.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from executor.core.errors import (
    MAX_STEPS,
    ErrorClass,
    ErrorSignature,
    classify_text,
    signature,
    unclassified,
)
from executor.core.journal import Usage
from executor.parts.agents.base import AgentEnding
from executor.parts.agents.ending_rules import (
    AGENT_STARTUP_FAILED,
    AGENT_STOPPED_MID_TURN,
    AGENT_TOOL_ERROR,
)

SOURCE = "openhands_conversation"
BASE_STATE = "base_state.json"
EVENTS_DIR = "events"
EVENT_FILE = re.compile(r"^event-(?P<idx>\d{5})-[0-9a-fA-F\-]{8,}\.json$")
AGENT_STUCK = ("agent_stuck", ErrorClass.PERMANENT,
               ("OpenHands' loop detector stopped the agent (the same action and result over "
                "and over)."))
# The SDK's exception classes, in words the taxonomy knows (its details are the provider's
# own message, which usually names the cause better; both are read).
CODE_HINTS = {"LLMRateLimitError": "RateLimitError", "LLMAuthenticationError":
              "AuthenticationError", "LLMServiceUnavailableError": "Service Unavailable",
              "LLMTimeoutError": "Request timed out", "LLMContextWindowExceedError":
              "context_length_exceeded", "LLMBadRequestError": "BadRequestError"}


class OpenHandsOutcome(BaseModel):
    """What an OpenHands conversation shows about the run."""

    ending: AgentEnding = Field(description="finished, max_steps or error.")
    status: str = Field(default="", description="The state's execution_status, verbatim.")
    steps: int = Field(default=0, description="Actions the agent took (ActionEvents).")
    usage: Usage = Field(default_factory=Usage, description="Accumulated usage (no cost).")
    signature: ErrorSignature | None = Field(default=None,
                                             description="Why it failed; None when finished.")


def conversation_dirs(root: Path) -> list[Path]:
    """Conversations under a persistence root (a dir holding base_state.json), oldest first."""
    if not root.is_dir():
        return []
    found = [p.parent for p in root.rglob(BASE_STATE)]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def read_events(conversation: Path) -> list[dict[str, Any]]:
    """The events in index order; unreadable files are skipped (a half-written last one)."""
    events_dir = conversation / EVENTS_DIR
    if not events_dir.is_dir():
        return []
    named = sorted((int(m["idx"]), p) for p in events_dir.iterdir()
                   if (m := EVENT_FILE.match(p.name)))
    events = []
    for _, path in named:
        try:
            event = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _usage(state: dict[str, Any]) -> Usage:
    metrics = ((state.get("stats") or {}).get("usage_to_metrics") or {})
    usage = Usage()
    for entry in metrics.values():
        if not isinstance(entry, dict):
            continue
        tokens = entry.get("accumulated_token_usage") or {}
        usage.input_tokens += int(tokens.get("prompt_tokens") or 0)
        usage.output_tokens += int(tokens.get("completion_tokens") or 0)
        usage.cached_input_tokens += int(tokens.get("cache_read_tokens") or 0)
        usage.cache_creation_input_tokens += int(tokens.get("cache_write_tokens") or 0)
        usage.reasoning_tokens += int(tokens.get("reasoning_tokens") or 0)
        usage.llm_calls += len(entry.get("token_usages") or [])
    return usage


def read_conversation(conversation: Path | None, stderr: str = "") -> OpenHandsOutcome:
    """The outcome of one OpenHands conversation directory (None: it made none)."""
    if conversation is None:
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        named = classify_text(tail, "agent_stderr")
        return OpenHandsOutcome(ending=AgentEnding.ERROR, signature=named or signature(
            AGENT_STARTUP_FAILED, tail.splitlines()[-1] if tail else "no conversation saved",
            "agent_stderr"))
    try:
        state = json.loads((conversation / BASE_STATE).read_text())
    except (OSError, ValueError):
        state = {}
    events = read_events(conversation)
    status = str(state.get("execution_status") or "")
    outcome = OpenHandsOutcome(ending=AgentEnding.ERROR, status=status, usage=_usage(state),
                               steps=sum(1 for e in events if e.get("kind") == "ActionEvent"))
    outcome.ending, outcome.signature = _ending(status, events)
    return outcome


def _ending(status: str, events: list[dict[str, Any]]
            ) -> tuple[AgentEnding, ErrorSignature | None]:
    errors = [e for e in events if e.get("kind") == "ConversationErrorEvent"]
    if errors:
        code, detail = str(errors[-1].get("code") or ""), str(errors[-1].get("detail") or "")
        if code == "MaxIterationsReached":
            return AgentEnding.MAX_STEPS, signature(MAX_STEPS, detail or code, SOURCE)
        text = f"{code}: {detail}"
        named = classify_text([text, CODE_HINTS.get(code, "")], SOURCE)
        return AgentEnding.ERROR, named or unclassified(text, SOURCE)
    finished = any(e.get("kind") == "ActionEvent" and e.get("tool_name") == "finish"
                   for e in events)
    if status == "finished" or (finished and events[-1].get("kind") != "AgentErrorEvent"):
        return AgentEnding.FINISHED, None
    if status == "stuck":
        return AgentEnding.ERROR, signature(AGENT_STUCK, "execution_status stuck", SOURCE)
    if events and events[-1].get("kind") == "AgentErrorEvent":
        last = events[-1]
        return AgentEnding.ERROR, signature(
            AGENT_TOOL_ERROR, f"{last.get('tool_name', 'tool')}: {last.get('error', '')}",
            SOURCE)
    return AgentEnding.ERROR, signature(AGENT_STOPPED_MID_TURN,
                                        f"execution_status {status or 'unknown'}, no ending",
                                        SOURCE)
