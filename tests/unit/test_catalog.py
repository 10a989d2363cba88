"""The built-in catalogue: lookup by short sha, errors, normalised commands per mode."""

import datetime as dt

import pytest

from executor.parts.catalog import find_commit, lookup, vllm_core_entries
from executor.parts.vllm.commands import normalise_command
from executor.core.errors import UserInputError


def test_96_entries_with_full_shas_and_parents():
    entries = vllm_core_entries()
    assert len(entries) == 96 and len({e.human for e in entries}) == 96
    assert all(len(e.human) == 40 for e in entries)
    assert sum(e.commit_date is not None for e in entries) == 39
    assert sum(e.parent is not None for e in entries) == 91


def test_lookup_short_full_and_demo():
    entry = lookup("015069b0")
    assert entry.item_id == "vllm_core-0000" and entry.human.startswith("015069b01741")
    assert lookup(entry.human.upper()).item_id == entry.item_id
    assert lookup("a0476e8c").catalogue == "demo"


def test_unknown_ambiguous_and_malformed_are_user_errors(monkeypatch):
    import executor.parts.catalog as catalog

    with pytest.raises(UserInputError, match="no built-in catalogue"):
        lookup("deadbeef")
    real = vllm_core_entries()[0]
    twin = real.model_copy(update={"human": real.human[:6] + "f" * 34, "item_id": "twin"})
    monkeypatch.setattr(catalog, "all_entries", lambda: (real, twin))
    with pytest.raises(UserInputError, match="ambiguous"):
        lookup(real.human[:6])
    assert lookup(real.human[:8]) == real
    with pytest.raises(UserInputError, match="not a commit sha"):
        lookup("xyz!")


def test_find_commit_gives_a_runnable_serving_task():
    task, item = find_commit("015069b0")
    assert item.pre == "fbefc8a78d22b20eac042c586805c7dcbfc66b1c"
    assert task.builder == "vllm" and task.server_ready_url.endswith("/v1/models")
    assert "api_server" in task.server_command and "--load-format dummy" in task.server_command
    assert "--save-result" in task.bench_command and task.metric.kind == "serving_json"
    assert "csrc/" in task.native_paths and "--no-build-isolation" in task.rebuild_command
    demo_task, demo_item = find_commit("a0476e8c")
    assert demo_task.name == "demo" and demo_item.item_id == "demo-0000"


def test_not_runnable_commits_fail_with_their_reason():
    with pytest.raises(UserInputError, match="tensor parallel 8"):
        find_commit("21d93c14")
    with pytest.raises(UserInputError, match="TPU"):
        find_commit("ce6bf3a2")


LATE = dt.date(2024, 12, 1)


def test_latency_gets_json_and_dummy_weights_by_era():
    cmd = normalise_command("python benchmarks/benchmark_latency.py --model m/x-8B", "m/x-8B",
                            "standalone", LATE)
    assert cmd.command.endswith("--load-format dummy --output-json /tmp/isobench_bench.json")
    assert cmd.metric.kind == "latency_json"
    early = normalise_command("python benchmarks/benchmark_latency.py --model m/x-8B", "m/x-8B",
                              "standalone", dt.date(2024, 4, 1))
    assert "--load-format" not in early.command and early.metric.kind == "regex"


def test_throughput_and_stubbed_scripts_become_vllm_bench():
    cmd = normalise_command("python benchmarks/benchmark_throughput.py --model m/x-8B "
                            "--input-len 256 --output-len 256", "m/x-8B", "standalone",
                            dt.date(2025, 10, 1))
    assert cmd.command.startswith("vllm bench throughput ")
    assert cmd.metric.kind == "throughput_json"


def test_serving_moves_engine_flags_to_the_server_and_saves_json():
    cmd = normalise_command("python benchmarks/benchmark_serving.py --model m/x-8B "
                            "--dtype float16 --enable-prefix-caching --num-prompts 300",
                            "m/x-8B", "serving", LATE)
    assert "--dtype float16" in cmd.server_command and "--dtype" not in cmd.command
    assert "--enable-prefix-caching" in cmd.server_command
    assert "--save-result --result-dir /tmp --result-filename isobench_bench.json" in \
        cmd.command
    assert cmd.required_files == ["/opt/isobench/datasets/ShareGPT_V3_unfiltered_cleaned_split.json"]
    lens = normalise_command("python benchmarks/benchmark_serving.py --model m/x-8B "
                             "--input-len 1000 --output-len 50", "m/x-8B", "serving", LATE)
    assert "--random-input-len 1000" in lens.command and "--dataset-name random" in lens.command


def test_prefix_caching_reads_stdout():
    cmd = normalise_command("python3 benchmarks/benchmark_prefix_caching.py --model m/x-8B "
                            "--enable-prefix-caching", "m/x-8B", "prefix_caching", LATE)
    assert cmd.metric.kind == "prefix_caching_stdout" and cmd.metric.output_file is None


@pytest.mark.parametrize("command,model,mode,reason", [
    (None, "m", "serving", "no perf command"),
    ("python benchmarks/benchmark_serving.py --model m", "m", None, "mode is null"),
    ("python benchmarks/benchmark_latency.py --model m/x-8B -tp 4", "m/x-8B", "standalone",
     "tensor parallel 4"),
    ("python benchmark_guided.py --model m", "m", "serving", "not a vLLM benchmark script"),
    ("python benchmarks/benchmark_latency.py --batch-size BS --model MODEL", None, "standalone",
     "placeholders"),
    ("python benchmarks/benchmark_latency.py --model meta-llama/Llama-2-70b-hf", None,
     "standalone", "do not fit one GPU"),
    ("python benchmarks/benchmark_serving.py --model m/x-8B --batch-size 2", "m/x-8B",
     "serving", "--batch-size"),
])
def test_commands_that_cannot_work_are_marked(command, model, mode, reason):
    cmd = normalise_command(command, model, mode, LATE)
    assert not cmd.runnable and reason in cmd.not_runnable


def test_unknown_date_records_its_assumptions():
    cmd = normalise_command("python benchmarks/benchmark_latency.py --model m/x-8B", "m/x-8B",
                            "standalone", None)
    assert cmd.runnable and cmd.assumptions
