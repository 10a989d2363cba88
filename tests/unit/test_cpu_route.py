"""cpu_route.py: the CPU environment from a commit's files, and the plan's refusals."""

import datetime as dt

import pytest

from executor.core.errors import UserInputError
from executor.parts.vllm import cpu_wheels, facts
from executor.parts.vllm.cpu_route import choose_cpu_route, cpu_environment, plan_cpu_install
from executor.parts.vllm.mirror import GitMirror
from executor.parts.vllm.strategy import HostResources, PlanOptions
from tests.unit.test_cpu_wheels import BASE, REQS, Repo, wheel

PYPROJECT = '[project]\nname = "vllm"\nrequires-python = ">=3.9,<3.13"\n'
SETUP_PY = 'setup(name="vllm", python_requires=">=3.9,<3.13")\n'
OPTIONS = PlanOptions(host=HostResources(cores=2, mem_gb=8), target_device="cpu")


@pytest.mark.parametrize("python_file", [{"pyproject.toml": PYPROJECT},
                                         {"setup.py": SETUP_PY}])
def test_cpu_environment_takes_the_x86_pin_from_pypi_on_bookworm(python_file):
    env = cpu_environment({"requirements/cpu.txt": REQS, **python_file}, dt.date(2025, 6, 1))
    assert (env.torch, env.torch_source, env.torch_file) == \
        ("2.6.0", "requirements", "requirements/cpu.txt")
    assert (env.base_kind, env.debian_suite, env.python) == ("debian", "bookworm", "3.11")
    assert env.python_requires == ">=3.9,<3.13"
    assert env.torch_index_url == facts.PYPI_INDEX and env.cuda == "none"
    assert env.torch_exclude_newer == facts.TORCH_RELEASED["2.6.0"]
    assert env.reasons[0].startswith("torch 2.6.0: the x86 CPU pin")
    assert not [r for r in env.reasons if r.startswith(("CUDA ", "base image "))]


def test_old_requirements_cpu_txt_is_read_too():
    env = cpu_environment({"requirements-cpu.txt": "torch == 2.5.1+cpu\n",
                           "pyproject.toml": PYPROJECT}, None)
    assert (env.torch, env.torch_file) == ("2.5.1", "requirements-cpu.txt")


@pytest.mark.parametrize("files", [
    {},
    {"requirements/cpu.txt": 'torch==2.7.0; platform_machine == "ppc64le"\n'},
    {"requirements/cpu.txt": "torch>=2.5\n"},
])
def test_no_x86_cpu_pin_is_a_one_line_error(files):
    with pytest.raises(UserInputError, match="no CPU torch pin") as caught:
        cpu_environment({**files, "pyproject.toml": PYPROJECT}, dt.date(2025, 6, 1))
    assert "\n" not in str(caught.value)


@pytest.fixture()
def history(tmp_path, monkeypatch):
    repo = Repo(tmp_path / "vllm")
    release = repo.commit({**BASE, "pyproject.toml": PYPROJECT})
    kernel = repo.commit({"csrc/cpu/bindings.cpp": '#include "ops.h"\nauto f = &rms_norm; //2\n'})
    monkeypatch.setattr(cpu_wheels, "cpu_wheels", lambda: (wheel("0.9.1", release, 1),))
    return GitMirror(repo.path), release, kernel


def test_changed_cpu_kernel_is_built_from_the_tree_with_cpu_torch(history):
    mirror, release, kernel = history
    assert choose_cpu_route(mirror, release).route == "cpu_wheel"
    choice = choose_cpu_route(mirror, kernel, torch_index="pytorch")
    assert (choice.route, choice.runnable, choice.wheel) == ("cpu_build", True, None)
    assert any("csrc/cpu/bindings.cpp" in r for r in choice.reasons)  # why no wheel
    options = OPTIONS.model_copy(update={"torch_index": "pytorch"})
    plan = plan_cpu_install(kernel, source=mirror, commit_date=None, date_source="unknown",
                            options=options)
    assert plan.strategy == "cpu_build" and plan.wheel is None
    assert "VLLM_CPU_DISABLE_AVX512" in plan.reasons[0]
    assert plan.environment.torch_index_url == "https://download.pytorch.org/whl/cpu"


def test_a_build_on_pypis_cuda_torch_is_refused_with_the_measured_reason(history):
    mirror, _, kernel = history
    choice = choose_cpu_route(mirror, kernel)  # torch from PyPI
    assert (choice.route, choice.runnable) == ("cpu_build", False)
    assert "csrc/cpu/bindings.cpp" in choice.why_not and "--torch-index pytorch" in choice.why_not


def test_wheel_only_refuses_a_changed_cpu_kernel(history):
    mirror, _, kernel = history
    choice = choose_cpu_route(mirror, kernel, "wheel")
    assert (choice.route, choice.runnable) == ("cpu_wheel", False)
    assert "csrc/cpu/bindings.cpp" in choice.why_not
    with pytest.raises(UserInputError, match="cannot run on the CPU track"):
        plan_cpu_install(kernel, source=mirror, commit_date=None, date_source="unknown",
                         options=OPTIONS.model_copy(update={"cpu_route": "wheel"}))


def test_no_cpu_backend_cannot_be_built(tmp_path):
    repo = Repo(tmp_path / "old")
    sha = repo.commit({"requirements/cpu.txt": REQS, "pyproject.toml": PYPROJECT})
    choice = choose_cpu_route(GitMirror(repo.path), sha, "build", "pytorch")
    assert not choice.runnable and "cmake/cpu_extension.cmake" in choice.why_not


def test_plan_needs_a_mirror():
    with pytest.raises(UserInputError, match="give the mirror"):
        plan_cpu_install("ed25054577f7", source=None, commit_date=None, date_source="unknown",
                         options=OPTIONS)
