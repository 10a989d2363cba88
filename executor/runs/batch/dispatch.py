"""The dispatcher: one loop that every backend shares.

It owns the queue, the item locks, the journals and the policy; an `Executor` only runs
attempts somewhere (threads, Ray tasks, a virtual timeline in the scheduling
benchmark) and hands back completions. All bookkeeping happens on the dispatcher's thread, so
journals have a single writer per controller and observers see events in order.

Per item:  take lock -> close attempts a dead controller left running -> decide (policy) ->
final: release, skip | run: take lease, journal attempt n `running`, submit.
Per completion:  release lease -> record the finished attempt -> decide -> release lock ->
retry: back into the queue after a backoff (the slot is free meanwhile) | final | left.
"""

from __future__ import annotations

import random
import time
import traceback
from dataclasses import dataclass
from typing import Protocol, Sequence

from executor.runs.batch.base import (BatchContext, BatchEvent, BatchSummary, Cancel, EventKind,
                                 ItemOutcome, ItemResult, Observer, RunItem)
from executor.runs.batch.leases import GpuLease, GpuLeasePool
from executor.runs.batch.order import ItemQueue, Priority
from executor.core.policy import Decision, DecisionKind, decide
from executor.core.errors import classify_text, unclassified
from executor.core.journal import Attempt, RunStatus, utcnow
from executor.records.state import ItemJournal, ItemLock, LockHeld, LockHolder
from executor.core.task import PlanItem


class Clock(Protocol):
    """Seconds on some monotonic timeline (real, or virtual in the benchmark)."""

    def now(self) -> float: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()


@dataclass
class Ticket:
    """One attempt in flight: what runs, where, and the lock that makes it ours."""

    item: PlanItem
    attempt: int
    lease: GpuLease
    lock: ItemLock
    journal: ItemJournal
    begun: Attempt  # the `running` record written before submit
    started: float  # clock time at submit
    ran_before: int = 0


@dataclass
class Completion:
    """An executor's report: the attempt run_item returned, or the exception it raised."""

    ticket: Ticket
    attempt: Attempt | None = None
    error: BaseException | None = None
    error_text: str = ""


class Executor(Protocol):
    """Runs submitted attempts and reports completions. Never touches journals or locks."""

    capacity: int

    def submit(self, ticket: Ticket, run_item: RunItem, cancel: Cancel) -> None: ...

    def wait(self, timeout: float | None) -> list[Completion]:
        """Block until at least one completion, `wake()`, or `timeout` seconds; [] if none."""
        ...

    def wake(self) -> None: ...

    def shutdown(self) -> None: ...


def run_attempt(run_item: RunItem, ticket: Ticket, cancel: Cancel) -> Completion:
    """Call run_item and turn whatever happens into a Completion (executors share this)."""
    try:
        attempt = run_item(ticket.item, ticket.attempt, list(ticket.lease.gpu_ids), cancel)
        return Completion(ticket, attempt=attempt)
    except BaseException as exc:  # noqa: BLE001 - a worker must report, never die silently
        return Completion(ticket, error=exc, error_text="".join(
            traceback.format_exception_only(type(exc), exc)).strip())


class Dispatcher:
    """Schedules items onto leases through an executor until all are final or cancelled."""

    def __init__(self, ctx: BatchContext, items: Sequence[PlanItem], run_item: RunItem,
                 executor: Executor, leases: GpuLeasePool, *, clock: Clock | None = None,
                 cancel: Cancel | None = None, observer: Observer | None = None,
                 priority: Priority | None = None):
        ids = [i.item_id for i in items]
        if len(set(ids)) != len(ids):
            raise ValueError("plan has duplicate item ids")
        self.ctx, self.run_item, self.executor, self.leases = ctx, run_item, executor, leases
        self.clock = clock or MonotonicClock()
        self.cancel = cancel or Cancel()
        self.observer = observer
        self.holder = LockHolder.me(purpose=ctx.run.run_id)
        self.rng = random.Random(ctx.seed)
        self._queue = ItemQueue(list(items), priority)
        self._in_flight: dict[str, Ticket] = {}
        self._results: dict[str, ItemResult] = {i.item_id: ItemResult(
            item_id=i.item_id, outcome=ItemOutcome.REMAINING, attempts=0, detail="not started")
            for i in items}
        self._order = ids

    # ------------------------------------------------------------------ main loop

    def run(self) -> BatchSummary:
        started = self.clock.now()
        self.cancel.on_set(self.executor.wake)
        try:
            while True:
                if not self.cancel.is_set():
                    self._dispatch_ready()
                if not self._in_flight and (self.cancel.is_set() or not len(self._queue)):
                    break
                for completion in self.executor.wait(self._wait_timeout()):
                    self._complete(completion)
        finally:
            self.executor.shutdown()
        return BatchSummary(run=self.ctx.run, items=[self._results[i] for i in self._order],
                            interrupted=self.cancel.is_set(),
                            wall_s=round(self.clock.now() - started, 3))

    def _wait_timeout(self) -> float | None:
        """Wait for a completion, or until the next backed-off item is ready; a free slot with
        nothing ready and nothing running only waits for the backoff."""
        ready_at = self._queue.next_ready_at()
        if self.cancel.is_set() or ready_at is None:
            return None
        if self._in_flight and not self._slot_free():
            return None
        return max(0.0, ready_at - self.clock.now())

    def _dispatch_ready(self) -> None:
        while self._slot_free():
            queued = self._queue.pop_ready(self.clock.now())
            if queued is None:
                return
            self._start(queued.item, queued.ran)

    def _slot_free(self) -> bool:
        return bool(self.leases.available()) and len(self._in_flight) < self.executor.capacity

    # ------------------------------------------------------------------ one item

    def _start(self, item: PlanItem, ran: int) -> None:
        lock = self.ctx.state.lock(self.ctx.run, item.item_id)
        try:
            lock.acquire(self.holder)
        except LockHeld as held:
            who = f"{held.holder.host}:{held.holder.pid}" if held.holder else "unknown"
            self._settle(item, ItemOutcome.REMAINING, f"held by {who}", ran)
            self._emit(EventKind.SKIPPED, item.item_id, outcome=ItemOutcome.REMAINING,
                       detail=f"held by {who}")
            return
        try:
            journal_file = ItemJournal.for_item(self.ctx.state, self.ctx.run, item)
            journal = journal_file.load()
            for closed in journal_file.close_abandoned(journal, self.holder):
                self._emit(EventKind.FINISHED, item.item_id, closed.attempt, closed.status,
                           detail=closed.signature.evidence if closed.signature else "")
            decision = decide(journal.attempts, self.ctx.policy)
            if decision.final:
                lock.release()
                self._settle(item, _outcome(decision), decision.reason, ran,
                             attempts=len(journal.attempts))
                self._emit(EventKind.SKIPPED, item.item_id, outcome=_outcome(decision),
                           detail=decision.reason)
                return
            lease = self.leases.acquire()
            assert lease is not None, "dispatch only starts items when a lease is free"
            try:
                begun = journal_file.begin(journal, decision.next_attempt, lease.gpu_ids)
            except BaseException:
                self.leases.release(lease)
                raise
        except BaseException:
            lock.release()
            raise
        ticket = Ticket(item=item, attempt=decision.next_attempt, lease=lease, lock=lock,
                        journal=journal_file, begun=begun, started=self.clock.now(),
                        ran_before=ran)
        self._in_flight[item.item_id] = ticket
        self._emit(EventKind.STARTED, item.item_id, ticket.attempt, RunStatus.RUNNING,
                   gpu_ids=lease.gpu_ids)
        self.executor.submit(ticket, self.run_item, self.cancel)

    def _complete(self, done: Completion) -> None:
        ticket = done.ticket
        item = ticket.item
        del self._in_flight[item.item_id]
        self.leases.release(ticket.lease)
        try:
            journal, attempt = ticket.journal.finish(self._finished_attempt(done))
            decision = decide(journal.attempts, self.ctx.policy)
        finally:
            ticket.lock.release()
        ran = ticket.ran_before + 1
        label = attempt.signature.name if attempt.signature else attempt.status.value
        self._emit(EventKind.FINISHED, item.item_id, attempt.attempt, attempt.status,
                   detail=label, gpu_ids=ticket.lease.gpu_ids)
        if decision.kind == DecisionKind.RETRY and not self.cancel.is_set():
            wait = self.ctx.policy.backoff_s(decision.next_attempt - 1, self.rng)
            self._queue.push_later(item, ran, self.clock.now() + wait)
            self._settle(item, ItemOutcome.REMAINING, decision.reason, ran,
                         attempts=len(journal.attempts))
            self._emit(EventKind.RETRY, item.item_id, decision.next_attempt,
                       detail=f"{decision.reason}; in {wait:.0f}s")
            return
        # Not final and not retried here (interrupted, or cancelled before a retry): left for
        # the next invocation, whose policy will run it again.
        outcome = _outcome(decision) if decision.final else ItemOutcome.REMAINING
        self._settle(item, outcome, decision.reason, ran,
                     attempts=len(journal.attempts))
        if decision.final:
            self._emit(EventKind.FINAL, item.item_id, attempt.attempt, attempt.status,
                       outcome=outcome, detail=decision.reason)

    def _finished_attempt(self, done: Completion) -> Attempt:
        """What run_item returned, checked against the contract; a failure to honour it is
        recorded as an infra error rather than trusted."""
        number = done.ticket.attempt
        failed = done.ticket.begun.model_copy(update={"status": RunStatus.INFRA_ERROR,
                                                      "finished_at": utcnow()})
        if done.error is not None:
            text = done.error_text or repr(done.error)
            failed.signature = classify_text(text, "run_item") or unclassified(text, "run_item")
            return failed
        attempt = done.attempt
        if not isinstance(attempt, Attempt):
            failed.signature = unclassified(
                f"run_item returned {type(attempt).__name__}, not an Attempt", "batch")
            return failed
        update: dict = {"attempt": number}
        if attempt.status == RunStatus.RUNNING:
            update.update(status=RunStatus.INFRA_ERROR, signature=unclassified(
                "run_item returned an attempt still marked running", "batch"))
        if attempt.finished_at is None:
            update["finished_at"] = utcnow()
        return attempt.model_copy(update=update)

    # ------------------------------------------------------------------ bookkeeping

    def _settle(self, item: PlanItem, outcome: ItemOutcome, detail: str, ran: int,
                attempts: int | None = None) -> None:
        old = self._results[item.item_id]
        self._results[item.item_id] = ItemResult(
            item_id=item.item_id, outcome=outcome, ran=ran, detail=detail,
            attempts=old.attempts if attempts is None else attempts)

    def _emit(self, kind: EventKind, item_id: str, attempt: int | None = None,
              status: RunStatus | None = None, *, outcome: ItemOutcome | None = None,
              detail: str = "", gpu_ids: tuple[str, ...] = ()) -> None:
        if self.observer is not None:
            self.observer.event(BatchEvent(kind=kind, item_id=item_id, attempt=attempt,
                                           status=status, outcome=outcome, detail=detail,
                                           gpu_ids=gpu_ids))


def _outcome(decision: Decision) -> ItemOutcome:
    if decision.succeeded:
        return ItemOutcome.SUCCEEDED
    return ItemOutcome.FAILED if decision.final else ItemOutcome.REMAINING
