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
from typing import Callable, NamedTuple

from pydantic import BaseModel, Field

from executor.parts.agents.base import AgentEnding
from executor.parts.agents.trae_trajectory import OutcomeFields, TraeOutcome, read_trajectory
from executor.core.errors import (AGENT_STARTUP_CRASH, EMPTY_PATCH, MUST_PATCH_NO_TOOL_OUTPUT, NO_TRAJECTORY,
                                  ErrorClass, ErrorSignature, classify_text, signature,
                                  unclassified)
from executor.core.journal import Attempt, Journal, PhaseTiming, RunStatus
from executor.core.json_fields import load_fields
from executor.views.legacy.agent_records import (AgentRecord, read_agent_record, startup_crash,
                                                 stderr_failure)
from executor.views.legacy.journal_less import NO_JOURNAL
from executor.core.pricing import DEFAULT_PRICES, PriceTable, with_cost
from executor.records.state import PATCH_NAME, TRAJECTORY_NAME

SOURCE = "iso-bench"
TIMESTAMP_FORMAT = "%Y-%m-%d_%H-%M-%S"
TRAJECTORY_AGENTS = ("trae",)  # the agents whose missing trajectory is itself evidence
# The keys ISO-Bench wrote an agent's exit code and time under: its own name, except that the
# codex runs wrote `codex_cli` (and TRAE's key is sometimes present, null, in others').
AGENT_KEYS = ("trae", "codex_cli", "claude_code", "openhands", "codex")
STARTUP_S = 120  # a run without a trajectory that lasted longer did more than start up
EXITED_EMPTY = ("empty_patch", ErrorClass.PERMANENT,
                ("The agent exited 0 and left an empty model_patch.diff: it ended without a "
                 "change, nothing to measure."))


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


class TrajectorySeen(NamedTuple):
    """Told each trajectory parsed (its path and its `fields`, which hold the outcome's:
    OutcomeFields), so a caller that wants more of it than the outcome (the report's steps)
    does not parse it a second time."""

    fields: type
    tell: Callable[[Path, dict], None]


def _trajectory(path: Path, seen: TrajectorySeen | None = None
                ) -> tuple[TraeOutcome | None, str | None]:
    """(outcome, None), (None, why it is unreadable), or (None, None) when there is none.
    Only the fields read are parsed (core/json_fields.py): ISO-Bench's 823 trajectories are
    284 MB of JSON, and parsing them whole was most of what `status` did."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None, None
    try:
        data = load_fields(raw, seen.fields if seen is not None else OutcomeFields)
    except ValueError as exc:
        return None, f"trajectory is not valid JSON: {exc}"
    if not isinstance(data, dict):
        return None, "trajectory is not a JSON object"
    if seen is not None:
        seen.tell(path, data)
    return read_trajectory(data), None


def agent_block(journal: dict, agent: str) -> dict:
    """The journal's block of the agent's exit code and time ({} when it has none)."""
    for key in (agent, *AGENT_KEYS):
        if isinstance(block := journal.get(key), dict):
            return block
    return {}


def _journal_error(journal: dict) -> tuple[RunStatus, ErrorSignature]:
    text = f"{journal.get('error_type') or 'error'}: {journal['error']}"
    return RunStatus.AGENT_ERROR, classify_text(text, "journal") or unclassified(text, "journal")


def has_patch(patch: str | None) -> bool:
    return bool(patch and patch.strip())


def true_outcome(journal: dict, trajectory: TraeOutcome | None, patch: str | None,
                 crash: Callable[[], ErrorSignature | None] | None = None
                 ) -> tuple[RunStatus, ErrorSignature | None]:
    """How the run really ended, from evidence: trajectory first, then the harness's error,
    then what the agent printed (`crash`, given when the run can have died at start-up: no
    trajectory was written and it ran no longer than a start-up)."""
    if trajectory is None:
        if journal.get("error"):
            status, sig = _journal_error(journal)
            if sig.name == "unclassified" and crash is not None:  # it never took a step
                sig = signature(AGENT_STARTUP_CRASH, sig.evidence, sig.source)
            return status, sig
        if crash is not None and (printed := crash()) is not None:
            return RunStatus.AGENT_ERROR, printed
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
                           failure: Callable[[], ErrorSignature | None] = lambda: None,
                           crash: Callable[[], ErrorSignature | None] = lambda: None
                           ) -> tuple[RunStatus, ErrorSignature | None, str]:
    """Agents without a trajectory: their own result line, else the harness's error, else a
    named failure on their stderr (`failure`, read only when needed: logs are large) when
    they left no patch, else the patch. Without a patch: an exit code other than 0 with the
    process's last error line (`crash`: Claude Code's "Error: Input must be provided") is a
    start-up crash; exit 0 with an empty patch file ended without a change. With none of
    those the outcome is unknown (not a failure: nothing says it failed)."""
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
    block = agent_block(journal, agent)
    code = block.get("returncode")
    exit_note = f"exit {code}" if code is not None else "no exit code"
    if has_patch(patch):
        return (RunStatus.SUCCESS, None,
                f"finished, patch kept ({agent} writes no trajectory; {exit_note})")
    if code not in (0, None) and (died := crash()) is not None:
        return RunStatus.AGENT_ERROR, died, f"{agent} crashed at start-up ({exit_note})"
    if code == 0 and patch is not None:
        took = block.get("duration_s")
        after = f" after {took:.0f} s" if isinstance(took, (int, float)) else ""
        return (RunStatus.NO_PATCH, signature(EXITED_EMPTY, f"{agent} exited 0{after}; "
                                              "model_patch.diff is empty", "patch"),
                f"{agent} exited 0 without a change")
    return RunStatus.UNKNOWN, None, (f"unknown: {agent} writes no trajectory and left no patch "
                                     f"({exit_note})")


def _evidence(item_dir: Path, seen: TrajectorySeen | None = None) -> _Evidence:
    trajectory, problem = _trajectory(item_dir / TRAJECTORY_NAME, seen)
    patch_path = item_dir / PATCH_NAME
    patch = patch_path.read_text(errors="replace") if patch_path.is_file() else None
    record = read_agent_record(item_dir) if trajectory is None else None
    return _Evidence(trajectory=trajectory, trajectory_problem=problem, record=record,
                     patch=patch)


def read_attempt(item_dir: Path, journal: dict, number: int, agent: str = "trae",
                 model: str = "", prices: PriceTable = DEFAULT_PRICES) -> Attempt:
    """One ISO-Bench item directory as one finished attempt."""
    return _read(item_dir, journal, number, agent, model, prices)[0]


def _read(item_dir: Path, journal: dict, number: int, agent: str, model: str,
          prices: PriceTable, seen: TrajectorySeen | None = None) -> tuple[Attempt, str | None]:
    """The attempt and, when its trajectory exists but cannot be read, why (read once)."""
    found = _evidence(item_dir, seen)
    trajectory, patch = found.trajectory, found.patch
    outcome = f"iso-bench status: {journal.get('status')}"
    if journal.get(NO_JOURNAL):
        outcome = "no journal.json: read from trajectory.json and prompt.json"
    took = agent_block(journal, agent).get("duration_s")
    crash = lambda: startup_crash(item_dir)  # read only when needed
    if trajectory is None and found.trajectory_problem is None and agent not in TRAJECTORY_AGENTS:
        status, sig, outcome = trajectoryless_outcome(journal, found.record, patch, agent,
                                                      lambda: stderr_failure(item_dir), crash)
    else:
        at_startup = found.trajectory_problem is None and not (
            isinstance(took, (int, float)) and took > STARTUP_S)
        status, sig = true_outcome(journal, trajectory, patch, crash if at_startup else None)
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
    block = agent_block(journal, agent)
    duration = block.get("duration_s") or (
        trajectory.execution_time_s if trajectory else
        found.record.duration_s if found.record else None)
    phases = ([PhaseTiming(name="agent", started_at=started, duration_s=float(duration))]
              if duration is not None else [])
    usage = trajectory.usage if trajectory else found.record.usage if found.record else None
    if usage is not None and usage.cost_usd is None and model:
        usage = with_cost(usage, model, prices)
    return Attempt(attempt=number, status=status, signature=sig, started_at=started,
                   finished_at=finished, phases=phases, usage=usage, agent_outcome=outcome,
                   host=SOURCE, controller_pid=0), found.trajectory_problem


def legacy_item(task: str, agent: str, model: str, dirs: list[tuple[Path, dict]],
                prices: PriceTable = DEFAULT_PRICES, item_id: str | None = None,
                commit: str | None = None, seen: TrajectorySeen | None = None) -> LegacyItem:
    """Fold one item's run directories (any order) into one journal, attempts in the order
    they really ran: ISO-Bench ran overlapping invocations, so a directory's name (when the
    invocation began) does not say when this item ran in it. `item_id` and `commit` are the
    ones commit_keys.py resolved (a directory's name can be another item's id)."""
    read = [(d, j, *_read(d, j, 1, agent, model, prices, seen)) for d, j in dirs]
    read.sort(key=lambda r: (_aware(r[2].started_at), r[0].parent.name))
    for n, (_, _, attempt, _) in enumerate(read, 1):
        attempt.attempt = n
    first = read[0][1]
    commits = first.get("commits") or {}
    journal = Journal(task_id=str(first.get("task_id") or task),
                      item_id=item_id or read[0][0].name, run_id=SOURCE, agent=agent,
                      model=model, commits={"base": str(commits.get("pre") or ""),
                                            "human": commit or str(commits.get("human") or "")},
                      attempts=[a for _, _, a, _ in read])
    warnings = [f"{d / TRAJECTORY_NAME}: {problem}" for d, _, _, problem in read if problem]
    return LegacyItem(journal=journal, claimed=[j.get("status") for _, j, _, _ in read],
                      runs=[d.parent.name for d, _, _, _ in read],
                      item_dirs=[d for d, _, _, _ in read], warnings=warnings)


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
