#!/usr/bin/env python3
"""The same `isobench run-commit` of the embedded demo on Docker and on rootless podman: wall
times and their ratio, from one run of this script.

    export ISOBENCH_PODMAN_SOCKET=$(scripts/ensure-podman.sh)    # as root
    .venv/bin/python scripts/engine_compare.py [--rounds 2] [--trials 3]

Each engine first gets one untimed run-commit, so both hold the demo's images (built on first
use: content tags, the same on both engines) and the timed runs compare warm runs. Then the
engines alternate, `--rounds` timed run-commits each (alternating: a drift of the shared
machine hits both). Prints each run's wall time and status, the median per engine and
podman / docker. Wall times on a shared machine: compare them within one run of this script.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from executor.parts import demo

REPO_ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("docker", "podman")


def run_commit(engine: str, state: Path, run_id: str, trials: int) -> tuple[float, int, str]:
    """One run-commit as a user runs it; (wall seconds, exit status, the sandbox tags)."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "executor.cli", "run-commit", demo.DEMO_HUMAN_SHA[:8],
         "--engine", engine, "--state-dir", str(state), "--run-id", run_id,
         "--trials", str(trials), "--warmup", "0"],
        capture_output=True, text=True, cwd=REPO_ROOT, env=os.environ.copy(), check=False)
    wall = time.monotonic() - started
    tags = sorted({word for line in proc.stderr.splitlines() for word in line.split()
                   if word.startswith("isobench/sandbox-demo:")})
    if proc.returncode != 0:
        print(proc.stderr[-1500:], file=sys.stderr)
    return wall, proc.returncode, ", ".join(tags)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="Timed run-commits per engine.")
    parser.add_argument("--trials", type=int, default=3, help="--trials of each run-commit.")
    args = parser.parse_args()
    console = Console(width=160)
    walls: dict[str, list[float]] = {engine: [] for engine in ENGINES}
    table = Table(title="run-commit of the demo, per engine")
    for column in ("engine", "run", "wall s", "exit", "sandbox image tags"):
        table.add_column(column)
    with tempfile.TemporaryDirectory(prefix="isobench-engines-") as tmp:
        state = Path(tmp) / "state"
        for engine in ENGINES:
            wall, code, tags = run_commit(engine, state, f"warm-{engine}", args.trials)
            table.add_row(engine, "warm-up (untimed)", f"{wall:.1f}", str(code), tags)
        for index in range(args.rounds):
            for engine in ENGINES:
                wall, code, tags = run_commit(engine, state, f"{engine}-{index}", args.trials)
                if code == 0:
                    walls[engine].append(wall)
                table.add_row(engine, str(index + 1), f"{wall:.1f}", str(code), tags)
    console.print(table)
    if not all(walls.values()):
        console.print("an engine had no successful timed run: no ratio")
        sys.exit(1)
    medians = {engine: statistics.median(values) for engine, values in walls.items()}
    for engine in ENGINES:
        console.print(f"{engine}: median {medians[engine]:.1f}s over {len(walls[engine])} runs")
    console.print(f"podman / docker wall time: {medians['podman'] / medians['docker']:.2f}x")


if __name__ == "__main__":
    main()
