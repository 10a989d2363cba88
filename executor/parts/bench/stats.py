"""Statistics on benchmark trials: summaries, speedups with intervals, and verdicts.

Input is one list of trial values per variant. Each trial value is already a robust number for
one fresh process (the median of its timed iterations), so the statistics here work on trial
values and never on iterations: trials are the independent units, iterations within a process
are not (FIELD_NOTES section 7: per-process medians of identical code differ by several %).

Everything is median-based: a single broken trial (a 10x outlier) moves the median by at most
one rank, and the Mann-Whitney U test only sees ranks. We do not trim outliers (SWE-Perf uses an
IQR filter): with 5-20 trials a trimming rule removes real variance and makes intervals look
tighter than the data justify, and a trial that failed should be a failed trial upstream, not a
trimmed value here.

The heavy lifting is scipy's: `scipy.stats.bootstrap` for intervals and
`scipy.stats.mannwhitneyu` for the tests. The percentile bootstrap is used rather than scipy's
default BCa: the median of a few values is a discrete statistic with many ties among resamples,
which is exactly where BCa's bias correction misbehaves (and it returns nan on degenerate data).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Callable, Sequence

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats

from executor.parts.bench.human_match import HUMAN_FRACTION
from executor.parts.bench.modes import MIN_FAST, ModeSplit, share_p_value, split_modes
from executor.parts.bench.paired import (MIN_PAIRS, PairedBlocks, block_speedups,
                                         hodges_lehmann, signed_rank_p, usable_pairs)

# alpha 0.05: on an A/A pair we accept at most a 5% chance of calling identical code changed.
# Both one-sided tests (better, worse) run at alpha/2 so that their sum, the chance of *any*
# false change, is alpha, matching the (1 - alpha) two-sided interval (alpha/2 in each tail).
# Consequence: a change needs at least 4 trials a side (with 3 the smallest exact one-sided
# Mann-Whitney p is 1/20 > 0.025), and 5 or more give the test room.
DEFAULT_ALPHA = 0.05
# min_effect 0.02 is the equivalence margin: an interval inside [1/1.02, 1.02] is "no change".
# Smaller effects are rarely what a perf commit is for, and a margin is only useful if data can
# land inside it: with 10 trials a side the interval's half-width is about 1.1 x the trials'
# cv, so identical code is called no_change on setups with cv below ~2% and inconclusive on
# noisier ones (FIELD_NOTES section 7 measured 5.5-7.7% between fresh processes). Noise is
# handled by the interval and the rank test, not the margin, which is why it can sit well
# below ISO-Bench's 5% single-run threshold.
DEFAULT_MIN_EFFECT = 0.02
# 9999 resamples: Monte Carlo error of a 95% percentile bound well below 0.1% of the value
# for the sample sizes we see, at a few milliseconds per interval.
N_RESAMPLES = 9999
VARIANTS = ("base", "human", "agent", "base2")
# With 3 values a side the smallest one-sided Mann-Whitney p is 0.05: below that, a fast mode
# is too small to compare at any alpha a look may spend.
MIN_FAST_VALUES = MIN_FAST  # the fewest fast-mode values a decision uses (modes.py)
FAST_MODE = "fast_mode_median"
PAIRED_BLOCKS = "paired_blocks_hodges_lehmann"  # agent/human on the schedule's blocks (paired.py)
# (candidate, baseline): "candidate better than baseline" when the speedup is above 1.
PAIRS = (("human", "base"), ("agent", "base"), ("agent", "human"), ("base2", "base"))


class Verdict(StrEnum):
    """What the numbers say about a candidate against its baseline."""

    IMPROVED = "improved"
    MATCHES_HUMAN = "matches_human"
    REGRESSED = "regressed"
    NO_CHANGE = "no_change"
    INCONCLUSIVE = "inconclusive"
    # agent/human only: the whole interval lies below HUMAN_FRACTION of the human's speed.
    BELOW_HUMAN = "below_human"


class VariantSummary(BaseModel):
    """One variant's trial values, summarised."""

    n: int = Field(description="Number of trial values.")
    median: float = Field(description="Median trial value: the point estimate used everywhere.")
    ci_low: float = Field(description="Lower bound of the bootstrap interval of the median.")
    ci_high: float = Field(description="Upper bound of the bootstrap interval of the median.")
    confidence: float = Field(description="Confidence level of the interval, e.g. 0.95.")
    mean: float = Field(description="Arithmetic mean (reported, not used for decisions).")
    stdev: float | None = Field(description="Sample standard deviation; None when n == 1.")
    cv: float | None = Field(description="stdev / |mean|; None if n == 1 or the mean is 0.")
    min: float = Field(description="Smallest trial value.")
    max: float = Field(description="Largest trial value.")


class Comparison(BaseModel):
    """A candidate against a baseline: speedup of medians, its interval and the rank tests."""

    lower_is_better: bool = Field(description="Direction of the metric (latency: True).")
    speedup: float = Field(description="Ratio of medians oriented so that > 1 means the "
                                       "candidate is better.")
    ci_low: float | None = Field(description="Lower bound of the bootstrap interval of the "
                                             "speedup; None with fewer than 2 trials a side.")
    ci_high: float | None = Field(description="Upper bound of that interval; None likewise.")
    confidence: float = Field(description="Confidence level of the interval.")
    p_better: float = Field(description="One-sided Mann-Whitney U p-value, H1: candidate better.")
    p_worse: float = Field(description="One-sided Mann-Whitney U p-value, H1: candidate worse.")
    n_candidate: int = Field(description="Trials of the candidate.")
    n_baseline: int = Field(description="Trials of the baseline.")
    margin: float | None = Field(default=None, description="Equivalence margin of the TOST "
                                 "below (0.02: speedups within [1/1.02, 1.02] are equal).")
    p_equivalent: float | None = Field(default=None, description="TOST p-value: the larger of "
                                       "two one-sided Mann-Whitney tests against the margin's "
                                       "two ends; None without a margin.")
    paired: PairedBlocks | None = Field(default=None, description="Set when the comparison "
                                        "was made on the schedule's blocks (paired.py): the "
                                        "speedup is then the Hodges-Lehmann per-block speedup.")


class Decision(BaseModel):
    """A comparison with its verdict and the one-line reason for it."""

    verdict: Verdict = Field(description="improved | regressed | no_change | inconclusive.")
    reason: str = Field(description="Why, in numbers.")
    comparison: Comparison = Field(description="The numbers the verdict was decided on.")
    min_effect: float = Field(description="Equivalence margin used: 0.02 means 2%.")
    alpha: float = Field(description="Total false-change rate allowed (alpha/2 per side).")
    statistic: str = Field(default="median", description="What was compared: median (all "
                           "trial values), fast_mode_median (each variant's fast mode) or "
                           "paired_blocks_hodges_lehmann (agent/human per block, "
                           "paired.py).")
    look: int | None = Field(default=None, description="Sequential trials: the look (from 1) "
                             "this verdict was reached at; None in a fixed design.")
    trials_per_variant: int | None = Field(default=None, description="Sequential trials: "
                                           "timed trials per variant at that look.")


class ComparisonReport(BaseModel):
    """Everything the statistics say about one benchmark: summaries, pairs, overall verdict."""

    lower_is_better: bool = Field(description="Direction of the metric.")
    min_effect: float = Field(description="Equivalence margin (0.02 = 2%).")
    alpha: float = Field(description="Total false-change rate allowed per comparison.")
    seed: int = Field(description="Seed of every bootstrap: the report is reproducible.")
    summaries: dict[str, VariantSummary] = Field(description="Per variant name.")
    comparisons: dict[str, Decision] = Field(
        description="Keyed 'candidate/baseline': human/base, agent/base, agent/human, base2/base.")
    subject: str | None = Field(description="Variant the overall verdict is about: agent if "
                                            "present, else human, else base2; None if none.")
    verdict: Verdict = Field(description="Overall verdict for the subject.")
    reason: str = Field(description="Why, in one line.")
    calibration_ok: bool | None = Field(
        description="A/A control (base2/base) showed no change; None without base2. False "
                    "means this setup can produce false changes: read the verdict with care.")
    modes: dict[str, dict] | None = Field(
        default=None, description="Per variant, the mode split (modes.ModeSplit without its "
                                  "values): slow-mode share, boundary; None unless fast_mode.")


def _values(samples: Sequence[float], what: str = "samples") -> np.ndarray:
    x = np.asarray(samples, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{what}: need a non-empty list of numbers, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what}: values must be finite, got {x.tolist()}")
    return x


def summarize(samples: Sequence[float], confidence: float = 0.95, seed: int = 0
              ) -> VariantSummary:
    """Median with its bootstrap interval, plus the usual descriptive numbers."""
    x = _values(samples)
    median, mean = float(np.median(x)), float(np.mean(x))
    if np.ptp(x) == 0:  # n == 1 or identical values: every resample has this median
        low = high = median
    else:
        result = stats.bootstrap((x,), np.median, confidence_level=confidence,
                                 n_resamples=N_RESAMPLES, method="percentile",
                                 vectorized=True, random_state=np.random.default_rng(seed))
        low, high = (float(v) for v in result.confidence_interval)
    stdev = float(np.std(x, ddof=1)) if x.size > 1 else None
    cv = stdev / abs(mean) if stdev is not None and mean != 0 else None
    return VariantSummary(n=x.size, median=median, ci_low=low, ci_high=high,
                          confidence=confidence, mean=mean, stdev=stdev, cv=cv,
                          min=float(x.min()), max=float(x.max()))


def speedup(candidate: Sequence[float], baseline: Sequence[float], lower_is_better: bool,
            confidence: float = 0.95, seed: int = 0, margin: float | None = None
            ) -> Comparison:
    """Ratio of medians (> 1: candidate better) with an independent two-sample bootstrap
    interval, one-sided Mann-Whitney U p-values in both directions, and with a `margin` the
    TOST p-value of equivalence within [1/(1+margin), 1+margin]."""
    cand, base = _values(candidate, "candidate"), _values(baseline, "baseline")
    if np.any(cand <= 0) or np.any(base <= 0):
        raise ValueError("speedup needs positive metric values (times or rates)")

    def ratio(c: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        c_med, b_med = np.median(c, axis=axis), np.median(b, axis=axis)
        return b_med / c_med if lower_is_better else c_med / b_med

    point = float(ratio(cand, base))
    low: float | None
    high: float | None
    if cand.size < 2 or base.size < 2:
        # One value says nothing about its own spread; an interval from the other side alone
        # would look precise and is exactly ISO-Bench's one-run mistake. decide() says why.
        low = high = None
    elif np.ptp(cand) == 0 and np.ptp(base) == 0:
        low = high = point  # zero variance on both sides: every resample gives this ratio
    else:
        result = stats.bootstrap((cand, base), ratio, confidence_level=confidence,
                                 n_resamples=N_RESAMPLES, method="percentile", paired=False,
                                 vectorized=True, random_state=np.random.default_rng(seed))
        low, high = (float(v) for v in result.confidence_interval)
    # "Better" is smaller values for latency, larger for throughput.
    better, worse = ("less", "greater") if lower_is_better else ("greater", "less")
    p_better = float(stats.mannwhitneyu(cand, base, alternative=better).pvalue)
    p_worse = float(stats.mannwhitneyu(cand, base, alternative=worse).pvalue)
    p_equivalent = None if margin is None else \
        max(p_beyond(cand, base, lower_is_better, 1 / (1 + margin)),
            p_beyond(cand, base, lower_is_better, 1 + margin, above=False))
    return Comparison(lower_is_better=lower_is_better, speedup=point, ci_low=low, ci_high=high,
                      confidence=confidence, p_better=p_better, p_worse=p_worse,
                      n_candidate=cand.size, n_baseline=base.size, margin=margin,
                      p_equivalent=p_equivalent)


def p_beyond(candidate: np.ndarray, baseline: np.ndarray, lower_is_better: bool,
             bound: float, above: bool = True) -> float:
    """One-sided Mann-Whitney p-value of H1 "the speedup is above `bound`" (below with
    `above` False). The baseline is rescaled by the bound, so the test asks whether the
    candidate beats (or trails) a baseline `bound` times better: the shifted-hypothesis form
    of the rank test that TOST and non-inferiority tests use."""
    # lower is better: speedup = base / cand > bound  <=>  cand < base / bound
    scaled = baseline / bound if lower_is_better else baseline * bound
    better = "less" if lower_is_better else "greater"
    worse = "greater" if lower_is_better else "less"
    return float(stats.mannwhitneyu(candidate, scaled,
                                    alternative=better if above else worse).pvalue)


def decide(comparison: Comparison, min_effect: float = DEFAULT_MIN_EFFECT,
           alpha: float = DEFAULT_ALPHA) -> Decision:
    """Turn a comparison into a verdict; conservative by construction.

    With margin m and bounds [1/(1+m), 1+m] around 1 (symmetric in log scale):
      improved      p_better < alpha/2, the interval lies above 1, and it reaches beyond 1+m
      regressed     the mirror image
      no_change     equivalence by TOST: both one-sided rank tests against the bounds
                    (speedup above 1/(1+m), and below 1+m) reject at alpha, and the point
                    estimate lies inside the bounds; a tiny difference that is statistically
                    significant can still be no_change. Without a TOST p-value (a Comparison
                    built without a margin) the (1 - alpha) interval must lie inside them.
      inconclusive  anything else: too noisy, or too few trials, to say either
    Improved needs the rank test AND the interval to agree that the candidate is better, so
    identical code is called changed at most ~alpha of the time. The effect-size condition is
    on the interval rather than on the point estimate: with a point-estimate rule a true
    effect of exactly m would be a coin flip however precise the data; with this one the
    three verdicts partition the outcomes (improved and no_change cannot both hold).
    """
    c = comparison
    if abs((1 - alpha) - c.confidence) > 1e-9:
        raise ValueError(f"alpha {alpha} does not match the comparison's {c.confidence:.0%} "
                         f"interval; build it with confidence = 1 - alpha")
    upper, lower = 1 + min_effect, 1 / (1 + min_effect)

    def made(verdict: Verdict, why: str) -> Decision:
        return Decision(verdict=verdict, reason=f"{_numbers(c)}: {why}", comparison=c,
                        min_effect=min_effect, alpha=alpha)

    if c.ci_low is None or c.ci_high is None:
        return made(Verdict.INCONCLUSIVE, "fewer than 2 trials on a side, no interval")
    if c.p_better < alpha / 2 and c.ci_low > 1 and c.ci_high > upper:
        return made(Verdict.IMPROVED, f"better, and not ruled below {min_effect:.0%}")
    if c.p_worse < alpha / 2 and c.ci_high < 1 and c.ci_low < lower:
        return made(Verdict.REGRESSED, f"worse, and not ruled below {min_effect:.0%}")
    if c.p_equivalent is not None and abs(c.margin - min_effect) < 1e-12:
        if c.p_equivalent < alpha and lower <= c.speedup <= upper:
            return made(Verdict.NO_CHANGE, f"equivalent within ±{min_effect:.0%} (TOST p "
                                           f"{c.p_equivalent:.3g})")
    elif lower <= c.ci_low and c.ci_high <= upper:
        return made(Verdict.NO_CHANGE, f"interval within ±{min_effect:.0%}")
    return made(Verdict.INCONCLUSIVE, f"neither a significant change nor within "
                                      f"±{min_effect:.0%}")


def _numbers(c: Comparison) -> str:
    interval = ("no CI" if c.ci_low is None else
                f"{c.confidence:.0%} CI [{c.ci_low:.4f}, {c.ci_high:.4f}]")
    return (f"speedup {c.speedup:.4f}, {interval}, p_better {c.p_better:.3g}, "
            f"p_worse {c.p_worse:.3g}")


def decide_human_match(agent: Sequence[float], human: Sequence[float], lower_is_better: bool,
                       min_effect: float = DEFAULT_MIN_EFFECT, alpha: float = DEFAULT_ALPHA,
                       seed: int = 0, fraction: float = HUMAN_FRACTION,
                       pairs: Sequence[tuple[float, float]] | None = None) -> Decision:
    """agent/human as an interval verdict on "does the agent reach `fraction` of the human?"

      improved       the agent beats the human (decide(): rank test and interval, margin m)
      matches_human  non-inferiority: the lower end of the (1 - alpha) interval reaches
                     `fraction` and the rank test against a human `fraction` as fast rejects
                     at alpha/2
      below_human    the mirror image: the upper end is below `fraction`, rank test likewise
      inconclusive   the interval straddles `fraction`: more trials, or a call nobody can make
    Each non-inconclusive answer is wrong at most alpha/2 of the time when the truth sits on
    the other side of `fraction`: an agent exactly as fast as the human is never called
    below_human by noise more often than that, and one at 0.91 of the human is called
    matches_human at most alpha/2 of the time (in practice far less: 0.91 is 4 points away).

    `pairs`: (agent, human) values of the schedule's blocks. The statistic is then the
    Hodges-Lehmann per-block speedup and the tests are signed-rank tests (paired.py says why),
    and with fewer than paired.MIN_PAIRS usable blocks nothing is decided. Without pairs (values
    that come from no schedule): the ratio of medians and rank-sum tests.
    """
    if pairs is not None:
        used, chosen = usable_pairs(pairs, lower_is_better)
        if len(used) >= MIN_PAIRS:
            return _paired_human_match(block_speedups(used, lower_is_better), chosen,
                                       lower_is_better, min_effect, alpha, fraction)
    comparison = speedup(agent, human, lower_is_better, 1 - alpha, seed, margin=min_effect)
    if pairs is not None:
        # Not the unpaired rule instead: on 5 trials a side with a slow mode in the mix its
        # rank-sum test once called an agent at 0.91 of the human better than the human.
        return Decision(verdict=Verdict.INCONCLUSIVE, comparison=comparison,
                        min_effect=min_effect, alpha=alpha, statistic=PAIRED_BLOCKS,
                        reason=f"{_numbers(comparison)}: {len(used)} usable blocks with both "
                               f"the agent and the human, fewer than the {MIN_PAIRS} a paired "
                               f"decision needs")
    cand, base = _values(agent), _values(human)
    return _human_match(comparison, min_effect, alpha, fraction,
                        lambda above: p_beyond(cand, base, lower_is_better, fraction, above))


def _paired_human_match(speedups: np.ndarray, chosen: PairedBlocks, lower_is_better: bool,
                        min_effect: float, alpha: float, fraction: float) -> Decision:
    point, low, high = hodges_lehmann(speedups, 1 - alpha)
    upper, lower = 1 + min_effect, 1 / (1 + min_effect)
    comparison = Comparison(
        lower_is_better=lower_is_better, speedup=point, ci_low=low, ci_high=high,
        confidence=1 - alpha, p_better=signed_rank_p(speedups, 1.0),
        p_worse=signed_rank_p(speedups, 1.0, above=False), n_candidate=speedups.size,
        n_baseline=speedups.size, margin=min_effect,
        p_equivalent=max(signed_rank_p(speedups, lower),
                         signed_rank_p(speedups, upper, above=False)),
        paired=chosen)
    decision = _human_match(comparison, min_effect, alpha, fraction,
                            lambda above: signed_rank_p(speedups, fraction, above))
    decision.statistic = PAIRED_BLOCKS
    left_out = (f", {chosen.left_out} left out with one trial in each per-process mode"
                if chosen.left_out else "")
    decision.reason += f" [paired: {chosen.used} of {chosen.blocks} blocks{left_out}]"
    return decision


def _human_match(c: Comparison, min_effect: float, alpha: float, fraction: float,
                 p_beyond_fraction: Callable[[bool], float]) -> Decision:
    """The verdict of decide_human_match on a built comparison; `p_beyond_fraction(above)` is
    the one-sided p that the speedup is above (below) `fraction`."""
    decision = decide(c, min_effect, alpha)
    if decision.verdict is Verdict.IMPROVED:
        decision.reason += "; beats the human"
        return decision

    def made(verdict: Verdict, why: str) -> Decision:
        return Decision(verdict=verdict, reason=f"{_numbers(c)}: {why}", comparison=c,
                        min_effect=min_effect, alpha=alpha)

    if c.ci_low is None or c.ci_high is None:
        return made(Verdict.INCONCLUSIVE, "fewer than 2 trials on a side, no interval")
    if c.ci_low >= fraction and p_beyond_fraction(True) < alpha / 2:
        return made(Verdict.MATCHES_HUMAN, f"interval above {fraction:.0%} of the human")
    if c.ci_high < fraction and p_beyond_fraction(False) < alpha / 2:
        return made(Verdict.BELOW_HUMAN, f"interval below {fraction:.0%} of the human")
    return made(Verdict.INCONCLUSIVE, f"interval straddles {fraction:.0%} of the human: "
                                      f"whether it matches is undecided")


def matches_human(agent_vs_base: Decision, human_vs_base: Decision,
                  agent_vs_human: Decision) -> bool:
    """The interval rule: the agent and the human are both improved over base, and
    agent/human is matches_human (or better: improved) by decide_human_match.

    The human must be improved: when the human commit shows no gain on this workload there
    is no human speedup to match, and an improved agent is simply "improved".
    """
    return (agent_vs_base.verdict is Verdict.IMPROVED
            and human_vs_base.verdict is Verdict.IMPROVED
            and agent_vs_human.verdict in (Verdict.MATCHES_HUMAN, Verdict.IMPROVED))


def decide_fast_modes(candidate: ModeSplit, baseline: ModeSplit, lower_is_better: bool,
                      min_effect: float, alpha: float, seed: int) -> Decision:
    """The decision on the fast modes, guarded by the slow-mode shares (modes.py).

    The shares are compared with Fisher's exact test at the same alpha. A difference in shares
    never makes a verdict on its own (it would be mostly luck with identical code), but it
    blocks the two verdicts it contradicts: no_change (the fast modes agree, yet one variant
    runs slow more often) and a change whose direction the shares oppose.
    """
    if min(len(candidate.fast_values), len(baseline.fast_values)) < MIN_FAST_VALUES:
        comparison = speedup(candidate.fast_values, baseline.fast_values, lower_is_better,
                             1 - alpha, seed)
        return Decision(verdict=Verdict.INCONCLUSIVE, comparison=comparison,
                        min_effect=min_effect, alpha=alpha, statistic=FAST_MODE,
                        reason=f"{_numbers(comparison)}: the data do not allow a decision: "
                               f"fewer than {MIN_FAST_VALUES} fast-mode trials on a side "
                               f"({len(candidate.fast_values)} vs "
                               f"{len(baseline.fast_values)})")
    decision = decide(speedup(candidate.fast_values, baseline.fast_values, lower_is_better,
                              1 - alpha, seed, margin=min_effect), min_effect, alpha)
    decision.statistic = FAST_MODE
    shares = (f"slow-mode shares {candidate.slow_share:.0%} vs {baseline.slow_share:.0%}")
    p = share_p_value(candidate, baseline)
    if p >= alpha:
        if candidate.n_slow or baseline.n_slow:
            decision.reason += f"; fast modes compared, {shares}"
        return decision
    candidate_slower_more = candidate.slow_share > baseline.slow_share
    blocked = (decision.verdict is Verdict.NO_CHANGE
               or (decision.verdict is Verdict.IMPROVED and candidate_slower_more)
               or (decision.verdict is Verdict.REGRESSED and not candidate_slower_more))
    if blocked:
        decision.reason += (f"; but {shares} differ (Fisher p {p:.3g}): the data do not allow "
                            f"a decision ({decision.verdict} on the fast modes alone)")
        decision.verdict = Verdict.INCONCLUSIVE
    else:
        decision.reason += f"; {shares} (Fisher p {p:.3g}) agree in direction"
    return decision


def compare_variants(samples_by_variant: dict[str, Sequence[float]], lower_is_better: bool,
                     min_effect: float = DEFAULT_MIN_EFFECT, alpha: float = DEFAULT_ALPHA,
                     seed: int = 0, fast_mode: bool = False,
                     decided: dict[str, Decision] | None = None,
                     human_pairs: Sequence[tuple[float, float]] | None = None
                     ) -> ComparisonReport:
    """Summaries, every meaningful pair, and the overall verdict for the agent (or the human
    when there is no agent). Variant names: base (required), human, agent, base2 (A/A).

    fast_mode: split each variant into modes (modes.py) and decide each pair on the fast modes
    (decide_fast_modes); summaries stay over all values. `decided`: pairs already decided at an
    earlier look of a sequential design; they are kept as they are (measure.py). `human_pairs`:
    the (agent, human) values of each block that has both, for the paired agent/human rule."""
    unknown = set(samples_by_variant) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variants {sorted(unknown)}; expected some of {VARIANTS}")
    if "base" not in samples_by_variant:
        raise ValueError("compare_variants needs 'base' samples")
    confidence = 1 - alpha
    summaries = {name: summarize(values, confidence, seed)
                 for name, values in samples_by_variant.items()}
    splits = ({name: split_modes(values, lower_is_better)
               for name, values in samples_by_variant.items()} if fast_mode else None)

    def pair_decision(cand: str, base: str) -> Decision:
        if decided and f"{cand}/{base}" in decided:
            return decided[f"{cand}/{base}"]
        if (cand, base) == ("agent", "human"):
            # The human-match question never on each variant's own fast mode: each split
            # has its own boundary, and one variant split while the other is not compares a
            # fast mode with a whole (identical code measured 1.2-1.4x "faster" than itself
            # on the loaded development machine). Paired blocks share one boundary (paired.py).
            return decide_human_match(samples_by_variant[cand], samples_by_variant[base],
                                      lower_is_better, min_effect, alpha, seed,
                                      pairs=human_pairs)
        if splits is not None:
            return decide_fast_modes(splits[cand], splits[base], lower_is_better, min_effect,
                                     alpha, seed)
        return decide(speedup(samples_by_variant[cand], samples_by_variant[base],
                              lower_is_better, confidence, seed, margin=min_effect),
                      min_effect, alpha)

    comparisons = {f"{cand}/{base}": pair_decision(cand, base) for cand, base in PAIRS
                   if cand in samples_by_variant and base in samples_by_variant}

    calibration = comparisons.get("base2/base")
    calibration_ok = (None if calibration is None else
                      calibration.verdict in (Verdict.NO_CHANGE, Verdict.INCONCLUSIVE))
    subject = next((name for name in ("agent", "human", "base2") if name in samples_by_variant),
                   None)
    if subject is None:
        verdict, reason = Verdict.INCONCLUSIVE, "only base was measured: nothing to compare"
    else:
        decision = comparisons[f"{subject}/base"]
        verdict, reason = decision.verdict, f"{subject}/base {decision.reason}"
        human, versus = comparisons.get("human/base"), comparisons.get("agent/human")
        if subject == "agent" and human is not None and versus is not None:
            if matches_human(decision, human, versus):
                verdict = Verdict.MATCHES_HUMAN
                reason += (f"; reaches {HUMAN_FRACTION:.0%} of the human speedup "
                           f"{human.comparison.speedup:.4f} (agent/human {versus.reason})")
            elif decision.verdict is Verdict.IMPROVED and human.verdict is Verdict.IMPROVED:
                reason += f"; against the human: {versus.verdict} ({versus.reason})"
    if calibration_ok is False:
        reason += f"; A/A control base2/base was {calibration.verdict}: noisy setup"
    return ComparisonReport(lower_is_better=lower_is_better, min_effect=min_effect, alpha=alpha,
                            seed=seed, summaries=summaries, comparisons=comparisons,
                            subject=subject, verdict=verdict, reason=reason,
                            calibration_ok=calibration_ok,
                            modes=None if splits is None else {
                                name: split.model_dump(exclude={"fast_values"})
                                for name, split in splits.items()})
