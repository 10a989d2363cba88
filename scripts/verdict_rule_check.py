#!/usr/bin/env python3
"""Does the interval rule for matches_human hold on the demo? Identical code and the heap patch.

    .venv/bin/python scripts/verdict_rule_check.py                 # 20 runs of each
    .venv/bin/python scripts/verdict_rule_check.py --runs 5        # fewer, on a slow machine

(a) identical code: the human commit's own diff (`git diff base human` of the demo repository)
    applied as the agent's patch. agent/human is the same code measured twice, so the verdict
    must be matches_human in at least 19 of 20 runs (the target scales: all but 1 in 20).
(b) the demo's heap-based reference patch (executor/parts/demo/reference_agent.patch), about
    0.91 of the human's speed: never matches_human.
Every run is the real CLI (`isobench bench <demo sha> --patch FILE --json`) in a subprocess:
fresh containers, the default sequential design, real engine. The counts at the end are the
figures issue 20 asks for; the exit status is 0 when both targets hold.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from executor.parts.demo import (DEMO_BASE_SHA, DEMO_HUMAN_SHA,  # noqa: E402
                                 REFERENCE_AGENT_PATCH, demo_repo_path)


def human_diff() -> bytes:
    return subprocess.run(["git", "-C", str(demo_repo_path()), "diff", DEMO_BASE_SHA,
                           DEMO_HUMAN_SHA], capture_output=True, check=True).stdout


def bench(args: argparse.Namespace, run_id: str, patch: Path) -> dict:
    argv = [sys.executable, "-m", "executor.cli", "bench", DEMO_HUMAN_SHA[:8], "--patch",
            str(patch), "--state-dir", str(args.state_dir), "--run-id", run_id, "--json",
            *(["--cpuset", args.cpuset] if args.cpuset else []),
            *(["--max-trials", str(args.max_trials)] if args.max_trials else [])]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    if not proc.stdout.strip():
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise SystemExit(f"verdict_rule_check: `{' '.join(argv[2:])}` failed (exit "
                         f"{proc.returncode}): {tail}")
    return json.loads(proc.stdout)


def describe(results: dict) -> tuple[str, float | None, str]:
    comparisons = (results.get("analysis") or {}).get("comparisons") or {}
    versus = comparisons.get("agent/human")
    if versus is None:
        return results["verdict"], None, results.get("verdict_reason", "")[:160]
    c = versus["comparison"]
    interval = "no CI" if c["ci_low"] is None else f"[{c['ci_low']:.3f}, {c['ci_high']:.3f}]"
    trials = (results.get("stopping") or {}).get("blocks")
    return (results["verdict"], c["speedup"],
            f"agent/human {c['speedup']:.3f} {interval} {versus['verdict']}, "
            f"{trials} trials/variant")


def run_case(args, label: str, patch: Path) -> list[tuple[str, float | None]]:
    print(f"\n## {label}: {args.runs} runs of `isobench bench {DEMO_HUMAN_SHA[:8]} --patch "
          f"{patch.name}`", flush=True)
    seen = []
    started = time.monotonic()
    for i in range(1, args.runs + 1):
        results = bench(args, f"verdict-{label}-{int(time.time())}-{i:02d}", patch)
        verdict, ratio, detail = describe(results)
        seen.append((verdict, ratio))
        print(f"  run {i:2d} ({time.monotonic() - started:4.0f}s)  {verdict:<14} {detail}",
              flush=True)
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--runs", type=int, default=20, help="runs of each case")
    parser.add_argument("--cases", default="identical,heap",
                        help="which cases, comma-separated (identical, heap)")
    parser.add_argument("--max-trials", type=int, default=None,
                        help="cap on trials per variant (default: the benchmark's)")
    parser.add_argument("--cpuset", default="1",
                        help="pin every trial container to this host CPU ('' for none)")
    parser.add_argument("--state-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "isobench-verdict-rule")
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    print(f"# matches_human interval rule on the demo ({DEMO_HUMAN_SHA[:12]}): {args.runs} runs "
          f"per case, cpuset {args.cpuset or 'none'}; results under {args.state_dir}/bench/")
    patches = {"heap": REFERENCE_AGENT_PATCH}
    if "identical" in cases:
        args.state_dir.mkdir(parents=True, exist_ok=True)
        patches["identical"] = args.state_dir / "human_diff.patch"
        patches["identical"].write_bytes(human_diff())
    outcome = {case: run_case(args, case, patches[case]) for case in cases}

    print("\n## counts")
    ok = True
    for case, seen in outcome.items():
        got = Counter(v for v, _ in seen)
        ratios = [r for _, r in seen if r is not None]
        spread = (f"; agent/human median {statistics.median(ratios):.3f}, range "
                  f"{min(ratios):.3f}-{max(ratios):.3f}" if ratios else "")
        matched = got["matches_human"]
        if case == "identical":
            need = len(seen) - len(seen) // 20
            passed = matched >= need
            target = f"matches_human in {matched} of {len(seen)} (target >= {need})"
        else:
            passed = matched == 0
            target = f"matches_human in {matched} of {len(seen)} (target 0)"
        ok &= passed
        shown = ", ".join(f"{v} {n}" for v, n in got.most_common())
        print(f"{case:<10} {shown}  -> {target}: {'PASS' if passed else 'FAIL'}{spread}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
