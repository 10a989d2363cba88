"""Signatures of endings that CLI agents' own records show and no text rule names: a CLI that
died before its first event, and a turn that a failing tool ended. The record readers
(codex_events.py, openhands_events.py) assign them; provider refusals, budgets and step limits
keep the signatures of executor/core/errors.py."""

from __future__ import annotations

from executor.core.errors import ErrorClass

AGENT_STARTUP_FAILED = (
    "agent_startup_failed", ErrorClass.PERMANENT,
    ("The agent died before it started its task (bad configuration, a missing file or "
     "library, a refused argument): its record has no first event. Read agent_stderr.txt."))
AGENT_TOOL_ERROR = (
    "agent_tool_error", ErrorClass.PERMANENT,
    ("A tool the agent called failed in a way that ended its run (not a command that merely "
     "exited non-zero: the agent's own runtime gave up)."))
AGENT_STOPPED_MID_TURN = (
    "agent_stopped_mid_turn", ErrorClass.PERMANENT,
    ("The agent's record stops in the middle of its work with no ending of its own (it "
     "crashed or was killed from inside the sandbox)."))
