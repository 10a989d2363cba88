#!/usr/bin/env python3
"""What the Slurm backend adds per item against the local backend, from one run of each.

Starts the tests' single-node Slurm (Debian's slurm-wlm and munge on localhost, in a temp dir),
then runs the same plan of demo items (replay agent, benchmark skipped, the images already
built) through `isobench run --backend local` and `--backend slurm` with the same number of
workers, and prints both wall times, the ratio, and the overhead per item:
(slurm wall - local wall) / items x workers (each worker slot pays it once per item).

    .venv/bin/python scripts/slurm_overhead.py --items 4 --workers 2 --poll 0.5

Needs root (it starts munged, slurmctld and slurmd) and the Docker engine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.slurm_cluster import slurm_cluster


def isobench(*args: str, env: dict[str, str]) -> float:
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "executor.cli", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if out.returncode != 0:
        raise SystemExit(f"isobench {' '.join(args[:1])} exit {out.returncode}:\n"
                         f"{out.stderr[-3000:]}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--poll", type=float, default=0.5, help="--slurm-poll seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="isobench-slurm-overhead-") as tmp, \
            slurm_cluster() as cluster:
        env = {**os.environ, **cluster.env, "ISOBENCH_CACHE": os.environ.get(
            "ISOBENCH_CACHE", str(Path(tmp) / "cache"))}
        plan = Path(tmp) / "plan.json"
        isobench("plan", "--demo", str(args.items), "-o", str(plan), env=env)
        common = ["run", str(plan), "--state-dir", str(Path(tmp) / "state"), "--skip-bench",
                  "--no-progress", "--order", "plan", "--workers", str(args.workers)]
        isobench("run-commit", "a0476e8c", "--state-dir", str(Path(tmp) / "warm"),
                 "--skip-bench", env=env)  # images built (or found) before anything is timed
        local = isobench(*common, "--run-id", "local", env=env)
        slurm = isobench(*common, "--run-id", "slurm", "--backend", "slurm", "--slurm-gres",
                         "none", "--slurm-poll", str(args.poll), env=env)
    per_item = (slurm - local) / args.items * args.workers
    print(f"items {args.items}, workers {args.workers}, squeue poll {args.poll}s")
    print(f"local backend wall   {local:8.1f} s")
    print(f"slurm backend wall   {slurm:8.1f} s")
    print(f"ratio slurm/local    {slurm / local:8.2f}")
    print(f"overhead per item    {per_item:8.1f} s  (per worker slot)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
