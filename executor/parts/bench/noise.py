"""The noise floor: what A/A controls say about a setup, per item and for a whole run.

An A/A control (`--aa` on one commit, `isobench run --aa-sample F` on a sample of a batch) runs
the base image a second time as the variant base2. Its comparison with base must come out
no_change or inconclusive; every improved/regressed is a false change. Over a run, the share of
false changes is the setup's measured false-change rate (the rule promises at most alpha), and
the width of the A/A intervals gives the minimum detectable effect: the smallest true speedup
the rule would call improved in about 80% of runs at that noise.

MDE, from the A/A interval's half-width h on the log scale at its confidence 1 - alpha: a true
effect e is called improved when the interval clears 1, i.e. when log e exceeds h plus sampling
luck; with 80% power that is log e = h (z_{1-alpha/2} + z_0.8) / z_{1-alpha/2}. It is never
reported below the equivalence margin, under which nothing is called improved however precise.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from pydantic import BaseModel, Field

from executor.core.journal import utcnow

AA_PAIR = "base2/base"
POWER = 0.8
FALSE_CHANGES = ("improved", "regressed")


class NoiseFloor(BaseModel):
    """One item's A/A control (results.json `noise_floor`)."""

    aa_verdict: str = Field(description="Verdict of base2/base.")
    false_change: bool = Field(description="base2/base came out improved or regressed.")
    aa_speedup: float = Field(description="base2/base speedup (1.0 is ideal).")
    ci_low: float | None = Field(default=None, description="Its interval, lower bound.")
    ci_high: float | None = Field(default=None, description="Its interval, upper bound.")
    mde: float | None = Field(default=None, description="Minimum detectable effect at 80% "
                              "power, as a fraction (0.03 = 3%); None without an interval.")
    trials_per_variant: int | None = Field(default=None, description="A/A trials per variant.")


def item_noise_floor(analysis: dict) -> NoiseFloor:
    """The noise floor of one benchmark's analysis (which holds a base2/base comparison)."""
    decision = analysis["comparisons"][AA_PAIR]
    c = decision["comparison"]
    return NoiseFloor(aa_verdict=decision["verdict"],
                      false_change=decision["verdict"] in FALSE_CHANGES,
                      aa_speedup=c["speedup"], ci_low=c["ci_low"], ci_high=c["ci_high"],
                      mde=minimum_detectable_effect(c["ci_low"], c["ci_high"],
                                                    decision["alpha"], decision["min_effect"]),
                      trials_per_variant=min(c["n_candidate"], c["n_baseline"]))


def minimum_detectable_effect(ci_low: float | None, ci_high: float | None, alpha: float,
                              min_effect: float, power: float = POWER) -> float | None:
    """See the module doc; a fraction (0.05 = 5%)."""
    if ci_low is None or ci_high is None or ci_low <= 0:
        return None
    from scipy import stats  # here, not at the top: `status` reads noise floors, and
    # importing scipy.stats took longer than reading ISO-Bench's whole state
    half_width = (math.log(ci_high) - math.log(ci_low)) / 2
    z_alpha = float(stats.norm.ppf(1 - alpha / 2))
    z_power = float(stats.norm.ppf(power))
    log_effect = half_width * (z_alpha + z_power) / z_alpha
    return max(math.exp(log_effect) - 1, min_effect)


# --------------------------------------------------------------------------- sampling


def aa_sample(item_ids: list[str], fraction_or_count: float, seed: int) -> list[str]:
    """The plan items that get an A/A control: a seeded sample, in plan order.

    `fraction_or_count` below 1 is a fraction of the items (rounded up, so a small plan with
    any fraction still gets one control); 1 or more is a count (capped at the plan's size).
    The same seed and items give the same sample, so a resume controls the same items.
    """
    if fraction_or_count <= 0:
        return []
    n = (math.ceil(fraction_or_count * len(item_ids)) if fraction_or_count < 1
         else int(fraction_or_count))
    chosen = set(random.Random(seed).sample(sorted(item_ids), min(n, len(item_ids))))
    return [item for item in item_ids if item in chosen]


# --------------------------------------------------------------------------- run level


class ItemFloor(BaseModel):
    """One A/A item in the run summary."""

    item_id: str = Field(description="Plan item.")
    aa_verdict: str = Field(description="Verdict of its base2/base comparison.")
    mde: float | None = Field(default=None, description="Its minimum detectable effect.")


class RunNoiseFloor(BaseModel):
    """The run-level noise floor (STATE/runs/.../<run_id>/noise_floor.json)."""

    aa_items: int = Field(description="Items with a finished A/A control.")
    false_changes: int = Field(description="Of those, base2/base improved or regressed.")
    false_change_rate: float | None = Field(default=None, description="false_changes / "
                                            "aa_items; None without A/A items.")
    rate_ci_high: float | None = Field(default=None, description="Upper bound of its 95% "
                                       "Clopper-Pearson interval (what the data rule out).")
    mde_median: float | None = Field(default=None, description="Median minimum detectable "
                                     "effect over the A/A items (0.03 = 3%).")
    mde_max: float | None = Field(default=None, description="The largest of them.")
    items: list[ItemFloor] = Field(default_factory=list, description="Per A/A item.")
    sampled: list[str] = Field(default_factory=list, description="Items chosen for A/A "
                                                                 "controls by --aa-sample.")
    updated_at: str = Field(default_factory=lambda: utcnow().isoformat(),
                            description="When this summary was written.")


def run_noise_floor(item_results: dict[str, dict], sampled: list[str] | None = None
                    ) -> RunNoiseFloor:
    """Summary over the items' results.json (item id -> parsed JSON) that hold a noise floor."""
    floors = [ItemFloor(item_id=item, aa_verdict=r["noise_floor"]["aa_verdict"],
                        mde=r["noise_floor"].get("mde"))
              for item, r in sorted(item_results.items()) if r.get("noise_floor")]
    false = sum(f.aa_verdict in FALSE_CHANGES for f in floors)
    mdes = sorted(f.mde for f in floors if f.mde is not None)
    summary = RunNoiseFloor(aa_items=len(floors), false_changes=false, items=floors,
                            sampled=list(sampled or []))
    if floors:
        from scipy import stats  # see minimum_detectable_effect
        summary.false_change_rate = false / len(floors)
        summary.rate_ci_high = float(stats.binomtest(false, len(floors)).proportion_ci(
            0.95, method="exact").high)
    if mdes:
        summary.mde_median = float(mdes[len(mdes) // 2] if len(mdes) % 2
                                   else (mdes[len(mdes) // 2 - 1] + mdes[len(mdes) // 2]) / 2)
        summary.mde_max = mdes[-1]
    return summary


def collect_run_noise_floor(run_dir: Path, results_name: str,
                            sampled: list[str] | None = None) -> RunNoiseFloor:
    """The summary over every item's results file under `run_dir` (nothing is written)."""
    results = {}
    for path in sorted(run_dir.glob(f"*/{results_name}")):
        try:
            results[path.parent.name] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a results file being written right now is counted next time
    return run_noise_floor(results, sampled)


def read_run_noise_floor(path: Path) -> RunNoiseFloor | None:
    """A noise_floor.json, or None (none written, or unreadable)."""
    try:
        return RunNoiseFloor.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None


def describe(summary: RunNoiseFloor) -> str:
    """One line for `status` and the end of `isobench run`."""
    if not summary.aa_items:
        sampled = f" ({len(summary.sampled)} sampled, none finished)" if summary.sampled else ""
        return f"noise floor: no A/A controls yet{sampled}"
    mde = (f"; minimum detectable effect median {summary.mde_median:.1%}, max "
           f"{summary.mde_max:.1%}" if summary.mde_median is not None else "")
    return (f"noise floor: {summary.false_changes} false change(s) in {summary.aa_items} A/A "
            f"control(s) ({summary.false_change_rate:.0%}, 95% upper bound "
            f"{summary.rate_ci_high:.0%}){mde}")
