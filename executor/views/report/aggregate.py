"""Results across commits, with intervals that say how much a batch of N commits can tell.

The unit of resampling is the commit (each commit's speedup is itself a median of trials):
a percentile bootstrap over commits, seeded, so the same state gives the same report.
"""

from __future__ import annotations

import numpy as np

from executor.core.denominators import counts, denominator_line, ending
from executor.parts.bench.human_match import HUMAN_FRACTION
from executor.views.report.model import Aggregate, CommitReport, Interval, NoiseFloor

RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 0
IMPROVED = ("improved", "matches_human")
CHANGE_VERDICTS = ("improved", "regressed")


def speedup_of(commit: CommitReport, pair: str) -> float | None:
    return next((s.speedup for s in commit.speedups if s.pair == pair and s.speedup > 0), None)


def _verdict_of(commit: CommitReport, pair: str) -> str | None:
    return next((s.verdict for s in commit.speedups if s.pair == pair), None)


def _interval(values: np.ndarray, stat, rng: np.random.Generator) -> Interval:
    if values.size == 0:
        return Interval()
    estimate = float(stat(values))
    if values.size < 2:
        return Interval(estimate=estimate, n=int(values.size))
    picks = rng.integers(0, values.size, size=(RESAMPLES, values.size))
    boot = np.array([stat(values[row]) for row in picks])
    tail = (1 - CONFIDENCE) / 2 * 100
    return Interval(estimate=estimate, low=float(np.percentile(boot, tail)),
                    high=float(np.percentile(boot, 100 - tail)), n=int(values.size))


def _geomean(values: np.ndarray) -> float:
    return float(np.exp(np.mean(np.log(values))))


def _share(values: np.ndarray) -> float:
    return float(np.mean(values))


def matches_human(commit: CommitReport) -> bool:
    """The interval rule, as the benchmark decides it (stats.decide_human_match): agent and
    human improved over base and agent/human matches_human (or better). A verdict that
    ended `suspect` or `incorrect` does not match, whatever its numbers. Results written
    before the interval rule have no such agent/human verdict: their point estimate against
    HUMAN_FRACTION is used."""
    if commit.verdict == "matches_human":
        return True
    if commit.verdict not in IMPROVED or \
            any(_verdict_of(commit, p) != "improved" for p in ("agent/base", "human/base")):
        return False
    versus = _verdict_of(commit, "agent/human")
    if versus in ("matches_human", "improved", "below_human", "inconclusive"):
        return versus in ("matches_human", "improved")
    agent, human = speedup_of(commit, "agent/base"), speedup_of(commit, "human/base")
    return bool(agent and human and agent >= HUMAN_FRACTION * human)


def aggregate(commits: list[CommitReport]) -> Aggregate:
    """Shares and geometric means over the commits whose agent variant was measured."""
    rng = np.random.default_rng(SEED)
    measured = [c for c in commits if speedup_of(c, "agent/base") is not None]
    verdicts: dict[str, int] = {}
    for c in commits:
        if c.verdict:
            verdicts[c.verdict] = verdicts.get(c.verdict, 0) + 1
    arr = lambda xs: np.array([x for x in xs if x is not None], dtype=float)  # noqa: E731
    endings = counts(ending(measured=c in measured, state=c.state, signature=c.signature,
                            status=c.sequence[-1] if c.sequence else None) for c in commits)
    return Aggregate(
        measured=len(measured), planned=len(commits), endings=endings,
        denominator=denominator_line(endings, len(commits)), confidence=CONFIDENCE,
        share_improved=_interval(arr(float(c.verdict in IMPROVED) for c in measured), _share,
                                 rng),
        share_matching_human=_interval(arr(float(matches_human(c)) for c in measured), _share,
                                       rng),
        geomean_agent_vs_base=_interval(arr(speedup_of(c, "agent/base") for c in measured),
                                        _geomean, rng),
        geomean_agent_vs_human=_interval(arr(speedup_of(c, "agent/human") for c in measured),
                                         _geomean, rng),
        geomean_human_vs_base=_interval(arr(speedup_of(c, "human/base") for c in commits),
                                        _geomean, rng),
        verdicts=dict(sorted(verdicts.items())))


def noise_floor(commits: list[CommitReport]) -> NoiseFloor | None:
    """The A/A controls (base2/base) that ran: how far identical code measured apart."""
    controls = [(s.speedup, s.verdict) for c in commits for s in c.speedups
                if s.pair == "base2/base" and s.speedup > 0]
    if not controls:
        return None
    gaps = np.array([abs(s - 1) * 100 for s, _ in controls])
    return NoiseFloor(controls=len(controls),
                      false_changes=sum(1 for _, v in controls if v in CHANGE_VERDICTS),
                      median_abs_pct=round(float(np.median(gaps)), 3),
                      max_abs_pct=round(float(gaps.max()), 3))
