"""Which variant runs when: interleaved, randomised blocks.

Running all base trials, then all human trials, confounds the effect with drift (thermal state,
a neighbour's job, page cache). Each block runs every variant once, in a fresh random order, so
drift spreads evenly over the variants. The seed is recorded so a rerun uses the same order.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, Field


class TrialSpec(BaseModel):
    """One slot of the schedule."""

    index: int = Field(description="Position in the whole schedule, from 0.")
    block: int = Field(description="Block number; warm-up blocks are negative.")
    variant: str = Field(description="base | human | agent | base2")
    warmup: bool = Field(description="Warm-up trials are run and recorded but not analysed.")


def interleaved_schedule(variants: list[str], trials: int, warmup: int,
                         seed: int) -> list[TrialSpec]:
    """`warmup` blocks then `trials` blocks; every block holds each variant once."""
    if trials < 1:
        raise ValueError("trials must be at least 1")
    rng = random.Random(seed)
    schedule: list[TrialSpec] = []
    for block in range(-warmup, trials):
        order = list(variants)
        rng.shuffle(order)
        for variant in order:
            schedule.append(TrialSpec(index=len(schedule), block=block, variant=variant,
                                      warmup=block < 0))
    return schedule
