#!/usr/bin/env python3
"""Calibrate `isobench bench` on the embedded demo: does it invent changes, and does it see them?

    .venv/bin/python scripts/calibrate_demo.py                 # 20 A/A runs + 10 planted runs
    .venv/bin/python scripts/calibrate_demo.py --aa-runs 20 --planted-runs 20

Part 1, A/A: runs `isobench bench <demo sha> --aa` `--aa-runs` times. base2 is the very same
image as base, so base2/base must come out no_change or inconclusive (target: >= 19 of 20),
while the human commit (a real ~25x speed-up) must come out improved (target: 20 of 20).
Part 2, planted regression: runs `isobench bench <demo sha> --patch planted_slowdown.patch`
`--planted-runs` times. The patch adds a fixed amount of extra work to the allocator's hot
path that makes the demo benchmark about 5% slower; agent/base must come out regressed.
Every run is the real CLI in a subprocess (fresh containers, real engine), with the settings
printed at the top; the counts at the end are what the issue asks to paste.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLANTED_PATCH = Path(__file__).resolve().parent / "calibration" / "planted_slowdown.patch"
sys.path.insert(0, str(REPO))

from executor.parts.bench.run import BenchOptions  # noqa: E402
from executor.parts.demo import DEMO_HUMAN_SHA  # noqa: E402

NOT_CHANGED = ("no_change", "inconclusive")


def bench(args: argparse.Namespace, run_id: str, extra: list[str]) -> dict:
    argv = [sys.executable, "-m", "executor.cli", "bench", DEMO_HUMAN_SHA[:8], "--trials",
            str(args.trials), "--warmup", str(args.warmup), "--state-dir", str(args.state_dir),
            "--run-id", run_id, "--json", *(["--cpuset", args.cpuset] if args.cpuset else []),
            *extra]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise SystemExit(f"calibrate_demo: `{' '.join(argv[2:])}` failed (exit "
                         f"{proc.returncode}): {tail}")
    return json.loads(proc.stdout)


def pair(results: dict, key: str) -> tuple[str, float, float | None, float | None]:
    decision = results["analysis"]["comparisons"][key]
    c = decision["comparison"]
    return decision["verdict"], c["speedup"], c["ci_low"], c["ci_high"]


def line(i: int, results: dict, keys: list[str], started: float) -> str:
    cvs = " ".join(f"{name} cv {s['cv']:.1%}" for name, s in
                   results["analysis"]["summaries"].items() if s.get("cv") is not None)
    parts = []
    for key in keys:
        verdict, speedup, low, high = pair(results, key)
        interval = "[no interval]" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"
        parts.append(f"{key} {speedup:.3f} {interval} {verdict}")
    return f"  run {i:2d} ({time.monotonic() - started:4.0f}s)  " + "; ".join(parts) + \
        f"  ({cvs})"


def run_part(args, label: str, runs: int, extra: list[str], keys: list[str]) -> list[dict]:
    print(f"\n## {label}: {runs} runs of `isobench bench {DEMO_HUMAN_SHA[:8]} "
          f"{' '.join(extra)}`", flush=True)
    out = []
    started = time.monotonic()
    for i in range(1, runs + 1):
        results = bench(args, f"calib-{label}-{int(time.time())}-{i:02d}", extra)
        if results["verdict"] == "bench_failed":
            raise SystemExit(f"calibrate_demo: run {i} failed: {results['verdict_reason']}")
        out.append(results)
        print(line(i, results, keys, started), flush=True)
    return out


def counts(results: list[dict], key: str) -> Counter:
    return Counter(pair(r, key)[0] for r in results)


def show(counter: Counter) -> str:
    return ", ".join(f"{v} {n}" for v, n in counter.most_common())


def main() -> int:
    defaults = BenchOptions()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--aa-runs", type=int, default=20)
    parser.add_argument("--planted-runs", type=int, default=10)
    parser.add_argument("--trials", type=int, default=defaults.trials)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--cpuset", default="1",
                        help="pin every trial container to this host CPU ('' for none)")
    parser.add_argument("--state-dir", type=Path, default=Path("/tmp/isobench-calibration"))
    args = parser.parse_args()

    print(f"# isobench bench calibration on the demo ({DEMO_HUMAN_SHA[:12]}): trials "
          f"{args.trials}, warm-up blocks {args.warmup}, cpuset {args.cpuset or 'none'}, "
          f"min effect {defaults.min_effect:.0%}, alpha {defaults.alpha}; results under "
          f"{args.state_dir}/bench/demo/")
    aa = run_part(args, "aa", args.aa_runs, ["--aa"], ["base2/base", "human/base"]) \
        if args.aa_runs else []
    planted = run_part(args, "planted", args.planted_runs, ["--patch", str(PLANTED_PATCH)],
                       ["agent/base"]) if args.planted_runs else []

    print("\n## counts")
    ok = True
    if aa:
        same, human = counts(aa, "base2/base"), counts(aa, "human/base")
        quiet = sum(same[v] for v in NOT_CHANGED)
        need = len(aa) - max(1, len(aa) // 20)
        ok &= quiet >= need and human["improved"] == len(aa)
        print(f"A/A base2 vs base:   {show(same)}  -> no_change or inconclusive in {quiet} of "
              f"{len(aa)} (target >= {need}): {'PASS' if quiet >= need else 'FAIL'}")
        print(f"human vs base:       {show(human)}  -> improved in {human['improved']} of "
              f"{len(aa)} (target {len(aa)}): "
              f"{'PASS' if human['improved'] == len(aa) else 'FAIL'}")
        ratios = [pair(r, "base2/base")[1] for r in aa]
        print(f"                     base2/base speedups: median {statistics.median(ratios):.4f},"
              f" range {min(ratios):.4f}-{max(ratios):.4f}; human/base median "
              f"{statistics.median(pair(r, 'human/base')[1] for r in aa):.2f}x")
    if planted:
        got = counts(planted, "agent/base")
        speedups = [pair(r, "agent/base")[1] for r in planted]
        ok &= got["regressed"] == len(planted)
        print(f"planted slowdown:    {show(got)}  -> regressed in {got['regressed']} of "
              f"{len(planted)} (target {len(planted)}): "
              f"{'PASS' if got['regressed'] == len(planted) else 'FAIL'}")
        print(f"                     measured size: agent/base speedup median "
              f"{statistics.median(speedups):.4f} (= {1 / statistics.median(speedups) - 1:+.1%}"
              f" time), range {min(speedups):.4f}-{max(speedups):.4f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
