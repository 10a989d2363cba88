"""The dispatcher on virtual time: slot handoff, retries that do not hold a slot, ordering."""

from __future__ import annotations

import random
from datetime import timedelta

from executor.runs.batch.base import BatchContext, BatchEvent, EventKind, ItemOutcome
from executor.runs.batch.order import ItemQueue, history_estimates, longest_first
from executor.core.policy import RetryPolicy
from executor.runs.batch.simulate import SimBackend
from executor.core.errors import classify_text
from executor.core.journal import Attempt, PhaseTiming, RunStatus, utcnow
from executor.records.state import RunKey, StateLayout
from executor.core.task import PlanItem

RATE = classify_text("Error code: 429 - Too Many Requests", "sim")


def items(n: int) -> list[PlanItem]:
    return [PlanItem(item_id=f"i{k:03d}", human=f"{k:07x}") for k in range(n)]


def sim_item(durations: dict[str, list[float]]):
    """Attempt k of an item lasts durations[item][k-1]; all but the last hit a rate limit."""
    def run_item(item, attempt_number, gpu_ids, cancel):
        ds = durations[item.item_id]
        last = attempt_number == len(ds)
        start = utcnow()
        return Attempt(attempt=attempt_number,
                       status=RunStatus.SUCCESS if last else RunStatus.AGENT_ERROR,
                       signature=None if last else RATE, started_at=start,
                       finished_at=start + timedelta(seconds=ds[attempt_number - 1]),
                       phases=[PhaseTiming(name="agent", started_at=start,
                                           duration_s=ds[attempt_number - 1])])
    return run_item


class Timeline:
    """Records (virtual time, event) from the dispatcher's observer."""

    def __init__(self, backend: SimBackend):
        self.backend, self.events = backend, []

    def event(self, e: BatchEvent):
        self.events.append((self.backend.clock.now(), e))


def ctx(tmp_path, run_id="r", backoff=100.0) -> BatchContext:
    return BatchContext(state=StateLayout(root=tmp_path),
                        run=RunKey(task="sim", agent="sim", model=run_id, run_id=run_id),
                        policy=RetryPolicy(backoff_base_s=backoff, backoff_jitter=0), seed=0)


def test_retry_backoff_frees_the_slot_for_other_items(tmp_path):
    durations = {"i000": [10.0, 50.0], "i001": [30.0], "i002": [30.0], "i003": [30.0]}
    backend = SimBackend(slots=2)
    timeline = Timeline(backend)
    summary = backend.run(items(4), sim_item(durations), ctx(tmp_path), observer=timeline)
    assert {r.outcome for r in summary.items} == {ItemOutcome.SUCCEEDED}
    starts = [(t, e.item_id, e.attempt, e.gpu_ids) for t, e in timeline.events
              if e.kind == EventKind.STARTED]
    # i000 fails at t=10; its slot goes to i002 at once while i000 waits out its backoff
    # (100 s) and restarts at t=110 on a slot idle by then.
    assert starts == [(0.0, "i000", 1, ("0",)), (0.0, "i001", 1, ("1",)),
                      (10.0, "i002", 1, ("0",)), (30.0, "i003", 1, ("1",)),
                      (110.0, "i000", 2, ("1",))]
    assert backend.clock.now() == 160.0


def test_longest_first_uses_history_from_earlier_runs(tmp_path):
    plan = items(4)
    first = {"i000": [10.0], "i001": [40.0], "i002": [20.0], "i003": [30.0]}
    SimBackend(slots=1).run(plan, sim_item(first), ctx(tmp_path, "first"))
    estimates = history_estimates(StateLayout(root=tmp_path), "sim", exclude_run="second")
    assert estimates == {k: v[0] for k, v in first.items()}
    backend = SimBackend(slots=1)
    timeline = Timeline(backend)
    backend.run(plan, sim_item(first), ctx(tmp_path, "second"), observer=timeline,
                priority=longest_first(estimates))
    started = [e.item_id for _, e in timeline.events if e.kind == EventKind.STARTED]
    assert started == ["i001", "i003", "i002", "i000"]


def test_queue_puts_unknown_estimates_first_and_keeps_rank_on_retry():
    plan = items(3)
    queue = ItemQueue(plan, longest_first({"i000": 5.0, "i002": 9.0}))
    assert queue.pop_ready(0.0).item.item_id == "i001"  # no estimate: may be the longest
    first = queue.pop_ready(0.0)
    assert first.item.item_id == "i002"
    queue.push_later(first.item, ran=1, ready_at=10.0)
    assert queue.next_ready_at() == float("-inf")
    assert queue.pop_ready(20.0).item.item_id == "i002"  # back, ahead of the shorter i000
    assert queue.pop_ready(20.0).item.item_id == "i000" and queue.next_ready_at() is None


def test_many_items_keep_slots_busy_with_exact_estimates(tmp_path):
    rng = random.Random(3)
    durations = {f"i{k:03d}": [rng.uniform(60, 3600)] for k in range(200)}
    backend = SimBackend(slots=16)
    estimates = {k: v[0] for k, v in durations.items()}
    summary = backend.run(items(200), sim_item(durations), ctx(tmp_path),
                          priority=longest_first(estimates))
    assert summary.count(ItemOutcome.SUCCEEDED) == 200
    work = sum(v[0] for v in durations.values())
    ideal = max(work / 16, max(estimates.values()))
    assert ideal / backend.clock.now() >= 0.98  # LPT with exact sizes: within 2% of ideal
