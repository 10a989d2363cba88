"""When to stop taking trials: a group-sequential design with alpha spending.

A fixed trial count is too many for a 25x change and too few for a 3% one. Instead, trials run
in interleaved blocks and the data are looked at after planned numbers of trials per variant
(the looks: `min_trials`, then every `look_every`, up to `max_trials`). At each look every
comparison that is still undecided is decided at that look's own level alpha_k; a comparison
decided at a look keeps that verdict (it is frozen), and the trials stop when every comparison
that matters is decided or the last look is reached.

Why the levels are valid under this optional stopping: the alpha_k are the increments of a
Lan-DeMets spending function, alpha_k = A(t_k) - A(t_{k-1}) with t_k = trials_k / max_trials
and A(1) = alpha, so sum_k alpha_k = alpha. A false verdict at some look is the union of the
events "false verdict at look k", each of probability at most alpha_k, so the chance of any
false verdict over the whole sequence is at most alpha (Bonferroni's inequality) whatever the
dependence between looks. Exact group-sequential boundaries (which spend the same alpha less
conservatively) need the joint distribution of the statistic across looks; for a rank test on
per-process medians and a bootstrap interval there is none in closed form, and the union bound
needs none. The cost is some power, which the simulation in scripts/sequential_check.py
measures.

Which spending function: `pocock` (Lan-DeMets Pocock-type, A(t) = alpha ln(1 + (e-1) t)) by
default, because it spends early: a 25x change is decided at the first look (5 trials a side
at the defaults: the smallest one-sided Mann-Whitney p with 5 a side is 1/252 = 0.004, below
the first look's 0.0063 per side). `obf` (O'Brien-Fleming-type, A(t) = 2 - 2 Phi(z_{1-alpha/2}
/ sqrt t)) keeps almost all alpha for the last look and cannot decide anything with 5 trials a
side; `bonferroni` splits alpha equally over the looks. With one look (fixed mode, `--trials`)
all three give alpha at that look: exactly the fixed design.
"""

from __future__ import annotations

import math
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator
from scipy import stats


class Spending(StrEnum):
    """How alpha is spread over the looks."""

    POCOCK = "pocock"
    OBF = "obf"
    BONFERRONI = "bonferroni"


# Defaults, per variant (warm-up trials not counted). 5 before the first look: the fewest with
# which a one-sided Mann-Whitney test can reach the first look's level (see above). A look
# every 5: each look costs alpha, so looking after every block would leave too little for the
# later looks where small effects are decided. 30 at most: 1.5x the old fixed 20, enough for a
# 3% effect under bimodal noise (scripts/sequential_check.py).
DEFAULT_MIN_TRIALS = 5
DEFAULT_LOOK_EVERY = 5
DEFAULT_MAX_TRIALS = 30


class SequentialDesign(BaseModel):
    """The planned looks and the alpha each one may spend."""

    min_trials: int = Field(default=DEFAULT_MIN_TRIALS, ge=2,
                            description="Timed trials per variant before the first look.")
    look_every: int = Field(default=DEFAULT_LOOK_EVERY, ge=1,
                            description="Trials per variant between two looks.")
    max_trials: int = Field(default=DEFAULT_MAX_TRIALS, ge=2,
                            description="Trials per variant at the last look (the cap).")
    alpha: float = Field(default=0.05, gt=0, lt=1,
                         description="Total false-verdict rate over all looks.")
    spending: Spending = Field(default=Spending.POCOCK,
                               description="Spending function: pocock | obf | bonferroni.")

    @model_validator(mode="after")
    def _first_look_fits(self) -> "SequentialDesign":
        if self.min_trials > self.max_trials:
            raise ValueError(f"min_trials {self.min_trials} is above max_trials "
                             f"{self.max_trials}")
        return self

    @classmethod
    def fixed(cls, trials: int, alpha: float) -> "SequentialDesign":
        """One look after `trials`: the classic fixed design, at the full alpha."""
        return cls(min_trials=trials, look_every=trials, max_trials=trials, alpha=alpha)

    def looks(self) -> list[int]:
        """Trials per variant at each look; the last is always max_trials."""
        points = list(range(self.min_trials, self.max_trials, self.look_every))
        return points + [self.max_trials]

    def levels(self) -> list[float]:
        """alpha_k of each look (two-sided: alpha_k/2 per direction); they sum to alpha."""
        looks = self.looks()
        spent = [alpha_spent(n / self.max_trials, self.alpha, self.spending, len(looks), i + 1)
                 for i, n in enumerate(looks)]
        return [now - before for before, now in zip([0.0] + spent[:-1], spent)]


def alpha_spent(t: float, alpha: float, spending: Spending = Spending.POCOCK,
                n_looks: int = 1, look: int = 1) -> float:
    """Cumulative alpha spent by information fraction t in (0, 1] (A(1) = alpha)."""
    if not 0 < t <= 1:
        raise ValueError(f"information fraction must be in (0, 1], got {t}")
    if t == 1:
        return alpha
    if spending is Spending.POCOCK:
        return alpha * math.log(1 + (math.e - 1) * t)
    if spending is Spending.OBF:
        return float(2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / math.sqrt(t)))
    return alpha * look / n_looks  # Bonferroni: an equal share per look
