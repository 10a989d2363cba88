"""One trial = one fresh container, one benchmark run, one number.

A trial never shares a process, a page cache warm-up or a leftover server with another
trial: isolation is the point. `TrialRunner` is the seam: the Docker runner is what every run
uses; a process runner (fresh subprocess per trial, no Docker) serves GPU machines where only
the timing core can run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Protocol

from executor.bench.metrics import MetricParseError, parse_metric
from executor.bench.results import TrialRecord, VariantInfo
from executor.bench.schedule import TrialSpec
from executor.journal import utcnow
from executor.repo import REPO_DIR
from executor.sandbox import GpuRequest, Sandbox, SandboxLimits, SandboxSpec
from executor.task import TaskSpec


class TrialRunner(Protocol):
    def __call__(self, spec: TrialSpec) -> TrialRecord: ...


class DockerTrialRunner:
    """Runs the task's benchmark command in a fresh container of the variant's image."""

    def __init__(self, task: TaskSpec, variants: dict[str, VariantInfo], *, run_id: str,
                 item_id: str, log_dir: Path, timeout_s: int, limits: SandboxLimits,
                 gpus: GpuRequest, network: str,
                 gpu_probe: Callable[[], dict | None] | None = None):
        self.task, self.variants = task, variants
        self.run_id, self.item_id, self.log_dir = run_id, item_id, log_dir
        self.timeout_s, self.limits, self.gpus, self.network = timeout_s, limits, gpus, network
        self.gpu_probe = gpu_probe
        self.metric_info: dict | None = None  # name, unit, direction: from the first parse

    def __call__(self, spec: TrialSpec) -> TrialRecord:
        variant = self.variants[spec.variant]
        record = TrialRecord(index=spec.index, block=spec.block, variant=spec.variant,
                             warmup=spec.warmup, started_at=utcnow())
        log_file = self.log_dir / f"trial-{spec.index:03d}-{spec.variant}.log"
        sandbox_spec = SandboxSpec(
            image=variant.image_tag, budget_s=self.timeout_s + 300, run_id=self.run_id,
            item=self.item_id, phase=f"bench-{spec.index}-{spec.variant}", limits=self.limits,
            gpus=self.gpus, network=self.network, env=self.task.env, workdir=REPO_DIR)
        with Sandbox(sandbox_spec) as sandbox:
            record.container = sandbox.name
            record.gpu = self.gpu_probe() if self.gpu_probe else None
            started = time.monotonic()
            result = sandbox.exec(self.task.bench_command, self.timeout_s, workdir=REPO_DIR,
                                  stdout_file=log_file, stderr_file=log_file)
            record.duration_s = time.monotonic() - started
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
        try:
            metric = parse_metric(self.task.metric, output, result.stdout)
        except MetricParseError as exc:
            record.error = str(exc)
            return record
        record.value, record.ok = metric.value, True
        if self.metric_info is None:
            self.metric_info = {"name": metric.name, "unit": metric.unit,
                                "lower_is_better": metric.lower_is_better,
                                "kind": self.task.metric.kind}
        return record
