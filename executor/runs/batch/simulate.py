"""A virtual-time executor: the real dispatcher, leases, policy and journals, with attempts
placed on a simulated timeline instead of run.

Why a virtual clock rather than short real sleeps: real items last tens of minutes, so what
decides slot utilisation is the scheduler's choices (lease handoff, requeueing retries without
holding a slot, the tail), not the controller's milliseconds of bookkeeping. A virtual clock
measures exactly those choices, deterministically, in seconds of wall time on two cores, with
no sleeps whose jitter would be measured instead. The bookkeeping cost is reported separately
(wall time per item) so it is not hidden either.

A simulated run_item returns its Attempt at once; the attempt's phases say how long it "took",
and the executor completes it that many virtual seconds after it started.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Sequence

from executor.runs.batch.base import BatchContext, BatchSummary, Cancel, Observer, RunItem
from executor.runs.batch.dispatch import Completion, Dispatcher, Ticket, run_attempt
from executor.runs.batch.leases import GpuLeasePool
from executor.runs.batch.order import Priority
from executor.core.task import PlanItem


class VirtualClock:
    """Time that moves only when the executor says an event happened."""

    def __init__(self, start: float = 0.0):
        self._now = start

    def now(self) -> float:
        return self._now

    def advance_to(self, when: float) -> None:
        self._now = max(self._now, when)


class SimExecutor:
    """Completes each attempt `sum(phase durations)` virtual seconds after it was submitted."""

    def __init__(self, clock: VirtualClock, capacity: int):
        self.clock, self.capacity = clock, capacity
        self._events: list[tuple[float, int, Completion]] = []
        self._seq = itertools.count()
        self.busy_s = 0.0  # total simulated work, for utilisation figures

    def submit(self, ticket: Ticket, run_item: RunItem, cancel: Cancel) -> None:
        done = run_attempt(run_item, ticket, cancel)
        duration = sum(p.duration_s for p in done.attempt.phases) if done.attempt else 0.0
        self.busy_s += duration
        heapq.heappush(self._events, (self.clock.now() + duration, next(self._seq), done))

    def wait(self, timeout: float | None) -> list[Completion]:
        deadline = None if timeout is None else self.clock.now() + timeout
        if not self._events or (deadline is not None and deadline < self._events[0][0]):
            if deadline is not None:
                self.clock.advance_to(deadline)
            return []
        when = self._events[0][0]
        self.clock.advance_to(when)
        done = []
        while self._events and self._events[0][0] <= when:
            done.append(heapq.heappop(self._events)[2])
        return done

    def wake(self) -> None:
        pass  # single-threaded: nothing is ever blocked waiting

    def shutdown(self) -> None:
        pass


class SimBackend:
    """The dispatcher over simulated slots (the scheduling benchmark and scheduler tests)."""

    name = "sim"

    def __init__(self, slots: int, gpu_ids: list[str] | None = None):
        self.slots = slots
        self.gpu_ids = gpu_ids if gpu_ids is not None else [str(i) for i in range(slots)]
        self.clock = VirtualClock()
        self.executor: SimExecutor | None = None

    def run(self, items: Sequence[PlanItem], run_item: RunItem, ctx: BatchContext, *,
            cancel: Cancel | None = None, observer: Observer | None = None,
            priority: Priority | None = None) -> BatchSummary:
        leases = GpuLeasePool(self.gpu_ids, cpu_slots=self.slots)
        self.executor = SimExecutor(self.clock, leases.size)
        return Dispatcher(ctx, items, run_item, self.executor, leases, clock=self.clock,
                          cancel=cancel, observer=observer, priority=priority).run()
