"""Native-change detection (install planner and agent-variant rebuild) and image pruning."""

from executor.engine.image_gc import DAY_S, choose_prunable
from executor.parts.vllm.native import VLLM_NATIVE_PATHS, native_hits, touches_native


def test_native_paths():
    for path in ("csrc/attention/attention_kernels.cu", "CMakeLists.txt", "cmake/utils.cmake",
                 "setup.py", "pyproject.toml", "requirements-cuda.txt", "requirements/cuda.txt",
                 "requirements.txt", "./csrc/ops.h"):
        assert touches_native([path]), path
    for path in ("vllm/attention/ops/triton_flash_attention.py", "tools/setup.py",
                 "benchmarks/cmake_notes.md", "docs/requirements-docs.md", ".github/x.yml"):
        assert not touches_native([path]), path
    assert native_hits(["vllm/a.py", "csrc/b.cu", "setup.py"]) == ["csrc/b.cu", "setup.py"]


def test_task_native_paths_are_honoured():
    assert touches_native(["src/kernel.c"], ["src/"])
    assert not touches_native(["csrc/x.cu"], ["src/"])
    assert "requirements*" in VLLM_NATIVE_PATHS


def test_prune_old_first_then_oldest_until_under_budget():
    now = 100 * DAY_S
    rows = [("a", "old", now - 30 * DAY_S, 5_000_000_000),
            ("b", "mid", now - 5 * DAY_S, 4_000_000_000),
            ("c", "new", now - 1 * DAY_S, 3_000_000_000)]
    assert [r[0] for r in choose_prunable(rows, keep_days=14, max_gb=None, now=now)] == ["a"]
    assert [r[0] for r in choose_prunable(rows, keep_days=14, max_gb=3.5, now=now)] == ["a", "b"]
    assert choose_prunable(rows, keep_days=60, max_gb=100, now=now) == []
