"""Starting or resuming a run: run ids, the run's plan and policy on disk, and run_item factories.

`isobench run` calls these, whichever the backend. A run id names one experiment:
`--resume` continues it (same journals, more attempts), a fresh invocation gets a new one.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Callable

from executor.runs.batch.base import BatchContext, RunItem
from executor.core.policy import RetryPolicy
from executor.core.errors import UserInputError
from executor.core.journal import write_json_atomic
from executor.records.state import (JOURNAL_NAME, RunKey, StateLayout, merge_run_plan, new_run_id,
                            path_component)
from executor.core.task import Plan

RunItemFactory = Callable[[BatchContext], RunItem]


def latest_run_id(layout: StateLayout, task: str, agent: str, model: str) -> str | None:
    """The newest run of this task/agent/model (run ids sort by time), or None."""
    parent = layout.run_dir(RunKey(task=task, agent=agent, model=model, run_id="x")).parent
    runs = sorted(p.name for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []
    return runs[-1] if runs else None


def prepare_run(layout: StateLayout, key: RunKey, plan: Plan, policy: RetryPolicy, *,
                resume: bool, seed: int | None = None) -> BatchContext:
    """Check that resume/new matches what is on disk, then record the run's plan and policy."""
    run_dir = layout.run_dir(key)
    started = run_dir.is_dir() and any(run_dir.glob(f"*/{JOURNAL_NAME}"))
    if started and not resume:
        raise UserInputError(f"run {key.run_id} already has journals in {run_dir}; pass "
                             f"--resume to continue it or choose another --run-id")
    merge_run_plan(layout.plan_path(key), plan)
    write_json_atomic(layout.policy_path(key), policy)
    return BatchContext(state=layout, run=key, repo=plan.repo, policy=policy, seed=seed)


def resolve_run_key(layout: StateLayout, plan: Plan, agent: str, model: str,
                    run_id: str | None, resume: bool) -> RunKey:
    """`--resume` without `--run-id` continues the newest run of this task/agent/model."""
    if run_id is None and resume:
        run_id = latest_run_id(layout, plan.task_id, agent, model)
        if run_id is None:
            raise UserInputError(f"--resume: no earlier run of {plan.task_id}/{agent}/{model} "
                                 f"under {layout.runs}")
    if run_id is not None and path_component(run_id) != run_id:
        raise UserInputError(f"--run-id {run_id!r}: use letters, digits, '.', '_' and '-'")
    return RunKey(task=plan.task_id, agent=agent, model=model, run_id=run_id or new_run_id())


def load_run_item_factory(spec: str) -> RunItemFactory:
    """`package.module:name` or `path/to/file.py:name`, naming `name(ctx) -> run_item`."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise UserInputError(f"--run-item {spec!r}: expected MODULE:NAME or FILE.py:NAME")
    try:
        if target.endswith(".py"):
            path = Path(target)
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            if module_spec is None or module_spec.loader is None or not path.is_file():
                raise UserInputError(f"--run-item: no such file {path}")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            # Like `python -m`, find the caller's own modules: the console script does not put
            # the working directory on sys.path.
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(target)
    except ImportError as exc:
        raise UserInputError(f"--run-item {spec!r}: {exc}") from exc
    factory = getattr(module, name, None)
    if not callable(factory):
        raise UserInputError(f"--run-item {spec!r}: {name} is not a callable in {target}")
    return factory
