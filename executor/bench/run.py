"""Benchmark base, human and agent in isolation, and decide what the numbers say.

Order of work, each step able to end the benchmark with a precise verdict:
  prepare the agent variant (apply, rebuild if native)  -> apply_failed | build_failed
  correctness gate on the agent variant                  -> incorrect
  interleaved trials, each in a fresh container          -> bench_failed if a variant has
                                                            fewer than 2 good trials
  statistics on per-trial values                         -> improved | matches_human |
                                                            regressed | no_change | inconclusive
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field

from executor.bench.docker_trial import DockerTrialRunner
from executor.bench.gpu import IDLE_TIMEOUT_S, make_guard
from executor.bench.measure import decide_trials, run_trials
from executor.bench.results import BenchResults, GateResult, VariantInfo
from executor.bench.trial import TrialRunner
from executor.bench.variants import VariantFailure, prepare_agent_variant
from executor.build import ImageRef
from executor.repo import REPO_DIR
from executor.sandbox import GpuRequest, Resources, Sandbox, SandboxLimits, SandboxSpec
from executor.task import CommitJob

Log = Callable[[str], None]


class BenchOptions(BaseModel):
    """How to measure: repetitions, isolation and the decision thresholds."""

    # 20 trials: calibrated on the demo (scripts/calibrate_demo.py) on a shared 2-core machine,
    # where 10 missed a 5% regression in ~1 run of 20 and 20 missed none; see docs.
    model_config = ConfigDict(extra="forbid")  # GPUs and limits are in sandbox.Resources

    trials: int = Field(default=20, ge=2, json_schema_extra={"flag": "--trials"},
                        description="Timed trials per variant, each in a fresh container.")
    warmup: int = Field(default=1, ge=0, json_schema_extra={"flag": "--warmup"},
                        description="Warm-up blocks (each variant once), not analysed.")
    seed: int | None = Field(default=None, json_schema_extra={"flag": "--seed"},
                             description="Seed of the trial order (recorded); in batches also "
                                         "of the retry jitter.")
    aa: bool = Field(default=False, json_schema_extra={"flag": "--aa"},
                     description="Add 'base2', a second copy of base: an A/A control of the "
                                 "setup.")
    timeout_s: int = Field(default=1800, ge=1, json_schema_extra={"flag": "--trial-timeout"},
                           description="Seconds one benchmark run may take.")
    min_effect: float = Field(default=0.02, gt=0, le=1, json_schema_extra={"flag": "--min-effect"},
                              description="Smallest speedup that counts, as a fraction "
                                          "(0.02 = 2%).")
    alpha: float = Field(default=0.05, gt=0, le=0.5, json_schema_extra={"flag": "--alpha"},
                         description="Chance of calling identical code changed (alpha/2 per "
                                     "direction).")
    network: str = Field(default="none", description="Network mode of benchmark containers.")
    gpu_idle_timeout_s: float = Field(default=IDLE_TIMEOUT_S,
                                      description="Longest wait for an idle GPU per trial.")


def _image_variant(name: str, image: ImageRef, sha: str) -> VariantInfo:
    return VariantInfo(name=name, image_tag=image.tag, image_id=image.id, commit=sha)


def run_gate(task, variant: VariantInfo, *, run_id: str, item_id: str, log_dir: Path,
             limits: SandboxLimits, gpus: GpuRequest, network: str) -> GateResult:
    """The task's tests on the agent variant, in a fresh container."""
    spec = SandboxSpec(image=variant.image_tag, budget_s=3900, run_id=run_id, item=item_id,
                       phase="gate", limits=limits, gpus=gpus, network=network, env=task.env,
                       workdir=REPO_DIR)
    log_file = log_dir / "gate.log"
    with Sandbox(spec) as sandbox:
        result = sandbox.exec(task.test_command, 3600, workdir=REPO_DIR,
                              stdout_file=log_file, stderr_file=log_file)
    return GateResult(command=task.test_command, passed=result.ok, exit_code=result.exit_code,
                      duration_s=result.duration_s, output_tail=result.tail(15),
                      log_file=str(log_file))


def bench_record(options: BenchOptions, resources: Resources) -> dict:
    """How a benchmark measured, as results.json and manifest.json record it (the GPUs and
    limits under the keys `gpus` and `limits`, as before they moved to Resources)."""
    return {**options.model_dump(mode="json"), "gpus": resources.gpus.model_dump(mode="json"),
            "limits": resources.limits.model_dump(mode="json")}


def benchmark(job: CommitJob, images: dict[str, ImageRef], patch: bytes | None,
              options: BenchOptions, out_dir: Path, run_id: str, log: Log = print,
              runner: TrialRunner | None = None, *,
              resources: Resources | None = None) -> BenchResults:
    """Measure base and human (and the agent's patch, and a second base with `aa`)."""
    resources = resources or Resources()
    task = job.task
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**31)
    out_dir.mkdir(parents=True, exist_ok=True)
    variants = {"base": _image_variant("base", images["base"], job.base_sha),
                "human": _image_variant("human", images["human"], job.human_sha)}
    if options.aa:
        variants["base2"] = _image_variant("base2", images["base"], job.base_sha)
    results = BenchResults(item_id=job.item_id, commits={"base": job.base_sha,
                                                         "human": job.human_sha},
                           metric={"kind": task.metric.kind}, seed=seed,
                           trials_per_variant=options.trials, warmup_blocks=options.warmup,
                           variants=variants, verdict="inconclusive",
                           options=bench_record(options, resources))
    variants = results.variants  # pydantic copied the dict: keep adding to the record's own
    common = dict(run_id=run_id, item_id=job.item_id, log_dir=out_dir, limits=resources.limits,
                  gpus=resources.gpus, network=options.network)

    if patch is not None:
        log("bench: preparing the agent variant")
        prepared = prepare_agent_variant(task, images["base"], job.base_sha, patch,
                                         run_id=run_id, item_id=job.item_id, log_dir=out_dir,
                                         limits=resources.limits)
        if isinstance(prepared, VariantFailure):
            results.verdict, results.verdict_reason = prepared.verdict, prepared.reason
            results.log_file = prepared.log_file
            return results
        variants["agent"] = prepared
        log(f"bench: agent variant {prepared.image_tag} (apply: {prepared.apply_method}"
            f"{', native rebuild' if prepared.rebuilt else ''})")
        if task.test_command:
            log("bench: correctness gate on the agent variant")
            results.gate = run_gate(task, prepared, **common)
            if not results.gate.passed:
                results.verdict = "incorrect"
                results.verdict_reason = (f"`{task.test_command}` failed on the agent variant "
                                          f"(exit {results.gate.exit_code})")
                results.log_file = results.gate.log_file
                return results

    if runner is None:
        guard = None
        if resources.gpus.mode != "none":
            guard = make_guard(resources.gpus.ids or None, log, options.gpu_idle_timeout_s)
        runner = DockerTrialRunner(task, variants, timeout_s=options.timeout_s,
                                   gpu_guard=guard, **common)
    results.trials = run_trials(list(variants), runner, trials=options.trials,
                                warmup=options.warmup, seed=seed, log=log)
    if runner.metric_info:
        results.metric = runner.metric_info
    decision = decide_trials(results.trials, list(variants),
                             lower_is_better=results.metric.get("lower_is_better", True),
                             min_effect=options.min_effect, alpha=options.alpha, seed=seed)
    results.verdict, results.verdict_reason = decision.verdict, decision.reason
    results.analysis = decision.analysis
    return results
