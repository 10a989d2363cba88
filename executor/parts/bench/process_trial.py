"""Trials as fresh host processes: the timing core without Docker.

For machines where containers are not available (a GPU box for a timing check, a laptop) the
same schedule and statistics run over `ProcessTrialRunner`: every trial is a new subprocess,
so per-process effects (allocator state, JIT and autotuning caches, clocks at start-up) vary
between trials as they do between containers, and are measured as the noise they are.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from pydantic import BaseModel, Field

from executor.parts.bench.gpu import GpuGuard
from executor.parts.bench.results import TrialRecord
from executor.parts.bench.schedule import TrialSpec
from executor.parts.bench.trial import GpuWatch, MetricReader, new_record
from executor.core.task import MetricSpec

OUTPUT_PLACEHOLDER = "{output_file}"
OUTPUT_ENV = "ISOBENCH_OUTPUT_FILE"


class ProcessVariant(BaseModel):
    """How to run one variant's benchmark as a host process."""

    command: list[str] = Field(description=f"argv; '{OUTPUT_PLACEHOLDER}' in an argument is "
                                           f"replaced by this trial's own output file.")
    cwd: Path | None = Field(default=None, description="Working directory; None: inherit.")
    env: dict[str, str] = Field(default_factory=dict,
                                description="Added to the controller's environment.")


class ProcessTrialRunner(MetricReader):
    """Runs each trial as a new subprocess and parses its metric like a container trial.

    The output file is per trial (`log_dir`/trial-NNN-<variant>.out), passed as
    `{output_file}` in the command and as $ISOBENCH_OUTPUT_FILE: the metric's `output_file`
    only says whether there is one (a container path means nothing on the host); with
    `output_file=None` the metric is read from stdout.
    """

    def __init__(self, variants: dict[str, ProcessVariant], metric: MetricSpec, *,
                 log_dir: Path, timeout_s: float = 1800, gpu_guard: GpuGuard | None = None):
        super().__init__(metric)
        self.variants, self.log_dir, self.timeout_s = variants, log_dir, timeout_s
        self.gpu = GpuWatch(gpu_guard)
        log_dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, spec: TrialSpec) -> TrialRecord:
        variant = self.variants[spec.variant]
        record = new_record(spec)
        stem = self.log_dir / f"trial-{spec.index:03d}-{spec.variant}"
        output_file = stem.with_suffix(".out")
        output_file.unlink(missing_ok=True)
        argv = [arg.replace(OUTPUT_PLACEHOLDER, str(output_file)) for arg in variant.command]
        env = {**os.environ, **variant.env, OUTPUT_ENV: str(output_file)}
        record.gpu = self.gpu.before()
        started = time.monotonic()
        try:
            proc = subprocess.run(argv, cwd=variant.cwd, env=env, capture_output=True,
                                  text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired as exc:
            record.duration_s = time.monotonic() - started
            record.error = f"benchmark timed out after {self.timeout_s:g}s"
            _write_log(stem, exc.stdout, exc.stderr)
            return record
        except OSError as exc:
            record.error = f"benchmark did not start: {exc}"
            return record
        record.duration_s = time.monotonic() - started
        record.gpu = self.gpu.after(record.gpu)
        _write_log(stem, proc.stdout, proc.stderr)
        if proc.returncode != 0:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            record.error = f"benchmark exit {proc.returncode}: {tail[-300:]}"
            return record
        output = None
        if self.metric.output_file is not None:
            if not output_file.exists():
                record.error = f"benchmark wrote no {output_file.name} ({OUTPUT_ENV})"
                return record
            output = output_file.read_bytes()
        return self.read(record, output, proc.stdout)


def _write_log(stem: Path, stdout, stderr) -> None:
    def text(data) -> str:
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")

    stem.with_suffix(".log").write_text(text(stdout) + text(stderr))
