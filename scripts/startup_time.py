#!/usr/bin/env python3
"""How long `isobench --help` and `isobench status --help` take, median of N runs.

    .venv/bin/python scripts/startup_time.py [--runs 5]

Each run is a fresh `python -m executor.cli ...` of this interpreter, from the repository root
(so this checkout's `executor` is the one timed), output discarded: the wall time a user waits.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMANDS = (["--help"], ["status", "--help"])


def wall_s(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "executor.cli", *args], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for command in COMMANDS:
        times = [wall_s(command) for _ in range(args.runs)]
        print(f"isobench {' '.join(command)}: median {statistics.median(times):.3f}s "
              f"over {args.runs} runs (min {min(times):.3f}, max {max(times):.3f})")


if __name__ == "__main__":
    main()
