"""One trial = one fresh process (in a fresh container, or on the host), one number.

A trial never shares a process, a page cache warm-up or a leftover server with another
trial: isolation is the point. `TrialRunner` is the seam between the schedule and how a trial
runs: `DockerTrialRunner` (docker_trial.py) is what every isobench run uses;
`ProcessTrialRunner` (process_trial.py) runs a fresh subprocess per trial, for machines where
only the timing core can run (a GPU box without Docker). This module holds what both share and
imports nothing of Docker, so the timing core runs where Docker is absent.
"""

from __future__ import annotations

from typing import Protocol

from executor.parts.bench.gpu import GpuGuard, GpuTrialInfo
from executor.parts.bench.integrity import claimed_region_s
from executor.parts.bench.metrics import MetricParseError, parse_metric
from executor.parts.bench.results import TrialRecord
from executor.parts.bench.schedule import TrialSpec
from executor.core.journal import utcnow
from executor.core.task import MetricSpec


class TrialRunner(Protocol):
    """Runs one slot of the schedule and returns its record (never raises for a bad trial)."""

    metric_info: dict | None

    def __call__(self, spec: TrialSpec) -> TrialRecord: ...


def new_record(spec: TrialSpec) -> TrialRecord:
    return TrialRecord(index=spec.index, block=spec.block, variant=spec.variant,
                       warmup=spec.warmup, started_at=utcnow())


class MetricReader:
    """Parses each trial's output into its record; remembers the metric's name and direction
    from the first trial that parsed (results.json reports them once)."""

    def __init__(self, metric: MetricSpec):
        self.metric = metric
        self.metric_info: dict | None = None

    def read(self, record: TrialRecord, output: bytes | None, stdout: str) -> TrialRecord:
        try:
            value = parse_metric(self.metric, output, stdout)
        except MetricParseError as exc:
            record.error = str(exc)
            return record
        record.value, record.ok = value.value, True
        record.claimed_region_s = claimed_region_s(value, self.metric.kind)
        latencies = (value.raw or {}).get("latencies")
        if isinstance(latencies, list) and latencies:
            record.claimed_iterations = len(latencies)
        if self.metric_info is None:
            self.metric_info = {"name": value.name, "unit": value.unit,
                                "lower_is_better": value.lower_is_better,
                                "kind": self.metric.kind}
        return record


class GpuWatch:
    """The optional GPU guard around a trial: idle wait + snapshot before, snapshot after."""

    def __init__(self, guard: GpuGuard | None):
        self.guard = guard

    def before(self) -> GpuTrialInfo | None:
        return self.guard.before_trial() if self.guard else None

    def after(self, info: GpuTrialInfo | None) -> GpuTrialInfo | None:
        return self.guard.after_trial(info) if self.guard and info else info
