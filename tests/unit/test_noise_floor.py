"""A/A sampling (--aa-sample), the minimum detectable effect and the run's noise floor."""

from __future__ import annotations

import json
import math

import pytest
from rich.console import Console

from executor.runs.batch.commit_item import CommitItemSpec
from executor.parts.bench.noise import (aa_sample, item_noise_floor, minimum_detectable_effect,
                                  run_noise_floor)
from executor.cli.noise_floor import finish_noise_floor, plan_aa_controls, sample_seed
from executor.runs.pipeline import RunOptions
from executor.records.state import NOISE_FLOOR_NAME, RunKey, StateLayout
from executor.views.status import build_report
from executor.views.status_view import render_terminal
from executor.core.task import Plan, PlanItem

ITEMS = [f"demo-{n:04d}" for n in range(20)]


def test_a_fraction_is_rounded_up_and_a_count_is_capped():
    assert len(aa_sample(ITEMS, 0.1, seed=1)) == 2
    assert len(aa_sample(ITEMS, 0.01, seed=1)) == 1  # any fraction: at least one control
    assert len(aa_sample(ITEMS, 3, seed=1)) == 3
    assert aa_sample(ITEMS, 50, seed=1) == ITEMS
    assert aa_sample(ITEMS, 0, seed=1) == []


def test_the_sample_is_seeded_in_plan_order_and_independent_of_item_order():
    first = aa_sample(ITEMS, 5, seed=7)
    assert first == aa_sample(ITEMS, 5, seed=7) == [i for i in ITEMS if i in first]
    assert set(aa_sample(list(reversed(ITEMS)), 5, seed=7)) == set(first)
    assert {tuple(aa_sample(ITEMS, 5, seed=s)) for s in range(10)} != {tuple(first)}


def test_a_run_id_gives_a_stable_seed_and_seed_wins():
    key = RunKey(task="demo", agent="replay", model="none", run_id="r1")
    assert sample_seed(key, None) == sample_seed(key, None) != sample_seed(
        key.model_copy(update={"run_id": "r2"}), None)
    assert sample_seed(key, 5) == 5


def test_mde_from_the_aa_interval_half_width():
    # half-width h = ln(1.05) at 95%: MDE = exp(h (1.95996 + 0.84162) / 1.95996) - 1
    h = math.log(1.05)
    expected = math.exp(h * (1.959964 + 0.841621) / 1.959964) - 1
    assert minimum_detectable_effect(1 / 1.05, 1.05, 0.05, 0.02) == pytest.approx(expected,
                                                                                  rel=1e-5)
    assert minimum_detectable_effect(0.999, 1.001, 0.05, 0.02) == 0.02  # never below margin
    assert minimum_detectable_effect(None, None, 0.05, 0.02) is None


def aa_analysis(verdict: str, low: float, high: float) -> dict:
    return {"comparisons": {"base2/base": {
        "verdict": verdict, "alpha": 0.05, "min_effect": 0.02,
        "comparison": {"speedup": (low * high) ** 0.5, "ci_low": low, "ci_high": high,
                       "n_candidate": 10, "n_baseline": 10}}}}


def test_item_and_run_noise_floor():
    floor = item_noise_floor(aa_analysis("regressed", 0.95, 0.99))
    assert floor.false_change and floor.trials_per_variant == 10 and floor.mde > 0.02
    results = {"a": {"noise_floor": item_noise_floor(aa_analysis("no_change", 0.99, 1.01))
                     .model_dump()},
               "b": {"noise_floor": floor.model_dump()},
               "c": {"noise_floor": None}, "d": {}}
    summary = run_noise_floor(results, sampled=["a", "b"])
    assert (summary.aa_items, summary.false_changes, summary.false_change_rate) == (2, 1, 0.5)
    assert summary.rate_ci_high == pytest.approx(0.9874, abs=1e-4)  # Clopper-Pearson 1 of 2
    assert summary.mde_max == floor.mde and summary.mde_median < floor.mde


def test_aa_sample_marks_items_records_them_and_status_prints_the_floor(tmp_path):
    layout = StateLayout(root=tmp_path)
    key = RunKey(task="demo", agent="replay", model="none", run_id="r1")
    plan = Plan(task_id="demo", repo="/x", items=[PlanItem(item_id=i, human="a" * 40)
                                                   for i in ITEMS[:4]])
    spec = CommitItemSpec(agent="replay", run=RunOptions(state_dir=tmp_path, run_id="r1"))
    marked = plan_aa_controls(spec, layout, key, plan, 0.5, seed=3)
    assert len(marked.aa_items) == 2
    recorded = json.loads(layout.noise_floor_path(key).read_text())
    assert recorded["sampled"] == marked.aa_items and recorded["aa_items"] == 0
    # a resume without --aa-sample keeps the run's sample
    assert plan_aa_controls(spec, layout, key, plan, 0, seed=None).aa_items == marked.aa_items

    run_dir = layout.run_dir(key)
    (run_dir / "plan.json").write_text(plan.model_dump_json())
    for item, verdict in zip(marked.aa_items, ("no_change", "improved")):
        (run_dir / item).mkdir()
        floor = item_noise_floor(aa_analysis(verdict, 0.98, 1.02 if verdict == "no_change"
                                             else 1.06))
        (run_dir / item / "results.json").write_text(json.dumps(
            {"noise_floor": floor.model_dump()}))
    summary = finish_noise_floor(layout, key)
    assert (summary.aa_items, summary.false_changes) == (2, 1)
    assert json.loads((run_dir / NOISE_FLOOR_NAME).read_text())["false_changes"] == 1

    report = build_report(tmp_path)
    assert report.runs[0].noise_floor.aa_items == 2
    console = Console(record=True, width=200)
    render_terminal(report, console)
    assert "noise floor: 1 false change(s) in 2 A/A control(s) (50%" in console.export_text()


def test_a_run_without_aa_controls_writes_no_noise_floor(tmp_path):
    layout = StateLayout(root=tmp_path)
    key = RunKey(task="demo", agent="replay", model="none", run_id="r1")
    (layout.run_dir(key) / "item").mkdir(parents=True)
    (layout.run_dir(key) / "item" / "results.json").write_text("{}")
    assert finish_noise_floor(layout, key) is None
    assert not layout.noise_floor_path(key).exists()
