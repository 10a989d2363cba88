"""Per-process modes: fresh processes of identical code that run at one of two speeds.

On an H200 (docs/architecture.md, "Noise on a GPU") 4 of 15 processes of identical code ran at
1.20-1.51 ms against a bulk at 0.86-0.92 ms, for their whole life, at steady clocks. A median
or a rank test over such a mixture mostly measures how many slow processes each variant drew:
a 3% effect hides under it, and an unlucky draw looks like an effect.

The rule, kept simple enough to check by hand: on the log of each variant's trial values
(oriented so that slower is larger), sort, take the largest gap between neighbours, and call
it a mode boundary when it is wider than both GAP_SIGMAS robust standard deviations of the
values below it (the fast mode) and MIN_GAP (5%). Everything above the boundary is the slow
mode; only gaps with at least MIN_SLOW (2) values above them and MIN_FAST (4) below count, so a
far value on either side is an outlier that stays in the comparison, not a mode. Fewer than MIN_VALUES values are never split: too few to tell a mode from a tail. One
boundary at most: two components are what the data have shown; a third would need more trials
than a benchmark takes.

A variant is split on its own values only, never on the pooled values: a real 25x effect
between variants is not a "mode". The decision statistic is then the comparison of the fast
modes (stats.compare_variants with fast_mode=True), and the slow-mode shares are compared
separately (Fisher's exact test): a difference in shares can block a verdict (see there) but
never makes one.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats

MIN_VALUES = 6
# 5 robust sigmas: the largest gap between neighbours of 30 normal values exceeds 3 sigma in
# well under 1% of samples, so 5 keeps false splits of one-mode data rare, while the H200's
# slow mode sat ~10 sigma of the bulk's spread above it.
GAP_SIGMAS = 5.0
MIN_GAP = math.log(1.05)
MAD_TO_SIGMA = 1.4826
# A mode is a behaviour that repeats: one far value is an outlier, which stays in the compared
# values (the median and the rank test bound its weight), as stats.py says of outliers.
MIN_SLOW = 2
# The fast mode is what gets compared, so it must be a mode too: at least as many values as a
# decision needs (stats.MIN_FAST_VALUES). One unusually fast trial is an outlier, not a mode: a
# planted 5% slow-down once went `inconclusive` when a lone low value became the "fast mode".
MIN_FAST = 4


class ModeSplit(BaseModel):
    """One variant's trial values, split into a fast and (maybe) a slow mode."""

    n: int = Field(description="Trial values looked at.")
    n_slow: int = Field(description="Values in the slow mode (0: one mode).")
    slow_share: float = Field(description="n_slow / n.")
    boundary: float | None = Field(default=None, description="A value between the two modes, "
                                   "in the metric's unit; None with one mode.")
    gap_sigmas: float | None = Field(default=None, description="Width of the largest gap in "
                                     "robust sigmas of the fast mode (the rule's statistic).")
    slow_over_fast: float | None = Field(default=None, description="Median of the slow mode / "
                                         "median of the fast mode, as slowdown (> 1).")
    fast_values: list[float] = Field(description="The fast mode's values (all with one mode).")


def split_modes(values: Sequence[float], lower_is_better: bool = True) -> ModeSplit:
    """Split one variant's trial values at its largest gap if the gap is a mode boundary."""
    x = np.asarray(values, dtype=float)
    one = ModeSplit(n=x.size, n_slow=0, slow_share=0.0, fast_values=x.tolist())
    if x.size < MIN_VALUES or np.any(x <= 0):
        return one
    slowness = np.log(x) if lower_is_better else -np.log(x)
    order = np.argsort(slowness, kind="stable")
    s = slowness[order]
    gaps = np.diff(s)
    # boundary between s[cut] and s[cut + 1]: at least MIN_FAST values below, MIN_SLOW above
    allowed = gaps[MIN_FAST - 1:gaps.size - (MIN_SLOW - 1)]
    if allowed.size == 0:
        return one
    cut = MIN_FAST - 1 + int(np.argmax(allowed))
    fast = s[:cut + 1]
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(fast - np.median(fast)))) if fast.size > 1 \
        else 0.0
    gap = float(gaps[cut])
    ratio = gap / sigma if sigma > 0 else math.inf
    if gap <= MIN_GAP or ratio <= GAP_SIGMAS:
        return one.model_copy(update={"gap_sigmas": None if sigma == 0 else ratio})
    fast_idx, slow_idx = order[:cut + 1], order[cut + 1:]
    boundary = float(math.exp((s[cut] + s[cut + 1]) / 2 * (1 if lower_is_better else -1)))
    slowdown = math.exp(float(np.median(s[cut + 1:]) - np.median(fast)))
    return ModeSplit(n=x.size, n_slow=int(slow_idx.size), slow_share=slow_idx.size / x.size,
                     boundary=boundary, gap_sigmas=None if math.isinf(ratio) else ratio,
                     slow_over_fast=slowdown, fast_values=x[np.sort(fast_idx)].tolist())


def share_p_value(a: ModeSplit, b: ModeSplit) -> float:
    """Two-sided Fisher exact p that the two variants' slow-mode shares are equal."""
    table = [[a.n_slow, a.n - a.n_slow], [b.n_slow, b.n - b.n_slow]]
    return float(stats.fisher_exact(table).pvalue)
