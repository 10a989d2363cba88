"""The patches of the runs in a state directory as predictions (`isobench export-predictions`).

An item's patch is the one its state rests on, found the way `status` and `report` find it:
isobench's item directory; for ISO-Bench, the directory of the attempt that finished it. By
default only done items are exported (their patch is the agent's finished work); `everything`
adds every other non-empty patch.
"""

from __future__ import annotations

from pathlib import Path

from executor.records.predictions import Prediction
from executor.views.report.build import evidence_dir, latest_file
from executor.records.state import PATCH_NAME
from executor.views.status import by_plan_item, read_runs, summarize_run
from executor.core.task import Plan


def export_predictions(state: Path, *, run_ids: tuple[str, ...] = (), plan: Plan | None = None,
                       everything: bool = False) -> tuple[list[Prediction], list[str]]:
    """(predictions, notes on items skipped) for the selected runs."""
    found: list[Prediction] = []
    notes: list[str] = []
    for run in read_runs(state, plan=plan):
        task, agent, model, run_id = run.names
        if run_ids and not {run_id, f"{task}/{agent}/{model}"} & set(run_ids):
            continue
        plan_used = plan if plan and plan.task_id == task else run.plan
        status = summarize_run(run, plan=plan_used)
        items = (by_plan_item(run.items, plan_used) if plan_used
                 else {i.journal.item_id: i for i in run.items})
        for item_status in status.items:
            item = items.get(item_status.item_id)
            if item is None or (item_status.state != "succeeded" and not everything):
                continue
            where = evidence_dir(item, item_status)
            patch = latest_file(where, PATCH_NAME) if where else None
            data = patch.read_bytes() if patch else b""
            if not data.strip():
                notes.append(f"{item_status.item_id}: no patch")
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                notes.append(f"{item_status.item_id}: patch is not UTF-8 (JSON cannot carry it "
                             "byte for byte)")
                continue
            found.append(Prediction(
                instance_id=item_status.item_id, model_patch=text,
                model_name_or_path=agent if model in ("none", "default") else f"{agent}/{model}",
                human_commit=item.journal.commits.get("human") or item_status.plan_item.human
                or None))
    return found, notes
