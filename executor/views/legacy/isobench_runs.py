"""Read ISO-Bench's run directories as isobench journals, with the outcome re-derived.

ISO-Bench layout (FIELD_NOTES section 2):
`state/runs/<repo>/<agent>/<model>/<YYYY-MM-DD_HH-MM-SS>/<item_id>/` with `journal.json`
{task_id, commits{pre,human}, agent_branch, status, run_metadata, metrics, trae{...},
timestamps.written, error?, error_type?}, `trajectory.json`, `model_patch.diff`, ...

Its `status` is not evidence: "success" meant exit code 0 or "the agent made commits". The true
outcome comes from the trajectory (and the patch), and ISO-Bench's claim is kept next to it so
`status` can count the claims it overturns. Each timestamp directory was one invocation, and
their resume re-ran items in new directories, so one item's directories, in time order, are its
attempts.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from pydantic import BaseModel, Field

from executor.parts.agents.base import AgentEnding
from executor.parts.agents.trae_trajectory import TraeOutcome, json_object, read_trajectory
from executor.core.errors import (EMPTY_PATCH, MUST_PATCH_NO_TOOL_OUTPUT, NO_TRAJECTORY, ErrorSignature,
                             classify_text, signature, unclassified)
from executor.core.journal import Attempt, Journal, PhaseTiming, RunStatus
from executor.views.legacy.agent_records import AgentRecord, read_agent_record, stderr_failure
from executor.core.pricing import DEFAULT_PRICES, PriceTable, with_cost
from executor.records.state import PATCH_NAME, TRAJECTORY_NAME

SOURCE = "iso-bench"
TIMESTAMP_FORMAT = "%Y-%m-%d_%H-%M-%S"
TRAJECTORY_AGENTS = ("trae",)  # the agents whose missing trajectory is itself evidence

def is_isobench_journal(data: object) -> bool:
    """ISO-Bench's journal has a top-level status and no attempts list."""
    return (isinstance(data, dict) and "attempts" not in data and "status" in data
            and isinstance(data.get("commits"), dict))


class LegacyItem(BaseModel):
    """One ISO-Bench item over all its run directories, as an isobench journal."""

    journal: Journal = Field(description="Attempts in time order, true outcomes.")
    claimed: list[str | None] = Field(description="ISO-Bench's own status, per attempt.")
    runs: list[str] = Field(description="The timestamp directories, per attempt.")
    item_dirs: list[Path] = Field(description="The item directories, per attempt.")
    warnings: list[str] = Field(default_factory=list,
                                description="Files that exist but could not be read.")


class _Evidence(BaseModel):
    """What one item directory holds, read once."""

    trajectory: TraeOutcome | None = None
    trajectory_problem: str | None = Field(default=None, description="Exists, unreadable.")
    record: AgentRecord | None = None
    patch: str | None = None


def _trajectory(path: Path) -> tuple[TraeOutcome | None, str | None]:
    try:
        data = json_object(path.read_bytes())
    except OSError:
        return None, None
    if isinstance(data, str):
        return None, data
    return read_trajectory(data), None


def _journal_error(journal: dict) -> tuple[RunStatus, ErrorSignature]:
    text = f"{journal.get('error_type') or 'error'}: {journal['error']}"
    return RunStatus.AGENT_ERROR, classify_text(text, "journal") or unclassified(text, "journal")


def has_patch(patch: str | None) -> bool:
    return bool(patch and patch.strip())


def true_outcome(journal: dict, trajectory: TraeOutcome | None,
                 patch: str | None) -> tuple[RunStatus, ErrorSignature | None]:
    """How the run really ended, from evidence: trajectory first, then the harness's error."""
    if trajectory is None:
        if journal.get("error"):
            return _journal_error(journal)
        return RunStatus.AGENT_ERROR, signature(NO_TRAJECTORY, "trajectory.json missing or "
                                                "unreadable", "trajectory")
    if trajectory.ending == AgentEnding.FINISHED:
        if patch is not None and not patch.strip():
            return RunStatus.NO_PATCH, signature(EMPTY_PATCH, "model_patch.diff is empty",
                                                 "patch")
        return RunStatus.SUCCESS, None
    if trajectory.ending == AgentEnding.MAX_STEPS:
        return RunStatus.MAX_STEPS, trajectory.signature
    if trajectory.last_error:  # the signature names it (the must-patch death included)
        return RunStatus.AGENT_ERROR, trajectory.signature
    if journal.get("error"):
        return _journal_error(journal)
    if not trajectory.finalized:
        return RunStatus.INTERRUPTED, None  # never finalized: the process was killed
    text = trajectory.final_result or "trajectory says success: false without an error"
    return RunStatus.AGENT_ERROR, unclassified(text, "trajectory")


def kept_patch_outcome(status: RunStatus, sig: ErrorSignature | None,
                       patch: str | None) -> str | None:
    """Why a failed-looking run still counts as finished: the must-patch death happens *after*
    the agent called task_done (its work was committed, TRAE's `git diff` saw nothing), so when
    the harness's own patch holds the work, the work is done and can be benchmarked."""
    if sig is not None and sig.name == MUST_PATCH_NO_TOOL_OUTPUT[0] and has_patch(patch):
        return f"finished, patch kept (must-patch death after task_done: {sig.evidence})"
    return None


def trajectoryless_outcome(journal: dict, record: AgentRecord | None, patch: str | None,
                           agent: str,
                           failure: Callable[[], ErrorSignature | None] = lambda: None
                           ) -> tuple[RunStatus, ErrorSignature | None, str]:
    """Agents without a trajectory: their own result line, else the harness's error, else a
    named failure on their stderr (`failure`, read only when needed: logs are large) when
    they left no patch, else the patch; with
    none of those the outcome is unknown (not a failure: nothing says it failed)."""
    if record is not None:
        if record.finished:
            if has_patch(patch):
                return RunStatus.SUCCESS, None, f"{agent} reported success ({record.source})"
            return (RunStatus.NO_PATCH, signature(EMPTY_PATCH, "model_patch.diff is empty",
                                                  "patch"), f"{agent} reported success")
        text = record.result or "is_error: true"
        return (RunStatus.AGENT_ERROR, classify_text(text, record.source)
                or unclassified(text, record.source), f"{agent} reported an error")
    if journal.get("error"):
        status, sig = _journal_error(journal)
        return status, sig, "the harness recorded an error"
    if not has_patch(patch) and (printed := failure()) is not None:
        return RunStatus.AGENT_ERROR, printed, f"{agent} printed an error on stderr"
    block = journal.get(agent) or {}
    exit_note = f"exit {block.get('returncode')}" if isinstance(block, dict) else "no exit code"
    if has_patch(patch):
        return (RunStatus.SUCCESS, None,
                f"finished, patch kept ({agent} writes no trajectory; {exit_note})")
    return RunStatus.UNKNOWN, None, (f"unknown: {agent} writes no trajectory and left no patch "
                                     f"({exit_note})")


def _evidence(item_dir: Path) -> _Evidence:
    trajectory, problem = _trajectory(item_dir / TRAJECTORY_NAME)
    patch_path = item_dir / PATCH_NAME
    patch = patch_path.read_text(errors="replace") if patch_path.is_file() else None
    record = read_agent_record(item_dir) if trajectory is None else None
    return _Evidence(trajectory=trajectory, trajectory_problem=problem, record=record,
                     patch=patch)


def read_attempt(item_dir: Path, journal: dict, number: int, agent: str = "trae",
                 model: str = "", prices: PriceTable = DEFAULT_PRICES) -> Attempt:
    """One ISO-Bench item directory as one finished attempt."""
    found = _evidence(item_dir)
    trajectory, patch = found.trajectory, found.patch
    outcome = f"iso-bench status: {journal.get('status')}"
    if trajectory is None and found.trajectory_problem is None and agent not in TRAJECTORY_AGENTS:
        status, sig, outcome = trajectoryless_outcome(journal, found.record, patch, agent,
                                                      lambda: stderr_failure(item_dir))
    else:
        status, sig = true_outcome(journal, trajectory, patch)
        kept = kept_patch_outcome(status, sig, patch)
        if kept:
            status, sig, outcome = RunStatus.SUCCESS, None, kept
    written = journal_time(journal)
    # Fallbacks, best first: the trajectory's times, the journal's write time, the run
    # directory's name, the directory's mtime (always there).
    known = (written or _when(item_dir.parent.name, TIMESTAMP_FORMAT)
             or datetime.fromtimestamp(item_dir.stat().st_mtime))
    started = _when(trajectory.start_time if trajectory else None) or known
    finished = _when(trajectory.end_time if trajectory else None) or written or started
    block = journal.get("trae") or journal.get(agent) or {}
    duration = (block.get("duration_s") if isinstance(block, dict) else None) or (
        trajectory.execution_time_s if trajectory else
        found.record.duration_s if found.record else None)
    phases = ([PhaseTiming(name="agent", started_at=started, duration_s=float(duration))]
              if duration is not None else [])
    usage = trajectory.usage if trajectory else found.record.usage if found.record else None
    if usage is not None and usage.cost_usd is None and model:
        usage = with_cost(usage, model, prices)
    return Attempt(attempt=number, status=status, signature=sig, started_at=started,
                   finished_at=finished, phases=phases, usage=usage, agent_outcome=outcome,
                   host=SOURCE, controller_pid=0)


def legacy_item(task: str, agent: str, model: str, dirs: list[tuple[Path, dict]],
                prices: PriceTable = DEFAULT_PRICES, item_id: str | None = None,
                commit: str | None = None) -> LegacyItem:
    """Fold one item's run directories (any order) into one journal, attempts in the order
    they really ran: ISO-Bench ran overlapping invocations, so a directory's name (when the
    invocation began) does not say when this item ran in it. `item_id` and `commit` are the
    ones commit_keys.py resolved (a directory's name can be another item's id)."""
    read = [(d, j, read_attempt(d, j, 1, agent, model, prices)) for d, j in dirs]
    read.sort(key=lambda r: (_aware(r[2].started_at), r[0].parent.name))
    for n, (_, _, attempt) in enumerate(read, 1):
        attempt.attempt = n
    first = read[0][1]
    commits = first.get("commits") or {}
    journal = Journal(task_id=str(first.get("task_id") or task),
                      item_id=item_id or read[0][0].name, run_id=SOURCE, agent=agent,
                      model=model, commits={"base": str(commits.get("pre") or ""),
                                            "human": commit or str(commits.get("human") or "")},
                      attempts=[a for _, _, a in read])
    warnings = [f"{d / 'trajectory.json'}: {problem}" for d, _, _ in read
                if (problem := _trajectory(d / "trajectory.json")[1])]
    return LegacyItem(journal=journal, claimed=[j.get("status") for _, j, _ in read],
                      runs=[d.parent.name for d, _, _ in read],
                      item_dirs=[d for d, _, _ in read], warnings=warnings)


def journal_time(journal: dict) -> datetime | None:
    """`timestamps.written`: ISO text in some journals, epoch seconds in others."""
    value = (journal.get("timestamps") or {}).get("written")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    return _when(value)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _when(text: str | None, fmt: str | None = None) -> datetime | None:
    if not text or not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
