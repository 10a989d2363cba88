"""The batch contracts: what a backend runs (run_item), what it is told (BatchContext), what it
says while running (BatchEvent) and what it returns (BatchSummary).

run_item contract
-----------------
``run_item(item, attempt_number, gpu_ids, cancel) -> Attempt``

- Called with the item lock held and attempt `attempt_number` already appended to the item's
  journal as `running` by the batch layer. It may update that attempt in the journal as it goes
  (phases, usage) through `state.ItemJournal`; it must not append other attempts.
- Returns the finished `Attempt` (number `attempt_number`). If the journal already holds that
  attempt finished, the journal's copy wins; otherwise the batch layer records the returned one.
- Raising is allowed: the batch layer records an `infra_error` attempt named from the exception
  (classified, or `unclassified`: never retried).
- `cancel` is set when the user presses Ctrl-C: stop promptly and return an attempt with status
  `interrupted`. A run_item that ignores it is abandoned on a second Ctrl-C; its journal then
  says `running`, which the next controller closes as interrupted.
- `gpu_ids` are the device ids of the lease ([] on a CPU slot); under Ray, the ids Ray gave
  the task (`ray.get_gpu_ids()`). The attempt records them (`Attempt.gpu_ids`).
- The default run_item is the one-commit pipeline (batch.commit_item), which fills in the
  journaled attempt itself (pipeline.AttemptSlot): one record per attempt, one writer at a
  time (the item lock).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, Sequence

from pydantic import BaseModel, Field

from executor.runs.batch.order import Priority
from executor.core.policy import RetryPolicy
from executor.runs.cancel import Cancel  # noqa: F401 (re-exported: batch code imports it from here)
from executor.core.journal import Attempt, RunStatus
from executor.records.state import RunKey, StateLayout
from executor.core.task import PlanItem


class RunItem(Protocol):
    """One attempt at one item (see the module docstring for the contract)."""

    def __call__(self, item: PlanItem, attempt_number: int, gpu_ids: list[str],
                 cancel: Cancel) -> Attempt: ...


class BatchContext(BaseModel):
    """Where a batch writes, which run it is, and the policy it follows."""

    state: StateLayout = Field(description="The state directory.")
    run: RunKey = Field(description="Task, agent, model and run id of this batch.")
    repo: str = Field(default="", description="The plan's repository (for plans written back).")
    policy: RetryPolicy = Field(default_factory=RetryPolicy, description="Retry and resume rules.")
    seed: int | None = Field(default=None, description="Seeds the backoff jitter (tests, sims).")


class ItemOutcome(StrEnum):
    """Where an item stands when the batch returns."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # final failure: permanent, or retries exhausted
    REMAINING = "remaining"  # not final: interrupted, never started, or held elsewhere


class EventKind(StrEnum):
    """Things the dispatcher tells observers."""

    STARTED = "started"  # an attempt began on a lease
    FINISHED = "finished"  # an attempt ended (any status)
    RETRY = "retry"  # the item goes back to the queue after a backoff
    FINAL = "final"  # the item reached a final outcome in this invocation
    SKIPPED = "skipped"  # already final before this invocation, or held by another controller


class BatchEvent(BaseModel):
    """One line of a batch's life, for progress displays and logs."""

    kind: EventKind = Field(description="What happened.")
    item_id: str = Field(description="The plan item it happened to.")
    attempt: int | None = Field(default=None, description="Attempt number, where one is meant.")
    status: RunStatus | None = Field(default=None, description="The attempt's status.")
    outcome: ItemOutcome | None = Field(default=None,
                                        description="Item standing, on final/skipped events.")
    detail: str = Field(default="", description="Signature, reason or holder, for humans.")
    gpu_ids: tuple[str, ...] = Field(default=(), description="Devices of the attempt's lease.")


class Observer(Protocol):
    """Receives events on the dispatcher's thread, in order."""

    def event(self, event: BatchEvent) -> None: ...


class ItemResult(BaseModel):
    """One item's standing at the end of this invocation."""

    item_id: str = Field(description="The plan item.")
    outcome: ItemOutcome = Field(description="Succeeded, failed (final) or remaining.")
    attempts: int = Field(description="Attempts in the journal (all invocations).")
    ran: int = Field(default=0, description="Attempts this invocation ran.")
    detail: str = Field(default="", description="Decision reason or lock holder.")


class BatchSummary(BaseModel):
    """What a backend returns."""

    run: RunKey = Field(description="The run this invocation worked on.")
    items: list[ItemResult] = Field(description="One result per plan item, in plan order.")
    interrupted: bool = Field(description="Ctrl-C (cancel) stopped the batch early.")
    wall_s: float = Field(default=0.0, description="Clock time the batch took.")

    def count(self, outcome: ItemOutcome) -> int:
        return sum(1 for i in self.items if i.outcome == outcome)

    @property
    def exit_code(self) -> int:
        """130 interrupted; 0 every item succeeded; 1 otherwise (failed or left)."""
        if self.interrupted:
            return 130
        return 0 if all(i.outcome == ItemOutcome.SUCCEEDED for i in self.items) else 1


class Backend(Protocol):
    """Runs plan items through run_item until each is final, or until cancelled.

    `local` (threads + GPU leases on this host) and `ray` (one Ray task per attempt,
    `num_gpus` per item) implement it over the same Dispatcher; they differ only in how an
    attempt is executed and where its devices come from. (The ray backend takes the run_item
    *factory*, since it builds the run_item on the node where each task lands.) `priority` orders the items (lower
    first; default plan order), e.g. `order.longest_first(estimates)`.
    """

    name: str

    def run(self, items: Sequence[PlanItem], run_item: RunItem, ctx: BatchContext, *,
            cancel: Cancel | None = None, observer: Observer | None = None,
            priority: Priority | None = None) -> BatchSummary: ...
