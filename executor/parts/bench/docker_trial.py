"""Trials in fresh containers: the runner every isobench benchmark uses.

Around the benchmark command the runner keeps the measurement the harness's: the metric file
is deleted right before the run (a file planted there earlier cannot count, and is named;
an image whose containers hold none is checked once, not per trial);
the command runs with the user site and PYTHONSTARTUP off; its wall time and the container's
cgroup CPU time are read from outside (integrity.py compares them with the reported metric);
and a non-base trial that runs past a bound derived from base's trials is cut (and the rest
of that variant skipped) instead of running to the trial timeout.
"""

from __future__ import annotations

import math
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from executor.parts.bench import evidence as hook
from executor.parts.bench.gpu import GpuGuard
from executor.parts.bench.results import TrialRecord, VariantInfo
from executor.parts.bench.schedule import TrialSpec
from executor.parts.bench.server import ServerNotReady, serving
from executor.parts.bench.trial import GpuWatch, MetricReader, new_record
from executor.parts.repo import REPO_DIR
from executor.engine.sandbox import Sandbox
from executor.core.resources import GpuRequest, SandboxLimits, SandboxSpec
from executor.core.task import TaskSpec

# What a timed process must not pick up from outside its own code: the user site (where a
# usercustomize would live) and an interactive start-up file.
TIMED_ENV = {"PYTHONNOUSERSITE": "1", "PYTHONSTARTUP": ""}


@dataclass(frozen=True)
class TrialBound:
    """A non-base trial may take `factor` x base's slowest trial, never less than `floor_s`."""

    factor: float = 10.0
    floor_s: float = 30.0

    def seconds(self, base_slowest_s: float) -> float:
        # whole seconds: the exec's `timeout` takes whole seconds, and a timeout is recognised
        # by the elapsed time reaching the limit asked for
        return float(math.ceil(max(self.floor_s, self.factor * base_slowest_s)))


def _prewritten_command(path: str) -> str:
    quoted = shlex.quote(path)
    return (f"if [ -e {quoted} ] || [ -L {quoted} ]; then echo present; "
            f"rm -rf -- {quoted}; fi")


class DockerTrialRunner(MetricReader):
    """Runs the task's benchmark command (and its server, if any) in a fresh container of the
    variant's image. Every variant gets the same limits, cpuset and GPUs."""

    def __init__(self, task: TaskSpec, variants: dict[str, VariantInfo], *, run_id: str,
                 item_id: str, log_dir: Path, timeout_s: int, limits: SandboxLimits,
                 gpus: GpuRequest, network: str, gpu_guard: GpuGuard | None = None,
                 bound: TrialBound | None = None, seed: int = 0):
        super().__init__(task.metric)
        self.task, self.variants = task, variants
        self.run_id, self.item_id, self.log_dir = run_id, item_id, log_dir
        self.timeout_s, self.limits, self.gpus, self.network = timeout_s, limits, gpus, network
        self.gpu = GpuWatch(gpu_guard)
        self.bound = bound or TrialBound()
        self.seed = seed  # of the benchmark: each block's input seed derives from it
        self.base_durations: list[float] = []
        self.cut_variants: dict[str, str] = {}  # variant -> why its trials are skipped
        self.probes: list[TrialRecord] = []
        # Images whose fresh containers were found to hold no metric file: see _clear_metric_file
        self.images_without_metric_file: set[tuple[str, str]] = set()

    def _limit_s(self, variant: str) -> float:
        """Base runs under the trial timeout; any other variant under the bound from base's
        slowest trial so far (a base probe runs first when none has finished yet)."""
        if variant.startswith("base"):
            return self.timeout_s
        if not self.base_durations:
            probe = self._run(TrialSpec(index=-1 - len(self.probes), block=-1,
                                        variant="base", warmup=True), self.timeout_s)
            self.probes.append(probe)
            if not probe.ok:
                return self.timeout_s
        return min(self.timeout_s, self.bound.seconds(max(self.base_durations)))

    def __call__(self, spec: TrialSpec) -> TrialRecord:
        if spec.variant in self.cut_variants:
            record = new_record(spec)
            record.cut, record.error = True, self.cut_variants[spec.variant]
            return record
        limit = self._limit_s(spec.variant)
        record = self._run(spec, limit)
        if record.cut:
            self.cut_variants[spec.variant] = (f"skipped: trial {spec.index} of {spec.variant} "
                                               f"was cut at the bound")
        return record

    def _run(self, spec: TrialSpec, limit_s: float) -> TrialRecord:
        variant = self.variants[spec.variant]
        record = new_record(spec)
        name = (f"trial-{spec.index:03d}" if spec.index >= 0 else f"probe-{-spec.index}")
        log_file = self.log_dir / f"{name}-{spec.variant}.log"
        budget = self.timeout_s + (self.task.server_ready_timeout_s
                                   if self.task.server_command else 0) + 300
        sandbox_spec = SandboxSpec(
            image=variant.image_tag, budget_s=budget, run_id=self.run_id,
            item=self.item_id, phase=f"bench-{spec.index}-{spec.variant}", limits=self.limits,
            gpus=self.gpus, network=self.network, env=self.task.env, workdir=REPO_DIR)
        record.gpu = self.gpu.before()  # before the container starts: the GPU is idle now
        with Sandbox(sandbox_spec) as sandbox:
            record.container = sandbox.name
            output_file = self.task.metric.output_file
            try:
                with serving(sandbox, self.task, log_file.with_suffix(".server.log")):
                    if output_file:
                        record.metric_file_prewritten = self._clear_metric_file(sandbox,
                                                                                 variant)
                    command, key = self._prepare_hook(sandbox, spec.block)
                    cpu_before = sandbox.cpu_usage_s()
                    started = time.monotonic()
                    result = sandbox.exec(command, limit_s, env=TIMED_ENV,
                                          workdir=REPO_DIR, stdout_file=log_file,
                                          stderr_file=log_file)
                    record.duration_s = time.monotonic() - started
                    cpu_after = sandbox.cpu_usage_s()
                    if cpu_before is not None and cpu_after is not None:
                        record.outer_cpu_s = cpu_after - cpu_before
                    record.gpu = self.gpu.after(record.gpu)
            except ServerNotReady as exc:
                record.error = str(exc)
                return record
            if result.timed_out and limit_s < self.timeout_s:
                record.cut = True
                record.error = (f"cut after {limit_s:.0f}s: over the bound "
                                f"{self.bound.factor:g}x base's slowest trial "
                                f"({max(self.base_durations):.1f}s), floor "
                                f"{self.bound.floor_s:g}s")
                return record
            output = None
            if self.task.metric.output_file:
                output = _file_or_none(sandbox, self.task.metric.output_file)
            if key is not None and not result.timed_out:
                # a failed run's evidence too: what the process did before it failed
                record.evidence = hook.read_evidence(_file_or_none(sandbox, hook.OUT_PATH),
                                                     key, output)
            if not result.ok:
                why = ("timed out" if result.timed_out else
                       "OOMKilled by the trial's memory limit" if sandbox.oom_killed() else
                       f"exit {result.exit_code}")
                record.error = f"benchmark {why}: {result.tail(3)[-300:]}"
                return record
            if self.task.metric.output_file and output is None:
                record.error = f"benchmark wrote no {self.task.metric.output_file}"
                return record
        record = self.read(record, output, result.stdout)
        if spec.variant == "base" and record.ok:
            self.base_durations.append(record.duration_s)
        return record

    def _prepare_hook(self, sandbox: Sandbox, block: int) -> tuple[str, str | None]:
        """The command to run, and the key of this run's evidence (None: no hook). The hook
        and its configuration go in right before the run, in one archive. An evidence file
        the image already holds cannot count: it is not signed with this run's key."""
        spec = self.task.evidence
        if spec is None:
            return self.task.bench_command, None
        key, config = hook.hook_config(spec, self.task.metric.output_file,
                                       hook.input_seed(self.seed, block))
        sandbox.put_archive("/", hook.hook_archive(config))
        return hook.hook_command(self.task.bench_command, spec), key

    def _clear_metric_file(self, sandbox: Sandbox, variant: VariantInfo) -> bool:
        """Delete the metric file if the container holds one before the run; whether it did.

        Before the benchmark command a trial's container holds exactly its image's files
        (its main process only sleeps), so once one container of an image held none, no
        container of that image will: the check (an exec, about 0.1 s) is skipped for it. Not
        with a server, which runs before the check and could write the file."""
        image = (variant.image_tag, variant.image_id)
        if image in self.images_without_metric_file:
            return False
        found = sandbox.exec(_prewritten_command(self.task.metric.output_file), 60,
                             workdir=REPO_DIR)
        present = "present" in found.stdout
        if found.ok and not present and not self.task.server_command:
            self.images_without_metric_file.add(image)
        return present


def _file_or_none(sandbox: Sandbox, path: str) -> bytes | None:
    try:
        return sandbox.get_file(path)
    except FileNotFoundError:
        return None
