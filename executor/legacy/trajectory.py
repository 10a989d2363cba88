"""A minimal reader of TRAE trajectory.json files, for `status` only.

It reads just what the true outcome of a run needs (FIELD_NOTES section 3): `success`,
`final_result`, the last step's `error` (the failing step's `state` may say `completed`), whether
TRAE's must-patch check sent "ERROR! Your Patch is empty", and token usage per interaction.
The full TRAE adapter (executor/agents/trae.py) has its own reader; once it lands, `summarize`
can delegate to it. Nothing else imports this module's internals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, Field

from executor.journal import Usage

MAX_STEPS_RESULT = "Task execution exceeded maximum steps without completion."
PATCH_EMPTY_MARKER = "Your Patch is empty"


class TrajectorySummary(BaseModel):
    """What one TRAE trajectory says about how its run ended."""

    success: bool = Field(description="TRAE's own success flag (false unless it said true).")
    final_result: str | None = Field(default=None, description="TRAE's final_result text.")
    finished: bool = Field(description="end_time was written (the run was finalized).")
    steps: int = Field(default=0, description="Number of agent_steps recorded.")
    last_error: str | None = Field(default=None,
                                   description="The error of the last step that has one.")
    patch_empty_rejected: bool = Field(
        default=False, description="A must-patch 'ERROR! Your Patch is empty' message was sent.")
    usage: Usage = Field(default_factory=Usage, description="Summed over llm_interactions.")
    start_time: str | None = Field(default=None, description="ISO time, as TRAE wrote it.")
    end_time: str | None = Field(default=None, description="ISO time, as TRAE wrote it.")
    execution_time_s: float | None = Field(default=None, description="TRAE's execution_time.")


def read_trajectory(path: Path) -> TrajectorySummary | None:
    """Summarize a trajectory file; None when missing or not JSON (TRAE rewrites it each step,
    but never atomically, so a killed run can leave it cut short)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return summarize(data) if isinstance(data, dict) else None


def summarize(data: dict[str, Any]) -> TrajectorySummary:
    steps = [s for s in data.get("agent_steps") or [] if isinstance(s, dict)]
    errors = [(i, s["error"]) for i, s in enumerate(steps) if s.get("error")]
    last_error = str(errors[-1][1]) if errors else None
    return TrajectorySummary(
        success=data.get("success") is True,
        final_result=data.get("final_result"),
        finished=bool(data.get("end_time")),
        steps=len(steps),
        last_error=last_error,
        patch_empty_rejected=any(PATCH_EMPTY_MARKER in text for text in _texts(data)),
        usage=_usage(data.get("llm_interactions") or []),
        start_time=data.get("start_time") or None,
        end_time=data.get("end_time") or None,
        execution_time_s=data.get("execution_time"),
    )


def _texts(data: dict) -> Iterator[str]:
    """Message contents TRAE sent: the steps' llm_messages and interactions' input_messages."""
    for step in data.get("agent_steps") or []:
        for message in (step or {}).get("llm_messages") or []:
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                yield message["content"]
    for interaction in data.get("llm_interactions") or []:
        for message in (interaction or {}).get("input_messages") or []:
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                yield message["content"]


def _usage(interactions: list) -> Usage:
    total = Usage()
    for interaction in interactions:
        usage = ((interaction or {}).get("response") or {}).get("usage") or {}
        total.llm_calls += 1
        total.input_tokens += usage.get("input_tokens") or 0
        total.output_tokens += usage.get("output_tokens") or 0
        total.cached_input_tokens += usage.get("cache_read_input_tokens") or 0
        total.cache_creation_input_tokens += usage.get("cache_creation_input_tokens") or 0
        total.reasoning_tokens += usage.get("reasoning_tokens") or 0
    return total
