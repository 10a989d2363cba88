"""results.json: the benchmark's versioned, self-describing output."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from executor.parts.bench.evidence import TrialEvidence
from executor.parts.bench.gpu import GpuTrialInfo
from executor.parts.bench.integrity import IntegrityReport, OutputCheckResult
from executor.engine.hostfacts import HostFacts
from executor.core.journal import utcnow

RESULTS_SCHEMA = 1


class TrialRecord(BaseModel):
    """One trial: a fresh container, one benchmark run, one number (or why not)."""

    index: int
    block: int
    variant: str
    warmup: bool
    value: float | None = Field(default=None, description="The metric; None if the trial failed.")
    ok: bool = False
    error: str | None = Field(default=None, description="Why the trial produced no value.")
    duration_s: float = Field(default=0.0, description="Wall time of the benchmark command.")
    started_at: datetime = Field(default_factory=utcnow)
    container: str = ""
    gpu: GpuTrialInfo | None = Field(default=None, description="GPU idle wait and state "
                                     "(name, driver, clocks, temperature, power) around the run; "
                                     "None without a GPU.")
    outer_cpu_s: float | None = Field(default=None, description="CPU seconds the container "
                                      "used during the benchmark command, from its cgroup.")
    claimed_region_s: float | None = Field(default=None, description="Seconds the metric says "
                                           "its timed region took (e.g. sum of latencies).")
    metric_file_prewritten: bool = Field(default=False, description="The metric file existed "
                                         "before the run (it was deleted first).")
    cut: bool = Field(default=False, description="Stopped at the bound derived from base's "
                                                 "trials, or skipped after such a stop.")
    excluded: str | None = Field(default=None, description="Why this trial's value is left "
                                 "out of the decision (GPU throttling or contention, see "
                                 "measure.py); None when it counts.")
    claimed_iterations: int | None = Field(default=None, description="Iterations the metric "
                                           "timed (the length of its latencies list).")
    evidence: TrialEvidence | None = Field(default=None, description="What the harness's hook "
                                           "recorded inside this trial's process "
                                           "(evidence.py); None when the task has no hook.")


class VariantInfo(BaseModel):
    """What a variant is: which image, which patch, how it was prepared."""

    name: str
    image_tag: str
    image_id: str
    commit: str = Field(description="The commit the image holds (agent: base + patch).")
    patch_sha256: str | None = None
    apply_method: str | None = None
    rebuilt: bool = Field(default=False, description="Native sources changed: rebuilt.")
    reference_commit: str | None = Field(default=None, description="Commit the protected "
                                         "paths (benchmark, tests) were restored from.")
    protected_dropped: list[str] = Field(default_factory=list, description="Protected paths "
                                         "the patch touched; those sections were dropped.")
    protected_restored: list[str] = Field(default_factory=list, description="Protected paths "
                                          "replaced by the reference commit's.")
    startup_hooks: list[str] = Field(default_factory=list, description="Start-up hooks or "
                                     "interpreters a rebuild added or changed outside the repo.")


class GateResult(BaseModel):
    """The correctness gate: the task's tests on the agent variant, before any timing."""

    command: str
    passed: bool
    exit_code: int
    duration_s: float
    output_tail: str
    log_file: str | None = Field(default=None, description="Full output of the tests.")


class BenchResults(BaseModel):
    """Everything measured for one commit, and the verdict."""

    schema_version: int = RESULTS_SCHEMA
    item_id: str
    commits: dict[str, str]
    metric: dict = Field(description="name, unit, lower_is_better, parser kind")
    seed: int
    trials_per_variant: int
    warmup_blocks: int
    variants: dict[str, VariantInfo]
    trials: list[TrialRecord] = Field(default_factory=list)
    gate: GateResult | None = None
    gate_base: GateResult | None = Field(default=None, description="The tests on base: they "
                                         "must pass there, and bound the agent's gate time.")
    output_check: OutputCheckResult | None = None
    integrity: IntegrityReport | None = Field(default=None, description="Protected paths, "
                                              "outer timing, hooks, cut trials, findings.")
    analysis: dict | None = Field(default=None, description="Summaries, speedups, tests.")
    verdict: str = Field(description="improved | matches_human | regressed | no_change | "
                                     "inconclusive | suspect | incorrect | apply_failed | "
                                     "build_failed | bench_failed")
    verdict_reason: str = ""
    log_file: str | None = Field(default=None, description="The log that proves a failed "
                                 "verdict: apply or rebuild log, or the gate's test output.")
    options: dict = Field(default_factory=dict, description="The BenchOptions measured with.")
    command_options: dict | None = Field(
        default=None, description="`isobench bench`'s resolved options: the job file (--config) "
                                  "and its sha256, every option's value, which came from the "
                                  "file and which from the command line.")
    host: HostFacts | None = Field(default=None, description="The machine every trial ran on "
                                   "(CPU, cpuset, kernel, Docker, GPUs); None in old results.")
    determinism: dict[str, str] = Field(default_factory=dict, description="Environment every "
                                        "container of this benchmark started with (TZ, locale, "
                                        "PYTHONHASHSEED, ISOBENCH_SEED).")
    stopping: dict | None = Field(default=None, description="How many trials ran and why they "
                                  "stopped (measure.Stopping): design, looks, reason; None in "
                                  "results written before sequential trials.")
    clock_lock: dict | None = Field(default=None, description="GPU clock locking: tried, "
                                    "locked at which MHz, or why not (gpu_telemetry.ClockLock); "
                                    "None without NVML.")
    noise_floor: dict | None = Field(default=None, description="With an A/A control: whether "
                                     "it showed a false change, and the minimum detectable "
                                     "effect it implies (noise.NoiseFloor).")
    created_at: datetime = Field(default_factory=utcnow)

    def samples(self, variant: str) -> list[float]:
        return timed_values(self.trials, variant)


def timed_values(trials: list[TrialRecord], variant: str) -> list[float]:
    """The analysed values of one variant: timed (not warm-up) trials that produced a value."""
    return [t.value for t in trials if t.variant == variant and analysed(t)]


def analysed(trial: TrialRecord) -> bool:
    """A timed (not warm-up) trial that produced a value and was not excluded."""
    return not trial.warmup and trial.ok and trial.value is not None and not trial.excluded


def block_pairs(trials: list[TrialRecord], first: str, second: str) -> list[tuple[float, float]]:
    """(first, second) analysed values of every timed block that has both, in block order. A
    flagged trial run again keeps its block (measure.py), so a block has one analysed value per
    variant; should it have more, the last one counts."""
    by_block: dict[int, dict[str, float]] = {}
    for t in trials:
        if t.variant in (first, second) and analysed(t):
            by_block.setdefault(t.block, {})[t.variant] = t.value
    return [(values[first], values[second]) for _, values in sorted(by_block.items())
            if first in values and second in values]
