#!/usr/bin/env python3
"""The controller's cost per benchmark trial against a bare container lifecycle, in one run.

    .venv/bin/python scripts/trial_overhead.py [--trials 20] [--bare 20]

Measures on the embedded demo (real Docker engine; images are built first if missing, not
timed), through the same docker-py client isobench uses:

  bare        `docker run --rm IMAGE true` as create, start, wait, remove on the demo's base
              sandbox image; half the runs before the trials and half after, so a change in
              the machine's load meets both sides alike.
  per trial   the trials of a fixed-design benchmark of base and human (the runner and the
              schedule `isobench bench` uses, one warm-up block): for each trial but the last,
              the gap from its start to the next trial's start minus its own `duration_s`
              (the wall time of the benchmark's exec, as results.json records it). What is left
              is everything the controller does around the benchmark: container create, start
              and removal, the metric-file check, the CPU-time readings, reading the metric,
              the record and the log line. The statistics at the single look (after the last
              trial) fall outside the gaps: they are per look, not per trial.

Prints both medians and their ratio. Wall times on a shared machine: compare within one run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from executor.parts import demo
from executor.parts.bench.docker_trial import DockerTrialRunner
from executor.parts.bench.measure import measure
from executor.parts.bench.sequential import SequentialDesign
from executor.parts.bench.variants import judged_image_variant
from executor.runs.pipeline import RunOptions, ensure_images
from executor.runs.resolve import resolve_job
from executor.engine.chosen import engine_client
from executor.core.resources import GpuRequest, SandboxLimits

RUN_ID = "trial-overhead"


class TimedRunner:
    """A trial runner that notes when each trial starts; the trials themselves are untouched."""

    def __init__(self, runner: DockerTrialRunner):
        self.runner = runner
        self.starts: list[float] = []
        self.records = []

    @property
    def metric_info(self):
        return self.runner.metric_info

    def __call__(self, spec):
        self.starts.append(time.monotonic())
        record = self.runner(spec)
        self.records.append(record)
        return record


def bare_lifecycle_s(image: str) -> float:
    """One `docker run --rm IMAGE true`, as docker-py calls: create, start, wait, remove."""
    client = engine_client()
    started = time.monotonic()
    container = client.containers.create(image, ["true"])
    container.start()
    container.wait()
    container.remove()
    return time.monotonic() - started


def per_trial_costs(timed: TimedRunner) -> list[float]:
    return [after - before - record.duration_s
            for before, after, record in zip(timed.starts, timed.starts[1:], timed.records)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="Timed trials per variant.")
    parser.add_argument("--bare", type=int, default=20, help="Bare lifecycles.")
    args = parser.parse_args()

    job = resolve_job(demo.DEMO_HUMAN_SHA)
    tmp = Path(tempfile.mkdtemp(prefix="isobench-trial-overhead-"))
    _, images = ensure_images(job, RunOptions(state_dir=tmp, run_id=RUN_ID), tmp,
                              lambda _: None)
    reference = job.base_sha if job.task.reference_tree == "base" else job.human_sha
    variants = {name: judged_image_variant(job.task, name, images[name], sha, reference,
                                           run_id=RUN_ID, item_id="demo")
                for name, sha in (("base", job.base_sha), ("human", job.human_sha))}
    runner = DockerTrialRunner(job.task, variants, run_id=RUN_ID, item_id="demo", log_dir=tmp,
                               timeout_s=600, limits=SandboxLimits(), gpus=GpuRequest(),
                               network="none")
    image = variants["base"].image_tag
    bare_lifecycle_s(image)  # the first create on a fresh engine pays for caches: not timed

    bare = [bare_lifecycle_s(image) for _ in range(args.bare // 2)]
    timed = TimedRunner(runner)
    measure(list(variants), timed, SequentialDesign.fixed(args.trials, 0.05), warmup=1,
            seed=1, min_effect=0.02, fixed=True, log=lambda _: None)
    bare += [bare_lifecycle_s(image) for _ in range(args.bare - args.bare // 2)]

    failed = [r.error for r in timed.records if not r.ok]
    costs = per_trial_costs(timed)
    bare_median, trial_median = statistics.median(bare), statistics.median(costs)
    print(f"bare lifecycle (create/start/wait/remove), {len(bare)} runs: "
          f"median {bare_median:.3f}s (min {min(bare):.3f}, max {max(bare):.3f})")
    print(f"controller per trial (gap - benchmark exec), {len(costs)} gaps of "
          f"{len(timed.records)} trials: median {trial_median:.3f}s "
          f"(min {min(costs):.3f}, max {max(costs):.3f})")
    print(f"ratio: {trial_median / bare_median:.2f}x")
    if failed:
        print(f"{len(failed)} trials failed; first: {failed[0]}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
