#!/usr/bin/env python3
"""The controller's own cost per phase, on the embedded demo (real Docker engine).

    .venv/bin/python scripts/bench_overhead.py [--runs 7]

Measures, each `--runs` times, what isobench adds around the agent and the benchmark:
image cache hit (both sandbox images present), sandbox create+start, leak-proof check of the
tree, patch collection (harness diff), sandbox removal, and an agent-variant image cache hit.
Prints the median, min and max of each as a table. Images are built first if missing (not
timed). These are wall times on a shared machine: compare them within one run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from executor.parts import demo
from executor.parts.bench.variants import prepare_agent_variant
from executor.parts.patching import apply_patch
from executor.runs.pipeline import RunOptions, ensure_images
from executor.parts.repo import REPO_DIR, harness_patch, verify_no_leak
from executor.runs.resolve import resolve_job
from executor.engine.sandbox import Sandbox
from executor.core.resources import SandboxSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    job = resolve_job(demo.DEMO_HUMAN_SHA)
    patch = demo.reference_agent_patch()
    tmp = Path(tempfile.mkdtemp(prefix="isobench-overhead-"))
    options = RunOptions(state_dir=tmp, run_id="overhead")
    _, images = ensure_images(job, options, tmp, lambda _: None)  # warm: not timed
    prepare_agent_variant(job.task, images["base"], job.base_sha, patch, run_id="overhead",
                          item_id="demo", log_dir=tmp)
    timings: dict[str, list[float]] = {}

    def timed(name: str, fn):
        started = time.perf_counter()
        value = fn()
        timings.setdefault(name, []).append(time.perf_counter() - started)
        return value

    for _ in range(args.runs):
        timed("image cache hit (base+human)",
              lambda: ensure_images(job, options, tmp, lambda _: None))
        spec = SandboxSpec(image=images["base"].tag, budget_s=600, run_id="overhead",
                           item="demo", phase="agent", workdir=REPO_DIR, network="none")
        box = Sandbox(spec)
        timed("sandbox create+start", box.start)
        try:
            timed("leak-proof tree check",
                  lambda: verify_no_leak(box, REPO_DIR, job.base_sha, job.human_sha))
            apply_patch(box, REPO_DIR, patch)  # the agent's work: not the controller's cost
            timed("patch collection", lambda: harness_patch(box, REPO_DIR, job.base_sha))
        finally:
            timed("sandbox remove", box.remove)
        timed("agent variant cache hit",
              lambda: prepare_agent_variant(job.task, images["base"], job.base_sha, patch,
                                            run_id="overhead", item_id="demo", log_dir=tmp))

    table = Table(title=f"controller overhead on the demo, {args.runs} runs")
    for column in ("phase", "median ms", "min ms", "max ms"):
        table.add_column(column, justify="right" if column != "phase" else "left")
    for name, values in timings.items():
        table.add_row(name, f"{statistics.median(values) * 1000:.0f}",
                      f"{min(values) * 1000:.0f}", f"{max(values) * 1000:.0f}")
    total = sum(statistics.median(v) for v in timings.values())
    table.add_row("total per item", f"{total * 1000:.0f}", "", "")
    Console().print(table)


if __name__ == "__main__":
    main()
