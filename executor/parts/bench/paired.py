"""agent/human on the blocks of the interleaved schedule: the paired form of the human-match rule.

Why pairs. The schedule runs every variant once per block, in a random order
(schedule.interleaved_schedule), so the agent's and the human's trials of one block ran
seconds apart on the same machine state. Most of the noise between fresh processes is shared
by such neighbours (other load on the host, frequency, page cache): on the demo under a busy
machine the per-process values of identical code had a cv of 7.5% within the fast mode, the
per-block ratios agent/human 4%. An unpaired interval on the ratio of two medians carries both
variants' noise; the paired one carries only what the neighbours do not share. This is the
analysis a randomised complete block design calls for, and it is what makes "identical code
matches the human" decidable against a 95% margin with the trials a benchmark takes.

Modes. Fresh processes of identical code run at one of two speeds (modes.py). A block where one
variant drew the slow mode and the other the fast one gives a ratio of about 0.7 or 1.45 that
says nothing about the code (on the demo under load two blocks in five were such). So the
agent's and the human's values are split into a fast and a slow mode together, at one boundary
(_two_modes: the split of the log values that separates them most, taken only when the two
modes stand SEPARATION apart in Ashman's D, the distance of their means in their pooled
standard deviation), and the discordant blocks, one trial in each mode, are left out. Leaving
them out is safe only when both variants fall slow equally often: when the discordant blocks
lean to one side (McNemar's exact test at 1%), the agent (or the human) is slow more
often, that is part of the difference, and every block is used. Taken from the ratios instead
(blocks far off the bulk), the rule failed: when one kind of discordant block outnumbers the
concordant ones, their cluster looks like the bulk.

The statistic is the Hodges-Lehmann estimate of the per-block speedup, with the exact interval
the signed-rank test inverts to; the tests are Wilcoxon signed-rank tests on the log speedups,
shifted by the bound each one tests (0 for better or worse; the log of the margin's ends for
TOST; the log of HUMAN_FRACTION for non-inferiority). Fewer than MIN_PAIRS usable blocks decide
nothing (stats.decide_human_match).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats

from executor.parts.bench.modes import MIN_GAP


# With 6 pairs the smallest one-sided signed-rank p is 1/64; fewer decide nothing (stats.py).
MIN_PAIRS = 6
# Ashman's D of the two modes: 5 (means 5 pooled sigmas apart) splits one normal mode falsely
# in about 2% of 20 values and almost never in 40, and a false split costs only power (the
# blocks it calls discordant straddle its boundary either way); the demo's modes stood 6-10
# apart.
SEPARATION = 5.0
MIN_MODE = 2  # values in the smaller mode: one far value is an outlier, not a mode
# The guard on the discordant blocks runs at a fixed 1%, not at a look's level: it decides which
# blocks are compared. At 5% it kept every block of identical code in one demo benchmark of
# seven (discordant 3 against 10 by chance), and then the far ratios made it undecided.
BALANCE_ALPHA = 0.01


class PairedBlocks(BaseModel):
    """The blocks agent/human was decided on."""

    blocks: int = Field(description="Blocks with a timed value of both the agent and the human.")
    used: int = Field(description="Blocks compared.")
    boundary: float | None = Field(default=None, description="The value between the fast and "
                                   "the slow mode, in the metric's unit; None with one mode.")
    separation: float | None = Field(default=None, description="Ashman's D of the two modes.")
    agent_slow_only: int = Field(default=0, description="Discordant blocks: the agent's trial "
                                 "in the slow mode, the human's in the fast one.")
    human_slow_only: int = Field(default=0, description="Discordant blocks the other way.")
    balance_p: float | None = Field(default=None, description="McNemar's exact p that the "
                                    "discordant blocks fall either way equally; None without "
                                    "any.")

    @property
    def left_out(self) -> int:
        return self.blocks - self.used


def usable_pairs(pairs: Sequence[tuple[float, float]], lower_is_better: bool
                 ) -> tuple[list[tuple[float, float]], PairedBlocks]:
    """The (agent, human) pairs to compare and how they were chosen (module doc)."""
    pairs = list(pairs)
    chosen = PairedBlocks(blocks=len(pairs), used=len(pairs))
    found = _two_modes([v for pair in pairs for v in pair])
    if found is None:
        return pairs, chosen
    chosen.boundary, chosen.separation = found

    def slow(value: float) -> bool:
        return value > chosen.boundary if lower_is_better else value < chosen.boundary

    modes = [(slow(a), slow(h)) for a, h in pairs]
    chosen.agent_slow_only = sum(a and not h for a, h in modes)
    chosen.human_slow_only = sum(h and not a for a, h in modes)
    discordant = chosen.agent_slow_only + chosen.human_slow_only
    if discordant == 0:
        return pairs, chosen
    chosen.balance_p = float(stats.binomtest(chosen.agent_slow_only, discordant).pvalue)
    if chosen.balance_p < BALANCE_ALPHA:
        return pairs, chosen
    kept = [pair for pair, (a, h) in zip(pairs, modes) if a == h]
    chosen.used = len(kept)
    return kept, chosen


def _two_modes(values: Sequence[float]) -> tuple[float, float] | None:
    """(boundary, separation) of a fast and a slow mode in `values`, or None for one mode: the
    cut of the sorted log values with the largest between-mode variance (Otsu's), kept when
    Ashman's D of the two sides reaches SEPARATION and the modes are MIN_GAP apart."""
    s = np.sort(np.log(np.asarray(values, dtype=float)))
    if s.size < 2 * MIN_MODE + 2:
        return None
    best, cut = -1.0, 0
    for k in range(MIN_MODE, s.size - MIN_MODE + 1):
        between = k * (s.size - k) * (s[k:].mean() - s[:k].mean()) ** 2
        if between > best:
            best, cut = between, k
    low, high = s[:cut], s[cut:]
    spread = math.sqrt(low.var(ddof=1) + high.var(ddof=1))
    distance = float(high.mean() - low.mean())
    separation = math.inf if spread == 0 else math.sqrt(2) * distance / spread
    if separation < SEPARATION or distance < MIN_GAP:
        return None
    # which side is slow (high latency, low throughput) is the caller's to say
    return math.exp((s[cut - 1] + s[cut]) / 2), min(separation, 1e9)


def block_speedups(pairs: Sequence[tuple[float, float]], lower_is_better: bool) -> np.ndarray:
    """Per block, agent over human oriented so that > 1 means the agent was faster."""
    x = np.asarray(pairs, dtype=float)
    if x.ndim != 2 or x.shape[1] != 2 or np.any(x <= 0) or not np.all(np.isfinite(x)):
        raise ValueError("paired speedups need (agent, human) pairs of positive numbers")
    agent, human = x[:, 0], x[:, 1]
    return human / agent if lower_is_better else agent / human


def signed_rank_p(speedups: np.ndarray, bound: float, above: bool = True) -> float:
    """One-sided Wilcoxon signed-rank p of H1 "the speedup is above `bound`" (below with
    `above` False), on log speedups: the paired counterpart of stats.p_beyond."""
    shifted = np.log(speedups) - math.log(bound)
    if not np.any(shifted != 0):
        return 1.0  # every block exactly at the bound: no evidence either way
    return float(stats.wilcoxon(shifted, alternative="greater" if above else "less",
                                zero_method="wilcox").pvalue)


def hodges_lehmann(speedups: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """(estimate, low, high): the Hodges-Lehmann estimate of the typical block speedup and its
    exact distribution-free interval, the one the signed-rank test inverts to.

    On log speedups d: the estimate is the median of the Walsh averages (d_i + d_j) / 2, i <= j;
    the interval runs from the C-th smallest to the C-th largest of them, C the largest count
    with P(T+ < C) <= (1 - confidence) / 2 under the signed-rank null. Against the median of
    the blocks (a bootstrap interval) it is as robust to a far value and, on a normal bulk,
    about 1.2 times as precise: the interval is that much narrower for the same trials."""
    d = np.log(np.asarray(speedups, dtype=float))
    walsh = np.sort((d[:, None] + d[None, :])[np.triu_indices(d.size)] / 2)
    estimate = float(np.median(walsh))
    counts = _signed_rank_counts(d.size)
    cdf = np.cumsum(counts) / counts.sum()  # cdf[t] = P(T+ <= t)
    tail = (1 - confidence) / 2
    c = int(np.searchsorted(cdf, tail, side="right"))  # P(T+ <= c - 1) <= tail < P(T+ <= c)
    if c == 0:  # too few blocks for any interval at this level: the widest there is
        return math.exp(estimate), math.exp(walsh[0]), math.exp(walsh[-1])
    return math.exp(estimate), math.exp(walsh[c - 1]), math.exp(walsh[walsh.size - c])


def _signed_rank_counts(n: int) -> np.ndarray:
    """How many of the 2^n sign patterns give each value of T+ (0 .. n(n+1)/2)."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    return counts
