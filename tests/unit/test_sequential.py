"""The stopping rule: alpha spending (known answers), the looks, and measure()'s loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from executor.parts.bench.measure import measure
from executor.parts.bench.results import TrialRecord
from executor.parts.bench.schedule import TrialSpec
from executor.parts.bench.sequential import SequentialDesign, Spending, alpha_spent
from executor.parts.bench.trial import new_record


# --------------------------------------------------------------------------- alpha spending


def test_obrien_fleming_type_spending_matches_the_published_values():
    # Lan-DeMets O'Brien-Fleming-type, two-sided alpha 0.05: 0.0056 spent at half the
    # information, 0.00009 at a quarter (Lan & DeMets 1983; Jennison & Turnbull table 7.6).
    assert alpha_spent(0.5, 0.05, Spending.OBF) == pytest.approx(0.00557, abs=1e-5)
    assert alpha_spent(0.25, 0.05, Spending.OBF) == pytest.approx(8.87e-5, rel=0.01)
    assert alpha_spent(1.0, 0.05, Spending.OBF) == 0.05


def test_pocock_type_spending_matches_the_published_values():
    # alpha ln(1 + (e - 1) t): 0.0310 at t = 0.5 for alpha 0.05
    assert alpha_spent(0.5, 0.05, Spending.POCOCK) == pytest.approx(0.03101, abs=1e-5)
    assert alpha_spent(0.2, 0.05) == pytest.approx(0.05 * math.log(1 + (math.e - 1) * 0.2))


def test_spending_is_increasing_and_rejects_fractions_outside_0_1():
    for kind in Spending:
        spent = [alpha_spent(t / 10, 0.05, kind, 10, t) for t in range(1, 11)]
        assert spent == sorted(spent) and spent[-1] == 0.05
    with pytest.raises(ValueError):
        alpha_spent(0, 0.05)
    with pytest.raises(ValueError):
        alpha_spent(1.2, 0.05)


def test_default_design_looks_and_levels_sum_to_alpha():
    design = SequentialDesign()
    assert design.looks() == [5, 10, 15, 20, 25, 30]
    levels = design.levels()
    assert sum(levels) == pytest.approx(0.05)
    assert levels == sorted(levels, reverse=True)  # Pocock-type spends early
    # the first look must allow a 5-vs-5 Mann-Whitney decision: 1/252 per side
    assert levels[0] / 2 > 1 / 252


def test_looks_end_at_max_trials_and_fixed_is_one_look_at_full_alpha():
    assert SequentialDesign(min_trials=5, look_every=5, max_trials=12).looks() == [5, 10, 12]
    fixed = SequentialDesign.fixed(20, 0.05)
    assert fixed.looks() == [20] and fixed.levels() == [0.05]
    bonferroni = SequentialDesign(max_trials=20, spending="bonferroni")
    assert bonferroni.levels() == pytest.approx([0.0125] * 4)
    with pytest.raises(ValueError):
        SequentialDesign(min_trials=10, max_trials=5)


# --------------------------------------------------------------------------- the loop


class DrawRunner:
    """A TrialRunner whose values are draws around a per-variant level."""

    metric_info = {"lower_is_better": True}

    def __init__(self, levels: dict[str, float], sigma: float, seed: int = 0,
                 flags: dict[int, str] | None = None):
        self.levels, self.sigma = levels, sigma
        self.rng = np.random.default_rng(seed)
        self.calls: list[TrialSpec] = []

    def __call__(self, spec: TrialSpec) -> TrialRecord:
        self.calls.append(spec)
        record = new_record(spec)
        record.value = self.levels[spec.variant] * float(np.exp(self.rng.normal(0, self.sigma)))
        record.ok = True
        return record


def run(runner, design=SequentialDesign(), **kw):
    return measure(list(runner.levels), runner, design, warmup=kw.pop("warmup", 0), seed=3,
                   min_effect=0.02, log=lambda _: None, **kw)


def test_a_large_effect_stops_at_the_first_look():
    runner = DrawRunner({"base": 25.0, "human": 1.0}, sigma=0.01)
    records, verdict, stopping = run(runner)
    assert verdict.verdict == "improved"
    assert stopping.reason == "decided" and stopping.blocks == 5 and len(records) == 10
    decision = verdict.analysis["comparisons"]["human/base"]
    assert decision["look"] == 1 and decision["trials_per_variant"] == 5
    assert [look.trials_per_variant for look in stopping.looks] == [5]


def test_noise_wider_than_the_margin_runs_to_max_trials_and_says_so():
    runner = DrawRunner({"base": 1.0, "base2": 1.0}, sigma=0.2)
    records, verdict, stopping = run(runner, SequentialDesign(max_trials=15))
    assert stopping.reason == "max_trials" and stopping.blocks == 15
    assert len(records) == 30 and stopping.trials_used == {"base": 15, "base2": 15}
    assert verdict.analysis["comparisons"]["base2/base"]["verdict"] == "inconclusive"
    assert [look.undecided for look in stopping.looks] == [["base2/base"]] * 3


def test_a_decision_is_frozen_at_its_look_while_others_continue():
    runner = DrawRunner({"base": 1.0, "human": 0.04, "base2": 1.0}, sigma=0.2)
    _, verdict, stopping = run(runner, SequentialDesign(max_trials=15))
    human = verdict.analysis["comparisons"]["human/base"]
    assert human["verdict"] == "improved" and human["look"] == 1
    assert stopping.blocks == 15 and stopping.looks[0].decided == ["human/base"]


def test_fixed_design_is_one_look_after_all_trials():
    runner = DrawRunner({"base": 25.0, "human": 1.0}, sigma=0.01)
    records, verdict, stopping = run(runner, SequentialDesign.fixed(8, 0.05), fixed=True,
                                     warmup=1)
    assert stopping.mode == "fixed" and stopping.blocks == 8 and len(records) == 18
    assert len(stopping.looks) == 1 and stopping.looks[0].alpha == 0.05


def test_flagged_trials_are_excluded_and_run_again_up_to_the_budget():
    runner = DrawRunner({"base": 25.0, "human": 1.0}, sigma=0.01)
    bad = {0, 3, 6}  # schedule positions whose first run is disturbed
    flagged = lambda r: "throttled: test" if r.index in bad else None  # noqa: E731
    records, verdict, stopping = run(runner, flagged=flagged, max_reruns=2)
    assert stopping.reruns == 2 and stopping.excluded == 2 and stopping.flagged_kept == 1
    assert [r.index for r in records if r.excluded] == [0, 3]
    assert stopping.trials_used == {"base": 5, "human": 5}  # the re-runs replaced them
    assert len(records) == 12 and verdict.verdict == "improved"


def test_bench_options_trials_means_fixed_and_the_default_is_sequential():
    from executor.parts.bench.run import BenchOptions

    assert BenchOptions().max_trials == 30 and BenchOptions().design().looks()[-1] == 30
    fixed = BenchOptions(trials=4)
    assert fixed.max_trials is None and fixed.design().looks() == [4]
    # an old results.json's options (no max_trials) load as the fixed design they ran
    assert BenchOptions.model_validate({"trials": 20}).design().looks() == [20]
    assert BenchOptions(max_trials=12).design().looks() == [5, 10, 12]
    assert BenchOptions(max_trials=3).design().looks() == [3]


def test_sequential_check_script_runs_the_rule_end_to_end():
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    out = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "sequential_check.py"),
                          "--reps", "2", "--max-trials", "10"], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    for scenario in ("A/A ", "3% effect", "25x effect"):
        assert f"{scenario}" in out.stdout
    assert "looks at [5, 10] trials/variant" in out.stdout
