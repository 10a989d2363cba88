#!/usr/bin/env python3
"""Does the sequential rule hold under bimodal per-process noise? A/A, a 3% effect, a 25x one.

    .venv/bin/python scripts/sequential_check.py              # 40 repetitions per scenario
    .venv/bin/python scripts/sequential_check.py --fixed 20 --all-values   # and contrasts

Every repetition is one full `measure()` call (executor/parts/bench/measure.py: the interleaved
blocks, the looks, Pocock-type alpha spending, the per-variant mode split and the fast-mode
decision, exactly as `isobench bench` runs them) with a fixture TrialRunner in the seam where
containers would be. The fixture is a noise model, not a measurement, so this checks the rule,
not a machine. Each trial is one "process":
  * its mode: slow (x `--slow-factor`, default 1.3) with probability `--slow-share` (0.25),
    for the whole process, like the H200's slow processes (docs/architecture.md);
  * its own offset: lognormal, sigma `--process-sigma` (1.5%, the spread of the H200's bulk);
  * `--iters` iterations (100) with lognormal jitter `--iter-sigma` (3%, within the measured
    1-7% iteration IQR) and 1% of iterations 2x slow (stragglers); the trial value is their
    median, as in scripts/gpu_timing_check.py.
Scenarios: A/A (base2 = base); a 3% effect (human 3% faster); a 25x effect (human 25x faster).
Targets (issue #12): A/A false changes <= 5%, the 3% effect found (improved) in >= 90%, the 25x
effect decided in <= 6 trials per variant.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from executor.parts.bench.measure import measure  # noqa: E402
from executor.parts.bench.results import TrialRecord  # noqa: E402
from executor.parts.bench.schedule import TrialSpec  # noqa: E402
from executor.parts.bench.sequential import SequentialDesign, Spending  # noqa: E402
from executor.parts.bench.trial import new_record  # noqa: E402

SCENARIOS = {"A/A": ("base2", 1.0), "3% effect": ("human", 1 / 1.03),
             "25x effect": ("human", 1 / 25)}
BASE_MS = 0.86


class NoiseModelRunner:
    """A TrialRunner whose trials are draws from the bimodal per-process noise model."""

    metric_info = {"name": "ms", "unit": "ms", "lower_is_better": True, "kind": "fixture"}

    def __init__(self, factors: dict[str, float], args: argparse.Namespace, seed: int):
        self.factors, self.args = factors, args
        self.rng = np.random.default_rng(seed)

    def __call__(self, spec: TrialSpec) -> TrialRecord:
        a, rng = self.args, self.rng
        mode = a.slow_factor if rng.random() < a.slow_share else 1.0
        process = BASE_MS * self.factors[spec.variant] * mode * \
            float(np.exp(rng.normal(0, a.process_sigma)))
        iters = process * np.exp(rng.normal(0, a.iter_sigma, a.iters))
        iters[rng.random(a.iters) < 0.01] *= 2.0
        record = new_record(spec)
        record.value, record.ok = float(np.median(iters)), True
        return record


def one_run(scenario: str, args: argparse.Namespace, rep: int, design: SequentialDesign,
            fixed: bool, fast_mode: bool) -> tuple[str, int]:
    """(verdict of the scenario's pair, trials per variant at its decision or the stop)."""
    name, factor = SCENARIOS[scenario]
    runner = NoiseModelRunner({"base": 1.0, name: factor}, args, seed=args.seed * 1000 + rep)
    _, verdict, stopping = measure(["base", name], runner, design, warmup=0,
                                   seed=args.seed * 1000 + rep, min_effect=args.min_effect,
                                   fixed=fixed, fast_mode=fast_mode, log=lambda _: None)
    decision = verdict.analysis["comparisons"][f"{name}/base"]
    return decision["verdict"], decision.get("trials_per_variant") or stopping.blocks


def run_design(label: str, design: SequentialDesign, args: argparse.Namespace,
               fixed: bool, fast_mode: bool = True) -> bool:
    print(f"\n## {label}: looks at {design.looks()} trials/variant, alpha per look "
          f"{', '.join(f'{x:.4f}' for x in design.levels())}")
    ok = True
    for scenario in SCENARIOS:
        started = time.monotonic()
        runs = [one_run(scenario, args, rep, design, fixed, fast_mode)
                for rep in range(args.reps)]
        verdicts = [v for v, _ in runs]
        trials = [t for _, t in runs]
        counts = {v: verdicts.count(v) for v in sorted(set(verdicts))}
        line = (f"{scenario:<11} {args.reps} runs: {counts}; trials/variant mean "
                f"{statistics.mean(trials):.1f}, median {statistics.median(trials):g}, max "
                f"{max(trials)} ({time.monotonic() - started:.0f}s)")
        if scenario == "A/A":
            false = sum(v in ("improved", "regressed") for v in verdicts) / args.reps
            good = false <= 0.05
            line += f"\n            false changes {false:.1%} (target <= 5%)"
        elif scenario == "3% effect":
            found = verdicts.count("improved") / args.reps
            good = found >= 0.90
            line += f"\n            found (improved) {found:.1%} (target >= 90%)"
        else:
            decided = [t for v, t in runs if v == "improved"]
            good = len(decided) == args.reps and max(decided) <= 6
            line += (f"\n            decided improved in {len(decided)}/{args.reps}, at most "
                     f"{max(decided) if decided else '-'} trials/variant (target <= 6)")
        ok &= good
        print(f"{line}: {'PASS' if good else 'FAIL'}", flush=True)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    design = SequentialDesign()
    parser.add_argument("--reps", type=int, default=40, help="repetitions per scenario")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slow-share", type=float, default=0.25)
    parser.add_argument("--slow-factor", type=float, default=1.3)
    parser.add_argument("--process-sigma", type=float, default=0.015)
    parser.add_argument("--iter-sigma", type=float, default=0.03)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--min-effect", type=float, default=0.02)
    parser.add_argument("--min-trials", type=int, default=design.min_trials)
    parser.add_argument("--look-every", type=int, default=design.look_every)
    parser.add_argument("--max-trials", type=int, default=design.max_trials)
    parser.add_argument("--spending", choices=[s.value for s in Spending],
                        default=design.spending.value)
    parser.add_argument("--fixed", type=int, default=0,
                        help="also run a fixed design of this many trials, for contrast")
    parser.add_argument("--all-values", action="store_true",
                        help="also run the sequential design on all values (no mode split), "
                             "for contrast")
    args = parser.parse_args()
    print(f"# sequential_check: fixture noise model at the TrialRunner seam (no processes): "
          f"slow mode x{args.slow_factor} with p={args.slow_share}, process sigma "
          f"{args.process_sigma:.1%}, {args.iters} iterations/process with sigma "
          f"{args.iter_sigma:.1%} and 1% 2x stragglers; min effect {args.min_effect:.0%}, "
          f"alpha 0.05, seed {args.seed}")
    sequential = SequentialDesign(min_trials=args.min_trials, look_every=args.look_every,
                                  max_trials=args.max_trials, spending=args.spending)
    ok = run_design(f"sequential ({args.spending})", sequential, args, fixed=False)
    if args.fixed:
        run_design(f"fixed {args.fixed} (for contrast, not a target)",
                   SequentialDesign.fixed(args.fixed, 0.05), args, fixed=True)
    if args.all_values:
        run_design("sequential on all values, no mode split (for contrast, not a target)",
                   sequential, args, fixed=False, fast_mode=False)
    print(f"\n{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
