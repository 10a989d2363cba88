"""Which item starts next: the waiting queue, and longest-expected-first ordering.

With items of very different lengths, the order decides the tail: a two-hour item started last
leaves every other slot idle while it runs. Starting the longest items first (LPT) fixes that
when durations can be estimated, and estimates exist once a task has been run before: the same
commits take similar time under another agent or model (build and benchmark time dominate).
Items with no estimate go first, in plan order: an unknown item may be the longest.
"""

from __future__ import annotations

import heapq
import itertools
import statistics
from dataclasses import dataclass, field
from typing import Callable

from executor.core.journal import Attempt, Journal, RunStatus
from executor.records.state import JOURNAL_NAME, StateLayout, path_component
from executor.core.task import PlanItem

Priority = Callable[[PlanItem], float]  # lower starts earlier


@dataclass(order=True)
class Queued:
    key: tuple[float, int]
    item: PlanItem = field(compare=False)
    ran: int = field(compare=False, default=0)  # attempts this invocation already ran


class ItemQueue:
    """Items waiting to start: backed-off ones by the time they become ready, ready ones by
    priority (an item keeps its priority when it comes back for a retry)."""

    def __init__(self, items: list[PlanItem], priority: Priority | None = None):
        order = {item.item_id: n for n, item in enumerate(items)}
        self._priority = priority or (lambda item: float(order[item.item_id]))
        self._rank = {item.item_id: (self._priority(item), n) for n, item in enumerate(items)}
        self._ready = [Queued(self._rank[i.item_id], i) for i in items]
        heapq.heapify(self._ready)
        self._waiting: list[tuple[float, int, Queued]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._ready) + len(self._waiting)

    def push_later(self, item: PlanItem, ran: int, ready_at: float) -> None:
        entry = Queued(self._rank[item.item_id], item, ran)
        heapq.heappush(self._waiting, (ready_at, next(self._seq), entry))

    def pop_ready(self, now: float) -> Queued | None:
        while self._waiting and self._waiting[0][0] <= now:
            heapq.heappush(self._ready, heapq.heappop(self._waiting)[2])
        return heapq.heappop(self._ready) if self._ready else None

    def next_ready_at(self) -> float | None:
        """When the next item can start: -inf if one is ready now, None if none waits."""
        if self._ready:
            return float("-inf")
        return self._waiting[0][0] if self._waiting else None


def longest_first(estimates: dict[str, float]) -> Priority:
    """LPT: longest estimate first; items without an estimate before all others."""
    return lambda item: -estimates.get(item.item_id, float("inf"))


def attempt_seconds(attempt: Attempt) -> float | None:
    """Duration of a finished attempt from its timestamps (phases if those cannot say)."""
    if attempt.finished_at is None:
        return None
    try:
        wall = (attempt.finished_at - attempt.started_at).total_seconds()
    except TypeError:  # naive vs aware timestamps (foreign journals)
        wall = 0.0
    return max(wall, sum(p.duration_s for p in attempt.phases))


def history_estimates(layout: StateLayout, task: str, *, exclude_run: str | None = None
                      ) -> dict[str, float]:
    """Median duration per item over finished, non-interrupted attempts of every earlier run of
    `task` in this state directory (any agent, any model)."""
    seen: dict[str, list[float]] = {}
    task_dir = layout.runs / path_component(task)
    for path in task_dir.glob(f"*/*/*/*/{JOURNAL_NAME}"):
        if exclude_run is not None and path.parent.parent.name == path_component(exclude_run):
            continue
        try:
            journal = Journal.model_validate_json(path.read_text())
        except (OSError, ValueError):
            continue  # a foreign or half-written journal only costs us an estimate
        for attempt in journal.attempts:
            if attempt.status in (RunStatus.RUNNING, RunStatus.INTERRUPTED):
                continue
            seconds = attempt_seconds(attempt)
            if seconds:
                seen.setdefault(journal.item_id, []).append(seconds)
    return {item: statistics.median(values) for item, values in seen.items()}
