"""The local backend with a real cheap run_item: leases, retries, permanent failures."""

from __future__ import annotations

import io
import threading

from rich.console import Console

from executor.runs.batch.base import BatchContext, BatchEvent, Cancel, EventKind, ItemOutcome
from executor.runs.batch.leases import GpuLeasePool, parse_gpus
from executor.runs.batch.local import LocalBackend, LocalOptions
from executor.core.policy import RetryPolicy
from executor.runs.batch.progress import BatchProgress
from executor.core.journal import RunStatus, load_journal
from executor.records.state import ItemLock, RunKey, StateLayout
from executor.core.task import PlanItem
from tests.unit.batch_items import scripted_attempt

ITEMS = [PlanItem(item_id=f"demo-{n:04d}", human=f"{n:07x}") for n in range(6)]
SCRIPT = {"demo-0002": ["rate_limit", "success"], "demo-0004": ["auth", "success"]}


def context(tmp_path, **policy) -> BatchContext:
    return BatchContext(state=StateLayout(root=tmp_path),
                        run=RunKey(task="demo", agent="scripted", model="none", run_id="r1"),
                        policy=RetryPolicy(backoff_base_s=0, **policy), seed=1)


class Recorder:
    """A run_item that follows SCRIPT, proves leases are exclusive, and counts executions."""

    def __init__(self):
        self.lock = threading.Lock()
        self.busy: set[str] = set()
        self.executions: list[tuple[str, int, tuple[str, ...]]] = []
        # The first two items meet here: if the backend ran them one after the other, the
        # barrier breaks (its timeout only guards against a hang; it is never the sync).
        self.barrier = threading.Barrier(2, timeout=60)

    def __call__(self, item, attempt_number, gpu_ids, cancel):
        with self.lock:
            assert not self.busy & set(gpu_ids), f"GPU {gpu_ids} leased twice"
            self.busy |= set(gpu_ids)
            self.executions.append((item.item_id, attempt_number, tuple(gpu_ids)))
        try:
            if item.item_id in ("demo-0000", "demo-0001"):
                self.barrier.wait()
            outcomes = SCRIPT.get(item.item_id, ["success"])
            return scripted_attempt(attempt_number, outcomes[attempt_number - 1])
        finally:
            with self.lock:
                self.busy -= set(gpu_ids)


class Events:
    def __init__(self):
        self.seen: list[BatchEvent] = []

    def event(self, event):
        self.seen.append(event)


def test_two_workers_six_items_retry_once_and_permanent_never(tmp_path):
    ctx = context(tmp_path)
    run_item, events = Recorder(), Events()
    backend = LocalBackend(LocalOptions(workers=2, gpu_ids=parse_gpus("0,1")))
    summary = backend.run(ITEMS, run_item, ctx, observer=events)

    outcomes = {r.item_id: r.outcome for r in summary.items}
    assert outcomes.pop("demo-0004") == ItemOutcome.FAILED
    assert set(outcomes.values()) == {ItemOutcome.SUCCEEDED}
    assert summary.exit_code == 1 and not summary.interrupted

    ran = [(i, n) for i, n, _ in run_item.executions]
    assert ran.count(("demo-0002", 1)) == ran.count(("demo-0002", 2)) == 1  # retried once
    assert [n for i, n in ran if i == "demo-0004"] == [1]  # permanent: never retried
    assert len(ran) == 7
    assert {g for *_, gpus in run_item.executions for g in gpus} == {"0", "1"}

    layout = ctx.state
    retried = load_journal(layout.journal_path(ctx.run, "demo-0002"))
    assert [a.status for a in retried.attempts] == [RunStatus.AGENT_ERROR, RunStatus.SUCCESS]
    assert retried.attempts[0].signature.name == "rate_limit"
    failed = load_journal(layout.journal_path(ctx.run, "demo-0004"))
    assert [a.signature.name for a in failed.attempts] == ["auth"]
    assert [e.item_id for e in events.seen if e.kind == EventKind.RETRY] == ["demo-0002"]

    # Every lock was released.
    for item in ITEMS:
        with ItemLock(layout.item_dir(ctx.run, item.item_id)):
            pass

    # A second invocation (resume) runs nothing: every item is final.
    again = Recorder()
    summary = backend.run(ITEMS, again, ctx)
    assert again.executions == []
    assert {r.ran for r in summary.items} == {0}


def test_item_held_by_another_controller_is_left_alone(tmp_path):
    ctx = context(tmp_path)
    other = ItemLock(ctx.state.item_dir(ctx.run, "demo-0003"))
    other.acquire()
    try:
        calls = []
        summary = LocalBackend(LocalOptions(workers=1)).run(
            ITEMS[2:4], lambda item, n, g, c: calls.append(item.item_id) or
            scripted_attempt(n, "success"), ctx)
    finally:
        other.release()
    assert calls == ["demo-0002"]
    held = next(r for r in summary.items if r.item_id == "demo-0003")
    assert held.outcome == ItemOutcome.REMAINING and held.detail.startswith("held by")


def test_run_item_exception_is_journaled_not_retried_blindly(tmp_path):
    ctx = context(tmp_path)

    def broken(item, n, gpu_ids, cancel):
        raise ValueError("bug in run_item")

    summary = LocalBackend(LocalOptions(workers=1)).run(ITEMS[:1], broken, ctx)
    journal = load_journal(ctx.state.journal_path(ctx.run, "demo-0000"))
    assert [a.status for a in journal.attempts] == [RunStatus.INFRA_ERROR]
    assert journal.attempts[0].signature.name == "unclassified"
    assert "bug in run_item" in journal.attempts[0].signature.evidence
    assert summary.items[0].outcome == ItemOutcome.FAILED


def test_cancel_before_start_runs_nothing(tmp_path):
    cancel = Cancel()
    cancel.set()
    summary = LocalBackend(LocalOptions(workers=2)).run(
        ITEMS, lambda *a: scripted_attempt(a[1], "success"), context(tmp_path), cancel=cancel)
    assert summary.interrupted and summary.exit_code == 130
    assert {r.outcome for r in summary.items} == {ItemOutcome.REMAINING}


def test_cpu_slots_and_gpu_groups():
    assert parse_gpus("none") == [] and parse_gpus("0, 1") == ["0", "1"]
    pool = GpuLeasePool(["0", "1", "2", "3", "4"], gpus_per_item=2)
    assert pool.size == 2
    a, b = pool.acquire(), pool.acquire()
    assert (a.gpu_ids, b.gpu_ids, pool.acquire()) == (("0", "1"), ("2", "3"), None)
    pool.release(a)
    assert pool.available() == 1
    cpu = GpuLeasePool([], cpu_slots=3)
    assert cpu.size == 3 and cpu.acquire().gpu_ids == ()


def test_progress_counts_done_running_failed_and_retries(tmp_path):
    out = io.StringIO()
    bar = BatchProgress(len(ITEMS), Console(file=out, width=120))
    with bar:
        LocalBackend(LocalOptions(workers=2)).run(
            ITEMS, lambda item, n, g, c: scripted_attempt(
                n, SCRIPT.get(item.item_id, ["success"])[n - 1]), context(tmp_path),
            observer=bar)
    assert (bar.done, bar.failed, bar.retries, bar.running) == (6, 1, 1, set())
    assert "demo-0002 attempt 1: rate_limit" in out.getvalue()
    assert "demo-0004 attempt 1: auth" in out.getvalue()
