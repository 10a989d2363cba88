#!/usr/bin/env python3
"""How long `isobench status` and `isobench report` take on a state directory, how much memory
they peak at, and how large the report they write is: before/after numbers to paste.

    .venv/bin/python scripts/records_timing.py STATE [--runs 3]
    .venv/bin/python scripts/records_timing.py STATE --against /path/to/other/checkout

Each run is a fresh process of this checkout (`python -m executor.cli`, from its root), output
discarded; its peak RSS is the kernel's (wait4's ru_maxrss). With `--against`, the other
checkout runs the same commands alternately with this one (same machine, same load, same page
cache) and the ratios this/other are printed: on a shared machine only the ratio is steady,
and CPU seconds (user + system) are steadier than wall seconds.
The report is written under a temporary directory; report.html's size and the size of every
file written beside it are printed. STATE is only read.
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

from pydantic import BaseModel

REPO = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


class Sample(BaseModel):
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    html_mb: float | None = None
    files_mb: float | None = None
    files: int | None = None


def run_once(checkout: Path, python: str, args: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MB) of one `isobench ARGS` from `checkout`."""
    started = time.perf_counter()
    proc = subprocess.Popen([python, "-m", "executor.cli", *args], cwd=checkout,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"isobench {' '.join(args)} failed in {checkout}: {stderr.strip()[-400:]}")
    # ru_maxrss is in KiB on Linux; CPU time (user + system) is what a busy host disturbs least
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def status_sample(checkout: Path, python: str, state: Path) -> Sample:
    seconds, cpu, rss = run_once(checkout, python, ["status", str(state)])
    return Sample(seconds=seconds, cpu_seconds=cpu, peak_rss_mb=rss)


def report_sample(checkout: Path, python: str, state: Path) -> Sample:
    with tempfile.TemporaryDirectory(prefix="isobench-report-timing-") as tmp:
        out = Path(tmp) / "report"
        seconds, cpu, rss = run_once(checkout, python, ["report", str(state), "-o", str(out)])
        written = [p for p in out.rglob("*") if p.is_file()]
        html = out / "report.html"
        return Sample(seconds=seconds, cpu_seconds=cpu, peak_rss_mb=rss,
                      html_mb=html.stat().st_size / MB if html.is_file() else None,
                      files_mb=sum(p.stat().st_size for p in written) / MB, files=len(written))


def median(samples: list[Sample], field: str) -> float | None:
    values = [getattr(s, field) for s in samples if getattr(s, field) is not None]
    return statistics.median(values) if values else None


def describe(name: str, samples: list[Sample]) -> str:
    times = [s.seconds for s in samples]
    line = (f"{name}: median {statistics.median(times):.2f} s (min {min(times):.2f}, max "
            f"{max(times):.2f}, {len(times)} runs), CPU {median(samples, 'cpu_seconds'):.2f} s "
            f"(min {min(s.cpu_seconds for s in samples):.2f}), peak RSS "
            f"{median(samples, 'peak_rss_mb'):.0f} MB")
    if samples[0].html_mb is not None:
        line += (f", report.html {median(samples, 'html_mb'):.2f} MB "
                 f"({samples[0].files} files, {median(samples, 'files_mb'):.1f} MB in all)")
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state", type=Path, help="The state directory (only read).")
    parser.add_argument("--runs", type=int, default=3, help="Runs per command and checkout.")
    parser.add_argument("--against", type=Path, help="Another checkout to compare with.")
    parser.add_argument("--against-python", help="Its interpreter (default: its .venv, else "
                                                 "this one).")
    parser.add_argument("--only", choices=("status", "report"), help="Time one command only.")
    args = parser.parse_args()
    state = args.state.resolve()
    sides = {"this": (REPO, sys.executable)}
    if args.against:
        other = args.against.resolve()
        venv = other / ".venv" / "bin" / "python"
        sides["other"] = (other, args.against_python or (str(venv) if venv.exists()
                                                         else sys.executable))
    results: dict[tuple[str, str], list[Sample]] = {}
    for _ in range(args.runs):  # alternate the sides: both see the same load
        for side, (checkout, python) in sides.items():
            for command, sample in (("status", status_sample), ("report", report_sample)):
                if args.only in (None, command):
                    results.setdefault((side, command), []).append(
                        sample(checkout, python, state))
    for (side, command), samples in results.items():
        print(describe(f"{side} ({sides[side][0]}) isobench {command}", samples))
    if args.against:
        for command in ("status", "report"):
            if (("this", command)) not in results:
                continue
            this, other = results[("this", command)], results[("other", command)]
            for field in ("seconds", "cpu_seconds", "peak_rss_mb", "html_mb"):
                a, b = median(this, field), median(other, field)
                if a is not None and b:
                    print(f"{command} {field} (medians): this/other = {a / b:.3f}")
            fastest = min(s.seconds for s in this) / min(s.seconds for s in other)
            print(f"{command} seconds (fastest runs): this/other = {fastest:.3f}")


if __name__ == "__main__":
    main()
