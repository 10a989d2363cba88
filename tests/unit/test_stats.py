"""Known answers for the benchmark statistics (executor/parts/bench/stats.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from executor.parts.bench.stats import (
    Verdict, compare_variants, decide, decide_human_match, matches_human, speedup, summarize,
)


def lognormal(rng: np.random.Generator, n: int, cv: float, median: float = 1.0) -> np.ndarray:
    """n trial values around `median` with coefficient of variation `cv`."""
    sigma = math.sqrt(math.log(1 + cv * cv))
    return median * rng.lognormal(0.0, sigma, n)


# ------------------------------------------------------------------------------ summarize


def test_summary_of_known_values():
    s = summarize([3.0, 1.0, 2.0, 5.0, 4.0])
    assert (s.n, s.median, s.mean, s.min, s.max) == (5, 3.0, 3.0, 1.0, 5.0)
    assert s.stdev == pytest.approx(math.sqrt(2.5))
    assert s.cv == pytest.approx(math.sqrt(2.5) / 3.0)
    assert 1.0 <= s.ci_low < 3.0 < s.ci_high <= 5.0


@pytest.mark.parametrize("samples", [[2.5], [2.5] * 10])
def test_summary_without_spread_has_a_point_interval(samples):
    s = summarize(samples)
    assert (s.median, s.ci_low, s.ci_high) == (2.5, 2.5, 2.5)
    if len(samples) == 1:
        assert s.stdev is None and s.cv is None
    else:
        assert s.stdev == 0.0 and s.cv == 0.0


def test_summary_is_reproducible_with_a_seed_and_rejects_bad_input():
    values = lognormal(np.random.default_rng(1), 10, 0.05)
    assert summarize(values, seed=7) == summarize(values, seed=7)
    for bad in ([], [1.0, float("nan")]):
        with pytest.raises(ValueError):
            summarize(bad)


# --------------------------------------------------------------------- speedup and decide


def test_identical_samples_are_no_change_with_a_unit_interval():
    samples = [1.234] * 10
    c = speedup(samples, samples, lower_is_better=True)
    assert (c.speedup, c.ci_low, c.ci_high) == (1.0, 1.0, 1.0)
    assert c.p_better > 0.5 and c.p_worse > 0.5
    assert decide(c).verdict is Verdict.NO_CHANGE


def test_ten_percent_faster_latency_is_improved_and_slower_is_regressed():
    rng = np.random.default_rng(10)
    base, fast = lognormal(rng, 10, 0.01, 1.0), lognormal(rng, 10, 0.01, 0.9)
    better = speedup(fast, base, lower_is_better=True)
    assert better.speedup == pytest.approx(1 / 0.9, rel=0.02)
    assert 1.0 < better.ci_low < better.speedup < better.ci_high
    assert better.p_better < 0.01 and better.p_worse > 0.99
    assert decide(better).verdict is Verdict.IMPROVED

    worse = speedup(base, fast, lower_is_better=True)  # the roles swapped
    assert worse.speedup == pytest.approx(0.9, rel=0.02)
    assert worse.p_worse < 0.01
    assert decide(worse).verdict is Verdict.REGRESSED


def test_throughput_direction_higher_is_better():
    rng = np.random.default_rng(11)
    base, more = lognormal(rng, 10, 0.01, 1000.0), lognormal(rng, 10, 0.01, 1100.0)
    as_throughput = speedup(more, base, lower_is_better=False)
    assert as_throughput.speedup == pytest.approx(1.1, rel=0.02)
    assert decide(as_throughput).verdict is Verdict.IMPROVED
    # The same numbers read as a time: larger is slower.
    as_time = speedup(more, base, lower_is_better=True)
    assert as_time.speedup == pytest.approx(1 / as_throughput.speedup)
    assert decide(as_time).verdict is Verdict.REGRESSED


@pytest.mark.parametrize("outlier_in", ["candidate", "baseline"])
def test_one_tenfold_outlier_does_not_flip_no_change(outlier_in):
    rng = np.random.default_rng(12)
    base, cand = lognormal(rng, 10, 0.003), lognormal(rng, 10, 0.003)
    target = cand if outlier_in == "candidate" else base
    target[3] *= 10.0
    mean_ratio = np.mean(base) / np.mean(cand)
    assert not 0.6 < mean_ratio < 1.6  # a mean-based speedup would call a large change
    c = speedup(cand, base, lower_is_better=True)
    assert c.speedup == pytest.approx(1.0, abs=0.005)
    assert decide(c).verdict is Verdict.NO_CHANGE


def test_two_percent_shift_with_low_noise_is_detected():
    rng = np.random.default_rng(13)
    base, cand = lognormal(rng, 10, 0.003), lognormal(rng, 10, 0.003, 0.98)
    c = speedup(cand, base, lower_is_better=True)
    assert c.p_better < 0.01
    d = decide(c)
    assert d.verdict is Verdict.IMPROVED, d.reason


def test_an_effect_at_the_margin_is_not_a_coin_flip():
    # A true 2% speedup (the default margin) must be found nearly always, not half the time
    # as a rule on the point estimate alone would do.
    rng = np.random.default_rng(16)
    found = sum(decide(speedup(lognormal(rng, 10, 0.003, 1 / 1.02), lognormal(rng, 10, 0.003),
                               True, seed=i)).verdict is Verdict.IMPROVED for i in range(50))
    assert found >= 45


def test_significant_but_negligible_difference_is_no_change():
    # 0.5% faster, measured precisely: real, but below the 2% that counts.
    rng = np.random.default_rng(14)
    base, cand = lognormal(rng, 10, 0.002), lognormal(rng, 10, 0.002, 0.995)
    c = speedup(cand, base, lower_is_better=True)
    assert c.p_better < 0.01 and c.ci_low > 1.0
    assert decide(c).verdict is Verdict.NO_CHANGE
    # The same data with a 0.2% margin is a real improvement.
    assert decide(c, min_effect=0.002).verdict is Verdict.IMPROVED


def test_noisy_or_tiny_samples_are_inconclusive():
    rng = np.random.default_rng(15)
    noisy = speedup(lognormal(rng, 5, 0.10, 0.97), lognormal(rng, 5, 0.10), True)
    assert decide(noisy).verdict is Verdict.INCONCLUSIVE
    single = speedup([0.5], [1.0, 1.01, 0.99], True)  # 2x faster, but one trial
    assert single.ci_low is None and single.ci_high is None
    assert decide(single).verdict is Verdict.INCONCLUSIVE


def test_aa_false_positive_rate_is_at_most_five_percent():
    rng = np.random.default_rng(2026)
    verdicts = [decide(speedup(lognormal(rng, 10, 0.03), lognormal(rng, 10, 0.03), True,
                               seed=i)).verdict for i in range(200)]
    false_changes = sum(v in (Verdict.IMPROVED, Verdict.REGRESSED) for v in verdicts)
    assert false_changes / len(verdicts) <= 0.05


def test_speedup_rejects_non_positive_values_and_decide_a_mismatched_alpha():
    with pytest.raises(ValueError, match="positive"):
        speedup([0.0, 1.0], [1.0, 1.0], True)
    c = speedup([1.0, 1.1], [1.0, 1.2], True, confidence=0.95)
    with pytest.raises(ValueError, match="confidence"):
        decide(c, alpha=0.10)


# ---------------------------------------------------------------- matches_human, report


def _decision(cand_median: float, seed: int, lower_is_better: bool = True):
    rng = np.random.default_rng(seed)
    base, cand = lognormal(rng, 10, 0.005), lognormal(rng, 10, 0.005, cand_median)
    return decide(speedup(cand, base, lower_is_better))


def _human_match(agent_median: float, seed: int, cv: float = 0.005, n: int = 10):
    rng = np.random.default_rng(seed)
    human, agent = lognormal(rng, n, cv, 1 / 1.5), lognormal(rng, n, cv, agent_median)
    return decide_human_match(agent, human, lower_is_better=True)


def test_matches_human_is_an_interval_rule():
    human = _decision(1 / 1.5, 20)            # 1.5x
    close, short = _decision(1 / 1.46, 21), _decision(1 / 1.3, 22)
    assert close.verdict is Verdict.IMPROVED and short.verdict is Verdict.IMPROVED
    # 1.46 / 1.5 = 0.973 of the human with 0.5% noise: the interval clears 0.95
    versus_close, versus_short = _human_match(1 / 1.46, 21), _human_match(1 / 1.3, 22)
    assert versus_close.verdict is Verdict.MATCHES_HUMAN, versus_close.reason
    assert versus_short.verdict is Verdict.BELOW_HUMAN, versus_short.reason
    assert matches_human(close, human, versus_close)
    assert not matches_human(short, human, versus_short)
    # An agent that is not itself improved never matches, even against a flat human.
    flat_agent, flat_human = _decision(1.0, 23), _decision(1.0, 24)
    assert flat_agent.verdict is Verdict.NO_CHANGE
    assert not matches_human(flat_agent, flat_human, versus_close)
    # Against a human with no gain, an improved agent is improved, not "matching".
    assert not matches_human(close, flat_human, versus_close)


def test_an_agent_on_the_margin_is_undecided_not_a_coin_flip():
    """0.95 of the human with 5% noise: the point estimate falls on either side of the margin
    from one draw to the next; the interval rule says inconclusive instead of flipping."""
    verdicts = {_human_match(1 / (1.5 * 0.95), seed, cv=0.05).verdict for seed in range(20)}
    assert verdicts == {Verdict.INCONCLUSIVE}


def test_identical_code_matches_the_human_and_a_tenth_slower_never_does():
    rng = np.random.default_rng(7)
    same = [decide_human_match(lognormal(rng, 10, 0.02), lognormal(rng, 10, 0.02), True,
                               seed=i).verdict for i in range(100)]
    assert sum(v is Verdict.MATCHES_HUMAN for v in same) >= 95
    slower = [decide_human_match(lognormal(rng, 10, 0.02, 1 / 0.91), lognormal(rng, 10, 0.02),
                                 True, seed=i).verdict for i in range(100)]
    assert Verdict.MATCHES_HUMAN not in slower


def test_no_change_is_a_tost_against_the_margin():
    rng = np.random.default_rng(8)
    a, b = lognormal(rng, 10, 0.002), lognormal(rng, 10, 0.002)
    c = speedup(a, b, True, margin=0.02)
    assert c.p_equivalent is not None and c.p_equivalent < 0.01
    assert decide(c, 0.02).verdict is Verdict.NO_CHANGE and "TOST" in decide(c, 0.02).reason
    # 1.5% apart with 3% noise: not provably inside ±2%
    wide = speedup(lognormal(rng, 10, 0.03, 1.015), lognormal(rng, 10, 0.03), True, margin=0.02)
    assert wide.p_equivalent > 0.05 and decide(wide, 0.02).verdict is not Verdict.NO_CHANGE


def _variants(rng, cv=0.005, **medians):
    return {name: lognormal(rng, 10, cv, m).tolist() for name, m in medians.items()}


def test_report_agent_matching_the_human():
    rng = np.random.default_rng(30)
    samples = _variants(rng, base=1.0, human=0.8, agent=0.81, base2=1.0)
    report = compare_variants(samples, lower_is_better=True, seed=3)
    assert set(report.summaries) == {"base", "human", "agent", "base2"}
    assert set(report.comparisons) == {"human/base", "agent/base", "agent/human", "base2/base"}
    assert report.comparisons["human/base"].verdict is Verdict.IMPROVED
    assert report.comparisons["agent/human"].verdict is Verdict.MATCHES_HUMAN
    assert report.comparisons["base2/base"].verdict is Verdict.NO_CHANGE
    assert (report.subject, report.verdict, report.calibration_ok) == \
        ("agent", Verdict.MATCHES_HUMAN, True)
    assert report == compare_variants(samples, lower_is_better=True, seed=3)  # reproducible
    assert report.model_dump(mode="json")["verdict"] == "matches_human"


@pytest.mark.parametrize("agent_median, expected", [
    (0.95, Verdict.IMPROVED),       # 5% faster, human 25%: improved, not matching
    (1.05, Verdict.REGRESSED),      # 5% slower
    (1.0, Verdict.NO_CHANGE),
])
def test_report_agent_verdicts(agent_median, expected):
    rng = np.random.default_rng(31)
    samples = _variants(rng, base=1.0, human=0.8, agent=agent_median)
    report = compare_variants(samples, lower_is_better=True)
    assert report.verdict is expected, report.reason
    assert report.calibration_ok is None and "base2/base" not in report.comparisons


def test_report_throughput_without_agent_judges_the_human():
    rng = np.random.default_rng(32)
    samples = _variants(rng, base=100.0, human=120.0)
    report = compare_variants(samples, lower_is_better=False)
    assert report.subject == "human" and report.verdict is Verdict.IMPROVED
    assert report.comparisons["human/base"].comparison.speedup == pytest.approx(1.2, rel=0.02)


def test_report_flags_a_failed_calibration():
    rng = np.random.default_rng(33)
    samples = _variants(rng, base=1.0, human=0.8, base2=1.1)  # "identical" code 10% apart
    report = compare_variants(samples, lower_is_better=True)
    assert report.comparisons["base2/base"].verdict is Verdict.REGRESSED
    assert report.calibration_ok is False and "A/A" in report.reason


def test_report_rejects_unknown_or_missing_variants():
    with pytest.raises(ValueError, match="unknown"):
        compare_variants({"base": [1.0, 1.1], "candidate": [1.0, 1.1]}, True)
    with pytest.raises(ValueError, match="base"):
        compare_variants({"human": [1.0, 1.1]}, True)
    only_base = compare_variants({"base": [1.0, 1.1]}, True)
    assert only_base.subject is None and only_base.verdict is Verdict.INCONCLUSIVE
