"""The timing core: run an interleaved schedule through a TrialRunner, then decide.

Shared by `benchmark()` (containers) and scripts/gpu_timing_check.py (host processes), so a
check on a GPU box exercises exactly the schedule and statistics that isobench runs use.
Imports nothing of Docker.
"""

from __future__ import annotations

import time
from typing import Callable

from pydantic import BaseModel, Field

from executor.bench.results import TrialRecord, timed_values
from executor.bench.schedule import interleaved_schedule
from executor.bench.stats import compare_variants
from executor.bench.trial import TrialRunner

Log = Callable[[str], None]
MIN_GOOD_TRIALS = 2


class TrialsVerdict(BaseModel):
    """The verdict on a set of trials, with the statistics behind it."""

    verdict: str = Field(description="A stats verdict, or bench_failed.")
    reason: str = Field(description="Why, in one line.")
    analysis: dict | None = Field(default=None, description="ComparisonReport as JSON; None "
                                                            "when too few trials succeeded.")


def run_trials(variants: list[str], runner: TrialRunner, *, trials: int, warmup: int,
               seed: int, log: Log = print) -> list[TrialRecord]:
    """`warmup` blocks then `trials` blocks, each variant once per block in a random order."""
    schedule = interleaved_schedule(variants, trials, warmup, seed)
    records: list[TrialRecord] = []
    started = time.monotonic()
    for spec in schedule:
        record = runner(spec)
        records.append(record)
        status = f"{record.value:.6g}" if record.ok else f"FAILED ({record.error})"
        log(f"bench: trial {spec.index + 1}/{len(schedule)} {spec.variant:<6}"
            f"{' (warm-up)' if spec.warmup else ''}: {status}")
    log(f"bench: {len(schedule)} trials in {time.monotonic() - started:.1f}s")
    return records


def decide_trials(records: list[TrialRecord], variants: list[str], *, lower_is_better: bool,
                  min_effect: float, alpha: float, seed: int) -> TrialsVerdict:
    """Statistics on the timed trials; bench_failed when a variant has too few values."""
    values = {name: timed_values(records, name) for name in variants}
    short = [name for name, vals in values.items() if len(vals) < MIN_GOOD_TRIALS]
    if short:
        failures = [t.error for t in records if not t.ok]
        return TrialsVerdict(verdict="bench_failed",
                        reason=f"fewer than {MIN_GOOD_TRIALS} good trials for "
                               f"{', '.join(short)}; first error: "
                               f"{failures[0] if failures else 'none'}")
    report = compare_variants(values, lower_is_better=lower_is_better, min_effect=min_effect,
                              alpha=alpha, seed=seed)
    return TrialsVerdict(verdict=report.verdict, reason=report.reason,
                    analysis=report.model_dump(mode="json"))
