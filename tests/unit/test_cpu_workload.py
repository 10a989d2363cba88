"""cpu_workload.py: the latency benchmark, the output check and the gate's command."""

import shlex
import subprocess

import pytest

from executor.core.errors import UserInputError
from executor.parts.vllm.cpu_workload import (CHECK_SCRIPT, CPU_GATES, OUTPUT_FILE, REQUIRED_FLAGS,
                                        CpuGate, cpu_workload)

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def test_scripts_era_runs_the_commits_benchmark_script_on_dummy_weights():
    workload = cpu_workload(LLAMA, scripts_stubbed=False)
    argv = shlex.split(workload.bench_command)
    assert workload.architecture == "LlamaForCausalLM"
    assert argv[:2] == ["python", "benchmarks/benchmark_latency.py"]
    def option(flag):
        return argv[argv.index(flag) + 1]

    assert option("--load-format") == "dummy" and "--enforce-eager" in argv
    assert option("--model") == option("--tokenizer") == \
        "/opt/isobench/models/llamaforcausallm-config"
    assert option("--output-json") == OUTPUT_FILE == "/tmp/isobench_bench.json"
    assert workload.metric.output_file == OUTPUT_FILE
    assert workload.env["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"


def test_one_unbound_thread_and_no_numa_page_migration():
    """vLLM 0.8-0.9 die when binding cannot migrate pages (EPERM in a container): "all"."""
    workload = cpu_workload(LLAMA, scripts_stubbed=False)
    assert workload.bench_command.startswith("python benchmarks/benchmark_latency.py ")
    assert (workload.env["VLLM_CPU_OMP_THREADS_BIND"], workload.env["OMP_NUM_THREADS"]) == \
        ("all", "1")


def test_stubbed_scripts_use_the_vllm_cli():
    bench = cpu_workload(LLAMA, scripts_stubbed=True).bench_command
    assert bench.startswith("vllm bench latency --model ") and "benchmark_latency.py" not in bench


def test_unsupported_model_is_a_user_error():
    with pytest.raises(UserInputError, match="Qwen2.5-VL-3B-Instruct"):
        cpu_workload("Qwen/Qwen2.5-VL-3B-Instruct", scripts_stubbed=False)


def test_output_check_runs_the_greedy_script_from_a_file_on_seeded_weights():
    check = cpu_workload(LLAMA, scripts_stubbed=False).output_check_command
    assert check.startswith(f"cat > {CHECK_SCRIPT} <<'PY'\n")
    body, run = check.split("\nPY\n")
    assert run == f"python {CHECK_SCRIPT}"
    assert "/opt/isobench/models/llamaforcausallm-weights" in body
    assert 'load_format="safetensors"' in body and "-config" not in body
    compile(body.split("\n", 1)[1], CHECK_SCRIPT, "exec")


def test_output_check_heredoc_writes_the_script(tmp_path):
    check = cpu_workload(LLAMA, scripts_stubbed=False).output_check_command
    target = tmp_path / "greedy.py"
    heredoc = check.split("\nPY\n")[0].replace(CHECK_SCRIPT, str(target)) + "\nPY\n"
    subprocess.run(["bash", "-c", heredoc], check=True)
    assert "def main():" in target.read_text() and 'if __name__ == "__main__":' in \
        target.read_text()


def test_gate_command_quotes_its_selection():
    gate = CpuGate(tests=["tests/a b.py", "tests/c.py"], deselect="not (x or y)", covers="-")
    argv = shlex.split(gate.command())
    assert argv[:6] == ["python", "-m", "pytest", "-q", "-x", "-p"]
    assert argv[argv.index("-k") + 1] == "not (x or y)"
    assert argv[-2:] == ["tests/a b.py", "tests/c.py"]
    assert "-k" not in shlex.split(CpuGate(tests=["t.py"], covers="-").command())
    assert CPU_GATES["ed250545"].command().endswith("tests/v1/core/test_kv_cache_utils.py")


OLD_SCRIPT = "".join(f"parser.add_argument('{flag}')\n" for flag in REQUIRED_FLAGS)


def test_an_old_script_without_max_model_len_runs_without_it():
    workload = cpu_workload(LLAMA, scripts_stubbed=False, script=OLD_SCRIPT)
    assert "--max-model-len" not in workload.bench_command
    assert "--max-model-len" in cpu_workload(LLAMA, scripts_stubbed=False).bench_command


def test_a_script_without_load_format_is_refused_in_one_line():
    script = OLD_SCRIPT.replace("parser.add_argument('--load-format')\n", "")
    with pytest.raises(UserInputError, match="lacks --load-format") as caught:
        cpu_workload(LLAMA, scripts_stubbed=False, script=script)
    assert "\n" not in str(caught.value)
