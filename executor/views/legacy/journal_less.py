"""ISO-Bench item directories without a journal.json, counted rather than skipped.

The harness wrote journal.json when the agent returned; a run killed before that (its own
kill, a lost machine) left the agent's trajectory and prompt.json only. On ISO-Bench's real
state 10 such trajectories exist (4 reached TRAE's step limit): they are attempts, read from the
trajectory like any other, with the commit prompt.json names. Directories that hold neither a
journal nor a trajectory (prompt.json and task.txt only: nothing shows the agent started) are
counted and named, never read as attempts.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from executor.records.state import JOURNAL_NAME, TRAJECTORY_NAME, read_json

NO_JOURNAL = "_isobench_no_journal"  # marks a journal made here, not written by ISO-Bench
PROMPT_NAME = "prompt.json"


class JournalLess(BaseModel):
    """What one ISO-Bench model directory holds without a journal."""

    with_trajectory: list[tuple[Path, dict]] = Field(
        default_factory=list, description="(directory, journal made from prompt.json).")
    empty: list[Path] = Field(default_factory=list,
                              description="Directories with neither journal nor trajectory.")


def journal_from_prompt(item_dir: Path, task: str) -> dict:
    """The journal ISO-Bench did not write: its task, and the commits prompt.json names
    (none when it names none: the directory's name then keys the item)."""
    prompt = read_json(item_dir / PROMPT_NAME)
    commits = prompt.get("commits") if isinstance(prompt, dict) else None
    commits = commits if isinstance(commits, dict) else {}
    return {"task_id": task, "status": None, NO_JOURNAL: True,
            "commits": {"pre": str(commits.get("pre") or ""),
                        "human": str(commits.get("human") or "")}}


def _task_near(item_dir: Path, tasks: dict[Path, Counter]) -> str | None:
    """The task of the journals beside it: in its invocation, else in its model directory."""
    for where in (item_dir.parent, item_dir.parent.parent):
        if tasks.get(where):
            return tasks[where].most_common(1)[0][0]
    return None


def find_journal_less(item_dirs: list[Path],
                      legacy: dict[tuple[Path, str], list[tuple[Path, dict]]]
                      ) -> dict[tuple[Path, str], JournalLess]:
    """Directories (ISO-Bench depth) without journal.json under model directories that hold
    ISO-Bench journals (`legacy`, keyed by (model dir, task)), keyed the same way."""
    tasks: dict[Path, Counter] = {}
    for (model_dir, task), dirs in legacy.items():
        for item_dir, _ in dirs:
            tasks.setdefault(item_dir.parent, Counter())[task] += 1
            tasks.setdefault(model_dir, Counter())[task] += 1
    found: dict[tuple[Path, str], JournalLess] = {}
    for item_dir in item_dirs:
        if (item_dir / JOURNAL_NAME).exists() or (task := _task_near(item_dir, tasks)) is None:
            continue
        entry = found.setdefault((item_dir.parent.parent, task), JournalLess())
        if (item_dir / TRAJECTORY_NAME).is_file():
            entry.with_trajectory.append((item_dir, journal_from_prompt(item_dir, task)))
        else:
            entry.empty.append(item_dir)
    return found
