"""The local backend: N worker threads on this host, each attempt on a GPU lease.

Workers are daemon threads pulling tickets from a queue; the dispatcher (the caller's thread)
does all bookkeeping. Daemon threads matter for the second Ctrl-C: the process may exit while a
run_item that ignores cancellation is still inside, and its journal honestly says `running`.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import sys
import threading
import time
from typing import Iterator, Sequence

from pydantic import BaseModel, Field

from executor.runs.batch.base import BatchContext, BatchSummary, Cancel, Observer, RunItem
from executor.runs.batch.dispatch import Completion, Dispatcher, Ticket, run_attempt
from executor.runs.batch.leases import GpuLeasePool
from executor.runs.batch.order import Priority
from executor.core.task import PlanItem

_WAKE = object()
_STOP = object()

# The kernel may deliver Ctrl-C's SIGINT to any thread; Python then only sets a flag, and the
# handler runs when the main thread next executes bytecode. A main thread blocked forever in a
# queue would never run it, so the dispatcher's wait wakes at least this often.
SIGNAL_LATENCY_S = 0.5


class ThreadExecutor:
    """A fixed pool of daemon worker threads pulling tickets from a queue."""

    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError("need at least one worker")
        self.capacity = workers
        self._todo: queue.SimpleQueue = queue.SimpleQueue()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"isobench-worker-{i}",
                                          daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while True:
            job = self._todo.get()
            if job is _STOP:
                return
            ticket, run_item, cancel = job
            self._done.put(run_attempt(run_item, ticket, cancel))

    def submit(self, ticket: Ticket, run_item: RunItem, cancel: Cancel) -> None:
        self._todo.put((ticket, run_item, cancel))

    def wait(self, timeout: float | None) -> list[Completion]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = SIGNAL_LATENCY_S if deadline is None else deadline - time.monotonic()
            try:
                first = self._done.get(timeout=max(0.0, min(left, SIGNAL_LATENCY_S)))
                break
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    return []
        got = [first]
        while True:  # drain what else is ready, without waiting
            try:
                got.append(self._done.get_nowait())
            except queue.Empty:
                break
        return [c for c in got if c is not _WAKE]

    def wake(self) -> None:
        self._done.put(_WAKE)

    def shutdown(self) -> None:
        for _ in self._threads:
            self._todo.put(_STOP)


class LocalOptions(BaseModel):
    """How the local backend spreads items over this host."""

    workers: int = Field(default=1, ge=1, description="Attempts running at once (at most).")
    gpu_ids: list[str] = Field(default_factory=list,
                               description="Devices to lease; empty means CPU slots.")
    gpus_per_item: int = Field(default=1, ge=1, description="Devices per running item.")


class LocalBackend:
    """Threads + GPU leases on one host."""

    name = "local"

    def __init__(self, options: LocalOptions):
        self.options = options

    def leases(self) -> GpuLeasePool:
        return GpuLeasePool(self.options.gpu_ids, gpus_per_item=self.options.gpus_per_item,
                            cpu_slots=self.options.workers)

    def run(self, items: Sequence[PlanItem], run_item: RunItem, ctx: BatchContext, *,
            cancel: Cancel | None = None, observer: Observer | None = None,
            priority: Priority | None = None) -> BatchSummary:
        leases = self.leases()
        workers = min(self.options.workers, leases.size)  # more threads than leases would idle
        dispatcher = Dispatcher(ctx, items, run_item, ThreadExecutor(workers), leases,
                                cancel=cancel, observer=observer, priority=priority)
        return dispatcher.run()


@contextlib.contextmanager
def sigint_cancels(cancel: Cancel, *, on_first=None) -> Iterator[None]:
    """First Ctrl-C: set `cancel` (no new items; running ones are asked to stop and are
    journaled `interrupted`). Second Ctrl-C: KeyboardInterrupt, abandoning what still runs.
    SIGTERM (a cluster scheduler, `docker stop`, systemd) is a first Ctrl-C: schedulers send it
    and wait a grace period before SIGKILL, time enough to stop cleanly.

    A handler rather than catching KeyboardInterrupt: the exception could land in the middle of
    the dispatcher's bookkeeping; the handler only sets a flag and wakes the dispatcher.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread; the caller cancels some other way
        return

    def handler(signum, frame):
        if cancel.is_set() and signum == signal.SIGINT:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        if not cancel.is_set() and on_first is not None:
            on_first()
        cancel.set()

    previous = signal.signal(signal.SIGINT, handler)
    previous_term = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)


def print_stopping() -> None:
    print("isobench: stopping: no new items; running ones finish as interrupted "
          "(Ctrl-C again abandons them)", file=sys.stderr)
