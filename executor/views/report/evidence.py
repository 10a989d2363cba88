"""Per-commit evidence read from disk: diffs (agent and human) and trajectories as steps.

Each reader takes what exists and says plainly what does not: a report must never imply a
diff or a trajectory that was not there.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any, TypedDict

import pydantic_core

from executor.parts.agents.trae_trajectory import InteractionFields
from executor.views.report.model import Diff, Step

DIFF_CHARS = 40_000
OUTPUT_CHARS = 400
ARGUMENT_CHARS = 240
MAX_STEPS_SHOWN = 80
GIT_TIMEOUT_S = 60
# json.dumps(..., sort_keys=True) builds an encoder per call: one, kept, for 20,000 arguments
_ARGUMENTS_JSON = json.JSONEncoder(sort_keys=True)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit:,} more chars)"


def read_diff(path: Path | None) -> Diff:
    """A patch file as a Diff (absent, empty or clipped, said so)."""
    if path is None or not path.is_file():
        return Diff(note="no patch file")
    data = path.read_bytes()
    if not data.strip():
        return Diff(text="", note="the patch is empty", sha256=hashlib.sha256(data).hexdigest())
    text = data.decode("utf-8", "replace")
    return Diff(text=clip(text, DIFF_CHARS), sha256=hashlib.sha256(data).hexdigest(),
                note="clipped" if len(text) > DIFF_CHARS else "")


def human_diff(repo: str | None, base: str, human: str) -> Diff:
    """`git diff base human` when the repository is a local checkout holding both commits;
    otherwise a note saying why there is none (a URL is not fetched: the report only reads)."""
    if not (base and human):
        return Diff(note="base or human commit unknown")
    if not repo or not Path(repo).is_dir():
        return Diff(note=f"the repository ({repo or 'unknown'}) is not a local checkout: "
                         "human diff not computed")
    try:
        out = subprocess.run(["git", "-C", repo, "diff", base, human], capture_output=True,
                             timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Diff(note=f"git diff failed: {exc}")
    if out.returncode != 0:
        return Diff(note="git diff failed: " + out.stderr.decode(errors="replace").strip()[:200])
    text = out.stdout.decode("utf-8", "replace")
    return Diff(text=clip(text, DIFF_CHARS), sha256=hashlib.sha256(out.stdout).hexdigest(),
                note="clipped" if len(text) > DIFF_CHARS else "")


class _StepFields(TypedDict, total=False):
    step_number: Any
    error: Any
    llm_messages: Any  # the outcome's (must-patch nudges)
    llm_response: Any
    tool_calls: Any
    tool_results: Any


class StepsFields(TypedDict, total=False):
    """What steps_from reads of a trajectory, with what the outcome reads (the report parses
    each trajectory once, for both: trae_trajectory.OutcomeFields; a test holds this to it).
    The conversation every llm_interaction repeats is left unparsed."""

    start_time: Any
    end_time: Any
    success: Any
    final_result: Any
    execution_time: Any
    agent_steps: list[_StepFields] | None
    llm_interactions: list[InteractionFields] | None


def trajectory_steps(path: Path | None) -> tuple[list[Step], str]:
    """TRAE's trajectory (agent_steps, llm_interactions) as steps; a note when not readable."""
    if path is None or not path.is_file():
        return [], "this agent wrote no trajectory"
    try:
        data = pydantic_core.from_json(path.read_bytes())  # 2.5x json.loads on 284 MB of them
    except (OSError, ValueError) as exc:
        return [], f"{path.name} is not readable JSON ({exc})"
    return steps_from(path, data)


def steps_from(path: Path, data: Any) -> tuple[list[Step], str]:
    """trajectory_steps of a trajectory already parsed."""
    if not isinstance(data, dict) or not isinstance(data.get("agent_steps"), list):
        return [], f"{path.name} has no agent_steps (not a TRAE trajectory)"
    interactions = data.get("llm_interactions") or []
    found = [(i, s) for i, s in enumerate(data["agent_steps"]) if isinstance(s, dict)]
    note = f"{len(found)} steps from {path}"
    if len(found) > MAX_STEPS_SHOWN:  # only the steps shown are read into Steps
        found = found[:MAX_STEPS_SHOWN // 2] + found[-MAX_STEPS_SHOWN // 2:]
        note += f" (first and last {MAX_STEPS_SHOWN // 2} shown)"
    return [_step(i, s, interactions) for i, s in found], note


def _step(index: int, step: dict[str, Any], interactions: list) -> Step:
    usage = ((step.get("llm_response") or {}).get("usage")
             or ((interactions[index] if index < len(interactions) else {}) or {})
             .get("response", {}).get("usage") or {})
    calls = [f"{c.get('name')}({_cut(_args(c.get('arguments')))})"
             for c in step.get("tool_calls") or [] if isinstance(c, dict)]
    results = [str(r.get("result") or r.get("error") or "")
               for r in step.get("tool_results") or [] if isinstance(r, dict)]
    return Step(number=int(step.get("step_number") or index + 1), tool_calls=calls,
                output=clip("\n".join(results), OUTPUT_CHARS),
                error=clip(str(step["error"]), OUTPUT_CHARS) if step.get("error") else None,
                input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens"))


def _cut(text: str) -> str:
    """Arguments are cut before serialising (_args): how much more there was is not known."""
    return text if len(text) <= ARGUMENT_CHARS else text[:ARGUMENT_CHARS] + "…"


def _args(arguments: Any) -> str:
    """Arguments as text for a cell that shows ARGUMENT_CHARS of them: long values (a whole
    file an edit writes) are cut before they are serialised, not after."""
    if isinstance(arguments, str):
        return arguments[:ARGUMENT_CHARS + 1]
    if isinstance(arguments, dict):
        arguments = {k: v[:ARGUMENT_CHARS + 1] if isinstance(v, str) else v
                     for k, v in arguments.items()}
    return _ARGUMENTS_JSON.encode(arguments)
