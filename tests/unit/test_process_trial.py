"""ProcessTrialRunner with real subprocesses, and the timing core (schedule -> runner -> stats)
composed exactly as `benchmark()` and scripts/gpu_timing_check.py compose it."""

import json
import sys
from collections import Counter

import pytest

from executor.parts.bench.measure import decide_trials, run_trials
from executor.parts.bench.process_trial import ProcessTrialRunner, ProcessVariant
from executor.parts.bench.schedule import TrialSpec
from executor.core.task import MetricSpec

JSON_METRIC = MetricSpec(kind="json_path", field="ms", lower_is_better=True,
                         output_file="trial.json")

# A benchmark whose value is `base_ms` plus a small jitter taken from its trial number (the
# runner names each trial's output file after it), so values vary like real trials but
# deterministically. It also reports its own pid: every trial must be a new process.
BENCH = """
import json, os, re, sys
base_ms, path = float(sys.argv[1]), sys.argv[2]
index = int(re.search(r"trial-(\\d+)", path).group(1))
json.dump({"ms": base_ms * (1 + 0.001 * (index % 7)), "pid": os.getpid()}, open(path, "w"))
print("bench done")
"""


def variant(ms: float) -> ProcessVariant:
    return ProcessVariant(command=[sys.executable, "-c", BENCH, str(ms), "{output_file}"])


def spec(index: int, name: str = "base", warmup: bool = False) -> TrialSpec:
    return TrialSpec(index=index, block=0, variant=name, warmup=warmup)


def test_each_trial_is_a_fresh_process_with_its_own_output(tmp_path):
    runner = ProcessTrialRunner({"base": variant(10.0)}, JSON_METRIC, log_dir=tmp_path)
    records = [runner(spec(i)) for i in range(3)]
    assert all(r.ok and r.error is None for r in records)
    assert [r.value for r in records] == pytest.approx([10.0, 10.01, 10.02])
    pids = {json.loads((tmp_path / f"trial-{i:03d}-base.out").read_text())["pid"]
            for i in range(3)}
    assert len(pids) == 3
    assert "bench done" in (tmp_path / "trial-000-base.log").read_text()
    assert runner.metric_info == {"name": "ms", "unit": "", "lower_is_better": True,
                                  "kind": "json_path"}
    assert records[0].gpu is None and records[0].duration_s > 0


def test_failures_become_records_with_the_reason(tmp_path):
    variants = {
        "base": ProcessVariant(command=[sys.executable, "-c",
                                        "import sys; print('boom', file=sys.stderr); "
                                        "sys.exit(3)"]),
        "human": ProcessVariant(command=[sys.executable, "-c", "print('no file')"]),
        "agent": ProcessVariant(command=[sys.executable, "-c",
                                         "import time; time.sleep(30)"]),
        "base2": ProcessVariant(command=["/nonexistent/benchmark"]),
    }
    runner = ProcessTrialRunner(variants, JSON_METRIC, log_dir=tmp_path, timeout_s=0.5)
    failed = runner(spec(0, "base"))
    assert not failed.ok and "exit 3" in failed.error and "boom" in failed.error
    assert "wrote no" in runner(spec(1, "human")).error
    assert "timed out" in runner(spec(2, "agent")).error
    assert "did not start" in runner(spec(3, "base2")).error


def test_stdout_metric_and_environment(tmp_path):
    metric = MetricSpec(kind="regex", regex=r"latency (\S+) ms", lower_is_better=True,
                        output_file=None)
    command = [sys.executable, "-c", "import os; print('latency', os.environ['SCALE'], 'ms')"]
    runner = ProcessTrialRunner({"base": ProcessVariant(command=command,
                                                        env={"SCALE": "2.5"})},
                                metric, log_dir=tmp_path)
    assert runner(spec(0)).value == 2.5


def test_timing_core_detects_a_slower_variant_and_keeps_identical_ones_apart(tmp_path):
    runner = ProcessTrialRunner({"base": variant(10.0), "base2": variant(10.0),
                                 "agent": variant(11.0)}, JSON_METRIC, log_dir=tmp_path)
    lines: list[str] = []
    records = run_trials(["base", "base2", "agent"], runner, trials=5, warmup=1, seed=3,
                         log=lines.append)
    assert len(records) == 18 and sum(r.warmup for r in records) == 3
    assert Counter(r.variant for r in records if not r.warmup) == \
        {"base": 5, "base2": 5, "agent": 5}
    assert all(r.value >= 11.0 for r in records if r.variant == "agent")  # dispatched right
    assert len(lines) == 19 and "18 trials" in lines[-1]
    decision = decide_trials(records, ["base", "base2", "agent"], lower_is_better=True,
                             min_effect=0.02, alpha=0.05, seed=3)
    comparisons = decision.analysis["comparisons"]
    assert decision.verdict == "regressed"
    assert comparisons["agent/base"]["verdict"] == "regressed"
    assert comparisons["base2/base"]["verdict"] in ("no_change", "inconclusive")


def test_a_variant_without_good_trials_is_bench_failed(tmp_path):
    broken = ProcessVariant(command=[sys.executable, "-c", "raise SystemExit(1)"])
    runner = ProcessTrialRunner({"base": variant(1.0), "human": broken}, JSON_METRIC,
                                log_dir=tmp_path)
    records = run_trials(["base", "human"], runner, trials=2, warmup=0, seed=0,
                         log=lambda _: None)
    decision = decide_trials(records, ["base", "human"], lower_is_better=True,
                             min_effect=0.02, alpha=0.05, seed=0)
    assert decision.verdict == "bench_failed" and decision.analysis is None
    assert "human" in decision.reason and "exit 1" in decision.reason


def test_benchmark_runs_its_schedule_through_any_trial_runner(tmp_path):
    """benchmark() itself, with the process runner in the seam: no container is started."""
    from executor.parts.bench.run import BenchOptions, benchmark
    from executor.engine.images import ImageRef
    from executor.core.task import CommitJob, TaskSpec

    task = TaskSpec(name="t", repo=str(tmp_path), bench_command="unused", metric=JSON_METRIC)
    job = CommitJob(task=task, item_id="item", human_sha="b" * 40, base_sha="a" * 40)
    images = {name: ImageRef(tag=f"unused:{name}", id=name, built=False)
              for name in ("base", "human")}
    runner = ProcessTrialRunner({"base": variant(10.0), "base2": variant(10.0),
                                 "human": variant(5.0)}, JSON_METRIC, log_dir=tmp_path / "t")
    results = benchmark(job, images, None, BenchOptions(trials=4, warmup=1, seed=11, aa=True),
                        tmp_path / "out", "run", log=lambda _: None, runner=runner)
    assert results.seed == 11 and len(results.trials) == 15
    assert results.metric["name"] == "ms" and results.metric["lower_is_better"] is True
    assert set(results.variants) == {"base", "human", "base2"}
    assert results.verdict == "improved"  # human (the subject without an agent) is 2x faster
    assert results.analysis["comparisons"]["base2/base"]["verdict"] in ("no_change",
                                                                         "inconclusive")
