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
variant drew the slow mode and the other the fast one gives a ratio of about 0.7 or 1.4 that
says nothing about the code. Splitting the values themselves into modes does not find such
blocks here: the load that pairing cancels also smears the values, so the gap between the modes
closes (it did on the demo). The ratios show them plainly instead: a bulk around the true
speedup, and blocks far off it on either side. A block is left out when its log speedup lies
further from the median than FAR_SIGMAS robust standard deviations of the ratios and MIN_FAR
(5%); of normal data, FAR_SIGMAS leaves out about one value in a million. Leaving them out is
safe only when both variants fall slow equally often: when the far blocks lean to one side
(a binomial test at 5%), the agent (or the human) is slow more often, that is part of the
difference, and every block is used.

The statistic is the Hodges-Lehmann estimate of the per-block speedup, with the exact interval
the signed-rank test inverts to; the tests are Wilcoxon signed-rank tests on the log speedups,
shifted by the bound each one tests (0 for better or worse; log of the margin's ends for TOST; log HUMAN_FRACTION for
non-inferiority). Fewer than MIN_PAIRS usable blocks: the unpaired rule decides
(stats.decide_human_match), as it did for every benchmark before blocks were paired.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats


# With 6 pairs the smallest one-sided signed-rank p is 1/64: enough for the last looks' levels
# only when alpha is generous; fewer pairs are left to the unpaired rule.
MIN_PAIRS = 6
# Far blocks (module doc): 5 robust sigmas, as modes.GAP_SIGMAS, and at least 5%, as modes.MIN_GAP.
FAR_SIGMAS = 5.0
MIN_FAR = math.log(1.05)
MAD_TO_SIGMA = 1.4826
# The guard on the far blocks' sides runs at a fixed 5%, not at a look's level: it decides which
# blocks are compared, and a lenient guard (one that keeps every block more often) only costs
# power.
BALANCE_ALPHA = 0.05


class PairedBlocks(BaseModel):
    """The blocks agent/human was decided on."""

    blocks: int = Field(description="Blocks with a timed value of both the agent and the human.")
    used: int = Field(description="Blocks compared.")
    far_agent_slow: int = Field(default=0, description="Far blocks where the agent was slow "
                                "(left out unless the sides are unbalanced).")
    far_human_slow: int = Field(default=0, description="Far blocks where the human was slow.")
    far_limit: float | None = Field(default=None, description="The distance from the median "
                                    "speedup, as a factor (1.12: 12%), beyond which a block is "
                                    "far; None with fewer than MIN_PAIRS blocks.")
    balance_p: float | None = Field(default=None, description="Two-sided binomial p that far "
                                    "blocks fall on either side equally; None without any.")

    @property
    def left_out(self) -> int:
        return self.blocks - self.used


def usable_pairs(pairs: Sequence[tuple[float, float]], lower_is_better: bool
                 ) -> tuple[list[tuple[float, float]], PairedBlocks]:
    """The (agent, human) pairs to compare and how they were chosen (module doc)."""
    pairs = list(pairs)
    if len(pairs) < MIN_PAIRS:
        return pairs, PairedBlocks(blocks=len(pairs), used=len(pairs))
    logs = np.log(block_speedups(pairs, lower_is_better))
    center, limit = _bulk(logs)
    agent_slow = logs < center - limit  # speedup < 1 beyond the bulk: the agent ran slow
    human_slow = logs > center + limit
    chosen = PairedBlocks(blocks=len(pairs), used=len(pairs), far_limit=math.exp(limit),
                          far_agent_slow=int(agent_slow.sum()),
                          far_human_slow=int(human_slow.sum()))
    far = chosen.far_agent_slow + chosen.far_human_slow
    if far == 0:
        return pairs, chosen
    chosen.balance_p = float(stats.binomtest(chosen.far_agent_slow, far).pvalue)
    if chosen.balance_p < BALANCE_ALPHA:
        return pairs, chosen
    keep = ~(agent_slow | human_slow)
    chosen.used = int(keep.sum())
    return [pair for pair, kept in zip(pairs, keep) if kept], chosen


def _bulk(logs: np.ndarray, rounds: int = 5) -> tuple[float, float]:
    """(median, far limit) of the bulk of log speedups. The robust sigma of all blocks is
    inflated by the far ones themselves (a third of the blocks, at 20% slow processes), so it is
    taken again on the blocks inside the limit until the limit settles."""
    inside = logs
    for _ in range(rounds):
        center = float(np.median(inside))
        sigma = MAD_TO_SIGMA * float(np.median(np.abs(inside - center)))
        limit = max(FAR_SIGMAS * sigma, MIN_FAR)
        kept = logs[np.abs(logs - center) <= limit]
        if kept.size == inside.size or kept.size < MIN_PAIRS:
            break
        inside = kept
    return center, limit


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
