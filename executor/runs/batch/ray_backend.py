"""The Ray backend: one Ray task per item attempt, on whichever node has a free GPU.

The driver (`isobench run --backend ray`) runs the same Dispatcher as the local backend: it
owns the queue, the item locks, the journals and the retry policy; only attempts run elsewhere.
For attempt n of an item it submits a task that requests `gpus_per_item` GPUs and carries the
item's journal (attempt n already `running`) and the run_item *factory*, not a run_item: the
run_item is built where the task lands, over that node's own state dir, because in a
multi-node cluster the driver's filesystem is not the worker's. The task

  1. makes a node-local state dir and seeds the item's journal there (and removes the dirs of
     this node's earlier tasks whose worker died: a flock on each dir tells);
  2. takes its devices from `ray.get_gpu_ids()` and runs the run_item (the one-commit pipeline,
     with the Docker engine of that node), which fills in attempt n;
  3. returns attempt n and the item directory as a tar archive, and removes its dir.

The driver lands the archive in its own state dir (artifacts.land_item_archive: whole files, a
whole attempt dir), then the dispatcher records the attempt. A task whose worker process or
node dies comes back as a `ray.exceptions.*` error, named `ray_worker_lost` (class infra) by the
taxonomy: the policy retries it like any infra failure, so a lost node costs an attempt, never
an item. Ray's own task retries are off so that every try is in the journal. Ctrl-C sets a stop flag
(a small actor) that every task polls: the task sets its pipeline's cancel token, which removes
the item's sandboxes, and returns its `interrupted` attempt and files like any other; the driver
waits for that, so nodes clean up before the job ends. (Not `ray.cancel`: Ray reports a
cancelled task at once, and the job's end then kills workers mid-cleanup. A `ray.cancel` from
elsewhere still stops a task the same way, through its KeyboardInterrupt.)

Ray is imported here only: `pip install 'isobench[ray]'` on the driver and on every node.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from typing import Iterator, Sequence

import ray
import ray.exceptions
from pydantic import BaseModel, Field

from executor.runs.batch.artifacts import land_item_archive
from executor.runs.batch.base import BatchContext, BatchSummary, Observer
from executor.runs.batch.dispatch import Completion, Dispatcher, Ticket
from executor.runs.batch.leases import GpuLeasePool
from executor.runs.batch.node_attempt import (NODE_DIR_PREFIX, claim_node_dir,  # noqa: F401
                                             run_on_node, sweep_node_dirs)
from executor.runs.batch.order import Priority
from executor.runs.batch.runner import RunItemFactory
from executor.runs.cancel import Cancel
from executor.core.errors import INTERRUPTED, UserInputError, signature
from executor.core.journal import Attempt, RunStatus, utcnow
from executor.records.state import PATCH_NAME
from executor.engine.chosen import ENGINE_ENV
from executor.core.task import PlanItem

# How often the driver's main thread comes back from ray.wait to let a pending Ctrl-C run.
SIGNAL_LATENCY_S = 0.5
# How often a task looks at the batch's stop flag (and lets a pending KeyboardInterrupt run).
STOP_POLL_S = 1.0


class RayOptions(BaseModel):
    """Where the cluster is and what each attempt asks of it."""

    address: str | None = Field(default=None,
                                description="Cluster address: 'auto', HOST:6379; None: "
                                            "$RAY_ADDRESS or a new Ray instance on this host.")
    gpus_per_item: int = Field(default=1, ge=1, description="num_gpus of each attempt's task.")
    cpus_per_item: float = Field(default=1.0, ge=0, description="num_cpus of each task.")
    workers: int | None = Field(default=None, ge=1,
                                description="Attempts in flight at most; default: the "
                                            "cluster's GPUs // gpus_per_item at start.")
    node_state_dir: str | None = Field(default=None,
                                       description="Parent of each task's node-local state "
                                                   "dir (default: the node's temp dir).")
    log_to_driver: bool = Field(default=False,
                                description="Forward the tasks' stderr (with -v, the items' "
                                            "log lines) to the driver's.")


# --------------------------------------------------------------------------- on the worker


class StopFlag:
    """The batch's Ctrl-C, as tasks on any node can see it (a Ray actor, one per batch)."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


def run_attempt_task(factory: RunItemFactory, ctx_json: str, item_json: str, number: int,
                     journal_json: str, patch: bytes | None, node_state_dir: str | None,
                     stop: "ray.actor.ActorHandle") -> tuple[str, bytes]:
    """The body of one Ray task (see the module docstring): returns (attempt JSON, archive).
    `patch` is the item's model_patch.diff so far, which a retry may benchmark again."""
    with _sigint_raises():
        return _run_attempt(factory, BatchContext.model_validate_json(ctx_json),
                            PlanItem.model_validate_json(item_json), number, journal_json,
                            patch, node_state_dir, stop)


def _run_attempt(factory: RunItemFactory, ctx: BatchContext, item: PlanItem, number: int,
                 journal_json: str, patch: bytes | None, node_state_dir: str | None,
                 stop: "ray.actor.ActorHandle") -> tuple[str, bytes]:
    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    recorded, archive = run_on_node(
        factory, ctx, item, number, journal_json, patch, node_state_dir, gpu_ids,
        lambda run: _interruptible(run, item.item_id, lambda: _stop_requested(stop)))
    return recorded.model_dump_json(), archive


@contextlib.contextmanager
def _sigint_raises() -> Iterator[None]:
    """Ray's cancel is `_thread.interrupt_main()`, which does nothing while SIGINT is ignored;
    workers inherit an ignored SIGINT from a `ray start ... &` in a script."""
    restore = None
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        restore = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if restore is not None:
            signal.signal(signal.SIGINT, restore)


def _stop_requested(stop: "ray.actor.ActorHandle") -> bool:
    try:
        return bool(ray.get(stop.is_set.remote(), timeout=STOP_POLL_S))
    except (ray.exceptions.RayError, TimeoutError):
        return False  # the flag's node is gone or slow: carry on; a later poll may answer


def _interruptible(run, name: str, stop_requested):
    """`run(cancel)` on a thread, while this (the task's main) thread waits in short joins and
    sets `cancel` when the batch's stop flag is up, which (as after Ctrl-C on a local batch)
    removes the item's sandboxes; the pipeline journals the attempt interrupted and returns.

    The main thread also takes Ray's KeyboardInterrupt (`ray.cancel` from elsewhere), which Ray
    raises only between bytecodes: a main thread blocked in a Docker stream read never would."""
    cancel = Cancel()
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["value"] = run(cancel)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the task's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=work, name=f"isobench-{name}", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(STOP_POLL_S)
            if thread.is_alive() and not cancel.is_set() and stop_requested():
                cancel.set()
    except KeyboardInterrupt:
        cancel.set()
        thread.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# --------------------------------------------------------------------------- on the driver


class RayExecutor:
    """Submits attempts as Ray tasks and turns finished tasks into completions."""

    def __init__(self, ctx: BatchContext, factory: RunItemFactory, options: RayOptions,
                 capacity: int):
        self.ctx, self.factory, self.options, self.capacity = ctx, factory, options, capacity
        # the run's container engine (--engine) on every node: the driver's choice, not the
        # node's environment
        self._task = ray.remote(run_attempt_task).options(
            num_gpus=options.gpus_per_item, num_cpus=options.cpus_per_item, max_retries=0,
            name="isobench-attempt",
            runtime_env={"env_vars": {ENGINE_ENV: os.environ.get(ENGINE_ENV) or "docker"}})
        self._in_flight: dict[ray.ObjectRef, Ticket] = {}
        self._woken = threading.Event()
        self._cancel: Cancel | None = None
        self._stop_sent = False
        # num_cpus=0: it must never wait for a slot that attempts hold.
        self._stop = ray.remote(num_cpus=0)(StopFlag).remote()

    def submit(self, ticket: Ticket, run_item, cancel: Cancel) -> None:
        # `run_item` is the driver's placeholder: the task builds its own where it lands.
        patch_file = ticket.journal.path.parent / PATCH_NAME
        ref = self._task.remote(self.factory, self.ctx.model_dump_json(),
                                ticket.item.model_dump_json(), ticket.attempt,
                                ticket.journal.path.read_text(),
                                patch_file.read_bytes() if patch_file.is_file() else None,
                                self.options.node_state_dir, self._stop)
        self._in_flight[ref] = ticket
        self._cancel = cancel  # the dispatcher's one token (it already wakes us when set)

    def _cancel_if_asked(self) -> None:
        """Raise the stop flag once the batch is cancelled. Called from the wait loop, never
        from the cancel callback: that runs in the SIGINT handler, inside whatever Ray call the
        main thread was in, and a Ray call made there does not return."""
        if self._stop_sent or self._cancel is None or not self._cancel.is_set():
            return
        ray.get(self._stop.set.remote())
        self._stop_sent = True

    def wait(self, timeout: float | None) -> list[Completion]:
        deadline = None if timeout is None else time.monotonic() + timeout
        self._cancel_if_asked()
        while not self._woken.is_set():
            self._cancel_if_asked()
            step = SIGNAL_LATENCY_S if deadline is None else \
                max(0.0, min(SIGNAL_LATENCY_S, deadline - time.monotonic()))
            if self._in_flight:
                refs = list(self._in_flight)
                first, _ = ray.wait(refs, num_returns=1, timeout=step, fetch_local=False)
                if first:  # and whatever else is ready too, without waiting
                    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0,
                                        fetch_local=False)
                    return [self._complete(ref) for ref in ready or first]
            else:
                self._woken.wait(step)
            if deadline is not None and time.monotonic() >= deadline:
                return []
        self._woken.clear()
        return []

    def wake(self) -> None:
        self._woken.set()

    def shutdown(self) -> None:
        for ref in list(self._in_flight):  # only after Ctrl-C abandons them, or a crash
            ray.cancel(ref)

    def _complete(self, ref: ray.ObjectRef) -> Completion:
        ticket = self._in_flight.pop(ref)
        try:
            attempt_json, archive = ray.get(ref)
        except (ray.exceptions.TaskCancelledError, KeyboardInterrupt):
            return self._interrupted(ticket)
        except ray.exceptions.RayTaskError as exc:  # the task's own code raised
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            if isinstance(cause, (KeyboardInterrupt, ray.exceptions.TaskCancelledError)):
                return self._interrupted(ticket)
            return Completion(ticket, error=cause,
                              error_text=f"{type(cause).__name__}: {cause}".strip())
        except ray.exceptions.RayError as exc:  # worker crashed, node died, object lost
            first = str(exc).strip().splitlines()[:1]
            return Completion(ticket, error=exc,
                              error_text=f"{type(exc).__name__}: {first[0] if first else ''}")
        land_item_archive(archive, self.ctx.state.item_dir(self.ctx.run, ticket.item.item_id))
        return Completion(ticket, attempt=Attempt.model_validate_json(attempt_json))

    def _interrupted(self, ticket: Ticket) -> Completion:
        return Completion(ticket, attempt=ticket.begun.model_copy(update={
            "status": RunStatus.INTERRUPTED, "finished_at": utcnow(),
            "signature": signature(INTERRUPTED, "ray.cancel", "batch")}))


def _runs_remotely(*_args) -> Attempt:
    raise AssertionError("the Ray backend builds run_items inside its tasks")


def cluster_capacity(options: RayOptions) -> int:
    """Attempts that can run at once: --workers, else whole GPU groups in the cluster now."""
    if options.workers:
        return options.workers
    gpus = ray.cluster_resources().get("GPU", 0.0)
    slots = int(gpus // options.gpus_per_item)
    if slots < 1:
        raise UserInputError(
            f"the Ray cluster has {gpus:g} GPU(s), fewer than --gpus-per-item "
            f"{options.gpus_per_item}; start nodes with `ray start --num-gpus N` (logical GPUs "
            f"work on hosts without one), or give --workers")
    return slots


class RayBackend:
    """One Ray task per attempt; the dispatcher stays on the driver."""

    name = "ray"

    def __init__(self, options: RayOptions):
        self.options = options

    def run(self, items: Sequence[PlanItem], factory: RunItemFactory, ctx: BatchContext, *,
            cancel: Cancel | None = None, observer: Observer | None = None,
            priority: Priority | None = None) -> BatchSummary:
        """Like LocalBackend.run, but takes the run_item *factory* (it runs on the nodes)."""
        try:
            ray.init(address=self.options.address, log_to_driver=self.options.log_to_driver,
                     logging_level=logging.WARNING, configure_logging=False)
        except ConnectionError as exc:
            raise UserInputError(f"cannot reach the Ray cluster at "
                                 f"{self.options.address or '$RAY_ADDRESS'}: {exc}") from exc
        try:
            capacity = cluster_capacity(self.options)
            executor = RayExecutor(ctx, factory, self.options, capacity)
            leases = GpuLeasePool([], cpu_slots=capacity)  # Ray picks the devices
            return Dispatcher(ctx, items, _runs_remotely, executor, leases, cancel=cancel,
                              observer=observer, priority=priority).run()
        finally:
            ray.shutdown()
