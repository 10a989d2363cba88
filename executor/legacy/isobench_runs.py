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

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from executor.agents.base import AgentEnding
from executor.agents.trae_trajectory import TraeOutcome, json_object, read_trajectory
from executor.errors import (EMPTY_PATCH, NO_TRAJECTORY, ErrorSignature, classify_text, signature,
                             unclassified)
from executor.journal import Attempt, Journal, PhaseTiming, RunStatus
from executor.state import PATCH_NAME, TRAJECTORY_NAME

SOURCE = "iso-bench"
TIMESTAMP_FORMAT = "%Y-%m-%d_%H-%M-%S"

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


def load_outcome(path: Path) -> TraeOutcome | None:
    """The TRAE adapter's own reading of a trajectory; None when missing or not JSON (TRAE
    rewrites it each step, not atomically, so a killed run can leave it cut short)."""
    try:
        data = json_object(path.read_bytes())
    except OSError:
        return None
    return None if isinstance(data, str) else read_trajectory(data)


def _journal_error(journal: dict) -> tuple[RunStatus, ErrorSignature]:
    text = f"{journal.get('error_type') or 'error'}: {journal['error']}"
    return RunStatus.AGENT_ERROR, classify_text(text, "journal") or unclassified(text, "journal")


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


def read_attempt(item_dir: Path, journal: dict, number: int) -> Attempt:
    """One ISO-Bench item directory as one finished attempt."""
    trajectory = load_outcome(item_dir / TRAJECTORY_NAME)
    patch_path = item_dir / PATCH_NAME
    patch = patch_path.read_text(errors="replace") if patch_path.is_file() else None
    status, sig = true_outcome(journal, trajectory, patch)
    written = _when((journal.get("timestamps") or {}).get("written"))
    # Fallbacks, best first: the trajectory's times, the journal's write time, the run
    # directory's name, the directory's mtime (always there).
    known = (written or _when(item_dir.parent.name, TIMESTAMP_FORMAT)
             or datetime.fromtimestamp(item_dir.stat().st_mtime))
    started = _when(trajectory.start_time if trajectory else None) or known
    finished = _when(trajectory.end_time if trajectory else None) or written or started
    trae = journal.get("trae") or {}
    duration = trae.get("duration_s") or (trajectory.execution_time_s if trajectory else None)
    phases = ([PhaseTiming(name="agent", started_at=started, duration_s=float(duration))]
              if duration is not None else [])
    return Attempt(attempt=number, status=status, signature=sig, started_at=started,
                   finished_at=finished, phases=phases,
                   usage=trajectory.usage if trajectory else None,
                   agent_outcome=f"iso-bench status: {journal.get('status')}",
                   host=SOURCE, controller_pid=0)


def legacy_item(task: str, agent: str, model: str,
                dirs: list[tuple[Path, dict]]) -> LegacyItem:
    """Fold one item's run directories (any order) into one journal."""
    dirs = sorted(dirs, key=lambda d: d[0].parent.name)
    first = dirs[0][1]
    commits = first.get("commits") or {}
    journal = Journal(task_id=str(first.get("task_id") or task), item_id=dirs[0][0].name,
                      run_id=SOURCE, agent=agent, model=model,
                      commits={"base": str(commits.get("pre") or ""),
                               "human": str(commits.get("human") or "")},
                      attempts=[read_attempt(d, j, n) for n, (d, j) in enumerate(dirs, 1)])
    return LegacyItem(journal=journal, claimed=[j.get("status") for _, j in dirs],
                      runs=[d.parent.name for d, _ in dirs], item_dirs=[d for d, _ in dirs])


def _when(text: str | None, fmt: str | None = None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
