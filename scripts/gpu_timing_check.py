#!/usr/bin/env python3
"""How much noise is there between fresh processes on this GPU, and can isobench see a ~4% cost?

    python3 scripts/gpu_timing_check.py                   # H100/H200: 2-7 minutes
    python3 scripts/gpu_timing_check.py --max-trials 15   # shorter cap
    python3 scripts/gpu_timing_check.py --device cpu --size tiny --trials 4   # CPU smoke test

Needs PyTorch, numpy, scipy and pydantic in the Python that runs it; no Docker, no network.
(An image with torch but no pydantic: `pip download pydantic pydantic-core annotated-types
typing-inspection typing-extensions` elsewhere, `pip install --no-index --target DIR *.whl`
there, and run with PYTHONPATH=DIR.) Exits 3 with a one-line reason when something is missing.
It runs isobench's own timing core (executor/parts/bench/measure.py: interleaved randomised blocks,
one fresh process per trial, sequential looks with alpha spending until A/A and A/B are both
decided or --max-trials, the per-variant mode split with fast-mode decisions, NVML telemetry
with its flag-and-rerun rule and a clock-lock attempt; all as `isobench bench` runs them;
`--trials N` for the fixed design) on a small decode-like
workload: a chain of bf16 MLP layers (x @ W_up, gelu, @ W_down, residual, RMS norm) at batch
32, each process timing `--iters` iterations after `--warmup-iters` and reporting their median.
Three variants share one schedule:
  A   (base)   the workload
  A'  (base2)  the same code again: an A/A control; any verdict but no_change/inconclusive
               means the setup invents differences
  B   (agent)  the workload plus one extra matrix product reading `--extra-cost` (default 4%)
               more weight bytes per iteration: a known small slowdown to detect
With nvidia-smi on the host, each trial first waits for an idle GPU and records its clocks,
temperature and power; with pynvml (`pip install nvidia-ml-py`) also throttle reasons,
power/thermal violation time, ECC/Xid events and other processes, and throttled or contended
trials are run again. Writes every trial and the analysis to --out (default ./gpu-timing).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SIZES = {  # (layers, batch, hidden, ffn); full ~ 2 GiB of bf16 weights, memory-bound on H100
    "full": (8, 32, 4096, 16384),
    "tiny": (2, 8, 128, 512),
}
EXIT_MISSING = 3


# --------------------------------------------------------------------------- worker process


def worker(args: argparse.Namespace) -> None:
    """One trial: build the model, warm up, time iterations, write their summary as JSON."""
    import torch

    layers, batch, hidden, ffn = SIZES[args.size]
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)  # A and A' build exactly the same weights and input
    scale_up, scale_down = hidden ** -0.5, ffn ** -0.5
    weights = [(torch.randn(hidden, ffn, device=device, dtype=dtype) * scale_up,
                torch.randn(ffn, hidden, device=device, dtype=dtype) * scale_down)
               for _ in range(layers)]
    x0 = torch.randn(batch, hidden, device=device, dtype=dtype)
    extra = None
    if args.variant == "B":
        # extra_cost of the weight bytes, as one more product: a known amount of extra work
        cols = max(128, round(args.extra_cost * layers * 2 * ffn / 128) * 128)
        extra = torch.randn(hidden, cols, device=device, dtype=dtype) * scale_up

    def step() -> torch.Tensor:
        x = x0
        for w_up, w_down in weights:
            h = torch.nn.functional.gelu(x @ w_up)
            x = x + h @ w_down
            x = x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6).to(dtype)
        if extra is not None:
            x = x + (x @ extra)[:, :hidden]
        return x

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup_iters):
        step()
    sync()
    times = []
    for _ in range(args.iters):
        start = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - start) * 1000)
    ordered = sorted(times)
    median = statistics.median(times)
    q1, _, q3 = statistics.quantiles(times, n=4)
    result = {"median_ms": median, "min_ms": ordered[0], "max_ms": ordered[-1],
              "iter_iqr_rel": (q3 - q1) / median, "worst_over_median": ordered[-1] / median,
              "iters": len(times), "variant": args.variant,
              "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__}
    Path(args.output).write_text(json.dumps(result))


def probe(args: argparse.Namespace) -> None:
    """Print what the worker would run on, as JSON (run in a subprocess: keeps the controller
    process free of CUDA)."""
    import torch

    info = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    print(json.dumps(info))


# --------------------------------------------------------------------------- controller


def missing_modules() -> list[str]:
    return [name for name in ("torch", "numpy", "scipy", "pydantic")
            if importlib.util.find_spec(name) is None]


def controller(args: argparse.Namespace) -> int:
    missing = missing_modules()
    if missing:
        print(f"gpu_timing_check: {', '.join(missing)} not installed in {sys.executable}. "
              f"This check needs PyTorch (the workload) and numpy, scipy, pydantic (isobench's "
              f"statistics). Run it with the Python that has them, e.g. the one where "
              f"`python3 -c 'import torch'` works, after `pip install numpy scipy pydantic`.",
              file=sys.stderr)
        return EXIT_MISSING
    sys.path.insert(0, str(REPO))
    from executor.parts.bench.gpu import make_guard
    from executor.parts.bench.gpu_telemetry import trial_flag
    from executor.parts.bench.measure import measure
    from executor.parts.bench.process_trial import ProcessTrialRunner, ProcessVariant
    from executor.parts.bench.sequential import SequentialDesign
    from executor.core.task import MetricSpec

    env = json.loads(subprocess.run([sys.executable, __file__, "--probe"], check=True,
                                    capture_output=True, text=True).stdout)
    if args.device == "cuda" and not env["cuda_available"]:
        print(f"gpu_timing_check: PyTorch {env['torch']} sees no CUDA GPU here. On a GPU "
              f"machine check `nvidia-smi`; for a local smoke test of the script run "
              f"`{Path(__file__).name} --device cpu --size tiny --trials 4`.", file=sys.stderr)
        return EXIT_MISSING
    layers, batch, hidden, ffn = SIZES[args.size]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seed = args.seed if args.seed is not None else int(time.time()) % 100000
    print(f"# gpu_timing_check: {env.get('device', 'cpu')}, torch {env['torch']}"
          f"{', CUDA ' + env['cuda'] if env.get('cuda') else ''}")
    print(f"# workload: {layers} bf16 MLP layers, batch {batch}, hidden {hidden}, ffn {ffn}; "
          f"{args.warmup_iters} warm-up + {args.iters} timed iterations per process; "
          f"trial value = median iteration (ms)")
    design = (SequentialDesign.fixed(args.trials, args.alpha) if args.trials else
              SequentialDesign(min_trials=min(args.min_trials, args.max_trials),
                               look_every=args.look_every, max_trials=args.max_trials,
                               alpha=args.alpha))
    print(f"# schedule: {args.warmup} warm-up + up to {design.max_trials} timed blocks of A, A', "
          f"B in random order (seed {seed}), each trial a fresh process; looks at "
          f"{design.looks()} trials/variant, alpha per look "
          f"{', '.join(f'{a:.4f}' for a in design.levels())}; B = A + "
          f"{args.extra_cost:.1%} more weight bytes")

    def command(variant: str) -> ProcessVariant:
        return ProcessVariant(command=[
            sys.executable, __file__, "--worker", "--variant", variant, "--device",
            args.device, "--size", args.size, "--iters", str(args.iters), "--warmup-iters",
            str(args.warmup_iters), "--extra-cost", str(args.extra_cost),
            "--output", "{output_file}"])

    guard = make_guard(None, lambda m: print(f"# {m}"), lock_clocks=not args.no_lock_clocks) \
        if args.device == "cuda" else None
    metric = MetricSpec(kind="json_path", field="median_ms", lower_is_better=True,
                        output_file="trial.json")
    runner = ProcessTrialRunner({"base": command("A"), "base2": command("A"),
                                 "agent": command("B")}, metric, log_dir=out / "trials",
                                timeout_s=600, gpu_guard=guard)
    started = time.monotonic()
    clock_lock = None
    try:
        trials, decision, stopping = measure(
            ["base", "base2", "agent"], runner, design, warmup=args.warmup, seed=seed,
            min_effect=args.min_effect, lower_is_better=True, flagged=trial_flag,
            max_reruns=args.max_reruns, fixed=bool(args.trials), log=print)
    finally:
        if guard is not None:
            clock_lock = guard.close()  # unlock the clocks whatever happened
    elapsed = time.monotonic() - started
    (out / "results.json").write_text(json.dumps({
        "env": env, "args": vars(args), "seed": seed, "verdict": decision.verdict,
        "reason": decision.reason, "analysis": decision.analysis,
        "stopping": stopping.model_dump(mode="json"), "clock_lock": clock_lock,
        "trials": [t.model_dump(mode="json") for t in trials]}, indent=1))
    report(trials, decision, stopping, clock_lock, args, elapsed, out)
    return 0 if decision.analysis else 1


def report(trials, decision, stopping, clock_lock, args, elapsed: float, out: Path) -> None:
    names = {"base": "A  (base) ", "base2": "A' (base2)", "agent": "B  (agent)"}
    print(f"\n# results ({elapsed:.0f}s, {len(trials)} processes; all trials in "
          f"{out / 'results.json'})")
    if decision.analysis is None:
        print(f"FAILED: {decision.reason}")
        return
    analysis = decision.analysis
    print(f"{'variant':<11} {'n':>3} {'median ms':>10} {'95% CI of median':>22} {'CV':>7} "
          f"{'min':>9} {'max':>9} {'iter IQR':>9} {'worst iter':>10}")
    for key, label in names.items():
        s = analysis["summaries"][key]
        inner = [json.loads((out / "trials" / f"trial-{t.index:03d}-{key}.out").read_text())
                 for t in trials if t.variant == key and t.ok and not t.warmup
                 and not t.excluded]
        iqr = statistics.median(r["iter_iqr_rel"] for r in inner)
        worst = max(r["worst_over_median"] for r in inner)
        print(f"{label:<11} {s['n']:>3} {s['median']:>10.4f} "
              f"[{s['ci_low']:>9.4f}, {s['ci_high']:>9.4f}] {s['cv']:>7.2%} "
              f"{s['min']:>9.4f} {s['max']:>9.4f} {iqr:>9.2%} {worst:>9.1f}x")
    expected = 1 / (1 + args.extra_cost)
    for key, what, target in (
            ("base2/base", "A/A  A' vs A (identical code)", "no_change or inconclusive"),
            ("agent/base", f"A/B  B vs A (+{args.extra_cost:.0%} bytes)",
             f"regressed, speedup near {expected:.3f} if time follows bytes")):
        d = analysis["comparisons"][key]
        c = d["comparison"]
        ci = f"[{c['ci_low']:.4f}, {c['ci_high']:.4f}]" if c["ci_low"] is not None else "n/a"
        at = (f" at look {d['look']} ({d['trials_per_variant']} trials/variant)"
              if d.get("look") else "")
        print(f"{what:<32} speedup {c['speedup']:.4f} {c['confidence']:.1%} CI {ci}  p_better "
              f"{c['p_better']:.3g} p_worse {c['p_worse']:.3g}  -> {d['verdict'].upper()}{at}"
              f"  (expected: {target}; compared: {d.get('statistic', 'median')})")
    modes = analysis.get("modes") or {}
    print("modes: " + "; ".join(
        f"{names[k].split()[0]} {m['n_slow']}/{m['n']} slow"
        + (f" ({m['slow_over_fast']:.2f}x, boundary {m['boundary']:.4f})" if m['n_slow'] else "")
        for k, m in modes.items()))
    print(f"stopping: {stopping.mode}, {stopping.reason} after {stopping.blocks} trials/variant "
          f"({len(stopping.looks)} look(s)); {stopping.excluded} trial(s) excluded by telemetry, "
          f"{stopping.reruns} re-run, {stopping.flagged_kept} flagged but kept")
    telemetry = [t.gpu.telemetry for t in trials if t.gpu and t.gpu.telemetry]
    if clock_lock is not None or telemetry:
        lock = (f"clock lock: {clock_lock['result']} {clock_lock.get('locked_mhz') or ''}"
                f"{', reset: ' + clock_lock['reset'] if clock_lock.get('reset') else ''}"
                if clock_lock else "clock lock: n/a")
        print(f"NVML: {lock}; {_telemetry_line(telemetry)}")
    elif args.device == "cuda":
        print("NVML: no telemetry (pynvml not installed or NVML not answering)")
    gpu = [t.gpu for t in trials if t.gpu and t.gpu.before]
    if gpu:
        sm = [s.sm_clock_mhz for g in gpu for s in g.after if s.sm_clock_mhz]
        temp = [s.temperature_c for g in gpu for s in g.after if s.temperature_c is not None]
        power = [s.power_w for g in gpu for s in g.after if s.power_w is not None]
        waits = [g.idle_wait_s for g in gpu]
        first = gpu[0].before[0]
        print(f"GPU {first.name}, driver {first.driver_version}: after each trial SM clock "
              f"{_range(sm, 'MHz')}, temperature {_range(temp, 'C')}, power {_range(power, 'W')};"
              f" idle wait per trial median {statistics.median(waits):.2f}s, max "
              f"{max(waits):.2f}s, {sum(not g.idle_reached for g in gpu)} never idle")
    print(f"min effect {args.min_effect:.0%}, alpha {args.alpha} over all looks (alpha_k/2 per "
          f"direction at look k). "
          f"CV: spread of the trial values (one per fresh process) around their mean. iter "
          f"IQR: interquartile range of the iterations inside one process / their median "
          f"(median over processes). worst iter: slowest single iteration / its process's "
          f"median (max over processes).")


def _telemetry_line(telemetry) -> str:
    after = [s for t in telemetry for s in t.after]
    flags = [f for t in telemetry for f in t.flags]
    reasons = sorted({r for s in after for r in s.clock_reasons}) or "none"
    first = f" (first: {flags[0]})" if flags else ""
    return (f"after each trial SM {_range([s.sm_clock_mhz for s in after if s.sm_clock_mhz], 'MHz')}"
            f", memory {_range([s.mem_clock_mhz for s in after if s.mem_clock_mhz], 'MHz')}, "
            f"{_range([s.temperature_c for s in after if s.temperature_c is not None], 'C')}, "
            f"{_range([s.power_w for s in after if s.power_w is not None], 'W')}; clock reasons "
            f"seen {reasons}; Xid events {sum(len(t.xid_events) for t in telemetry)}; flagged "
            f"trials {sum(bool(t.flags) for t in telemetry)}{first}")


def _range(values: list[float], unit: str) -> str:
    return f"{min(values):.0f}-{max(values):.0f} {unit}" if values else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--trials", type=int, default=None,
                        help="a fixed design of this many trials per variant (default: "
                             "sequential, see --max-trials)")
    parser.add_argument("--max-trials", type=int, default=30,
                        help="sequential: at most this many trials per variant")
    parser.add_argument("--min-trials", type=int, default=5,
                        help="sequential: trials per variant before the first look")
    parser.add_argument("--look-every", type=int, default=5,
                        help="sequential: trials per variant between looks")
    parser.add_argument("--max-reruns", type=int, default=6,
                        help="trials flagged by NVML (throttling, contention, Xid) re-run")
    parser.add_argument("--no-lock-clocks", action="store_true",
                        help="do not try to lock the GPU clocks (needs root; always reset)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up blocks (not analysed)")
    parser.add_argument("--iters", type=int, default=100, help="timed iterations per process")
    parser.add_argument("--warmup-iters", type=int, default=20)
    parser.add_argument("--extra-cost", type=float, default=0.04,
                        help="B's extra weight bytes as a fraction of A's (default 0.04)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--size", choices=tuple(SIZES), default="full")
    parser.add_argument("--min-effect", type=float, default=0.02)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=None, help="schedule seed (printed)")
    parser.add_argument("--out", default="gpu-timing", help="folder for results.json and logs")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=("A", "B"), help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0
    if args.probe:
        probe(args)
        return 0
    return controller(args)


if __name__ == "__main__":
    sys.exit(main())
