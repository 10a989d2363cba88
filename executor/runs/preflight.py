"""Checks of the host made before an attempt starts, so that what no retry can fix is reported
as bad input (exit 2, one line saying what to do) and leaves no run record behind.

`run-commit`, `bench` and `run` call `preflight` after reading their input and before writing
anything to the state directory. What a check cannot know without running (a build that fails,
a GPU that detaches mid-run) stays the attempt's to find and classify.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pydantic import BaseModel, Field

from executor.engine.images import BaseImageRecipe, find_image
from executor.core.errors import EnvironmentNotReady
from executor.engine.sandbox import engine_gpu_runtime
from executor.engine.chosen import engine_client
from executor.core.resources import GpuRequest
from executor.core.task import CommitJob
from executor.parts.agents.source import check_source
from executor.runs.agent_python import check_agent_python


class PreflightNeeds(BaseModel):
    """What the coming attempts will use from the host."""

    offline_base: bool = Field(default=False,
                               description="Builds the debootstrap base image if absent.")
    base_recipe: BaseImageRecipe = Field(default_factory=BaseImageRecipe,
                                         description="The offline base that would be built.")
    gpus: GpuRequest = Field(default_factory=GpuRequest,
                             description="GPUs passed into sandboxes.")
    agent: str = Field(default="", description="The agent (TRAE and OpenHands need a Python "
                                                "3.12 for their bundles).")
    agent_python: Path | None = Field(default=None, description="--agent-python given.")
    agent_source: tuple[str, str] | None = Field(
        default=None, description="(source, revision) the agent's bundle is exported from.")


def needs_for(job: CommitJob | None, *, gpus: GpuRequest, agent: str = "",
              agent_python: Path | None = None, agent_source: tuple[str, str] | None = None,
              base_recipe: BaseImageRecipe | None = None) -> PreflightNeeds:
    """The needs of runs of `job` (None: unknown task, no base-image check)."""
    offline = job is not None and job.task.builder != "vllm" and not job.task.base_image
    return PreflightNeeds(offline_base=offline, base_recipe=base_recipe or BaseImageRecipe(),
                          gpus=gpus, agent=agent, agent_python=agent_python,
                          agent_source=agent_source)


def preflight(needs: PreflightNeeds) -> None:
    """Raise EnvironmentNotReady (exit 2) for the first thing on this host that blocks the run."""
    check_agent_python(needs.agent, needs.agent_python)
    if needs.agent_source:  # bad input (exit 2), not every item's infrastructure failure
        check_source(*needs.agent_source)
    if needs.gpus.mode != "none":
        check_gpus(needs.gpus)
    if needs.offline_base:
        check_offline_base(needs.base_recipe)


def check_offline_base(recipe: BaseImageRecipe) -> None:
    """The offline base is present, or this host can build it (root and debootstrap)."""
    if find_image(engine_client(timeout=30), recipe.tag):
        return
    if not shutil.which("debootstrap"):
        raise EnvironmentNotReady(
            f"the base image {recipe.tag} must be built and debootstrap is not installed: run "
            f"scripts/ensure-docker.sh (or `apt-get install debootstrap`)")
    if os.geteuid() != 0:
        raise EnvironmentNotReady(
            f"the base image {recipe.tag} must be built, which needs root (debootstrap): run "
            f"`sudo isobench images base` once")


def visible_gpu_ids() -> set[str] | None:
    """Indexes and UUIDs of the GPUs nvidia-smi sees; None without nvidia-smi."""
    if not shutil.which("nvidia-smi"):
        return None
    proc = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid", "--format=csv,noheader"],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        return set()
    return {part.strip() for line in proc.stdout.splitlines() for part in line.split(",")
            if part.strip()}


def check_gpus(gpus: GpuRequest) -> None:
    """--gpus asks for GPUs: the engine has the nvidia runtime and every id is on this host."""
    visible = visible_gpu_ids()
    if not visible:
        raise EnvironmentNotReady(f"--gpus {gpus}: this host has no GPU that nvidia-smi sees; "
                                  f"use --gpus none, or run on a GPU host (docs/gpu-hosts.md)")
    if not engine_gpu_runtime():
        raise EnvironmentNotReady(
            f"--gpus {gpus}: Docker has no nvidia runtime; install nvidia-container-toolkit, "
            f"then `nvidia-ctk runtime configure --runtime=docker` and restart Docker")
    absent = [gpu for gpu in gpus.ids if gpu not in visible]
    if absent:
        indexes = sorted(v for v in visible if v.isdigit())
        raise EnvironmentNotReady(f"--gpus {gpus}: no GPU {', '.join(absent)} on this host "
                                  f"(present: {', '.join(indexes) or 'none'})")
