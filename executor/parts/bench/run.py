"""Benchmark base, human and agent in isolation, and decide what the numbers say.

Order of work, each step able to end the benchmark with a precise verdict:
  prepare the agent variant (protected paths dropped,    -> apply_failed | build_failed
    apply, rebuild if native, protected paths restored)
  base and human as measured (protected paths restored)
  correctness gate: tests on base, then on the agent     -> incorrect
  output check: base's output, then the agent's          -> incorrect (with the diff)
  interleaved trials, each in a fresh container, in      -> bench_failed if a variant has
  blocks until decided or --max-trials (measure.py)         fewer than 2 good trials
  statistics on per-trial values                         -> improved | matches_human |
                                                            regressed | no_change | inconclusive
  integrity post-step (outer timing, start-up hooks)     -> suspect
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from executor.parts.bench.checks import gates, output_check
from executor.parts.bench.docker_trial import DockerTrialRunner, TrialBound
from executor.parts.bench.gpu import IDLE_TIMEOUT_S, make_guard
from executor.parts.bench.gpu_telemetry import trial_flag
from executor.parts.bench.evidence import judge_behaviour
from executor.parts.bench.integrity import IntegrityReport, judge, patch_findings
from executor.parts.bench.measure import DEFAULT_MAX_RERUNS, measure
from executor.parts.bench.noise import item_noise_floor
from executor.parts.bench.protect import protected_patterns
from executor.parts.bench.results import BenchResults, VariantInfo
from executor.parts.bench.sequential import (DEFAULT_LOOK_EVERY, DEFAULT_MAX_TRIALS,
                                       DEFAULT_MIN_TRIALS, SequentialDesign, Spending)
from executor.parts.bench.trial import TrialRunner
from executor.parts.bench.variants import (VariantFailure, judged_image_variant,
                                     prepare_agent_variant)
from executor.engine.images import ImageRef
from executor.core.determinism import seeded_env
from executor.engine.hostfacts import collect_host_facts
from executor.core.resources import Resources
from executor.core.task import CommitJob

Log = Callable[[str], None]


class BenchOptions(BaseModel):
    """How to measure: repetitions, isolation and the decision thresholds."""

    # 20 trials: calibrated on the demo (scripts/calibrate_demo.py) on a shared 2-core machine,
    # where 10 missed a 5% regression in ~1 run of 20 and 20 missed none; see docs.
    model_config = ConfigDict(extra="forbid")  # GPUs and limits are in sandbox.Resources

    # Flags: `--trials`/`--max-trials` given or not decides the design (_trials_means_fixed),
    # so their flags default to unset ("cli_default": None) rather than the model's default.
    trials: int = Field(default=20, ge=1, json_schema_extra={"flag": "--trials",
                                                             "cli_default": None, "min": 2},
                        description="A fixed design: exactly this many timed trials per "
                                    "variant, each in a fresh container, one decision at the "
                                    "end.")
    # Sequential trials by default (sequential.py): the old fixed 20 spent as much on a 25x
    # change as on a 3% one. `--trials N` asks for the fixed design.
    max_trials: int | None = Field(default=DEFAULT_MAX_TRIALS, ge=2,
                                   json_schema_extra={"flag": "--max-trials",
                                                      "cli_default": None},
                                   description=f"Sequential trials (the default, up to "
                                               f"{DEFAULT_MAX_TRIALS}): look after "
                                               f"{DEFAULT_MIN_TRIALS} trials per variant and "
                                               f"every {DEFAULT_LOOK_EVERY} more, stop once "
                                               f"decided, at most this many.")
    min_trials: int = Field(default=DEFAULT_MIN_TRIALS, ge=2,
                            description="Sequential: trials per variant before the first look.")
    look_every: int = Field(default=DEFAULT_LOOK_EVERY, ge=1,
                            description="Sequential: trials per variant between looks.")
    spending: Spending = Field(default=Spending.POCOCK, description="Sequential: how alpha is "
                               "spread over the looks (pocock | obf | bonferroni).")
    max_reruns: int = Field(default=DEFAULT_MAX_RERUNS, ge=0, description="Trials flagged by "
                            "GPU telemetry that may be run again (the whole benchmark).")
    lock_clocks: bool = Field(default=True,
                              json_schema_extra={"flag": "--lock-clocks/--no-lock-clocks"},
                              description="With --gpus and pynvml: try to lock the GPU clocks "
                                          "(needs root; recorded either way, always reset).")
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
    min_effect: float = Field(default=0.02, gt=0, le=1,
                              json_schema_extra={"flag": "--min-effect"},
                              description="Smallest speedup that counts, as a fraction "
                                          "(0.02 = 2%).")
    alpha: float = Field(default=0.05, gt=0, le=0.5, json_schema_extra={"flag": "--alpha"},
                         description="Chance of calling identical code changed (alpha/2 per "
                                     "direction).")
    network: str = Field(default="none", description="Network mode of benchmark containers.")
    gpu_idle_timeout_s: float = Field(default=IDLE_TIMEOUT_S,
                                      description="Longest wait for an idle GPU per trial.")
    # 10x base's slowest: no honest patch is ten times slower and still worth timing; the
    # floor keeps a fast benchmark's bound above container and interpreter start-up noise.
    trial_bound_factor: float = Field(default=10.0, gt=1, description="A non-base trial, "
                                      "gate or output check is cut at this many times base's.")
    trial_bound_floor_s: float = Field(default=30.0, gt=0, description="The bound is never "
                                       "below this many seconds.")
    python_hash_seed: int = Field(default=0, description="PYTHONHASHSEED of every container.")
    prepare_network: str = Field(default="bridge", description="Network of the container that "
                                 "applies (and may rebuild) the agent patch.")


    @model_validator(mode="after")
    def _trials_means_fixed(self) -> "BenchOptions":
        if {"trials", "max_trials"} <= self.model_fields_set and self.max_trials is not None:
            raise ValueError("give --trials N (a fixed design) or --max-trials N (sequential "
                             "trials), not both")
        # `trials` given without `max_trials` asks for the fixed design (`--trials N`, and
        # every caller written before sequential trials).
        if "trials" in self.model_fields_set and "max_trials" not in self.model_fields_set:
            self.max_trials = None
        return self

    @classmethod
    def from_record(cls, recorded: dict) -> "BenchOptions":
        """The options a results.json recorded. A record holds every field, so its design is
        read from `max_trials` (None: the fixed design of `trials`), not from which flags
        were given: a default (sequential) run records both and must load back."""
        fields = dict(recorded)
        if fields.get("max_trials") is not None:
            fields.pop("trials", None)  # not part of a sequential design
        return cls.model_validate(fields)

    def design(self) -> SequentialDesign:
        """The looks: one after `trials` (fixed), or min_trials, every look_every, max_trials."""
        if self.max_trials is None:
            return SequentialDesign.fixed(self.trials, self.alpha)
        return SequentialDesign(min_trials=min(self.min_trials, self.max_trials),
                                look_every=self.look_every, max_trials=self.max_trials,
                                alpha=self.alpha, spending=self.spending)


def _image_variant(name: str, image: ImageRef, sha: str) -> VariantInfo:
    return VariantInfo(name=name, image_tag=image.tag, image_id=image.id, commit=sha)


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
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**31)
    determinism = seeded_env(seed, options.python_hash_seed)
    # Every container of this benchmark (prepare, gate, trials) starts with the recorded seeds.
    job = job.model_copy(update={"task": job.task.model_copy(
        update={"env": {**determinism, **job.task.env}})})
    task = job.task
    out_dir.mkdir(parents=True, exist_ok=True)
    variants = {"base": _image_variant("base", images["base"], job.base_sha),
                "human": _image_variant("human", images["human"], job.human_sha)}
    if options.aa:
        variants["base2"] = _image_variant("base2", images["base"], job.base_sha)
    reference = job.base_sha if task.reference_tree == "base" else job.human_sha
    common = dict(run_id=run_id, item_id=job.item_id, limits=resources.limits,
                  gpus=resources.gpus, network=options.network)
    if runner is None:  # an injected runner brings its own variants; containers need judging
        log("bench: restoring the harness's paths (benchmark, tests) in base and human")
        variants = {name: judged_image_variant(task, name, images[name], sha, reference,
                                               run_id=run_id, item_id=job.item_id,
                                               limits=resources.limits)
                    for name, sha in (("base", job.base_sha), ("human", job.human_sha))}
        if options.aa:
            variants["base2"] = variants["base"].model_copy(update={"name": "base2"})
    bound = TrialBound(options.trial_bound_factor, options.trial_bound_floor_s)
    report = IntegrityReport(reference_commit=reference, protected_paths=protected_patterns(task),
                             restored={n: v.protected_restored for n, v in variants.items()
                                       if v.protected_restored})
    results = BenchResults(item_id=job.item_id, commits={"base": job.base_sha,
                                                         "human": job.human_sha},
                           metric={"kind": task.metric.kind}, seed=seed,
                           trials_per_variant=options.max_trials or options.trials,
                           warmup_blocks=options.warmup,
                           variants=variants, verdict="inconclusive",
                           options=bench_record(options, resources), integrity=report,
                           determinism=determinism,
                           host=collect_host_facts(resources.limits.cpuset,
                                                   resources.limits.cpus))
    variants = results.variants  # pydantic copied the dict: keep adding to the record's own
    report = results.integrity

    if patch is not None:
        report.patch_findings = patch_findings(patch, task.metric.output_file)
        log("bench: preparing the agent variant")
        prepared = prepare_agent_variant(task, images["base"], job.base_sha, patch,
                                         run_id=run_id, item_id=job.item_id, log_dir=out_dir,
                                         limits=resources.limits, reference_sha=reference,
                                         network=options.prepare_network)
        if isinstance(prepared, VariantFailure):
            results.verdict, results.verdict_reason = prepared.verdict, prepared.reason
            results.log_file = prepared.log_file
            return results
        variants["agent"] = prepared
        report.protected_paths_touched = prepared.protected_dropped
        report.startup_hooks = prepared.startup_hooks
        if prepared.protected_restored:
            report.restored["agent"] = prepared.protected_restored
        if prepared.protected_dropped:
            log(f"bench: dropped the patch's changes to harness paths: "
                f"{', '.join(prepared.protected_dropped)}")
        log(f"bench: agent variant {prepared.image_tag} (apply: {prepared.apply_method}"
            f"{', native rebuild' if prepared.rebuilt else ''})")
        if failed := _behaviour_checks(task, variants, results, bound, log=log,
                                       log_dir=out_dir, **common):
            results.verdict, results.verdict_reason = "incorrect", failed
            return results

    guard = None
    if runner is None and resources.gpus.mode != "none":
        guard = make_guard(resources.gpus.ids or None, log, options.gpu_idle_timeout_s,
                           lock_clocks=options.lock_clocks)
    if runner is None:
        runner = DockerTrialRunner(task, variants, timeout_s=options.timeout_s,
                                   gpu_guard=guard, bound=bound, log_dir=out_dir, seed=seed,
                                   **common)
    try:
        results.trials, decision, stopping = measure(
            list(variants), runner, options.design(), warmup=options.warmup, seed=seed,
            min_effect=options.min_effect, flagged=trial_flag, max_reruns=options.max_reruns,
            fixed=options.max_trials is None, log=log,
            stop=_behaviour_stop(task) if "agent" in variants else None)
    finally:
        if guard is not None:
            results.clock_lock = guard.close()  # unlock what was locked, whatever happened
    results.stopping = stopping.model_dump(mode="json")
    results.trials_per_variant = stopping.blocks
    if runner.metric_info:
        results.metric = runner.metric_info
    results.verdict, results.verdict_reason = decision.verdict, decision.reason
    results.analysis = decision.analysis
    if decision.analysis and "base2/base" in decision.analysis["comparisons"]:
        results.noise_floor = item_noise_floor(decision.analysis).model_dump(mode="json")
    judge(results, report, task.evidence.reference if task.evidence else "base")
    if report.trials_cut and results.verdict == "bench_failed":
        results.verdict_reason += f"; {report.trials_cut[0]}"
    return results


def _behaviour_stop(task):
    """After each block: stop once an agent trial's evidence differs from the reference's
    (judge() then makes the verdict incorrect with the diff)."""
    if task.evidence is None:
        return None
    reference = task.evidence.reference

    def stop(records):
        finding = judge_behaviour(records, "agent", reference)
        if finding is not None and finding.mismatched:
            return f"the agent's evidence differs from {reference}'s: {finding.diff[:200]}"
        return None
    return stop


def _behaviour_checks(task, variants: dict[str, VariantInfo], results: BenchResults,
                      bound: TrialBound, *, log: Log, **common) -> str | None:
    """Tests (base, then agent) and the output check; why the agent is incorrect, or None."""
    if task.test_command:
        log("bench: correctness gate (tests on base, then on the agent variant)")
        results.gate_base, results.gate = gates(task, variants["base"], variants["agent"],
                                                bound, **common)
        if not results.gate_base.passed:
            # a gate base fails judges nothing about the agent: a task problem, said as such
            log(f"bench: the gate fails on base too (exit {results.gate_base.exit_code}): not "
                f"applied; fix the task's test_command ({results.gate_base.log_file})")
        elif not results.gate.passed:
            results.log_file = results.gate.log_file
            cut = " (cut at the bound from base's run)" if "cut after" in \
                results.gate.output_tail else ""
            return (f"`{task.test_command}` failed on the agent variant (exit "
                    f"{results.gate.exit_code}){cut}")
    if task.output_check_command:
        log("bench: output check (base, then the agent variant)")
        check = output_check(task, variants["base"], variants["agent"], bound, **common)
        results.output_check = check
        if check.matched is False:
            results.log_file = check.log_files[-1]
            # the first changed line, not the diff's "--- base" header
            lines = check.diff.splitlines()
            changed = [line for line in lines if line[:1] in ("-", "+")
                       and line[:3] not in ("---", "+++")]
            first = (changed or lines or [""])[0][:200]
            return f"the output check differs from base's: {first}"
    return None
