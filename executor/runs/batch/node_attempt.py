"""One attempt on a cluster node (a Ray task, a Slurm job): what every remote backend does
where the attempt lands.

The node works in a fresh node-local state dir, never in the controller's: the controller's
journal has one writer (its dispatcher) and its item lock is the controller's flock. The node

  1. removes the node-local dirs of earlier attempts whose process died (a flock on each dir
     tells), then claims its own;
  2. seeds the item's journal there (attempt n already `running`) and the patch so far;
  3. reaps sandboxes that dead processes of this node left (kill -9, OOM, a lost job);
  4. runs the run_item, which fills in attempt n;
  5. returns attempt n and the item directory as a tar archive, and removes its dir.

The controller lands the archive (artifacts.land_item_archive) and records the attempt.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from executor.core.journal import Attempt, Journal, load_journal, write_bytes_atomic
from executor.core.task import PlanItem
from executor.engine.sandbox import reap_orphans
from executor.records.state import (
    PATCH_NAME,
    ItemLock,
    LockHeld,
    LockHolder,
    StateLayout,
    save_journal,
)
from executor.runs.batch.artifacts import pack_item_dir
from executor.runs.batch.base import BatchContext, RunItem
from executor.runs.cancel import Cancel

NODE_DIR_PREFIX = "isobench-node-"

# run(run_item, cancel-aware wrapper) -> Attempt: how the backend calls the run_item (Ray on a
# thread it can interrupt; Slurm with a SIGTERM handler that sets the cancel token).
Runner = Callable[[Callable[[Cancel], Attempt]], Attempt]


def claim_node_dir(parent: str | None) -> tuple[Path, ItemLock]:
    """A fresh node-local state dir, locked by this process for the attempt's lifetime. Made
    under a hidden name and renamed once locked, so a sweeper never sees it unlocked."""
    parent_dir = Path(parent or tempfile.gettempdir())
    parent_dir.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{NODE_DIR_PREFIX}", dir=parent_dir))
    lock = ItemLock(new)
    lock.acquire(LockHolder.me(purpose="node attempt"))
    root = parent_dir / new.name[1:]
    os.rename(new, root)  # the flock lives on the lock file's inode: it moves along
    return root, lock


def sweep_node_dirs(parent: str | None) -> list[Path]:
    """Remove node-local dirs whose attempt's process died (kill -9, OOM, a crash): their lock
    is free, since the kernel drops a flock with its holder."""
    removed = []
    for root in Path(parent or tempfile.gettempdir()).glob(f"{NODE_DIR_PREFIX}*"):
        lock = ItemLock(root)
        try:
            lock.acquire()
        except (LockHeld, OSError):
            continue  # a live attempt's, or gone meanwhile
        lock.release()
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed


def run_on_node(build: Callable[[BatchContext], RunItem], ctx: BatchContext, item: PlanItem,
                number: int, journal_json: str, patch: bytes | None,
                node_state_dir: str | None, gpu_ids: list[str], runner: Runner
                ) -> tuple[Attempt, bytes]:
    """Steps 1-5 of the module docstring: (attempt n as the run_item left it, item archive)."""
    sweep_node_dirs(node_state_dir)
    root, lock = claim_node_dir(node_state_dir)
    try:
        local = ctx.model_copy(update={"state": StateLayout(root=root)})
        journal_path = local.state.journal_path(ctx.run, item.item_id)
        save_journal(journal_path, Journal.model_validate_json(journal_json))
        if patch is not None:
            write_bytes_atomic(journal_path.parent / PATCH_NAME, patch)
        reap_orphans()  # sandboxes of this node's earlier attempts that died
        returned = runner(lambda cancel: build(local)(item, number, gpu_ids, cancel))
        # As the dispatcher would: a run_item that journaled its attempt is believed there.
        recorded = next((a for a in load_journal(journal_path).attempts
                         if a.attempt == number and a.finished), returned)
        if not recorded.gpu_ids:
            recorded = recorded.model_copy(update={"gpu_ids": gpu_ids})
        return recorded, pack_item_dir(local.state.item_dir(ctx.run, item.item_id))
    finally:
        shutil.rmtree(root, ignore_errors=True)
        lock.release()
