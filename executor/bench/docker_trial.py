"""Trials in fresh containers: the runner every isobench benchmark uses."""

from __future__ import annotations

import time
from pathlib import Path

from executor.bench.gpu import GpuGuard
from executor.bench.results import TrialRecord, VariantInfo
from executor.bench.schedule import TrialSpec
from executor.bench.server import ServerNotReady, serving
from executor.bench.trial import GpuWatch, MetricReader, new_record
from executor.repo import REPO_DIR
from executor.sandbox import GpuRequest, Sandbox, SandboxLimits, SandboxSpec
from executor.task import TaskSpec


class DockerTrialRunner(MetricReader):
    """Runs the task's benchmark command (and its server, if any) in a fresh container of the
    variant's image. Every variant gets the same limits, cpuset and GPUs."""

    def __init__(self, task: TaskSpec, variants: dict[str, VariantInfo], *, run_id: str,
                 item_id: str, log_dir: Path, timeout_s: int, limits: SandboxLimits,
                 gpus: GpuRequest, network: str, gpu_guard: GpuGuard | None = None):
        super().__init__(task.metric)
        self.task, self.variants = task, variants
        self.run_id, self.item_id, self.log_dir = run_id, item_id, log_dir
        self.timeout_s, self.limits, self.gpus, self.network = timeout_s, limits, gpus, network
        self.gpu = GpuWatch(gpu_guard)

    def __call__(self, spec: TrialSpec) -> TrialRecord:
        variant = self.variants[spec.variant]
        record = new_record(spec)
        log_file = self.log_dir / f"trial-{spec.index:03d}-{spec.variant}.log"
        budget = self.timeout_s + (self.task.server_ready_timeout_s
                                   if self.task.server_command else 0) + 300
        sandbox_spec = SandboxSpec(
            image=variant.image_tag, budget_s=budget, run_id=self.run_id,
            item=self.item_id, phase=f"bench-{spec.index}-{spec.variant}", limits=self.limits,
            gpus=self.gpus, network=self.network, env=self.task.env, workdir=REPO_DIR)
        record.gpu = self.gpu.before()  # before the container starts: the GPU is idle now
        with Sandbox(sandbox_spec) as sandbox:
            record.container = sandbox.name
            try:
                with serving(sandbox, self.task, log_file.with_suffix(".server.log")):
                    started = time.monotonic()
                    result = sandbox.exec(self.task.bench_command, self.timeout_s,
                                          workdir=REPO_DIR, stdout_file=log_file,
                                          stderr_file=log_file)
                    record.duration_s = time.monotonic() - started
                    record.gpu = self.gpu.after(record.gpu)
            except ServerNotReady as exc:
                record.error = str(exc)
                return record
            if not result.ok:
                why = "timed out" if result.timed_out else f"exit {result.exit_code}"
                record.error = f"benchmark {why}: {result.tail(3)[-300:]}"
                return record
            output = None
            if self.task.metric.output_file:
                try:
                    output = sandbox.get_file(self.task.metric.output_file)
                except FileNotFoundError:
                    record.error = f"benchmark wrote no {self.task.metric.output_file}"
                    return record
        return self.read(record, output, result.stdout)
