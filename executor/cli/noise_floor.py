"""`isobench run --aa-sample F`: A/A controls on a seeded sample of a batch, and the run's
noise floor (bench/noise.py) written to STATE/runs/.../<run_id>/noise_floor.json."""

from __future__ import annotations

import hashlib

import click

from executor.runs.batch.commit_item import CommitItemSpec
from executor.parts.bench.noise import (RunNoiseFloor, aa_sample, collect_run_noise_floor, describe,
                                  read_run_noise_floor)
from executor.core.journal import write_json_atomic
from executor.records.state import RESULTS_NAME, RunKey, StateLayout
from executor.core.task import Plan


def aa_sample_option(fn):
    """--aa-sample F"""
    return click.option(
        "--aa-sample", type=click.FloatRange(min=0), default=0, show_default=True,
        help="A/A controls (base2 = the base image again) on a seeded sample of the plan's "
             "items: a fraction (< 1, rounded up) or a count. Their false changes and "
             "minimum detectable effect go to noise_floor.json and `isobench status`; a "
             "--resume without it keeps the run's sample.")(fn)


def sample_seed(key: RunKey, seed: int | None) -> int:
    """--seed, else one derived from the run id: a resume samples the same items."""
    if seed is not None:
        return seed
    return int.from_bytes(hashlib.sha256(key.run_id.encode()).digest()[:4], "big")


def plan_aa_controls(spec: CommitItemSpec, layout: StateLayout, key: RunKey, plan: Plan,
                     fraction_or_count: float, seed: int | None) -> CommitItemSpec:
    """The spec with its A/A items: sampled now, or (a resume without --aa-sample) the ones
    the run recorded; the choice is recorded in noise_floor.json."""
    path = layout.noise_floor_path(key)
    recorded = read_run_noise_floor(path)
    if fraction_or_count:
        chosen = aa_sample([i.item_id for i in plan.items], fraction_or_count,
                           sample_seed(key, seed))
    elif recorded is not None and recorded.sampled:
        chosen = recorded.sampled
    else:
        return spec
    summary = collect_run_noise_floor(path.parent, RESULTS_NAME, chosen)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, summary)
    click.echo(f"A/A controls on {len(chosen)} item(s): {', '.join(chosen)}", err=True)
    return spec.model_copy(update={"aa_items": chosen})


def finish_noise_floor(layout: StateLayout, key: RunKey) -> RunNoiseFloor | None:
    """After the batch: the A/A items' results summarized into noise_floor.json, when the run
    sampled any or an item holds an A/A control anyway."""
    path = layout.noise_floor_path(key)
    recorded = read_run_noise_floor(path)
    summary = collect_run_noise_floor(path.parent, RESULTS_NAME,
                                      recorded.sampled if recorded else [])
    if not summary.aa_items and not summary.sampled:
        return None
    write_json_atomic(path, summary)
    click.echo(f"run {key.run_id}: {describe(summary)}", err=True)
    return summary
