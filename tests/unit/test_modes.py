"""Mode detection (modes.py) and the fast-mode decision (stats.decide_fast_modes)."""

from __future__ import annotations

import numpy as np
import pytest

from executor.parts.bench.modes import MIN_VALUES, share_p_value, split_modes
from executor.parts.bench.stats import compare_variants

BULK = [0.86, 0.87, 0.865, 0.872, 0.868, 0.861, 0.874, 0.866, 0.869, 0.863, 0.871]
SLOW = [1.20, 1.33, 1.51, 1.26]  # the H200's slow processes (docs/architecture.md)


def test_the_h200_pattern_splits_at_the_gap():
    split = split_modes(BULK + SLOW)
    assert split.n == 15 and split.n_slow == 4 and split.slow_share == pytest.approx(4 / 15)
    assert max(BULK) < split.boundary < min(SLOW)
    assert sorted(split.fast_values) == sorted(BULK)
    expected = np.exp(np.median(np.log(SLOW)) - np.median(np.log(BULK)))  # medians of logs
    assert split.slow_over_fast == pytest.approx(expected, rel=1e-9)


def test_one_mode_is_not_split():
    rng = np.random.default_rng(0)
    for seed in range(50):
        values = list(np.exp(np.random.default_rng(seed).normal(0, 0.02, 30)))
        assert split_modes(values).n_slow == 0, seed
    assert split_modes(list(rng.uniform(0.9, 1.1, 20))).n_slow == 0


def test_too_few_values_are_never_split():
    values = BULK[:MIN_VALUES - 2] + SLOW[:1]
    assert split_modes(values).n_slow == 0 and split_modes(values).fast_values == values


def test_a_gap_under_five_percent_is_not_a_mode_even_with_tight_modes():
    assert split_modes([1.0] * 5 + [1.04] * 5).n_slow == 0
    assert split_modes([1.0] * 5 + [1.06] * 5).n_slow == 5


def test_a_lone_far_value_is_an_outlier_not_a_mode_but_a_mode_keeps_its_outlier():
    assert split_modes(BULK + [2.0]).n_slow == 0
    split = split_modes(BULK + SLOW + [3.0])  # the largest gap is below the outlier
    assert split.n_slow == 5 and max(BULK) < split.boundary < min(SLOW)


def test_higher_is_better_puts_the_slow_mode_at_low_values():
    throughput = [1 / v for v in BULK + SLOW]
    split = split_modes(throughput, lower_is_better=False)
    assert split.n_slow == 4 and min(split.fast_values) > split.boundary


def test_share_p_value_is_fisher_exact():
    a, b = split_modes(BULK + SLOW), split_modes(BULK)
    # 4 of 15 vs 0 of 11 slow: tables as or less likely than this one are X=4 and X=0 of the
    # hypergeometric (26, 4, 15): (C(15,4) + C(11,4)) / C(26,4) = (1365 + 330) / 14950
    assert share_p_value(a, b) == pytest.approx((1365 + 330) / 14950, rel=1e-9)


def with_modes(fast_level: float, n_fast: int, n_slow: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(fast_level * np.exp(rng.normal(0, 0.005, n_fast))) + \
        list(1.3 * fast_level * np.exp(rng.normal(0, 0.005, n_slow)))


def test_a_chance_excess_of_slow_processes_does_not_fake_an_effect():
    # Identical fast modes; base drew 6 slow processes of 20, base2 none. On all values the
    # medians would still agree here, but the rank test sees 6 extra slow values.
    base, base2 = with_modes(1.0, 14, 6, 1), with_modes(1.0, 20, 0, 2)
    report = compare_variants({"base": base, "base2": base2}, lower_is_better=True,
                              fast_mode=True, seed=0)
    decision = report.comparisons["base2/base"]
    assert decision.statistic == "fast_mode_median"
    assert decision.verdict in ("no_change", "inconclusive")
    assert report.modes["base"]["n_slow"] == 6 and report.modes["base2"]["n_slow"] == 0
    plain = compare_variants({"base": base, "base2": base2}, lower_is_better=True, seed=0)
    assert plain.comparisons["base2/base"].comparison.p_better < 0.025  # what fast_mode avoids


def test_a_small_effect_under_mode_mixing_is_found_in_the_fast_modes():
    base, human = with_modes(1.0, 15, 5, 3), with_modes(1 / 1.03, 15, 5, 4)
    report = compare_variants({"base": base, "human": human}, lower_is_better=True,
                              fast_mode=True, seed=0)
    assert report.verdict == "improved"
    assert report.comparisons["human/base"].comparison.speedup == pytest.approx(1.03, abs=0.01)


def test_shares_that_differ_block_no_change_and_say_why():
    base, human = with_modes(1.0, 20, 0, 5), with_modes(1.0, 8, 12, 6)
    decision = compare_variants({"base": base, "human": human}, lower_is_better=True,
                                fast_mode=True, seed=0).comparisons["human/base"]
    assert decision.verdict == "inconclusive"
    assert "differ" in decision.reason and "do not allow a decision" in decision.reason


def test_too_few_fast_values_do_not_allow_a_decision():
    # Three trials a side (a fixed --trials 3 run): too few fast-mode values to decide on.
    base, human = with_modes(1.0, 3, 0, 7), with_modes(0.5, 3, 0, 8)
    decision = compare_variants({"base": base, "human": human}, lower_is_better=True,
                                fast_mode=True, seed=0).comparisons["human/base"]
    assert decision.verdict == "inconclusive"
    assert "fewer than 4 fast-mode trials" in decision.reason


def test_a_lone_fast_value_is_an_outlier_not_the_fast_mode():
    # Seen in a calibration run of the planted 5% slow-down: 19 values in 0.0476-0.0533 and one
    # at 0.04475. Taken as a one-value "fast mode", it left no decision at all.
    rng = np.random.default_rng(11)
    values = list(rng.uniform(0.0476, 0.0533, 19)) + [0.04475]
    split = split_modes(values)
    assert split.n_slow == 0 and len(split.fast_values) == 20
    three_fast = [0.04475, 0.0448, 0.0449] + list(rng.uniform(0.0476, 0.0533, 17))
    assert split_modes(three_fast).n_slow == 0  # three values are not a mode either
